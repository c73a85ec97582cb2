import pytest

from benchmarks.vision_cmt import ABOVE_CHANCE, COLLAPSE, MODALMASK, PLAIN, SINGLE, acceptance
from graphkit.errors import GraphError
from graphkit.vision.cmt import ModalMask


def _record(method: str, **maps: float) -> dict:
    metrics = {"chance_map": 0.02, "both_map": 0.0, "lidar_removed_map": 0.0,
               "lidar_removed_pe_zeroed_map": 0.0}
    metrics.update({f"{k}_map": v for k, v in maps.items()})
    return {"method": method, "metrics": metrics}


@pytest.mark.parametrize("plain_without_lidar, met", [(0.038, True), (0.042, False)])
def test_acceptance_applies_the_frozen_criteria(plain_without_lidar, met):
    assert ABOVE_CHANCE == 2.0 and COLLAPSE == 2.0  # frozen; changing them needs a new calibration
    recs = [_record(MODALMASK, both=0.1, lidar_removed=0.05,
                    lidar_removed_pe_zeroed=0.02)] * 3
    recs += [_record(PLAIN, both=0.2, lidar_removed=plain_without_lidar,
                     lidar_removed_pe_zeroed=0.02)] * 3
    res = acceptance(recs)
    assert res["(2) ModalMask, LiDAR removed"]["passed"]
    assert res["(3) no ModalMask, LiDAR removed"]["passed"] is met
    assert res["(3) no ModalMask, LiDAR removed"]["seeds"] == 3
    assert all(r["passed"] for name, r in res.items() if "no ModalMask, LiDAR removed" not in name)


def test_acceptance_needs_both_models():
    with pytest.raises(GraphError, match="no records"):
        acceptance([_record(MODALMASK, both=0.1)])


def test_single_sensor_records_do_not_enter_the_acceptance():
    recs = [_record(MODALMASK, both=0.1, lidar_removed=0.05, lidar_removed_pe_zeroed=0.02),
            _record(PLAIN, both=0.2, lidar_removed=0.03, lidar_removed_pe_zeroed=0.02),
            _record(SINGLE["lidar-only"][0], both=0.5, lidar_removed=0.5)]
    assert acceptance(recs) == acceptance(recs[:2])


def test_single_sensor_training_zeroes_the_other_input(tmp_path, monkeypatch):
    import benchmarks.vision_cmt as bench
    seen = []
    monkeypatch.setattr(bench, "run_seed", lambda seed, mm, *a, **k: seen.append(mm) or {
        "both": {"map": 0.0}})
    bench.main(["--quick", "--only", "camera-only", "--out", str(tmp_path / "r.jsonl")])
    assert isinstance(seen[0], ModalMask)
    assert seen[0].choose() == "points"  # camera-only: the points are dropped in every sample


def test_model_overrides_reach_the_model_and_the_protocol(tmp_path, monkeypatch):
    import benchmarks.vision_cmt as bench
    from benchmarks.harness import read_records
    seen = []
    monkeypatch.setattr(bench, "run_seed", lambda seed, mm, settings, device, cfg, model_kw:
                        seen.append(model_kw) or {"both": {"map": 0.0}})
    out = tmp_path / "r.jsonl"
    bench.main(["--quick", "--only", "plain", "--model", "standard_freq=true", "--out", str(out)])
    assert seen[0]["standard_freq"] is True and seen[0]["hidden"] == bench.MODEL_KW["hidden"]
    (rec,) = read_records(out)
    assert rec["protocol"].endswith("model standard_freq=true")
    assert rec["model"]["standard_freq"] is True
    with pytest.raises(GraphError, match="--model"):
        bench.main(["--quick", "--model", "widht=3", "--out", str(out)])


@pytest.mark.parametrize("flags, label", [
    ([], "calibration, full, 4000 steps, 4000 train scenes, image lr x0.01, model "
         "standard_freq=true"),
    (["--train-scenes", "500", "--image-lr-mult", "0.1", "--model", "standard_freq=false"],
     "calibration, full, 4000 steps, image lr x0.1"),
    (["--train-scenes", "500", "--model", "hidden=32"],
     "calibration, full, 4000 steps, image lr x0.01, model standard_freq=true"),
])
def test_protocol_label_names_every_departure(tmp_path, monkeypatch, flags, label):
    import benchmarks.vision_cmt as bench
    from benchmarks.harness import read_records
    monkeypatch.setattr(bench, "run_seed", lambda *a, **k: {"both": {"map": 0.0}})
    out = tmp_path / "r.jsonl"
    bench.main(["--calibration", "--only", "plain", "--out", str(out), *flags])
    assert read_records(out)[0]["protocol"] == label


def test_acceptance_command_reads_only_the_given_seeds(tmp_path, capsys):
    import benchmarks.vision_cmt as bench
    from benchmarks.harness import append_record
    out = tmp_path / "r.jsonl"
    for seed, plain_without_lidar in [(0, 0.03), (1, 0.03), (2, 0.03), (3, 0.2)]:
        for rec in (_record(MODALMASK, both=0.1, lidar_removed=0.05),
                    _record(PLAIN, both=0.2, lidar_removed=plain_without_lidar)):
            append_record(out, {**rec, "seed": seed, "protocol": "p",
                                "dataset": bench.DATASETS["weak"]})
    bench.main(["--acceptance", "p", "--seeds", "0", "1", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "(3) no ModalMask, LiDAR removed: 1.50x chance over 3 seeds -> met" in printed
    bench.main(["--acceptance", "p", "--out", str(out)])
    assert "over 4 seeds -> NOT met" in capsys.readouterr().out
