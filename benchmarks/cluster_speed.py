"""End-to-end seconds per CCGC seed (``graphkit cluster --protocol paper``), for issue #5.

Usage::

    GRAPHKIT_DATA=/work/shared/datasets python -m benchmarks.cluster_speed \\
        --datasets cora --seeds 3 --threads 1 2

Each seed is the full paper-protocol call the CLI makes (:func:`graphkit.commands.cluster.run_seed`:
400 epochs, K-means with 20 inits every 10 epochs, the label-free consensus, K-means on the final
embedding, the metrics of every evaluation). One record per (dataset, threads, seed) goes to
``benchmarks/results/cluster_speed.jsonl`` with wall and process-CPU seconds, the torch thread
count and the 1-minute load average before and after, because the machine is shared: wall time
is only comparable at equal load. Data loading is timed separately (``load_seconds``).

``kernel`` says which encoder implementation ran: ``numba`` (``graphkit[fast]`` installed) or
``scipy`` (no numba, or ``GRAPHKIT_NUMBA=0``). The first numba seed of a process includes
loading the compiled kernels from numba's cache (~0.5 s; a first-ever run compiles for ~10 s).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from benchmarks.harness import RESULTS, append_record, make_record
from graphkit.commands.cluster import hyperparams, run_seed

OUT = RESULTS / "cluster_speed.jsonl"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", default=["cora"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--threads", type=int, nargs="*", default=[2],
                        help="torch thread counts to time (also the scipy block threads)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    from graphkit.cluster.smoothing import numba_available
    from graphkit.data import load
    kernel = "numba" if numba_available() else "scipy"
    numba_version = None
    if kernel == "numba":
        import numba
        numba_version = numba.__version__
    for name in args.datasets:
        start = time.perf_counter()
        data = load(name)
        load_seconds = time.perf_counter() - start
        k = int(data.y.max()) + 1
        params = hyperparams(name)
        if args.epochs:
            params["epochs"] = args.epochs
        for threads in args.threads:
            torch.set_num_threads(threads)
            for seed in range(args.seeds):
                load_before = os.getloadavg()
                res = run_seed(data, k, seed, "paper", **params)
                load_after = os.getloadavg()
                m = {key: 100 * v for key, v in res["views"]["paper"].items()}
                append_record(args.out, make_record(
                    "ccgc", name, "paper-speed", seed, m, res["seconds"], "cpu",
                    cpu_seconds=res["cpu_seconds"], threads=threads,
                    omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                    omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
                    load_avg_before=load_before, load_avg_after=load_after,
                    load_seconds=load_seconds, best_epoch=res["best_epoch"],
                    kernel=kernel, numba_version=numba_version, hyperparams=params))
                print(f"[cluster_speed] {name} {kernel} threads {threads} seed {seed}: "
                      f"{res['seconds']:.1f} s wall, {res['cpu_seconds']:.1f} s CPU, "
                      f"paper acc {m['acc']:.2f} (best epoch {res['best_epoch']}), "
                      f"load {load_before[0]:.1f}->{load_after[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
