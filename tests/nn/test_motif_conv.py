"""MotifConv's masked motif product: one CSR SpMM, differentiable in the motif weights."""

from __future__ import annotations

import pytest
import torch

from benchmarks.explain_mgnn_cost import scatter_product as scatter_oracle
from graphkit.errors import GraphError
from graphkit.nn import MotifConv, compute_motifs
from graphkit.nn.motif_conv import PatternCache, SparseOperator


def random_graph(n: int, m: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=gen)
    return ei[:, ei[0] != ei[1]]


@pytest.mark.parametrize("pairs", ["all", "edges", "reference"])
@pytest.mark.parametrize("seed", [0, 1])
def test_masked_product_and_gradients_match_scatter(pairs, seed):
    n = 40
    ei = random_graph(n, 200, seed)
    w = torch.rand(ei.size(1), dtype=torch.double, requires_grad=True)
    h0 = torch.randn(n, 5, dtype=torch.double, requires_grad=True)
    mats = compute_motifs(ei, n, [f"M{k}" for k in range(1, 14)], edge_weight=w, pairs=pairs)
    grad_out = torch.randn(13, n, 5, dtype=torch.double)
    conv = MotifConv(3, 5, pairs=pairs)
    expected = scatter_oracle(mats, h0)
    got = conv.motif_propagate(mats, h0)
    torch.testing.assert_close(got, expected)
    g_exp = torch.autograd.grad((expected * grad_out).sum(), [w, h0], retain_graph=True)
    g_got = torch.autograd.grad((got * grad_out).sum(), [w, h0])
    for a, b in zip(g_got, g_exp, strict=True):
        torch.testing.assert_close(a, b)


def test_masked_product_gradcheck():
    n = 12
    ei = random_graph(n, 40, 3)
    conv = MotifConv(3, 4, motifs=["M4", "M8", "M13"])
    w = torch.rand(ei.size(1), dtype=torch.double, requires_grad=True)
    h0 = torch.randn(n, 4, dtype=torch.double, requires_grad=True)

    def f(w_, h_):
        return conv.motif_propagate(compute_motifs(ei, n, conv.motifs, edge_weight=w_), h_)
    assert torch.autograd.gradcheck(f, (w, h0))


def test_pattern_cache_hits_same_pattern_and_misses_a_changed_one():
    cache = PatternCache(size=2)
    a = torch.tensor([[0, 1, 2], [1, 2, 0]])
    b = torch.tensor([[0, 2], [2, 1]])
    first = cache.get([a, b], 3)
    assert cache.get([a.clone(), b.clone()], 3) is first
    changed = a.clone()
    changed[1, 0] = 2
    assert cache.get([changed, b], 3) is not first
    assert first.shape == (6, 3)


def test_matmul_values_rejects_wrong_value_count():
    op = SparseOperator(torch.tensor([[0, 1], [1, 0]]), torch.ones(2), (2, 2))
    with pytest.raises(GraphError, match="values"):
        op.matmul_values(torch.ones(3), torch.ones(2, 1))


def test_empty_motif_matrices_give_zeros_and_gradient():
    conv = MotifConv(3, 4, motifs=["M1", "M4"])
    h0 = torch.randn(5, 4, requires_grad=True)
    w = torch.ones(0, requires_grad=True)
    empty = [(torch.empty(2, 0, dtype=torch.long), w * 1.0) for _ in conv.motifs]
    out = conv.motif_propagate(empty, h0)
    assert out.shape == (2, 5, 4) and not out.any()
    out.sum().backward()
    assert h0.grad is not None and not h0.grad.any()
