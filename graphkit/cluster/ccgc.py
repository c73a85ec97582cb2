"""CCGC: cluster-guided contrastive deep graph clustering.

Paper: "Cluster-guided Contrastive Graph Clustering Network", Xihong Yang, Yue Liu, Sihang Zhou,
Siwei Wang, Wenxuan Tu, Qun Zheng, Xinwang Liu, Liming Fang, En Zhu; AAAI 2023.
https://arxiv.org/abs/2301.01098

``variant="reference"`` reproduces the released training loop including its two quirks (the
lowest-labelled high-confidence cluster is skipped; gradients are never zeroed, so they accumulate
across epochs). ``variant="fixed"`` uses every cluster and zeroes gradients each step.

Nothing here is N×N: the warm-up loss mean((Z1 Z2ᵀ − I)²) is computed through the d×d Gram
matrices, X̃ is applied as sparse products (:class:`~graphkit.cluster.smoothing.SmoothedFeatures`)
and K-means runs in row batches. Labels are never an input; a benchmark that wants the paper's
best-epoch-by-ground-truth protocol passes ``callback`` to :meth:`CCGC.fit` and scores the
partitions itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.cluster.kmeans import KMeansResult, kmeans
from graphkit.cluster.smoothing import (
    SmoothedFeatures,
    kernel_threads,
    numba_available,
    parallel_pair,
)
from graphkit.data.validate import check_edge_index
from graphkit.distributed import RowShard
from graphkit.errors import GraphError
from graphkit.runtime import resolve_device

Callback = Callable[[int, np.ndarray, torch.Tensor], Any]


class _CrossFrobenius(torch.autograd.Function):
    """‖Z1 Z2ᵀ‖²_F = ⟨Z1ᵀZ1, Z2ᵀZ2⟩ with the hand-written gradient 2·Z1·(Z2ᵀZ2): four N·D²
    products instead of the six autograd would use for the two Gram matrices.

    Row-sharded over ranks, the D×D Gram matrices are sums of per-rank partial Grams (all-reduced),
    and each rank's gradient for its own rows is scaled by the world size because DDP averages
    (see :class:`graphkit.distributed.RowShard`)."""

    @staticmethod
    def forward(ctx: Any, z1: torch.Tensor, z2: torch.Tensor, shard: RowShard) -> torch.Tensor:
        g1, g2 = parallel_pair(lambda: _gram(z1), lambda: _gram(z2))
        g1, g2 = shard.sum(g1), shard.sum(g2)
        ctx.save_for_backward(z1, z2, g1, g2)
        ctx.world = shard.world
        return (g1 * g2).sum()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        z1, z2, g1, g2 = ctx.saved_tensors
        scale = 2 * grad * ctx.world
        d1, d2 = parallel_pair(lambda: _matmul(z1, g2), lambda: _matmul(z2, g1))
        return scale * d1, scale * d2, None


def _cpu_blas_ok(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous()
               for t in tensors)


# On the CPU the warm-up's N·D² products go through numpy's OpenBLAS: on these AMD EPYC machines
# it is faster than torch's MKL (Cora's 2708×500 @ 500×500: 11.3 vs 13.9 ms at one thread;
# zᵀz 6.1 ms, numpy calls ``ssyrk`` for a matrix times its own transpose), and unlike scipy's
# BLAS wrappers numpy releases the GIL, so the two products of :func:`parallel_pair` really run
# at once (two scipy ``sgemm``/``ssyrk`` calls on two threads took as long as one after the other).


def _gram(z: torch.Tensor) -> torch.Tensor:
    """zᵀz (symmetric)."""
    if not _cpu_blas_ok(z):
        return z.T @ z
    zn = z.detach().numpy()
    return torch.from_numpy(zn.T @ zn)


def _matmul(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """z @ g."""
    if not _cpu_blas_ok(z, g):
        return z @ g
    return torch.from_numpy(z.detach().numpy() @ g.detach().numpy())


def warmup_loss(z1: torch.Tensor, z2: torch.Tensor, shard: RowShard | None = None) -> torch.Tensor:
    """mean((Z1 Z2ᵀ − I)²) in O(N·D²): ‖Z1 Z2ᵀ‖²_F = ⟨Z1ᵀZ1, Z2ᵀZ2⟩ and tr(Z1 Z2ᵀ) = Σ Z1⊙Z2.

    With ``shard``, ``z1``/``z2`` are this rank's rows and the loss is the global one."""
    shard = shard or RowShard(z1.size(0), 0, 1)
    n = shard.n_total
    fro = _CrossFrobenius.apply(z1, z2, shard)
    trace = shard.sum((z1 * z2).sum())
    return (fro - 2.0 * trace + n) / (n * n)


def warmup_loss_dense(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """The released code's N×N form of :func:`warmup_loss` (tests only)."""
    eye = torch.eye(z1.size(0), dtype=z1.dtype, device=z1.device)
    return F.mse_loss(z1 @ z2.T, eye)


def high_confidence(min_dist: torch.Tensor, tau: float,
                    shard: RowShard | None = None) -> torch.Tensor:
    """Indices of the nodes strictly closer to their centroid than the ⌊τN⌋-th smallest distance
    (the released rule: global, not per cluster; at most ⌊τN⌋ nodes).

    With ``shard``, ``min_dist`` holds this rank's rows, the threshold is the global order
    statistic (from the gathered N distances) and the indices are local rows."""
    everything = min_dist if shard is None else shard.gather(min_dist)
    n = everything.numel()
    k = min(int(n * tau), n - 1)
    threshold = torch.sort(everything).values[k]
    return torch.nonzero(min_dist < threshold).view(-1)


def cluster_guided_loss(z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor,
                        confident: torch.Tensor, n_clusters: int, alpha: float,
                        skip_first: bool, gen: torch.Generator,
                        keep: float = 0.8, shard: RowShard | None = None) -> torch.Tensor | None:
    """Positive term over random same-cluster cross-view pairs plus α × the centre negative term.

    Args:
        z1, z2: L2-normalised embeddings of the two views (N×D).
        labels: pseudo-label per node from the latest K-means.
        confident: indices of the high-confidence nodes.
        n_clusters: K (the positive sum is divided by K even when a cluster is skipped).
        alpha: weight of the negative term.
        skip_first: reproduce the released off-by-one that ignores the lowest label.
        gen: CPU generator for the 80% subsets.
        keep: fraction of each cluster drawn for either view.
        shard: the embeddings are this rank's rows. Cluster sizes, the positive sum and the
            cluster centres are all-reduced from per-rank partial sums; the positive pairs are
            drawn within each rank's part of a cluster (cross-rank pairs would need an
            all-to-all of embedding rows), so the positive term has the single-process
            expectation but not its exact draw.

    Returns:
        the loss, or ``None`` when fewer than 2 clusters remain or the positive term is 0 (the
        released loop skips the step then).
    """
    shard = shard or RowShard(z1.size(0), 0, 1)
    lab = labels[confident]
    present = shard.sum(torch.bincount(lab, minlength=n_clusters))
    keys = torch.nonzero(present).view(-1).tolist()
    if skip_first:
        keys = keys[1:]
    if len(keys) < 2:
        return None
    # One gather per view for all clusters, not four per cluster: each gather's backward
    # zero-fills an N×D buffer, which dominated the cluster-guided epochs.
    members, firsts, seconds, bounds = [], [], [], [0]
    for key in keys:
        now = confident[lab == key]
        m = now.numel()
        size = int(m * keep)
        offset = bounds[-1]
        firsts.append(offset + torch.randperm(m, generator=gen)[:size])
        seconds.append(offset + torch.randperm(m, generator=gen)[:size])
        members.append(now)
        bounds.append(offset + m)
    members_all = torch.cat(members)
    if shard.trivial and _fast_loss(z1, z2):
        return _cluster_loss_numba(z1, z2, members_all, bounds, torch.cat(firsts),
                                   torch.cat(seconds), n_clusters, alpha)
    h1, h2 = z1[members_all], z2[members_all]
    dots = (h1[torch.cat(firsts).to(h1.device)] * h2[torch.cat(seconds).to(h1.device)]).sum(1)
    pos = z1.new_zeros(())
    c1, c2 = [], []
    start = 0
    for i in range(len(keys)):
        size = firsts[i].numel()
        pos = pos + (2.0 - 2.0 * dots[start:start + size].clone()).sum()
        start += size
        rows = slice(bounds[i], bounds[i + 1])
        if shard.trivial:
            c1.append(h1[rows].mean(0))
            c2.append(h2[rows].mean(0))
        else:  # sums here, divided by the global sizes below
            c1.append(h1[rows].sum(0))
            c2.append(h2[rows].sum(0))
    pos = shard.sum(pos)
    if float(pos.detach()) == 0.0:
        return None
    pos = pos / n_clusters
    c1, c2 = torch.stack(c1), torch.stack(c2)
    if not shard.trivial:
        sizes = present[keys].to(c1.dtype)[:, None]
        c1, c2 = shard.sum(c1) / sizes, shard.sum(c2) / sizes
    s = F.normalize(c1, dim=1) @ F.normalize(c2, dim=1).T
    s = s * (1.0 - torch.eye(s.size(0), dtype=s.dtype, device=s.device))
    return pos + alpha * (s * s).mean()


def _fast_loss(z1: torch.Tensor, z2: torch.Tensor) -> bool:
    """Whether :func:`cluster_guided_loss` can use the numba kernels (float32 CPU tensors)."""
    return (numba_available() and z1.device.type == "cpu" and z2.device.type == "cpu"
            and z1.dtype == torch.float32 and z2.dtype == torch.float32)


class _ClusterLossNumba(torch.autograd.Function):
    """The cluster-guided loss's value (computed by :func:`_cluster_loss_numba`) with a
    hand-written backward: one pass writes the N×D gradients (centre terms over each cluster's
    members, pair terms on the pair rows) instead of autograd's gathers, index_adds and
    zero-filled N×D buffers per indexing op."""

    @staticmethod
    def forward(ctx: Any, z1: torch.Tensor, z2: torch.Tensor, value: float,
                saved: tuple) -> torch.Tensor:
        ctx.saved = saved
        ctx.z = (z1.detach(), z2.detach())
        return torch.tensor(value, dtype=z1.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        from graphkit.cluster import _numba_kernels as kernels
        members, bounds, rows1, rows2, dc1, dc2, n_clusters = ctx.saved
        z1, z2 = (_contiguous_np(z) for z in ctx.z)
        gamma = float(grad)
        g1, g2 = np.empty_like(z1), np.empty_like(z2)
        kernels.cluster_loss_backward(z1, z2, members, bounds,
                                      np.ascontiguousarray(dc1 * gamma, dtype=np.float32),
                                      np.ascontiguousarray(dc2 * gamma, dtype=np.float32),
                                      rows1, rows2, np.float32(-2.0 * gamma / n_clusters),
                                      g1, g2)
        return (torch.from_numpy(g1) if ctx.needs_input_grad[0] else None,
                torch.from_numpy(g2) if ctx.needs_input_grad[1] else None, None, None)


def _contiguous_np(z: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(z.detach().numpy(), dtype=np.float32)


def _cluster_loss_numba(z1: torch.Tensor, z2: torch.Tensor, members: torch.Tensor,
                        bounds: list[int], firsts: torch.Tensor, seconds: torch.Tensor,
                        n_clusters: int, alpha: float) -> torch.Tensor | None:
    """:func:`cluster_guided_loss` after the draws, with numba kernels (same terms and scaling:
    positive sum / K plus α × mean squared off-diagonal centre cosine)."""
    from graphkit.cluster import _numba_kernels as kernels
    a, b = _contiguous_np(z1), _contiguous_np(z2)
    members_np = members.numpy().astype(np.int64)
    rows1 = members_np[firsts.numpy()]
    rows2 = members_np[seconds.numpy()]
    dots = np.empty(rows1.size, np.float32)
    kernels.pair_dots(a, b, rows1, rows2, dots)
    pos = float(np.sum(2.0 - 2.0 * dots.astype(np.float64)))
    if pos == 0.0:
        return None
    bounds_np = np.asarray(bounds, dtype=np.int64)
    k = bounds_np.size - 1
    c1 = np.empty((k, a.shape[1]), np.float32)
    c2 = np.empty((k, a.shape[1]), np.float32)
    kernels.segment_means(a, members_np, bounds_np, c1)
    kernels.segment_means(b, members_np, bounds_np, c2)
    # the K×D centre term is tiny: plain autograd gives its gradient w.r.t. the centres
    t1, t2 = torch.from_numpy(c1).requires_grad_(), torch.from_numpy(c2).requires_grad_()
    with torch.enable_grad():
        s = F.normalize(t1, dim=1) @ F.normalize(t2, dim=1).T
        s = s * (1.0 - torch.eye(k, dtype=s.dtype))
        neg = alpha * (s * s).mean()
        dc1, dc2 = torch.autograd.grad(neg, [t1, t2])
    value = pos / n_clusters + float(neg.detach())
    saved = (members_np, bounds_np, rows1, rows2, dc1.numpy(), dc2.numpy(), n_clusters)
    return _ClusterLossNumba.apply(z1, z2, value, saved)


def _as_scipy_adjacency(adj: Any, n: int) -> sp.csr_matrix:
    if isinstance(adj, torch.Tensor):
        if adj.layout != torch.strided:  # keep a sparse input sparse: never densify N x N
            coo = adj.detach().to_sparse_coo().coalesce().cpu()
            row, col = coo.indices().numpy()
            adj = sp.csr_matrix((coo.values().numpy(), (row, col)), shape=tuple(coo.shape))
        else:
            adj = adj.detach().cpu().numpy()
    if sp.issparse(adj):
        a = sp.csr_matrix(adj)
    else:
        arr = np.asarray(adj)
        if arr.ndim != 2:
            raise GraphError(f"adjacency: expected a 2-D matrix, got shape {arr.shape}")
        a = sp.csr_matrix(arr)
    if a.shape[0] != a.shape[1]:
        raise GraphError(f"adjacency: must be square, got shape {a.shape}")
    if a.shape[0] != n:
        raise GraphError(f"adjacency: has {a.shape[0]} nodes but the features have {n} rows")
    if a.nnz and not np.all(np.isfinite(a.data)):
        raise GraphError("adjacency: contains NaN or infinite entries")
    return a.astype(np.float32)


def _as_features(x: Any) -> sp.csr_matrix | np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.to_dense() if x.layout != torch.strided else x
        x = x.detach().cpu().numpy()
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float32)
        vals = x.data
    else:
        x = np.asarray(x, dtype=np.float32)
        vals = x
    if x.ndim != 2:
        raise GraphError(f"x: expected a 2-D feature matrix, got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise GraphError(f"x: is empty (shape {x.shape})")
    if not np.all(np.isfinite(vals)):
        bad = np.argwhere(~np.isfinite(x.toarray() if sp.issparse(x) else x))[0]
        raise GraphError(f"x: contains NaN or infinite values (first at row {bad[0]}, "
                         f"column {bad[1]})")
    return x


def prepare_graph(data: Any) -> tuple[sp.csr_matrix | np.ndarray, sp.csr_matrix]:
    """Features and scipy adjacency from a PyG ``Data`` or an ``(X, adjacency)`` pair."""
    from torch_geometric.data import Data
    if isinstance(data, Data):
        if data.x is None:
            raise GraphError("data.x: CCGC needs node features")
        x = _as_features(data.x)
        n = x.shape[0]
        ei = data.edge_index
        if ei is None:
            ei = torch.empty(2, 0, dtype=torch.long)
        ei = check_edge_index(ei, n, name="data.edge_index").detach().cpu()
        w = np.ones(ei.size(1), dtype=np.float32)
        a = sp.coo_matrix((w, (ei[0].numpy(), ei[1].numpy())), shape=(n, n)).tocsr()
        a.data[:] = 1.0  # duplicates collapse to one edge
        return x, a
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x = _as_features(data[0])
        return x, _as_scipy_adjacency(data[1], x.shape[0])
    raise GraphError(f"data: expected a torch_geometric Data or an (X, adjacency) pair, got "
                     f"{type(data).__name__}")


class _TwoViewEncoder(nn.Module):
    """The two unshared linear encoders on the same X̃, as one module so DDP can wrap it."""

    def __init__(self, encoders: nn.ModuleList, dims: int) -> None:
        super().__init__()
        self.encoders, self.dims = encoders, dims

    def forward(self, feats: SmoothedFeatures,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        lin1, lin2 = self.encoders
        # both encoders read the same X̃: one pass of the sparse chain for both weights
        return feats.encode_pair(lin1.weight, lin1.bias, lin2.weight, lin2.bias, rows)


class CCGC:
    """Cluster-guided contrastive graph clustering (scikit-learn style).

    Args:
        n_clusters: number of clusters K (2 ≤ K ≤ N).
        t: smoothing steps of X̃ = (D̂^-1/2 (A+I) D̂^-1/2)^t X.
        dims: output width of each of the two linear encoders.
        epochs: training epochs.
        lr: Adam learning rate.
        tau: fraction of nodes kept as high-confidence.
        alpha: weight of the centre negative term.
        warmup: epochs 0..warmup use the identity-regression warm-up loss.
        variant: ``"reference"`` (released loop with its quirks) or ``"fixed"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        random_state: seed for weights, subsets and K-means; ``None`` draws one.
        verbose: print one line per evaluation.
        eval_every: K-means refresh (and callback) interval in epochs.
        selection: how ``labels_`` is chosen without labels: ``"last"`` (K-means on the final
            embedding) or ``"consensus"`` (K-means on the stacked one-hot partitions of every
            post-warm-up evaluation, an ensemble that damps the epoch-to-epoch oscillation).
        kmeans_init: ``"spread"`` (released rule) or ``"k-means++"``.
        n_init: K-means initialisations.
        feature_mode: ``"auto"``, ``"sparse"`` or ``"dense"`` (see ``SmoothedFeatures``).
        kmeans_max_iter: Lloyd iteration cap.
        distributed: under ``torchrun`` (an initialised process group), split the nodes into
            one contiguous block per rank: each rank encodes its rows, the losses are computed
            from all-reduced per-rank partial sums, DDP all-reduces the gradients, and K-means
            all-reduces centroid sums and counts each Lloyd step, so no rank holds the full N×D
            embedding. Only per-node scalars (labels, centroid distances) are gathered. Without a
            process group this is the single-process fit. See :mod:`graphkit.distributed`.

    Attributes:
        labels_: cluster per node (numpy int64).
        embedding_: (Z1 + Z2)/2 after the last epoch (float32 tensor on CPU); under
            ``distributed`` only this rank's rows ``rows_``.
        rows_: ``(start, stop)``, the node rows this process trained on (``(0, N)`` alone).
        history_: ``{"loss": per epoch (None when skipped), "eval_epoch", "inertia",
            "seconds"}``.
        partitions_: K-means labels at each evaluation (list of numpy arrays).
    """

    def __init__(self, n_clusters: int, t: int = 4, dims: int = 500, epochs: int = 400,
                 lr: float = 1e-4, tau: float = 0.5, alpha: float = 0.5, warmup: int = 50,
                 variant: str = "reference", device: str = "auto",
                 random_state: int | None = None, verbose: bool = False, eval_every: int = 10,
                 selection: str = "last", kmeans_init: str = "spread", n_init: int = 20,
                 feature_mode: str = "auto", kmeans_max_iter: int = 500,
                 distributed: bool = False) -> None:
        self.n_clusters = n_clusters
        self.t = t
        self.dims = dims
        self.epochs = epochs
        self.lr = lr
        self.tau = tau
        self.alpha = alpha
        self.warmup = warmup
        self.variant = variant
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.eval_every = eval_every
        self.selection = selection
        self.kmeans_init = kmeans_init
        self.n_init = n_init
        self.feature_mode = feature_mode
        self.kmeans_max_iter = kmeans_max_iter
        self.distributed = distributed

    def _check_params(self, n: int) -> None:
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= n:
            raise GraphError(f"n_clusters: must be an integer between 2 and N={n}, got {k!r}")
        checks = [("t", self.t, 0), ("dims", self.dims, 1), ("epochs", self.epochs, 1),
                  ("eval_every", self.eval_every, 1), ("warmup", self.warmup, -1),
                  ("n_init", self.n_init, 1)]
        for name, val, low in checks:
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
                raise GraphError(f"{name}: must be an integer ≥ {low}, got {val!r}")
        if not 0.0 < self.tau < 1.0:
            raise GraphError(f"tau: must be in (0, 1), got {self.tau!r}")
        if not self.lr > 0:
            raise GraphError(f"lr: must be positive, got {self.lr!r}")
        if self.variant not in ("reference", "fixed"):
            raise GraphError(f"variant: expected 'reference' or 'fixed', got {self.variant!r}")
        if self.selection not in ("last", "consensus"):
            raise GraphError(f"selection: expected 'last' or 'consensus', got {self.selection!r}")

    def _kmeans(self, z: torch.Tensor, gen: torch.Generator,
                shard: RowShard | None = None) -> KMeansResult:
        return kmeans(z, self.n_clusters, n_init=self.n_init, init=self.kmeans_init,
                      max_iter=self.kmeans_max_iter, generator=gen, shard=shard)

    def fit(self, data: Any, callback: Callback | None = None) -> CCGC:
        """Train on a graph.

        Args:
            data: a PyG ``Data`` (``x``, ``edge_index``) or ``(X, adjacency)`` with X dense or
                scipy sparse and the adjacency scipy sparse or dense.
            callback: called as ``callback(epoch, labels, embedding)`` after every K-means
                refresh (``epoch = -1`` for K-means on X̃ before training).

        Returns:
            self
        """
        x, adj = prepare_graph(data)
        n = x.shape[0]
        self._check_params(n)
        device = resolve_device(self.device)
        seed = self.random_state if self.random_state is not None else \
            int(np.random.SeedSequence().generate_state(1)[0])
        gen = torch.Generator().manual_seed(int(seed))
        start = time.perf_counter()
        shard = RowShard(n) if self.distributed else RowShard(n, 0, 1)
        self.rows_ = (shard.start, shard.stop)
        feats = SmoothedFeatures(x, adj, self.t, device, self.feature_mode)
        if not shard.trivial:
            feats = feats.row_block(shard.start, shard.stop)
        # K-means draws global rows with `gen`, identical on every rank; the positive pairs are
        # drawn per rank from their own rows, so they get a generator of their own
        pair_gen = gen if shard.trivial else \
            torch.Generator().manual_seed(int(seed) + 7919 * (shard.rank + 1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.encoders_ = nn.ModuleList([nn.Linear(x.shape[1], self.dims) for _ in range(2)])
        self.encoders_.to(device)
        encoder: nn.Module = _TwoViewEncoder(self.encoders_, self.dims)
        if not shard.trivial:
            from torch.nn.parallel import DistributedDataParallel
            encoder = DistributedDataParallel(encoder)
        self._shard = shard
        # the fused Adam is one kernel over all parameters (~0.7 ms per step on Cora's 1.4 M
        # weights instead of ~7 ms for the default per-tensor loop); same update rule
        optimizer = torch.optim.Adam(self.encoders_.parameters(), lr=self.lr,
                                     fused=device.type in ("cpu", "cuda"))
        reference = self.variant == "reference"
        history: dict[str, list] = {"loss": [], "eval_epoch": [], "inertia": []}
        self.partitions_: list[np.ndarray] = []

        def refresh(epoch: int, z: torch.Tensor) -> KMeansResult:
            res = self._kmeans(z, gen, shard)
            history["eval_epoch"].append(epoch)
            history["inertia"].append(res.inertia)
            labels = shard.gather(res.labels).cpu().numpy()
            if epoch > self.warmup:
                self.partitions_.append(labels)
            if callback is not None:
                callback(epoch, labels, z)
            if self.verbose:
                last = history["loss"][-1] if history["loss"] else None
                loss = "n/a" if last is None else f"{last:.4f}"
                print(f"[ccgc] epoch {epoch:4d}  inertia {res.inertia:.4f}  loss {loss}")
            return res

        # with the numba kernels: torch on one thread, the kernels on all (see kernel_threads)
        with kernel_threads(feats.kernel == "numba" and shard.trivial):
            self._train(feats, encoder, optimizer, refresh, history, shard, gen, pair_gen,
                        reference, device)
        history["seconds"] = [time.perf_counter() - start]
        self.history_ = history
        return self

    def _train(self, feats: SmoothedFeatures, encoder: nn.Module,
               optimizer: torch.optim.Optimizer, refresh: Callable[[int, torch.Tensor], Any],
               history: dict[str, list], shard: RowShard, gen: torch.Generator,
               pair_gen: torch.Generator, reference: bool, device: torch.device) -> None:
        """The training loop of :meth:`fit`, then ``embedding_`` and ``labels_``."""
        state = refresh(-1, feats.materialize())
        # the cluster-guided loss reads only the rows of its clusters' members: with the numba
        # kernels the encoders then compute just those rows (same loss, same draws)
        compact = feats.kernel == "numba" and shard.trivial
        # an evaluation's forward (all rows, after the step) has the weights of the next epoch's
        # forward: single-process, it is kept with its graph and the next epoch reads it
        reuse: tuple[torch.Tensor, torch.Tensor] | None = None

        def forward(rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
            if reuse is None:
                return encoder(feats, rows)
            return reuse if rows is None else (reuse[0][rows], reuse[1][rows])

        for epoch in range(self.epochs):
            self.encoders_.train()
            if epoch <= self.warmup:
                z1, z2 = forward()
                loss = warmup_loss(z1, z2, shard)
            elif compact:
                confident = high_confidence(state.min_dist, self.tau, shard)
                labels = state.labels[confident]
                if reference and labels.numel():  # the skipped lowest cluster needs no rows
                    keep = labels != labels.min()
                    confident, labels = confident[keep], labels[keep]
                z1, z2 = forward(confident)
                loss = cluster_guided_loss(z1, z2, labels, torch.arange(confident.numel()),
                                           self.n_clusters, self.alpha, skip_first=False,
                                           gen=pair_gen)
            else:
                z1, z2 = forward()
                confident = high_confidence(state.min_dist, self.tau, shard)
                loss = cluster_guided_loss(z1, z2, state.labels, confident, self.n_clusters,
                                           self.alpha, skip_first=reference, gen=pair_gen,
                                           shard=shard)
            reuse = None
            history["loss"].append(None if loss is None else float(loss.detach()))
            if loss is None and not shard.trivial:
                # every DDP forward needs its backward; a zero one leaves the gradients as they are
                (0.0 * (z1.sum() + z2.sum())).backward()
            if loss is not None:
                if not reference:
                    optimizer.zero_grad(set_to_none=True)
                # the released loop never zeroes gradients; they accumulate across epochs
                loss.backward()
                optimizer.step()
            if epoch % self.eval_every == 0:
                if shard.trivial and epoch + 1 < self.epochs:
                    reuse = encoder(feats)
                    state = refresh(epoch, ((reuse[0] + reuse[1]) / 2).detach())
                else:
                    state = refresh(epoch, self.embed(feats))
        self.embedding_ = self.embed(feats).cpu()
        if self.selection == "consensus" and self.partitions_:
            self.labels_ = self._consensus(device, gen, shard)
        else:
            labels = self._kmeans(self.embedding_.to(device), gen, shard).labels
            self.labels_ = shard.gather(labels).cpu().numpy()

    @torch.no_grad()
    def embed(self, feats: SmoothedFeatures) -> torch.Tensor:
        """(Z1 + Z2)/2, not re-normalised, as the released evaluation does."""
        self.encoders_.eval()
        z1, z2 = _TwoViewEncoder(self.encoders_, self.dims)(feats)
        return (z1 + z2) / 2

    def _consensus(self, device: torch.device, gen: torch.Generator,
                   shard: RowShard) -> np.ndarray:
        k = self.n_clusters
        parts = torch.from_numpy(np.stack(self.partitions_, 1)[shard.start:shard.stop])  # N×E
        onehot = F.one_hot(parts, k).reshape(parts.size(0), -1).float().to(device)
        labels = kmeans(onehot, k, n_init=10, init="k-means++", max_iter=self.kmeans_max_iter,
                        generator=gen, shard=shard).labels
        return shard.gather(labels).cpu().numpy()

    def cluster_embedding(self, n_init: int | None = None, seed: int = 0) -> np.ndarray:
        """K-means (``kmeans_init``) on the final ``embedding_``, for every node; under
        ``distributed`` a collective call (every rank must make it)."""
        shard = getattr(self, "_shard", None)
        labels = kmeans(self.embedding_, self.n_clusters, n_init=n_init or self.n_init,
                        init=self.kmeans_init, max_iter=self.kmeans_max_iter,
                        generator=torch.Generator().manual_seed(seed), shard=shard).labels
        return (shard.gather(labels) if shard is not None else labels).numpy()

    def fit_predict(self, data: Any, callback: Callback | None = None) -> np.ndarray:
        """:meth:`fit` and return ``labels_``."""
        return self.fit(data, callback).labels_
