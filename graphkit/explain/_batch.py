"""Computation subgraphs of many explanation targets, packed as one disjoint batch.

Every explainer in :mod:`graphkit.explain` works on the L-hop computation subgraph of each target
(node tasks) or on the target graph alone (graph tasks): the prediction at the target only depends
on it, and masking a few hundred edges instead of the whole graph is what makes batched
explanation fast. A :class:`SubgraphBatch` keeps, for every batch node and edge, its instance and
its id in the original graph, so soft masks can be mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import k_hop_subgraph

from graphkit.data.validate import check_edge_index, check_features
from graphkit.errors import GraphError


def num_hops(model: torch.nn.Module) -> int:
    """Receptive field of ``model``: its number of :class:`MessagePassing` modules (as PyG does),
    unless the model declares ``num_hops`` itself (motif layers may reach further)."""
    declared = getattr(model, "num_hops", None)
    if isinstance(declared, int):
        return declared
    return sum(isinstance(m, MessagePassing) for m in model.modules())


def flow(model: torch.nn.Module) -> str:
    for module in model.modules():
        if isinstance(module, MessagePassing):
            return module.flow
    return "source_to_target"


@dataclass
class SubgraphBatch:
    """Disjoint union of the targets' subgraphs.

    Attributes:
        x: features of the batch nodes.
        edge_index: relabelled edges of the batch.
        node_ids / edge_ids: original node and edge ids of each batch node and edge.
        node_seg / edge_seg: instance (0..B-1) of each batch node and edge.
        out_pos: row of the model output to read for each instance.
        batch: graph assignment of the batch nodes (graph tasks only).
        index: the original target ids (nodes or graphs).
        task_level: ``"node"`` or ``"graph"``.
    """

    x: Tensor
    edge_index: Tensor
    node_ids: Tensor
    edge_ids: Tensor
    node_seg: Tensor
    edge_seg: Tensor
    out_pos: Tensor
    index: Tensor
    task_level: str
    batch: Tensor | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def num_instances(self) -> int:
        return int(self.index.numel())

    def replicate(self, xs: list[Tensor]) -> tuple[Tensor, Tensor, dict[str, Any], Tensor]:
        """Stack ``len(xs)`` copies of the batch (copy c gets features ``xs[c]``) for one forward
        pass. Returns features, edges, model kwargs and the output rows of every (copy, instance),
        shaped ``[copies, B]``."""
        copies, n = len(xs), self.x.size(0)
        offsets = torch.arange(copies, device=self.x.device) * n
        edge_index = (self.edge_index.unsqueeze(0) + offsets.view(-1, 1, 1)).permute(1, 0, 2)
        edge_index = edge_index.reshape(2, -1)
        kwargs = dict(self.kwargs)
        if self.task_level == "graph":
            nb = self.num_instances
            assert self.batch is not None
            kwargs["batch"] = torch.cat([self.batch + c * nb for c in range(copies)])
            rows = self.out_pos.unsqueeze(0) + torch.arange(copies, device=self.x.device).view(
                -1, 1) * nb
        else:
            rows = self.out_pos.unsqueeze(0) + offsets.view(-1, 1)
        return torch.cat(xs, 0), edge_index, kwargs, rows

    def slice(self, lo: int, hi: int) -> SubgraphBatch:
        """Instances ``lo..hi-1`` as their own batch."""
        nsel = (self.node_seg >= lo) & (self.node_seg < hi)
        esel = (self.edge_seg >= lo) & (self.edge_seg < hi)
        node_start = int(nsel.nonzero()[0]) if bool(nsel.any()) else 0
        sub = SubgraphBatch(
            x=self.x[nsel], edge_index=self.edge_index[:, esel] - node_start,
            node_ids=self.node_ids[nsel], edge_ids=self.edge_ids[esel],
            node_seg=self.node_seg[nsel] - lo, edge_seg=self.edge_seg[esel] - lo,
            out_pos=None, index=self.index[lo:hi], task_level=self.task_level,
            kwargs=self.kwargs)  # type: ignore[arg-type]
        if self.task_level == "graph":
            assert self.batch is not None
            sub.batch = self.batch[nsel] - lo
            sub.out_pos = torch.arange(hi - lo, device=self.x.device)
        else:
            sub.out_pos = self.out_pos[lo:hi] - node_start
        return sub


def check_index(index: Any, size: int, what: str) -> Tensor:
    """``index`` as a 1-D long tensor with entries in ``[0, size)``."""
    if index is None:
        return torch.arange(size)
    idx = torch.as_tensor(index)
    if idx.dtype.is_floating_point or idx.dtype == torch.bool:
        raise GraphError(f"index: expected integer {what} ids, got dtype {idx.dtype}")
    idx = idx.view(-1).long().cpu()
    if idx.numel() == 0:
        raise GraphError("index: no targets given")
    bad = ((idx < 0) | (idx >= size)).nonzero()
    if bad.numel():
        first = int(idx[bad[0, 0]])
        raise GraphError(f"index: {what} id {first} out of range [0, {size})")
    return idx


def build_batch(model: torch.nn.Module, x: Tensor, edge_index: Tensor, index: Any, *,
                task_level: str, hops: int | None = None, **kwargs: Any) -> SubgraphBatch:
    """Pack the computation subgraphs of ``index`` (node ids, or graph ids of ``kwargs['batch']``
    for graph tasks). Other ``kwargs`` are forwarded to the model unchanged."""
    x = check_features(x)
    num_nodes = x.size(0)
    edge_index = check_edge_index(edge_index, num_nodes)
    dev = x.device
    node_ids, edge_ids, node_seg, edge_seg, out_pos, parts = [], [], [], [], [], []
    offset = 0
    if task_level == "graph":
        graph = kwargs.pop("batch", None)
        if graph is None:
            raise GraphError("batch: graph-level explanation needs the model's `batch` vector "
                             "(pass batch=torch.zeros(num_nodes, dtype=torch.long) for one graph)")
        graph = torch.as_tensor(graph, device=dev).long()
        if graph.numel() != num_nodes:
            raise GraphError(f"batch: expected {num_nodes} entries, got {graph.numel()}")
        idx = check_index(index, int(graph.max()) + 1, "graph")
        src_graph = graph[edge_index[0]]
        for i, g in enumerate(idx.tolist()):
            nodes = (graph == g).nonzero().view(-1)
            edges = (src_graph == g).nonzero().view(-1)
            node_ids.append(nodes)
            edge_ids.append(edges)
            node_seg.append(torch.full_like(nodes, i))
            edge_seg.append(torch.full_like(edges, i))
            offset += nodes.numel()
        nid = torch.cat(node_ids)
        relabel = torch.full((num_nodes,), -1, dtype=torch.long, device=dev)
        relabel[nid] = torch.arange(nid.numel(), device=dev)
        eid = torch.cat(edge_ids)
        return SubgraphBatch(x=x[nid], edge_index=relabel[edge_index[:, eid]], node_ids=nid,
                             edge_ids=eid, node_seg=torch.cat(node_seg),
                             edge_seg=torch.cat(edge_seg),
                             out_pos=torch.arange(idx.numel(), device=dev), index=idx,
                             task_level="graph", batch=torch.cat(node_seg), kwargs=kwargs)
    if "batch" in kwargs and kwargs["batch"] is not None:
        raise GraphError("batch: node-level explanation got a `batch` vector; declare "
                         "task_level='graph' for graph classification models")
    idx = check_index(index, num_nodes, "node")
    hops = num_hops(model) if hops is None else hops
    direction = flow(model)
    for i, t in enumerate(idx.tolist()):
        subset, sub_ei, mapping, emask = k_hop_subgraph(t, hops, edge_index, relabel_nodes=True,
                                                        num_nodes=num_nodes, flow=direction)
        node_ids.append(subset)
        edge_ids.append(emask.nonzero().view(-1))
        parts.append(sub_ei + offset)
        node_seg.append(torch.full_like(subset, i))
        edge_seg.append(torch.full((sub_ei.size(1),), i, dtype=torch.long, device=dev))
        out_pos.append(mapping + offset)
        offset += subset.numel()
    nid = torch.cat(node_ids)
    return SubgraphBatch(x=x[nid], edge_index=torch.cat(parts, 1), node_ids=nid,
                         edge_ids=torch.cat(edge_ids), node_seg=torch.cat(node_seg),
                         edge_seg=torch.cat(edge_seg), out_pos=torch.cat(out_pos), index=idx,
                         task_level="node", kwargs=kwargs)


@dataclass
class BatchExplanation:
    """Independent soft masks of B targets over their computation subgraphs.

    Attributes:
        sub: the :class:`SubgraphBatch` the masks live on.
        target: the explained class of every instance (the model's prediction).
        edge_mask: soft mask of every batch edge (``sub.edge_ids`` maps it to the graph).
        node_mask: soft mask of every batch node, or ``None`` (edge-only explanations).
        x_cf: the counterfactual features of the batch nodes used for removed features.
        seconds: wall time spent producing the masks.
    """

    sub: SubgraphBatch
    target: Tensor
    edge_mask: Tensor
    node_mask: Tensor | None = None
    x_cf: Tensor | None = None
    seconds: float = 0.0
    method: str = ""

    @property
    def num_instances(self) -> int:
        return self.sub.num_instances

    def dense_edge_mask(self, num_edges: int, instance: int | None = None) -> Tensor:
        """Mask over all ``num_edges`` edges of the graph (zero outside the subgraph); for all
        instances together the maximum over instances is taken."""
        sel = slice(None) if instance is None else self.sub.edge_seg == instance
        out = torch.zeros(num_edges, device=self.edge_mask.device)
        return out.scatter_reduce(0, self.sub.edge_ids[sel], self.edge_mask[sel], reduce="amax")

    def dense_node_mask(self, num_nodes: int, instance: int | None = None) -> Tensor | None:
        """``[num_nodes, 1]`` node mask, zero outside the subgraph (maximum over instances)."""
        if self.node_mask is None:
            return None
        sel = slice(None) if instance is None else self.sub.node_seg == instance
        out = torch.zeros(num_nodes, device=self.node_mask.device)
        out = out.scatter_reduce(0, self.sub.node_ids[sel], self.node_mask[sel], reduce="amax")
        return out.view(-1, 1)


def class_prob(out: Tensor, target: Tensor, return_type: str, binary: bool) -> Tensor:
    """Probability the model assigns to ``target`` given output rows ``out`` (any leading shape,
    last dim classes)."""
    if binary:
        p = out.squeeze(-1)
        if return_type == "raw":
            p = p.sigmoid()
        elif return_type == "log_probs":
            p = p.exp()
        return torch.where(target.bool(), p, 1 - p)
    if return_type == "raw":
        probs = out.softmax(-1)
    elif return_type == "log_probs":
        probs = out.exp()
    else:
        probs = out
    return probs.gather(-1, target.expand(probs.shape[:-1]).unsqueeze(-1)).squeeze(-1)


def predicted_class(out: Tensor, return_type: str, binary: bool) -> Tensor:
    if binary:
        return (out.squeeze(-1) > (0.0 if return_type == "raw" else 0.5)).long()
    return out.argmax(-1)


def check_output(out: Tensor, return_type: str) -> None:
    """Refuse outputs that contradict the declared return type (a common silent mistake)."""
    if out.dim() != 2:
        raise GraphError(f"model output: expected [rows, classes], got shape {list(out.shape)}")
    if not bool(torch.isfinite(out).all()):
        raise GraphError("model output: contains NaN or inf")
    if out.size(-1) < 2:
        return
    lse = out.logsumexp(-1)
    sums = out.sum(-1)
    if return_type == "raw" and bool((out <= 0).all()) and bool((lse.abs() < 1e-4).all()):
        raise GraphError("model output: return_type='raw' was declared but the model returns "
                         "log-probabilities (rows log-sum-exp to 0); declare "
                         "return_type='log_probs'")
    if return_type == "log_probs" and not bool((lse.abs() < 1e-3).all()):
        raise GraphError("model output: return_type='log_probs' was declared but rows do not "
                         f"log-sum-exp to 0 (first row: {float(lse[0]):.3g})")
    if return_type == "probs" and not (bool((out >= 0).all())
                                       and bool(((sums - 1).abs() < 1e-3).all())):
        raise GraphError("model output: return_type='probs' was declared but rows are not "
                         "probability vectors")
