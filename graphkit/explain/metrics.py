"""Explanation metrics: PN, PS, FNS on hard explanations, and ground-truth AUC / recall@k.

PN / PS / FNS follow CF² (Tan et al., WWW 2022, https://arxiv.org/abs/2202.08816) as NSEG
(Cai et al., https://arxiv.org/abs/2212.07056) evaluates them: PN is the fraction of instances
whose prediction changes when the hard explanation is removed, PS the fraction whose prediction
is kept with the explanation alone, and FNS = 2 PN PS / (PN + PS). For edge masks, "removed"
means edge weight 0 in every message-passing layer (PyG's ``set_masks``), so PN = PyG
``fidelity``'s fid+ and PS = 1 - fid-, and FNS is ``characterization_score`` with equal weights.
Removed node features are replaced by the counterfactual features X_cf (not zeros).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch_geometric.explain.algorithm.utils import clear_masks

from graphkit.errors import GraphError
from graphkit.explain._batch import (
    BatchExplanation,
    full_degree_norm,
    predicted_class,
    set_weight_masks,
)


def fns(pn: float, ps: float) -> float:
    """Harmonic mean of PN and PS (0 when both are 0)."""
    return 0.0 if pn + ps == 0 else 2 * pn * ps / (pn + ps)


def _segment_rank(score: Tensor, seg: Tensor) -> Tensor:
    """Rank (0 = largest) of every score within its segment."""
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(seg[order], stable=True)]
    start = torch.zeros(int(seg.max()) + 2 if seg.numel() else 1, dtype=torch.long,
                        device=seg.device)
    counts = torch.bincount(seg)
    start[1:counts.numel() + 1] = counts.cumsum(0)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=seg.device) - start[seg[order]]
    return rank


def harden(mask: Tensor, seg: Tensor, kind: str = "topk", value: float = 6,
           pairs: Tensor | None = None) -> Tensor:
    """Hard 0/1 version of soft ``mask``: the top ``value`` entries of each instance
    (``kind="topk"``, PyG's ``ThresholdConfig("topk_hard", value)``) or entries >= ``value``
    (``kind="hard"``).

    With ``pairs`` (the undirected pair id of every edge, see
    :meth:`SubgraphBatch.undirected_pairs`) an explanation is a set of undirected edges: each
    pair is scored by the mean of its directions' mask values (how GNNExplainer's and
    PGExplainer's reference code symmetrise masks on undirected graphs), ``value`` counts pairs,
    and a kept pair keeps both directions. Without it, top-k on an asymmetric mask may keep one
    direction of up to k different undirected edges."""
    if pairs is not None:
        num = int(pairs.max()) + 1 if pairs.numel() else 0
        score = torch.zeros(num, dtype=mask.dtype, device=mask.device).scatter_reduce(
            0, pairs, mask, reduce="mean", include_self=False)
        pair_seg = torch.zeros(num, dtype=torch.long, device=seg.device).scatter_(0, pairs, seg)
        return harden(score, pair_seg, kind, value)[pairs]
    if kind == "topk":
        if int(value) < 1:
            raise GraphError(f"value: top-k needs a positive integer, got {value}")
        return (_segment_rank(mask, seg) < int(value)).float()
    if kind == "hard":
        return (mask >= value).float()
    raise GraphError(f"kind: expected 'topk' or 'hard', got {kind!r}")


@torch.no_grad()
def necessity_sufficiency(model: torch.nn.Module, res: BatchExplanation, *, kind: str = "topk",
                          value: float = 6, node_value: float | None = None,
                          return_type: str = "raw", binary: bool = False,
                          undirected: bool = False) -> dict:
    """PN, PS and FNS of the hard explanations in ``res``.

    Args:
        model: the explained model.
        res: masks of every instance (from NSEG or a baseline).
        kind: ``"topk"`` (``value`` edges per instance, directed unless ``undirected``) or
            ``"hard"`` (mask >= value).
        value: k or the threshold for edge masks.
        node_value: the same for node masks (defaults: k nodes for top-k, else ``value``).
        return_type: the model's output type (``"raw"``, ``"probs"``, ``"log_probs"``).
        binary: the model is a binary classifier with one output.
        undirected: the graph is undirected and an explanation is a set of undirected edges:
            for edges, ``value`` counts undirected edges (both directions kept or removed
            together, ranked by the mean of their masks; see :func:`harden`). The default
            counts directed edges, as PyG's ``fidelity`` on a hard mask does.

    Returns:
        ``{"pn", "ps", "fns", "pn_each", "ps_each"}`` (the last two per instance).
    """
    sub = res.sub
    pairs = sub.undirected_pairs() if undirected else None
    hard_e = harden(res.edge_mask, sub.edge_seg, kind, value, pairs=pairs)
    x = sub.x
    x_pn = x_ps = x
    if res.node_mask is not None:
        if res.x_cf is None:
            raise GraphError("x_cf: a feature explanation needs its counterfactual features")
        hard_f = harden(res.node_mask, sub.node_seg, kind,
                        value if node_value is None else node_value).unsqueeze(-1)
        x_pn = hard_f * res.x_cf + (1 - hard_f) * x
        x_ps = hard_f * x + (1 - hard_f) * res.x_cf
    was_training = model.training
    model.eval()
    try:
        x_all, ei_all, w_all, kw, rows = sub.replicate([x_pn, x_ps], [1 - hard_e, hard_e])
        set_weight_masks(model, w_all, ei_all)
        with full_degree_norm(model, sub, 2):
            out = model(x_all, ei_all, **kw)
    finally:
        clear_masks(model)
        model.train(was_training)
    pred = predicted_class(out[rows], return_type, binary)
    tgt = res.target.to(pred.device)
    pn_each = (pred[0] != tgt).float()
    ps_each = (pred[1] == tgt).float()
    pn, ps = float(pn_each.mean()), float(ps_each.mean())
    return {"pn": pn, "ps": ps, "fns": fns(pn, ps), "pn_each": pn_each.cpu(),
            "ps_each": ps_each.cpu()}


def own_motif_edges(edge_index: Tensor, gt_edge_mask: Tensor, num_nodes: int) -> Tensor:
    """Component id (over ground-truth edges) of every node, -1 for nodes on no ground-truth
    edge. An edge belongs to target t's own motif when it is a ground-truth edge in t's
    component: the computation subgraph may contain other motifs, which are not t's
    explanation."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    gt = gt_edge_mask.bool().cpu()
    ei = edge_index.cpu()[:, gt].numpy()
    adj = coo_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(num_nodes, num_nodes))
    _, comp = connected_components(adj, directed=False)
    on_gt = np.zeros(num_nodes, dtype=bool)
    on_gt[ei.reshape(-1)] = True
    comp = np.where(on_gt, comp, -1)
    return torch.from_numpy(comp)


def groundtruth_metrics(res: BatchExplanation, edge_index: Tensor, gt_edge_mask: Tensor,
                        k: int = 6) -> dict:
    """ROC-AUC of the soft edge mask against the target's own motif edges over its computation
    subgraph, and recall@k: the share of those motif edges (undirected) among the k undirected
    edges with the highest mask (the two directions averaged). Instances with no motif edge in
    their subgraph are skipped (``instances_with_truth`` counts the rest)."""
    from sklearn.metrics import roc_auc_score
    sub = res.sub
    if sub.task_level != "node":
        raise GraphError("groundtruth_metrics: only node-level explanations have motif truth")
    num_nodes = int(max(int(edge_index.max()) + 1, int(sub.node_ids.max()) + 1))
    comp = own_motif_edges(edge_index, gt_edge_mask, num_nodes)
    ei = edge_index.cpu()[:, sub.edge_ids.cpu()]
    targets = sub.index.cpu()[sub.edge_seg.cpu()]
    tcomp = comp[targets]
    label = (gt_edge_mask.cpu().bool()[sub.edge_ids.cpu()] & (comp[ei[0]] == tcomp)
             & (tcomp >= 0)).numpy()
    score = res.edge_mask.detach().cpu().double().numpy()
    seg = sub.edge_seg.cpu().numpy()
    bounds = np.searchsorted(seg, np.arange(sub.num_instances + 1))
    aucs, recalls = [], []
    for i in range(sub.num_instances):
        lo, hi = bounds[i], bounds[i + 1]
        y, s = label[lo:hi], score[lo:hi]
        if y.all() or not y.any():
            continue
        aucs.append(roc_auc_score(y, s))
        und: dict[tuple[int, int], list[float]] = {}
        truth = set()
        for (a, b), val, lab in zip(ei[:, lo:hi].t().tolist(), s, y, strict=True):
            if a == b:
                continue
            key = (min(a, b), max(a, b))
            und.setdefault(key, []).append(float(val))
            if lab:
                truth.add(key)
        ranked = sorted(und, key=lambda e: -float(np.mean(und[e])))[:k]
        recalls.append(len(truth.intersection(ranked)) / len(truth))
    return {"auc": float(np.mean(aucs)) if aucs else float("nan"),
            "recall": float(np.mean(recalls)) if recalls else float("nan"),
            "instances_with_truth": len(aucs)}


def explanation_size(res: BatchExplanation, threshold: float = 0.5) -> float:
    """Mean number of (directed) edges per instance whose mask is >= ``threshold``."""
    hits = torch.bincount(res.sub.edge_seg, weights=(res.edge_mask >= threshold).float(),
                          minlength=res.num_instances)
    return float(hits.mean())
