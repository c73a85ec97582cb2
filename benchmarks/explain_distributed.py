"""Wall time of ``graphkit explain`` on BA-Shapes (NSEG, all 400 motif nodes) in one process and
under ``torchrun --standalone --nproc-per-node 2 ... --distributed`` with the same arguments.

    OMP_NUM_THREADS=1 python -m benchmarks.explain_distributed [--epochs 100] [--repeats 1]

Three settings per repeat: one process with 1 thread, one process with 2 threads, 2 ranks with
1 thread each. ``seconds`` is the whole command (interpreter start, model training on every rank,
explanation, scoring); ``explain_seconds`` the sharded explanation alone (``seconds_per_instance
* instances``, rank 0's wall time including the gather). The metrics are kept to show the runs
agree. Records go to ``benchmarks/results/distributed.jsonl`` (``benchmark="explain"``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import RESULTS, append_record, machine, make_record

REPO = Path(__file__).resolve().parent.parent
OUT = RESULTS / "distributed.jsonl"


def run_once(nproc: int, threads: int, args: list[str]) -> tuple[float, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    if nproc == 1:
        cmd = [sys.executable, "-m", "graphkit", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "graphkit", *args, "--distributed"]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return seconds, json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100,
                        help="targets per chunk (400 / 100: 4 equal chunks, 2 per rank)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cli = ["explain", "--dataset", "ba-shapes", "--model", "gcn", "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--json"]
    for rep in range(args.repeats):
        for nproc, threads in ((1, 1), (2, 1), (1, 2)):
            seconds, res = run_once(nproc, threads, cli)
            explain_s = res["seconds_per_instance"] * res["instances"]
            metrics = {"seconds": seconds, "explain_seconds": explain_s,
                       **{k: res[k] for k in ("fns", "auc", "recall", "instances")}}
            print(f"[explain-distributed] nproc={nproc} threads={threads} rep={rep}: "
                  f"{seconds:.1f} s total, {explain_s:.1f} s explaining, fns={res['fns']:.4f} "
                  f"auc={res['auc']:.4f}", flush=True)
            append_record(OUT, make_record(
                "graphkit explain (nseg, gcn)", "ba-shapes",
                f"explain: 400 targets, {args.epochs} epochs, batch {args.batch_size}; "
                f"nproc={nproc} x {threads} thread(s)", args.seed, metrics, seconds, "cpu",
                topic="distributed", benchmark="explain", nproc=nproc, threads=threads,
                repeat=rep, command=" ".join(cli), machine=machine("cpu")))


if __name__ == "__main__":
    main()
