"""Train/validation/test splits: Planetoid public, the MGNN paper's random node split, and
stratified k-fold for graph collections."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from torch_geometric.data import Data

from graphkit.errors import GraphError


def _mask(n: int, idx: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    return mask


def public_split(data: Data) -> Data:
    """Return ``data`` with its Planetoid public masks (140/500/1000 on Cora); raises if absent."""
    if any(getattr(data, k, None) is None for k in ("train_mask", "val_mask", "test_mask")):
        raise GraphError("public split: data has no train/val/test masks (only Planetoid "
                         "datasets ship one)")
    return data


def random_split(data: Data, num_val: int = 500, num_test: int = 500, seed: int = 0) -> Data:
    """The MGNN paper's node protocol: ``num_val`` random validation nodes, ``num_test`` random test
    nodes, every other node for training. Returns a shallow copy with new masks."""
    n = data.num_nodes
    if num_val < 0 or num_test < 0 or num_val + num_test >= n:
        raise GraphError(f"random_split: num_val={num_val} + num_test={num_test} must be "
                         f"non-negative and leave training nodes out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out = data.clone()
    out.val_mask = _mask(n, perm[:num_val])
    out.test_mask = _mask(n, perm[num_val:num_val + num_test])
    out.train_mask = _mask(n, perm[num_val + num_test:])
    return out


def graph_labels(dataset: Sequence[Data]) -> np.ndarray:
    y = getattr(dataset, "y", None)
    if isinstance(y, torch.Tensor) and y.numel() == len(dataset):
        return y.view(-1).numpy()
    return np.array([int(d.y.view(-1)[0]) for d in dataset])


def stratified_kfold(dataset: Sequence[Data], k: int = 10, seed: int = 12345
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold over a graph collection: ``k`` pairs of (train indices, test indices),
    shuffled with ``seed`` (the MGNN paper uses 12345)."""
    labels = graph_labels(dataset)
    if k < 2 or k > len(labels):
        raise GraphError(f"stratified_kfold: k={k} must be between 2 and {len(labels)}")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(train, test) for train, test in folds.split(np.zeros(len(labels)), labels)]
