"""CMT on toy LiDAR + camera scenes: train briefly with ModalMask, then test with and without LiDAR.

Run: ``python examples/vision_cmt.py [--steps 4000]`` (CPU, about 4 min; fewer steps learn little).
The acceptance numbers come from ``python -m benchmarks.vision_cmt --steps 4000``.
"""

from __future__ import annotations

import argparse

import torch

from graphkit.vision.cmt import ModalMask
from graphkit.vision.cmt_toy import ToySceneConfig, chance_ap, evaluate_toy, make_scenes, train_toy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(1)

    cfg = ToySceneConfig()                       # 1 camera, 1-3 boxes of 2 classes
    train = make_scenes(500, seed=1, cfg=cfg)
    test = make_scenes(100, seed=2, cfg=cfg)
    scene = train[0]
    print(f"a scene: {len(scene['points'])} points, images {tuple(scene['images'].shape)}, "
          f"boxes {scene['boxes'][:, :3].tolist()} (classes {scene['labels'].tolist()})")

    model = train_toy(train, seed=0, steps=args.steps, lr=2e-3, modal_mask=ModalMask(), cfg=cfg,
                      device=args.device, log_every=500)
    rows = {"both sensors": evaluate_toy(model, test),
            "LiDAR removed": evaluate_toy(model, test, drop="points"),
            "LiDAR removed, PEs zeroed": evaluate_toy(model, test, drop="points", zero_pe=True),
            "chance": chance_ap(test, cfg, 2 * model.cmt.query_gen.anchors.num_embeddings)}
    for name, ap in rows.items():
        print(f"{name:28s} " + "  ".join(f"{k} {v:.3f}" for k, v in ap.items()))


if __name__ == "__main__":
    main()
