import numpy as np
import pytest
import torch

from graphkit.cluster import kmeans
from graphkit.errors import GraphError
from graphkit.metrics import cluster_scores


def _blobs(n=300, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    centers = torch.randn(k, 5, generator=g) * 10
    return centers[y] + torch.randn(n, 5, generator=g), y


@pytest.mark.parametrize("init", ["spread", "k-means++"])
@pytest.mark.parametrize("batch_size", [7, 65536])
def test_recovers_blobs(init, batch_size):
    x, y = _blobs()
    res = kmeans(x, 3, init=init, n_init=5, batch_size=batch_size,
                 generator=torch.Generator().manual_seed(1))
    assert cluster_scores(y, res.labels)["acc"] == 1.0
    d = torch.cdist(x, res.centers) ** 2
    assert torch.allclose(res.min_dist, d.min(1).values, atol=1e-3)


def test_batched_equals_unbatched_and_deterministic():
    x, _ = _blobs(seed=3)
    a = kmeans(x, 4, batch_size=16, generator=torch.Generator().manual_seed(2))
    b = kmeans(x, 4, batch_size=100000, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.labels, b.labels)


def test_bad_input():
    with pytest.raises(GraphError):
        kmeans(torch.randn(5, 2), 6)
    with pytest.raises(GraphError):
        kmeans(torch.tensor([[np.nan, 1.0], [0.0, 1.0]]), 2)
    with pytest.raises(GraphError):
        kmeans(torch.randn(5, 2), 2, init="bogus")
