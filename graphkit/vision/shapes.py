"""Seeded synthetic shapes for few-shot instance segmentation (the RefT toy, :mod:`reft`).

Images are ``size × size`` RGB with 1–4 instances drawn from 8 shape classes (disk, square,
triangle, ring, cross, ellipse, L-shape, star). Every instance gets a random colour, so colour
carries no class information and a model must read the shape. Instances overlap with z-order;
masks are the *visible* pixels. Everything is numpy on the CPU and reproducible from one seed.

The few-shot protocol (:func:`fsis_splits`): base training images contain base classes only,
K-shot fine-tuning images each hold one annotated instance of their class (these double as the
support set), and test images mix all classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from graphkit.errors import GraphError

SHAPES = ("disk", "square", "triangle", "ring", "cross", "ellipse", "lshape", "star")
NUM_CLASSES = len(SHAPES)
#: Default novel classes (indices into :data:`SHAPES`): triangle and star.
NOVEL = (2, 7)


def _convex(u: np.ndarray, v: np.ndarray, r: float, n: int) -> np.ndarray:
    """Inside a regular ``n``-gon of circumradius ``r`` (one vertex pointing up)."""
    inside = np.ones_like(u, dtype=bool)
    apothem = r * np.cos(np.pi / n)
    for k in range(n):
        ang = np.pi / 2 + (2 * k + 1) * np.pi / n  # edge normal between vertices k and k+1
        inside &= u * np.cos(ang) + v * np.sin(ang) <= apothem
    return inside


def shape_mask(cls: int, size: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Boolean ``(size, size)`` mask of shape ``cls`` centred at (cx, cy), radius ``r``, rotated."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xs - cx, ys - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    d2 = u * u + v * v
    name = SHAPES[cls]
    if name == "disk":
        return d2 <= r * r
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8 * r
    if name == "triangle":
        return _convex(u, v, 1.15 * r, 3)
    if name == "ring":
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if name == "cross":
        a, b = np.abs(u), np.abs(v)
        return ((a <= 0.32 * r) & (b <= r)) | ((b <= 0.32 * r) & (a <= r))
    if name == "ellipse":
        return (u / r) ** 2 + (v / (0.5 * r)) ** 2 <= 1.0
    if name == "lshape":
        box = np.maximum(np.abs(u), np.abs(v)) <= 0.85 * r
        return box & ~((u > -0.1 * r) & (v < 0.1 * r))
    if name == "star":
        phi = np.arctan2(v, u)
        return np.sqrt(d2) <= r * (0.62 + 0.38 * np.cos(5 * phi))
    raise GraphError(f"cls: unknown shape class {cls}")


@dataclass
class Sample:
    """One image: ``image`` (3, H, W) float32 in [0, 1], visible ``masks`` (n, H, W) bool,
    ``labels`` (n,) int64."""

    image: np.ndarray
    masks: np.ndarray
    labels: np.ndarray


def draw(rng: np.random.Generator, classes: list[int] | np.ndarray, size: int = 64,
         min_area: int = 20) -> Sample:
    """Draw one image holding one instance of each entry of ``classes`` (in z-order).

    Instances whose visible area falls under ``min_area`` pixels after occlusion are dropped.
    """
    if size < 16:
        raise GraphError(f"size: must be >= 16, got {size}")
    bg = rng.uniform(0.0, 1.0, 3).astype(np.float32)
    image = np.broadcast_to(bg[:, None, None], (3, size, size)).copy()
    image += rng.normal(0.0, 0.03, image.shape).astype(np.float32)
    full, labels = [], []
    for cls in classes:
        r = rng.uniform(0.11, 0.2) * size
        cx, cy = rng.uniform(r, size - r, 2)
        m = shape_mask(int(cls), size, cx, cy, r, rng.uniform(0, 2 * np.pi))
        while True:  # a colour far from the background, otherwise random
            col = rng.uniform(0.0, 1.0, 3).astype(np.float32)
            if np.abs(col - bg).sum() > 0.45:
                break
        image[:, m] = col[:, None]
        full.append(m)
        labels.append(int(cls))
    visible, keep = [], []
    cover = np.zeros((size, size), dtype=bool)
    for i in range(len(full) - 1, -1, -1):  # later instances occlude earlier ones
        vis = full[i] & ~cover
        cover |= full[i]
        if vis.sum() >= min_area:
            visible.append(vis)
            keep.append(labels[i])
    visible, keep = visible[::-1], keep[::-1]
    masks = np.stack(visible) if visible else np.zeros((0, size, size), dtype=bool)
    return Sample(np.clip(image, 0.0, 1.0), masks, np.asarray(keep, dtype=np.int64))


def draw_scene(rng: np.random.Generator, pool: list[int] | np.ndarray, size: int = 64,
               max_instances: int = 4) -> Sample:
    """1..``max_instances`` instances with classes drawn uniformly from ``pool``."""
    n = int(rng.integers(1, max_instances + 1))
    return draw(rng, rng.choice(np.asarray(pool), n), size)


def draw_shot(rng: np.random.Generator, cls: int, size: int = 64) -> Sample:
    """A K-shot image: exactly one annotated instance of ``cls`` (retried if it was too small)."""
    for _ in range(100):
        s = draw(rng, [cls], size)
        if len(s.labels) == 1:
            return s
    raise GraphError(f"cls: could not draw a visible instance of class {cls}")


def collate(samples: list[Sample], device: torch.device | str = "cpu"
            ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Stack images to (B, 3, H, W); targets as a list of ``{"labels", "masks"}`` dicts."""
    images = torch.from_numpy(np.stack([s.image for s in samples])).to(device)
    targets = [{"labels": torch.from_numpy(s.labels).to(device),
                "masks": torch.from_numpy(s.masks).float().to(device)} for s in samples]
    return images, targets


@dataclass
class FSISSplits:
    """Class split plus the fixed K-shot set and test set of one seed."""

    base: list[int]
    novel: list[int]
    shots: list[Sample]        # K per class (base and novel), one annotated instance each
    test: list[Sample]


def fsis_splits(seed: int, k: int = 5, num_test: int = 200, size: int = 64,
                novel: tuple[int, ...] = NOVEL) -> FSISSplits:
    """The fixed parts of one few-shot run: K shots per class (all 8) and the test images."""
    if k < 1:
        raise GraphError(f"k: must be >= 1, got {k}")
    bad = [c for c in novel if not 0 <= c < NUM_CLASSES]
    if bad:
        raise GraphError(f"novel: class {bad[0]} outside [0, {NUM_CLASSES})")
    base = [c for c in range(NUM_CLASSES) if c not in novel]
    rng = np.random.default_rng([seed, 1])
    shots = [draw_shot(rng, c, size) for c in range(NUM_CLASSES) for _ in range(k)]
    rng = np.random.default_rng([seed, 2])
    test = [draw_scene(rng, list(range(NUM_CLASSES)), size) for _ in range(num_test)]
    return FSISSplits(base, list(novel), shots, test)
