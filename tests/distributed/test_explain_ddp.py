"""``graphkit explain --distributed``: targets sharded in chunks over torchrun ranks (gloo, CPU)
give the same masks and metrics as one process; chunking itself changes nothing for NSEG."""

import json
import os
import subprocess
import sys

import pytest
import torch

from graphkit.data import load
from graphkit.errors import GraphError
from graphkit.explain import chunk_seed, explain_targets, run_explainer, train_node_model
from tests.distributed.test_ddp import REPO, torchrun

ARGS = ["explain", "--dataset", "ba-shapes", "--model", "gcn", "--nodes", "24",
        "--batch-size", "5", "--epochs", "30", "--train-epochs", "100", "--seed", "3", "--json"]


@pytest.fixture(scope="module")
def ba():
    data = load("ba-shapes")
    model, _ = train_node_model(data, "gcn", seed=0, epochs=30, device="cpu")
    return data, model


def test_chunked_nseg_equals_one_call_and_seeds_matter(ba):
    data, model = ba
    idx = torch.arange(300, 700, 50)
    kw = {"epochs": 15, "task_level": "node"}
    one = run_explainer("nseg", model, data.x, data.edge_index, idx, seed=1,
                        nseg_kw={"batch_size": 3}, **kw)
    chunked = explain_targets("nseg", model, data.x, data.edge_index, idx, seed=1, batch_size=3,
                              **kw)
    assert torch.equal(one.edge_mask, chunked.edge_mask)
    assert torch.equal(one.sub.edge_ids, chunked.sub.edge_ids)
    assert torch.equal(one.target, chunked.target)
    again = explain_targets("nseg", model, data.x, data.edge_index, idx, seed=1, batch_size=3,
                            **kw)
    other = explain_targets("nseg", model, data.x, data.edge_index, idx, seed=2, batch_size=3,
                            **kw)
    assert torch.equal(again.edge_mask, chunked.edge_mask)
    assert not torch.allclose(other.edge_mask, chunked.edge_mask, atol=1e-3)
    rnd = [explain_targets("random", model, data.x, data.edge_index, idx, seed=s, batch_size=3,
                           **kw).edge_mask for s in (1, 1, 2)]
    assert torch.equal(rnd[0], rnd[1]) and not torch.equal(rnd[0], rnd[2])


def test_chunk_seed_and_bad_input(ba):
    data, model = ba
    assert chunk_seed(7, 0) == 7
    assert len({chunk_seed(7, c) for c in range(50)}) == 50
    assert chunk_seed(7, 3) == chunk_seed(7, 3) != chunk_seed(8, 3)
    with pytest.raises(GraphError, match="batch_size"):
        explain_targets("nseg", model, data.x, data.edge_index, [300], batch_size=0)
    with pytest.raises(GraphError, match="explainer"):
        explain_targets("nope", model, data.x, data.edge_index, [300])
    with pytest.raises(GraphError, match="out of range"):
        explain_targets("nseg", model, data.x, data.edge_index, [10**6])


def test_distributed_flag_needs_torchrun():
    from graphkit.cli import main
    assert main(["explain", "--dataset", "ba-shapes", "--distributed"]) == 2


@pytest.mark.slow
def test_explain_torchrun_two_ranks_equals_one_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    single.mkdir()
    multi.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "tests.distributed.explain_worker", str(single),
                          *ARGS, "--out", str(tmp_path / "single.jsonl")], capture_output=True,
                         text=True, cwd=REPO, env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    two = torchrun(2, "tests.distributed.explain_worker", str(multi), *ARGS, "--out",
                   str(tmp_path / "multi.jsonl"), "--distributed")
    assert two.returncode == 0, two.stderr[-3000:]
    lines = [line for line in two.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, "only rank 0 prints"
    a, b = json.loads(one.stdout), json.loads(lines[0])
    for key in ("pn", "ps", "fns", "auc", "recall", "size", "instances", "model_test_acc"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    recs = [json.loads(p.read_text()) for p in (tmp_path / "single.jsonl",
                                                 tmp_path / "multi.jsonl")]
    assert [r["world_size"] for r in recs] == [1, 2], "one record, written by rank 0 only"
    ref, got = (torch.load(d / "explain.pt", weights_only=True) for d in (single, multi))
    assert torch.equal(ref["edge_ids"], got["edge_ids"])
    assert torch.equal(ref["target"], got["target"])
    assert torch.allclose(ref["edge_mask"], got["edge_mask"], atol=1e-6)
    for key, value in ref["state"].items():
        assert torch.allclose(value, got["state"][key], atol=1e-6), key
    # 24 targets in chunks of 5: rank 0 explains chunks 0, 2, 4 and rank 1 chunks 1, 3
    ranks = [torch.load(multi / f"chunks{r}.pt", weights_only=True) for r in range(2)]
    assert [len(c) for c in ranks[0]] == [5, 5, 4] and [len(c) for c in ranks[1]] == [5, 5]
    assert not set(sum(ranks[0], [])) & set(sum(ranks[1], []))
    assert sorted(sum(ranks[0] + ranks[1], [])) == sorted(
        sum(torch.load(single / "chunks0.pt", weights_only=True), []))
