import numpy as np
import pytest
import torch

from graphkit.errors import GraphError
from graphkit.metrics import cluster_scores, match_labels


def test_permuted_labels_score_one():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([2, 2, 0, 0, 1, 1, 1])
    s = cluster_scores(y, pred)
    assert s == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0, "f1": 1.0})


def test_hand_computed_case():
    # true 0 0 0 1 1 1 ; pred a a b b b b -> best match a->0, b->1: 5/6 correct
    y = [0, 0, 0, 1, 1, 1]
    pred = torch.tensor([5, 5, 7, 7, 7, 7])
    s = cluster_scores(y, pred)
    assert s["acc"] == pytest.approx(5 / 6)
    # class 0: precision 1, recall 2/3 -> F1 0.8 ; class 1: precision 3/4, recall 1 -> 6/7
    assert s["f1"] == pytest.approx((0.8 + 6 / 7) / 2)
    assert list(match_labels(y, pred)) == [0, 0, 1, 1, 1, 1]


def test_more_clusters_than_classes_count_as_errors():
    y = [0, 0, 1, 1]
    pred = [0, 1, 2, 2]
    assert cluster_scores(y, pred)["acc"] == pytest.approx(0.75)


@pytest.mark.parametrize("bad", [[0, 1], [[0, 1, 1]], [0.5, 1, 1]])
def test_bad_input(bad):
    with pytest.raises(GraphError):
        cluster_scores([0, 1, 1], bad)
