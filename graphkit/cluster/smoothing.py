"""Laplacian smoothing X̃ = (D̂^-1/2 (A + I) D̂^-1/2)^t X, kept sparse, and a linear layer on it.

The smoothing is the low-pass filter of AGE/SGC that CCGC applies once before training. A linear
layer on X̃ costs N·d·D per product; when X is sparse (bag-of-words, one-hot degrees) the same
product is cheaper as H^t (X W): nnz(X)·D + t·nnz(H)·D. :class:`SmoothedFeatures` picks the cheaper
of the two exact forms, which is what makes 400 CCGC epochs on Cora take seconds on a CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphkit.errors import GraphError


def _to_csr_tensor(mat: sp.spmatrix, device: torch.device) -> torch.Tensor:
    mat = sp.csr_matrix(mat, dtype=np.float32)
    mat.sort_indices()
    return torch.sparse_csr_tensor(  # built from a valid scipy CSR, so invariants hold
torch.from_numpy(mat.indptr.astype(np.int64)),
                                   torch.from_numpy(mat.indices.astype(np.int64)),
                                   torch.from_numpy(mat.data), size=mat.shape, device=device,
                                   check_invariants=False)


def normalized_adjacency(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """D̂^-1/2 (A + I) D̂^-1/2 after removing A's own self-loops (the released CCGC code's filter).

    Args:
        adjacency: square scipy sparse adjacency; non-zero entries are treated as edge weights.
    """
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    a.setdiag(0)
    a.eliminate_zeros()
    a = a + sp.identity(a.shape[0], dtype=np.float64, format="csr")
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(deg)
    pos = deg > 0
    inv_sqrt[pos] = deg[pos] ** -0.5
    d = sp.diags(inv_sqrt)
    return sp.csr_matrix(d @ a @ d)


def smooth(x: sp.spmatrix | np.ndarray, adjacency: sp.spmatrix, t: int) -> np.ndarray:
    """Dense X̃ = H^t X as float32, with H from :func:`normalized_adjacency` (for baselines)."""
    h = normalized_adjacency(adjacency).astype(np.float32)
    out = x.toarray() if sp.issparse(x) else np.asarray(x)
    out = out.astype(np.float32, copy=False)
    for _ in range(t):
        out = h @ out
    return np.asarray(out, dtype=np.float32)


def _chain(first: Any, h: Any, t: int, m: torch.Tensor) -> torch.Tensor:
    """H^t (first @ m); scipy CSR on CPU (3-5x faster than torch's CPU CSR kernels here),
    torch CSR on CUDA."""
    if isinstance(first, torch.Tensor):
        out = first @ m
        for _ in range(t):
            out = h @ out
        return out
    return _apply_scipy([first] + [h] * t, m)


def _apply_scipy(mats: list[Any], m: torch.Tensor) -> torch.Tensor:
    """``mats[-1] @ ... @ mats[0] @ m`` with scipy sparse matrices on a dense CPU tensor."""
    return _apply_scipy_many(mats, [m])[0]


CHUNK = 128
"""Columns per scipy block: the N×128 operand of every chain step stays in L2 (about 1.3x faster
than whole-matrix products on Cora), and the blocks are spread over the torch threads."""


def _apply_scipy_many(mats: list[Any], ms: list[torch.Tensor]) -> list[torch.Tensor]:
    """:func:`_apply_scipy` on several dense matrices at once, ``CHUNK`` columns at a time.

    scipy's sparse kernels are single-threaded but release the GIL, so with several torch threads
    the column blocks run in parallel. The result is bit-identical to one whole-matrix product:
    each output column depends only on its own input column, summed in the same order."""
    dense = [m.detach().numpy() for m in ms]

    def run(block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block)
        for mat in mats:
            block = mat @ block
        return np.ascontiguousarray(block, dtype=np.float32)

    blocks = [(i, d[:, s:s + CHUNK]) for i, d in enumerate(dense)
              for s in range(0, d.shape[1], CHUNK)]
    threads = torch.get_num_threads()
    outs = list(_pool(threads).map(run, [b for _, b in blocks])) if threads > 1 \
        else [run(b) for _, b in blocks]
    return [torch.from_numpy(np.hstack([o for (j, _), o in zip(blocks, outs) if j == i]))
            for i in range(len(dense))]


_POOLS: dict[int, Any] = {}


def _pool(threads: int) -> Any:
    from concurrent.futures import ThreadPoolExecutor
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="graphkit-spmm")
    return _POOLS[threads]


class _SparseChain(torch.autograd.Function):
    """Y = H^t (X M) with constant sparse X, H (H symmetric); gradient only for the dense M."""

    @staticmethod
    def forward(ctx: Any, m: torch.Tensor, ops: SmoothedFeatures) -> torch.Tensor:
        ctx.ops = ops
        return _chain(ops.x, ops.h, ops.t, m)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        return _chain_transposed(ctx.ops, [grad])[0], None


def _chain_transposed(ops: SmoothedFeatures, grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """Xᵀ H^t G for every G in ``grads`` (H symmetric): the backward of the chain."""
    if not isinstance(ops.h, torch.Tensor):
        return _apply_scipy_many([ops.h] * ops.t + [ops.xt], grads)
    outs = []
    for g in grads:
        for _ in range(ops.t):
            g = ops.h @ g
        outs.append(ops.xt @ g)
    return outs


class _SparsePair(torch.autograd.Function):
    """(H^t X W1ᵀ, H^t X W2ᵀ) for two weight matrices (D×d each) on the same constant X̃.

    Two separate outputs instead of one product with the stacked weights sliced afterwards: the
    slices' backward zero-filled an N×2D buffer twice per epoch, which cost about as much as the
    sparse chain itself. The numbers are the stacked product's, bit for bit."""

    @staticmethod
    def forward(ctx: Any, w1: torch.Tensor, w2: torch.Tensor,
                ops: SmoothedFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.ops = ops
        if isinstance(ops.h, torch.Tensor):
            return _chain(ops.x, ops.h, ops.t, w1.T), _chain(ops.x, ops.h, ops.t, w2.T)
        out1, out2 = _apply_scipy_many([ops.x] + [ops.h] * ops.t, [w1.T, w2.T])
        return out1, out2

    @staticmethod
    def backward(ctx: Any, g1: torch.Tensor | None, g2: torch.Tensor | None):
        it = iter(_chain_transposed(ctx.ops, [g for g in (g1, g2) if g is not None]))
        return (None if g1 is None else next(it).T, None if g2 is None else next(it).T, None)


class SmoothedFeatures:
    """The fixed input X̃ = H^t X of CCGC, multiplied by weight matrices without forming N×N.

    Args:
        x: node features, scipy sparse or dense (N×d); kept sparse when sparse.
        adjacency: square scipy sparse adjacency (N×N).
        t: number of filter applications.
        device: torch device for the products.
        mode: ``"auto"`` (cheaper exact form), ``"dense"`` (precompute X̃) or ``"sparse"``
            (propagate after the product).
    """

    def __init__(self, x: sp.spmatrix | np.ndarray, adjacency: sp.spmatrix, t: int,
                 device: torch.device, mode: str = "auto") -> None:
        n, d = x.shape
        h = normalized_adjacency(adjacency)
        nnz_x = x.nnz if sp.issparse(x) else int(np.count_nonzero(x))
        sparse_cost = nnz_x + t * h.nnz
        if mode == "auto":
            mode = "sparse" if sparse_cost < n * d else "dense"
        if mode not in ("sparse", "dense"):
            raise GraphError(f"mode: expected 'auto', 'sparse' or 'dense', got {mode!r}")
        self.mode, self.shape, self.device = mode, (n, d), device
        if mode == "dense":
            self.dense = torch.from_numpy(smooth(x, adjacency, t)).to(device)
        else:
            xs = sp.csr_matrix(x, dtype=np.float32)
            h32 = sp.csr_matrix(h, dtype=np.float32)
            self.t = t
            if device.type == "cpu":
                self.x, self.xt, self.h = xs, xs.T.tocsr(), h32
            else:
                self.x = _to_csr_tensor(xs, device)
                self.xt = _to_csr_tensor(xs.T.tocsr(), device)
                self.h = _to_csr_tensor(h32, device)

    def matmul(self, w: torch.Tensor) -> torch.Tensor:
        """X̃ @ w, differentiable in ``w`` (d×D)."""
        if self.mode == "dense":
            return self.dense @ w
        return _SparseChain.apply(w, self)

    def matmul_pair(self, w1: torch.Tensor, w2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(X̃ @ w1ᵀ, X̃ @ w2ᵀ) for two D×d weights, differentiable in both; equal to slicing
        ``matmul(cat([w1, w2]).T)`` but without the slices' N×2D backward buffers."""
        if self.mode == "dense":
            out = self.dense @ torch.cat([w1, w2], 0).T
            return out[:, :w1.size(0)], out[:, w1.size(0):]
        return _SparsePair.apply(w1, w2, self)

    def materialize(self) -> torch.Tensor:
        """Dense X̃ (N×d); only for the initial K-means and baselines."""
        if self.mode == "dense":
            return self.dense
        eye = torch.eye(self.shape[1], device=self.device)
        with torch.no_grad():
            return _SparseChain.apply(eye, self)

    def row_block(self, start: int, stop: int) -> SmoothedFeatures:
        """Rows ``[start, stop)`` of X̃ as a dense instance: one rank's shard under DDP."""
        block = object.__new__(SmoothedFeatures)
        block.mode, block.device = "dense", self.device
        block.dense = self.materialize()[start:stop].clone()
        block.shape = tuple(block.dense.shape)
        return block
