"""The CLI through subprocess, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_root


def run(*args: str, cwd: Path | None = None, env_extra: dict | None = None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "graphkit", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def test_info_json():
    out = run("info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert {"graphkit", "torch", "torch_geometric", "device", "data_root",
            "datasets_present"} <= set(info)
    assert info["device"] in ("cpu", "cuda")


def test_info_lists_present_datasets():
    root = shared_root()
    if root is None:
        pytest.skip("no real data")
    info = json.loads(run("info", "--json", env_extra={"GRAPHKIT_DATA": str(root)}).stdout)
    assert {"cora", "mutag", "photo", "bat"} <= set(info["datasets_present"])
    assert "pubmed" not in info["datasets_present"]


def test_info_human_readable():
    out = run("info")
    assert out.returncode == 0 and "torch_geometric" in out.stdout


def test_datasets_json(tmp_path):
    out = run("datasets", "--json", "--only", "karate", "cora", "--root", str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)["datasets"]}
    assert rows["karate"]["loads"] and rows["karate"]["nodes"] == 34
    assert not rows["cora"]["loads"] and "ind.cora.x" in rows["cora"]["error"]


def test_datasets_with_real_data():
    root = shared_root()
    if root is None:
        pytest.skip("no real data")
    out = run("datasets", "--json", "--only", "mutag", "bat", "--root", str(root))
    rows = {r["name"]: r for r in json.loads(out.stdout)["datasets"]}
    assert rows["mutag"]["graphs"] == 188 and rows["bat"]["nodes"] == 131


def test_demo_data_section_json(tmp_path):
    out = run("demo", "--json", "--only", "data", "--out", str(tmp_path / "res"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["data"]["rows"][0]["dataset"] == "karate"
    assert json.loads((tmp_path / "res" / "results.json").read_text()) == result


@pytest.mark.parametrize("args", [["nosuchcommand"], ["info", "--bogus"], ["info", "--seed", "x"],
                                  []])
def test_usage_errors_exit_2_without_traceback(args):
    out = run(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("graphkit ")


def test_graph_error_maps_to_exit_2(monkeypatch, capsys):
    from graphkit import GraphError, cli
    from graphkit.commands import info

    def boom(args):
        raise GraphError("x: bad")

    monkeypatch.setattr(info, "run", boom)
    assert cli.main(["info"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "graphkit info: error: x: bad"

    def crash(args):
        raise RuntimeError("internal")

    monkeypatch.setattr(info, "run", crash)
    assert cli.main(["info", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "internal" in captured.err
