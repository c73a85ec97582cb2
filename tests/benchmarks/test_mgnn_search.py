"""The library's searched settings are what the validation search chose."""

import pytest

from benchmarks.mgnn_search import GRAPH_MODELS, GRAPH_SETS, best_baselines, name_of, stage_h
from graphkit.commands.mgnn import BASELINE_NODE_CONFIG


def test_baseline_node_config_is_the_stage_f_choice():
    assert best_baselines() == BASELINE_NODE_CONFIG


@pytest.mark.parametrize("dataset", GRAPH_SETS)
@pytest.mark.parametrize("model", GRAPH_MODELS)
def test_stage_h_grid_has_eight_configs_with_the_reference_one(dataset, model):
    configs = [c for d, c in stage_h() if d == dataset and c["model"] == model]
    assert len(configs) == len({name_of(c) for c in configs}) == 8
    reference = {"widths": "16,C,C"} if model == "mgnn" else {"width": 64}
    assert dict(task="graph", model=model, lr=0.01, weight_decay=5e-3, **reference) in configs


def test_graph_searched_is_the_stage_h_choice():
    from benchmarks.mgnn_search import best_graph
    from graphkit.commands.mgnn import GRAPH_SEARCHED
    assert best_graph() == GRAPH_SEARCHED
