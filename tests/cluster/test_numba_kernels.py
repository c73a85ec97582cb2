"""The numba encoder-pair kernels (graphkit[fast]) against the scipy + torch path."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit.cluster import smoothing
from graphkit.cluster.smoothing import SmoothedFeatures

pytest.importorskip("numba")


def _graph(n=60, d=12, seed=0):
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.08, random_state=seed)
    a = ((a + a.T) > 0).astype(np.float32)
    x = sp.csr_matrix((rng.random((n, d)) < 0.3).astype(np.float32))
    return x, a


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dims", [7, 33])
@pytest.mark.parametrize("block", [None, 5])
def test_numba_pair_equals_scipy(monkeypatch, threads, dims, block):
    """Forward and all four gradients; ``block`` forces several column blocks per encoder."""
    if block is not None:
        monkeypatch.setattr(smoothing, "_block_width", lambda n, dims: block)
    x, a = _graph()
    feats = SmoothedFeatures(x, a, 3, torch.device("cpu"), "sparse")
    g = torch.Generator().manual_seed(1)
    params = [torch.randn(dims, 12, generator=g), torch.randn(dims, generator=g),
              torch.randn(dims, 12, generator=g), torch.randn(dims, generator=g)]
    up1 = torch.randn(60, dims, generator=g)
    up2 = torch.randn(60, dims, generator=g)
    up1[::3] = 0  # rows the loss does not use get zero gradients, as in CCGC's epochs
    results = {}
    rows = torch.tensor([5, 0, 17, 59, 33, 8])
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for flag in ("1", "0"):
            monkeypatch.setenv("GRAPHKIT_NUMBA", flag)
            assert feats.kernel == ("numba" if flag == "1" else "scipy")
            leaves = [p.clone().requires_grad_() for p in params]
            z1, z2 = feats.encode_pair(*leaves)
            ((z1 * up1).sum() + (z2 * up2).sum()).backward()
            results[flag] = [z1.detach(), z2.detach()] + [p.grad for p in leaves]
            # only some rows (the cluster-guided epochs): same rows, same gradients
            leaves = [p.clone().requires_grad_() for p in params]
            r1, r2 = feats.encode_pair(*leaves, rows=rows)
            assert torch.allclose(r1, results[flag][0][rows], atol=1e-6)
            ((r1 * up1[rows]).sum() + (r2 * up2[rows]).sum()).backward()
            results[flag + "rows"] = [p.grad for p in leaves]
    finally:
        torch.set_num_threads(old)
    for fast, ref in zip(results["1"], results["0"]):
        assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-5), (fast - ref).abs().max()
    for fast, ref in zip(results["1rows"], results["0rows"]):
        assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-5), (fast - ref).abs().max()


@pytest.mark.parametrize("t", [0, 1, 3])
def test_numba_rows_any_depth(monkeypatch, t):
    """Restricted rows at every chain depth, with several column blocks."""
    monkeypatch.setattr(smoothing, "_block_width", lambda n, dims: 3)
    x, a = _graph()
    feats = SmoothedFeatures(x, a, t, torch.device("cpu"), "sparse")
    g = torch.Generator().manual_seed(2)
    params = [torch.randn(8, 12, generator=g), torch.randn(8, generator=g),
              torch.randn(8, 12, generator=g), torch.randn(8, generator=g)]
    rows = torch.tensor([3, 1, 44, 20])
    grads = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("GRAPHKIT_NUMBA", flag)
        leaves = [p.clone().requires_grad_() for p in params]
        z1, z2 = feats.encode_pair(*leaves, rows=rows)
        (z1[:, :3].sum() - z2.pow(2).sum(1).mul(torch.arange(4.0)).sum()).backward()
        grads[flag] = [z1.detach(), z2.detach()] + [p.grad for p in leaves]
    for fast, ref in zip(grads["1"], grads["0"]):
        assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-5), (fast - ref).abs().max()


def test_ccgc_fit_numba_matches_scipy_path(monkeypatch):
    """A short reference-variant fit (warm-up and cluster-guided epochs, compact rows) gives the
    same per-epoch losses with and without numba, up to float32 rounding."""
    from graphkit.cluster import CCGC
    from graphkit.data import load
    data = load("sbm", num_nodes=200, num_clusters=4, seed=1, num_features=8)
    losses = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("GRAPHKIT_NUMBA", flag)
        model = CCGC(4, dims=16, epochs=12, warmup=5, eval_every=5, n_init=3, random_state=0,
                     feature_mode="sparse", variant="reference").fit(data)
        losses[flag] = model.history_["loss"]
    assert [v is None for v in losses["1"]] == [v is None for v in losses["0"]]
    fast = [v for v in losses["1"] if v is not None]
    ref = [v for v in losses["0"] if v is not None]
    assert np.allclose(fast, ref, rtol=1e-3, atol=1e-6)


def test_numba_pair_handles_zero_rows_and_clamped_norms(monkeypatch):
    """A node with no features and no neighbours has X̃ row 0; with zero bias its norm is
    clamped at eps, where F.normalize's gradient is g / eps."""
    x, a = _graph()
    x = x.tolil()
    x[5] = 0
    a = sp.lil_matrix(a)
    a[5, :] = 0
    a[:, 5] = 0
    feats = SmoothedFeatures(sp.csr_matrix(x), sp.csr_matrix(a), 2, torch.device("cpu"), "sparse")
    w = torch.randn(4, 12)
    b = torch.zeros(4)
    outs = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("GRAPHKIT_NUMBA", flag)
        leaves = [t.clone().requires_grad_() for t in (w, b, w, b)]
        z1, z2 = feats.encode_pair(*leaves)
        (z1.sum() + 2 * z2.sum()).backward()
        outs[flag] = [z1.detach(), leaves[0].grad, leaves[1].grad]
    assert torch.all(outs["1"][0][5] == 0)
    for fast, ref in zip(outs["1"], outs["0"]):
        assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-3)


def test_numba_disabled_by_env(monkeypatch):
    monkeypatch.setenv("GRAPHKIT_NUMBA", "0")
    assert not smoothing.numba_available()


@pytest.mark.parametrize("skip_first", [True, False])
def test_numba_cluster_loss_equals_torch(monkeypatch, skip_first):
    import torch.nn.functional as F

    from graphkit.cluster.ccgc import cluster_guided_loss
    g = torch.Generator().manual_seed(3)
    z1 = F.normalize(torch.randn(80, 16, generator=g), dim=1)
    z2 = F.normalize(torch.randn(80, 16, generator=g), dim=1)
    labels = torch.randint(0, 5, (80,), generator=g)
    confident = torch.nonzero(torch.rand(80, generator=g) < 0.6).view(-1)
    outs = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("GRAPHKIT_NUMBA", flag)
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        loss = cluster_guided_loss(a, b, labels, confident, 5, 0.5, skip_first,
                                   torch.Generator().manual_seed(0))
        (3.0 * loss).backward()
        outs[flag] = (loss.detach(), a.grad, b.grad)
    for fast, ref in zip(outs["1"], outs["0"]):
        assert torch.allclose(fast, ref, rtol=1e-5, atol=1e-6), (fast - ref).abs().max()
