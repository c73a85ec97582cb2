"""Computation subgraphs of many explanation targets, packed as one disjoint batch.

Every explainer in :mod:`graphkit.explain` works on the L-hop computation subgraph of each target
(node tasks) or on the target graph alone (graph tasks): the prediction at the target only depends
on it, and masking a few hundred edges instead of the whole graph is what makes batched
explanation fast. A :class:`SubgraphBatch` keeps, for every batch node and edge, its instance and
its id in the original graph, so soft masks can be mapped back.

Degree-normalised layers (GCN) need more than the L-hop subgraph to reproduce the full-graph
prediction: the normalisation of a message from an L-hop node uses that node's full in-degree,
which counts edges from (L+1)-hop nodes outside the subgraph. Without them, boundary degrees shrink
and on constant-feature graphs (BA-Shapes) the subgraph prediction differs from the full-graph one
(we measured p(yhat) 0.94 on the graph vs 0.008 on the bare subgraph). Every batch therefore also
carries *context* edges, the in-edges of the L-hop nodes from outside, with their source nodes.
They always keep weight 1 and are never explained: a message into an L-hop node cannot reach the
target within L layers, so they only restore the degrees.

Context edges can outnumber the explained ones (BA-Shapes subgraphs end at hubs), so when every
message-passing layer is a ``GCNConv`` or degree-free (GIN), they are left out and
:func:`full_degree_norm` instead hands each ``GCNConv`` its normalisation computed from the
*full-graph* in-degrees of the batch nodes (through the layer's own cache). Inside nodes' degrees
are unchanged and boundary nodes get their true degree, so the target's output is exactly the
full-graph one at a fraction of the cost.

Motif layers (MGNN) normalise by *motif* degrees, which count triangles and wedges around a node,
and their messages reach two hops. A model says so by declaring ``num_hops`` (its receptive field:
3 per MGNN layer) and ``context_hops`` (how much further its normalisations look: 1 for MGNN).
Its context is then the whole induced subgraph on the ``num_hops + context_hops`` neighbourhood,
both directions of every edge, minus the explained edges: one-way context edges would be counted
as directed motifs, and a motif degree needs every edge among a node's neighbours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GCNConv, GINConv, GINEConv, MessagePassing
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


def context_hops(model: torch.nn.Module) -> int | None:
    """Hops of structure beyond the receptive field that the model's normalisations read, if the
    model declares them (``context_hops``); ``None`` means in-degrees only (GCN-style)."""
    declared = getattr(model, "context_hops", None)
    if declared is None:
        return None
    if not isinstance(declared, int) or declared < 0:
        raise GraphError(f"context_hops: expected a non-negative int, got {declared!r}")
    return declared


def degree_exact(model: torch.nn.Module) -> bool:
    """Whether the target's output can be reproduced without context edges: every
    message-passing layer is a ``GCNConv`` (given full-graph degrees by
    :func:`full_degree_norm`) or ignores degrees (GIN), and the model declares no longer reach."""
    if isinstance(getattr(model, "num_hops", None), int):
        return False
    layers = [m for m in model.modules() if isinstance(m, MessagePassing)]
    return bool(layers) and all(isinstance(m, GCNConv | GINConv | GINEConv) for m in layers)


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
        ctx_x / ctx_ids / ctx_seg: features, original ids and instance of the context nodes
            (outside sources of edges into the subgraphs; node tasks only).
        ctx_edge_index: context edges; each endpoint indexes ``ctx_x`` where ``ctx_side`` is
            true and the batch nodes otherwise; ``ctx_edge_seg`` their instance.
        ctx_side: ``[2, E_ctx]`` bool, which endpoints of the context edges are context nodes.
        in_degree / has_loop: full-graph in-degree (self-loops not counted) and self-loop flag
            of every batch node, set instead of context edges (see :func:`full_degree_norm`).
        live: with ``in_degree``, which batch edges can influence their target (those not
            pointing into an L-hop node); only they enter the forward pass, the others keep
            their mask entries (shared with their reverse edge under symmetric masks).
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
    ctx_x: Tensor | None = None
    ctx_ids: Tensor | None = None
    ctx_seg: Tensor | None = None
    ctx_edge_index: Tensor | None = None
    ctx_edge_seg: Tensor | None = None
    ctx_side: Tensor | None = None
    flow: str = "source_to_target"
    in_degree: Tensor | None = None
    has_loop: Tensor | None = None
    live: Tensor | None = None

    @property
    def num_instances(self) -> int:
        return int(self.index.numel())

    def undirected_pairs(self) -> Tensor:
        """Id of every batch edge's undirected pair ({u, v}: both directions share one id),
        ordered by instance (batch-local node ids grow with the instance, so no pair spans two
        instances)."""
        ei = self.edge_index
        n = max(int(self.x.size(0)), 1)
        key = ei.min(0).values * n + ei.max(0).values
        return torch.unique(key, return_inverse=True)[1]

    def replicate(self, xs: list[Tensor], masks: list[Tensor]
                  ) -> tuple[Tensor, Tensor, Tensor, dict[str, Any], Tensor]:
        """Stack ``len(xs)`` copies of the batch (copy c gets features ``xs[c]`` and edge weights
        ``masks[c]``) for one forward pass, each with its own context nodes and edges (weight
        1). Returns features, edges, edge weights, model kwargs and the output rows of every
        (copy, instance), shaped ``[copies, B]``."""
        copies, n = len(xs), self.x.size(0)
        dev = self.x.device
        offsets = torch.arange(copies, device=dev) * n
        if self.live is not None:
            masks = [m[self.live] for m in masks]
        parts, weights, feats = [self.stacked_edges(copies)], list(masks), list(xs)
        if self.ctx_edge_index is not None and self.ctx_edge_index.size(1) > 0:
            assert self.ctx_x is not None and self.ctx_side is not None
            nc = self.ctx_x.size(0)
            # context nodes of every copy follow all batch nodes of all copies
            ctx_shift = copies * n + torch.arange(copies, device=dev) * nc
            shift = torch.where(self.ctx_side.unsqueeze(0), ctx_shift.view(-1, 1, 1),
                                offsets.view(-1, 1, 1))
            ctx = self.ctx_edge_index.unsqueeze(0) + shift
            parts.append(ctx.permute(1, 0, 2).reshape(2, -1))
            weights.append(torch.ones(copies * ctx.size(-1), device=dev))
            feats += [self.ctx_x] * copies
        kwargs = dict(self.kwargs)
        if self.task_level == "graph":
            nb = self.num_instances
            assert self.batch is not None
            kwargs["batch"] = torch.cat([self.batch + c * nb for c in range(copies)])
            rows = self.out_pos.unsqueeze(0) + torch.arange(copies, device=dev).view(-1, 1) * nb
        else:
            rows = self.out_pos.unsqueeze(0) + offsets.view(-1, 1)
        return torch.cat(feats, 0), torch.cat(parts, 1), torch.cat(weights), kwargs, rows

    def stacked_edges(self, copies: int) -> Tensor:
        """Edges of ``copies`` stacked copies of the batch (no context edges)."""
        offsets = torch.arange(copies, device=self.x.device) * self.x.size(0)
        ei = self.edge_index if self.live is None else self.edge_index[:, self.live]
        edge_index = (ei.unsqueeze(0) + offsets.view(-1, 1, 1)).permute(1, 0, 2)
        return edge_index.reshape(2, -1)

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
            kwargs=self.kwargs, flow=self.flow)  # type: ignore[arg-type]
        if self.in_degree is not None and self.has_loop is not None:
            sub.in_degree, sub.has_loop = self.in_degree[nsel], self.has_loop[nsel]
            sub.live = None if self.live is None else self.live[esel]
        if self.ctx_edge_index is not None:
            assert self.ctx_x is not None and self.ctx_seg is not None
            assert self.ctx_ids is not None and self.ctx_edge_seg is not None
            assert self.ctx_side is not None
            csel = (self.ctx_seg >= lo) & (self.ctx_seg < hi)
            cesel = (self.ctx_edge_seg >= lo) & (self.ctx_edge_seg < hi)
            ctx_start = int(csel.nonzero()[0]) if bool(csel.any()) else 0
            side = self.ctx_side[:, cesel]
            sub.ctx_x, sub.ctx_ids = self.ctx_x[csel], self.ctx_ids[csel]
            sub.ctx_seg = self.ctx_seg[csel] - lo
            sub.ctx_edge_index = self.ctx_edge_index[:, cesel] - torch.where(
                side, ctx_start, node_start)
            sub.ctx_edge_seg = self.ctx_edge_seg[cesel] - lo
            sub.ctx_side = side
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
    # messages go from row `src` to row `dst` of edge_index
    src, dst = (0, 1) if direction == "source_to_target" else (1, 0)
    reach = context_hops(model)
    ctx_ids, ctx_seg, ctx_parts, ctx_eseg, ctx_sides = [], [], [], [], []
    inside = torch.zeros(num_nodes, dtype=torch.bool, device=dev)
    relabel = torch.full((num_nodes,), -1, dtype=torch.long, device=dev)
    ctx_offset = 0
    exact = degree_exact(model)
    live: list[Tensor] = []
    for i, t in enumerate(idx.tolist()):
        subset, sub_ei, mapping, emask = k_hop_subgraph(t, hops, edge_index, relabel_nodes=True,
                                                        num_nodes=num_nodes, flow=direction)
        node_ids.append(subset)
        edge_ids.append(emask.nonzero().view(-1))
        parts.append(sub_ei + offset)
        node_seg.append(torch.full_like(subset, i))
        edge_seg.append(torch.full((sub_ei.size(1),), i, dtype=torch.long, device=dev))
        out_pos.append(mapping + offset)
        if exact:
            # an edge into an L-hop node cannot reach the target within L layers; with
            # full-graph degrees it is not needed at all, so it is left out of the forward pass
            inner = torch.zeros(num_nodes, dtype=torch.bool, device=dev)
            inner[k_hop_subgraph(t, hops - 1, edge_index, num_nodes=num_nodes,
                                 flow=direction)[0] if hops > 0 else t] = True
            live.append(inner[edge_index[dst][emask]])
            offset += subset.numel()
            continue
        inside[subset] = True
        if reach is None:
            # context: in-edges of subgraph nodes from outside (they restore the degrees)
            cmask = inside[edge_index[dst]] & ~inside[edge_index[src]]
            cnodes = torch.unique(edge_index[src][cmask])
        else:
            # context: the induced subgraph on `hops + reach` hops minus the explained edges
            wide = torch.zeros(num_nodes, dtype=torch.bool, device=dev)
            wide[k_hop_subgraph(t, hops + reach, edge_index, num_nodes=num_nodes,
                                flow=direction)[0]] = True
            cmask = wide[edge_index[0]] & wide[edge_index[1]] & ~emask
            cnodes = (wide & ~inside).nonzero().view(-1)
        cei = edge_index[:, cmask]
        relabel[subset] = torch.arange(subset.numel(), device=dev) + offset
        relabel[cnodes] = torch.arange(cnodes.numel(), device=dev) + ctx_offset
        ctx_parts.append(relabel[cei])
        ctx_sides.append(~inside[cei])
        ctx_ids.append(cnodes)
        ctx_seg.append(torch.full_like(cnodes, i))
        ctx_eseg.append(torch.full((cei.size(1),), i, dtype=torch.long, device=dev))
        inside[subset] = False
        offset += subset.numel()
        ctx_offset += cnodes.numel()
    nid = torch.cat(node_ids)
    if exact:
        loop = edge_index[0] == edge_index[1]
        deg = torch.zeros(num_nodes, device=dev).index_add_(
            0, edge_index[dst][~loop], torch.ones(int((~loop).sum()), device=dev))
        has_loop = torch.zeros(num_nodes, dtype=torch.bool, device=dev)
        has_loop[edge_index[0][loop]] = True
        return SubgraphBatch(x=x[nid], edge_index=torch.cat(parts, 1), node_ids=nid,
                             edge_ids=torch.cat(edge_ids), node_seg=torch.cat(node_seg),
                             edge_seg=torch.cat(edge_seg), out_pos=torch.cat(out_pos),
                             index=idx, task_level="node", kwargs=kwargs, flow=direction,
                             in_degree=deg[nid].to(x.dtype), has_loop=has_loop[nid],
                             live=torch.cat(live))
    cid = torch.cat(ctx_ids)
    return SubgraphBatch(x=x[nid], edge_index=torch.cat(parts, 1), node_ids=nid,
                         edge_ids=torch.cat(edge_ids), node_seg=torch.cat(node_seg),
                         edge_seg=torch.cat(edge_seg), out_pos=torch.cat(out_pos), index=idx,
                         task_level="node", kwargs=kwargs, ctx_x=x[cid], ctx_ids=cid,
                         ctx_seg=torch.cat(ctx_seg), ctx_edge_index=torch.cat(ctx_parts, 1),
                         ctx_edge_seg=torch.cat(ctx_eseg), ctx_side=torch.cat(ctx_sides, 1),
                         flow=direction)


@contextmanager
def full_degree_norm(model: torch.nn.Module, sub: SubgraphBatch, copies: int
                     ) -> Iterator[None]:
    """While active, every normalising ``GCNConv`` of ``model`` uses, for ``copies`` stacked
    copies of ``sub`` (:meth:`SubgraphBatch.replicate`), the normalisation ``gcn_norm`` would
    compute on the full graph, via the layer's cache; outside it the layers are restored. Without
    ``sub.in_degree`` (context-edge batches, graph tasks) the layers just cache their own
    normalisation, which is safe because the stacked edges do not change during the run."""
    layers = [m for m in model.modules() if isinstance(m, GCNConv) and m.normalize]
    saved = [(m.cached, m._cached_edge_index, m._cached_adj_t) for m in layers]
    for m in layers:
        m.cached, m._cached_edge_index, m._cached_adj_t = True, None, None
    try:
        if sub.in_degree is not None and sub.has_loop is not None and layers:
            ei = sub.stacked_edges(copies)
            n = sub.x.size(0) * copies
            deg_nl, loop = sub.in_degree.repeat(copies), sub.has_loop.repeat(copies)
            keep = ei[0] != ei[1]
            for m in layers:
                if m.add_self_loops:
                    # add_remaining_self_loops keeps an existing loop's weight (1), else fill
                    loop_w = torch.where(loop, 1.0, 2.0 if m.improved else 1.0).to(deg_nl)
                    dis = (deg_nl + loop_w).pow(-0.5)
                    e = ei[:, keep]
                    loops = torch.arange(n, device=ei.device)
                    m._cached_edge_index = (
                        torch.cat([e, loops.expand(2, -1)], 1),
                        torch.cat([dis[e[0]] * dis[e[1]], loop_w * dis * dis]))
                else:
                    dis = (deg_nl + loop.to(deg_nl)).pow(-0.5)
                    dis = dis.masked_fill(torch.isinf(dis), 0.0)
                    m._cached_edge_index = (ei, dis[ei[0]] * dis[ei[1]])
        yield
    finally:
        for m, (flag, cache, adj) in zip(layers, saved, strict=True):
            m.cached, m._cached_edge_index, m._cached_adj_t = flag, cache, adj


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


def class_log_prob(out: Tensor, target: Tensor, return_type: str, binary: bool
                   ) -> tuple[Tensor, Tensor]:
    """``(log p, log(1 - p))`` of ``target`` under output rows ``out``, computed stably from the
    logits (no saturation when p is near 0 or 1)."""
    if binary:
        z = out.squeeze(-1)
        if return_type == "raw":
            lp, lq = F.logsigmoid(z), F.logsigmoid(-z)
        else:
            p = z.exp() if return_type == "log_probs" else z
            lp, lq = p.clamp(min=1e-30).log(), (1 - p).clamp(min=1e-30).log()
        t = target.bool()
        return torch.where(t, lp, lq), torch.where(t, lq, lp)
    if return_type == "raw":
        logp = out.log_softmax(-1)
    elif return_type == "log_probs":
        logp = out
    else:
        logp = out.clamp(min=1e-30).log()
    idx = target.expand(logp.shape[:-1]).unsqueeze(-1)
    own = logp.gather(-1, idx).squeeze(-1)
    others = logp.scatter(-1, idx, float("-inf")).logsumexp(-1)
    return own, others


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


def set_weight_masks(model: torch.nn.Module, weight: Tensor, edge_index: Tensor) -> None:
    """PyG's ``set_masks`` with plain edge weights (no sigmoid) that keeps ``weight`` in the
    autograd graph. PyG's own explainers register ``_edge_mask`` as a parameter, and after
    ``clear_masks`` the (``None``) entry stays in ``module._parameters``; ``set_masks`` then wraps
    any later mask in a new leaf ``Parameter``, which silently cut the gradient to NSEG's and
    saliency's masks on a model that PyG's GNNExplainer had explained before."""
    from torch_geometric.explain.algorithm.utils import set_masks
    for module in model.modules():
        if isinstance(module, MessagePassing) and "_edge_mask" in module._parameters \
                and module._parameters["_edge_mask"] is None:
            del module._parameters["_edge_mask"]
    set_masks(model, weight, edge_index, apply_sigmoid=False)

