"""What NSEG costs on the benchmark MGNN, with and without replaying the motif pattern.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.explain_mgnn_cost [--datasets tree-cycles ba-shapes]
        [--nodes 40 5] [--epochs 20 5]

For each dataset it trains the benchmark's node MGNN (seed 0) and times NSEG (the benchmark's
settings) on ``nodes`` evenly spaced motif nodes for ``epochs`` epochs three ways: as shipped
(the tape cache of :mod:`graphkit.data.motif_tape` replays the pattern of the motif formulas, and
the masked motif product ``M̂_k H0`` is one CSR SpMM whose value gradient is a sampled product);
with the tape cache disabled (every masked forward records the pattern again); and with the
masked product as the earlier gather / multiply / ``index_add`` over every motif entry
(``scatter``, defined here as the baseline). It also reports the size of the exact batch (6-hop
subgraphs plus 7-hop context), which is what makes BA-Shapes expensive. Records go to
``benchmarks/results/explain_mgnn_cost.jsonl``.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import torch

from benchmarks.harness import RESULTS, append_record, make_record


def scatter_product(motif_adj, h0: torch.Tensor) -> torch.Tensor:
    """The masked motif product before the CSR path: gather ``H0`` at every motif entry,
    multiply by its weight, ``index_add`` into the rows (an ``[nnz, d]`` intermediate)."""
    n, k = h0.size(0), len(motif_adj)
    rows = torch.cat([index[0] + i * n for i, (index, _) in enumerate(motif_adj)])
    cols = torch.cat([index[1] for index, _ in motif_adj])
    weights = torch.cat([weight.to(h0.dtype) for _, weight in motif_adj])
    out = h0.new_zeros(k * n, h0.size(1)).index_add(0, rows, h0[cols] * weights.unsqueeze(-1))
    return out.view(k, n, -1)


@contextmanager
def masked_product(kind: str):
    """Run with the shipped (``csr``) or the earlier (``scatter``) masked motif product."""
    from graphkit.nn import MotifConv
    shipped = MotifConv.motif_propagate

    def patched(self, motif_adj, h0):
        if isinstance(motif_adj, (list, tuple)) and any(w.requires_grad for _, w in motif_adj):
            return scatter_product(motif_adj, h0)
        return shipped(self, motif_adj, h0)
    if kind == "scatter":
        MotifConv.motif_propagate = patched
    try:
        yield
    finally:
        MotifConv.motif_propagate = shipped


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
        for label, cache, product in (("replayed", size, "csr"),
                                      ("recorded_every_call", 0, "csr"),
                                      ("scatter", size, "scatter")):
            motif_module._TAPES.clear()
            motif_module._TAPES.size = cache
            with masked_product(product):
                start = time.perf_counter()
                NSEG(epochs=epochs, seed=0, **cfg).explain(model, data.x, data.edge_index,
                                                           index=idx)
                out[f"seconds_{label}"] = time.perf_counter() - start
    finally:
        motif_module._TAPES.size = size
        motif_module._TAPES.clear()
    out["speedup"] = out["seconds_recorded_every_call"] / out["seconds_replayed"]
    out["speedup_csr"] = out["seconds_scatter"] / out["seconds_replayed"]
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
