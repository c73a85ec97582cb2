"""Conversions between PyG ``Data`` and networkx, scipy sparse and dense numpy adjacency."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.utils import from_networkx as _pyg_from_networkx
from torch_geometric.utils import to_networkx as _pyg_to_networkx

from graphkit.data.validate import check_features, validate
from graphkit.errors import GraphError


def from_networkx(graph: nx.Graph, **kwargs: Any) -> Data:
    """PyG's :func:`~torch_geometric.utils.from_networkx` with an empty-graph check."""
    if not isinstance(graph, nx.Graph):
        raise GraphError(f"expected a networkx graph, got {type(graph).__name__}")
    if graph.number_of_nodes() == 0:
        raise GraphError("empty graph: the networkx graph has no nodes")
    return _pyg_from_networkx(graph, **kwargs)


def to_networkx(data: Data, **kwargs: Any) -> nx.Graph:
    """PyG's :func:`~torch_geometric.utils.to_networkx` after :func:`validate`."""
    validate(data)
    return _pyg_to_networkx(data, **kwargs)


def from_scipy(adj: sp.spmatrix | sp.sparray, x: Any = None, y: Any = None) -> Data:
    """Build a ``Data`` from a square scipy sparse adjacency; non-unit entries become
    ``edge_weight``."""
    if not sp.issparse(adj):
        raise GraphError(f"adjacency: expected a scipy sparse matrix, got {type(adj).__name__}")
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise GraphError(f"adjacency: expected a square matrix, got shape {adj.shape}")
    coo = sp.coo_matrix(adj)
    coo.sum_duplicates()
    keep = coo.data != 0
    edge_index = torch.from_numpy(np.stack([coo.row[keep], coo.col[keep]]).astype(np.int64))
    weight = torch.from_numpy(coo.data[keep].astype(np.float32))
    return _finish(edge_index, weight, adj.shape[0], x, y)


def from_dense(adj: np.ndarray, x: Any = None, y: Any = None, chunk_rows: int = 4096) -> Data:
    """Build a ``Data`` from a dense square numpy adjacency, scanning it in row blocks so no second
    dense copy is ever made (``np.nonzero`` on the whole matrix would allocate one)."""
    adj = np.asarray(adj)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise GraphError(f"adjacency: expected a square 2-D array, got shape {adj.shape}")
    n = adj.shape[0]
    if n == 0:
        raise GraphError("empty graph: the adjacency has no rows")
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk_rows):
        block = adj[start:start + chunk_rows]
        r, c = np.nonzero(block)
        rows.append(r + start)
        cols.append(c)
        vals.append(block[r, c])
    edge_index = torch.from_numpy(np.stack([np.concatenate(rows),
                                            np.concatenate(cols)]).astype(np.int64))
    weight = torch.from_numpy(np.concatenate(vals).astype(np.float32))
    return _finish(edge_index, weight, n, x, y)


def _finish(edge_index: torch.Tensor, weight: torch.Tensor, n: int, x: Any, y: Any) -> Data:
    if n == 0:
        raise GraphError("empty graph: the adjacency has no rows")
    if not torch.isfinite(weight).all():
        raise GraphError("adjacency: non-finite entry")
    data = Data(edge_index=edge_index, num_nodes=n)
    if not torch.all(weight == 1):
        data.edge_weight = weight
    if x is not None:
        data.x = check_features(torch.as_tensor(np.asarray(x), dtype=torch.float32), n)
    if y is not None:
        data.y = torch.as_tensor(np.asarray(y))
    return validate(data)


def to_scipy(data: Data) -> sp.csr_matrix:
    """The adjacency of ``data`` (with ``edge_weight`` if set) as a CSR matrix."""
    validate(data)
    w = getattr(data, "edge_weight", None)
    vals = np.ones(data.edge_index.size(1), np.float32) if w is None else w.detach().numpy()
    ei = data.edge_index.numpy()
    return sp.csr_matrix((vals, (ei[0], ei[1])), shape=(data.num_nodes, data.num_nodes))
