"""Baseline explainers for the NSEG benchmark, all returning a
:class:`~graphkit.explain.BatchExplanation` over the same computation subgraphs as NSEG.

- ``random``: uniform random edge masks (the floor any explainer must beat).
- ``saliency``: |d p_yhat / d w_e| at edge weights w = 1 (gradient saliency, Simonyan et al.
  2014 applied to edge weights), normalised to [0, 1] per target.
- ``gnnexplainer``: PyG's :class:`~torch_geometric.explain.GNNExplainer`, looped over targets on
  the whole graph, as users call it (Ying et al. 2019, https://arxiv.org/abs/1903.03894).
- ``pgexplainer``: PyG's :class:`~torch_geometric.explain.PGExplainer` (Luo et al. 2020,
  https://arxiv.org/abs/2011.04573), trained on the targets with the model's predictions as
  labels (PyG only offers it for ``phenomenon`` explanations, so the prediction is the target).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor
from torch_geometric.explain.algorithm.utils import clear_masks

from graphkit.errors import GraphError
from graphkit.explain._batch import (
    BatchExplanation,
    SubgraphBatch,
    build_batch,
    check_output,
    class_prob,
    full_degree_norm,
    predicted_class,
    set_weight_masks,
)
from graphkit.explain.nseg import NSEG

EXPLAINERS = ("nseg", "nseg-joint", "gnnexplainer", "pgexplainer", "random", "saliency")


def _prepare(model: torch.nn.Module, x: Tensor, edge_index: Tensor, index: Any,
             task_level: str, kwargs: dict[str, Any]) -> tuple[SubgraphBatch, Tensor]:
    model.eval()
    sub = build_batch(model, x, edge_index, index, task_level=task_level, **kwargs)
    with torch.no_grad():
        out = model(x, edge_index, **kwargs)
    check_output(out, "raw")
    return sub, predicted_class(out, "raw", False)[sub.index.to(out.device)]


def explain_random(model: torch.nn.Module, x: Tensor, edge_index: Tensor, index: Any = None, *,
                   seed: int = 0, task_level: str = "node", **kwargs: Any) -> BatchExplanation:
    """Uniform random soft edge masks."""
    start = time.perf_counter()
    sub, tgt = _prepare(model, x, edge_index, index, task_level, kwargs)
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(sub.edge_index.size(1), generator=gen).to(x.device)
    return BatchExplanation(sub, tgt, mask, seconds=time.perf_counter() - start,
                            method="random")


def explain_saliency(model: torch.nn.Module, x: Tensor, edge_index: Tensor, index: Any = None,
                     *, task_level: str = "node", **kwargs: Any) -> BatchExplanation:
    """Gradient saliency of the predicted-class probability w.r.t. the edge weights, all targets
    in one backward pass (their subgraphs are disjoint, so gradients do not mix)."""
    start = time.perf_counter()
    sub, tgt = _prepare(model, x, edge_index, index, task_level, kwargs)
    weight = torch.ones(sub.edge_index.size(1), device=x.device, requires_grad=True)
    x_all, ei_all, w_all, kw, rows = sub.replicate([sub.x], [weight])
    set_weight_masks(model, w_all, ei_all)
    try:
        with full_degree_norm(model, sub, 1):
            out = model(x_all, ei_all, **kw)
        class_prob(out[rows], tgt, "raw", False).sum().backward()
    finally:
        clear_masks(model)
    grad = weight.grad.abs()
    peak = torch.zeros(sub.num_instances, device=x.device).scatter_reduce(
        0, sub.edge_seg, grad, reduce="amax")
    mask = grad / peak[sub.edge_seg].clamp(min=1e-12)
    return BatchExplanation(sub, tgt, mask, seconds=time.perf_counter() - start,
                            method="saliency")


def _model_config(task_level: str) -> dict[str, str]:
    return {"mode": "multiclass_classification", "task_level": task_level, "return_type": "raw"}


def explain_gnnexplainer(model: torch.nn.Module, x: Tensor, edge_index: Tensor,
                         index: Any = None, *, epochs: int = 500, lr: float = 0.01,
                         task_level: str = "node", **kwargs: Any) -> BatchExplanation:
    """PyG's GNNExplainer (edge masks, default coefficients), one target at a time."""
    from torch_geometric.explain import Explainer, GNNExplainer
    start = time.perf_counter()
    sub, tgt = _prepare(model, x, edge_index, index, task_level, kwargs)
    explainer = Explainer(model, GNNExplainer(epochs=epochs, lr=lr), explanation_type="model",
                          edge_mask_type="object", model_config=_model_config(task_level))
    mask = torch.zeros(sub.edge_index.size(1), device=x.device)
    for i, t in enumerate(sub.index.tolist()):
        exp = explainer(x, edge_index, index=t, **kwargs)
        sel = sub.edge_seg == i
        mask[sel] = exp.edge_mask[sub.edge_ids[sel]]
    return BatchExplanation(sub, tgt, mask, seconds=time.perf_counter() - start,
                            method="gnnexplainer")


# PGExplainer's passes over all targets: the count PyG's PGExplainer example uses (30).
PGEXPLAINER_EPOCHS = 30


def explain_pgexplainer(model: torch.nn.Module, x: Tensor, edge_index: Tensor,
                        index: Any = None, *, epochs: int = PGEXPLAINER_EPOCHS, lr: float = 0.003,
                        train_index: Any = None, task_level: str = "node",
                        **kwargs: Any) -> BatchExplanation:
    """PyG's PGExplainer trained for ``epochs`` passes over ``train_index`` (default: the
    targets) with the model's predictions as labels, then applied to every target."""
    from torch_geometric.explain import Explainer, PGExplainer
    if task_level != "node":
        raise GraphError("pgexplainer: only node-level benchmarks are wired here")
    start = time.perf_counter()
    sub, tgt = _prepare(model, x, edge_index, index, task_level, kwargs)
    # PGExplainer.coeffs is a class-level dict that constructor kwargs would mutate for every
    # later instance; we pass none and give this instance its own copy.
    algo = PGExplainer(epochs=epochs, lr=lr)
    algo.coeffs = dict(algo.coeffs)
    explainer = Explainer(model, algo.to(x.device), explanation_type="phenomenon",
                          edge_mask_type="object", model_config=_model_config(task_level))
    with torch.no_grad():
        full_target = model(x, edge_index, **kwargs).argmax(-1)
    train = sub.index if train_index is None else torch.as_tensor(train_index).view(-1)
    for epoch in range(epochs):
        for t in train.tolist():
            algo.train(epoch, model, x, edge_index, target=full_target, index=t, **kwargs)
    mask = torch.zeros(sub.edge_index.size(1), device=x.device)
    for i, t in enumerate(sub.index.tolist()):
        exp = explainer(x, edge_index, target=full_target, index=t, **kwargs)
        sel = sub.edge_seg == i
        mask[sel] = exp.edge_mask[sub.edge_ids[sel]]
    return BatchExplanation(sub, tgt, mask, seconds=time.perf_counter() - start,
                            method="pgexplainer")


def run_explainer(name: str, model: torch.nn.Module, x: Tensor, edge_index: Tensor,
                  index: Any = None, *, epochs: int = 500, seed: int = 0,
                  task_level: str = "node", nseg_kw: dict[str, Any] | None = None,
                  pgexplainer_epochs: int | None = None,
                  **kwargs: Any) -> BatchExplanation:
    """Dispatch by name (one of :data:`EXPLAINERS`) with a shared epoch budget.

    ``epochs`` is the number of optimisation steps per explained target of the per-instance
    explainers (NSEG, GNNExplainer). PGExplainer trains one shared network instead, and its
    epoch is a pass over every target (400 steps on BA-Shapes' motif nodes), so it keeps its own
    count, ``pgexplainer_epochs`` (``None``: :data:`PGEXPLAINER_EPOCHS`)."""
    if name in ("nseg", "nseg-joint"):
        algo = NSEG(epochs=epochs, seed=seed, features=name == "nseg-joint", edges=True,
                    **(nseg_kw or {}))
        return algo.explain(model, x, edge_index, index=index, task_level=task_level,
                            return_type="raw", **kwargs)
    if name == "gnnexplainer":
        torch.manual_seed(seed)
        return explain_gnnexplainer(model, x, edge_index, index, epochs=epochs,
                                    task_level=task_level, **kwargs)
    if name == "pgexplainer":
        torch.manual_seed(seed)
        return explain_pgexplainer(model, x, edge_index, index,
                                   epochs=pgexplainer_epochs or PGEXPLAINER_EPOCHS,
                                   task_level=task_level, **kwargs)
    if name == "random":
        return explain_random(model, x, edge_index, index, seed=seed, task_level=task_level,
                              **kwargs)
    if name == "saliency":
        return explain_saliency(model, x, edge_index, index, task_level=task_level, **kwargs)
    raise GraphError(f"explainer: expected one of {EXPLAINERS}, got {name!r}")
