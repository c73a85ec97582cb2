"""Evaluation metrics: clustering scores (ACC with Hungarian matching, NMI, ARI, macro-F1)."""

from graphkit.metrics.cluster import cluster_scores, match_labels

__all__ = ["cluster_scores", "match_labels"]
