"""GLANCE (reconstruction) and the synthetic-walker protocol.

Acceptance config (CI-sized: 24×24 frames, 6 frames per clip, width 12, 250 pose steps, 10
fine-tuning epochs, 100 labelled clips). Frozen thresholds, measured on seeds 0-2 when written
(see benchmarks/notes/vision_glance.md): mean over seeds, pre-trained beats scratch on height and
BMI MAE; every seed beats the mean predictor by a wide margin (MAE ≤ 0.6× the mean predictor's);
GLANCE-on beats GLANCE-off (identity, widened to within 5% of the parameters) on pose loss on
average and in at least 2 of 3 seeds.
"""

from __future__ import annotations

import pytest
import torch

from graphkit import GraphError
from graphkit.vision.gait_synth import JOINTS, make_walkers
from graphkit.vision.glance import GLANCE, GaitHealthNet, gait_protocol, param_count

SEEDS = [0, 1, 2]
CONFIG = dict(n_pretrain=100, n_test=100, frames=6, size=24, width=12, pose_steps=250,
              pose_batch=32, epochs=10, device="cpu")


@pytest.mark.parametrize("fusion", [("concat", "attention"), ("sum", "concat"),
                                    ("attention", "sum")])
@pytest.mark.parametrize("progression", ["dilation", "stride"])
@pytest.mark.parametrize("levels", [1, 3])
def test_glance_shapes(fusion, progression, levels):
    g = GLANCE(8, levels=levels, fusion=fusion, progression=progression)
    x = torch.randn(2, 8, 13, 17)
    y = g(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert all(p.grad is not None for p in g.parameters())


def test_glance_is_global_and_centrosymmetric():
    torch.manual_seed(0)
    g = GLANCE(4, levels=3, merge="sum").eval()
    x = torch.randn(1, 4, 16, 16, requires_grad=True)
    g(x)[0, :, 8, 8].sum().backward()
    # dilations 1, 2, 4 with fusion give a receptive field of 15 pixels around the centre
    reach = (x.grad[0].abs().sum(0) > 0).nonzero()
    assert reach[:, 0].max() - reach[:, 0].min() >= 14
    assert len(g.a_up) == len(g.b_down) == 2


def test_bad_input():
    with pytest.raises(GraphError, match="x: expected"):
        GLANCE(8)(torch.randn(1, 3, 8, 8))
    with pytest.raises(GraphError, match="fusion"):
        GLANCE(8, fusion=("sum", "max"))
    with pytest.raises(GraphError, match="fusion"):
        GLANCE(8, fusion="sum")
    with pytest.raises(GraphError, match="progression"):
        GLANCE(8, progression="pool")
    net = GaitHealthNet(in_channels=1, width=8)
    with pytest.raises(GraphError, match="C=1"):
        net(torch.randn(2, 4, 3, 24, 24))
    with pytest.raises(GraphError, match="frames"):
        net.pose(torch.randn(2, 4, 1, 24, 24))


def test_walker_ground_truth():
    clips = make_walkers(16, frames=5, size=24, seed=0)
    assert clips.video.shape == (16, 5, 1, 24, 24) and clips.joints.shape == (16, 5, 9, 2)
    bmi, _, height, weight = clips.targets.T
    torch.testing.assert_close(bmi, weight / (height / 100) ** 2)
    head_to_foot = clips.joints[:, :, JOINTS.index("r_foot"), 1].max(1).values \
        - clips.joints[:, :, 0, 1].min(1).values
    assert torch.corrcoef(torch.stack([head_to_foot, height]))[0, 1] > 0.9
    ink = clips.video.sum((1, 2, 3, 4))
    assert torch.corrcoef(torch.stack([ink, weight]))[0, 1] > 0.8
    maps = clips.heatmaps(12)
    assert maps.shape == (16, 5, 9, 12, 12) and float(maps.max()) <= 1.0
    with pytest.raises(GraphError):
        make_walkers(0)


@pytest.fixture(scope="module")
def protocol():
    return {s: gait_protocol(s, **CONFIG) for s in SEEDS}


def _mean(results, key):
    return sum(r[key] for r in results.values()) / len(results)


@pytest.mark.slow
def test_pretraining_beats_scratch_and_mean(protocol):
    for target in ("height", "bmi"):
        assert _mean(protocol, f"pretrained_mae_{target}") < _mean(protocol,
                                                                  f"scratch_mae_{target}")
        for r in protocol.values():
            assert r[f"pretrained_mae_{target}"] <= 0.6 * r[f"mean_mae_{target}"]


@pytest.mark.slow
def test_glance_on_beats_off_on_pose(protocol):
    for r in protocol.values():
        assert abs(r["params_off"] - r["params_on"]) <= 0.05 * r["params_on"]
    assert _mean(protocol, "pose_on") < _mean(protocol, "pose_off")
    assert sum(r["pose_on"] < r["pose_off"] for r in protocol.values()) >= 2


def test_param_count_positive():
    assert param_count(GaitHealthNet(width=8)) > param_count(GaitHealthNet(width=8, glance=False))
