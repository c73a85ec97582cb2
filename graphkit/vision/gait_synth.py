"""A synthetic walker: stick-figure gait clips with known joints and health indicators.

Our construction for testing :mod:`graphkit.vision.glance` offline (the paper's MoVi / 3DPW data are
not available). Each clip shows a side-view walker whose pixel height follows the person's height,
whose limb thickness follows the weight, and whose cadence (gait cycles per frame) falls with age;
BMI is weight / height². The far-side (left) limbs are drawn dimmer, as a shaded far side would be,
so left and right joints are distinguishable in one grey channel. Nuisances: gait phase, position,
arm-swing amplitude, small proportion jitter and pixel noise.

Joints (in this order): head, neck, pelvis, left knee, left foot, right knee, right foot, left
hand, right hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from graphkit.errors import GraphError

JOINTS = ("head", "neck", "pelvis", "l_knee", "l_foot", "r_knee", "r_foot", "l_hand", "r_hand")
TARGETS = ("bmi", "age", "height", "weight")
# (joint a, joint b, brightness): limbs as segments; far-side (left) limbs dimmer
_SEGMENTS = ((1, 2, 1.0), (2, 3, 0.55), (3, 4, 0.55), (2, 5, 1.0), (5, 6, 1.0), (1, 7, 0.55),
             (1, 8, 1.0))


@dataclass
class GaitClips:
    """A batch of synthetic gait clips.

    Attributes:
        video: (N, T, 1, S, S) float frames in [0, 1].
        joints: (N, T, J, 2) joint ``(x, y)`` pixel coordinates.
        targets: (N, 4) health indicators in :data:`TARGETS` order (BMI, age, height cm,
            weight kg).
    """

    video: torch.Tensor
    joints: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return self.video.shape[0]

    def heatmaps(self, size: int, sigma: float = 0.8) -> torch.Tensor:
        """(N, T, J, size, size) Gaussian joint heatmaps at resolution ``size``."""
        scale = size / self.video.shape[-1]
        grid = (torch.arange(size, dtype=torch.float32) + 0.5)
        xy = self.joints * scale
        dx = grid.view(1, 1, 1, 1, size) - xy[..., 0, None, None]
        dy = grid.view(1, 1, 1, size, 1) - xy[..., 1, None, None]
        return torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))


def make_walkers(n: int, frames: int = 8, size: int = 32, noise: float = 0.05,
                 seed: int = 0) -> GaitClips:
    """Render ``n`` random walkers.

    Args:
        n: number of clips.
        frames: frames per clip.
        size: frame side in pixels.
        noise: std of additive pixel noise.
        seed: generator seed.
    """
    if n < 1 or frames < 1 or size < 16:
        raise GraphError(f"make_walkers: need n >= 1, frames >= 1, size >= 16; got {n}, "
                         f"{frames}, {size}")
    g = torch.Generator().manual_seed(seed)

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*(shape or (n,)), generator=g)

    height, weight, age = u(150.0, 195.0), u(45.0, 110.0), u(20.0, 80.0)
    bmi = weight / (height / 100) ** 2
    px = size * (0.82 * height / 195.0) * u(0.97, 1.03)  # figure height in pixels
    thick = size / 32 * (0.45 + 1.1 * (weight - 45.0) / 65.0)  # half-width of limbs
    cadence = 0.125 - 0.065 * (age - 20.0) / 60.0  # gait cycles per frame
    phase, swing = u(0.0, 2 * math.pi), u(0.35, 0.55)
    foot_y = size * 0.92 + u(-1.0, 1.0)
    x0 = size / 2 + u(-3.0, 3.0)

    t = torch.arange(frames, dtype=torch.float32)
    ang = 2 * math.pi * cadence[:, None] * t + phase[:, None]  # (n, T)
    hip_l, hip_r = swing[:, None] * torch.sin(ang), -swing[:, None] * torch.sin(ang)
    bend_l = 0.6 * torch.relu(torch.sin(ang + math.pi / 2))
    bend_r = 0.6 * torch.relu(torch.sin(ang - math.pi / 2))
    h = px[:, None].expand(n, frames)
    fy = foot_y[:, None].expand(n, frames)
    x = x0[:, None] + 0.5 * torch.sin(2 * ang)  # slight bob of the body
    pelvis = torch.stack([x, fy - 0.5 * h], -1)
    neck = torch.stack([x + 0.03 * h, fy - 0.82 * h], -1)
    head = torch.stack([x + 0.04 * h, fy - 0.93 * h], -1)

    def limb(base: torch.Tensor, a: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return base + length[..., None] * torch.stack([torch.sin(a), torch.cos(a)], -1)

    knee_l, knee_r = limb(pelvis, hip_l, 0.25 * h), limb(pelvis, hip_r, 0.25 * h)
    foot_l, foot_r = limb(knee_l, hip_l - bend_l, 0.24 * h), limb(knee_r, hip_r - bend_r, 0.24 * h)
    hand_l, hand_r = limb(neck, -0.8 * hip_l, 0.36 * h), limb(neck, -0.8 * hip_r, 0.36 * h)
    joints = torch.stack([head, neck, pelvis, knee_l, foot_l, knee_r, foot_r, hand_l, hand_r], 2)

    grid = torch.arange(size, dtype=torch.float32) + 0.5
    pix = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1).view(1, 1, size * size, 2)
    video = torch.zeros(n, frames, size * size)
    width = thick[:, None, None]
    for a, b, level in _SEGMENTS:
        pa, pb = joints[:, :, a, None], joints[:, :, b, None]
        ab = pb - pa
        s = ((pix - pa) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)
        dist = (pix - (pa + s.clamp(0, 1)[..., None] * ab)).norm(dim=-1)
        video = torch.maximum(video, level * ((width - dist) / 0.7 + 0.5).clamp(0, 1))
    head_r = (0.065 * h + 0.5 * thick[:, None])[..., None]
    dist = (pix - head[:, :, None]).norm(dim=-1)
    video = torch.maximum(video, ((head_r - dist) / 0.7 + 0.5).clamp(0, 1))
    video = (video + noise * torch.randn(video.shape, generator=g)).clamp(0, 1)
    return GaitClips(video=video.view(n, frames, 1, size, size), joints=joints,
                     targets=torch.stack([bmi, age, height, weight], 1))
