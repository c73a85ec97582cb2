import numpy as np
import pytest
import torch

from graphkit import GraphError
from graphkit.data import load, public_split, random_split, stratified_kfold


def test_random_split_is_the_mgnn_protocol():
    data = load("ba-shapes")
    split = random_split(data, num_val=70, num_test=70, seed=1)
    sizes = [int(split[k].sum()) for k in ("train_mask", "val_mask", "test_mask")]
    assert sizes == [560, 70, 70]
    assert not (split.train_mask & split.test_mask).any()
    assert not (split.val_mask & split.test_mask).any()
    again = random_split(data, num_val=70, num_test=70, seed=1)
    assert torch.equal(again.test_mask, split.test_mask)
    assert not torch.equal(random_split(data, 70, 70, seed=2).test_mask, split.test_mask)


def test_random_split_bad_sizes():
    with pytest.raises(GraphError):
        random_split(load("karate"), num_val=20, num_test=20)


def test_public_split_requires_masks(data_root):
    assert int(public_split(load("cora", root=data_root)).train_mask.sum()) == 140
    with pytest.raises(GraphError, match="public split"):
        public_split(load("karate"))


def test_stratified_kfold(data_root):
    ds = load("mutag", root=data_root)
    folds = stratified_kfold(ds, k=5, seed=12345)
    assert len(folds) == 5
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(188))
    y = ds.y.numpy()
    for train, test in folds:
        assert abs(y[test].mean() - y.mean()) < 0.05
        assert not set(train) & set(test)
    again = stratified_kfold(ds, k=5, seed=12345)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    with pytest.raises(GraphError):
        stratified_kfold(ds, k=1)
