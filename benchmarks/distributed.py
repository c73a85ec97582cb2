"""Epoch time with 1 and 2 processes (torchrun, gloo on CPU / NCCL on CUDA) for CCGC and for MGNN
graph classification, with the single-process alternatives a user would pick instead.

    OMP_NUM_THREADS=1 python -m benchmarks.distributed [--only ccgc mgnn] [--repeats 2]

Per repeat and workload, three settings: one process with 1 thread, one process with 2 threads
(what a user runs without torchrun), 2 ranks with 1 thread each. A worker
(``python -m benchmarks.distributed --worker NAME``, alone or under torchrun) times the training
itself, excluding interpreter start and data loading, and rank 0 prints one JSON line.

* ``ccgc``: CCGC (reference variant, Cora, 500-d encoders, 100 epochs = 51 warm-up + 49
  cluster-guided, K-means every 10 epochs) with ``distributed=True``: rows split over the ranks.
* ``mgnn``: 3-layer MGNN on ENZYMES (600 graphs, 480 train), ``fit_graph`` with global batch 32
  split over the ranks, 10 epochs, validation every epoch.

Records go to ``benchmarks/results/distributed.jsonl`` (``benchmark="ccgc"`` / ``"mgnn-graph"``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import RESULTS, append_record, make_record

REPO = Path(__file__).resolve().parent.parent
OUT = RESULTS / "distributed.jsonl"
SETTINGS = ((1, 1), (1, 2), (2, 1))  # (processes, threads per process)


def worker_ccgc(epochs: int) -> dict:
    from graphkit.cluster import CCGC
    from graphkit.data import load
    from graphkit.metrics import cluster_scores
    data = load("cora")
    model = CCGC(7, epochs=epochs, random_state=0, distributed=True, device="cpu").fit(data)
    acc = cluster_scores(data.y.numpy(), model.labels_)["acc"]
    return {"seconds": model.history_["seconds"][0], "epochs": epochs, "acc_last": 100 * acc}


def worker_mgnn(epochs: int) -> dict:
    import numpy as np
    import torch

    from graphkit.commands.mgnn import _graph_features, build_model, run_graph_fold
    from graphkit.data import load
    ds = load("enzymes")
    graphs = _graph_features(ds)
    idx = np.random.default_rng(0).permutation(len(graphs))
    train, val, test = idx[:480], idx[480:540], idx[540:]
    torch.manual_seed(0)
    model = build_model("mgnn", graphs[0].num_features, ds.num_classes, "graph")
    res = run_graph_fold(model, graphs, train, val, test, epochs, 0.01, 0.0, 32,
                         torch.device("cpu"), 0)
    return {"seconds": res["seconds"], "epochs": epochs, "test_acc": res["test_acc"]}


WORKERS = {"ccgc": (worker_ccgc, 100, "ccgc", "cora"),
           "mgnn": (worker_mgnn, 10, "mgnn-graph", "enzymes")}


def worker(name: str) -> None:
    import torch

    from graphkit import distributed as gdist
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    fn, epochs = WORKERS[name][:2]
    with gdist.process_group():
        lead, world = gdist.rank() == 0, gdist.world_size()
        out = fn(epochs)
    if lead:
        print(json.dumps({**out, "nproc": world}))


def run_setting(name: str, nproc: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] \
        if nproc > 1 else []
    cmd = [sys.executable, *launcher, "-m", "benchmarks.distributed", "--worker", name]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(WORKERS), choices=list(WORKERS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    for repeat in range(args.repeats):
        for name in args.only:
            _, epochs, bench, dataset = WORKERS[name]
            for nproc, threads in SETTINGS:
                res = run_setting(name, nproc, threads)
                per_epoch = res["seconds"] / res["epochs"]
                metrics = {"seconds_per_epoch": per_epoch,
                           **{k: v for k, v in res.items() if k in ("acc_last", "test_acc")}}
                append_record(OUT, make_record(
                    bench, dataset, f"{bench}: {epochs} epochs; nproc={nproc} x {threads} "
                    f"thread(s)", repeat, metrics, res["seconds"], "cpu", topic="distributed",
                    benchmark=bench, nproc=nproc, threads=threads, repeat=repeat,
                    command=f"python -m benchmarks.distributed --only {name}"))
                print(f"{bench:11s} nproc={nproc} threads={threads}: {per_epoch:.3f} s/epoch "
                      f"{metrics}", flush=True)


if __name__ == "__main__":
    main()
