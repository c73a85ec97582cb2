"""PrecomputedMGNN: same logits as a one-layer MGNN with the same weights, mini-batch training."""

from __future__ import annotations

import pytest
import torch

from graphkit.data import load
from graphkit.errors import GraphError
from graphkit.nn import MGNN, PrecomputedMGNN, fit_precomputed, precompute_features
from graphkit.nn.mgnn_precomputed import predict


@pytest.fixture(scope="module")
def sbm():
    return load("sbm", num_nodes=400, num_clusters=4, seed=1, num_features=8, p_in=0.9)


@pytest.mark.parametrize("motifs,pairs,negative", [("all", "all", True),
                                                   (["M4", "M13"], "edges", False)])
def test_equals_full_mgnn_forward(sbm, motifs, pairs, negative):
    torch.manual_seed(0)
    full = MGNN(8, 8, 4, 1, motifs=motifs, pairs=pairs, negative=negative).eval()
    with torch.no_grad():  # non-zero biases so that the M̂_k 1 bᵀ term is exercised
        for p in full.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ref = full(sbm.x, sbm.edge_index)
    feats = precompute_features(sbm.x, sbm.edge_index, motifs, pairs=pairs, negative=negative,
                                chunk_size=64)
    model = PrecomputedMGNN.from_mgnn(full).eval()
    assert torch.allclose(predict(model, feats, batch_size=100), ref, atol=1e-5, rtol=1e-4)
    idx = torch.tensor([5, 3, 399])
    assert torch.allclose(model(feats, idx), ref[idx], atol=1e-5, rtol=1e-4)
    # Same parameter names: the state dict also loads the other way.
    back = MGNN(8, 8, 4, 1, motifs=motifs, pairs=pairs, negative=negative).eval()
    back.load_state_dict(model.state_dict())
    assert torch.allclose(back(sbm.x, sbm.edge_index), ref, atol=1e-6)


def test_equals_full_mgnn_on_directed_graph():
    gen = torch.Generator().manual_seed(2)
    ei = torch.randint(0, 50, (2, 260), generator=gen)
    x = torch.randn(50, 5, generator=gen)
    torch.manual_seed(1)
    full = MGNN(5, 6, 3, 1).eval()
    feats = precompute_features(x, ei, chunk_size=9)
    assert feats.slots.numel() == 13 and feats.blocks.shape[1] <= 14
    out = PrecomputedMGNN.from_mgnn(full).eval()(feats)
    assert torch.allclose(out, full(x, ei), atol=1e-5, rtol=1e-4)


def test_fit_minibatches_seeded_and_learns(sbm):
    feats = precompute_features(sbm.x, sbm.edge_index, ["M4", "M13"])
    perm = torch.randperm(400, generator=torch.Generator().manual_seed(0))
    train, val, test = perm[:200], perm[200:300], perm[300:]
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # same init; fit's seed fixes shuffling and dropout
        model = PrecomputedMGNN(8, 8, 4, ["M4", "M13"])
        res = fit_precomputed(model, feats, sbm.y, train, val, test, epochs=15, batch_size=32,
                              seed=7, device="cpu")
        runs.append((res, model.state_dict()))
    (res, state), (res2, state2) = runs
    assert all(torch.equal(state[k], state2[k]) for k in state)
    assert res == {**res2, "seconds": res["seconds"], "epoch_seconds": res["epoch_seconds"]}
    assert len(res["epoch_seconds"]) == 15
    assert res["test_acc"] > 0.6  # 4 classes: chance is 0.25


def test_gradients_reach_every_parameter(sbm):
    feats = precompute_features(sbm.x, sbm.edge_index, "all", chunk_size=None)
    model = PrecomputedMGNN(8, 8, 4)
    model(feats, torch.arange(0, 400, 3)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bad_inputs(sbm):
    feats = precompute_features(sbm.x, sbm.edge_index, ["M4"])
    with pytest.raises(GraphError, match="precomputed for"):
        PrecomputedMGNN(8, 8, 4, ["M13"])(feats)
    with pytest.raises(GraphError, match="input channels"):
        PrecomputedMGNN(9, 8, 4, ["M4"])(feats)
    with pytest.raises(GraphError, match="num_layers=1"):
        PrecomputedMGNN.from_mgnn(MGNN(8, 8, 4, 2))
    with pytest.raises(GraphError, match="chunk_size"):
        precompute_features(sbm.x, sbm.edge_index, ["M4"], chunk_size=0)
    with pytest.raises(GraphError, match="train"):
        fit_precomputed(PrecomputedMGNN(8, 8, 4, ["M4"]), feats, sbm.y,
                        torch.zeros(400, dtype=torch.bool), torch.arange(10))
