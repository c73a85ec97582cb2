"""Synthetic explainer benchmarks with ground-truth edge masks (Ying et al., GNNExplainer 2019).

Built with PyG's :class:`~torch_geometric.datasets.ExplainerDataset` generators where PyG has them
(BA-Shapes, Tree-Cycles, Tree-Grid) and our own for BA-Community. Base-graph nodes come first and
motif nodes after them, so the motif nodes the papers explain are BA-Shapes 300-699, Tree-Cycles
511-870 and Tree-Grid 511-1230. ``data.edge_mask`` marks motif edges, ``data.node_mask`` motif
nodes. PyG leaves ``x`` empty; we set 10 constant features, as GNNExplainer does. Unlike the
original generator we add no random edges unless ``perturb > 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected

from graphkit.data.registry import register
from graphkit.data.safe_pickle import load_numpy_pickle
from graphkit.errors import GraphError

NUM_FEATURES = 10


def _explainer_graph(graph_generator: Any, motif_generator: Any, num_motifs: int, seed: int,
                     perturb: float = 0.0) -> Data:
    from torch_geometric.datasets import ExplainerDataset
    np_state = np.random.get_state()  # PyG's BA generator draws from numpy's global RNG
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            np.random.seed(seed)
            generated = ExplainerDataset(graph_generator=graph_generator,
                                         motif_generator=motif_generator,
                                         num_motifs=num_motifs)[0]
    finally:
        np.random.set_state(np_state)
    data = Data(**generated.to_dict())  # PyG hands back an Explanation; users expect a Data
    data.x = torch.ones(data.num_nodes, NUM_FEATURES)
    data.node_mask = data.node_mask.bool().view(-1)
    data.edge_mask = data.edge_mask.bool().view(-1)
    if perturb > 0:
        data = _add_random_edges(data, perturb, seed)
    return _add_split(data, seed)


def _add_random_edges(data: Data, fraction: float, seed: int) -> Data:
    """Add ``fraction * |E|/2`` random undirected non-motif edges (GNNExplainer's perturbation)."""
    gen = np.random.default_rng(seed + 1)
    count = int(fraction * data.edge_index.size(1) / 2)
    extra = torch.from_numpy(gen.integers(0, data.num_nodes, size=(2, count)))
    extra = extra[:, extra[0] != extra[1]]
    edge_index = torch.cat([data.edge_index, extra, extra.flip(0)], 1)
    mask = torch.cat([data.edge_mask.float(), torch.zeros(2 * extra.size(1))])
    edge_index, mask = coalesce(edge_index, mask, data.num_nodes, reduce="max")
    data.edge_index, data.edge_mask = edge_index, mask.bool()
    return data


def _add_split(data: Data, seed: int, train: float = 0.8, val: float = 0.1) -> Data:
    perm = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(seed))
    n_train, n_val = int(train * data.num_nodes), int(val * data.num_nodes)
    for key, idx in (("train_mask", perm[:n_train]), ("val_mask", perm[n_train:n_train + n_val]),
                     ("test_mask", perm[n_train + n_val:])):
        mask = torch.zeros(data.num_nodes, dtype=torch.bool)
        mask[idx] = True
        data[key] = mask
    return data


@register("ba-shapes", kind="node", source="BA(300, 5) + 80 house motifs (PyG generators)")
def ba_shapes(root: Path | None = None, seed: int = 0, perturb: float = 0.0, **_: Any) -> Data:
    """BA-Shapes: 700 nodes, classes 0 (base), 1-3 (house top, middle, bottom)."""
    from torch_geometric.datasets.graph_generator import BAGraph
    return _explainer_graph(BAGraph(num_nodes=300, num_edges=5), "house", 80, seed, perturb)


@register("tree-cycles", kind="node", source="binary tree (height 8) + 60 six-cycles")
def tree_cycles(root: Path | None = None, seed: int = 0, perturb: float = 0.0, **_: Any) -> Data:
    """Tree-Cycles: 871 nodes, class 1 for cycle nodes."""
    from torch_geometric.datasets.graph_generator import TreeGraph
    from torch_geometric.datasets.motif_generator import CycleMotif
    data = _explainer_graph(TreeGraph(depth=8, undirected=True), CycleMotif(6), 60, seed, perturb)
    data.y = data.node_mask.long()
    return data


@register("tree-grid", kind="node", source="binary tree (height 8) + 80 3x3 grids")
def tree_grid(root: Path | None = None, seed: int = 0, perturb: float = 0.0, **_: Any) -> Data:
    """Tree-Grid: 1231 nodes, class 1 for grid nodes (PyG's grid roles are merged)."""
    from torch_geometric.datasets.graph_generator import TreeGraph
    from torch_geometric.datasets.motif_generator import GridMotif
    data = _explainer_graph(TreeGraph(depth=8, undirected=True), GridMotif(), 80, seed, perturb)
    data.y = data.node_mask.long()
    return data


@register("ba-community", kind="node", source="two BA-Shapes joined (our generator)")
def ba_community(root: Path | None = None, seed: int = 0, inter_edges: int = 350,
                 **_: Any) -> Data:
    """BA-Community: two BA-Shapes graphs (1400 nodes) joined by ``inter_edges`` random edges;
    8 classes (structural role + 4 * community); features drawn from N(mu_c, 0.5^2) with
    mu_0 = -1, mu_1 = +1 per community, as in GNNExplainer's generator (reconstruction)."""
    a, b = ba_shapes(seed=seed), ba_shapes(seed=seed + 10_000)
    n = a.num_nodes
    gen = np.random.default_rng(seed)
    cross = torch.from_numpy(np.stack([gen.integers(0, n, inter_edges),
                                       gen.integers(0, n, inter_edges) + n]))
    edge_index = torch.cat([a.edge_index, b.edge_index + n, cross], 1)
    edge_mask = torch.cat([a.edge_mask, b.edge_mask, torch.zeros(inter_edges, dtype=torch.bool)])
    edge_index, edge_mask = to_undirected(edge_index, edge_mask.float(), 2 * n, reduce="max")
    feats = torch.from_numpy(np.concatenate([
        gen.normal(-1.0, 0.5, size=(n, NUM_FEATURES)),
        gen.normal(1.0, 0.5, size=(n, NUM_FEATURES))]).astype(np.float32))
    data = Data(x=feats, edge_index=edge_index, y=torch.cat([a.y, b.y + 4]),
                edge_mask=edge_mask.bool(), node_mask=torch.cat([a.node_mask, b.node_mask]),
                num_nodes=2 * n)
    return _add_split(data, seed)


@register("ba-shapes-reference", kind="node",
          source="PGExplainer syn1.pkl (Luo et al. 2020), read with a numpy-only unpickler",
          expected=lambda root: [root / "explainer" / "syn" / "syn1.pkl"])
def ba_shapes_reference(root: Path, **_: Any) -> Data:
    """The BA-Shapes graph the PGExplainer authors released (``explainer/syn/syn1.pkl``)."""
    path = root / "explainer" / "syn" / "syn1.pkl"
    if not path.is_file():
        raise GraphError(f"ba-shapes-reference: missing {path}; copy PGExplainer's syn1.pkl there")
    content = load_numpy_pickle(path)
    if not isinstance(content, (tuple, list)) or len(content) != 9:
        raise GraphError(f"{path}: expected a 9-tuple (adj, features, y_train, y_val, y_test, "
                         "train_mask, val_mask, test_mask, edge_label_matrix)")
    adj, feats, y_tr, y_va, y_te, m_tr, m_va, m_te, labels = (np.asarray(c) for c in content)
    row, col = np.nonzero(adj)
    edge_index = torch.from_numpy(np.stack([row, col]).astype(np.int64))
    gt = (labels[row, col] + labels[col, row]) > 0
    y = torch.from_numpy((y_tr + y_va + y_te).argmax(1).astype(np.int64))
    return Data(x=torch.from_numpy(feats.astype(np.float32)), edge_index=edge_index, y=y,
                edge_mask=torch.from_numpy(gt), train_mask=torch.from_numpy(m_tr.astype(bool)),
                val_mask=torch.from_numpy(m_va.astype(bool)),
                test_mask=torch.from_numpy(m_te.astype(bool)), node_mask=y > 0)
