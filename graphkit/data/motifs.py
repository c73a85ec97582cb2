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
gradient is needed; when ``edge_weight`` requires grad, a replay of the graph's recorded sparsity
pattern with torch gathers and ``index_add``, see :mod:`graphkit.data.motif_tape`).
Self-loops are ignored (a motif needs three distinct nodes) and duplicate edges are merged
(maximum weight).
"""

from __future__ import annotations

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
from graphkit.data.motif_tape import TapeCache
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

    def offdiag(self, x, offset: int = 0):
        """Drop the diagonal of a row block whose first row is row ``offset`` of the matrix."""
        x = x.tocoo()
        keep = x.row + offset != x.col
        return sp.csr_matrix((x.data[keep], (x.row[keep], x.col[keep])), shape=x.shape)

    def rows(self, x, start: int, stop: int):
        return x if (start, stop) == (0, x.shape[0]) else x[start:stop]

    def vstack(self, blocks: list):
        return blocks[0] if len(blocks) == 1 else sp.vstack(blocks, format="csr")

    def to_pyg(self, x, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        x = x.tocoo()
        keep = x.data != 0
        index = torch.from_numpy(np.stack([x.row[keep], x.col[keep]]).astype(np.int64))
        weight = torch.from_numpy(x.data[keep]).to(dtype)
        index, weight = coalesce(index, weight, self.n)
        return index.to(device), weight.to(device)


def _block_terms(ops: Any, name: str, rows: dict[str, Any], mm: Any, deg: dict[str, Any],
                 d_out_full: Any, pairs: str, offset: int) -> tuple[Any, Any]:
    """Rows ``offset..`` of the two parts of ``W_k = (Q + Q^T) + P`` (either may be None).

    Every term is row-local (a row of ``Q`` or ``P`` needs only that row of its left operands and
    the whole right operand), which is what lets :func:`_formulas` build them in row blocks.
    Benson's constructions with ``U = A`` (non-induced counts); see the module docstring.
    """
    A, At, B = rows["A"], rows["At"], rows["B"]

    def sampled(x: str, y: str, z: str):
        return ops.mul(mm(x, y), rows[z])

    def leaf(x: str, y: str):
        return ops.offdiag(mm(x, y), offset) if pairs == "all" else None

    def add(x, y):
        return x if y is None else x + y

    if name == "M1":
        return sampled("A", "A", "At"), None
    if name == "M2":
        return sampled("B", "A", "At") + sampled("A", "B", "At") + sampled("A", "A", "B"), None
    if name == "M3":
        return sampled("B", "B", "A") + sampled("B", "A", "B") + sampled("A", "B", "B"), None
    if name == "M4":
        return None, sampled("B", "B", "B")
    if name == "M5":
        return sampled("A", "A", "A") + sampled("A", "At", "A") + sampled("At", "A", "A"), None
    if name == "M6":
        return None, sampled("A", "B", "A") + sampled("B", "At", "At") + sampled("At", "A", "B")
    if name == "M7":
        return None, sampled("At", "B", "At") + sampled("B", "A", "A") + sampled("A", "At", "B")
    # Open motifs: (centre, leaf) pairs are per-edge terms, "degree of the centre minus the edge
    # itself"; the (leaf, leaf) pair is an off-diagonal matrix product.
    if name == "M8":
        return ops.diag_l(deg["out"], A) - ops.mul(A, A), leaf("At", "A")
    if name == "M9":
        q = (ops.diag_r(A, d_out_full) - ops.mul(A, At)
             + ops.diag_l(deg["in"], A) - ops.mul(A, At))
        return add(q, leaf("A", "A")), None
    if name == "M10":
        return ops.diag_l(deg["in"], At) - ops.mul(At, At), leaf("A", "At")
    if name == "M11":
        q = ops.diag_l(deg["out"], B) - ops.mul(B, A) + ops.diag_l(deg["bi"], A) - ops.mul(A, B)
        return add(q, leaf("B", "A")), None
    if name == "M12":
        q = (ops.diag_l(deg["in"], B) - ops.mul(B, At)
             + ops.diag_l(deg["bi"], At) - ops.mul(At, B))
        return add(q, leaf("B", "At")), None
    # M13
    return ops.diag_l(deg["bi"], B) - ops.mul(B, B), leaf("B", "B")


def _formulas(ops: Any, A: Any, wanted: tuple[str, ...], pairs: str,
              chunk_size: int | None = None) -> dict[str, Any]:
    """``W_k = (Q_k + Q_k^T) + P_k`` for every wanted motif, with ``Q_k`` and ``P_k`` built in
    blocks of ``chunk_size`` rows (one block when None).

    Why blocks: the intermediate products (``A·A``, ``B·A``, ...) have about ``sum_i d_i^2``
    entries, far more than the sampled results they are masked to, and they dominate peak memory
    on large graphs. A block computes only its rows of each product, masks them and frees them.
    Each row is computed by the same operations in either case, so the result is identical.
    """
    n = ops.n
    At = ops.t(A)
    B = ops.mul(A, At)
    full = {"A": A, "At": At, "B": B}
    d_out, d_in, d_bi = ops.rowsum(A), ops.colsum(A), ops.rowsum(B)
    step = n if chunk_size is None else int(chunk_size)
    parts: dict[str, tuple[list, list]] = {name: ([], []) for name in wanted}
    for start in range(0, max(n, 1), max(step, 1)):
        stop = min(n, start + step)
        rows = {key: ops.rows(mat, start, stop) for key, mat in full.items()}
        deg = {"out": d_out[start:stop], "in": d_in[start:stop], "bi": d_bi[start:stop]}
        cache: dict[tuple[str, str], Any] = {}

        def mm(x: str, y: str, rows=rows, cache=cache):
            if (x, y) not in cache:
                cache[(x, y)] = ops.mm(rows[x], full[y])
            return cache[(x, y)]

        for name in wanted:
            q, p = _block_terms(ops, name, rows, mm, deg, d_out, pairs, start)
            for store, block in zip(parts[name], (q, p), strict=True):
                if block is not None:
                    store.append(block)
        del cache, rows
    out: dict[str, Any] = {}
    for name in wanted:
        q_blocks, p_blocks = parts.pop(name)
        w = None
        if q_blocks:
            q = ops.vstack(q_blocks)
            del q_blocks
            w = q + ops.t(q)
        if p_blocks:
            p = ops.vstack(p_blocks)
            w = p if w is None else w + p
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
                    dedupe: bool = False, chunk_size: int | None = None) -> MotifAdjacency:
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
        chunk_size: build the sparse products in blocks of this many rows (None: all rows at
            once). Bounds the peak memory of the intermediate products on large graphs; the
            result is identical (tested).

    Returns:
        a :class:`MotifAdjacency`; ``result["M4"]`` is ``(edge_index, edge_weight)`` with exact
        zeros dropped, symmetric in ``i, j`` and with an empty diagonal.
    """
    wanted = parse_motifs(motifs)
    if pairs not in PAIRS:
        raise GraphError(f"pairs: expected one of {PAIRS}, got {pairs!r}")
    _check_chunk_size(chunk_size)
    device = edge_index.device if isinstance(edge_index, Tensor) else torch.device("cpu")
    dtype = edge_weight.dtype if isinstance(edge_weight, Tensor) \
        and edge_weight.is_floating_point() else torch.float32
    index, weight = _prepare(edge_index, num_nodes, edge_weight)
    n = int(num_nodes)
    grad = weight.requires_grad
    ops: Any = _Scipy(n)
    if grad:
        # differentiable: replay the graph's recorded sparsity pattern (graphkit.data.motif_tape)
        ops = _TAPES.get(index, n, (*wanted, str(chunk_size)), pairs)
        weight = weight.to(torch.float64) if weight.device.type == "cpu" else weight
    A = ops.matrix(index[0], index[1], weight)
    raw = _formulas(ops, A, wanted, pairs, chunk_size)
    matrices = {name: ops.to_pyg(m, device, dtype) for name, m in raw.items()}
    if grad:
        _TAPES.store(index, (*wanted, str(chunk_size)), pairs, ops)
    result = MotifAdjacency(n, matrices, {name: (name,) for name in matrices})
    return _dedupe(result) if dedupe else result


_TAPES = TapeCache(size=2)


def _check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is not None and (isinstance(chunk_size, bool)
                                   or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise GraphError(f"chunk_size: expected a positive int or None, got {chunk_size!r}")


def motif_csr(edge_index: Tensor, num_nodes: int,
              motifs: str | int | Iterable[str | int] = "all", *, pairs: str = "all",
              chunk_size: int | None = None) -> dict[str, sp.csr_matrix]:
    """The raw motif matrices ``W_k`` as float64 scipy CSR matrices (no gradient).

    The same numbers as :func:`motif_adjacency` without the conversion to ``(edge_index,
    edge_weight)`` tensors, which on a large graph would hold a second, int64-indexed copy of every
    matrix. For large graphs; see :mod:`graphkit.nn.mgnn_precomputed`.
    """
    wanted = parse_motifs(motifs)
    if pairs not in PAIRS:
        raise GraphError(f"pairs: expected one of {PAIRS}, got {pairs!r}")
    _check_chunk_size(chunk_size)
    index, weight = _prepare(edge_index, num_nodes, None)
    ops = _Scipy(int(num_nodes))
    raw = _formulas(ops, ops.matrix(index[0], index[1], weight), wanted, pairs, chunk_size)
    out = {}
    for name, mat in raw.items():
        mat = mat.tocsr()
        mat.eliminate_zeros()
        out[name] = mat
    return out


def normalize_adjacency(edge_index: Tensor, edge_weight: Tensor, num_nodes: int,
                        negative: bool = True) -> tuple[Tensor, Tensor]:
    """Symmetric normalization ``±D^{-1/2} M D^{-1/2}`` with ``D`` the row sums of ``M``.

    ``negative=True`` is the MGNN reference code's ``-D^{-1/2} M D^{-1/2}`` (it computes the
    Chebyshev rescaling ``2L/lambda_max - I`` with ``lambda_max = 2``).
    Rows that sum to zero stay 0.

    Degrees are floored at ``eps**2`` of the dtype (1.4e-14 in float32) before ``D^{-1/2}``:
    counts are >= 1, so only soft (explainer-masked) weights meet the floor, and without it the
    slope of ``deg^{-1/2}`` overflows to inf near 0 and turns into NaN gradients (PyG's
    PGExplainer on the MGNN hit this on BA-Shapes).
    """
    deg = edge_weight.new_zeros(num_nodes).index_add(0, edge_index[0], edge_weight)
    floor = torch.finfo(deg.dtype).eps ** 2
    inv = torch.where(deg > 0, deg.clamp_min(floor).pow(-0.5), torch.zeros_like(deg))
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
