"""CCGC at scale: the synthetic 16-block SBM (``graphkit.data.load("sbm")``) end to end.

Usage: ``OMP_NUM_THREADS=2 python -m benchmarks.cluster_scale --nodes 10000 100000 [1000000]``

Each size runs in its own subprocess so the peak resident memory (``ru_maxrss``, which covers
data generation, smoothing, training and every K-means) belongs to that size alone. Records go to
``benchmarks/results/cluster_scale.jsonl`` with ``seconds`` (end to end, including graph
generation), ``peak_rss_gb`` and the clustering scores (×100) of the final partition.

Scale schedule (recorded with each run): 64-wide encoders, 100 epochs (20 warm-up), K-means every
10 epochs with 5 initialisations and at most 100 Lloyd steps. Nothing is N×N: X̃ is sparse or
N×d, the warm-up loss goes through D×D Gram matrices, K-means works in row blocks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from benchmarks.harness import RESULTS, append_record, make_record

OUT = RESULTS / "cluster_scale.jsonl"
SCHEDULE = dict(dims=64, epochs=100, warmup=20, eval_every=10, n_init=5, kmeans_max_iter=100,
                lr=1e-3, t=4, selection="last")


def one(n: int, seed: int, device: str) -> dict:
    from graphkit.cluster import CCGC
    from graphkit.data import load
    from graphkit.metrics import cluster_scores
    from graphkit.runtime import resolve_device
    start = time.perf_counter()
    data = load("sbm", num_nodes=n, num_clusters=16, seed=seed)
    gen_s = time.perf_counter() - start
    model = CCGC(16, device=device, random_state=seed, **SCHEDULE).fit(data)
    seconds = time.perf_counter() - start
    scores = {k: 100 * v for k, v in cluster_scores(data.y, model.labels_).items()}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024 ** 2  # KiB -> GiB
    out = {"nodes": n, "edges": int(data.edge_index.size(1)) // 2, "seconds": seconds,
           "cpu_seconds": usage.ru_utime + usage.ru_stime,
           "generate_seconds": gen_s, "peak_rss_gb": peak, "metrics": scores,
           # embedding_ is handed back on the CPU; the device that trained is the resolved one
           "device": str(resolve_device(device))}
    try:
        import torch
        if torch.cuda.is_available() and device != "cpu":
            out["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 1024 ** 3
    except Exception:  # noqa: BLE001  (reporting only)
        pass
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print("RESULT " + json.dumps(one(args.child, args.seed, args.device)), flush=True)
        return
    for n in args.nodes:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.cluster_scale", "--child",
                               str(n), "--seed", str(args.seed), "--device", args.device],
                              capture_output=True, text=True, env=os.environ.copy())
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(f"[cluster_scale] n={n} failed: {proc.stderr.strip()[-500:]}")
            continue
        res = json.loads(lines[-1][7:])
        append_record(OUT, make_record(
            "ccgc", f"sbm-{n}", "scale", args.seed, res["metrics"], res["seconds"],
            res["device"], nodes=n, edges=res["edges"], peak_rss_gb=res["peak_rss_gb"],
            peak_cuda_gb=res.get("peak_cuda_gb"), schedule=SCHEDULE,
            cpu_seconds=res["cpu_seconds"], generate_seconds=res["generate_seconds"],
            threads=os.environ.get("OMP_NUM_THREADS")))
        print(f"[cluster_scale] n={n}: {res['seconds']:.1f} s ({res['cpu_seconds']:.0f} s CPU), "
              f"peak RSS "
              f"{res['peak_rss_gb']:.2f} GiB, acc {res['metrics']['acc']:.2f}", flush=True)


if __name__ == "__main__":
    main()
