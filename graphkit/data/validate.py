"""Input checks for graphs: every public entry point of graphkit runs :func:`validate` first."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphkit.errors import GraphError

Task = Literal["node", "graph"] | None
MASK_KEYS = ("train_mask", "val_mask", "test_mask")


def _first_bad(bad: Tensor) -> int:
    return int(bad.nonzero()[0, -1]) if bad.dim() > 1 else int(bad.nonzero()[0, 0])


def check_edge_index(edge_index: object, num_nodes: int, *, name: str = "edge_index") -> Tensor:
    """Check ``edge_index``: an integer ``[2, E]`` tensor with entries in ``[0, num_nodes)``."""
    if not isinstance(edge_index, Tensor):
        raise GraphError(f"{name}: expected a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.dtype.is_floating_point or edge_index.dtype.is_complex \
            or edge_index.dtype in (torch.bool, torch.uint8):
        # uint8 and bool tensors index as masks in torch, not as node ids
        raise GraphError(
            f"{name}: expected an integer tensor (torch.long), got {edge_index.dtype}; "
            "convert with edge_index.long() only if the values are exact node ids"
        )
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        hint = ""
        if edge_index.dim() == 2 and edge_index.size(1) == 2:
            hint = " (it looks like [E, 2]: pass edge_index.t().contiguous())"
        raise GraphError(f"{name}: expected shape [2, E], got {list(edge_index.shape)}{hint}")
    if edge_index.numel() == 0:
        return edge_index
    if (edge_index < 0).any():
        col = int((edge_index < 0).any(0).nonzero()[0, 0])
        raise GraphError(
            f"{name}: negative node index {edge_index[:, col].tolist()} at column {col}"
        )
    if (edge_index >= num_nodes).any():
        col = int((edge_index >= num_nodes).any(0).nonzero()[0, 0])
        raise GraphError(
            f"{name}: node index out of range at column {col}: {edge_index[:, col].tolist()} "
            f"but the graph has num_nodes={num_nodes} (valid ids 0..{num_nodes - 1})"
        )
    return edge_index


def check_features(x: object, num_nodes: int | None = None, *, name: str = "x") -> Tensor:
    """Check that ``x`` is a finite floating 2-D tensor with ``num_nodes`` rows."""
    if not isinstance(x, Tensor):
        raise GraphError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise GraphError(f"{name}: expected a 2-D [num_nodes, num_features] tensor, got shape "
                         f"{list(x.shape)}")
    if num_nodes is not None and x.size(0) != num_nodes:
        raise GraphError(f"{name}: has {x.size(0)} rows but the graph has num_nodes={num_nodes}")
    if x.dtype.is_floating_point:
        if x.layout != torch.strided:  # sparse features: only the stored values can be bad
            coo = x.to_sparse_coo().coalesce()
            bad = ~torch.isfinite(coo.values())
            if bad.any():
                i = int(bad.nonzero()[0, 0])
                row, col = coo.indices()[:, i].tolist()
                raise GraphError(f"{name}: non-finite value {coo.values()[i].item()} at row "
                                 f"{row}, column {col}")
        elif not torch.isfinite(x).all():
            row, col = (~torch.isfinite(x)).nonzero()[0].tolist()
            raise GraphError(f"{name}: non-finite value {x[row, col].item()} at row {row}, "
                             f"column {col}")
    return x


def check_batch(batch: object, num_nodes: int, edge_index: Tensor | None = None) -> Tensor:
    """Check a ``batch`` vector: a 1-D integer tensor with one non-negative graph id per node.

    Graph ids above ``num_nodes - 1`` would mean more graphs than nodes (and a pooled output that
    large), so they are refused. With ``edge_index`` (already checked), an edge joining two graphs
    of the batch is refused too: PyG batches never contain one, and pooling or per-graph
    explanation would silently mix the graphs.
    """
    if not isinstance(batch, Tensor):
        raise GraphError(f"batch: expected a torch.Tensor of graph ids, got "
                         f"{type(batch).__name__}")
    if batch.dtype.is_floating_point or batch.dtype in (torch.bool, torch.complex64) \
            or batch.dim() != 1:
        raise GraphError(f"batch: expected a 1-D integer tensor of graph ids, got dtype "
                         f"{batch.dtype} and shape {list(batch.shape)}")
    if batch.numel() != num_nodes:
        raise GraphError(f"batch: has {batch.numel()} entries but num_nodes={num_nodes}")
    if batch.numel() == 0:
        return batch
    if (batch < 0).any():
        raise GraphError(f"batch: negative graph id at node {_first_bad(batch < 0)}")
    top = int(batch.max())
    if top >= num_nodes:
        raise GraphError(f"batch: graph id {top} implies {top + 1} graphs for only {num_nodes} "
                         "nodes; graph ids must count from 0 (see Batch.from_data_list)")
    if edge_index is not None and edge_index.numel():
        src, dst = edge_index.long()
        cross = batch[src] != batch[dst]
        if cross.any():
            col = int(cross.nonzero()[0, 0])
            u, v = edge_index[:, col].tolist()
            raise GraphError(f"edge_index: edge {col} ({u} -> {v}) joins graph "
                             f"{int(batch[u])} and graph {int(batch[v])} of the batch; edges "
                             "must stay inside one graph")
    return batch


def check_edge_weight(edge_weight: object, num_edges: int, *, name: str = "edge_weight"
                      ) -> Tensor:
    """Check ``edge_weight``: a finite, non-negative floating ``[E]`` tensor (the motif and
    degree normalisations take square roots of weight sums, so a negative weight gives NaN)."""
    if not isinstance(edge_weight, Tensor):
        raise GraphError(f"{name}: expected a torch.Tensor, got {type(edge_weight).__name__}")
    if edge_weight.dim() != 1 or edge_weight.numel() != num_edges:
        raise GraphError(f"{name}: expected shape [{num_edges}] (one weight per edge), got "
                         f"{list(edge_weight.shape)}")
    if not edge_weight.dtype.is_floating_point:
        raise GraphError(f"{name}: expected a floating-point tensor, got {edge_weight.dtype}")
    if not torch.isfinite(edge_weight).all():
        raise GraphError(f"{name}: non-finite value at edge "
                         f"{_first_bad(~torch.isfinite(edge_weight))}")
    if (edge_weight < 0).any():
        bad = _first_bad(edge_weight < 0)
        raise GraphError(f"{name}: negative weight {edge_weight[bad].item()} at edge {bad}")
    return edge_weight


def check_model_inputs(x: object, edge_index: object, *, batch: object = None,
                       edge_weight: object = None, in_channels: int | None = None,
                       dtype: torch.dtype | None = None) -> None:
    """The shared entry check of graphkit's models and explainers (MGNN, NSEG).

    Everything :func:`validate` checks on ``x``/``edge_index``/``batch``/``edge_weight``, plus
    what a forward pass needs: at least one node, floating features of width ``in_channels`` and
    of the model's parameter ``dtype``, a ``torch.long`` ``edge_index``. Raises
    :class:`GraphError` naming the first problem, so bad input never surfaces as an index error
    deep inside a layer.
    """
    x = check_features(x)
    num_nodes = x.size(0)
    if num_nodes == 0:
        raise GraphError("empty graph: x has 0 rows (num_nodes is 0)")
    if not x.dtype.is_floating_point:
        raise GraphError(f"x: expected floating-point features, got {x.dtype}; convert with "
                         "x.float()")
    if in_channels is not None and x.size(1) != in_channels:
        raise GraphError(f"x: expected [N, {in_channels}] features (in_channels={in_channels}), "
                         f"got {list(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        raise GraphError(f"x: dtype {x.dtype} does not match the model's {dtype} parameters; "
                         f"pass x.to({dtype}) or convert the model")
    edge_index = check_edge_index(edge_index, num_nodes)
    if edge_index.dtype != torch.long:
        raise GraphError(f"edge_index: expected torch.long, got {edge_index.dtype}; pass "
                         "edge_index.long()")
    if edge_weight is not None:
        check_edge_weight(edge_weight, edge_index.size(1))
    if batch is not None:
        check_batch(batch, num_nodes, edge_index)


def validate(data: object, *, task: Task = None, num_classes: int | None = None) -> Data:
    """Check a PyG ``Data``/``Batch`` and return it unchanged, or raise :class:`GraphError`.

    Checks ``edge_index`` (shape ``[2, E]``, integer dtype, ids within ``num_nodes``), ``x`` (2-D,
    finite, one row per node), ``edge_weight``/``edge_attr`` (one entry per edge, finite), ``y``
    (integer labels are non-negative and below ``num_classes`` when given; one per node for
    ``task="node"``, one per graph for ``task="graph"``), the split masks (boolean, one per node)
    and ``batch`` (one graph id per node). The message names the field and the first bad entry.
    """
    if not isinstance(data, Data) and not hasattr(data, "edge_index"):
        raise GraphError(f"expected a torch_geometric.data.Data, got {type(data).__name__}")
    if task not in (None, "node", "graph"):
        raise GraphError(f"task: expected 'node', 'graph' or None, got {task!r}")
    edge_index = getattr(data, "edge_index", None)
    if edge_index is None:
        raise GraphError("edge_index: missing (a graph without edges still needs an empty "
                         "[2, 0] long tensor)")
    x = getattr(data, "x", None)
    num_nodes = x.size(0) if isinstance(x, Tensor) and x.dim() >= 1 else data.num_nodes
    if num_nodes is None or num_nodes == 0:
        raise GraphError("empty graph: num_nodes is 0")
    if x is not None:
        check_features(x, num_nodes)
    check_edge_index(edge_index, num_nodes)
    num_edges = edge_index.size(1)
    for key in ("edge_weight", "edge_attr"):
        value = getattr(data, key, None)
        if value is None:
            continue
        if not isinstance(value, Tensor) or value.size(0) != num_edges:
            got = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise GraphError(f"{key}: expected {num_edges} entries (one per edge), got {got}")
        if value.dtype.is_floating_point and not torch.isfinite(value).all():
            bad = _first_bad(~torch.isfinite(value))
            raise GraphError(f"{key}: non-finite value at edge {bad}")
    for key in MASK_KEYS:
        mask = getattr(data, key, None)
        if mask is None:
            continue
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise GraphError(f"{key}: expected a boolean tensor, got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.dim() != 1 or mask.numel() != num_nodes:
            raise GraphError(f"{key}: expected shape [{num_nodes}], got {list(mask.shape)}")
    batch = getattr(data, "batch", None)
    if batch is not None:
        check_batch(batch, num_nodes, edge_index)
    _check_labels(data, task, num_nodes, num_classes)
    return data


def _check_labels(data: Data, task: Task, num_nodes: int, num_classes: int | None) -> None:
    y = getattr(data, "y", None)
    if y is None:
        if task is not None and num_classes is not None:
            raise GraphError("y: labels are required for this task but data.y is missing")
        return
    if not isinstance(y, Tensor):
        raise GraphError(f"y: expected a torch.Tensor, got {type(y).__name__}")
    if task == "node" and y.size(0) != num_nodes:
        raise GraphError(f"y: node task needs one label per node ({num_nodes}), got {y.size(0)}")
    if task == "graph":
        batch = getattr(data, "batch", None)
        num_graphs = int(batch.max()) + 1 if batch is not None and batch.numel() else 1
        if y.size(0) != num_graphs:
            raise GraphError(f"y: graph task needs one label per graph ({num_graphs}), "
                             f"got {y.size(0)}")
    if y.dtype.is_floating_point:
        if not torch.isfinite(y).all():
            raise GraphError(f"y: non-finite label at position {_first_bad(~torch.isfinite(y))}")
        return
    if y.numel() and (y < 0).any():
        bad = _first_bad((y < 0).reshape(y.size(0), -1).any(1))
        raise GraphError(f"y: negative label {y[bad].tolist()} at position {bad}")
    if num_classes is not None and y.numel() and (y >= num_classes).any():
        bad = _first_bad((y >= num_classes).reshape(y.size(0), -1).any(1))
        raise GraphError(f"y: label {y[bad].tolist()} at position {bad} is out of range for "
                         f"num_classes={num_classes}")
