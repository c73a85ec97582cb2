"""What NSEG costs on the benchmark MGNN, with and without replaying the motif pattern.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.explain_mgnn_cost [--datasets tree-cycles ba-shapes]
        [--nodes 40 5] [--epochs 20 5]

For each dataset it trains the benchmark's node MGNN (seed 0) and times NSEG (the benchmark's
settings) on ``nodes`` evenly spaced motif nodes for ``epochs`` epochs twice: with the tape cache
of :mod:`graphkit.data.motif_tape` (the pattern of the motif formulas recorded once, then
replayed) and with the cache disabled (every masked forward records the pattern again). It also
reports the size of the exact batch (6-hop subgraphs plus 7-hop context), which is what makes
BA-Shapes expensive. Records go to ``benchmarks/results/explain_mgnn_cost.jsonl``.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.harness import RESULTS, append_record, make_record


def measure(dataset: str, nodes: int, epochs: int) -> dict[str, float]:
    from graphkit.commands.explain import _targets, nseg_settings, train_model
    from graphkit.data import load
    from graphkit.data import motifs as motif_module
    from graphkit.explain import NSEG, build_batch

    data = load(dataset)
    model = train_model(dataset, "mgnn", seed=0, device="cpu").eval()
    idx = _targets(data, nodes)
    sub = build_batch(model, data.x, data.edge_index, idx, task_level="node")
    cfg = nseg_settings(dataset, "mgnn")
    cfg.pop("k")
    out = {"targets": int(idx.numel()), "epochs": epochs,
           "batch_nodes": int(sub.x.size(0) + sub.ctx_x.size(0)),
           "batch_edges": int(sub.edge_index.size(1) + sub.ctx_edge_index.size(1))}
    size = motif_module._TAPES.size
    try:
        for label, cache in (("replayed", size), ("recorded_every_call", 0)):
            motif_module._TAPES.clear()
            motif_module._TAPES.size = cache
            start = time.perf_counter()
            NSEG(epochs=epochs, seed=0, **cfg).explain(model, data.x, data.edge_index, index=idx)
            out[f"seconds_{label}"] = time.perf_counter() - start
    finally:
        motif_module._TAPES.size = size
        motif_module._TAPES.clear()
    out["speedup"] = out["seconds_recorded_every_call"] / out["seconds_replayed"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", default=["tree-cycles", "ba-shapes"])
    parser.add_argument("--nodes", nargs="*", type=int, default=[40, 5])
    parser.add_argument("--epochs", nargs="*", type=int, default=[20, 5])
    args = parser.parse_args(argv)
    for dataset, nodes, epochs in zip(args.datasets, args.nodes, args.epochs, strict=True):
        start = time.perf_counter()
        metrics = measure(dataset, nodes, epochs)
        print(f"[mgnn-cost] {dataset} {metrics}", flush=True)
        append_record(RESULTS / "explain_mgnn_cost.jsonl", make_record(
            "nseg-mgnn-cost", dataset, f"{nodes} motif nodes, {epochs} epochs, benchmark mgnn",
            0, metrics, time.perf_counter() - start, "cpu"))


if __name__ == "__main__":
    main()
