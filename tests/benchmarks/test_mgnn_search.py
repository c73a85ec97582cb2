"""The node baselines' library settings are what the validation search chose."""

from benchmarks.mgnn_search import best_baselines
from graphkit.commands.mgnn import BASELINE_NODE_CONFIG


def test_baseline_node_config_is_the_stage_f_choice():
    assert best_baselines() == BASELINE_NODE_CONFIG
