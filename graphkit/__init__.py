"""graphkit: motif GNNs, necessary-and-sufficient explanations and contrastive graph clustering
on PyTorch Geometric, plus vision-paper adapters.

>>> import graphkit
>>> data = graphkit.data.load("karate")
"""

__version__ = "0.1.0"

from graphkit import data
from graphkit.errors import GraphError
from graphkit.runtime import resolve_device, seed_everything

__all__ = ["GraphError", "__version__", "data", "resolve_device", "seed_everything"]
