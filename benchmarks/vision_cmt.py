"""CMT toy acceptance benchmark: ModalMask vs not, LiDAR removed at test time, encodings zeroed.

Usage: ``python -m benchmarks.vision_cmt [--quick] [--seeds 0 1 2] [--steps N] [--resume]
[--camera weak|clean] [--scene KEY=VALUE ...] [--model KEY=VALUE ...] [--train-scenes N]
[--calibration]``; ``--acceptance PROTOCOL``
judges the stored records of one protocol (of ``--seeds`` only, when given) against the frozen
criteria (:func:`acceptance`).

The default camera is ``weak`` (:data:`graphkit.vision.cmt_toy.WEAK_CAMERA`: noisy, textured,
low-contrast, occluded images, frozen from a calibration run on seed 100) so that, as on nuScenes,
LiDAR is the dominant sensor; ``--camera clean`` is the original clean-polygon camera.
``--calibration`` records to ``vision_cmt_calibration.jsonl`` instead (calibration seeds only,
never the reported seeds 0-2); ``--scene`` overrides single :class:`ToySceneConfig` fields (JSON
values) on top of the chosen camera.

Per seed, two :class:`graphkit.vision.cmt_toy.ToyCMT` models are trained on the same seeded
synthetic scenes (one with :class:`graphkit.vision.cmt.ModalMask`, one without) and evaluated on
held-out scenes with both sensors, with the points zeroed ("w/o LiDAR", as in the paper's
robustness test), with the images zeroed, and with every position encoding zeroed. Metric:
centre-distance AP at 0.5 / 1 / 2 m and their mean (``map``); ``chance`` is the AP of random
detections (same count per scene). Records go to ``benchmarks/results/vision_cmt.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import time
from pathlib import Path

import torch

from benchmarks.harness import (
    RESULTS,
    append_record,
    done_seeds,
    drop_records,
    make_record,
    read_records,
)
from graphkit.errors import GraphError
from graphkit.runtime import resolve_device
from graphkit.vision.cmt import ModalMask
from graphkit.vision.cmt_toy import (
    WEAK_CAMERA,
    ToyCMT,
    ToySceneConfig,
    chance_ap,
    evaluate_toy,
    make_scenes,
    train_toy,
)

OUT = RESULTS / "vision_cmt.jsonl"
CALIBRATION_OUT = RESULTS / "vision_cmt_calibration.jsonl"
DATASETS = {"clean": "toy-scenes, clean camera (1-3 boxes, 2 classes, 1 camera 32x64)",
            "weak": "toy-scenes, weak camera (1-3 boxes, 2 classes, 1 camera 32x64)"}
CAMERAS = {"clean": {}, "weak": WEAK_CAMERA}

# The configuration the numbers in docs/benchmarks.md come from (and the slow test's reduced one).
# Reported runs are evaluated on held-out scenes of seed 424242; calibration runs (--calibration)
# on seed 99991 (the clean-camera protocol's test seed), so no reported test scene was looked at
# while the weak-camera preset was chosen.
# Frozen 2026-12-07 from the declared candidate 9 (calibration seeds 100-102): 4000 steps, 4000
# training scenes, the image backbone at the released 0.01x rate, and the standard BEV sine
# frequencies (MODEL_KW). Earlier reported protocols: candidate 7, "full, 4000 steps, image lr
# x0.1" = `--train-scenes 500 --image-lr-mult 0.1 --model standard_freq=false`; "full, 2000
# steps" = the same with `--steps 2000 --image-lr-mult 1`.
FULL = {"train_scenes": 4000, "test_scenes": 200, "steps": 4000, "batch_size": 16, "lr": 2e-3,
        "test_seed": 424242, "image_lr_mult": 0.01}
QUICK = {"train_scenes": 300, "test_scenes": 100, "steps": 150, "batch_size": 16, "lr": 2e-3,
         "test_seed": 424242}
CALIBRATION_TEST_SEED = 99991
# pe_scale 16*pi (8x the official 2*pi), 1 m BEV cells (16x16; the clean-camera protocol used
# 2 m cells, with which the LiDAR branch barely learned) and 5 DN groups.
# What every protocol label before candidate 9 left unsaid; labels name departures from these.
ORIGINAL_MODEL_KW = {"hidden": 32, "num_query": 20, "depth_num": 16, "num_layers": 2,
                     "num_heads": 4, "ffn": 64, "bev_hw": (16, 16), "pe_scale": 16 * math.pi,
                     "dn_groups": 5}
ORIGINAL_TRAIN_SCENES = 500
MODEL_KW = {**ORIGINAL_MODEL_KW, "standard_freq": True}  # standard_freq frozen with candidate 9
# ToyCMT's arguments (what --model may set) and their defaults.
TOYCMT_ARGS = {k: p.default for k, p in inspect.signature(ToyCMT).parameters.items() if k != "cfg"}
# The frozen acceptance criteria (fixed with margin from the camera-B calibration on seed 100,
# LiDAR removed: plain 1.4x chance, ModalMask 2.6x; benchmarks/notes/vision_cmt.md). Ratios are
# mean mAP over seeds divided by mean chance mAP over the same seeds.
ABOVE_CHANCE = 2.0  # "above chance": at least 2x chance
COLLAPSE = 2.0  # "collapses" / "near chance": below 2x chance
# The two trained models, as their records name them.
MODALMASK, PLAIN = "CMT-toy + ModalMask", "CMT-toy, no ModalMask"
# Single-sensor trainings (a diagnostic, not part of the acceptance): the other sensor's input is
# zeroed in every training sample, as ModalMask's test mode does.
SINGLE = {"lidar-only": ("CMT-toy, LiDAR-only training", "images"),
          "camera-only": ("CMT-toy, camera-only training", "points")}
EVALS = {"both": {}, "lidar_removed": {"drop": "points"}, "images_removed": {"drop": "images"},
         "lidar_removed_pe_zeroed": {"drop": "points", "zero_pe": True}}


def run_seed(seed: int, modal_mask: bool | ModalMask, settings: dict, device: torch.device,
             cfg: ToySceneConfig | None = None,
             model_kw: dict | None = None) -> dict[str, dict[str, float]]:
    """Train one model and evaluate it under every condition of :data:`EVALS` (+ ``chance``).
    ``modal_mask``: ``True`` for the default :class:`ModalMask`, ``False`` for none, or a
    :class:`ModalMask` to train with (e.g. a test-mode one for a single-sensor training).
    ``model_kw``: the :class:`ToyCMT` shape (default :data:`MODEL_KW`)."""
    model_kw = model_kw or MODEL_KW
    if isinstance(modal_mask, bool):
        modal_mask = ModalMask() if modal_mask else None
    cfg = cfg or ToySceneConfig()
    train = make_scenes(settings["train_scenes"], 1000 + seed, cfg)
    test = make_scenes(settings["test_scenes"], settings.get("test_seed", 99991), cfg)
    backbone = None
    if settings.get("pretrain_image_steps"):
        # camera-only pretraining of the image backbone (points always dropped), own init seed
        camera_only = train_toy(train, seed=10_000 + seed, steps=settings["pretrain_image_steps"],
                                batch_size=settings["batch_size"], lr=settings["lr"],
                                modal_mask=ModalMask(mode="test", mask_modal="points"),
                                model_kw=model_kw, cfg=cfg, device=device)
        backbone = {k: v.detach().clone() for k, v in camera_only.cnn.state_dict().items()}
    model = train_toy(train, seed=seed, steps=settings["steps"],
                      batch_size=settings["batch_size"], lr=settings["lr"],
                      modal_mask=modal_mask, model_kw=model_kw,
                      cfg=cfg, device=device,
                      image_lr_mult=settings.get("image_lr_mult", 1.0), image_backbone=backbone)
    res = {name: evaluate_toy(model, test, **kw) for name, kw in EVALS.items()}
    res["chance"] = chance_ap(test, cfg, model_kw["num_query"] * cfg.num_classes, seed=seed)
    return res


def model_changes(model_kw: dict) -> list[str]:
    """``KEY=VALUE`` (JSON) for every :class:`ToyCMT` argument in ``model_kw`` that differs from
    the shape of the protocols before candidate 9 (:data:`ORIGINAL_MODEL_KW`, else the class
    default): the protocol label names them."""
    base = {**TOYCMT_ARGS, **ORIGINAL_MODEL_KW}
    return [f"{k}={json.dumps(v)}" for k, v in model_kw.items() if base.get(k) != v]


def parse_overrides(items: list[str], base: dict, fields: set[str], flag: str) -> dict:
    """``base`` updated with ``KEY=VALUE`` items (JSON values, lists become tuples)."""
    kw = dict(base)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise GraphError(f"{flag}: expected KEY=VALUE with KEY one of {sorted(fields)}, got "
                             f"{item!r}")
        val = json.loads(value)
        kw[key] = tuple(val) if isinstance(val, list) else val
    return kw


def scene_config(camera: str, overrides: list[str]) -> tuple[ToySceneConfig, dict]:
    """The scene config of camera preset ``camera`` with ``KEY=VALUE`` overrides (JSON values)."""
    kw = parse_overrides(overrides, CAMERAS[camera],
                         {f.name for f in dataclasses.fields(ToySceneConfig)}, "--scene")
    return ToySceneConfig(**kw), kw


def acceptance(records: list[dict]) -> dict[str, dict[str, float | bool]]:
    """Acceptance (2) and (3) of the CMT issue on the records of one protocol (both methods,
    the same seeds), with the frozen :data:`ABOVE_CHANCE` / :data:`COLLAPSE` criteria: (2) with
    ModalMask, both sensors and LiDAR removed are above chance; (3) without it, LiDAR removed
    collapses, and with every position encoding zeroed the camera-only mAP is near chance for
    both models. Each entry: ``ratio`` (mean mAP / mean chance) and ``passed``."""
    by_method: dict[str, list[dict]] = {}
    for rec in records:
        by_method.setdefault(rec["method"], []).append(rec["metrics"])
    missing = {MODALMASK, PLAIN} - set(by_method)
    if missing:
        raise GraphError(f"acceptance: no records for {sorted(missing)}")

    def ratio(method: str, cond: str) -> float:
        ms = by_method[method]
        return sum(m[f"{cond}_map"] for m in ms) / sum(m["chance_map"] for m in ms)

    checks = {"(2) ModalMask, both sensors": (MODALMASK, "both", True),
              "(2) ModalMask, LiDAR removed": (MODALMASK, "lidar_removed", True),
              "(3) no ModalMask, LiDAR removed": (PLAIN, "lidar_removed", False),
              "(3) ModalMask, LiDAR removed, PEs zeroed": (MODALMASK, "lidar_removed_pe_zeroed",
                                                           False),
              "(3) no ModalMask, LiDAR removed, PEs zeroed": (PLAIN, "lidar_removed_pe_zeroed",
                                                              False)}
    out: dict[str, dict[str, float | bool]] = {}
    for name, (method, cond, above) in checks.items():
        r = ratio(method, cond)
        out[name] = {"ratio": r, "passed": r >= ABOVE_CHANCE if above else r < COLLAPSE,
                     "seeds": len(by_method[method])}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, few steps")
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--only", choices=("modalmask", "plain", *SINGLE), default=None,
                        help="train only this model; lidar-only / camera-only are single-sensor "
                             "diagnostics (the other input zeroed in training), never the default")
    parser.add_argument("--camera", choices=tuple(CAMERAS), default="weak")
    parser.add_argument("--scene", nargs="*", default=[], metavar="KEY=VALUE",
                        help="ToySceneConfig overrides on top of --camera (JSON values)")
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                        help="ToyCMT argument overrides on top of MODEL_KW (JSON values)")
    parser.add_argument("--train-scenes", type=int, default=None, metavar="N",
                        help="number of training scenes (default: 4000; 300 with --quick)")
    parser.add_argument("--image-lr-mult", type=float, default=None,
                        help="learning-rate factor of the image backbone (released configs: 0.01)")
    parser.add_argument("--pretrain-image", type=int, default=None, metavar="STEPS",
                        help="pretrain the image backbone camera-only for STEPS steps first")
    parser.add_argument("--calibration", action="store_true",
                        help="calibration run: seed 100 by default, records to "
                             "vision_cmt_calibration.jsonl")
    parser.add_argument("--acceptance", metavar="PROTOCOL", default=None,
                        help="judge the stored records of PROTOCOL (e.g. 'full, 2000 steps')")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resume", action="store_true", help="skip seeds already recorded")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.acceptance:
        path = args.out or (CALIBRATION_OUT if args.calibration else OUT)
        recs = [r for r in read_records(path) if r["protocol"] == args.acceptance
                and r["dataset"] == DATASETS[args.camera]
                and (args.seeds is None or r["seed"] in args.seeds)]
        for name, res in acceptance(recs).items():
            print(f"{name}: {res['ratio']:.2f}x chance over {res['seeds']} seeds -> "
                  f"{'met' if res['passed'] else 'NOT met'}")
        return
    settings = dict(QUICK if args.quick else FULL)
    if args.steps:
        settings["steps"] = args.steps
    if args.image_lr_mult is not None:
        settings["image_lr_mult"] = args.image_lr_mult
    if args.train_scenes is not None:
        if args.train_scenes <= 0:
            raise GraphError(f"--train-scenes: expected a positive count, got {args.train_scenes}")
        settings["train_scenes"] = args.train_scenes
    if args.pretrain_image:
        settings["pretrain_image_steps"] = args.pretrain_image
    cfg, scene_kw = scene_config(args.camera, args.scene)
    model_kw = parse_overrides(args.model, MODEL_KW, set(TOYCMT_ARGS), "--model")
    if args.calibration:
        seeds = args.seeds if args.seeds is not None else [100]
        if set(seeds) & {0, 1, 2}:
            raise GraphError("--calibration: seeds 0-2 are the reported seeds; calibrate on others")
        out = args.out or CALIBRATION_OUT
        settings["test_seed"] = CALIBRATION_TEST_SEED
    else:
        seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
        out = args.out or OUT
    protocol = ("quick" if args.quick else "full") + f", {settings['steps']} steps"
    if args.calibration:
        protocol = "calibration, " + protocol
    if settings["train_scenes"] != (QUICK["train_scenes"] if args.quick else ORIGINAL_TRAIN_SCENES):
        protocol += f", {settings['train_scenes']} train scenes"
    if args.pretrain_image:
        protocol += f", image backbone pretrained camera-only {args.pretrain_image} steps"
    if settings.get("image_lr_mult", 1.0) != 1.0:
        protocol += f", image lr x{settings['image_lr_mult']:g}"
    if args.scene:
        protocol += ", " + " ".join(args.scene)
    changed = model_changes(model_kw)
    if changed:
        protocol += ", model " + " ".join(changed)
    dataset = DATASETS[args.camera]
    device = resolve_device(args.device)
    variants: list[tuple[str, bool | ModalMask]] = [(MODALMASK, True), (PLAIN, False)]
    if args.only in SINGLE:
        name, dropped = SINGLE[args.only]
        variants = [(name, ModalMask(mode="test", mask_modal=dropped))]
    elif args.only:
        variants = [v for v in variants if v[1] == (args.only == "modalmask")]
    for method, mm in variants:
        match = {"method": method, "dataset": dataset, "protocol": protocol}
        have = done_seeds(out, **match) if args.resume else set()
        for seed in seeds:
            if seed in have:
                continue
            if not args.resume:
                drop_records(out, seed=seed, **match)
            start = time.perf_counter()
            res = run_seed(seed, mm, settings, device, cfg, model_kw)
            seconds = time.perf_counter() - start
            metrics = {f"{cond}_{k}": v for cond, r in res.items() for k, v in r.items()}
            append_record(out, make_record(method, dataset, protocol, seed, metrics, seconds,
                                           device, settings=settings, model=model_kw,
                                           scene=scene_kw))
            print(f"[cmt] {method} seed {seed} ({seconds:.0f}s): " + ", ".join(
                f"{c} mAP {r['map']:.3f}" for c, r in res.items()), flush=True)


if __name__ == "__main__":
    main()
