"""GLANCE on the synthetic walker: pose pre-training, then health prediction from 100 clips.

Run: ``python examples/vision_glance.py`` (about a minute on a CPU).
"""

import torch

from graphkit.vision.gait_synth import make_walkers
from graphkit.vision.glance import GLANCE, gait_protocol

block = GLANCE(16, levels=3, fusion=("concat", "attention"), progression="dilation")
print("GLANCE keeps the shape:", tuple(block(torch.randn(2, 16, 20, 20)).shape))

clips = make_walkers(4, frames=6, size=24, seed=0)
print("clip tensor:", tuple(clips.video.shape), "targets (BMI, age, height, weight):")
print(clips.targets.round(decimals=1))

result = gait_protocol(seed=0, n_pretrain=100, n_test=100, frames=6, size=24, width=12,
                       pose_steps=250, pose_batch=32, epochs=10)
for key in ("pose_on", "pose_off", "pretrained_mae_height", "scratch_mae_height",
            "mean_mae_height", "pretrained_mae_bmi", "scratch_mae_bmi", "mean_mae_bmi"):
    print(f"{key:24s} {result[key]:.3f}")
