"""K-means in torch, on CPU or CUDA, in row batches so N×K×d is never formed.

Two initialisations:

* ``"spread"`` — the one in CCGC's released ``kmeans_gpu.py``: ``n_init`` random draws of K data
  points, keep the draw with the smallest sum of squared distances from *all* points to *all* K
  centres (computed in factored form), then a single Lloyd run until the squared total centre
  shift is below ``tol``.
* ``"k-means++"`` — ``n_init`` k-means++ seedings, each followed by Lloyd; the run with the lowest
  inertia wins (the usual scikit-learn rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from graphkit.distributed import RowShard
from graphkit.errors import GraphError


@dataclass
class KMeansResult:
    labels: torch.Tensor
    """Cluster per row (int64, N)."""
    centers: torch.Tensor
    """K×d centres."""
    min_dist: torch.Tensor
    """Squared distance of each row to its assigned centre at the last assignment step."""
    inertia: float
    n_iter: int


def _sq_dist(x: torch.Tensor, x_sq: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return (x_sq[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]).clamp_min_(0)


def assign(x: torch.Tensor, centers: torch.Tensor, batch_size: int = 65536,
           x_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre and its squared distance for every row, ``batch_size`` rows at a time."""
    x_sq = (x * x).sum(1) if x_sq is None else x_sq
    labels = torch.empty(x.size(0), dtype=torch.long, device=x.device)
    dist = torch.empty(x.size(0), dtype=x.dtype, device=x.device)
    for s in range(0, x.size(0), batch_size):
        d = _sq_dist(x[s:s + batch_size], x_sq[s:s + batch_size], centers)
        dist[s:s + batch_size], labels[s:s + batch_size] = d.min(1)
    return labels, dist


def _lloyd(x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, max_iter: int,
           tol: float, batch_size: int, shard: RowShard) -> KMeansResult:
    k = centers.size(0)
    labels, dist = assign(x, centers, batch_size, x_sq)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007  (n_iter is reported after the loop)
        # centroid sums and counts are the only cross-rank traffic: K×d per Lloyd step
        sums = shard.sum(torch.zeros_like(centers).index_add_(0, labels, x))
        counts = shard.sum(torch.bincount(labels, minlength=k).to(x.dtype))
        # an empty cluster keeps its old centre (the released code would produce NaN here)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers)
        shift = float(((new - centers) ** 2).sum(1).sqrt().sum())
        centers = new
        if shift ** 2 < tol:
            break
        labels, dist = assign(x, centers, batch_size, x_sq)
    return KMeansResult(labels, centers, dist, float(shard.sum(dist.sum())), n_iter)


def _plus_plus(x: torch.Tensor, x_sq: torch.Tensor, k: int, gen: torch.Generator,
               batch_size: int, shard: RowShard) -> torch.Tensor:
    n = shard.n_total
    first = torch.randint(n, (1,), generator=gen)
    centers = shard.rows(x, first.to(x.device))
    _, dist = assign(x, centers, batch_size, x_sq)
    for _ in range(1, k):
        weights = shard.gather(dist).double().cpu()  # N scalars, never N×d
        idx = torch.multinomial(weights, 1, generator=gen) if weights.sum() > 0 \
            else torch.randint(n, (1,), generator=gen)
        centers = torch.cat([centers, shard.rows(x, idx.to(x.device))])
        _, d_new = assign(x, centers[-1:], batch_size, x_sq)
        dist = torch.minimum(dist, d_new)
    return centers


def kmeans(x: torch.Tensor, n_clusters: int, *, n_init: int = 20, init: str = "spread",
           max_iter: int = 500, tol: float = 1e-4, batch_size: int = 65536,
           generator: torch.Generator | None = None,
           shard: RowShard | None = None) -> KMeansResult:
    """Cluster the rows of ``x`` (N×d, any device) into ``n_clusters`` groups.

    Args:
        x: data matrix; float tensor on CPU or CUDA.
        n_clusters: K, between 1 and N.
        n_init: number of initialisations.
        init: ``"spread"`` (CCGC's released rule, one Lloyd run) or ``"k-means++"`` (one Lloyd
            run per seeding, lowest inertia kept).
        max_iter: Lloyd iteration cap.
        tol: stop when the squared sum of centre shifts is below this.
        batch_size: rows per distance block (memory is ``batch_size × K``).
        generator: CPU torch generator for reproducible draws; under ``shard`` every rank
            must pass an identically seeded one (the draws are of global row numbers).
        shard: ``x`` is this rank's block of rows of a row-sharded matrix
            (:class:`~graphkit.distributed.RowShard`); centroid sums and counts are all-reduced
            each Lloyd step, and the result is the single-process one up to float summation
            order. ``labels`` and ``min_dist`` are then this rank's rows.

    Returns:
        a :class:`KMeansResult`.
    """
    if x.dim() != 2:
        raise GraphError(f"x: expected a 2-D matrix, got shape {tuple(x.shape)}")
    shard = shard or RowShard(x.size(0), 0, 1)
    if x.size(0) != shard.size:
        raise GraphError(f"x: has {x.size(0)} rows but this rank's shard holds {shard.size}")
    n = shard.n_total
    if not 1 <= n_clusters <= n:
        raise GraphError(f"n_clusters: must be between 1 and the {n} rows, got {n_clusters}")
    # a finite sum proves every entry finite (NaN or ±inf would propagate) at a tenth of the
    # cost of the element-wise check, which runs only when the sum is not finite (NaN, inf or an
    # overflow); K-means runs 40+ times per CCGC fit
    finite = bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())
    finite_ranks = shard.sum(torch.tensor(int(finite), dtype=torch.int64, device=x.device))
    if not bool(finite_ranks == shard.world):
        raise GraphError("x: contains NaN or infinite values")
    gen = generator or torch.Generator().manual_seed(0)
    x = x.float() if not x.is_floating_point() else x
    x_sq = (x * x).sum(1)
    if init == "spread":
        # sum_i sum_k |x_i - c_k|^2 = K sum|x|^2 - 2 <sum_i x_i, sum_k c_k> + N sum|c|^2
        total_sq, col_sum = float(shard.sum(x_sq.sum())), shard.sum(x.sum(0))
        best, best_cost = None, float("inf")
        for _ in range(n_init):
            idx = torch.randperm(n, generator=gen)[:n_clusters].to(x.device)
            c = shard.rows(x, idx)
            cost = (n_clusters * total_sq - 2 * float(col_sum @ c.sum(0))
                    + n * float((c * c).sum(1).sum()))
            if cost < best_cost:
                best, best_cost = c, cost
        return _lloyd(x, x_sq, best.clone(), max_iter, tol, batch_size, shard)
    if init == "k-means++":
        runs = [_lloyd(x, x_sq, _plus_plus(x, x_sq, n_clusters, gen, batch_size, shard),
                       max_iter, tol, batch_size, shard) for _ in range(n_init)]
        return min(runs, key=lambda r: r.inertia)
    raise GraphError(f"init: expected 'spread' or 'k-means++', got {init!r}")
