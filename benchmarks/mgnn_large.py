"""MGNN on large graphs: chunked motif matrices, precomputed propagation, node mini-batches.

    OMP_NUM_THREADS=1 nice python -m benchmarks.mgnn_large --nodes 100000 1000000

Each size runs in its own subprocess (so ``ru_maxrss`` belongs to that size alone) on the
synthetic 16-block SBM (``graphkit.data.load("sbm")``, average degree ~10, 32 features, labels =
blocks). Per stage it records wall time and the process's peak resident memory so far
(``peak_rss_gb`` after generation, motif matrices + precompute, training); the motif and
propagation times come from :func:`graphkit.nn.mgnn_precomputed.precompute_features`, which builds
one motif matrix at a time in row chunks and frees it after use. Training: a one-layer
:class:`~graphkit.nn.PrecomputedMGNN` (hidden 16, d' 6), Adam, mini-batches of node indices,
random 10% train / 10% validation / 80% test split, test accuracy at the best validation epoch.

``--motif-memory CHUNK ...`` adds, per size, one motif-matrices-only child per chunk size
(``none`` = unchunked) to show what chunking does to peak memory (``--skip-train`` runs only
those). Records: ``benchmarks/results/mgnn_large.jsonl``.
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

OUT = RESULTS / "mgnn_large.jsonl"


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB -> GiB


def _rss_gb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 ** 3


def run_train(args: argparse.Namespace, n: int) -> dict:
    import torch

    from graphkit.data import load
    from graphkit.nn import PrecomputedMGNN, fit_precomputed, precompute_features
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    stages: dict[str, dict] = {"imports": {"seconds": 0.0, "peak_rss_gb": _peak_gb()}}
    start = time.perf_counter()
    data = load("sbm", num_nodes=n, num_clusters=args.clusters, seed=args.seed,
                avg_degree=args.avg_degree, num_features=args.features)
    stages["generate"] = {"seconds": time.perf_counter() - start, "peak_rss_gb": _peak_gb()}
    start = time.perf_counter()
    feats = precompute_features(data.x, data.edge_index, args.motifs, pairs=args.pairs,
                                chunk_size=args.chunk_size)
    total = time.perf_counter() - start
    stages["motif_matrices"] = {"seconds": feats.seconds["motifs"]}
    blocks_gb = (feats.blocks.numel() + feats.ones.numel()) * 4 / 1024 ** 3
    stages["precompute"] = {"seconds": total - feats.seconds["motifs"],
                            "peak_rss_gb": _peak_gb(), "blocks_gb": blocks_gb,
                            "distinct_motif_blocks": int(feats.blocks.size(1) - 1)}
    edge_index, x = data.edge_index, data.x
    edges = int(edge_index.size(1)) // 2
    del data.edge_index, data.x, edge_index, x  # training needs the blocks and labels only
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
    n_tr, n_va = int(0.1 * n), int(0.1 * n)
    train, val, test = perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]
    torch.manual_seed(args.seed)
    model = PrecomputedMGNN(args.features, 16, args.clusters, args.motifs, pairs=args.pairs,
                            dropout=0.5, input_dropout=0.0)
    res = fit_precomputed(model, feats, data.y, train, val, test, epochs=args.epochs,
                          batch_size=args.batch_size, lr=0.01, weight_decay=5e-4,
                          seed=args.seed, device=args.device)
    stages["train"] = {"seconds": res["seconds"], "peak_rss_gb": _peak_gb(),
                       "epoch_seconds_mean": sum(res["epoch_seconds"]) / len(res["epoch_seconds"]),
                       "epoch_seconds": res["epoch_seconds"]}
    return {"nodes": n, "edges": edges, "stages": stages, "rss_end_gb": _rss_gb(),
            "acc": {k: res[k] for k in ("train_acc", "val_acc", "test_acc")},
            "best_epoch": res["best_epoch"], "device": str(feats.blocks.device)}


def run_motifs_only(args: argparse.Namespace, n: int, chunk: int | None) -> dict:
    from graphkit.data import load
    from graphkit.data.motifs import motif_csr
    data = load("sbm", num_nodes=n, num_clusters=args.clusters, seed=args.seed,
                avg_degree=args.avg_degree, num_features=args.features)
    base = _peak_gb()
    start = time.perf_counter()
    mats = motif_csr(data.edge_index, n, args.motifs, pairs=args.pairs, chunk_size=chunk)
    seconds = time.perf_counter() - start
    return {"nodes": n, "chunk_size": chunk, "seconds": seconds, "peak_rss_before_gb": base,
            "peak_rss_gb": _peak_gb(), "nnz": {k: int(m.nnz) for k, m in mats.items()}}


def _child(args: argparse.Namespace, extra: list[str]) -> dict | None:
    cmd = [sys.executable, "-m", "benchmarks.mgnn_large", *extra,
           "--motifs", *args.motifs, "--pairs", args.pairs, "--features", str(args.features),
           "--avg-degree", str(args.avg_degree), "--clusters", str(args.clusters),
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--seed", str(args.seed), "--device", args.device,
           "--chunk-size", str(args.chunk_size)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"[mgnn_large] {' '.join(extra)} failed after {time.perf_counter() - start:.0f} s "
              f"(rc {proc.returncode}): {proc.stderr.strip()[-800:]}", flush=True)
        return None
    return json.loads(lines[-1][7:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--motifs", nargs="+", default=["M4", "M13"])
    parser.add_argument("--pairs", default="all")
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--avg-degree", type=float, default=10.0)
    parser.add_argument("--clusters", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--motif-memory", nargs="*", default=[])
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-motifs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-chunk", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print("RESULT " + json.dumps(run_train(args, args.child)), flush=True)
        return
    if args.child_motifs is not None:
        chunk = None if args.child_chunk in (None, "none") else int(args.child_chunk)
        print("RESULT " + json.dumps(run_motifs_only(args, args.child_motifs, chunk)),
              flush=True)
        return
    threads = os.environ.get("OMP_NUM_THREADS")
    config = dict(motifs=args.motifs, pairs=args.pairs, features=args.features,
                  avg_degree=args.avg_degree, clusters=args.clusters,
                  chunk_size=args.chunk_size, epochs=args.epochs, batch_size=args.batch_size,
                  hidden=16, compress=6, split="random 10/10/80", threads=threads)
    for n in args.nodes:
        if args.motif_memory:
            for chunk in args.motif_memory:
                res = _child(args, ["--child-motifs", str(n), "--child-chunk", chunk])
                if res is None:
                    continue
                print(f"[mgnn_large] motifs only n={n} chunk={chunk}: {res['seconds']:.1f} s, "
                      f"peak RSS {res['peak_rss_gb']:.2f} GiB "
                      f"(before {res['peak_rss_before_gb']:.2f})", flush=True)
                append_record(OUT, make_record(
                    "motif_csr", f"sbm-{n}", f"motif-memory-chunk-{chunk}", args.seed,
                    {"peak_rss_gb": res["peak_rss_gb"],
                     "peak_rss_before_gb": res["peak_rss_before_gb"],
                     "seconds": res["seconds"]}, res["seconds"], "cpu", nodes=n,
                    nnz=res["nnz"], **{**config, "chunk_size": res["chunk_size"]}))
        if args.skip_train:
            continue
        res = _child(args, ["--child", str(n)])
        if res is None:
            continue
        st = res["stages"]
        metrics = {"test_acc": res["acc"]["test_acc"], "val_acc": res["acc"]["val_acc"],
                   "motif_s": st["motif_matrices"]["seconds"],
                   "precompute_s": st["precompute"]["seconds"],
                   "epoch_s": st["train"]["epoch_seconds_mean"],
                   "peak_rss_gb": st["train"]["peak_rss_gb"],
                   "peak_rss_precompute_gb": st["precompute"]["peak_rss_gb"]}
        total = sum(s["seconds"] for s in st.values())
        append_record(OUT, make_record(
            "mgnn-precomputed", f"sbm-{n}", "large-graph", args.seed, metrics, total,
            res["device"], nodes=n, edges=res["edges"], stages=st, best_epoch=res["best_epoch"],
            **config))
        print(f"[mgnn_large] n={n} ({res['edges']} undirected edges): generate "
              f"{st['generate']['seconds']:.1f} s, motif matrices {metrics['motif_s']:.1f} s, "
              f"precompute {metrics['precompute_s']:.1f} s (peak RSS "
              f"{metrics['peak_rss_precompute_gb']:.2f} GiB), epoch {metrics['epoch_s']:.2f} s, "
              f"peak RSS {metrics['peak_rss_gb']:.2f} GiB, test acc {metrics['test_acc']:.4f}",
              flush=True)


if __name__ == "__main__":
    main()
