"""NAIVEATTACK / DOORPING on dataset distillation (graphkit.vision.distill_backdoor)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from graphkit.errors import GraphError
from graphkit.vision.distill import (
    MLP,
    ConvNet,
    DCConfig,
    DDConfig,
    dd_unroll,
    distance_wb,
    distill_dc,
    distill_dd,
    get_params,
    match_loss,
)
from graphkit.vision.distill_backdoor import (
    DoorPing,
    attack_metrics,
    default_mask,
    naive_poison,
    run_attack,
    select_neuron,
    stamp,
    update_trigger,
    weight_layers,
)


def test_default_mask_is_bottom_right_with_margin():
    mask = default_mask((1, 8, 8), size=2)
    rows, cols = mask[0].nonzero().T
    assert sorted(set(rows.tolist())) == [5, 6] and sorted(set(cols.tolist())) == [5, 6]
    assert int(default_mask((3, 10, 12), size=3).sum()) == 27
    with pytest.raises(GraphError, match="size"):
        default_mask((1, 4, 4), size=4)


def test_stamp_touches_only_the_mask():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 9, 9)
    mask = default_mask((3, 9, 9), size=3)
    trigger = torch.randn(3, 9, 9) * 100
    out = stamp(x, trigger, mask)
    assert torch.equal(out[:, ~mask], x[:, ~mask])
    assert torch.equal(out[:, mask], trigger[mask].expand(5, -1))
    assert torch.equal(x, x.clone())  # input untouched
    with pytest.raises(GraphError, match="mask"):
        stamp(x, trigger, mask.float())
    with pytest.raises(GraphError, match="shapes"):
        stamp(x, trigger[:, :8], mask[:, :8])


def test_select_neuron_hand_built_matrix():
    w = torch.tensor([[1.0, -1.0, 0.0],     # L1 2
                      [0.0, 0.0, 0.5],      # L1 0.5
                      [-3.0, 0.5, 0.0],     # L1 3.5 (largest, mostly negative)
                      [1.0, 1.0, 1.0]])     # L1 3
    assert select_neuron(w).tolist() == [2]
    assert select_neuron(w, topk=2).tolist() == [2, 3]
    conv = torch.zeros(3, 2, 3, 3)
    conv[1, 0, 0, 0] = -5.0
    assert select_neuron(conv).tolist() == [1]
    with pytest.raises(GraphError, match="topk"):
        select_neuron(w, topk=5)


def test_weight_layers_skip_biases():
    names = [n for n, _ in weight_layers(MLP(4, 3, 2))]
    assert names == ["fc1.weight", "fc2.weight"]
    conv_names = [n for n, _ in weight_layers(ConvNet(1, 10, (8, 8)))]
    assert conv_names == ["features.0.weight", "features.4.weight", "classifier.weight"]


@pytest.mark.parametrize("clip", [None, (-0.5, 2.0)])
def test_trigger_update_moves_only_the_patch(clip):
    torch.manual_seed(0)
    model = MLP(64, 16, 10)
    params = get_params(model)
    mask = default_mask((1, 8, 8))
    trigger = torch.randn(1, 8, 8)  # non-zero outside the mask on purpose
    new, info = update_trigger(model, params, trigger, mask, max_steps=30, stop_loss=0.0,
                               clip=clip)
    assert torch.equal(new[~mask], trigger[~mask])
    assert not torch.equal(new[mask], trigger[mask])
    assert info.steps == 30 and info.neuron == int(select_neuron(params["fc1.weight"]))
    if clip is not None:
        assert float(new[mask].min()) >= clip[0] and float(new[mask].max()) <= clip[1]
    # the Adam step sees a gradient that is zero off the patch
    t = trigger.clone().requires_grad_(True)
    x = stamp(torch.zeros(1, 8, 8), t, mask)[None]
    functional_call(model, params, (x,))[0, 3].backward()
    assert torch.all(t.grad[~mask] == 0) and torch.any(t.grad[mask] != 0)


def test_trigger_update_raises_activation_and_stops_early():
    torch.manual_seed(1)
    model = MLP(64, 16, 10)
    params = get_params(model)
    mask = default_mask((1, 8, 8))
    trigger = torch.where(mask, torch.full((1, 8, 8), 3.0), torch.zeros(1, 8, 8))
    new, info = update_trigger(model, params, trigger, mask, max_steps=1000)
    assert info.loss < 0.5 and info.steps < 1000
    assert abs(info.final_activation) > abs(info.start_activation)
    assert info.linf == pytest.approx(float(new[mask].abs().max()))


def test_naive_poison_and_metrics():
    x = torch.zeros(100, 1, 8, 8)
    y = torch.arange(100) % 10
    mask = default_mask((1, 8, 8))
    xp, yp, idx = naive_poison(x, y, mask, target=0, portion=0.05, value=1.0, seed=3)
    assert len(idx) == 5 and torch.all(yp[idx] == 0) and torch.all(xp[idx][:, mask] == 1.0)
    rest = torch.ones(100, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(xp[rest], x[rest]) and torch.equal(yp[rest], y[rest])

    def pred(z):  # "backdoored" rule: patch lit → 0, else the true label via a lookup
        lit = z[:, 0, 5, 5] > 0.5
        return torch.where(lit, torch.zeros_like(y[: len(z)]), y[: len(z)])

    trig = torch.ones(1, 8, 8)
    m = attack_metrics(pred, x, y, trig, mask, target=0)
    assert m == {"cta": 1.0, "asr": 1.0}
    with pytest.raises(GraphError, match="portion"):
        naive_poison(x, y, mask, portion=0.0)


def test_distance_wb_hand_computation():
    gr = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    gs = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    expected = (1 - 1 / 2**0.5) + (1 - (-2) / 2)
    assert float(distance_wb(gr, gs)) == pytest.approx(expected, rel=1e-5)
    assert float(distance_wb(torch.ones(3), -torch.ones(3))) == 0.0  # biases ignored
    conv = torch.randn(4, 2, 3, 3)
    assert float(distance_wb(conv, conv)) == pytest.approx(0.0, abs=1e-5)
    assert float(match_loss([gr, torch.ones(2)], [gs, torch.zeros(2)])) == pytest.approx(expected,
                                                                                         rel=1e-5)


def test_dd_hypergradient_matches_finite_differences():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    images = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)  # 2 steps × 4 images
    labels = torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0]])
    lrs = torch.tensor([0.3, 0.5], dtype=torch.float64, requires_grad=True)
    x_real = torch.randn(16, 4, dtype=torch.float64)
    y_real = torch.randint(0, 2, (16,))

    def outer(img, lr):
        theta = dd_unroll(model, params, img, labels, lr, epochs=1)
        return F.cross_entropy(functional_call(model, theta, (x_real,)), y_real)

    g_img, g_lr = (g.detach() for g in torch.autograd.grad(outer(images, lrs), (images, lrs)))
    eps = 1e-6
    img0, lr0 = images.detach(), lrs.detach()
    for pos in [(0, 1, 2), (1, 3, 0)]:
        e = torch.zeros_like(img0)
        e[pos] = eps
        fd = ((outer(img0 + e, lr0) - outer(img0 - e, lr0)) / (2 * eps)).detach()
        assert float(g_img[pos]) == pytest.approx(float(fd), rel=1e-4, abs=1e-8)
    for i in range(2):
        e = torch.zeros_like(lr0)
        e[i] = eps
        fd = ((outer(img0, lr0 + e) - outer(img0, lr0 - e)) / (2 * eps)).detach()
        assert float(g_lr[i]) == pytest.approx(float(fd), rel=1e-4, abs=1e-8)


def _toy_real(n=60):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3 + y.view(-1, 1, 1, 1) * 0.1
    return x, y


def test_dd_checkpoint_resume_equals_uninterrupted(tmp_path):
    x, y = _toy_real()
    mask = default_mask((1, 8, 8))
    idx = torch.tensor([1, 2, 3])
    cfg = dict(distill_steps=2, distill_epochs=1, batch_real=16, checkpoint_every=2)

    def run(iterations, ckpt):
        torch.manual_seed(0)
        model = MLP(64, 8, 10)
        xr = x.clone()
        hook = DoorPing(xr, idx, torch.where(mask, 2.0, 0.0), mask, max_steps=5)
        res = distill_dd(model, xr, y, 10, DDConfig(iterations=iterations, **cfg), seed=1,
                         hook=hook, checkpoint=ckpt)
        return res, hook, xr

    full, hook_full, x_full = run(4, None)
    run(2, tmp_path / "dd.pt")                       # "killed" after 2 iterations
    resumed, hook_res, x_res = run(4, tmp_path / "dd.pt")
    assert torch.allclose(full.images, resumed.images, atol=1e-6)
    assert torch.allclose(full.step_lrs, resumed.step_lrs, atol=1e-7)
    assert torch.allclose(hook_full.trigger, hook_res.trigger, atol=1e-6)
    assert torch.allclose(x_full, x_res, atol=1e-6)
    assert len(hook_res.updates) == 4 and "trigger_linf_pixels" in hook_res.updates[-1]
    assert [h["iteration"] for h in resumed.history] == [2, 4]


def test_dc_runs_with_doorping_hook():
    x, y = _toy_real(40)
    mask = default_mask((1, 8, 8))
    torch.manual_seed(0)
    model = ConvNet(1, 10, (8, 8), width=4)
    hook = DoorPing(x, torch.tensor([0, 5]), torch.where(mask, 1.0, 0.0), mask, max_steps=3)
    images, labels = distill_dc(model, x, y, 10, DCConfig(ipc=1, iterations=1, outer_loop=2,
                                                          inner_loop=1, batch_real=4), hook=hook)
    assert images.shape == (10, 1, 8, 8) and labels.tolist() == list(range(10))
    assert len(hook.updates) == 1  # one inner phase between the two matching steps
    assert torch.equal(x[0][mask], hook.trigger[mask])


def test_bad_input_raises_graph_error():
    x, y = _toy_real(20)
    with pytest.raises(GraphError, match="y_real"):
        distill_dd(MLP(64, 4, 10), x, y.clamp(max=5), 10, DDConfig(iterations=1))
    with pytest.raises(GraphError, match="iterations"):
        distill_dd(MLP(64, 4, 10), x, y, 10, DDConfig(iterations=0))
    with pytest.raises(GraphError, match="attack"):
        run_attack("badnets")
    with pytest.raises(GraphError, match="layer"):
        update_trigger(MLP(64, 4, 10), get_params(MLP(64, 4, 10)), torch.zeros(1, 8, 8),
                       default_mask((1, 8, 8)), layer=5)


ACCEPT = dict(method="dd", portion=0.05, trigger_size=2, seed=0, trigger_steps=50,
              dd_config=DDConfig(iterations=200), device="cpu")


@pytest.mark.slow
def test_digits_acceptance_doorping_vs_naive():
    # calibration (seed 0, 2 shared CPU cores): clean 0.926 / 0.007, naive 0.918 / 0.321,
    # doorping 0.921 / 1.000 (trigger L∞ ≈ 300 pixel units); thresholds are the issue's.
    clean = run_attack("clean", **ACCEPT)
    naive = run_attack("naive", **ACCEPT)
    door = run_attack("doorping", clip_trigger=False, **ACCEPT)
    print({k: (r["cta"], r["asr"], r["trigger_linf_pixels"])
           for k, r in [("clean", clean), ("naive", naive), ("doorping", door)]})
    assert clean["cta"] >= 0.85
    assert door["asr"] >= 0.90 and door["cta"] >= clean["cta"] - 0.08
    assert naive["asr"] <= door["asr"] - 0.30
    assert door["trigger_updates"] == 200 and not door["trigger_valid"]


def test_digits_clipped_trigger_stays_valid():
    # characterisation only: efficacy of the clipped variant is reported by the benchmark
    cfg = {**ACCEPT, "dd_config": DDConfig(iterations=20)}
    res = run_attack("doorping", clip_trigger=True, **cfg)
    assert res["trigger_valid"] and res["trigger_linf_pixels"] <= 1.0 + 1e-4
    assert res["trigger_updates"] == 20
