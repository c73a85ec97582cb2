"""Graph neural network layers and models."""

from graphkit.nn.mgnn import MGNN
from graphkit.nn.mgnn_precomputed import PrecomputedMGNN, fit_precomputed, precompute_features  # noqa: F401,E501
from graphkit.nn.motif_conv import MotifCache, MotifConv, MotifOperator, compute_motifs
from graphkit.nn.train import fit_node

__all__ = ["MGNN", "MotifCache", "MotifConv", "MotifOperator", "compute_motifs", "fit_node"]
