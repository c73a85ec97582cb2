import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from graphkit import GraphError
from graphkit.vision import emo
from graphkit.vision.cnn_zoo import accuracy, fit_classifier, load_digits_tensors

# exact counts from the official training logs (fvcore), 1000-class head
PARAMS = {"emo_1m": 1_361_168, "emo_2m": 2_377_472, "emo_5m": 5_108_848, "emo_6m": 6_168_496}
PAPER_M = {"emo_1m": 1.3, "emo_2m": 2.3, "emo_5m": 5.1, "emo_6m": 6.1}
MACS_G = {"emo_1m": 0.2552, "emo_2m": 0.4319, "emo_5m": 0.8922}


def tiny(**kw) -> emo.EMO:
    cfg = dict(num_classes=10, depths=(1, 1, 2, 1), stem_dim=16, embed_dims=(16, 24, 32, 48),
               exp_ratios=(2, 2, 2, 2), dim_heads=(16, 16, 16, 16))
    cfg.update(kw)
    return emo.EMO(**cfg)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_exact_parameter_counts(name):
    n = sum(p.numel() for p in getattr(emo, name)().parameters())
    assert n == PARAMS[name]
    assert math.floor(n / 1e5) / 10 == PAPER_M[name]  # the paper truncates to 0.1M


@pytest.mark.parametrize("name", sorted(MACS_G))
def test_flops_at_224(name):
    model = getattr(emo, name)().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000)
    assert fc.get_total_flops() / 2e9 == pytest.approx(MACS_G[name], rel=5e-3)


@pytest.mark.parametrize("size", [(32, 32), (45, 61), (7, 7)])
def test_shapes_any_size(size):
    model = emo.emo_1m(num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 10)


@pytest.mark.parametrize("hw,rows", [((14, 14), list(range(0, 14, 2))), ((9, 9), [0, 2, 4, 6, 8])])
def test_windows_are_strided(hw, rows):
    block = emo.iRMB(16, 16, exp_ratio=2, dim_head=8, window_size=7, attn_s=True,
                     attn_pre=True).eval()
    seen = []
    block._attend = lambda w: seen.append(w) or w[:, :1].expand(-1, 32, -1, -1)
    x = torch.randn(1, 16, *hw)
    block._windows(x)
    win = seen[0]
    assert win.shape == (4, 16, 7, 7)
    # window 0 gathers rows/cols 0, n, 2n, ... of the zero-padded 14x14 map
    padded = torch.nn.functional.pad(x, (0, 14 - hw[1], 0, 14 - hw[0]))
    assert torch.equal(win[0], padded[0, :, ::2, ::2])
    assert torch.equal(win[0][:, :len(rows), :len(rows)], x[0][:, rows][:, :, rows])


def test_window_global_and_attn_post():
    for ws, pre in [(0, True), (7, False)]:
        block = emo.iRMB(32, 32, exp_ratio=2, dim_head=16, window_size=ws, attn_s=True,
                         attn_pre=pre, qkv_bias=True).eval()
        assert block(torch.randn(2, 32, 10, 11)).shape == (2, 32, 10, 11)


def test_skip_rules_and_structure():
    assert emo.iRMB(16, 16, stride=1, attn_s=False).has_skip
    assert not emo.iRMB(16, 16, stride=2, attn_s=False).has_skip
    assert not emo.iRMB(16, 24, attn_s=False).has_skip
    model = emo.emo_1m()
    first, later = model.stages[2][0], model.stages[2][1]
    assert not first.attn_s and first.conv_local[0].stride == (2, 2)
    assert later.attn_s and later.qk.out_channels == 160 and later.qk.bias is not None
    assert isinstance(later.norm, emo.LayerNorm2d) and later.norm.eps == 1e-6
    assert first.v[0].out_channels == int(48 * 6.0)


def test_bad_input():
    model = tiny()
    with pytest.raises(GraphError, match="expected input"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(GraphError, match="dim_head"):
        emo.iRMB(30, 30, dim_head=16, attn_s=True)
    with pytest.raises(GraphError, match="norm_layer"):
        emo.iRMB(16, 16, norm_layer="gn", attn_s=False)
    with pytest.raises(GraphError, match="entries"):
        emo.EMO(depths=(1, 1, 1))


def test_drop_path_and_reset():
    model = tiny(drop_path=0.5).train()
    out = model(torch.randn(4, 3, 32, 32))
    out.sum().backward()
    torch.manual_seed(0)
    model.reset_parameters()
    w = model.head.weight.clone()
    torch.manual_seed(0)
    model.reset_parameters()
    assert torch.equal(w, model.head.weight)


def test_small_emo_learns_digits():
    x_tr, y_tr, x_te, y_te = load_digits_tensors(size=32, channels=3, seed=0)
    torch.manual_seed(0)
    model = fit_classifier(tiny(), x_tr, y_tr, epochs=4, lr=4e-3, weight_decay=0.05, seed=0,
                           device="cpu")
    assert accuracy(model, x_te, y_te) >= 0.95
