import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.cluster_refine import agreement, confident_nodes, self_train
from graphkit import GraphError


def test_agreement_ignores_label_permutations():
    ref = np.array([0, 0, 1, 1, 2, 2])
    same_up_to_names = np.array([2, 2, 0, 0, 1, 1])
    one_moved = np.array([0, 1, 1, 1, 2, 2])
    conf = agreement([same_up_to_names, one_moved], ref)
    np.testing.assert_allclose(conf, [1.0, 0.5, 1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("fraction, sizes", [(0.5, [2, 1]), (1.0, [3, 2]), (0.1, [1, 1])])
def test_confident_nodes_takes_the_top_share_of_every_cluster(fraction, sizes):
    labels = np.array([0, 0, 0, 1, 1])
    confidence = np.array([0.2, 0.9, 0.5, 0.3, 0.8])
    keep = confident_nodes(labels, confidence, fraction)
    assert [int((labels[keep] == c).sum()) for c in (0, 1)] == sizes
    assert 1 in keep and 4 in keep  # the most confident of each cluster always stays


@pytest.mark.parametrize("sparse", [False, True])
def test_self_train_repairs_unstable_mistakes(sparse):
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 60)
    centers = 4.0 * np.eye(3, 5)
    x = centers[truth] + rng.normal(size=(truth.size, 5))
    noisy = truth.copy()
    flipped = rng.choice(truth.size, 30, replace=False)
    noisy[flipped] = (noisy[flipped] + 1) % 3
    # the flipped nodes flicker between clusters over the history, the others never move
    history = []
    for step in range(6):
        part = noisy.copy()
        part[flipped[step % 2::2]] = truth[flipped[step % 2::2]]
        history.append(part)
    features = sp.csr_matrix(x) if sparse else x
    refined = self_train(features, noisy, history)
    assert (refined == truth).mean() > 0.95 > (noisy == truth).mean()


def test_self_train_bad_input():
    x = np.zeros((4, 2))
    with pytest.raises(GraphError, match="labels"):
        self_train(x, np.array([0, 1, 0]), [np.array([0, 1, 0])])
    with pytest.raises(GraphError, match="partitions"):
        self_train(x, np.array([0, 1, 0, 1]), [])
    with pytest.raises(GraphError, match="fraction"):
        self_train(x, np.array([0, 1, 0, 1]), [np.array([0, 1, 0, 1])], fraction=0.0)
    with pytest.raises(GraphError, match="shape"):
        agreement([np.array([0, 1])], np.array([0, 1, 0]))
    single = np.zeros(4, dtype=np.int64)
    np.testing.assert_array_equal(self_train(x, single, [single]), single)
