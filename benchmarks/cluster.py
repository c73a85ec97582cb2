"""CCGC benchmark: ``paper`` vs ``honest`` protocol, with K-means and spectral clustering on X̃.

Paper: https://arxiv.org/abs/2301.01098 (Yang et al., AAAI 2023).

Usage::

    GRAPHKIT_DATA=/work/shared/datasets OMP_NUM_THREADS=1 python -m benchmarks.cluster \\
        --datasets bat eat cora --seeds 10 [--baselines] [--epochs N]

One training per seed yields three records in ``benchmarks/results/cluster.jsonl``:
``paper`` (best ground-truth-ACC evaluation, the published protocol), ``honest`` (label-free
consensus of the post-warm-up partitions) and ``honest-last`` (K-means on the final embedding).
Seeds already recorded are skipped (resume). Metrics are ×100.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import RESULTS, append_record, done_seeds, make_record
from graphkit.commands.cluster import hyperparams, run_seed

OUT = RESULTS / "cluster.jsonl"
# CCGC Table 1 (mean ± std over 10 runs, best epoch by ground-truth ACC) of ACC, NMI, ARI, F1
PAPER_TABLE = {
    "cora": ((73.88, 1.20), (56.45, 1.04), (52.51, 1.89), (70.98, 2.79)),
    "citeseer": ((69.84, 0.94), (44.33, 0.79), (45.68, 1.80), (62.71, 2.06)),
    "amap": ((77.25, 0.41), (67.44, 0.48), (57.99, 0.66), (72.18, 0.57)),
    "bat": ((75.04, 1.78), (50.23, 2.43), (46.95, 3.09), (74.90, 1.80)),
    "eat": ((57.19, 0.66), (33.85, 0.87), (27.71, 0.41), (57.09, 0.94)),
}
PAPER = {name: row[0] for name, row in PAPER_TABLE.items()}  # ACC only
METRICS = ("acc", "nmi", "ari", "f1")
TABLE_ROWS = (("ccgc", "paper", "ours, `paper` (oracle epoch)"),
              ("ccgc", "oracle", "ours, `variant=\"fixed\"`, oracle epoch (information only)"),
              ("ccgc", "honest", "ours, `honest` (consensus, no labels)"),
              ("ccgc", "honest-last", "ours, `honest-last` (final epoch)"),
              ("kmeans-xt", "baseline", "K-means on X̃"),
              ("spectral-xt", "baseline", "spectral clustering on X̃"))


def side_by_side(path: Path | None = None) -> str:
    """The paper's Table 1 next to every row of ``path`` (default cluster.jsonl), all four
    metrics, mean ± population std over the recorded seeds (markdown)."""
    from benchmarks.harness import mean_std, read_records
    records = read_records(path or OUT)
    lines = ["| dataset | row | seeds | ACC | NMI | ARI | F1 |", "|---|---|---|---|---|---|---|"]
    for name, paper in PAPER_TABLE.items():
        cells = [f"{m:.2f} ± {s:.2f}" for m, s in paper]
        lines.append(f"| {name} | paper (Table 1) | 10 | " + " | ".join(cells) + " |")
        for method, protocol, label in TABLE_ROWS:
            rs = [r for r in records if (r["method"], r["dataset"], r["protocol"])
                  == (method, name, protocol)]
            if rs:
                cells = ["{:.2f} ± {:.2f}".format(*mean_std([r["metrics"][m] for r in rs]))
                         for m in METRICS]
                lines.append(f"| {name} | {label} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def baselines(name: str, data, k: int, seeds: list[int]) -> None:
    """K-means (sklearn, 10 inits) and spectral clustering (kNN affinity) on X̃."""
    import scipy.sparse as sp
    from sklearn.cluster import KMeans, SpectralClustering

    from graphkit.cluster import smooth
    from graphkit.metrics import cluster_scores
    n = data.num_nodes
    adj = sp.coo_matrix((np.ones(data.edge_index.size(1)), data.edge_index.numpy()), (n, n))
    xt = smooth(data.x.numpy(), adj, hyperparams(name)["t"])
    y = data.y.numpy()
    for method in ("kmeans-xt", "spectral-xt"):
        for seed in sorted(set(seeds) - done_seeds(OUT, method=method, dataset=name)):
            start = time.perf_counter()
            if method == "kmeans-xt":
                pred = KMeans(k, n_init=10, random_state=seed).fit_predict(xt)
            else:
                pred = SpectralClustering(k, affinity="nearest_neighbors", n_neighbors=10,
                                          assign_labels="cluster_qr",
                                          random_state=seed).fit_predict(xt)
            m = {key: 100 * v for key, v in cluster_scores(y, pred).items()}
            append_record(OUT, make_record(method, name, "baseline", seed, m,
                                           time.perf_counter() - start, "cpu"))
            print(f"[cluster] {method} {name} seed {seed}: acc {m['acc']:.2f}")


SEARCH_OUT = RESULTS / "cluster_search.jsonl"
SEARCH_GRID = [dict(t=t, lr=lr) for t in (4, 6) for lr in (1e-4, 1e-3)]
SEARCH_SEEDS = (100, 101)  # disjoint from the evaluation seeds 0-9
# Choices of `--search` (see results/cluster_search.jsonl); datasets absent were not searched.
TUNED = {"bat": dict(t=6, lr=1e-3), "cora": dict(t=6, lr=1e-3, tau=0.7),
         "citeseer": dict(t=6, lr=1e-3), "amap": dict(tau=0.3)}
# eat and amap: the (t, lr) search kept the defaults (t=4, lr=1e-4)
# `--search-tau`: tau, the high-confidence fraction, searched the same way at the chosen (t, lr);
# it kept 0.5 on bat, eat and citeseer, and chose 0.7 on cora and 0.3 on amap
SEARCH_GRID_TAU = [dict(tau=tau) for tau in (0.3, 0.5, 0.7)]
# `--variant fixed`: the estimator's bug-free loop (every cluster, zero_grad each step), a method
# change the honest protocol allows. Without the accumulated gradients lr 1e-4 barely moves the
# encoders, so the grid reaches 1e-2; chosen by the same stability criterion.
SEARCH_GRID_FIXED = [dict(t=t, lr=lr) for t in (4, 6) for lr in (1e-4, 1e-3, 1e-2)]
# `--search --variant fixed` (2026-12-07, cluster_search.jsonl); amap was not searched (CPU)
TUNED_FIXED = {"bat": dict(t=4, lr=1e-3), "eat": dict(t=6, lr=1e-4),
               "cora": dict(t=4, lr=1e-4), "citeseer": dict(t=6, lr=1e-3)}


def search(name: str, data, k: int, grid: list[dict] = SEARCH_GRID,
           base: dict | None = None) -> dict:
    """Label-free choice of the settings in ``grid`` (on top of ``base``): the stability of the
    honest partition, i.e. the ARI between the consensus partitions of two training seeds.
    Ground truth is recorded for the notes only and never read by the choice."""
    from sklearn.metrics import adjusted_rand_score
    best, best_score = None, -1.0
    for cfg in grid:
        params = {**hyperparams(name), **(base or {}), **cfg}
        runs = [run_seed(data, k, seed, "honest", **params) for seed in SEARCH_SEEDS]
        stability = float(adjusted_rand_score(runs[0]["model"].labels_,
                                              runs[1]["model"].labels_))
        append_record(SEARCH_OUT, make_record(
            "ccgc", name, "search", None, {"stability_ari": 100 * stability},
            sum(r["seconds"] for r in runs), "cpu", hyperparams=params,
            unused_truth_acc=[100 * r["views"]["honest"]["acc"] for r in runs]))
        print(f"[cluster] search {name} {cfg}: stability {stability:.3f}", flush=True)
        if stability > best_score:
            best, best_score = cfg, stability
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", default=["bat", "eat", "cora", "citeseer",
                                                          "amap"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results/cluster.jsonl)")
    parser.add_argument("--quick", action="store_true", help="2 seeds")
    parser.add_argument("--tuned", action="store_true",
                        help="use the label-free search's choice (TUNED) and write to "
                             "results/cluster_tuned.jsonl")
    parser.add_argument("--search", action="store_true",
                        help="label-free (t, lr) search by partition stability only")
    parser.add_argument("--table", action="store_true",
                        help="print the paper's Table 1 next to the recorded rows (markdown)")
    parser.add_argument("--search-tau", action="store_true",
                        help="the same search over tau at the (t, lr) of TUNED (or defaults)")
    parser.add_argument("--variant", choices=("reference", "fixed"), default="reference",
                        help="fixed: the bug-free loop, honest protocol only (its oracle epoch "
                             "is recorded as 'oracle', for information), with the (t, lr) of "
                             "TUNED_FIXED; records to results/cluster_fixed.jsonl")
    args = parser.parse_args(argv)
    from graphkit.data import load
    global OUT
    fixed = args.variant == "fixed"
    if fixed and args.search_tau:
        parser.error("--search-tau searches the released loop's tau; with --variant fixed use "
                     "--search")
    if args.tuned:
        OUT = RESULTS / "cluster_tuned.jsonl"
    if fixed:
        OUT = RESULTS / "cluster_fixed.jsonl"
    if args.out:
        OUT = args.out
    if args.table:
        print(side_by_side(OUT))
        return
    seeds = list(range(2 if args.quick else args.seeds))
    for name in args.datasets:
        data = load(name)
        k = int(data.y.max()) + 1
        params = {**hyperparams(name), **(TUNED.get(name, {}) if args.tuned else {})}
        if fixed:
            params.update(variant="fixed", **TUNED_FIXED.get(name, {}))
        if args.epochs:
            params["epochs"] = args.epochs
        if args.search or args.search_tau:
            if fixed:
                grid, base = SEARCH_GRID_FIXED, {"variant": "fixed"}
            elif args.search_tau:
                grid, base = SEARCH_GRID_TAU, TUNED.get(name, {})
            else:
                grid, base = SEARCH_GRID, {}
            print(f"[cluster] {name}: chosen {search(name, data, k, grid, base)}")
            continue
        if args.baselines:
            baselines(name, data, k, seeds)
        for seed in sorted(set(seeds) - done_seeds(OUT, method="ccgc", dataset=name,
                                                    protocol="oracle" if fixed else "paper")):
            res = run_seed(data, k, seed, "paper", **params)
            device = res["model"].embedding_.device
            for protocol, view in (("oracle" if fixed else "paper", "paper"),
                                   ("honest", "honest"), ("honest-last", "last")):
                m = {key: 100 * v for key, v in res["views"][view].items()}
                append_record(OUT, make_record(
                    "ccgc", name, protocol, seed, m, res["seconds"], device,
                    hyperparams=params, best_epoch=res["best_epoch"],
                    cpu_seconds=res["cpu_seconds"], threads=os.environ.get("OMP_NUM_THREADS"),
                    paper_acc=PAPER.get(name)))
            print(f"[cluster] ccgc {name} seed {seed}: " + "  ".join(
                f"{v} acc {100 * res['views'][v]['acc']:.2f}" for v in res["views"])
                + f"  ({res['seconds']:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
