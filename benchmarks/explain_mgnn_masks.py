"""Do NSEG's edge masks reach the benchmark MGNN's motif messages, and does the explained
computation subgraph reproduce the full-graph prediction?

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.explain_mgnn_masks [--datasets ...] [--seeds 0 1 2]
        [--nodes 20]

For every (dataset, seed) it trains the benchmark's node MGNN exactly as ``benchmarks.explain``
does (:func:`graphkit.commands.explain.train_model`), packs the benchmark's targets
(``--nodes`` evenly spaced motif nodes) into NSEG's subgraph batch (the MGNN's declared reach:
6-hop subgraphs plus the induced 7-hop context, see :mod:`graphkit.explain._batch`), and
reports

- ``pred_agree`` / ``max_logit_diff``: the model on the unmasked batch against the full graph;
- ``motif_grad_share``: ||g - g_base|| / ||g|| where g is the gradient of the targets' predicted
  log-probabilities w.r.t. an all-ones edge mask and g_base the same gradient with the motif
  matrices' dependence on the mask cut (``edge_weight`` detached before
  :func:`graphkit.nn.motif_conv.compute_motifs`): the part of the mask's gradient that flows
  through the motif messages;
- ``motif_calls_with_grad``: how many ``compute_motifs`` calls during one NSEG run (10 epochs,
  the benchmark's settings) received a mask that requires grad.

Records go to ``benchmarks/results/explain_mgnn_masks.jsonl``.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.harness import RESULTS, append_record, make_record


def check(dataset: str, seed: int, nodes: int) -> dict[str, float]:
    from torch_geometric.explain.algorithm.utils import clear_masks

    import graphkit.nn.motif_conv as mc
    from graphkit.commands.explain import _targets, nseg_settings, train_model
    from graphkit.data import load
    from graphkit.explain import NSEG
    from graphkit.explain._batch import build_batch, set_weight_masks

    data = load(dataset)
    model = train_model(dataset, "mgnn", seed=seed, device="cpu").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    idx = _targets(data, nodes)
    with torch.no_grad():
        full = model(data.x, data.edge_index)[idx]
    sub = build_batch(model, data.x, data.edge_index, idx, task_level="node")
    ones = torch.ones(sub.edge_index.size(1))
    x, ei, _, kw, rows = sub.replicate([sub.x], [ones])
    with torch.no_grad():
        part = model(x, ei, **kw)[rows[0]]
    pred = full.argmax(-1)

    def mask_grad(detach_motifs: bool) -> torch.Tensor:
        weight = torch.ones(ei.size(1), requires_grad=True)
        original = mc.compute_motifs

        def cut(*args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["edge_weight"] = kwargs["edge_weight"].detach()
            return original(*args, **kwargs)

        if detach_motifs:
            mc.compute_motifs = cut
        set_weight_masks(model, weight, ei)
        try:
            out = model(x, ei, **kw)[rows[0]]
            out.log_softmax(-1).gather(1, pred.view(-1, 1)).sum().backward()
        finally:
            clear_masks(model)
            mc.compute_motifs = original
        assert weight.grad is not None
        return weight.grad.clone()

    g, g_base = mask_grad(False), mask_grad(True)
    calls = {"grad": 0, "all": 0}
    original = mc.compute_motifs

    def count(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["all"] += 1
        weight = kwargs.get("edge_weight")
        calls["grad"] += int(weight is not None and weight.requires_grad)
        return original(*args, **kwargs)

    cfg = nseg_settings(dataset, "mgnn")
    cfg.pop("k")
    mc.compute_motifs = count
    try:
        NSEG(epochs=10, seed=seed, **cfg).explain(model, data.x, data.edge_index, index=idx)
    finally:
        mc.compute_motifs = original
    return {"pred_agree": float((part.argmax(-1) == pred).float().mean()),
            "max_logit_diff": float((part - full).abs().max()),
            "motif_grad_share": float((g - g_base).norm() / g.norm()),
            "motif_calls_with_grad": calls["grad"], "motif_calls": calls["all"],
            "targets": int(idx.numel()),
            "model_test_acc": float(model._graphkit_info["test_acc"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", default=["ba-shapes", "tree-cycles",
                                                          "tree-grid"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--nodes", type=int, default=20)
    args = parser.parse_args(argv)
    for dataset in args.datasets:
        for seed in args.seeds:
            start = time.perf_counter()
            metrics = check(dataset, seed, args.nodes)
            print(f"[mgnn-masks] {dataset} seed={seed} {metrics}", flush=True)
            append_record(RESULTS / "explain_mgnn_masks.jsonl", make_record(
                "nseg-mask-reach", dataset, f"{args.nodes} motif nodes, benchmark mgnn", seed,
                metrics, time.perf_counter() - start, "cpu"))


if __name__ == "__main__":
    main()
