"""MotifConv: one layer of the Motif Graph Neural Network.

Xuexin Chen, Ruichu Cai, Yuan Fang, Min Wu, Zijian Li, Zhifeng Hao, "Motif Graph Neural Network",
IEEE TNNLS 2023, https://arxiv.org/abs/2112.14900. Equations as the reference code implements them
(``/work/shared/papers/mgnn.md`` section 2.2):

- ``H0 = Â X W + X W_root + b``;  ``H_k = M̂_k H0`` for every motif ``k``;
- ``m_k = H_k W_a + b_a`` (``W_a`` shared, dropout on its weights), ``c_k = [H0 ‖ H_j, j ≠ k] W_k +
  b_k``, ``a_k = σ(<m_k, c_k>)`` per node, ``z_k = a_k (m_k - c_k)``;
- output ``z_1 ‖ ... ‖ z_K`` (``K * compress_channels`` features).

Explainability: ``Â X W`` is a normal PyG ``propagate`` over ``edge_index``, so an edge mask set by
``torch_geometric.explain`` (``set_masks``) multiplies those messages as usual. Motif messages use
other edge sets, so they are not sent through ``propagate``; instead, while a mask is set, the motif
matrices are recomputed from the masked edge weights (an instance weighs the product of its edges'
weights, :func:`graphkit.data.motifs.motif_adjacency`), so the mask reaches them smoothly and
exactly once. See ``docs/mgnn.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Parameter
from torch_geometric.nn import MessagePassing

from graphkit.cache import TensorLRU
from graphkit.data.motifs import PAIRS, motif_adjacency, normalize_adjacency, parse_motifs
from graphkit.errors import GraphError


def compute_motifs(edge_index: Tensor, num_nodes: int, motifs: Sequence[str], *,
                   edge_weight: Tensor | None = None, pairs: str = "all",
                   negative: bool = True) -> list[tuple[Tensor, Tensor]]:
    """Normalized motif matrices in ``motifs`` order (differentiable in ``edge_weight``).

    ``pairs="reference"`` builds the MGNN reference code's matrices (open motifs with its
    self-loop quirk, :mod:`graphkit.data.motifs_reference`); ``"all"``/``"edges"`` count instances.
    """
    if pairs == "reference":
        from graphkit.data.motifs_reference import reference_motif_adjacency
        result = reference_motif_adjacency(edge_index, num_nodes, motifs, edge_weight=edge_weight)
    else:
        result = motif_adjacency(edge_index, num_nodes, motifs, edge_weight=edge_weight,
                                 pairs=pairs)
    dtype = edge_weight.dtype if edge_weight is not None else torch.float32
    return [normalize_adjacency(index, weight.to(dtype), num_nodes, negative)
            for index, weight in result.matrices.values()]


class _CSRMatMul(torch.autograd.Function):
    """``A @ X`` for a constant CSR ``A`` whose transpose ``At`` is already built, so the backward
    (``At @ grad``) never re-sorts ``A`` (torch's sparse backward converts and sorts every call)."""

    @staticmethod
    def forward(ctx, mat: Tensor, mat_t: Tensor, dense: Tensor) -> Tensor:
        ctx.mat_t = mat_t
        return torch.sparse.mm(mat, dense)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, None, torch.sparse.mm(ctx.mat_t, grad)


class _CSRValuesMatMul(torch.autograd.Function):
    """``A @ X`` for a CSR ``A`` of fixed pattern whose *values* need a gradient (an explainer's
    soft mask reaching the motif matrices): SpMM forward, SpMM with the transpose and one sampled
    dense-dense product (SDDMM) backward."""

    @staticmethod
    def forward(ctx, pattern: SparseOperator, values: Tensor, dense: Tensor) -> Tensor:
        op = pattern.with_values(values)
        ctx.op = op
        ctx.save_for_backward(dense)
        return torch.sparse.mm(op.matrix, dense)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (dense,) = ctx.saved_tensors
        op, grad = ctx.op, grad.contiguous()
        grad_values = grad_dense = None
        if ctx.needs_input_grad[1]:
            sampled = torch.sparse.sampled_addmm(op.matrix, grad, dense.t(), beta=0.0)
            grad_values = torch.empty_like(sampled.values())
            grad_values[op._order] = sampled.values()
        if ctx.needs_input_grad[2]:
            grad_dense = torch.sparse.mm(op.matrix_t, grad)
        return None, grad_values, grad_dense


class SparseOperator:
    """A constant sparse ``[R, C]`` matrix as CSR plus its CSR transpose, for repeated products.

    Args:
        index: ``[2, nnz]`` (row, col) entries.
        values: ``[nnz]`` values (detached: no gradient flows into them).
        shape: ``(R, C)``.
    """

    def __init__(self, index: Tensor, values: Tensor, shape: tuple[int, int]):
        rows, cols = shape
        self.shape = shape
        index, values = index.long(), values.detach()
        # Row-major order for A and column-major order for At, each computed once.
        order = torch.argsort(index[0] * cols + index[1])
        order_t = torch.argsort(index[1] * rows + index[0])
        self._order, self._order_t = order, order_t
        self.matrix = self._csr(index[0][order], index[1][order], values[order], shape)
        self.matrix_t = self._csr(index[1][order_t], index[0][order_t], values[order_t],
                                  (cols, rows))

    def with_values(self, values: Tensor) -> SparseOperator:
        """The same sparsity pattern with new ``values`` (in the original ``index`` order); no
        sorting, so it is cheap enough to call every epoch (input dropout)."""
        out = object.__new__(SparseOperator)
        out.shape, out._order, out._order_t = self.shape, self._order, self._order_t
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out.matrix = torch.sparse_csr_tensor(
                self.matrix.crow_indices(), self.matrix.col_indices(), values[self._order],
                self.shape, check_invariants=False)
            out.matrix_t = torch.sparse_csr_tensor(
                self.matrix_t.crow_indices(), self.matrix_t.col_indices(),
                values[self._order_t], self.shape[::-1], check_invariants=False)
        return out

    @staticmethod
    def _csr(row: Tensor, col: Tensor, val: Tensor, shape: tuple[int, int]) -> Tensor:
        crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=row.device)
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=shape[0]), 0)
        with warnings.catch_warnings():  # torch flags sparse CSR as beta
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(crow, col, val, shape, check_invariants=False)

    def to(self, device: torch.device, dtype: torch.dtype) -> SparseOperator:
        if self.matrix.device == device and self.matrix.dtype == dtype:
            return self
        out = object.__new__(SparseOperator)
        out.shape, out._order, out._order_t = self.shape, self._order, self._order_t
        out.matrix = self.matrix.to(device=device, dtype=dtype)
        out.matrix_t = self.matrix_t.to(device=device, dtype=dtype)
        return out

    def __matmul__(self, dense: Tensor) -> Tensor:
        op = self.to(dense.device, dense.dtype)
        return _CSRMatMul.apply(op.matrix, op.matrix_t, dense)

    def matmul_values(self, values: Tensor, dense: Tensor) -> Tensor:
        """``A @ dense`` where ``A`` has this pattern and ``values`` (in the original ``index``
        order), differentiable in both: the gradient of the values is the sampled product
        ``(grad @ dense^T)`` at the pattern, never an ``[nnz, d]`` intermediate."""
        if values.shape != self._order.shape:
            raise GraphError(f"values: expected {self._order.numel()} entries, got "
                             f"{list(values.shape)}")
        return _CSRValuesMatMul.apply(self.to(dense.device, dense.dtype), values.to(dense.dtype),
                                      dense)


class MotifOperator:
    """All ``M̂_k`` as one sparse CSR matrix of the *distinct* ones stacked, ``[U * N, N]``.

    On undirected graphs the 13 normalized matrices take only a few distinct values (two with the
    default definitions), so each distinct one is applied once and the result is shared by the
    motifs it stands for; the parameters of every motif stay separate. Used when no gradient is
    needed with respect to the motif weights (otherwise :meth:`MotifConv.motif_propagate` uses
    :meth:`SparseOperator.matmul_values`, differentiable in the values).
    """

    def __init__(self, motif_adj: Sequence[tuple[Tensor, Tensor]], num_nodes: int):
        unique: list[tuple[Tensor, Tensor]] = []
        slots: list[int] = []
        for index, weight in motif_adj:
            for u, (u_index, u_weight) in enumerate(unique):
                if u_index.shape == index.shape and torch.equal(u_index, index) \
                        and torch.equal(u_weight, weight):
                    slots.append(u)
                    break
            else:
                slots.append(len(unique))
                unique.append((index, weight))
        self.num_nodes, self.num_motifs, self.num_unique = num_nodes, len(slots), len(unique)
        device = motif_adj[0][0].device if motif_adj else torch.device("cpu")
        self.slots = torch.tensor(slots, dtype=torch.long, device=device)
        rows = torch.cat([i[0] + u * num_nodes for u, (i, _) in enumerate(unique)]) if unique \
            else torch.empty(0, dtype=torch.long, device=device)
        cols = torch.cat([i[1] for i, _ in unique]) if unique else rows
        vals = torch.cat([w.detach().float() for _, w in unique]) if unique \
            else torch.empty(0, device=device)
        self.matrix = SparseOperator(torch.stack([rows, cols]), vals,
                                     (max(len(unique), 1) * num_nodes, num_nodes))
        # Normalized base adjacency Â of the graph (set by MotifCache), so that an epoch without
        # an explanation mask or edge weights skips PyG's gather/scatter and the renormalization.
        self.base: SparseOperator | None = None

    def __call__(self, h0: Tensor) -> Tensor:
        n = h0.size(0)
        if n != self.num_nodes:
            raise GraphError(f"motif_adj: built for {self.num_nodes} nodes, x has {n} rows")
        out = (self.matrix @ h0).view(-1, n, h0.size(1))
        if self.num_unique == self.num_motifs:
            return out
        return out[self.slots.to(h0.device)]


MotifInput = Sequence[tuple[Tensor, Tensor]] | MotifOperator


class PatternCache(TensorLRU):
    """The last few sparsity patterns as :class:`SparseOperator` s (their two sort orders are
    the expensive part). A masked forward recomputes the motif matrices every step, with new
    values on the same pattern, so the orders are computed once per explained batch. Two entries
    by default: an explained batch's pattern can hold tens of millions of entries (BA-Shapes on
    the MGNN)."""

    def __init__(self, size: int = 2):
        super().__init__(size)

    def get(self, blocks: Sequence[Tensor], num_nodes: int) -> SparseOperator:
        """The ``[len(blocks) * N, N]`` pattern of the ``[2, nnz_k]`` indices ``blocks`` stacked
        (block ``k`` in rows ``k N .. (k + 1) N``)."""
        device = blocks[0].device if blocks else torch.device("cpu")
        key = (tuple(tuple(b.shape) for b in blocks), num_nodes, device)
        op = self.lookup(key, blocks)
        if op is None:
            offsets = torch.tensor([[num_nodes], [0]], device=device)
            index = torch.cat([b + k * offsets for k, b in enumerate(blocks)], 1) if blocks \
                else torch.empty(2, 0, dtype=torch.long, device=device)
            op = SparseOperator(index, torch.ones(index.size(1), device=device),
                                (max(len(blocks), 1) * num_nodes, num_nodes))
            self.put(key, blocks, op)
        return op


_PATTERNS = PatternCache()


def base_norm(edge_index: Tensor, num_nodes: int, negative: bool,
              edge_weight: Tensor | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Per-edge weights of the normalized base adjacency ``Â`` (self-loops weigh 0)."""
    not_loop = (edge_index[0] != edge_index[1]).to(dtype)
    base = not_loop if edge_weight is None else edge_weight.to(dtype) * not_loop
    return normalize_adjacency(edge_index, base, num_nodes, negative)[1]


def base_operator(edge_index: Tensor, num_nodes: int, negative: bool) -> SparseOperator:
    """``Â`` as a :class:`SparseOperator` acting like ``propagate`` (source -> target)."""
    norm = base_norm(edge_index, num_nodes, negative)
    return SparseOperator(edge_index.flip(0), norm, (num_nodes, num_nodes))


class MotifCache(TensorLRU):
    """A small LRU cache of normalized motif matrices keyed by the graph's ``edge_index``.

    A hit needs the same node count and an ``edge_index`` equal element by element (checked with
    ``torch.equal``, O(E)), so an edited graph never reuses stale matrices.
    """

    def __init__(self, size: int = 4):
        super().__init__(size)

    def get(self, edge_index: Tensor, num_nodes: int, motifs: Sequence[str], pairs: str,
            negative: bool) -> MotifOperator:
        key = (tuple(edge_index.shape), num_nodes, edge_index.device, tuple(motifs), pairs,
               negative)
        value = self.lookup(key, [edge_index])
        if value is None:
            value = MotifOperator(compute_motifs(edge_index, num_nodes, motifs, pairs=pairs,
                                                 negative=negative), num_nodes)
            value.base = base_operator(edge_index, num_nodes, negative)
            self.put(key, [edge_index], value)
        return value

    def __deepcopy__(self, memo: dict) -> MotifCache:
        # Sparse CSR tensors cannot be deep-copied; a copy simply starts with an empty cache.
        return MotifCache(self.size)


class MotifConv(MessagePassing):
    """One MGNN layer (see the module docstring).

    Args:
        in_channels: input features.
        out_channels: per-motif width ``d_out`` of ``H0`` and ``H_k`` (reference: 16).
        compress_channels: compressed width ``d'`` of each ``z_k`` (reference: 6); the output
            has ``len(motifs) * compress_channels`` features.
        motifs: which motifs (see :func:`graphkit.data.motifs.parse_motifs`), default all 13.
        pairs: motif pair definition passed to :func:`~graphkit.data.motifs.motif_adjacency`,
            or ``"reference"`` for the reference code's matrices (open motifs with its
            self-loop quirk, :mod:`graphkit.data.motifs_reference`; node benchmarks use it).
        negative: use the reference code's ``-D^{-1/2} M D^{-1/2}`` normalization (faithful
            default) for ``Â`` and every ``M̂_k``.
        att_act: ``"sigmoid"`` or ``"tanh"`` for the redundancy gate ``a_k``.
        motif_dropout: dropout on the weights of ``W_a``.
        att_dropout: dropout on the gates ``a_k``.
        cache_size: graphs whose motif matrices are cached when the caller does not pass them.
    """

    def __init__(self, in_channels: int, out_channels: int, compress_channels: int = 6,
                 motifs: str | Iterable[str | int] = "all", *, pairs: str = "all",
                 negative: bool = True, att_act: str = "sigmoid", motif_dropout: float = 0.1,
                 att_dropout: float = 0.1, cache_size: int = 4):
        super().__init__(aggr="add")
        if att_act not in ("sigmoid", "tanh"):
            raise GraphError(f"att_act: expected 'sigmoid' or 'tanh', got {att_act!r}")
        if pairs not in (*PAIRS, "reference"):
            raise GraphError(f"pairs: expected one of {(*PAIRS, 'reference')}, got {pairs!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("compress_channels", compress_channels)):
            if not isinstance(value, int) or value < 1:
                raise GraphError(f"{name}: expected a positive int, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.compress_channels = compress_channels
        self.motifs = parse_motifs(motifs)
        self.pairs, self.negative, self.att_act = pairs, negative, att_act
        self.motif_dropout, self.att_dropout = motif_dropout, att_dropout
        k = len(self.motifs)
        # W and W_root in one product: the input projection dominates on wide sparse features.
        self.lin = Linear(in_channels, 2 * out_channels, bias=False)
        self.bias = Parameter(torch.empty(out_channels))
        self.att = Linear(out_channels, compress_channels)
        # W_k maps the K other slots ([H0 ‖ H_j, j ≠ k]) to d'; stored compactly as [K, K, d, d'].
        self.comp_weight = Parameter(torch.empty(k, k, out_channels, compress_channels))
        self.comp_bias = Parameter(torch.empty(k, compress_channels))
        slots = torch.arange(k + 1)
        # slot_index[k, s]: where slot s (0 = H0, j = H_j) of motif k's input sits in the compact
        # weights; motif k's own slot points at an appended zero block.
        slot_index = torch.where(slots.view(1, -1) < slots[1:].view(-1, 1), slots,
                                 slots - 1).clone()
        slot_index[torch.arange(k), torch.arange(1, k + 1)] = k
        self.register_buffer("slot_index", slot_index, persistent=False)
        self.cache = MotifCache(cache_size)
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        return len(self.motifs) * self.compress_channels

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()
        torch.nn.init.zeros_(self.bias)
        torch.nn.init.xavier_uniform_(self.att.weight)
        torch.nn.init.zeros_(self.att.bias)
        bound = math.sqrt(6.0 / (len(self.motifs) * self.out_channels + self.compress_channels))
        torch.nn.init.uniform_(self.comp_weight, -bound, bound)
        torch.nn.init.zeros_(self.comp_bias)
        self.cache.clear()

    def _mask(self) -> Tensor | None:
        mask = getattr(self, "_edge_mask", None)
        if not getattr(self, "explain", False) or mask is None:
            return None
        return mask.sigmoid() if getattr(self, "_apply_sigmoid", True) else mask

    def forward(self, x: Tensor, edge_index: Tensor, motif_adj: MotifInput | None = None,
                edge_weight: Tensor | None = None) -> Tensor:
        """Args:
            x: ``[N, in_channels]`` node features.
            edge_index: ``[2, E]`` edges of the graph (or a batch of graphs).
            motif_adj: normalized motif matrices in ``self.motifs`` order (from
                :class:`~graphkit.data.AddMotifAdjacency` with the same ``pairs``/``negative``);
                computed (and cached) from ``edge_index`` when omitted. Ignored while an
                explanation mask is set or when ``edge_weight`` is given: the matrices must then
                follow the weights.
            edge_weight: optional ``[E]`` edge weights (a soft mask from an explainer, say).

        Returns:
            ``[N, len(motifs) * compress_channels]``.
        """
        n = x.shape[0]
        mask = self._mask()
        if mask is not None and mask.numel() != edge_index.size(1):
            raise GraphError(f"edge mask: {mask.numel()} entries for {edge_index.size(1)} edges")
        if isinstance(x, SparseOperator):  # sparse input features (see MGNN.forward)
            h, root = (x @ self.lin.weight.t()).chunk(2, dim=-1)
        else:
            h, root = self.lin(x).chunk(2, dim=-1)
        if mask is not None or edge_weight is not None:
            soft = torch.ones(edge_index.size(1), dtype=h.dtype, device=h.device) \
                if edge_weight is None else edge_weight.to(h.dtype)
            if mask is not None:
                soft = soft * mask.to(h.dtype)
            motif_adj = compute_motifs(edge_index, n, self.motifs, edge_weight=soft,
                                       pairs=self.pairs, negative=self.negative)
        elif motif_adj is None:
            motif_adj = self.cache.get(edge_index, n, self.motifs, self.pairs, self.negative)
        count = motif_adj.num_motifs if isinstance(motif_adj, MotifOperator) else len(motif_adj)
        if count != len(self.motifs):
            raise GraphError(f"motif_adj: expected {len(self.motifs)} matrices "
                             f"({', '.join(self.motifs)}), got {count}")
        base_op = motif_adj.base if isinstance(motif_adj, MotifOperator) else None
        if mask is None and edge_weight is None and base_op is not None:
            h0 = base_op @ h + root + self.bias
        else:
            norm = base_norm(edge_index, n, self.negative, edge_weight, h.dtype)
            # PyG multiplies these messages by the mask itself (explain_message).
            h0 = self.propagate(edge_index, x=h, norm=norm) + root + self.bias
        return self.combine(h0, self.motif_propagate(motif_adj, h0))

    def motif_propagate(self, motif_adj: MotifInput, h0: Tensor) -> Tensor:
        """``H_k = M̂_k H0`` for all motifs at once: ``[K, N, d]``."""
        if isinstance(motif_adj, MotifOperator):
            return motif_adj(h0)
        if not any(weight.requires_grad for _, weight in motif_adj):
            return MotifOperator(motif_adj, h0.size(0))(h0)
        n, k = h0.size(0), len(motif_adj)
        pattern = _PATTERNS.get([index for index, _ in motif_adj], n)
        weights = torch.cat([weight.to(h0.dtype) for _, weight in motif_adj])
        return pattern.matmul_values(weights, h0).view(k, n, -1)

    def combine(self, h0: Tensor, hk: Tensor) -> Tensor:
        """Redundancy minimization and injective (concatenation) combination."""
        k, n, d = hk.shape
        w_a = F.dropout(self.att.weight, self.motif_dropout, self.training)
        m = F.linear(hk.transpose(0, 1), w_a, self.att.bias)               # [N, K, d']
        padded = torch.cat([self.comp_weight, self.comp_weight.new_zeros(k, 1, d,
                                                                         self.compress_channels)],
                           dim=1)
        full = padded[torch.arange(k, device=h0.device).unsqueeze(1), self.slot_index]
        # One [N, (K+1)d] x [(K+1)d, K d'] product computes every c_k at once.
        weight = full.permute(1, 2, 0, 3).reshape((k + 1) * d, k * self.compress_channels)
        slots = torch.cat([h0.unsqueeze(1), hk.transpose(0, 1)], 1).reshape(n, (k + 1) * d)
        c = torch.addmm(self.comp_bias.view(-1), slots, weight).view(n, k, -1)
        score = (m * c).sum(-1, keepdim=True)
        gate = torch.sigmoid(score) if self.att_act == "sigmoid" else torch.tanh(score)
        gate = F.dropout(gate, self.att_dropout, self.training)
        return (gate * (m - c)).reshape(n, k * self.compress_channels)

    def message(self, x_j: Tensor, norm: Tensor) -> Tensor:
        return norm.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"compress={self.compress_channels}, motifs={len(self.motifs)})")
