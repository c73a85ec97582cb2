import numpy as np
import pytest
from sklearn.metrics import calinski_harabasz_score

from benchmarks.cluster_selection import INDICES, internal_indices


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
def test_calinski_harabasz_is_a_monotone_function_of_the_inertia_ratio(blobs, seed):
    # why the Calinski-Harabasz rule was dropped: it ranks partitions exactly as best-inertia
    z, truth, _ = blobs
    labels = np.random.default_rng(seed).permutation(truth)
    labels[:40] = truth[:40]
    ratio = internal_indices(z, labels, np.arange(len(z)))["inertia"]
    n, k = len(z), 3
    assert calinski_harabasz_score(z, labels) == pytest.approx((n - k) / (k - 1)
                                                               * (1 / ratio - 1))
