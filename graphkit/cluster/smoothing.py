"""Laplacian smoothing X̃ = (D̂^-1/2 (A + I) D̂^-1/2)^t X, kept sparse, and a linear layer on it.

The smoothing is the low-pass filter of AGE/SGC that CCGC applies once before training. A linear
layer on X̃ costs N·d·D per product; when X is sparse (bag-of-words, one-hot degrees) the same
product is cheaper as H^t (X W): nnz(X)·D + t·nnz(H)·D. :class:`SmoothedFeatures` picks the cheaper
of the two exact forms, which is what makes 400 CCGC epochs on Cora take seconds on a CPU.

With numba installed (``pip install graphkit[fast]``) the sparse CPU form of the encoder pair
(:meth:`SmoothedFeatures.encode_pair`) runs fused numba kernels (chain, bias and row
normalisation forward; normalisation backward and transposed chain backward), multi-threaded over
column blocks; without numba, or with ``GRAPHKIT_NUMBA=0``, it is scipy's CSR products plus torch's
element-wise ops. Both are exact; they differ in float32 rounding only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from graphkit.errors import GraphError

try:  # the optional fast path (graphkit[fast]); scipy + torch otherwise
    from graphkit.cluster import _numba_kernels as _NUMBA
except ImportError:  # pragma: no cover - depends on the environment
    _NUMBA = None


def numba_available() -> bool:
    """Whether the numba kernels can be used (numba importable and ``GRAPHKIT_NUMBA`` is not 0)."""
    return _NUMBA is not None and os.environ.get("GRAPHKIT_NUMBA", "1") != "0"


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


NORM_EPS = 1e-12
"""F.normalize's default eps: the divisor is max(‖y‖, eps)."""


_KERNEL_THREADS: list[int] = []
"""Thread count for the numba kernels set by :func:`kernel_threads` (innermost last)."""


def _numba_threads() -> int:
    """Threads for a numba kernel: the :func:`kernel_threads` count, else torch's."""
    import numba
    wanted = _KERNEL_THREADS[-1] if _KERNEL_THREADS else torch.get_num_threads()
    threads = max(1, min(wanted, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def kernel_threads(enabled: bool = True) -> Iterator[int]:
    """Run torch single-threaded and give its thread count to the numba kernels and to
    :func:`parallel_pair` inside the block (CCGC's fit with the numba kernels).

    Why: torch's OpenMP workers spin-wait after every parallel op, and the numba workers then
    compete with them for the cores; on a 2-core machine shared with other jobs that made a
    2-thread seed ~5x slower than a 1-thread one. With torch on one thread nothing spins, the
    numba kernels (most of the work) use all threads, and the few large torch GEMMs run two at
    a time on Python threads. Yields the thread count."""
    threads = torch.get_num_threads()
    if not enabled:
        yield threads
        return
    from threadpoolctl import threadpool_limits
    _KERNEL_THREADS.append(threads)
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):  # scipy's BLAS (the warm-up ssyrk) too
            yield threads
    finally:
        _KERNEL_THREADS.pop()
        torch.set_num_threads(threads)


def parallel_pair(f: Callable[[], torch.Tensor],
                  g: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(), g()), on two Python threads inside :func:`kernel_threads` with ≥ 2 threads (torch
    releases the GIL in its ops), else one after the other."""
    if not _KERNEL_THREADS or _KERNEL_THREADS[-1] < 2:
        return f(), g()
    future = _pool(2).submit(g)
    return f(), future.result()


def _block_width(n: int, dims: int) -> int:
    """Columns per numba chain block: a whole encoder (fastest on Cora at 1 and 2 threads: the
    per-non-zero overhead is amortised over the longest rows), capped so that the two N×cb
    buffers of each thread stay under ~64 MiB on large graphs."""
    return max(16, min(dims, (1 << 23) // max(n, 1)))


class _NumbaEncodePair(torch.autograd.Function):
    """(normalize(X̃ W1ᵀ + b1), normalize(X̃ W2ᵀ + b2)) with the fused numba kernels.

    The forward keeps the normalised outputs and the row norms; the backward turns the output
    gradients into dL/dy row by row and pushes them through Xᵀ H^t in the same column blocks,
    producing the weight and bias gradients without any N×D intermediate beyond the
    per-thread block buffers."""

    @staticmethod
    def forward(ctx: Any, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                b2: torch.Tensor, ops: SmoothedFeatures,
                rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        _numba_threads()
        n, dims = ops.shape[0], w1.size(0)
        m = rows.size if rows.size else n
        out1 = np.empty((m, dims), np.float32)
        out2 = np.empty((m, dims), np.float32)
        x, h = ops.x, ops.h
        cb = _block_width(n, dims)
        _NUMBA.chain_forward(x.indptr, x.indices, x.data, h.indptr, h.indices, h.data, ops.t,
                             _np(w1), _np(w2), out1, out2, cb, *ops._workspace(dims, cb),
                             rows)
        norms1 = np.empty(m, np.float32)
        norms2 = np.empty(m, np.float32)
        eps = np.float32(NORM_EPS)
        _NUMBA.normalize_rows(out1, _np(b1), norms1, eps)
        _NUMBA.normalize_rows(out2, _np(b2), norms2, eps)
        z1, z2 = torch.from_numpy(out1), torch.from_numpy(out2)
        ctx.ops, ctx.norms, ctx.rows = ops, (norms1, norms2), rows
        ctx.save_for_backward(z1, z2)
        return z1, z2

    @staticmethod
    def backward(ctx: Any, g1: torch.Tensor | None, g2: torch.Tensor | None):
        _numba_threads()
        z1, z2 = ctx.saved_tensors
        ops = ctx.ops
        eps = np.float32(NORM_EPS)
        zs = (z1.numpy(), z2.numpy())
        gs = [np.zeros_like(z) if g is None else _np(g) for g, z in zip((g1, g2), zs)]
        coef = []
        for g, z, norms in zip(gs, zs, ctx.norms):
            dots, inv = np.empty_like(norms), np.empty_like(norms)
            _NUMBA.normalize_coefficients(g, z, norms, eps, dots, inv)
            coef.append((dots, inv))
        dims, d = z1.size(1), ops.shape[1]
        gw1, gw2 = np.empty((dims, d), np.float32), np.empty((dims, d), np.float32)
        gb1, gb2 = np.empty(dims, np.float32), np.empty(dims, np.float32)
        xt, h = ops.xt, ops.h
        n = ops.shape[0]
        cb = _block_width(n, dims)
        _NUMBA.chain_backward(xt.indptr, xt.indices, xt.data, h.indptr, h.indices, h.data, ops.t,
                              gs[0], gs[1], zs[0], zs[1], coef[0][0], coef[1][0], coef[0][1],
                              coef[1][1], gw1, gw2, gb1, gb2, cb, *ops._workspace(dims, cb),
                              n, ctx.rows)
        return (torch.from_numpy(gw1), torch.from_numpy(gb1), torch.from_numpy(gw2),
                torch.from_numpy(gb2), None, None)


def _np(t: torch.Tensor) -> np.ndarray:
    """A C-contiguous float32 numpy view (or copy) of a CPU tensor."""
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)


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
                for mat in (self.x, self.xt, self.h):  # numba wants int32/int64, sorted, no dups
                    mat.sum_duplicates()
                    mat.sort_indices()
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

    def _workspace(self, dims: int, cb: int) -> tuple[np.ndarray, np.ndarray]:
        """The numba chain's block buffers (blocks×2×N×cb and blocks×d×cb), kept between calls
        (a forward or backward runs at a time; the kernels overwrite them)."""
        blocks = 2 * ((dims + cb - 1) // cb)
        key = (blocks, cb)
        if getattr(self, "_ws_key", None) != key:
            n, d = self.shape
            self._ws = (np.empty((blocks, 2, n * cb), np.float32),  # flat: the kernels reshape
                        np.empty((blocks, d * cb), np.float32))    # to C-contiguous blocks
            self._ws_key = key
        return self._ws

    @property
    def kernel(self) -> str:
        """Which implementation :meth:`encode_pair` uses: ``"numba"``, ``"scipy"`` (sparse CPU
        without numba), ``"torch-sparse"`` (sparse on an accelerator) or ``"dense"``."""
        if self.mode == "dense":
            return "dense"
        if isinstance(self.h, torch.Tensor):
            return "torch-sparse"
        return "numba" if numba_available() else "scipy"

    def encode_pair(self, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                    b2: torch.Tensor, rows: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalize(X̃ w1ᵀ + b1), normalize(X̃ w2ᵀ + b2)) row-wise, differentiable in all four:
        CCGC's two linear encoders. Fused numba kernels when :attr:`kernel` is ``"numba"``.

        With ``rows`` (node indices), only those rows are returned, in that order. The numba
        kernels then skip the other rows where the chain allows it (the last H step and the
        normalisation forward, the first transposed H step and the normalisation backward)."""
        if self.kernel == "numba":
            idx = np.zeros(0, np.int64) if rows is None else \
                np.ascontiguousarray(rows.detach().cpu().numpy(), dtype=np.int64)
            if rows is not None and idx.size == 0:
                empty = w1.new_zeros((0, w1.size(0)))
                return empty, empty.clone()
            return _NumbaEncodePair.apply(w1, b1, w2, b2, self, idx)
        out1, out2 = self.matmul_pair(w1, w2)
        if rows is not None:
            out1, out2 = out1[rows], out2[rows]
        return F.normalize(out1 + b1, dim=1), F.normalize(out2 + b2, dim=1)

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
