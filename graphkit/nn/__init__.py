"""Graph neural network layers and models."""

from graphkit.nn.train import fit_node

__all__ = ["fit_node"]
