"""Diagnostic, not a benchmark (prints only, no records): is the LiDAR branch of a plain
(no-ModalMask) CMT-toy model dead when it turns out camera-dominant?

Usage: ``python -m benchmarks.vision_cmt_diag SEED [STEPS]``. Retrains the calibration model
"no ModalMask, camera A, 4000 steps" of ``SEED`` exactly as ``benchmarks.vision_cmt --calibration``
does (same scenes, seeding and ``train_toy``; forward hooks only observe) and prints, every 250
steps, for the pillar BEV map, the CNN image features and their 1x1 projections in the CMT head:
(fraction of channels with a positive maximum in the batch, mean |activation|); then the
calibration-set mAP with both sensors / LiDAR removed / images removed (equal to the recorded
calibration values). See benchmarks/notes/vision_cmt.md.
"""

from __future__ import annotations

import sys

import torch

import graphkit.vision.cmt_toy as toy
from benchmarks.vision_cmt import CALIBRATION_TEST_SEED, EVALS, FULL, MODEL_KW

CAMERA_A = {"image_noise": 0.06, "background_texture": 0.08, "object_contrast": 0.5,
            "colour_jitter": 0.08, "brightness": (0.6, 1.4), "occluders": 1, "pixel_block": 2}


def main(argv: list[str]) -> None:
    seed = int(argv[0])
    steps = int(argv[1]) if len(argv) > 1 else 4000
    torch.set_num_threads(1)
    cfg = toy.ToySceneConfig(**CAMERA_A)
    stats: dict[str, tuple[float, float]] = {}

    def hook(name: str):
        def record(mod, inp, out) -> None:
            if mod.training:
                o = out.detach()
                stats[name] = ((o.amax(dim=(0, 2, 3)) > 0).float().mean().item(),
                               o.abs().mean().item())
        return record

    class Hooked(toy.ToyCMT):
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, **k)
            self.pillars.register_forward_hook(hook("bev"))
            self.cnn.register_forward_hook(hook("img"))
            self.cmt.bev_proj.register_forward_hook(hook("bev_proj"))
            self.cmt.img_proj.register_forward_hook(hook("img_proj"))

    def log(*a) -> None:
        print(*a, {k: tuple(round(x, 3) for x in v) for k, v in stats.items()}, flush=True)

    toy.ToyCMT, toy.print = Hooked, log   # train_toy builds ToyCMT and prints its log lines
    train = toy.make_scenes(FULL["train_scenes"], 1000 + seed, cfg)
    test = toy.make_scenes(FULL["test_scenes"], CALIBRATION_TEST_SEED, cfg)
    model = toy.train_toy(train, seed=seed, steps=steps, batch_size=FULL["batch_size"],
                          lr=FULL["lr"], model_kw=MODEL_KW, cfg=cfg, device="cpu", log_every=250)
    for name in ("both", "lidar_removed", "images_removed"):
        print(name, round(toy.evaluate_toy(model, test, **EVALS[name])["map"], 3), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
