"""The reference-code motif matrices (graphkit.data.motifs_reference) against a literal per-centre
re-implementation of the MGNN reference loop, and the undirected closed forms of the paper notes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphkit.data.motifs import OPEN, motif_adjacency
from graphkit.data.motifs_reference import reference_motif_adjacency, reference_open_motifs


def loop_reference(adj: np.ndarray, name: str) -> np.ndarray:
    """The reference code's open-motif loop over centre nodes, written plainly (dense)."""
    n = adj.shape[0]
    bi_adj = adj * adj.T
    w = np.zeros((n, n))
    for c in range(n):
        out = set(np.nonzero(adj[c] + np.eye(n)[c])[0])  # with the self-loop
        inn = set(np.nonzero(adj[:, c])[0])
        bi = set(np.nonzero(bi_adj[c])[0])
        pure_out, pure_in = out - bi, inn - bi
        parts = {"M8": [(out, len(out) - 1)],
                 "M9": [(bi, len(out) + len(inn)), (pure_out, len(inn)), (pure_in, len(out))],
                 "M10": [(inn, len(inn) - 1)],
                 "M11": [(bi, len(out) - 1), (pure_out, len(bi))],
                 "M12": [(bi, len(inn) - 1), (pure_in, len(bi))],
                 "M13": [(bi, len(bi) - 1)]}[name]
        for members, count in parts:
            for r in members:
                w[r, c] += count
    return w + w.T


def dense(index: torch.Tensor, weight: torch.Tensor, n: int) -> np.ndarray:
    out = np.zeros((n, n))
    np.add.at(out, (index[0].numpy(), index[1].numpy()), weight.double().numpy())
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("directed", [True, False])
def test_open_motifs_match_reference_loop(seed: int, directed: bool) -> None:
    rng = np.random.default_rng(seed)
    n = 9
    adj = (rng.random((n, n)) < 0.3).astype(float)
    np.fill_diagonal(adj, 0)
    if not directed:
        adj = np.maximum(adj, adj.T)
    edge_index = torch.tensor(np.array(np.nonzero(adj)), dtype=torch.long)
    got = reference_open_motifs(edge_index, n)
    for name in OPEN:
        np.testing.assert_allclose(dense(*got[name], n), loop_reference(adj, name), err_msg=name)


def test_undirected_closed_forms_and_closed_motifs() -> None:
    # A triangle 0-1-2 with a pendant 3 on node 2 (undirected).
    pairs = [(0, 1), (1, 2), (0, 2), (2, 3)]
    edge_index = torch.tensor([[a for a, b in pairs] + [b for a, b in pairs],
                               [b for a, b in pairs] + [a for a, b in pairs]])
    deg = np.array([2, 2, 3, 1], dtype=float)
    adj = np.zeros((4, 4))
    adj[edge_index[0], edge_index[1]] = 1
    res = reference_motif_adjacency(edge_index, 4)
    m8 = dense(*res["M8"], 4)
    np.testing.assert_allclose(m8, adj * (deg[:, None] + deg[None, :]) + np.diag(2 * deg))
    m9 = dense(*res["M9"], 4)
    np.testing.assert_allclose(m9, adj * (2 * (deg[:, None] + deg[None, :]) + 2)
                               + np.diag(2 * deg))
    m10 = dense(*res["M10"], 4)
    np.testing.assert_allclose(m10, adj * (deg[:, None] + deg[None, :] - 2))
    for name in ("M1", "M4", "M7"):  # closed motifs: identical to motif_adjacency
        a, b = res[name], motif_adjacency(edge_index, 4, name)[name]
        np.testing.assert_allclose(dense(*a, 4), dense(*b, 4))
    assert res.names == tuple(f"M{k}" for k in range(1, 14))


def test_weights_are_differentiable() -> None:
    edge_index = torch.tensor([[0, 1, 1, 2, 0, 2], [1, 0, 2, 1, 2, 0]])
    weight = torch.full((6,), 0.7, requires_grad=True)
    res = reference_open_motifs(edge_index, 3, edge_weight=weight)
    sum(v.sum() for _, v in res.values()).backward()
    assert weight.grad is not None and torch.all(weight.grad != 0)
    with torch.no_grad():  # unit weights give the unweighted result
        ones = reference_open_motifs(edge_index, 3, edge_weight=torch.ones(6))
        plain = reference_open_motifs(edge_index, 3)
    for name in OPEN:
        np.testing.assert_allclose(dense(*ones[name], 3), dense(*plain[name], 3))
