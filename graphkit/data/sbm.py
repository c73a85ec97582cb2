"""A stochastic block model with class-dependent features, built sparse, for clustering at scale.

Each of ``num_clusters`` equal-probability blocks gets a random Gaussian feature mean; a node's
features are its block mean plus unit noise. Edges are drawn per node (``avg_degree`` on average,
a fraction ``p_in`` inside the node's block, the rest uniform), then symmetrised; memory and time
are O(N·avg_degree), never N×N, so a 1,000,000-node graph takes seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected

from graphkit.data.registry import register
from graphkit.errors import GraphError


@register("sbm", kind="node", source="synthetic stochastic block model (graphkit.data.sbm)")
def load_sbm(root: Path | None = None, num_nodes: int = 10_000, num_clusters: int = 16,
             seed: int = 0, avg_degree: float = 10.0, p_in: float = 0.8,
             num_features: int = 32, feature_signal: float = 1.0, **_: Any) -> Data:
    """Synthetic SBM graph with labels ``y`` (the blocks).

    Args:
        root: unused (synthetic).
        num_nodes: N, 2 ≤ N ≤ 10,000,000.
        num_clusters: number of blocks, 2 ≤ K ≤ N.
        seed: RNG seed; same seed, same graph.
        avg_degree: expected out-edges drawn per node before symmetrising.
        p_in: fraction of a node's edges that stay in its block.
        num_features: feature dimension.
        feature_signal: scale of the block means relative to the unit noise.
    """
    if not 2 <= num_nodes <= 10_000_000:
        raise GraphError(f"num_nodes: must be between 2 and 10,000,000, got {num_nodes}")
    if not 2 <= num_clusters <= num_nodes:
        raise GraphError(f"num_clusters: must be between 2 and num_nodes, got {num_clusters}")
    if not 0.0 <= p_in <= 1.0:
        raise GraphError(f"p_in: must be in [0, 1], got {p_in}")
    if avg_degree <= 0 or num_features < 1:
        raise GraphError("avg_degree and num_features must be positive")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_clusters, num_nodes)
    order = np.argsort(y, kind="stable")
    starts = np.searchsorted(y[order], np.arange(num_clusters))
    sizes = np.bincount(y, minlength=num_clusters)
    m = int(round(num_nodes * avg_degree / 2))
    src = rng.integers(0, num_nodes, m)
    inside = rng.random(m) < p_in
    dst = rng.integers(0, num_nodes, m)
    blk = y[src[inside]]
    ok = sizes[blk] > 0
    offs = (rng.random(inside.sum()) * sizes[blk]).astype(np.int64)
    dst_in = order[np.minimum(starts[blk] + offs, num_nodes - 1)]
    dst[inside] = np.where(ok, dst_in, dst[inside])
    keep = src != dst
    ei = torch.from_numpy(np.stack([src[keep], dst[keep]]).astype(np.int64))
    ei = coalesce(to_undirected(ei, num_nodes=num_nodes), num_nodes=num_nodes)
    means = rng.normal(0.0, feature_signal, (num_clusters, num_features)).astype(np.float32)
    x = means[y] + rng.standard_normal((num_nodes, num_features), dtype=np.float32)
    return Data(x=torch.from_numpy(x), edge_index=ei, y=torch.from_numpy(y.astype(np.int64)),
                num_nodes=num_nodes)
