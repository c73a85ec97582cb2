import json

import pytest

from benchmarks import harness, report


def test_records_append_resume_and_report(tmp_path):
    path = tmp_path / "results" / "toy.jsonl"
    for seed, acc in enumerate([0.5, 0.7]):
        rec = harness.make_record("m", "d", "p", seed, {"acc": acc}, 1.0, "cpu", lr=0.1)
        harness.append_record(path, rec)
    harness.append_record(path, harness.make_record("m", "d2", "p", 0, {"acc": 1.0}, 2.0))
    records = harness.read_records(path)
    assert len(records) == 3 and records[0]["lr"] == 0.1
    assert {"versions", "machine", "commit", "device"} <= set(records[0])
    assert harness.done_seeds(path, dataset="d") == {0, 1}
    harness.drop_records(path, dataset="d2")
    assert len(harness.read_records(path)) == 2
    text = report.render(tmp_path / "results")
    assert "## toy" in text and "0.6000 ± 0.1000" in text
    assert all(json.loads(line) for line in path.read_text().splitlines())
    assert not list(path.parent.glob("*.tmp"))


def test_time_fn_is_median_after_warmup():
    calls = []
    seconds = harness.time_fn(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5 and seconds >= 0


def test_mean_std_population():
    assert harness.mean_std([1, 3]) == pytest.approx((2.0, 1.0))


def _append_many(path, worker, count):
    for i in range(count):
        harness.append_record(path, harness.make_record("m", "d", "p", i, {"w": worker}, 0.0))


def test_concurrent_appends_lose_no_record(tmp_path):
    import multiprocessing as mp
    path = tmp_path / "r.jsonl"
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    procs = [ctx.Process(target=_append_many, args=(path, w, 25)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    records = harness.read_records(path)
    assert len(records) == 75
    assert sorted((r["metrics"]["w"], r["seed"]) for r in records) == [
        (w, i) for w in range(3) for i in range(25)]


def test_report_counts_the_latest_run_of_a_seed(tmp_path):
    path = tmp_path / "results" / "toy.jsonl"
    for seed, acc in ((0, 0.1), (1, 0.7), (0, 0.5), (None, 0.2), (None, 0.4)):
        harness.append_record(path, harness.make_record("m", "d", "p", seed, {"acc": acc}, 1.0))
    kept = report.latest_per_seed(harness.read_records(path))
    assert sorted((repr(r["seed"]), r["metrics"]["acc"]) for r in kept) == [
        ("0", 0.5), ("1", 0.7), ("None", 0.2), ("None", 0.4)]
    assert "| m | d | p | 0.4500 ± 0.1803 | 4 |" in report.render(tmp_path / "results")
