"""Label-free refinement of a clustering by self-training on its most stable nodes.

Deep-clustering methods since DEC (Xie et al., ICML 2016, arXiv 1511.06335) sharpen a partition by
training on their own confident assignments. Here the confidence comes from CCGC's evaluation
history: a node is stable when most post-warm-up partitions put it in (the matched counterpart of)
its consensus cluster. A classifier fitted on the most stable half of each cluster then relabels
every node. No ground-truth label is used anywhere.

Issue #5's one declared self-training candidate (``benchmarks/notes/cluster.md``), scored by
``benchmarks.cluster_selection`` as rule ``consensus+self-training``. It lowered the consensus's
mean ACC on Cora, CiteSeer, BAT and EAT, so it was not adopted and lives here, not in
:mod:`graphkit.cluster`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphkit.errors import GraphError
from graphkit.metrics.cluster import match_labels


def agreement(partitions: Sequence[np.ndarray], reference: np.ndarray) -> np.ndarray:
    """Per node, the fraction of ``partitions`` that agree with ``reference`` once each partition
    is relabelled by its Hungarian matching to ``reference``."""
    reference = np.asarray(reference)
    if len(partitions) == 0:
        raise GraphError("partitions: need at least one partition to measure agreement")
    hits = np.zeros(reference.shape[0], dtype=np.float64)
    for part in partitions:
        part = np.asarray(part)
        if part.shape != reference.shape:
            raise GraphError(f"partitions: a partition has shape {part.shape}, the reference "
                             f"{reference.shape}")
        hits += match_labels(reference, part) == reference
    return hits / len(partitions)


def confident_nodes(labels: np.ndarray, confidence: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the ``ceil(fraction * n_c)`` most confident nodes of every cluster ``c``
    (ties keep node order), sorted."""
    if not 0.0 < fraction <= 1.0:
        raise GraphError(f"fraction: expected a value in (0, 1], got {fraction}")
    keep = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = np.argsort(-confidence[members], kind="stable")
        keep.append(members[order[:int(np.ceil(fraction * members.size))]])
    return np.sort(np.concatenate(keep))


def self_train(features: np.ndarray, labels: np.ndarray, partitions: Sequence[np.ndarray],
               fraction: float = 0.5, max_iter: int = 1000) -> np.ndarray:
    """Relabel a clustering with a classifier trained on its most stable nodes.

    Args:
        features: node features the classifier sees (N×d, dense or scipy sparse); for CCGC its
            own input X̃ = H^t X.
        labels: the partition to refine (N cluster ids), e.g. CCGC's consensus ``labels_``.
        partitions: the partitions whose agreement with ``labels`` measures confidence, e.g.
            CCGC's post-warm-up ``partitions_``.
        fraction: share of every cluster used for training (its most confident nodes).
        max_iter: L-BFGS iterations of the logistic regression.

    Returns:
        The refined cluster id of every node (ids are ``labels``' ids).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    if labels.ndim != 1 or features.shape[0] != labels.shape[0]:
        raise GraphError(f"labels: expected one label per feature row ({features.shape[0]}), "
                         f"got shape {labels.shape}")
    if np.unique(labels).size < 2:
        return labels.copy()  # nothing to separate
    train = confident_nodes(labels, agreement(partitions, labels), fraction)
    dense = not hasattr(features, "tocsr")
    clf = make_pipeline(StandardScaler(with_mean=dense), LogisticRegression(max_iter=max_iter))
    clf.fit(features[train], labels[train])
    return clf.predict(features).astype(labels.dtype)
