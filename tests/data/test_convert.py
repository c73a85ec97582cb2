import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.utils import coalesce

from graphkit import GraphError
from graphkit.data import from_dense, from_networkx, from_scipy, load, to_networkx, to_scipy


def random_adj(n=30, p=0.2, seed=0, weighted=False):
    rng = np.random.default_rng(seed)
    adj = (rng.random((n, n)) < p).astype(np.float32)
    if weighted:
        adj *= rng.integers(1, 4, size=(n, n))
    return adj


@pytest.mark.parametrize("weighted", [False, True])
def test_dense_scipy_round_trip(weighted):
    adj = random_adj(weighted=weighted)
    data = from_dense(adj, x=np.eye(30), y=np.arange(30) % 3)
    assert data.x.shape == (30, 30) and data.y.tolist()[:4] == [0, 1, 2, 0]
    assert np.array_equal(to_scipy(data).toarray(), adj)
    again = from_scipy(sp.csr_matrix(adj))
    assert torch.equal(coalesce(again.edge_index), coalesce(data.edge_index))
    assert ("edge_weight" in data) == weighted


def test_dense_chunking_matches_whole():
    adj = random_adj(n=50)
    a, b = from_dense(adj, chunk_rows=7), from_dense(adj, chunk_rows=1000)
    assert torch.equal(a.edge_index, b.edge_index)


def test_networkx_round_trip():
    graph = nx.karate_club_graph()
    data = from_networkx(graph)
    back = to_networkx(data, to_undirected=True)
    assert nx.is_isomorphic(nx.Graph(graph), back)
    data = load("karate")
    assert to_networkx(data, to_undirected=True).number_of_edges() == 78


@pytest.mark.parametrize("bad,message", [
    (np.zeros((3, 4)), "square"),
    (np.zeros((0, 0)), "empty graph"),
    (np.array([[0, np.nan], [1, 0]]), "non-finite"),
])
def test_dense_bad_input(bad, message):
    with pytest.raises(GraphError, match=message):
        from_dense(bad)


def test_scipy_bad_input():
    with pytest.raises(GraphError, match="scipy sparse"):
        from_scipy(np.eye(3))
    with pytest.raises(GraphError, match="square"):
        from_scipy(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(GraphError, match="rows"):
        from_dense(np.eye(3), x=np.ones((4, 2)))
    with pytest.raises(GraphError, match="no nodes"):
        from_networkx(nx.Graph())
