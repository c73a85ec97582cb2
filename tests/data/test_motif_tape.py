"""The recorded-pattern (tape) backend of the differentiable motif matrices."""

from __future__ import annotations

import pytest
import torch

from graphkit.data import motifs as motif_module
from graphkit.data.motifs import motif_adjacency


def _graph(seed: int, n: int = 25, m: int = 120) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (2, m), generator=gen)


def _matrices_and_grad(ei: torch.Tensor, w: torch.Tensor, pairs: str, chunk: int | None):
    w = w.clone().requires_grad_(True)
    res = motif_adjacency(ei, 25, edge_weight=w, pairs=pairs, chunk_size=chunk)
    total = sum((weight * (k + 1)).sum() for k, (_, weight) in enumerate(res.matrices.values()))
    total.backward()
    return res, w.grad


@pytest.mark.parametrize("pairs", ["all", "edges"])
@pytest.mark.parametrize("chunk", [None, 7])
def test_replay_equals_a_fresh_recording(pairs, chunk):
    """The second call on the same edges replays the first call's index maps; values and
    gradients must equal a recording from scratch with the new weights."""
    ei = _graph(1)
    gen = torch.Generator().manual_seed(2)
    w1 = torch.rand(ei.size(1), generator=gen, dtype=torch.float64) + 0.1
    w2 = torch.rand(ei.size(1), generator=gen, dtype=torch.float64)
    w2[::5] = 0.0  # exact zeros: entries drop out of the result as on the scipy path
    motif_module._TAPES.clear()
    _matrices_and_grad(ei, w1, pairs, chunk)            # records
    replayed, g_replayed = _matrices_and_grad(ei, w2, pairs, chunk)
    motif_module._TAPES.clear()
    fresh, g_fresh = _matrices_and_grad(ei, w2, pairs, chunk)
    for name, (index, weight) in fresh.items():
        assert torch.equal(replayed[name][0], index)
        assert torch.allclose(replayed[name][1], weight, rtol=1e-12, atol=0)
    assert torch.allclose(g_replayed, g_fresh, rtol=1e-12, atol=1e-15)
    hard = motif_adjacency(ei, 25, edge_weight=w2, pairs=pairs)  # scipy path, no gradient
    for name, (index, weight) in hard.items():
        assert torch.equal(fresh[name][0], index)
        assert torch.allclose(fresh[name][1].detach(), weight, rtol=1e-12)


def test_other_edges_are_not_replayed():
    w = torch.ones(120, dtype=torch.float64, requires_grad=True)
    motif_module._TAPES.clear()
    motif_adjacency(_graph(1), 25, edge_weight=w)
    other = motif_adjacency(_graph(2), 25, edge_weight=w)
    want = motif_adjacency(_graph(2), 25, edge_weight=w.detach())
    for name, (index, weight) in want.items():
        assert torch.equal(other[name][0], index)
        assert torch.allclose(other[name][1].detach(), weight.to(torch.float64))
