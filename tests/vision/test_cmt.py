"""Tests for graphkit.vision.cmt (and the toy world in graphkit.vision.cmt_toy)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from graphkit.errors import GraphError
from graphkit.vision.cmt import (
    CMT,
    BEVPositionEncoding,
    CameraRayPositionEncoding,
    ModalMask,
    PositionGuidedQueryGenerator,
    centre_distance_ap,
    decode_centre,
    encode_boxes,
    hungarian_match,
    inverse_sigmoid,
    pos2embed,
)
from graphkit.vision.cmt_toy import (
    WEAK_CAMERA,
    PillarEncoder,
    ToyCMT,
    ToySceneConfig,
    _camera,
    chance_ap,
    evaluate_toy,
    make_scenes,
    train_toy,
)

PC_RANGE = (0.0, -8.0, -1.0, 16.0, 8.0, 3.0)
IMG_HW = (32, 64)


def _lidar2img(yaws=(0.0,), batch=1) -> torch.Tensor:
    cfg = ToySceneConfig()
    mats = torch.tensor(np.stack([_camera(cfg, y) for y in yaws]), dtype=torch.float32)
    return mats.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


# ----------------------------------------------------------------------------- encodings


def test_pos2embed_code_schedule_matches_formula():
    xy = torch.tensor([[0.3, 0.7]])
    pe = pos2embed(xy, num_feats=4)
    # dim_t = 2*floor(k/2)/4 + 1 = [1, 1, 1.5, 1.5]; y first, interleaved sin/cos.
    y, x = 0.7 * 2 * math.pi, 0.3 * 2 * math.pi
    want = [math.sin(y / 1), math.cos(y / 1), math.sin(y / 1.5), math.cos(y / 1.5),
            math.sin(x / 1), math.cos(x / 1), math.sin(x / 1.5), math.cos(x / 1.5)]
    assert torch.allclose(pe[0], torch.tensor(want), atol=1e-6)


def test_pos2embed_standard_schedule():
    xy = torch.tensor([[0.25, 0.5]])
    pe = pos2embed(xy, num_feats=4, standard=True)
    x = 0.25 * 2 * math.pi
    assert pe[0, 6].item() == pytest.approx(math.sin(x / 100.0), abs=1e-6)   # 10000**(2/4)


def test_bev_encoding_shapes_and_grid():
    enc = BEVPositionEncoding(16)
    assert enc.grid(3, 5).shape == (15, 16)
    assert enc.mlp[0].in_features == 32


def test_ray_encoding_equals_query_image_part_at_projected_pixel():
    torch.manual_seed(0)
    hidden = 16
    gen = PositionGuidedQueryGenerator(5, hidden, depth_num=8, pc_range=PC_RANGE)
    l2i = _lidar2img()
    feat_hw = (8, 16)
    cell_pe = gen.ray_pe(l2i, feat_hw, IMG_HW)[0, 0]                         # (128, h)
    uv = gen.ray_pe.feature_pixels(feat_hw, IMG_HW)
    cells = torch.tensor([0 * 16 + 3, 3 * 16 + 8, 5 * 16 + 11, 7 * 16 + 15])
    cells = cells[uv[cells, 0] > 0]          # u = 0 is on the image border; keep interior pixels
    depths = torch.tensor([2.0, 5.0, 9.0, 12.0])[: len(cells)]
    hom = torch.cat((uv[cells] * depths[:, None], depths[:, None], torch.ones(len(cells), 1)), 1)
    pts = (torch.linalg.inv(l2i[0, 0].double()) @ hom.double().T).T[:, :3].float()
    lo, hi = torch.tensor(PC_RANGE[:3]), torch.tensor(PC_RANGE[3:])
    anchors = (pts - lo) / (hi - lo)
    part, visible = gen.image_part(anchors, l2i, IMG_HW)
    assert visible.all()
    assert torch.allclose(part[0], cell_pe[cells], atol=1e-4)


def test_anchor_behind_or_outside_gets_no_image_part():
    torch.manual_seed(0)
    gen = PositionGuidedQueryGenerator(3, 16, depth_num=8, pc_range=PC_RANGE)
    lo, hi = torch.tensor(PC_RANGE[:3]), torch.tensor(PC_RANGE[3:])
    # Two points far to the side (outside the image) and one visible point; then the same points
    # for a camera looking backwards (all behind it).
    pts = torch.tensor([[4.0, 7.5, 0.5], [1.0, -7.5, 0.5], [8.0, 0.0, 0.5]])
    anchors = (pts - lo) / (hi - lo)
    part, visible = gen.image_part(anchors, _lidar2img((0.0,)), IMG_HW)
    assert visible[0, 0].tolist() == [False, False, True]
    assert torch.count_nonzero(part[0, :2]) == 0
    assert torch.count_nonzero(part[0, 2]) > 0
    back, vis_back = gen.image_part(anchors, _lidar2img((math.pi,)), IMG_HW)
    assert not vis_back.any() and torch.count_nonzero(back) == 0


def test_query_image_part_sums_over_views():
    torch.manual_seed(0)
    gen = PositionGuidedQueryGenerator(6, 16, depth_num=8, pc_range=PC_RANGE)
    l2i = _lidar2img((-0.4, 0.4))
    both, vis = gen.image_part(gen.anchors.weight, l2i, IMG_HW)
    one = sum(gen.image_part(gen.anchors.weight, l2i[:, v:v + 1], IMG_HW)[0] for v in range(2))
    assert torch.allclose(both, one, atol=1e-6)


# ----------------------------------------------------------------------------- boxes, matching


def test_zero_offset_returns_anchor():
    anchors = torch.tensor([[0.1, 0.5, 0.9], [0.75, 0.25, 0.4]])
    rng = torch.tensor(PC_RANGE)
    out = decode_centre(torch.zeros(2, 3), anchors, rng)
    assert torch.allclose(out, anchors * (rng[3:] - rng[:3]) + rng[:3], atol=1e-5)
    assert torch.allclose(torch.sigmoid(inverse_sigmoid(anchors)), anchors, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (5, 3), (6, 6)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hungarian_matches_brute_force(shape, seed):
    cost = np.random.default_rng(seed).normal(size=shape)
    rows, cols = hungarian_match(torch.tensor(cost))
    best = min(sum(cost[r, c] for r, c in zip(perm, range(shape[1]), strict=False))
               for perm in itertools.permutations(range(shape[0]), shape[1]))
    assert len(cols) == shape[1]
    assert cost[rows.numpy(), cols.numpy()].sum() == pytest.approx(best)


def test_encode_boxes_layout_and_errors():
    code = encode_boxes(torch.tensor([[1.0, 2.0, 0.5, 1.0, 2.0, 1.5, 0.3]]))
    want = [1.0, 2.0, 0.0, math.log(2.0), 0.5, math.log(1.5), math.sin(0.3), math.cos(0.3)]
    assert torch.allclose(code[0], torch.tensor(want), atol=1e-6)
    with pytest.raises(GraphError, match="sizes must be positive"):
        encode_boxes(torch.tensor([[0.0, 0, 0, 1, -1, 1, 0]]))


def test_centre_distance_ap_perfect_and_empty():
    gts = [{"boxes": torch.tensor([[1.0, 1.0], [5.0, 5.0]]), "labels": torch.tensor([0, 1])}]
    perfect = [{"centres": torch.tensor([[1.2, 1.0], [5.0, 5.3]]), "scores": torch.tensor([.9, .8]),
                "labels": torch.tensor([0, 1])}]
    assert centre_distance_ap(perfect, gts, 2)["map"] == pytest.approx(1.0)
    far = [{"centres": torch.tensor([[9.0, 9.0]]), "scores": torch.tensor([.9]),
            "labels": torch.tensor([0])}]
    assert centre_distance_ap(far, gts, 2)["map"] == 0.0
    # 0.3 m off: a TP at 0.5/1/2 m ... and a 0.7 m miss only at the 0.5 m threshold.
    off = [{"centres": torch.tensor([[1.7, 1.0], [5.3, 5.0]]), "scores": torch.tensor([.9, .8]),
            "labels": torch.tensor([0, 1])}]
    ap = centre_distance_ap(off, gts, 2)
    assert ap["ap@0.5"] == pytest.approx(0.5) and ap["ap@1"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- modal mask


def test_modal_mask_frequencies_and_zeroing():
    mask = ModalMask()
    gen = torch.Generator().manual_seed(0)
    draws = [mask.choose(gen) for _ in range(4000)]
    freq = {k: draws.count(k) / len(draws) for k in (None, "points", "images")}
    assert freq[None] == pytest.approx(0.5, abs=0.03)
    assert freq["points"] == pytest.approx(0.25, abs=0.03)
    assert freq["images"] == pytest.approx(0.25, abs=0.03)
    pts, imgs = torch.ones(5, 3), torch.ones(1, 3, 4, 4)
    p, i, d = ModalMask(mode="test", mask_modal="points")(pts, imgs)
    assert d == "points" and p.abs().sum() == 0 and p.shape == pts.shape and i.equal(imgs)
    with pytest.raises(GraphError, match="mask_modal"):
        ModalMask(mode="test", mask_modal="radar")
    with pytest.raises(GraphError, match="p_images"):
        ModalMask(p_images=0.8, p_points=0.4)


# ----------------------------------------------------------------------------- model plumbing


def test_cmt_forward_shapes_loss_and_errors():
    torch.manual_seed(0)
    model = CMT(2, 8, 8, hidden=16, num_query=6, depth_num=4, pc_range=PC_RANGE, num_layers=2,
                num_heads=2, ffn=32, dropout=0.0)
    bev, img, l2i = torch.randn(2, 8, 4, 4), torch.randn(2, 1, 8, 8, 16), _lidar2img(batch=2)
    out = model(bev, img, l2i, IMG_HW)
    assert out["cls_logits"].shape == (2, 2, 6, 2) and out["boxes"].shape == (2, 2, 6, 8)
    targets = [{"boxes": torch.tensor([[5.0, 1.0, 0.5, 1.0, 2.0, 1.0, 0.0]]),
                "labels": torch.tensor([0])},
               {"boxes": torch.zeros(0, 7), "labels": torch.zeros(0, dtype=torch.long)}]
    loss = model.loss(out, targets)
    loss.backward()
    assert torch.isfinite(loss) and model.query_gen.anchors.weight.grad is not None
    assert model(bev, None)["boxes"].shape == (2, 2, 6, 8)                      # LiDAR only
    assert model(None, img, l2i, IMG_HW, zero_pe=True)["boxes"].shape == (2, 2, 6, 8)
    with pytest.raises(GraphError, match="lidar2img"):
        model(bev, img, None, IMG_HW)
    with pytest.raises(GraphError, match="bev"):
        model(torch.randn(2, 3, 4, 4), None)
    with pytest.raises(GraphError, match="labels"):
        model.loss(out, [{"boxes": targets[0]["boxes"], "labels": torch.tensor([5])}] * 2)
    with pytest.raises(GraphError, match="pc_range"):
        CameraRayPositionEncoding(8, 4, (0, 0, 0, -1, 1, 1))


def test_zero_pe_makes_queries_identical_up_to_anchor():
    torch.manual_seed(0)
    model = CMT(2, 8, 8, hidden=16, num_query=6, depth_num=4, pc_range=PC_RANGE, num_layers=1,
                num_heads=2, ffn=32, dropout=0.0)
    out = model(torch.randn(1, 8, 4, 4), torch.randn(1, 1, 8, 8, 16), _lidar2img(), IMG_HW,
                zero_pe=True)
    logits = out["cls_logits"][-1, 0]
    assert torch.allclose(logits, logits[:1].expand_as(logits), atol=1e-5)


def test_pillar_scatter_is_max_per_cell_and_drops_out_of_range():
    torch.manual_seed(0)
    enc = PillarEncoder(4, (2, 2), PC_RANGE)
    enc.conv = torch.nn.Identity()
    pts = torch.tensor([[1.0, -6.0, 0.0], [2.0, -5.0, 1.0], [12.0, 5.0, 0.0], [20.0, 0.0, 0.0]])
    grid = enc(pts, torch.zeros(4, dtype=torch.long), 1)
    lo, hi = torch.tensor(PC_RANGE[:3]), torch.tensor(PC_RANGE[3:])
    norm = (pts[:3] - lo) / (hi - lo)
    centre = torch.tensor([[0.25, 0.25], [0.25, 0.25], [0.75, 0.75]])
    feats = enc.point_mlp(torch.cat((norm, (norm[:, :2] - centre) * 2), 1))
    assert torch.allclose(grid[0, :, 0, 0], feats[:2].max(0).values)
    assert torch.allclose(grid[0, :, 1, 1], feats[2])
    assert grid[0, :, 0, 1].abs().sum() == 0 and grid[0, :, 1, 0].abs().sum() == 0


def test_scene_generator_is_seeded_and_consistent():
    a, b = make_scenes(3, 7), make_scenes(3, 7)
    for s, t in zip(a, b, strict=True):
        assert all(torch.equal(s[k], t[k]) for k in s)
    cfg = ToySceneConfig(camera_yaws=(-0.4, 0.4))
    scene = make_scenes(1, 3, cfg)[0]
    assert scene["images"].shape == (2, 3, *cfg.image_hw)
    assert 1 <= len(scene["labels"]) <= 3 and scene["boxes"].shape[1] == 7
    # Box centres project inside an image of some camera.
    hom = torch.cat((scene["boxes"][:, :3], torch.ones(len(scene["boxes"]), 1)), 1)
    cam = torch.einsum("vij,nj->vni", scene["lidar2img"], hom)
    u = cam[..., 0] / cam[..., 2]
    assert ((cam[..., 2] > 0) & (u >= 0) & (u < cfg.image_hw[1])).any(0).all()


def test_weak_camera_changes_only_the_images():
    clean = make_scenes(6, 11)
    weak_cfg = ToySceneConfig(**WEAK_CAMERA)
    weak = make_scenes(6, 11, weak_cfg)
    for s, t in zip(clean, weak, strict=True):
        for k in ("points", "boxes", "labels", "lidar2img"):       # geometry and LiDAR untouched
            assert torch.equal(s[k], t[k])
        assert t["images"].shape == s["images"].shape
    assert not all(torch.equal(s["images"], t["images"]) for s, t in zip(clean, weak, strict=True))
    again = make_scenes(6, 11, weak_cfg)                            # still seeded
    assert all(torch.equal(s["images"], t["images"]) for s, t in zip(weak, again, strict=True))


def test_camera_degradations_do_what_they_say():
    base = {"image_noise": 0.0}
    clean = make_scenes(4, 5, ToySceneConfig(**base))
    # object_contrast 0: boxes take the ground colour, so the lower half is one flat grey.
    flat = make_scenes(4, 5, ToySceneConfig(**base, object_contrast=0.0))
    for s in flat:
        assert torch.allclose(s["images"][0, :, 16:], torch.full_like(s["images"][0, :, 16:], 0.25))
    assert any(not torch.allclose(s["images"][0, :, 16:], torch.tensor(0.25)) for s in clean)
    # pixel_block 2: every 2x2 block is constant.
    blocky = make_scenes(4, 5, ToySceneConfig(**base, pixel_block=2, background_texture=0.1))
    for s in blocky:
        im = s["images"]
        assert torch.equal(im[..., 0::2, :], im[..., 1::2, :])
        assert torch.equal(im[..., 0::2], im[..., 1::2])
    # brightness: a per-scene gain, so the image is the clean one times a constant.
    bright = make_scenes(4, 5, ToySceneConfig(**base, brightness=(0.5, 1.5)))
    for s, t in zip(clean, bright, strict=True):
        ratio = t["images"][s["images"] > 0.1] / s["images"][s["images"] > 0.1]
        assert torch.allclose(ratio, ratio[0].expand_as(ratio), atol=1e-5)
    for bad in ({"image_noise": -1.0}, {"pixel_block": 0}, {"brightness": (0.0, 1.0)},
                {"occluders": -1}, {"texture_cell": 0}):
        with pytest.raises(GraphError):
            ToySceneConfig(**bad)


def test_denoising_queries_shapes_mask_and_loss():
    torch.manual_seed(0)
    model = CMT(2, 8, None, hidden=16, num_query=4, depth_num=4, pc_range=PC_RANGE, num_layers=2,
                num_heads=2, ffn=32, dropout=0.0, dn_groups=3)
    targets = [{"boxes": torch.tensor([[5.0, 1.0, 0.5, 1.0, 2.0, 1.0, 0.0],
                                       [9.0, -3.0, 0.75, 0.5, 0.5, 1.5, 0.0]]),
                "labels": torch.tensor([0, 1])},
               {"boxes": torch.zeros(0, 7), "labels": torch.zeros(0, dtype=torch.long)}]
    bev = torch.randn(2, 8, 4, 4)
    out = model(bev, None, targets=targets)
    assert out["cls_logits"].shape == (2, 2, 4, 2)                  # matching queries only
    assert out["dn"]["cls_logits"].shape == (2, 2, 6, 2)            # 3 groups x 2 slots
    assert out["dn"]["valid"].sum() == 6                            # sample 1 has no boxes
    mask = model._dn_queries(targets, 2)["mask"]
    assert mask[6:, :6].all() and not mask[6:, 6:].any()            # matching cannot see DN
    assert not mask[:2, :2].any() and mask[:2, 2:6].all()           # groups see only themselves
    model.loss(out, targets).backward()
    model.eval()
    assert "dn" not in model(bev, None, targets=targets)            # DN only in training


# ----------------------------------------------------------------------------- training (reduced)

# Calibrated once (see benchmarks/notes/vision_cmt.md), frozen with margin. This is NOT the issue's
# acceptance experiment (held-out AP needs ~2000 steps per model, minutes of CPU each, which does
# not fit the test budget; benchmarks/vision_cmt.py runs it). It only shows that the whole
# pipeline (pillars, CNN, encodings, DN, matching, losses) can fit a small fixed set of scenes.
FIT_SCENES, FIT_STEPS = 16, 150
FIT_MIN_MAP = 0.06   # calibration (seed 0, CPU): mAP 0.117 on the fitted scenes, chance 0.032


@pytest.mark.slow
def test_toy_cmt_fits_a_small_scene_set():
    torch.set_num_threads(1)
    cfg = ToySceneConfig()
    scenes = make_scenes(FIT_SCENES, 1, cfg)
    model = train_toy(scenes, seed=0, steps=FIT_STEPS, batch_size=16, lr=5e-3, cfg=cfg,
                      device="cpu")
    fit = evaluate_toy(model, scenes)
    chance = chance_ap(scenes, cfg, 2 * 20)
    print("fit", fit, "chance", chance)
    assert fit["map"] >= FIT_MIN_MAP and fit["map"] > 2 * chance["map"]


def test_train_toy_image_backbone_and_its_learning_rate():
    torch.set_num_threads(1)
    cfg = ToySceneConfig()
    scenes = make_scenes(4, 3, cfg)
    small = {"hidden": 8, "num_query": 4, "depth_num": 4, "num_layers": 1, "ffn": 8,
             "bev_hw": (4, 4), "dn_groups": 0}
    start = train_toy(scenes, seed=1, steps=1, batch_size=2, model_kw=small, cfg=cfg,
                      device="cpu").cnn.state_dict()
    # a loaded backbone at lr factor 0 stays exactly as loaded; the rest still trains
    model = train_toy(scenes, seed=0, steps=3, batch_size=2, model_kw=small, cfg=cfg,
                      device="cpu", image_backbone=start, image_lr_mult=0.0)
    for name, value in model.cnn.state_dict().items():
        assert torch.equal(value, start[name])
    fresh = train_toy(scenes, seed=0, steps=3, batch_size=2, model_kw=small, cfg=cfg,
                      device="cpu")
    assert not torch.equal(fresh.cnn.net[0].weight, start["net.0.weight"])
    with pytest.raises(GraphError, match="image_lr_mult"):
        train_toy(scenes, seed=0, steps=1, model_kw=small, cfg=cfg, image_lr_mult=2.0)


@pytest.mark.parametrize("standard", [False, True])
def test_toy_cmt_passes_the_frequency_schedule_to_the_bev_encoding(standard):
    model = ToyCMT(ToySceneConfig(), standard_freq=standard)
    bev_pe = model.cmt.bev_pe
    assert bev_pe.standard_freq is standard
    xy = torch.rand(5, 2)
    expected = bev_pe.mlp(pos2embed(xy, bev_pe.hidden, standard=standard, scale=bev_pe.scale))
    torch.testing.assert_close(bev_pe(xy), expected)
