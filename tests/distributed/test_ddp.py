"""torchrun --standalone --nproc-per-node 2 on CPU (gloo): ranks end identical and match one
process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from graphkit.distributed import shard, unshard

REPO = Path(__file__).resolve().parents[2]


def torchrun(nproc: int, module: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", module, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


def test_shard_unshard():
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert parts[0] == [0, 3, 6, 9] and unshard(parts) == items


@pytest.mark.slow
def test_graph_classification_ddp_matches_single_process(data_root, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    single.mkdir()
    multi.mkdir()
    out = subprocess.run([sys.executable, "-m", "tests.distributed.graph_worker", str(data_root),
                          str(single)], capture_output=True, text=True, cwd=REPO, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    out = torchrun(2, "tests.distributed.graph_worker", str(data_root), str(multi))
    assert out.returncode == 0, out.stderr[-3000:]
    ref = torch.load(single / "rank0.pt", weights_only=True)
    ranks = [torch.load(multi / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), f"ranks differ in {key}"
        assert torch.allclose(value, ref["state"][key], atol=1e-4), f"DDP != single in {key}"
    assert ranks[0]["result"]["world_size"] == 2
    assert ranks[0]["result"]["best_epoch"] == ref["result"]["best_epoch"]
    assert abs(ranks[0]["result"]["test_acc"] - ref["result"]["test_acc"]) < 1e-6


@pytest.mark.slow
def test_mgnn_cli_distributed_matches_single_process(data_root):
    args = ["mgnn", "--dataset", "mutag", "--seeds", "1", "--epochs", "3", "--json",
            "--root", str(data_root)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "graphkit", *args], capture_output=True,
                            text=True, cwd=REPO, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    multi = torchrun(2, "graphkit", *args, "--distributed")
    assert multi.returncode == 0, multi.stderr[-3000:]
    lines = [line for line in multi.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, "only rank 0 prints"
    a, b = json.loads(single.stdout), json.loads(lines[0])
    assert abs(a["acc_mean"] - b["acc_mean"]) < 1e-6 and a["seeds"] == b["seeds"]


@pytest.mark.slow
def test_mgnn_cli_distributed_resume_skips_on_every_rank(data_root, tmp_path):
    """Every rank must skip the same seeds: if only rank 0 read --out, the ranks would train
    different folds and wait on each other forever (the timeout turns that into a failure)."""
    out = tmp_path / "records.jsonl"
    args = ["mgnn", "--dataset", "mutag", "--epochs", "2", "--json", "--root", str(data_root),
            "--out", str(out), "--distributed"]
    first = torchrun(2, "graphkit", *args, "--seeds", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    again = torchrun(2, "graphkit", *args, "--seeds", "2", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    result = json.loads([line for line in again.stdout.splitlines() if line.strip()][0])
    assert result["skipped_seeds"] == [0] and result["seeds"] == [1]
    seeds = [json.loads(line)["seed"] for line in out.read_text().splitlines()]
    assert sorted(set(seeds)) == [0, 1] and seeds.count(0) == seeds.count(1)


def test_distributed_flag_needs_torchrun_and_a_graph_dataset():
    from graphkit.cli import main
    assert main(["mgnn", "--dataset", "mutag", "--distributed"]) == 2
    assert main(["mgnn", "--dataset", "karate", "--distributed"]) == 2
