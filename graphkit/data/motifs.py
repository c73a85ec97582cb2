"""Weighted motif adjacency matrices of Benson et al.'s 13 three-node motifs, and a PyG transform.

Benson, Gleich, Leskovec, "Higher-order organization of complex networks", Science 2016
(https://arxiv.org/abs/1612.08447); used by MGNN (Chen et al., "Motif Graph Neural Network",
https://arxiv.org/abs/2112.14900).

Definitions (see ``docs/mgnn.md``). ``A[i, j]`` is the weight of the directed edge ``i -> j``
(1 when unweighted); an undirected graph is a graph with both directions. ``B = A * A^T`` holds the
bidirectional pairs. An *instance* of motif ``k`` is a set of edges on three distinct nodes that is
isomorphic to motif ``k`` (the non-induced, "functional" count that the MGNN reference code uses for
M1-M7; extra edges between the three nodes are allowed). Its weight is the product of its edge
weights, so every matrix is a polynomial in the edge weights (this is what lets an explainer's soft
edge mask reach motif messages). ``W_k[i, j]`` sums the weights of the instances that contain both
``i`` and ``j`` (``pairs="all"``, Benson's definition) or, with ``pairs="edges"``, only those in
which ``i`` and ``j`` are joined by an edge of the instance (the MGNN reference code's choice for
the open motifs M8-M13; for M1-M7 both are the same).

Motifs: M1 3-cycle; M2 3-cycle with one reciprocated pair; M3 two reciprocated pairs and one
one-way edge; M4 all pairs reciprocated; M5 feed-forward loop; M6 a source pointing at a
reciprocated pair; M7 a reciprocated pair pointing at a sink; M8 out-wedge ``a <- c -> b``; M9 path
``a -> c -> b``; M10 in-wedge ``a -> c <- b``; M11 ``a <-> c -> b``; M12 ``a <-> c <- b``;
M13 ``a <-> c <-> b``.

Everything is computed with sparse matrix products over ``A``, ``A^T`` and ``B`` (scipy when no
gradient is needed, torch sparse tensors with autograd when ``edge_weight`` requires grad).
Self-loops are ignored (a motif needs three distinct nodes) and duplicate edges are merged
(maximum weight).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import coalesce

from graphkit.data import motif_sets as _motif_sets  # noqa: F401  (registers the planted set)
from graphkit.data.validate import check_edge_index
from graphkit.errors import GraphError

MOTIFS: tuple[str, ...] = tuple(f"M{k}" for k in range(1, 14))
CLOSED: tuple[str, ...] = MOTIFS[:7]
OPEN: tuple[str, ...] = MOTIFS[7:]
PAIRS = ("all", "edges")


def parse_motifs(motifs: str | int | Iterable[str | int]) -> tuple[str, ...]:
    """Normalize a motif selection to names ``"M1"``..``"M13"`` in the given order.

    Args:
        motifs: ``"all"``, ``"closed"`` (M1-M7), ``"open"`` (M8-M13), one name or number, or an
            iterable of names (``"M4"``, ``"m4"``, ``"4"``) or numbers 1-13.
    """
    if isinstance(motifs, str) and motifs.lower() in ("all", "closed", "open"):
        return {"all": MOTIFS, "closed": CLOSED, "open": OPEN}[motifs.lower()]
    items = [motifs] if isinstance(motifs, (str, int)) else list(motifs)
    out: list[str] = []
    for item in items:
        text = str(item).strip().upper()
        text = text[1:] if text.startswith("M") else text
        if isinstance(item, bool) or not text.isdigit() or not 1 <= int(text) <= 13:
            raise GraphError(f"motifs: expected 'all', 'closed', 'open' or motif names M1..M13 / "
                             f"numbers 1..13, got {item!r}")
        name = f"M{int(text)}"
        if name not in out:
            out.append(name)
    if not out:
        raise GraphError("motifs: the selection is empty")
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Two interchangeable sparse backends: the formulas below are written once against this interface.

class _Scipy:
    """float64 CSR matrices; fast, no gradient."""

    def __init__(self, n: int):
        self.n = n

    def matrix(self, row: Tensor, col: Tensor, val: Tensor) -> sp.csr_matrix:
        return sp.csr_matrix((val.detach().cpu().double().numpy(),
                              (row.cpu().numpy(), col.cpu().numpy())), shape=(self.n, self.n))

    def mm(self, x, y):
        return (x @ y).tocsr()

    def mul(self, x, y):
        return x.multiply(y).tocsr()

    def t(self, x):
        return x.T.tocsr()

    def rowsum(self, x) -> np.ndarray:
        return np.asarray(x.sum(1)).ravel()

    def colsum(self, x) -> np.ndarray:
        return np.asarray(x.sum(0)).ravel()

    def diag_l(self, v, x):
        return (sp.diags(v) @ x).tocsr()

    def diag_r(self, x, v):
        return (x @ sp.diags(v)).tocsr()

    def offdiag(self, x):
        x = x.tocoo()
        keep = x.row != x.col
        return sp.csr_matrix((x.data[keep], (x.row[keep], x.col[keep])), shape=x.shape)

    def to_pyg(self, x, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        x = x.tocoo()
        keep = x.data != 0
        index = torch.from_numpy(np.stack([x.row[keep], x.col[keep]]).astype(np.int64))
        weight = torch.from_numpy(x.data[keep]).to(dtype)
        index, weight = coalesce(index, weight, self.n)
        return index.to(device), weight.to(device)


class _Torch:
    """torch sparse COO tensors; differentiable with respect to the edge weights."""

    def __init__(self, n: int):
        self.n = n

    def matrix(self, row: Tensor, col: Tensor, val: Tensor) -> Tensor:
        return torch.sparse_coo_tensor(torch.stack([row, col]), val, (self.n, self.n),
                                       check_invariants=False).coalesce()

    def mm(self, x, y):
        with warnings.catch_warnings():  # torch warns that its internal CSR path is beta
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse.mm(x, y).coalesce()

    def mul(self, x, y):
        return (x * y).coalesce()

    def t(self, x):
        return x.t().coalesce()

    def rowsum(self, x) -> Tensor:
        return x.values().new_zeros(self.n).index_add(0, x.indices()[0], x.values())

    def colsum(self, x) -> Tensor:
        return x.values().new_zeros(self.n).index_add(0, x.indices()[1], x.values())

    def diag_l(self, v, x):
        idx = x.indices()
        return torch.sparse_coo_tensor(idx, x.values() * v[idx[0]], x.shape,
                                       check_invariants=False).coalesce()

    def diag_r(self, x, v):
        idx = x.indices()
        return torch.sparse_coo_tensor(idx, x.values() * v[idx[1]], x.shape,
                                       check_invariants=False).coalesce()

    def offdiag(self, x):
        idx = x.indices()
        keep = idx[0] != idx[1]
        return torch.sparse_coo_tensor(idx[:, keep], x.values()[keep], x.shape,
                                       check_invariants=False).coalesce()

    def to_pyg(self, x, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        x = x.coalesce()
        keep = x.values() != 0
        return x.indices()[:, keep].to(device), x.values()[keep].to(dtype)


def _formulas(ops: Any, A: Any, wanted: tuple[str, ...], pairs: str) -> dict[str, Any]:
    """Benson's constructions with U = A (non-induced counts); see the module docstring."""
    At = ops.t(A)
    B = ops.mul(A, At)
    cache: dict[str, Any] = {}
    mats = {"A": A, "At": At, "B": B}

    def mm(x: str, y: str):
        key = x + "@" + y
        if key not in cache:
            cache[key] = ops.mm(mats[x], mats[y])
        return cache[key]

    def sampled(x: str, y: str, z: str):
        return ops.mul(mm(x, y), mats[z])

    def sym(c):
        return c + ops.t(c)

    d_out, d_in, d_bi = ops.rowsum(A), ops.colsum(A), ops.rowsum(B)
    out: dict[str, Any] = {}
    for name in wanted:
        if name == "M1":
            w = sym(sampled("A", "A", "At"))
        elif name == "M2":
            w = sym(sampled("B", "A", "At") + sampled("A", "B", "At") + sampled("A", "A", "B"))
        elif name == "M3":
            w = sym(sampled("B", "B", "A") + sampled("B", "A", "B") + sampled("A", "B", "B"))
        elif name == "M4":
            w = sampled("B", "B", "B")
        elif name == "M5":
            w = sym(sampled("A", "A", "A") + sampled("A", "At", "A") + sampled("At", "A", "A"))
        elif name == "M6":
            w = sampled("A", "B", "A") + sampled("B", "At", "At") + sampled("At", "A", "B")
        elif name == "M7":
            w = sampled("At", "B", "At") + sampled("B", "A", "A") + sampled("A", "At", "B")
        else:
            # Open motifs: (centre, leaf) pairs are per-edge terms, "degree of the centre minus the
            # edge itself"; the (leaf, leaf) pair is an off-diagonal matrix product.
            if name == "M8":
                w = sym(ops.diag_l(d_out, A) - ops.mul(A, A))
                leaf = ops.offdiag(mm("At", "A"))
            elif name == "M9":
                w = sym(ops.diag_r(A, d_out) - ops.mul(A, At)
                        + ops.diag_l(d_in, A) - ops.mul(A, At))
                leaf = sym(ops.offdiag(mm("A", "A")))
            elif name == "M10":
                w = sym(ops.diag_l(d_in, At) - ops.mul(At, At))
                leaf = ops.offdiag(mm("A", "At"))
            elif name == "M11":
                w = sym(ops.diag_l(d_out, B) - ops.mul(B, A) + ops.diag_l(d_bi, A) - ops.mul(A, B))
                leaf = sym(ops.offdiag(mm("B", "A")))
            elif name == "M12":
                w = sym(ops.diag_l(d_in, B) - ops.mul(B, At)
                        + ops.diag_l(d_bi, At) - ops.mul(At, B))
                leaf = sym(ops.offdiag(mm("B", "At")))
            else:  # M13
                w = sym(ops.diag_l(d_bi, B) - ops.mul(B, B))
                leaf = ops.offdiag(mm("B", "B"))
            if pairs == "all":
                w = w + leaf
        out[name] = w
    return out


# --------------------------------------------------------------------------------------------

@dataclass
class MotifAdjacency:
    """The result of :func:`motif_adjacency`: one sparse ``(edge_index, edge_weight)`` per motif.

    ``groups`` maps each kept motif to every motif it stands for (itself only, unless
    ``dedupe=True`` merged motifs whose matrices are equal up to a positive factor).
    """

    num_nodes: int
    matrices: dict[str, tuple[Tensor, Tensor]]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> tuple[Tensor, Tensor]:
        return self.matrices[parse_motifs(name)[0]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.matrices)

    def __len__(self) -> int:
        return len(self.matrices)

    def items(self):
        return self.matrices.items()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.matrices)


def _prepare(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None
             ) -> tuple[Tensor, Tensor]:
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) \
            or num_nodes < 0:
        raise GraphError(f"num_nodes: expected a non-negative int, got {num_nodes!r}")
    check_edge_index(edge_index, int(num_nodes))
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    elif not isinstance(edge_weight, Tensor) or edge_weight.dim() != 1 \
            or edge_weight.numel() != edge_index.size(1):
        shape = list(edge_weight.shape) if isinstance(edge_weight, Tensor) else type(edge_weight)
        raise GraphError(f"edge_weight: expected a 1-D tensor with one entry per edge "
                         f"({edge_index.size(1)}), got {shape}")
    elif not edge_weight.is_floating_point() or not torch.isfinite(edge_weight).all():
        raise GraphError("edge_weight: expected finite floating-point values")
    keep = edge_index[0] != edge_index[1]
    edge_index, edge_weight = edge_index[:, keep], edge_weight[keep]
    # Duplicates are merged, not summed: an edge listed twice is still one edge.
    return coalesce(edge_index, edge_weight, int(num_nodes), reduce="max")


def motif_adjacency(edge_index: Tensor, num_nodes: int,
                    motifs: str | int | Iterable[str | int] = "all", *,
                    edge_weight: Tensor | None = None, pairs: str = "all",
                    dedupe: bool = False) -> MotifAdjacency:
    """Weighted motif adjacency matrices ``W_k`` of a (directed or undirected) graph.

    Args:
        edge_index: ``[2, E]`` directed edges ``i -> j``; an undirected graph lists both directions.
        num_nodes: number of nodes.
        motifs: which of M1-M13 (see :func:`parse_motifs`); default all 13, in order.
        edge_weight: optional ``[E]`` edge weights; an instance weighs the product of its edge
            weights. When it requires grad the result is differentiable with respect to it.
        pairs: ``"all"`` (Benson: every pair of nodes of an instance) or ``"edges"`` (only pairs
            joined by an edge of the instance; differs for the open motifs M8-M13 only).
        dedupe: keep only the first of motifs whose matrices are equal up to a positive factor
            (identical after symmetric normalization); ``groups`` says which were merged.

    Returns:
        a :class:`MotifAdjacency`; ``result["M4"]`` is ``(edge_index, edge_weight)`` with exact
        zeros dropped, symmetric in ``i, j`` and with an empty diagonal.
    """
    wanted = parse_motifs(motifs)
    if pairs not in PAIRS:
        raise GraphError(f"pairs: expected one of {PAIRS}, got {pairs!r}")
    device = edge_index.device if isinstance(edge_index, Tensor) else torch.device("cpu")
    dtype = edge_weight.dtype if isinstance(edge_weight, Tensor) \
        and edge_weight.is_floating_point() else torch.float32
    index, weight = _prepare(edge_index, num_nodes, edge_weight)
    n = int(num_nodes)
    grad = weight.requires_grad
    ops = _Torch(n) if grad else _Scipy(n)
    if grad:
        weight = weight.to(torch.float64) if weight.device.type == "cpu" else weight
    A = ops.matrix(index[0], index[1], weight)
    raw = _formulas(ops, A, wanted, pairs)
    matrices = {name: ops.to_pyg(m, device, dtype) for name, m in raw.items()}
    result = MotifAdjacency(n, matrices, {name: (name,) for name in matrices})
    return _dedupe(result) if dedupe else result


def normalize_adjacency(edge_index: Tensor, edge_weight: Tensor, num_nodes: int,
                        negative: bool = True) -> tuple[Tensor, Tensor]:
    """Symmetric normalization ``±D^{-1/2} M D^{-1/2}`` with ``D`` the row sums of ``M``.

    ``negative=True`` is the MGNN reference code's ``-D^{-1/2} M D^{-1/2}`` (it computes the
    Chebyshev rescaling ``2L/lambda_max - I`` with ``lambda_max = 2``).
    Rows that sum to zero stay 0.
    """
    deg = edge_weight.new_zeros(num_nodes).index_add(0, edge_index[0], edge_weight)
    inv = torch.where(deg > 0, deg.clamp_min(1e-30).pow(-0.5), torch.zeros_like(deg))
    out = inv[edge_index[0]] * edge_weight * inv[edge_index[1]]
    return edge_index, -out if negative else out


def _dedupe(result: MotifAdjacency) -> MotifAdjacency:
    kept: dict[str, tuple[Tensor, Tensor]] = {}
    normed: dict[str, tuple[Tensor, Tensor]] = {}
    groups: dict[str, tuple[str, ...]] = {}
    for name, (index, weight) in result.matrices.items():
        norm = normalize_adjacency(index, weight.detach().double(), result.num_nodes, False)[1]
        for rep, (rep_index, rep_norm) in normed.items():
            if rep_index.shape == index.shape and torch.equal(rep_index, index) \
                    and torch.allclose(rep_norm, norm, rtol=1e-9, atol=1e-12):
                groups[rep] += (name,)
                break
        else:
            kept[name], normed[name], groups[name] = (index, weight), (index, norm), (name,)
    return MotifAdjacency(result.num_nodes, kept, groups)


def motif_key(name: str, part: str) -> str:
    """The ``Data`` attribute of a motif matrix: ``motif_m4_index`` / ``motif_m4_weight``.
    Names ending in ``_index`` are offset by the node count when PyG batches graphs."""
    return f"motif_{name.lower()}_{part}"


class AddMotifAdjacency(BaseTransform):
    """Store (normalized) motif matrices on a ``Data`` as ``motif_mK_index``/``motif_mK_weight``.

    Args:
        motifs: which motifs (see :func:`parse_motifs`).
        normalize: apply :func:`normalize_adjacency` (the MGNN default) instead of raw counts.
        negative: keep the reference code's minus sign in the normalization (faithful default).
        pairs: see :func:`motif_adjacency`.
    """

    def __init__(self, motifs: str | Iterable[str | int] = "all", normalize: bool = True,
                 negative: bool = True, pairs: str = "all"):
        self.motifs = parse_motifs(motifs)
        if pairs not in PAIRS:
            raise GraphError(f"pairs: expected one of {PAIRS}, got {pairs!r}")
        self.normalize, self.negative, self.pairs = normalize, negative, pairs

    def forward(self, data: Data) -> Data:
        if getattr(data, "edge_index", None) is None:
            raise GraphError("edge_index: AddMotifAdjacency needs a graph with edge_index")
        n = data.num_nodes
        result = motif_adjacency(data.edge_index, n, self.motifs, pairs=self.pairs)
        for name, (index, weight) in result.items():
            if self.normalize:
                index, weight = normalize_adjacency(index, weight, n, self.negative)
            data[motif_key(name, "index")] = index
            data[motif_key(name, "weight")] = weight
        return data

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(motifs={list(self.motifs)}, normalize={self.normalize}, "
                f"negative={self.negative}, pairs={self.pairs!r})")


def motifs_from_data(data: Any, motifs: Iterable[str]) -> list[tuple[Tensor, Tensor]] | None:
    """The stored matrices of ``motifs`` on ``data`` (``Data`` or ``Batch``), or None if absent."""
    out = []
    for name in motifs:
        index = getattr(data, motif_key(name, "index"), None)
        weight = getattr(data, motif_key(name, "weight"), None)
        if index is None or weight is None:
            return None
        out.append((index, weight))
    return out
