import numpy as np
import pytest
import torch

from benchmarks.cluster_selection import (
    HOMOPHILOUS,
    INDICES,
    internal_indices,
    switched_smoothing,
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


# a 4-cycle, both directions of every edge (as PyG stores undirected graphs)
CYCLE = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])


@pytest.mark.parametrize(("honest", "share"), [
    ([0, 0, 1, 1], 0.5),    # half the edges inside: homophilous (the threshold is inclusive)
    ([0, 1, 0, 1], 0.0),    # no edge inside a cluster: keep the consensus
    ([0, 0, 0, 0], 1.0),
])
def test_switched_smoothing_smooths_only_homophilous_partitions(honest, share):
    honest = np.array(honest)
    smoothed = np.array([2, 2, 2, 2])
    out, got = switched_smoothing(honest, smoothed, CYCLE)
    assert got == share
    np.testing.assert_array_equal(out, smoothed if share >= HOMOPHILOUS else honest)


def test_switched_smoothing_needs_edges():
    with pytest.raises(GraphError, match="no edges"):
        switched_smoothing(np.zeros(4, dtype=int), np.zeros(4, dtype=int),
                           torch.zeros(2, 0, dtype=torch.long))
