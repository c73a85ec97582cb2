"""The common graph data layer: PyG's ``Data`` plus a dataset registry, input validation,
conversions and splits."""

from graphkit.data import loaders as _loaders  # noqa: F401  (registers real datasets)
from graphkit.data import sbm as _sbm  # noqa: F401  (registers the block-model graph)
from graphkit.data import synthetic as _synthetic  # noqa: F401  (registers synthetic ones)
from graphkit.data.convert import from_dense, from_networkx, from_scipy, to_networkx, to_scipy
from graphkit.data.motifs import AddMotifAdjacency, motif_adjacency
from graphkit.data.paths import cache_dir, data_root
from graphkit.data.registry import load, names, register, spec
from graphkit.data.splits import public_split, random_split, stratified_kfold
from graphkit.data.validate import check_edge_index, check_features, validate

__all__ = [
    "AddMotifAdjacency", "cache_dir", "check_edge_index", "check_features", "data_root",
    "from_dense", "from_networkx", "from_scipy", "load", "motif_adjacency", "names",
    "public_split", "random_split", "register", "spec", "stratified_kfold", "to_networkx",
    "to_scipy", "validate",
]
