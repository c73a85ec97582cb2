import numpy as np
import pytest

from benchmarks.cluster_selection import (
    HOMOPHILOUS,
    INDICES,
    edge_homophily,
    internal_indices,
    switched_smoothing,
    undirected_edges,
)
from graphkit.errors import GraphError


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 0.1, (40, 5)) + 3 * np.eye(5)[c] for c in range(3)])
    return z, np.repeat(np.arange(3), 40), rng


def test_true_partition_beats_a_shuffled_one_on_every_index(blobs):
    z, truth, rng = blobs
    sample = np.arange(len(z))
    good = internal_indices(z, truth, sample)
    bad = internal_indices(z, rng.permutation(truth), sample)
    for name, sign in INDICES.items():
        assert sign * good[name] > sign * bad[name], name


def test_collapsed_partition_ranks_last(blobs):
    z, truth, _ = blobs
    collapsed = internal_indices(z, np.zeros(len(z), dtype=int), np.arange(len(z)))
    for name, sign in INDICES.items():
        assert sign * collapsed[name] == -np.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inertia_ratio_is_within_over_total_sum_of_squares(blobs, seed):
    # computed from sklearn's Calinski-Harabasz index, which is why that index was not a rule
    z, truth, _ = blobs
    labels = np.random.default_rng(seed).permutation(truth)
    labels[:40] = truth[:40]
    centres = np.stack([z[labels == c].mean(0) for c in range(3)])
    within = ((z - centres[labels]) ** 2).sum()
    total = ((z - z.mean(0)) ** 2).sum()
    ratio = internal_indices(z, labels, np.arange(len(z)))["inertia"]
    assert ratio == pytest.approx(within / total)


def test_undirected_edges_lists_each_edge_once_without_self_loops():
    # 0-1 both ways, 1-2 one way, a self-loop on 2
    edge_index = np.array([[0, 1, 1, 2], [1, 0, 2, 2]])
    edges = undirected_edges(edge_index)
    assert sorted(map(tuple, edges.T.tolist())) == [(0, 1), (1, 2)]


def test_edge_homophily_is_the_share_of_edges_inside_a_cluster():
    edges = np.array([[0, 1, 2, 3], [1, 2, 3, 0]])  # a 4-cycle
    assert edge_homophily(edges, np.array([0, 0, 1, 1])) == 0.5
    assert edge_homophily(edges, np.array([0, 1, 0, 1])) == 0.0
    assert edge_homophily(edges, np.zeros(4, dtype=int)) == 1.0
    with pytest.raises(GraphError, match="no edges"):
        edge_homophily(np.zeros((2, 0), dtype=int), np.zeros(4, dtype=int))


@pytest.mark.parametrize(("honest", "smoothed_kept"), [
    ([0, 0, 1, 1], True),    # half the edges inside: homophilous (the threshold is inclusive)
    ([0, 1, 0, 1], False),   # no edge inside a cluster: keep the consensus
])
def test_switched_smoothing_smooths_only_homophilous_partitions(honest, smoothed_kept):
    edges = np.array([[0, 1, 2, 3], [1, 2, 3, 0]])
    honest = np.array(honest)
    smoothed = np.array([2, 2, 2, 2])
    out, share = switched_smoothing(honest, smoothed, edges)
    assert (share >= HOMOPHILOUS) == smoothed_kept
    np.testing.assert_array_equal(out, smoothed if smoothed_kept else honest)
