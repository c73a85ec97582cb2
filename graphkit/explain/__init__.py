"""Explaining GNN predictions: NSEG (necessary and sufficient explanations), PN/PS/FNS and
ground-truth metrics, baselines, the small models the benchmarks explain, and
:func:`explain_targets`, which explains many targets in chunks sharded over torch.distributed
ranks."""

from graphkit.explain._batch import BatchExplanation, SubgraphBatch, build_batch
from graphkit.explain.baselines import (
    EXPLAINERS,
    explain_gnnexplainer,
    explain_pgexplainer,
    explain_random,
    explain_saliency,
    run_explainer,
)
from graphkit.explain.metrics import (
    explanation_size,
    fns,
    groundtruth_metrics,
    harden,
    necessity_sufficiency,
)
from graphkit.explain.models import ExplainedGNN, build_model, train_graph_model, train_node_model
from graphkit.explain.nseg import NSEG, nearest_counterfactual
from graphkit.explain.sharded import chunk_seed, explain_targets, sync_model

__all__ = [
    "EXPLAINERS", "NSEG", "BatchExplanation", "ExplainedGNN", "SubgraphBatch", "build_batch",
    "build_model", "chunk_seed", "explain_gnnexplainer", "explain_pgexplainer", "explain_random",
    "explain_saliency", "explain_targets", "explanation_size", "fns", "groundtruth_metrics",
    "harden", "nearest_counterfactual", "necessity_sufficiency", "run_explainer", "sync_model",
    "train_graph_model", "train_node_model",
]
