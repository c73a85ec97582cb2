"""Clustering scores as the deep-graph-clustering papers report them.

ACC and macro-F1 use the Hungarian matching of predicted to true labels
(:func:`scipy.optimize.linear_sum_assignment` on the contingency table); NMI is sklearn's
arithmetic-mean normalisation and ARI sklearn's adjusted Rand index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, f1_score, normalized_mutual_info_score

from graphkit.errors import GraphError


def _as_labels(name: str, y: Any) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise GraphError(f"{name}: expected a 1-D label vector, got shape {arr.shape}")
    if arr.size == 0:
        raise GraphError(f"{name}: is empty")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)) \
                or np.any(arr != np.round(arr)):
            bad = int(np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))[0]) \
                if np.issubdtype(arr.dtype, np.number) else 0
            raise GraphError(f"{name}: labels must be integers; entry {bad} is {arr[bad]!r}")
        arr = arr.astype(np.int64)
    return arr


def match_labels(y_true: Any, y_pred: Any) -> np.ndarray:
    """Relabel ``y_pred`` by the one-to-one matching to ``y_true`` that maximises agreement.

    Predicted clusters left unmatched (more clusters than classes) keep a label no true class
    uses, so they count as errors.
    """
    t, p = _as_labels("y_true", y_true), _as_labels("y_pred", y_pred)
    if t.shape != p.shape:
        raise GraphError(f"y_pred: has {p.size} labels, y_true has {t.size}")
    t_vals, t_idx = np.unique(t, return_inverse=True)
    p_vals, p_idx = np.unique(p, return_inverse=True)
    table = np.zeros((p_vals.size, t_vals.size), dtype=np.int64)
    np.add.at(table, (p_idx, t_idx), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = np.full(p_vals.size, -1, dtype=np.int64)
    mapping[rows] = t_vals[cols]
    unused = mapping < 0
    if unused.any():
        start = int(t_vals.max()) + 1
        mapping[unused] = np.arange(start, start + int(unused.sum()))
    return mapping[p_idx]


def cluster_scores(y_true: Any, y_pred: Any) -> dict[str, float]:
    """ACC, NMI, ARI and macro-F1 of a clustering (fractions in [0, 1]; ×100 for reports).

    Args:
        y_true: ground-truth class per node (1-D integers; array, list or tensor).
        y_pred: cluster id per node; ids need not match class ids.

    Returns:
        ``{"acc", "nmi", "ari", "f1"}`` where ACC and F1 use the Hungarian-matched labels and F1 is
        macro-averaged over the true classes.
    """
    t = _as_labels("y_true", y_true)
    matched = match_labels(t, y_pred)
    p = _as_labels("y_pred", y_pred)
    return {
        "acc": float(np.mean(matched == t)),
        "nmi": float(normalized_mutual_info_score(t, p, average_method="arithmetic")),
        "ari": float(adjusted_rand_score(t, p)),
        "f1": float(f1_score(t, matched, labels=np.unique(t), average="macro", zero_division=0)),
    }
