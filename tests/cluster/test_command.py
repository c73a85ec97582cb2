import json

import pytest

from graphkit.cli import main


def test_cluster_command_json_out_resume_plot(tmp_path, capsys):
    out, plot = tmp_path / "r.jsonl", tmp_path / "t.png"
    argv = ["cluster", "--dataset", "karate", "--seeds", "2", "--epochs", "12", "--json",
            "--out", str(out), "--plot", str(plot)]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("dataset", "protocol", "acc", "nmi", "ari", "f1", "acc_std", "seeds",
                "seconds_per_seed"):
        assert key in res
    assert res["seeds"] == 2 and 0 <= res["acc"] <= 100
    assert plot.stat().st_size > 0
    assert [json.loads(line)["seed"] for line in out.read_text().splitlines()] == [0, 1]
    assert main(argv[:-2] + ["--resume", "--seeds", "3"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["seeds"] == 1 and res["skipped_seeds"] == [0, 1]
    assert len(out.read_text().splitlines()) == 3


@pytest.mark.parametrize("argv", [["--seeds", "0"], ["--dataset", "no-such-graph"]])
def test_cluster_command_bad_input(argv, capsys):
    assert main(["cluster", "--dataset", "karate", "--epochs", "2", *argv]) == 2
