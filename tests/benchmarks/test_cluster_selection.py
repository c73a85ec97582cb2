import numpy as np
import pytest

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
