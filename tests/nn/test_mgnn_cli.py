"""``graphkit mgnn`` protocol runner: output keys, --out/--resume, bad arguments."""

from __future__ import annotations

import json

import pytest

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
    (dict(seeds=0), "seeds"),
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
