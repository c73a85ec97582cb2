import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from graphkit.cluster import CCGC, SmoothedFeatures, high_confidence, smooth, warmup_loss
from graphkit.cluster.ccgc import cluster_guided_loss, warmup_loss_dense
from graphkit.data import load
from graphkit.errors import GraphError
from graphkit.metrics import cluster_scores

SMALL = dict(dims=16, epochs=30, warmup=10, eval_every=5, n_init=3)


@pytest.fixture(scope="module")
def sbm():
    return load("sbm", num_nodes=300, num_clusters=4, seed=1, num_features=8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32: the BLAS path
def test_factored_warmup_equals_dense(dtype):
    g = torch.Generator().manual_seed(0)
    z1 = F.normalize(torch.randn(40, 8, generator=g, dtype=dtype), dim=1)
    z2 = F.normalize(torch.randn(40, 8, generator=g, dtype=dtype), dim=1)
    a1, a2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    b1, b2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    fast, dense = warmup_loss(a1, a2), warmup_loss_dense(b1, b2)
    tol = {} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-7}
    assert torch.allclose(fast, dense, **tol)
    fast.backward()
    dense.backward()
    assert torch.allclose(a1.grad, b1.grad, **tol) and torch.allclose(a2.grad, b2.grad, **tol)


@pytest.mark.parametrize("mode", ["sparse", "dense"])
def test_smoothed_features_match_scipy(mode):
    rng = np.random.default_rng(0)
    a = sp.random(30, 30, density=0.1, random_state=0)
    a = ((a + a.T) > 0).astype(np.float32)
    x = (rng.random((30, 6)) < 0.3).astype(np.float32)
    feats = SmoothedFeatures(sp.csr_matrix(x), a, 3, torch.device("cpu"), mode)
    ref = smooth(x, a, 3)
    w = torch.randn(6, 5, dtype=torch.float32, requires_grad=True)
    out = feats.matmul(w)
    assert np.allclose(out.detach().numpy(), ref @ w.detach().numpy(), atol=1e-5)
    out.sum().backward()
    assert np.allclose(w.grad.numpy(), ref.T @ np.ones((30, 5)), atol=1e-4)


def test_high_confidence_is_global_lowest_fraction():
    dist = torch.tensor([0.5, 0.1, 0.9, 0.2, 0.3, 0.05])
    idx = high_confidence(dist, 0.5)
    assert sorted(idx.tolist()) == [1, 3, 5]


def _loss_clusters(skip_first):
    g = torch.Generator().manual_seed(0)
    z1 = F.normalize(torch.randn(12, 4, generator=g), dim=1).requires_grad_()
    z2 = F.normalize(torch.randn(12, 4, generator=g), dim=1)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    confident = torch.arange(12)
    loss = cluster_guided_loss(z1, z2, labels, confident, 3, 0.5, skip_first,
                               torch.Generator().manual_seed(0))
    loss.backward()
    return z1.grad


def test_reference_skips_lowest_cluster_only_in_reference():
    ref, fixed = _loss_clusters(True), _loss_clusters(False)
    assert torch.all(ref[:4] == 0)  # cluster 0 never contributes
    assert torch.any(fixed[:4] != 0)


@pytest.mark.parametrize("variant", ["reference", "fixed"])
def test_fit_skips_lowest_cluster_only_in_reference(sbm, monkeypatch, variant):
    """Through ``CCGC.fit`` itself, whichever path it takes (the numba kernels get only the
    kept clusters' rows; the fallback gets ``skip_first``)."""
    import graphkit.cluster.ccgc as ccgc
    seen: dict = {"used": [], "present": []}
    loss, confident = ccgc.cluster_guided_loss, ccgc.high_confidence

    def spy_confident(*args, **kwargs):
        seen["confident"] = confident(*args, **kwargs)
        return seen["confident"]

    def spy_loss(z1, z2, labels, rows, *args, skip_first=False, **kwargs):
        used = sorted(set(labels[rows].tolist()))
        seen["used"].append(used[1:] if skip_first else used)
        seen["present"].append(sorted(set(seen["labels"][seen["confident"]].tolist())))
        return loss(z1, z2, labels, rows, *args, skip_first=skip_first, **kwargs)

    monkeypatch.setattr(ccgc, "high_confidence", spy_confident)
    monkeypatch.setattr(ccgc, "cluster_guided_loss", spy_loss)
    model = CCGC(4, random_state=0, variant=variant, **{**SMALL, "epochs": 14})
    model.fit(sbm, lambda epoch, labels, z: seen.update(labels=torch.as_tensor(labels)))
    assert len(seen["used"]) == 14 - SMALL["warmup"] - 1
    for used, present in zip(seen["used"], seen["present"], strict=True):
        assert used == (present[1:] if variant == "reference" else present)


def _grads_after(variant, data):
    model = CCGC(4, random_state=0, variant=variant, **{**SMALL, "epochs": 3, "warmup": 5})
    model.fit(data)
    return model.encoders_[0].weight.grad.clone(), model


def test_gradient_accumulation_only_in_reference(sbm):
    g_ref, _ = _grads_after("reference", sbm)
    g_fix, _ = _grads_after("fixed", sbm)
    # same seed, same first 3 losses would give equal single-step grads; reference sums three
    assert not torch.allclose(g_ref, g_fix)


def test_fit_determinism_and_quality(sbm):
    a = CCGC(4, random_state=3, kmeans_init="k-means++", **SMALL).fit(sbm)
    b = CCGC(4, random_state=3, kmeans_init="k-means++", **SMALL).fit(sbm)
    assert np.array_equal(a.labels_, b.labels_)
    assert torch.equal(a.embedding_, b.embedding_)
    assert a.embedding_.shape == (300, 16)
    assert len(a.history_["loss"]) == 30 and a.history_["eval_epoch"][0] == -1
    assert cluster_scores(sbm.y, a.labels_)["acc"] > 0.8


def test_callback_and_consensus_and_tuple_input(sbm):
    seen = []
    x = sbm.x.numpy()
    n = sbm.num_nodes
    adj = sp.coo_matrix((np.ones(sbm.edge_index.size(1)), sbm.edge_index.numpy()), (n, n))
    model = CCGC(4, random_state=0, selection="consensus", **SMALL)
    labels = model.fit_predict((x, adj), callback=lambda e, lab, z: seen.append(e))
    assert seen == [-1, 0, 5, 10, 15, 20, 25]
    assert labels.shape == (n,) and len(model.partitions_) == 3  # evaluations after warm-up


def test_karate_dense_adjacency():
    d = load("karate")
    adj = torch.zeros(34, 34)
    adj[d.edge_index[0], d.edge_index[1]] = 1
    labels = CCGC(2, random_state=0, **SMALL).fit_predict((d.x, adj))
    assert set(labels.tolist()) <= {0, 1}


@pytest.mark.parametrize("case", ["k_small", "k_large", "shape", "nan", "nonsquare", "variant",
                                  "edge_range"])
def test_bad_input(case, sbm):
    x = np.random.default_rng(0).random((10, 3)).astype(np.float32)
    adj = sp.identity(10)
    k = 2
    kwargs = {}
    data = (x, adj)
    if case == "k_small":
        k = 1
    elif case == "k_large":
        k = 11
    elif case == "shape":
        data = (x, sp.identity(9))
    elif case == "nan":
        x[3, 1] = np.nan
    elif case == "nonsquare":
        data = (x, np.ones((10, 9)))
    elif case == "variant":
        kwargs = {"variant": "nope"}
    elif case == "edge_range":
        bad = sbm.clone()
        bad.edge_index = bad.edge_index.clone()
        bad.edge_index[0, 5] = 10_000
        data = bad
    with pytest.raises(GraphError):
        CCGC(k, epochs=2, **kwargs).fit(data)


def test_sbm_loader_sizes_and_errors():
    d = load("sbm", num_nodes=2000, num_clusters=16, seed=0)
    assert d.num_nodes == 2000 and int(d.y.max()) == 15 and d.x.shape == (2000, 32)
    assert d.is_undirected()
    same = (d.y[d.edge_index[0]] == d.y[d.edge_index[1]]).float().mean()
    assert same > 0.6
    with pytest.raises(GraphError):
        load("sbm", num_nodes=1)


def test_sparse_chain_threads_are_bit_identical():
    rng = np.random.default_rng(0)
    a = sp.random(200, 200, density=0.05, random_state=0)
    a = ((a + a.T) > 0).astype(np.float32)
    x = sp.csr_matrix((rng.random((200, 50)) < 0.2).astype(np.float32))
    feats = SmoothedFeatures(x, a, 4, torch.device("cpu"), "sparse")
    w = torch.randn(50, 256, generator=torch.Generator().manual_seed(0))
    before = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            m = w.clone().requires_grad_()
            out = feats.matmul(m)
            (out * out).sum().backward()
            outs.append((out.detach(), m.grad))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("mode", ["sparse", "dense"])
def test_matmul_pair_equals_sliced_stacked_product(mode):
    """The two-output encoder product (no slice backward) gives the stacked product's numbers and
    gradients bit for bit, in column chunks and over threads."""
    rng = np.random.default_rng(1)
    a = sp.random(150, 150, density=0.05, random_state=1)
    a = ((a + a.T) > 0).astype(np.float32)
    x = sp.csr_matrix((rng.random((150, 40)) < 0.2).astype(np.float32))
    feats = SmoothedFeatures(x, a, 4, torch.device("cpu"), mode)
    g = torch.Generator().manual_seed(0)
    w1, w2 = torch.randn(300, 40, generator=g), torch.randn(300, 40, generator=g)
    c = torch.randn(150, 600, generator=g)
    a1, a2 = w1.clone().requires_grad_(), w2.clone().requires_grad_()
    out = feats.matmul(torch.cat([a1, a2], 0).T)
    ref1, ref2 = out[:, :300], out[:, 300:]
    ((ref1 * c[:, :300]).sum() + (ref2 * c[:, 300:]).sum()).backward()
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            b1, b2 = w1.clone().requires_grad_(), w2.clone().requires_grad_()
            o1, o2 = feats.matmul_pair(b1, b2)
            ((o1 * c[:, :300]).sum() + (o2 * c[:, 300:]).sum()).backward()
            assert torch.equal(o1, ref1) and torch.equal(o2, ref2)
            assert torch.equal(b1.grad, a1.grad) and torch.equal(b2.grad, a2.grad)
    finally:
        torch.set_num_threads(before)


def test_float32_gram_matches_matmul():
    from graphkit.cluster.ccgc import _gram
    z = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(_gram(z), z.T @ z, atol=1e-5)
