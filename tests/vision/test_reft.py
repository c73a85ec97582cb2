"""Tests for graphkit.vision.reft (RefT reconstruction) and graphkit.vision.shapes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from graphkit.errors import GraphError
from graphkit.vision import reft, shapes
from graphkit.vision.reft import RefT, RefTConfig, class_centres, mask_pool, variant_config

SMALL = {"hidden": 16, "heads": 2, "num_queries": 6, "channels": (8, 8, 16, 16)}


def _support(seed: int = 0, k: int = 2, classes=range(8), size: int = 32):
    rng = np.random.default_rng(seed)
    shots = [shapes.draw_shot(rng, c, size) for c in classes for _ in range(k)]
    return reft.stack_shots(shots, "cpu")


def _model(variant: str, seed: int = 0, **kw) -> RefT:
    torch.manual_seed(seed)
    return RefT(variant_config(variant, **{**SMALL, **kw})).eval()


# --------------------------------------------------------------------------- pooling
def test_mask_pool_equals_loop():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(5, 7, 6, 4, generator=g)
    masks = torch.rand(5, 6, 4, generator=g) * (torch.rand(5, 6, 4, generator=g) > 0.5)
    pooled, valid = mask_pool(feats, masks)
    for n in range(5):
        num = torch.zeros(7)
        den = 0.0
        for y in range(6):
            for x in range(4):
                num += feats[n, :, y, x] * masks[n, y, x]
                den += float(masks[n, y, x])
        torch.testing.assert_close(pooled[n], num / den)
    assert valid.all()


def test_zero_mask_contributes_nothing():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(4, 3, 5, 5, generator=g)
    masks = (torch.rand(4, 5, 5, generator=g) > 0.4).float()
    masks[1] = 0.0   # class 0 gets one empty shot next to a real one
    masks[3] = 0.0   # class 2's only shot is empty
    labels = torch.tensor([0, 0, 1, 2])
    pooled, valid = mask_pool(feats, masks)
    assert torch.isfinite(pooled).all() and not valid[1] and not valid[3]
    assert torch.equal(pooled[1], torch.zeros(3))
    centres, cvalid = class_centres(pooled, valid, labels, num_classes=4)
    torch.testing.assert_close(centres[0], pooled[0])       # the empty shot is not averaged in
    assert cvalid.tolist() == [True, True, False, False]
    assert torch.isfinite(centres).all()


def test_zero_mask_shot_leaves_model_outputs_unchanged():
    model = _model("ref12")
    imgs, masks, labels = _support(k=1, classes=[0, 1, 2])
    x = _support(seed=5, k=1, classes=[3])[0]
    ref = model(x, model.encode_support(imgs, masks, labels))
    extra_img = torch.rand(1, 3, 32, 32)
    out = model(x, model.encode_support(torch.cat([imgs, extra_img]),
                                        torch.cat([masks, torch.zeros(1, 32, 32)]),
                                        torch.cat([labels, torch.tensor([5])])))
    torch.testing.assert_close(out["pred_logits"], ref["pred_logits"])
    torch.testing.assert_close(out["pred_masks"], ref["pred_masks"])


def test_new_class_does_not_move_other_centres():
    g = torch.Generator().manual_seed(2)
    pooled, valid = torch.randn(6, 4, generator=g), torch.ones(6, dtype=torch.bool)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    a, _ = class_centres(pooled[:4], valid[:4], labels[:4], 3)
    b, _ = class_centres(pooled, valid, labels, 3)
    torch.testing.assert_close(a[:2], b[:2])


@pytest.mark.parametrize("variant", ["ref1", "ref12"])
@pytest.mark.parametrize(("rule", "classifier"),
                         [("mask", "linear"), ("score", "linear"), ("mask", "support")])
def test_shot_order_invariance(variant, rule, classifier):
    model = _model(variant, topk_rule=rule, classifier=classifier)
    imgs, masks, labels = _support(k=3, classes=[0, 2, 5])
    x = _support(seed=9, k=1, classes=[1, 4])[0]
    ref = model(x, model.encode_support(imgs, masks, labels))
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(3))
    out = model(x, model.encode_support(imgs[perm], masks[perm], labels[perm]))
    torch.testing.assert_close(out["pred_logits"], ref["pred_logits"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out["pred_masks"], ref["pred_masks"], atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------- support use
def test_swap_leaves_baseline_unchanged_and_changes_support_variants():
    imgs, masks, labels = _support(k=2)
    swapped = torch.where(labels == 2, 7, torch.where(labels == 7, 2, labels))
    x = _support(seed=4, k=1, classes=[2, 7])[0]
    for variant in ("baseline", "ref1", "ref12"):
        model = _model(variant)
        a = model(x, model.encode_support(imgs, masks, labels))["pred_logits"]
        b = model(x, model.encode_support(imgs, masks, swapped))["pred_logits"]
        if variant == "baseline":
            assert torch.equal(a, b)
        else:
            assert (a - b).abs().max() > 1e-4, variant


def test_gradient_reaches_support_branch():
    model = _model("ref12").train()
    imgs, masks, labels = _support(k=1, classes=[0, 1])
    imgs = imgs.clone().requires_grad_(True)
    x, targets = shapes.collate([shapes.draw_shot(np.random.default_rng(1), 0, 32)])
    loss, _ = model.loss(model(x, model.encode_support(imgs, masks, labels)), targets)
    loss.backward()
    assert imgs.grad is not None and imgs.grad.abs().sum() > 0
    assert model.ref1.class_embed.weight.grad.abs().sum() > 0
    assert model.ref2.class_embed.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- support classifier
def test_support_classifier_swapping_prototypes_swaps_logits_exactly():
    torch.manual_seed(0)
    head = reft.SupportClassifier(RefTConfig(classifier="support", **SMALL))
    q = torch.randn(2, 6, 16)
    proto, valid = torch.randn(8, 16), torch.ones(8, dtype=torch.bool)
    valid[5] = False
    perm = torch.arange(8)
    perm[2], perm[7] = 7, 2
    a, b = head(q, proto, valid), head(q, proto[perm], valid[perm])
    assert torch.equal(a[..., 2], b[..., 7]) and torch.equal(a[..., 7], b[..., 2])
    keep = [0, 1, 3, 4, 5, 6, 8]                                    # incl. "no object"
    assert torch.equal(a[..., keep], b[..., keep])
    assert (a.softmax(-1)[..., 5] == 0).all()                      # no support, no probability


@pytest.mark.parametrize("variant", ["ref1", "ref12"])
def test_support_classifier_model_swap_swaps_class_columns(variant):
    # without class tokens the query embedding depends only on the *set* of supports, so a swap
    # of two classes' supports must exchange exactly their two class-logit columns
    model = _model(variant, classifier="support", class_token=False)
    imgs, masks, labels = _support(k=2)
    swapped = torch.where(labels == 2, 7, torch.where(labels == 7, 2, labels))
    x = _support(seed=4, k=1, classes=[2, 7])[0]
    sa = model.encode_support(imgs, masks, labels)
    sb = model.encode_support(imgs, masks, swapped)
    assert torch.equal(sa.prototypes[2], sb.prototypes[7])
    a, b = model(x, sa)["pred_logits"], model(x, sb)["pred_logits"]
    tol = {"atol": 1e-5, "rtol": 1e-4}
    torch.testing.assert_close(a[..., 2], b[..., 7], **tol)
    torch.testing.assert_close(a[..., 7], b[..., 2], **tol)
    torch.testing.assert_close(a[..., [0, 1, 3, 4, 5, 6, 8]], b[..., [0, 1, 3, 4, 5, 6, 8]], **tol)
    assert (a[..., 2] - a[..., 7]).abs().max() > 1e-3                # the swap is visible


def test_baseline_output_does_not_depend_on_supports():
    model = _model("baseline", classifier="support")                  # ignored for the baseline
    assert model.cfg.classifier == "linear" and model.support_head is None
    x = _support(seed=4, k=1, classes=[2, 7])[0]
    ref = model(x)["pred_logits"]
    for seed in (0, 1):
        imgs, masks, labels = _support(seed=seed, k=2)
        assert torch.equal(model(x, model.encode_support(imgs, masks, labels))["pred_logits"], ref)


def test_support_classifier_trains_through_prototypes():
    model = _model("ref12", classifier="support").train()
    assert model.class_head is None
    imgs, masks, labels = _support(k=1, classes=[0, 1])
    x, targets = shapes.collate([shapes.draw_shot(np.random.default_rng(1), 0, 32)])
    out = model(x, model.encode_support(imgs, masks, labels))
    assert (out["pred_logits"].softmax(-1)[..., 2:8] < 1e-6).all()   # classes without supports
    loss, _ = model.loss(out, targets)
    loss.backward()
    head = model.support_head
    for p in (head.centre_proj.weight, head.query_proj.weight, head.embed.weight, head.log_scale):
        assert p.grad is not None and p.grad.abs().sum() > 0
    with pytest.raises(GraphError, match="classifier"):
        RefTConfig(classifier="cosine")
    with pytest.raises(GraphError, match="needs supports"):
        RefTConfig(ref1=False, ref2=False, classifier="support")
    with pytest.raises(GraphError, match="topk_rule"):
        RefTConfig(classifier="support", topk_rule="score")


def test_cosine_weighting_rows_sum_to_one_over_valid_classes():
    cfg = RefTConfig(weighting="cosine", **SMALL)
    ref1 = reft.FeatureReference(cfg)
    feats = torch.randn(2, 16, 3, 3)
    valid = torch.tensor([True, False, True] + [False] * 5)
    w = ref1.weights(feats, torch.randn(8, 16), valid)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 9))
    assert (w[..., ~valid] == 0).all()


# --------------------------------------------------------------------------- matching / metric
def test_hungarian_matches_brute_force():
    model = _model("baseline")
    g = torch.Generator().manual_seed(6)
    logits, masks = torch.randn(4, 9, generator=g), torch.randn(4, 5, 5, generator=g)
    target = {"labels": torch.tensor([1, 3, 3]),
              "masks": (torch.rand(3, 5, 5, generator=g) > 0.5).float()}
    qi, ti = model.match(logits, masks, target)
    cfg = model.cfg
    p, t = masks.flatten(1), target["masks"].flatten(1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        p[:, None].expand(-1, 3, -1), t[None].expand(4, -1, -1), reduction="none").mean(-1)
    s = p.sigmoid()
    dice = 1 - (2 * s @ t.T + 1) / (s.sum(-1)[:, None] + t.sum(-1)[None] + 1)
    cost = (-cfg.w_class * logits.softmax(-1)[:, target["labels"]] + cfg.w_bce * bce
            + cfg.w_dice * dice)
    best = min(sum(float(cost[q, j]) for j, q in enumerate(perm))
               for perm in itertools.permutations(range(4), 3))
    assert float(cost[qi, ti].sum()) == pytest.approx(best, abs=1e-5)


def test_ap50_perfect_and_empty():
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[0, :4, :4] = True
    gt[1, 4:, 4:] = True
    labels = torch.tensor([0, 1])
    pred = {"scores": torch.tensor([0.9, 0.8, 0.1]), "labels": torch.tensor([0, 1, 1]),
            "masks": torch.stack([gt[0], gt[1], gt[0]])}
    m = reft.match_image(pred, labels, gt)
    assert m[2].tolist() == [True, True, False]
    assert reft.mask_ap50([m], [labels.numpy()], [0, 1]) == pytest.approx(1.0)
    assert np.isnan(reft.mask_ap50([m], [labels.numpy()], [5]))


def test_loss_decreases_and_bad_input():
    model = _model("ref1").train()
    imgs, masks, labels = _support(k=1, classes=[0, 1])
    x, targets = shapes.collate([shapes.draw_shot(np.random.default_rng(2), 1, 32)])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss, _ = model.loss(model(x, model.encode_support(imgs, masks, labels)), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    with pytest.raises(GraphError, match="support"):
        model(x)
    with pytest.raises(GraphError, match="multiples of 16"):
        model(torch.rand(1, 3, 30, 30), None)
    with pytest.raises(GraphError, match="support labels"):
        model.encode_support(imgs, masks, torch.tensor([0, 9]))
    with pytest.raises(GraphError, match="support masks"):
        model.encode_support(imgs, masks[:, :16], labels)
    with pytest.raises(GraphError, match="weighting"):
        RefTConfig(weighting="sigmoid")
    with pytest.raises(GraphError, match="variant"):
        variant_config("ref2")


def test_shapes_dataset_is_seeded_and_masks_are_disjoint():
    a = shapes.fsis_splits(3, k=2, num_test=10, size=32)
    b = shapes.fsis_splits(3, k=2, num_test=10, size=32)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a.test, b.test, strict=True))
    assert len(a.shots) == 16 and all(len(s.labels) == 1 for s in a.shots)
    assert sorted(a.novel) == sorted(shapes.NOVEL) and len(a.base) == 6
    for s in a.test:
        assert 1 <= len(s.labels) <= 4 or len(s.labels) == 0
        assert (s.masks.sum(0) <= 1).all()
    with pytest.raises(GraphError, match="novel"):
        shapes.fsis_splits(0, novel=(9,))


@pytest.mark.slow
def test_reduced_few_shot_run_end_to_end():
    """Tiny version of the benchmark (32×32, 150 base steps): training reduces the loss and the
    evaluation (normal and swapped supports) runs end to end. Numbers: benchmarks/vision_reft.py."""
    torch.set_num_threads(1)
    splits = shapes.fsis_splits(0, k=2, num_test=30, size=32)
    torch.manual_seed(0)
    model = RefT(variant_config("ref1", **SMALL))
    log: list = []
    reft.train_fsis(model, splits, 0, reft.Schedule(base_steps=150, ft_steps=10, batch=4, bank=4,
                                                    lr=3e-3), log=log)
    end = next(r for r in log if r["step"] == 149)            # last base-training step
    assert end["loss"] < 0.7 * log[0]["loss"]                  # observed 12.1 vs 25.6
    matches, gts = reft.evaluate_fsis(model, splits)
    swapped, _ = reft.evaluate_fsis(model, splits, swap=tuple(splits.novel))
    for m in (matches, swapped):
        ap = reft.mask_ap50(m, gts, splits.base)
        assert 0.0 <= ap <= 1.0
