"""``graphkit mgnn`` protocol runner: output keys, --out/--resume, bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphkit.commands.mgnn as cmd
from graphkit.commands.mgnn import run_protocol
from graphkit.errors import GraphError


def test_cv_protocol_writes_and_resumes(tmp_path):
    out = tmp_path / "mgnn.jsonl"
    kw = dict(protocol="cv5", seeds=2, epochs=2, device="cpu", out=str(out), resume=True,
              load_kwargs=dict(num_graphs=30))
    first = run_protocol("triangles-squares", model_name="mgnn", **kw)
    assert {"dataset", "protocol", "acc_mean", "acc_std", "seeds", "seconds"} <= set(first)
    assert first["seeds"] == [0, 1] and 0.0 <= first["acc_mean"] <= 1.0
    again = run_protocol("triangles-squares", model_name="mgnn", **kw)
    assert again["seeds"] == [] and again["skipped_seeds"] == [0, 1]
    base = run_protocol("triangles-squares", model_name="gin", **{**kw, "seeds": 1})
    assert base["model"] == "PyG-GIN" and base["seeds"] == [0]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["method"], r["seed"]) for r in records] == [("MGNN", 0), ("MGNN", 1),
                                                           ("PyG-GIN", 0)]


@pytest.mark.parametrize("kwargs,match", [
    (dict(protocol="paper"), "protocol"), (dict(model_name="mlp"), "model"),
    (dict(seeds=0), "seeds"), (dict(protocol="cv7-ref"), "protocol"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(GraphError, match=match):
        run_protocol("triangles-squares", **{"epochs": 1, **kwargs})


@pytest.mark.parametrize("model", ["gat", "gin", "mgnn"])
def test_public_protocol_with_early_stopping(data_root, model):
    res = run_protocol("cora", "public", model, seeds=1, epochs=3, root=str(data_root),
                       device="cpu", patience=1)
    assert res["protocol"] == "public-es" and res["seeds"] == [0]
    assert 0.0 <= res["acc_mean"] <= 1.0


@pytest.fixture
def built(monkeypatch) -> list:
    """The models ``run_protocol`` builds, in order."""
    models: list = []
    real = cmd.build_model

    def spy(*args, **kwargs):
        models.append(real(*args, **kwargs))
        return models[-1]

    monkeypatch.setattr(cmd, "build_model", spy)
    return models


def test_reference_protocol_builds_widths_16_c_c_and_records(tmp_path, built):
    out = tmp_path / "mgnn.jsonl"
    res = run_protocol("triangles-squares", "cv5-ref", "mgnn", seeds=1, epochs=2, device="cpu",
                       out=str(out), load_kwargs=dict(num_graphs=30))
    assert res["protocol"] == "cv5-ref" and res["seeds"] == [0] and len(res["accs"]) == 1
    (model,) = built
    assert [c.out_channels for c in model.convs] == [16, 2, 2]  # C = 2 classes
    assert all(c.pairs == "reference" for c in model.convs)
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["protocol"] == "cv5-ref" and record["epochs"] == 2
    assert record["config"]["widths"] == "16,C,C" and record["config"]["init"] == "kaiming"
    assert "val_acc" in record["metrics"]
    assert cmd.build_model("mgnn", 5, 3, "graph", 8, **cmd.REF_GRAPH_CONFIG).hidden_channels \
        == (8, 3, 3)  # --hidden sets the first conv


def test_use_node_attr_labels_and_refuses_node_sets(tmp_path):
    res = run_protocol("triangles-squares", "cv5", "gin", seeds=1, epochs=1, device="cpu",
                       load_kwargs=dict(num_graphs=20), use_node_attr=True)
    assert res["protocol"] == "cv5-attr"
    with pytest.raises(GraphError, match="use_node_attr"):
        run_protocol("karate", "paper", use_node_attr=True)


def test_repeat_reseeds_the_same_folds_and_labels_records(tmp_path, monkeypatch):
    import graphkit.runtime as runtime
    seeds, real = [], runtime.seed_everything
    monkeypatch.setattr(runtime, "seed_everything", lambda s: (seeds.append(s), real(s))[1])
    out = tmp_path / "rep.jsonl"
    kw = dict(seeds=2, epochs=1, device="cpu", out=str(out), load_kwargs=dict(num_graphs=20))
    res = run_protocol("triangles-squares", "cv5", "gin", repeat=2, **kw)
    assert res["protocol"] == "cv5-repeat2" and res["seeds"] == [0, 1]
    assert seeds == [2 * cmd.REPEAT_SEED_STRIDE, 2 * cmd.REPEAT_SEED_STRIDE + 1]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["seed"], r["repeat"], r["run_seed"]) for r in records] == \
        [(0, 2, 2000), (1, 2, 2001)]
    with pytest.raises(GraphError, match="repeat"):
        run_protocol("karate", "paper", repeat=1)
    with pytest.raises(GraphError, match="repeat"):
        run_protocol("triangles-squares", "cv5", repeat=-1)


def test_reference_split_is_the_reference_scripts_permutation(data_root, tmp_path, monkeypatch):
    # MGNN_Node/main.py: torch.manual_seed(55), then PyG's RandomNodeSplit('train_rest', 500, 500).
    import torch
    import torch_geometric.transforms as T

    import graphkit.nn
    from graphkit.data import load
    splits = []
    original = graphkit.nn.fit_node

    def spy(model, data, **kw):
        splits.append(data)
        return original(model, data, **kw)

    monkeypatch.setattr("graphkit.nn.fit_node", spy)
    out = tmp_path / "node.jsonl"
    res = run_protocol("cora", "paper", "gcn", seeds=2, epochs=1, root=str(data_root),
                       device="cpu", out=str(out), split_seed="reference")
    assert res["protocol"] == "paper@55" and res["seeds"] == [0, 1]
    torch.manual_seed(55)
    ref = T.RandomNodeSplit("train_rest", num_val=500, num_test=500)(load("cora",
                                                                         root=str(data_root)))
    for split in splits:  # one split for both seeds: the seed only changes the initialization
        for key in ("train_mask", "val_mask", "test_mask"):
            assert torch.equal(split[key], ref[key])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["protocol"], r["split_seed"]) for r in records] == [("paper@55", 55)] * 2


@pytest.mark.parametrize("n, seed", [(2708, 55), (3327, 161)])
def test_reference_split_does_not_depend_on_the_torch_version(n, seed):
    # torch's CPU randperm has been the same Fisher-Yates since torch 1.x (the reference ran
    # 1.12): swap r[i] with r[i + u % (n - i)], u the next 32-bit mt19937 draw after
    # manual_seed. Rebuilt on numpy's MT19937 (legacy seeding = mt19937 init_genrand), so
    # this pins the reference scripts' Cora / CiteSeer permutations independently of torch.
    import numpy as np
    import torch
    bits = np.random.MT19937()
    bits._legacy_seeding(seed)
    draws = bits.random_raw(n)
    perm = np.arange(n)
    for i in range(n - 1):
        j = i + int(draws[i]) % (n - i)
        perm[i], perm[j] = perm[j], perm[i]
    torch.manual_seed(seed)
    assert np.array_equal(torch.randperm(n).numpy(), perm)


@pytest.mark.parametrize("kwargs, match", [
    (dict(protocol="public", split_seed=3), "only the 'paper' protocol"),
    (dict(protocol="paper", split_seed="lucky"), "an int or 'reference'"),
    (dict(protocol="paper", split_seed=-1), "non-negative"),
])
def test_bad_split_seed(data_root, kwargs, match):
    with pytest.raises(GraphError, match=match):
        run_protocol("cora", model_name="gcn", seeds=1, epochs=1, root=str(data_root),
                     device="cpu", **kwargs)


def test_node_config_width_and_compress_reach_the_model():
    from graphkit.commands.mgnn import NODE_CONFIG, build_model
    cfg = NODE_CONFIG["cora"]
    conv = build_model("mgnn", 10, 3, "node", **cfg).convs[0]
    assert (conv.out_channels, conv.compress_channels) == (cfg["width"], cfg["compress_channels"])
    assert build_model("mgnn", 10, 3, "node", 8, **cfg).convs[0].out_channels == 8  # hidden wins


@pytest.mark.parametrize("model", ["gcn", "sage", "gat"])
def test_node_baselines_get_their_own_config_not_mgnns(data_root, tmp_path, monkeypatch, model):
    monkeypatch.setitem(cmd.BASELINE_NODE_CONFIG, model,
                        {"cora": dict(lr=0.005, weight_decay=5e-3, dropout=0.8, width=48)})
    built = []
    original = cmd.build_model
    monkeypatch.setattr(cmd, "build_model",
                        lambda *a, **kw: built.append(original(*a, **kw)) or built[-1])
    out = tmp_path / "node.jsonl"
    run_protocol("cora", "paper", model, seeds=1, epochs=1, root=str(data_root), device="cpu",
                 out=str(out))
    (net,) = built
    assert net.hidden_channels == 48 and net.dropout.p == 0.8  # not MGNN's 32 / 0.6
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (record["lr"], record["weight_decay"]) == (0.005, 5e-3)
    assert record["config"] == dict(dropout=0.8, width=48)
    # CiteSeer is not listed for the patched model: the PyG-tutorial defaults.
    assert cmd.baseline_node_config(model, "citeseer") == cmd.BASELINE_NODE_DEFAULTS


def test_fold_indices_partition_the_graphs():
    from graphkit.commands.mgnn import fold_indices
    folds = [(None, np.arange(i, 20, 5)) for i in range(5)]
    for fold in range(5):
        train, val, test = fold_indices(folds, fold, 20)
        assert set(test) == set(folds[fold][1]) and set(val) == set(folds[fold - 1][1])
        assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(20))


@pytest.mark.parametrize("model_name,key,value", [("mgnn", "widths", "32,C,C"),
                                                  ("gin", "width", 16)])
def test_searched_graph_settings_are_applied_and_labelled(tmp_path, monkeypatch, built,
                                                          model_name, key, value):
    monkeypatch.setattr(cmd, "GRAPH_SEARCHED", {model_name: {"triangles-squares": {
        "lr": 0.001, "weight_decay": 5e-4, key: value}}})
    out = tmp_path / "mgnn.jsonl"
    res = run_protocol("triangles-squares", "cv5-ref", model_name, seeds=1, epochs=1,
                       device="cpu", out=str(out), load_kwargs=dict(num_graphs=30),
                       searched=True)
    assert res["protocol"] == "cv5-ref-searched"
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["lr"] == 0.001 and record["weight_decay"] == 5e-4
    assert record["config"][key] == value
    (model,) = built
    if model_name == "mgnn":
        assert [c.out_channels for c in model.convs] == [32, 2, 2]
    else:
        assert model.head[0].in_features == 16
    for protocol in ("cv5", "cv10-ref"):  # cv10-ref tests on the graphs the search validated on
        with pytest.raises(GraphError, match="searched"):
            run_protocol("triangles-squares", protocol, model_name, seeds=1, epochs=1,
                         searched=True, load_kwargs=dict(num_graphs=30))


def test_reference_node_config_runs_the_released_settings(data_root, tmp_path, monkeypatch):
    import graphkit.commands.mgnn as cmd
    built = []
    original = cmd.build_model

    def spy(*args, **kw):
        built.append(kw)
        return original(*args, **kw)

    monkeypatch.setattr(cmd, "build_model", spy)
    res = run_protocol("citeseer", "paper", seeds=1, epochs=1, root=str(data_root),
                       device="cpu", out=str(tmp_path / "r.jsonl"), split_seed="reference",
                       node_config="reference")
    assert res["protocol"] == "paper@161-refcfg"
    assert (built[0]["width"], built[0]["compress_channels"], built[0]["weight_decay"]) == \
        (16, 6, 20e-3)
    with pytest.raises(GraphError, match="node_config"):
        run_protocol("cora", "paper", "gcn", node_config="reference")
    with pytest.raises(GraphError, match="node_config"):
        run_protocol("cora", "paper", node_config="paper")
