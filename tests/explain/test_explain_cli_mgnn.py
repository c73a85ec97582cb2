"""``graphkit explain`` end to end, and NSEG masks reaching MGNN's motif messages."""

from __future__ import annotations

import json

import pytest
import torch
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

from graphkit.explain import NSEG, build_model


def test_nseg_masks_reach_mgnn_motif_messages(monkeypatch):
    pytest.importorskip("graphkit.nn.mgnn")
    import graphkit.nn.motif_conv as motif_conv
    soft_calls, compute = [], motif_conv.compute_motifs

    def spy(*args, edge_weight=None, **kwargs):
        soft_calls.append(edge_weight is not None and edge_weight.requires_grad)
        return compute(*args, edge_weight=edge_weight, **kwargs)

    torch.manual_seed(0)
    # two triangles joined by an edge: every edge lies on a motif
    ei = torch.tensor([[0, 1, 1, 2, 2, 0, 3, 4, 4, 5, 5, 3, 2, 3],
                       [1, 0, 2, 1, 0, 2, 4, 3, 5, 4, 3, 5, 3, 2]])
    x = torch.randn(6, 4)
    model = build_model("mgnn", 4, 2).eval()
    mask = torch.nn.Parameter(torch.full((ei.size(1),), 0.7))
    set_masks(model, mask, ei, apply_sigmoid=False)
    try:
        out = model(x, ei)
        out[0].softmax(-1).max().backward()
    finally:
        clear_masks(model)
    assert mask.grad is not None and float(mask.grad.abs().sum()) > 0
    monkeypatch.setattr(motif_conv, "compute_motifs", spy)
    res = NSEG(epochs=5, epsilon=0.0).explain(model, x, ei, index=[0, 4])
    # every mask-carrying forward rebuilds the motif matrices from the soft edge weights, with a
    # gradient path back to the mask (not only the adjacency messages PyG masks itself)
    assert soft_calls and sum(soft_calls) >= 5
    monkeypatch.setattr(motif_conv, "compute_motifs", compute)
    start = NSEG(epochs=1, lr=0.0, epsilon=0.0).explain(model, x, ei, index=[0, 4])
    assert not torch.allclose(res.edge_mask, start.edge_mask)


def test_cli_explain_json_resume_plot(tmp_path, capsys):
    from graphkit.cli import main
    out, png = tmp_path / "r.jsonl", tmp_path / "p.png"
    argv = ["explain", "--dataset", "tree-cycles", "--model", "gin", "--nodes", "4",
            "--epochs", "5", "--train-epochs", "20", "--out", str(out), "--resume",
            "--plot", str(png), "--json"]
    assert main(argv) in (0, None)
    rec = json.loads(capsys.readouterr().out)
    for key in ("dataset", "explainer", "pn", "ps", "fns", "auc", "seconds_per_instance",
                "instances"):
        assert key in rec
    assert rec["instances"] == 4 and png.is_file()
    assert len(out.read_text().splitlines()) == 1
    assert main(argv) in (0, None)
    assert json.loads(capsys.readouterr().out)["skipped"] is True
    assert len(out.read_text().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["explain", "--dataset", "ba-shapes", "--explainer", "bogus"])
    assert exc.value.code == 2
