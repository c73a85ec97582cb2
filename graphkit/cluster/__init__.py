"""Graph clustering: CCGC (Yang et al., AAAI 2023), a batched torch K-means and the Laplacian
smoothing it builds on."""

from graphkit.cluster.ccgc import CCGC, cluster_guided_loss, high_confidence, warmup_loss
from graphkit.cluster.kmeans import KMeansResult, assign, kmeans
from graphkit.cluster.smoothing import SmoothedFeatures, normalized_adjacency, smooth

__all__ = ["CCGC", "KMeansResult", "SmoothedFeatures", "assign", "cluster_guided_loss",
           "high_confidence", "kmeans", "normalized_adjacency", "smooth", "warmup_loss"]
