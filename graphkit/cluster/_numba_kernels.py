"""numba kernels for CCGC's encoder pair Z_e = normalize(H^t X W_eᵀ + b_e) on the CPU.

Imported only when numba is installed (``pip install graphkit[fast]``); :mod:`.smoothing` falls
back to scipy otherwise. Every kernel is exact (no approximation of the chain): the sums run in
CSR index order in float32, like scipy's, only the blocking and threading differ.

Layout: the two encoders' weights are (D×d) each, the outputs (2, N, D). The chain kernels split
the 2·D output columns into blocks of ``cb`` columns and run the whole chain (X step and t H steps)
for one block on one thread: the N×cb working buffers stay in that core's L2, and the blocks need
no synchronisation between chain steps, so the work spreads over the threads with one ``prange``.
"""

from __future__ import annotations

import os

import numpy as np
from numba import config, njit, prange

if "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's own pthread pool, whose idle workers sleep. Its OpenMP layer would share torch's
    # libgomp: launching it resets torch's thread count, and OpenMP workers spin after each
    # region, which on a shared 2-core machine turned a 14 s seed into 120 s (see
    # benchmarks/notes/cluster.md, Speed)
    config.THREADING_LAYER = "workqueue"

REDUCE = {"reassoc", "contract"}
"""fastmath flags for the kernels that sum along a row (norms, dot products): without
reassociation a float sum is one serial dependency chain and does not vectorise (normalising
Cora's 2708×500 outputs took 1.2 ms instead of ~0.2 ms). No NaN/inf assumptions are made."""


@njit(cache=True, inline="always")
def _gather_row(indptr, indices, data, src, d, r):
    """d = Σ_p data[p] · src[indices[p]] over CSR row ``r`` (``d`` overwritten).

    Eight (then four, two, one) non-zeros per pass over the row: a plain axpy per non-zero is
    bound by the stores to ``d`` (numba cannot keep the row in registers, it may alias
    ``src``); summing several source rows before the store divides them (~1.5x faster on Cora).
    The sums are grouped pairwise, so they are not bit-identical to scipy's one-at-a-time order."""
    w = d.shape[0]
    p = indptr[r]
    end = indptr[r + 1]
    for c in range(w):
        d[c] = 0.0
    while p + 8 <= end:  # X and Xᵀ rows have ~18 and ~34 non-zeros on Cora
        v0, v1, v2, v3 = data[p], data[p + 1], data[p + 2], data[p + 3]
        v4, v5, v6, v7 = data[p + 4], data[p + 5], data[p + 6], data[p + 7]
        s0, s1 = src[indices[p]], src[indices[p + 1]]
        s2, s3 = src[indices[p + 2]], src[indices[p + 3]]
        s4, s5 = src[indices[p + 4]], src[indices[p + 5]]
        s6, s7 = src[indices[p + 6]], src[indices[p + 7]]
        for c in range(w):
            d[c] += (((v0 * s0[c] + v1 * s1[c]) + (v2 * s2[c] + v3 * s3[c]))
                     + ((v4 * s4[c] + v5 * s5[c]) + (v6 * s6[c] + v7 * s7[c])))
        p += 8
    if p + 4 <= end:
        v0, v1, v2, v3 = data[p], data[p + 1], data[p + 2], data[p + 3]
        s0, s1 = src[indices[p]], src[indices[p + 1]]
        s2, s3 = src[indices[p + 2]], src[indices[p + 3]]
        for c in range(w):
            d[c] += (v0 * s0[c] + v1 * s1[c]) + (v2 * s2[c] + v3 * s3[c])
        p += 4
    if p + 2 <= end:
        v0, v1 = data[p], data[p + 1]
        s0, s1 = src[indices[p]], src[indices[p + 1]]
        for c in range(w):
            d[c] += v0 * s0[c] + v1 * s1[c]
        p += 2
    if p < end:
        v0 = data[p]
        s0 = src[indices[p]]
        for c in range(w):
            d[c] += v0 * s0[c]


@njit(cache=True)
def _spmm_block(indptr, indices, data, src, dst, rows):
    """dst[i] = Σ_p data[p] · src[indices[p]] for i < rows (both row-major, cb columns)."""
    for i in range(rows):
        _gather_row(indptr, indices, data, src, dst[i], i)


@njit(cache=True, inline="always")
def _view(bufs, blk, k, n, wd):
    """Buffer k (0 or 1) of block ``blk`` as a C-contiguous n×wd matrix."""
    return bufs[blk, k, :n * wd].reshape((n, wd))


@njit(cache=True)
def _spmm_rows(indptr, indices, data, src, dst, rows):
    """dst[k] = Σ_p data[p] · src[indices[p]] over the CSR row rows[k] (gather, selected rows)."""
    for k in range(rows.shape[0]):
        _gather_row(indptr, indices, data, src, dst[k], rows[k])


@njit(cache=True)
def _spmm_scatter(indptr, indices, data, src, dst, rows):
    """dst = Mᵀ S for a symmetric CSR M whose input S is zero outside ``rows`` (src[k] is row
    rows[k] of S): dst[j] = Σ_k M[rows[k], j] · src[k]. The first transposed step of the
    backward when the loss touched only ``rows``: it reads those rows only."""
    w = dst.shape[1]
    for i in range(dst.shape[0]):
        for c in range(w):
            dst[i, c] = 0.0
    for k in range(rows.shape[0]):
        r = rows[k]
        s = src[k]
        for p in range(indptr[r], indptr[r + 1]):
            v = data[p]
            d = dst[indices[p]]
            for c in range(w):
                d[c] += v * s[c]


@njit(cache=True, inline="always")
def _block_span(blk, per, cb, dim):
    """Column block ``blk`` of the two encoders' 2·``per`` blocks: (belongs to the first encoder,
    its first column, its width)."""
    c0 = (blk % per) * cb
    return blk < per, c0, min(cb, dim - c0)


@njit(parallel=True, cache=True)
def chain_forward(xp, xi, xv, hp, hi, hv, t, w1, w2, out1, out2, cb, bufs, packs, rows):
    """out_e = (H^t X W_eᵀ)[rows] for e = 1, 2 (W_e is D×d, out_e len(rows)×D, overwritten;
    the bias is added by :func:`normalize_rows`). ``rows`` empty means all N rows; otherwise
    only the last H step is restricted to them (every earlier step needs all rows).

    ``bufs`` (blocks×2×N·cb) and ``packs`` (blocks×d·cb) are reused workspaces: fresh
    allocations each call cost page faults (~20 MB per forward on Cora)."""
    n = xp.shape[0] - 1  # nodes (out1 has only len(rows) rows when restricted)
    dim, d = w1.shape
    per = (dim + cb - 1) // cb
    for blk in prange(2 * per):
        first, c0, wd = _block_span(blk, per, cb, dim)
        w = w1 if first else w2
        dst = out1 if first else out2
        wt = packs[blk, :d * wd].reshape((d, wd))  # this block of Wᵀ, row-major (~1 ms/epoch)
        for c in range(wd):
            for j in range(d):
                wt[j, c] = w[c0 + c, j]
        full = rows.shape[0] == 0
        direct = wd == dim and t > 0  # one block per encoder: the last step writes dst itself
        # ping-pong between the block's two buffers by index
        cur = 0
        _spmm_block(xp, xi, xv, wt, _view(bufs, blk, cur, n, wd), n)
        for s in range(t):
            a = _view(bufs, blk, cur, n, wd)
            last = s == t - 1
            if last and direct:
                if full:
                    _spmm_block(hp, hi, hv, a, dst, n)
                else:
                    _spmm_rows(hp, hi, hv, a, dst, rows)
            elif last and not full:
                _spmm_rows(hp, hi, hv, a, _view(bufs, blk, 1 - cur, n, wd), rows)  # compact
                cur = 1 - cur
            else:
                _spmm_block(hp, hi, hv, a, _view(bufs, blk, 1 - cur, n, wd), n)
                cur = 1 - cur
        a = _view(bufs, blk, cur, n, wd)
        if not direct:
            m = dst.shape[0]
            for k in range(m):
                i = k if full or t > 0 else rows[k]  # after a restricted step a is compact
                for c in range(wd):
                    dst[k, c0 + c] = a[i, c]


@njit(parallel=True, cache=True, fastmath=REDUCE)
def normalize_rows(out, bias, norms, eps):
    """out[i] = (out[i] + bias) / max(‖out[i] + bias‖, eps) in place (F.normalize);
    norms[i] = that divisor."""
    n, dim = out.shape
    for i in prange(n):
        s = np.float32(0.0)
        for c in range(dim):
            v = out[i, c] + bias[c]
            out[i, c] = v
            s += v * v
        nrm = max(np.sqrt(s), eps)
        norms[i] = nrm
        inv = np.float32(1.0) / nrm
        for c in range(dim):
            out[i, c] = out[i, c] * inv


@njit(parallel=True, cache=True, fastmath=REDUCE)
def normalize_coefficients(g, z, norms, eps, dots, inv):
    """Per row of F.normalize's backward: dots[i] = z[i]·g[i] (0 where the norm was clamped,
    whose gradient is g/eps) and inv[i] = 1/norm, so that dL/dy = (g − z·dots) · inv."""
    n, dim = g.shape
    for i in prange(n):
        inv[i] = np.float32(1.0) / norms[i]
        s = np.float32(0.0)
        if norms[i] > eps:
            for c in range(dim):
                s += z[i, c] * g[i, c]
        dots[i] = s


@njit(parallel=True, cache=True)
def chain_backward(xtp, xti, xtv, hp, hi, hv, t, g1, g2, z1, z2, dots1, dots2, inv1, inv2,
                   gw1, gw2, gb1, gb2, cb, bufs, packs, n, rows):
    """The encoder pair's backward through normalize and the chain, per column block:
    dL/dy = (g − z·dots)·inv (see :func:`normalize_coefficients`), gb = Σ_i dL/dy_i and
    gw = (Xᵀ H^t dL/dy)ᵀ (H symmetric); gw, gb overwritten. With ``rows`` non-empty, g and z
    hold only those rows of the N (the others have zero gradient)."""
    m, dim = g1.shape
    full = rows.shape[0] == 0
    d = gw1.shape[1]
    per = (dim + cb - 1) // cb
    for blk in prange(2 * per):
        first, c0, wd = _block_span(blk, per, cb, dim)
        g = g1 if first else g2
        z = z1 if first else z2
        dots = dots1 if first else dots2
        inv = inv1 if first else inv2
        gw = gw1 if first else gw2
        gb = gb1 if first else gb2
        cur = 0
        a = _view(bufs, blk, cur, n, wd)
        for c in range(wd):
            gb[c0 + c] = 0.0
        for i in range(m):
            s = dots[i]
            k = inv[i]
            for c in range(wd):
                v = (g[i, c0 + c] - z[i, c0 + c] * s) * k
                a[i, c] = v
                gb[c0 + c] += v
        for step in range(t):
            a = _view(bufs, blk, cur, n, wd)
            y = _view(bufs, blk, 1 - cur, n, wd)
            if step == 0 and not full:
                _spmm_scatter(hp, hi, hv, a, y, rows)
            else:
                _spmm_block(hp, hi, hv, a, y, n)
            cur = 1 - cur
        if t == 0 and not full:  # expand the compact rows to N
            a = _view(bufs, blk, cur, n, wd)
            y = _view(bufs, blk, 1 - cur, n, wd)
            for i in range(n):
                for c in range(wd):
                    y[i, c] = 0.0
            for k in range(m):
                for c in range(wd):
                    y[rows[k], c] = a[k, c]
            cur = 1 - cur
        a = _view(bufs, blk, cur, n, wd)
        acc = packs[blk, :d * wd].reshape((d, wd))
        _spmm_block(xtp, xti, xtv, a, acc, d)
        for c in range(wd):
            for j in range(d):
                gw[c0 + c, j] = acc[j, c]


@njit(parallel=True, cache=True, fastmath=REDUCE)
def pair_dots(z1, z2, rows1, rows2, out):
    """out[p] = z1[rows1[p]] · z2[rows2[p]] (the positive pairs of the cluster-guided loss)."""
    dim = z1.shape[1]
    for p in prange(rows1.shape[0]):
        a = z1[rows1[p]]
        b = z2[rows2[p]]
        s = np.float32(0.0)
        for c in range(dim):
            s += a[c] * b[c]
        out[p] = s


@njit(parallel=True, cache=True)
def segment_means(z, members, bounds, out):
    """out[k] = mean of z[members[bounds[k]:bounds[k + 1]]] (the cluster centres)."""
    dim = z.shape[1]
    for k in prange(bounds.shape[0] - 1):
        acc = np.zeros(dim, np.float64)
        for q in range(bounds[k], bounds[k + 1]):
            row = z[members[q]]
            for c in range(dim):
                acc[c] += row[c]
        m = bounds[k + 1] - bounds[k]
        for c in range(dim):
            out[k, c] = acc[c] / m


@njit(parallel=True, cache=True)
def cluster_loss_backward(z1, z2, members, bounds, dc1, dc2, rows1, rows2, pair_scale,
                          g1, g2):
    """Gradient of the cluster-guided loss into g1, g2 (N×D, overwritten; rows that are in no
    cluster get 0): every member row gets its centre's gradient / cluster size, and each positive
    pair (rows1[p], rows2[p]) adds pair_scale · the other view's row. rows1 has no repeats, nor
    has rows2, so the pair loop writes disjoint rows and runs in parallel."""
    n, dim = g1.shape
    for i in prange(n):
        for c in range(dim):
            g1[i, c] = 0.0
            g2[i, c] = 0.0
    for k in prange(bounds.shape[0] - 1):
        inv = np.float32(1.0 / (bounds[k + 1] - bounds[k]))
        for q in range(bounds[k], bounds[k + 1]):
            r = members[q]
            for c in range(dim):
                g1[r, c] = dc1[k, c] * inv
                g2[r, c] = dc2[k, c] * inv
    for p in prange(rows1.shape[0]):
        a = rows1[p]
        b = rows2[p]
        for c in range(dim):
            g1[a, c] += pair_scale * z2[b, c]
        for c in range(dim):
            g2[b, c] += pair_scale * z1[a, c]
