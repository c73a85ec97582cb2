"""Toy world for :mod:`graphkit.vision.cmt`: a seeded synthetic LiDAR + camera scene generator, a
tiny pillar encoder and a tiny CNN, and train / evaluate helpers.

Scenes: 1-3 upright boxes of two classes with distinct sizes (a "car" 2 x 1 x 1 m and a "post"
0.5 x 0.5 x 1.5 m) standing on a ground plane; LiDAR points on the faces that face the sensor,
plus ground points and uniform noise; 1-2 pinhole cameras rendering the boxes as filled polygons
(convex hull of the projected corners, far to near, one colour per class) over a grey ground, with
a known ``lidar2img = K [R | t]``. The camera is clean by default; the degradation options of
:class:`ToySceneConfig` (noise, texture, low contrast, colour jitter, brightness, occluders, lower
effective resolution; preset :data:`WEAK_CAMERA`) make LiDAR the dominant sensor, as on nuScenes.
This is not the paper's setting (nuScenes); numbers measured here are toy numbers only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from graphkit.errors import GraphError
from graphkit.runtime import resolve_device
from graphkit.vision.cmt import CMT, ModalMask, centre_distance_ap

__all__ = [
    "PillarEncoder",
    "TinyCNN",
    "WEAK_CAMERA",
    "ToyCMT",
    "ToySceneConfig",
    "chance_ap",
    "collate",
    "evaluate_toy",
    "generate_scene",
    "make_scenes",
    "train_toy",
]

CLASS_COLOURS = ((1.0, 0.25, 0.2), (0.2, 0.45, 1.0))

# The weak-camera preset (ToySceneConfig overrides) that makes LiDAR the dominant sensor, as on
# nuScenes; calibrated on seed 100 (benchmarks/notes/vision_cmt.md) and frozen.
WEAK_CAMERA: dict = {"image_noise": 0.05, "background_texture": 0.05, "object_contrast": 0.7,
                     "colour_jitter": 0.05, "brightness": (0.7, 1.3), "occluders": 1,
                     "pixel_block": 2}


@dataclass
class ToySceneConfig:
    """Synthetic scene parameters (lengths in metres, angles in radians).

    ``sizes`` are per class ``(w, l, h)``; boxes stand on ``z = 0``. ``camera_yaws`` sets the number
    of cameras (all at ``(0, 0, camera_height)``, level); ``image_hw`` is ``(H, W)`` in pixels.

    The defaults give a clean camera (flat class colours over a plain ground), which makes the
    camera the easier sensor. The camera-degradation knobs make it weaker, as real cameras are
    relative to LiDAR for 3D localisation:

    * ``image_noise``: std of per-pixel Gaussian noise;
    * ``background_texture``: amplitude of a random piecewise-constant colour texture (cells of
      ``texture_cell`` pixels) added to ground and sky, so a box is not the only structure;
    * ``object_contrast``: box colour = ground + contrast * (class colour - ground), so 0 makes
      boxes ground-coloured; ``colour_jitter``: std of a random per-box colour offset (makes the
      class colour unreliable);
    * ``brightness``: per-scene gain drawn uniformly from this range (the whole image);
    * ``occluders``: up to this many random rectangles (side up to ``occluder_size`` of the image)
      painted with random colours in front of everything;
    * ``pixel_block``: render, then average over ``pixel_block`` x ``pixel_block`` blocks (a lower
      effective resolution with the same image size and ``lidar2img``).

    LiDAR is never affected by them.
    """

    pc_range: tuple[float, ...] = (0.0, -8.0, -1.0, 16.0, 8.0, 3.0)
    sizes: tuple[tuple[float, float, float], ...] = ((1.0, 2.0, 1.0), (0.5, 0.5, 1.5))
    num_boxes: tuple[int, int] = (1, 3)
    x_range: tuple[float, float] = (3.0, 13.0)
    min_separation: float = 2.5
    random_yaw: bool = False
    camera_yaws: tuple[float, ...] = (0.0,)
    camera_height: float = 1.2
    focal: float = 32.0
    image_hw: tuple[int, int] = (32, 64)
    lidar_height: float = 1.8
    points_per_box: int = 64
    ground_points: int = 150
    noise_points: int = 20
    point_noise: float = 0.02
    image_noise: float = 0.02
    ground_grey: float = 0.25
    # Camera degradations (all off by default; see ``WEAK_CAMERA`` for the calibrated preset).
    background_texture: float = 0.0
    texture_cell: int = 4
    object_contrast: float = 1.0
    colour_jitter: float = 0.0
    brightness: tuple[float, float] = (1.0, 1.0)
    occluders: int = 0
    occluder_size: float = 0.3
    pixel_block: int = 1
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("image_noise", "background_texture", "colour_jitter", "occluder_size"):
            if not getattr(self, name) >= 0:
                raise GraphError(f"{name}: expected a non-negative number, got "
                                 f"{getattr(self, name)!r}")
        for name in ("texture_cell", "pixel_block"):
            if int(getattr(self, name)) < 1:
                raise GraphError(f"{name}: expected a positive integer, got "
                                 f"{getattr(self, name)!r}")
        if int(self.occluders) < 0:
            raise GraphError(f"occluders: expected a non-negative integer, got {self.occluders!r}")
        lo, hi = self.brightness
        if not 0 < lo <= hi:
            raise GraphError(f"brightness: expected a range 0 < lo <= hi, got {self.brightness!r}")

    @property
    def num_classes(self) -> int:
        return len(self.sizes)


def _camera(cfg: ToySceneConfig, yaw: float) -> np.ndarray:
    """``lidar2img`` (4 x 4) of a level camera at ``(0, 0, h)`` looking along ``yaw``."""
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    rot = np.stack((right, down, fwd))
    t = -rot @ np.array([0.0, 0.0, cfg.camera_height])
    h, w = cfg.image_hw
    k = np.array([[cfg.focal, 0, w / 2], [0, cfg.focal, h / 2], [0, 0, 1.0]])
    out = np.eye(4)
    out[:3, :3] = k @ rot
    out[:3, 3] = k @ t
    return out


def _corners(box: np.ndarray) -> np.ndarray:
    cx, cy, cz, w, l, h, yaw = box
    sx, sy, sz = np.meshgrid([-0.5, 0.5], [-0.5, 0.5], [-0.5, 0.5], indexing="ij")
    local = np.stack((sx.ravel() * l, sy.ravel() * w, sz.ravel() * h), axis=1)
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return local @ rot.T + np.array([cx, cy, cz])


def _project(l2i: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam = np.c_[pts, np.ones(len(pts))] @ l2i.T
    return cam[:, :2] / np.maximum(cam[:, 2:3], 1e-6), cam[:, 2]


def _hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (Andrew's monotone chain) of 2D points."""
    pts = sorted(map(tuple, points))

    def half(seq: list) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _fill(hull: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    h, w = hw
    vv, uu = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    inside = np.ones((h, w), dtype=bool)
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        inside &= (b[0] - a[0]) * (vv - a[1]) - (b[1] - a[1]) * (uu - a[0]) >= 0
    return inside


def _visible_in_some_camera(cfg: ToySceneConfig, l2is: Sequence[np.ndarray],
                            centre: np.ndarray) -> bool:
    h, w = cfg.image_hw
    for l2i in l2is:
        (uv,), (z,) = _project(l2i, centre[None])
        if z > 1.0 and 2 <= uv[0] < w - 2 and 0 <= uv[1] < h:
            return True
    return False


def generate_scene(rng: np.random.Generator, cfg: ToySceneConfig,
                   camera_rng: np.random.Generator | None = None) -> dict[str, Tensor]:
    """One scene: ``points (N, 3)``, ``images (V, 3, H, W)``, ``lidar2img (V, 4, 4)``,
    ``boxes (n, 7)`` (cx, cy, cz, w, l, h, yaw) and ``labels (n,)``.

    ``camera_rng`` draws the camera degradations (default ``rng``); :func:`make_scenes` gives it
    its own stream so the boxes and points of a seed do not depend on the camera settings."""
    l2is = [_camera(cfg, yaw) for yaw in cfg.camera_yaws]
    n = int(rng.integers(cfg.num_boxes[0], cfg.num_boxes[1] + 1))
    rng_lo, rng_hi = np.array(cfg.pc_range[:3]), np.array(cfg.pc_range[3:])
    boxes, labels = [], []
    for _ in range(200 * n):
        if len(boxes) == n:
            break
        cls = int(rng.integers(cfg.num_classes))
        w, l, h = cfg.sizes[cls]
        centre = np.array([rng.uniform(*cfg.x_range), rng.uniform(rng_lo[1] + 1, rng_hi[1] - 1),
                           h / 2])
        if any(np.linalg.norm(centre[:2] - b[:2]) < cfg.min_separation for b in boxes):
            continue
        if not _visible_in_some_camera(cfg, l2is, centre):
            continue
        yaw = float(rng.uniform(-math.pi, math.pi)) if cfg.random_yaw else 0.0
        boxes.append(np.array([*centre, w, l, h, yaw]))
        labels.append(cls)
    boxes_arr = np.array(boxes).reshape(-1, 7)

    sensor = np.array([0.0, 0.0, cfg.lidar_height])
    pts = [np.c_[rng.uniform(rng_lo[0], rng_hi[0], cfg.ground_points),
                 rng.uniform(rng_lo[1], rng_hi[1], cfg.ground_points),
                 np.zeros(cfg.ground_points)],
           rng.uniform(rng_lo, rng_hi, size=(cfg.noise_points, 3))]
    for box in boxes_arr:
        c, s = math.cos(box[6]), math.sin(box[6])
        axes = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])   # local x, y, z in world
        half = box[[4, 3, 5]] / 2
        faces = []
        for ax in range(3):
            for sign in (-1.0, 1.0):
                if ax == 2 and sign < 0:
                    continue
                normal = sign * axes[ax]
                face_c = box[:3] + normal * half[ax]
                if normal @ (sensor - face_c) > 0:
                    others = [o for o in range(3) if o != ax]
                    faces.append((face_c, others, 4 * half[others[0]] * half[others[1]]))
        area = np.array([f[2] for f in faces])
        counts = rng.multinomial(cfg.points_per_box, area / area.sum())
        for (face_c, others, _), k in zip(faces, counts, strict=True):
            uv = rng.uniform(-1, 1, size=(k, 2)) * half[others]
            pts.append(face_c + uv[:, :1] * axes[others[0]] + uv[:, 1:] * axes[others[1]])
    points = np.concatenate(pts)
    points = points + rng.normal(0, cfg.point_noise, size=points.shape)

    images = _render(camera_rng or rng, cfg, l2is, boxes_arr, labels)
    images = images + rng.normal(0, cfg.image_noise, size=images.shape)
    return {"points": torch.tensor(points, dtype=torch.float32),
            "images": torch.tensor(images, dtype=torch.float32),
            "lidar2img": torch.tensor(np.stack(l2is), dtype=torch.float32),
            "boxes": torch.tensor(boxes_arr, dtype=torch.float32),
            "labels": torch.tensor(labels, dtype=torch.long)}


def _render(rng: np.random.Generator, cfg: ToySceneConfig, l2is: Sequence[np.ndarray],
            boxes: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """``(V, 3, H, W)`` camera images of the boxes with the degradations of ``cfg`` (all but the
    pixel noise, which the caller adds). Draws from ``rng`` happen only for enabled ones."""
    h, w = cfg.image_hw
    images = np.zeros((len(l2is), 3, h, w))
    ground = np.full(3, cfg.ground_grey)
    colours = []
    for lab in labels:
        base = np.array(CLASS_COLOURS[lab % len(CLASS_COLOURS)])
        colour = ground + cfg.object_contrast * (base - ground)
        if cfg.colour_jitter > 0:
            colour = colour + rng.normal(0, cfg.colour_jitter, size=3)
        colours.append(colour)
    order = np.argsort(-np.linalg.norm(boxes[:, :2], axis=1)) if len(boxes) else []
    for v, l2i in enumerate(l2is):
        # Level cameras: the horizon is the principal row, the ground lies below it.
        images[v, :, h // 2:, :] = cfg.ground_grey
        if cfg.background_texture > 0:
            c = max(1, int(cfg.texture_cell))
            coarse = rng.uniform(-1, 1, size=(3, -(-h // c), -(-w // c)))
            tex = np.repeat(np.repeat(coarse, c, axis=1), c, axis=2)[:, :h, :w]
            images[v] += cfg.background_texture * tex
        for i in order:
            uv, z = _project(l2i, _corners(boxes[i]))
            if (z < 0.2).any():
                continue
            mask = _fill(_hull(uv), (h, w))
            images[v][:, mask] = colours[i][:, None]
        for _ in range(int(rng.integers(0, cfg.occluders + 1)) if cfg.occluders > 0 else 0):
            oh = max(1, int(rng.uniform(0.1, 1.0) * cfg.occluder_size * h))
            ow = max(1, int(rng.uniform(0.1, 1.0) * cfg.occluder_size * w))
            r0, c0 = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
            images[v, :, r0:r0 + oh, c0:c0 + ow] = rng.uniform(0, 1, size=3)[:, None, None]
    if cfg.pixel_block > 1:
        b = int(cfg.pixel_block)
        hb, wb = -(-h // b) * b, -(-w // b) * b
        pad = np.pad(images, ((0, 0), (0, 0), (0, hb - h), (0, wb - w)), mode="edge")
        pooled = pad.reshape(len(l2is), 3, hb // b, b, wb // b, b).mean(axis=(3, 5))
        images = np.repeat(np.repeat(pooled, b, axis=2), b, axis=3)[..., :h, :w]
    if tuple(cfg.brightness) != (1.0, 1.0):
        images = images * rng.uniform(*cfg.brightness)
    return images


def make_scenes(n: int, seed: int, cfg: ToySceneConfig | None = None) -> list[dict[str, Tensor]]:
    """``n`` scenes from ``numpy.random.default_rng(seed)``; the camera degradations draw from a
    second stream (``default_rng([seed, 1])``), so boxes and points depend only on the seed and
    the geometry settings, and the clean default camera reproduces the original scenes."""
    if n <= 0:
        raise GraphError(f"n: expected a positive number of scenes, got {n}")
    cfg = cfg or ToySceneConfig()
    rng = np.random.default_rng(seed)
    camera_rng = np.random.default_rng([seed, 1])
    return [generate_scene(rng, cfg, camera_rng) for _ in range(n)]


def collate(scenes: Sequence[dict[str, Tensor]], drops: Sequence[str | None] | None = None,
            device: torch.device | str = "cpu") -> dict:
    """Batch scenes; ``drops[i]`` in ``{None, "points", "images"}`` zeroes that sample's modality
    the way :class:`~graphkit.vision.cmt.ModalMask` does."""
    drops = drops or [None] * len(scenes)
    pts, batch, imgs = [], [], []
    for i, (s, d) in enumerate(zip(scenes, drops, strict=True)):
        p, im = s["points"], s["images"]
        if d == "points":
            p = p * 0
        elif d == "images":
            im = im * 0
        pts.append(p)
        batch.append(torch.full((len(p),), i, dtype=torch.long))
        imgs.append(im)
    return {"points": torch.cat(pts).to(device), "batch": torch.cat(batch).to(device),
            "images": torch.stack(imgs).to(device),
            "lidar2img": torch.stack([s["lidar2img"] for s in scenes]).to(device),
            "targets": [{"boxes": s["boxes"].to(device), "labels": s["labels"].to(device)}
                        for s in scenes],
            "batch_size": len(scenes)}


class PillarEncoder(nn.Module):
    """Tiny pillar encoder: per-point MLP, scatter-max into a BEV grid, two 3x3 convolutions.

    Points outside ``pc_range`` are dropped. Column = x, row = y (the CMT BEV convention).

    Args:
        hidden: output channels.
        grid_hw: BEV grid ``(rows along y, columns along x)``.
        pc_range: point-cloud range in metres.
    """

    def __init__(self, hidden: int, grid_hw: tuple[int, int], pc_range: Sequence[float]) -> None:
        super().__init__()
        self.grid_hw = grid_hw
        self.register_buffer("pc_range", torch.tensor([float(v) for v in pc_range]),
                             persistent=False)
        self.point_mlp = nn.Sequential(nn.Linear(5, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.conv = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU())
        self.hidden = hidden

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.reset_parameters()

    def forward(self, points: Tensor, batch: Tensor, batch_size: int) -> Tensor:
        """``points (N, 3)`` with sample index ``batch (N,)`` -> ``(B, hidden, H, W)``."""
        if points.dim() != 2 or points.shape[1] < 3:
            raise GraphError(f"points: expected (N, >=3), got {tuple(points.shape)}")
        if batch.shape != points.shape[:1]:
            raise GraphError(f"batch: expected shape ({points.shape[0]},), got "
                             f"{tuple(batch.shape)}")
        rows, cols = self.grid_hw
        lo, hi = self.pc_range[:3], self.pc_range[3:]
        xyz = points[:, :3]
        inside = ((xyz >= lo) & (xyz < hi)).all(dim=1)
        xyz, batch = xyz[inside], batch[inside]
        norm = (xyz - lo) / (hi - lo)
        col = (norm[:, 0] * cols).long().clamp(max=cols - 1)
        row = (norm[:, 1] * rows).long().clamp(max=rows - 1)
        centre = torch.stack(((col + 0.5) / cols, (row + 0.5) / rows), dim=-1)
        feats = self.point_mlp(torch.cat((norm, (norm[:, :2] - centre) * cols), dim=-1))
        index = (batch * rows + row) * cols + col
        grid = feats.new_zeros(batch_size * rows * cols, self.hidden)
        grid = grid.scatter_reduce(0, index[:, None].expand(-1, self.hidden), feats, "amax",
                                   include_self=False)
        grid = grid.view(batch_size, rows, cols, self.hidden).permute(0, 3, 1, 2)
        return self.conv(grid)


class TinyCNN(nn.Module):
    """Three 3x3 convolutions, total stride 4: ``(B, 3, H, W) -> (B, hidden, H/4, W/4)``."""

    def __init__(self, hidden: int, in_channels: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, 16, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(16, hidden, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU())

    def reset_parameters(self) -> None:
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ToyCMT(nn.Module):
    """Pillar encoder + tiny CNN + :class:`~graphkit.vision.cmt.CMT` for the toy scenes.

    Args:
        cfg: the scene configuration (range, image size, classes).
        hidden: width of everything.
        num_query, depth_num, num_layers, num_heads, ffn: CMT shape.
        bev_hw: BEV grid size.
        pe_scale: coordinate scale of the BEV sine encoding (official ``2 * pi``).
        dn_groups: query-denoising groups in training (official 10).
        standard_freq: the standard ``10000 ** (2k/d)`` frequency schedule for the BEV sine
            encoding instead of the official code's narrow ``2k/d + 1`` band.
    """

    def __init__(self, cfg: ToySceneConfig, hidden: int = 32, num_query: int = 20,
                 depth_num: int = 16, num_layers: int = 2, num_heads: int = 4, ffn: int = 64,
                 bev_hw: tuple[int, int] = (16, 16), pe_scale: float = 2 * math.pi,
                 dn_groups: int = 5, standard_freq: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.pillars = PillarEncoder(hidden, bev_hw, cfg.pc_range)
        self.cnn = TinyCNN(hidden)
        self.cmt = CMT(cfg.num_classes, hidden, hidden, hidden=hidden, num_query=num_query,
                       depth_num=depth_num, pc_range=cfg.pc_range, num_layers=num_layers,
                       num_heads=num_heads, ffn=ffn, dropout=0.0, pe_scale=pe_scale,
                       dn_groups=dn_groups, standard_freq=standard_freq)

    def reset_parameters(self) -> None:
        self.pillars.reset_parameters()
        self.cnn.reset_parameters()
        self.cmt.reset_parameters()

    def forward(self, batch: dict, zero_pe: bool = False) -> dict[str, Tensor]:
        b = batch["batch_size"]
        bev = self.pillars(batch["points"], batch["batch"], b)
        imgs = batch["images"]
        feats = self.cnn(imgs.flatten(0, 1))
        feats = feats.view(b, imgs.shape[1], *feats.shape[1:])
        return self.cmt(bev, feats, batch["lidar2img"], tuple(imgs.shape[-2:]), zero_pe=zero_pe,
                        targets=batch["targets"] if self.training else None)

    def loss(self, out: dict[str, Tensor], batch: dict) -> Tensor:
        return self.cmt.loss(out, batch["targets"])


def train_toy(scenes: Sequence[dict[str, Tensor]], *, seed: int, steps: int = 300,
              batch_size: int = 16, lr: float = 2e-3, modal_mask: ModalMask | None = None,
              model_kw: dict | None = None, cfg: ToySceneConfig | None = None,
              device: str | torch.device = "auto", log_every: int = 0,
              anchor_lr_mult: float = 0.1, image_lr_mult: float = 1.0,
              image_backbone: dict[str, Tensor] | None = None) -> ToyCMT:
    """Train a :class:`ToyCMT` with AdamW (cosine schedule, grad clip 1.0).

    Args:
        scenes: training scenes from :func:`make_scenes`.
        seed: seeds model init, minibatch order and the modal-mask draws.
        steps: optimisation steps.
        batch_size: scenes per step.
        lr: peak learning rate.
        modal_mask: a :class:`~graphkit.vision.cmt.ModalMask` (``None``: always both sensors).
        model_kw: extra :class:`ToyCMT` arguments.
        cfg: the scene configuration the scenes were made with.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        log_every: print the loss every so many steps (0: silent).
        anchor_lr_mult: learning-rate factor of the anchors (kept in ``[0, 1]`` after each step).
        image_lr_mult: learning-rate factor of the image backbone (:class:`TinyCNN`); the
            released fusion configs train the image backbone at 0.01x the base rate.
        image_backbone: a :class:`TinyCNN` ``state_dict`` to start from (a pretrained image
            backbone, as the released fusion models start from one); loaded after the seeded
            initialisation, so everything else starts as without it.
    """
    if steps <= 0 or batch_size <= 0:
        raise GraphError(f"steps/batch_size: expected positive integers, got {steps}, {batch_size}")
    if not 0.0 <= image_lr_mult <= 1.0:
        raise GraphError(f"image_lr_mult: expected a factor in [0, 1], got {image_lr_mult!r}")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = ToyCMT(cfg or ToySceneConfig(), **(model_kw or {})).to(dev)
    if image_backbone is not None:
        model.cnn.load_state_dict(image_backbone)
    # Anchors get a smaller step and are kept inside [0, 1]: an anchor that leaves the unit cube
    # saturates inverse_sigmoid and its query can no longer move (the official lr is 1e-4, at
    # which they barely drift; the toy trains 50x faster).
    anchors = model.cmt.query_gen.anchors.weight
    # the image backbone gets its own group only when its factor differs, so the default run
    # keeps the earlier groups and parameter order (and reproduces the recorded results)
    image = list(model.cnn.parameters()) if image_lr_mult != 1.0 else []
    own = {id(anchors)} | {id(p) for p in image}
    groups = [([p for p in model.parameters() if id(p) not in own], lr, 1e-4),
              ([anchors], lr * anchor_lr_mult, 0.0)] + ([(image, lr * image_lr_mult, 1e-4)]
                                                         if image else [])
    opt = torch.optim.AdamW([{"params": ps, "lr": g_lr, "weight_decay": wd}
                             for ps, g_lr, wd in groups])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g[1] for g in groups],
                                                total_steps=steps, pct_start=0.1)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(len(scenes), (batch_size,), generator=gen).tolist()
        drops = [modal_mask.choose(gen) if modal_mask else None for _ in idx]
        batch = collate([scenes[i] for i in idx], drops, dev)
        loss = model.loss(model(batch), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            anchors.clamp_(0.0, 1.0)
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:5d} loss {loss.item():.4f} ({time.perf_counter() - start:.1f}s)")
    model.eval()
    return model


@torch.no_grad()
def evaluate_toy(model: ToyCMT, scenes: Sequence[dict[str, Tensor]], drop: str | None = None,
                 zero_pe: bool = False, batch_size: int = 64,
                 thresholds: Sequence[float] = (0.5, 1.0, 2.0)) -> dict[str, float]:
    """Centre-distance AP of ``model`` on ``scenes``, optionally with a modality zeroed
    (``drop="points"`` is the paper's test-time "w/o LiDAR") or all position encodings zeroed."""
    if drop not in (None, "points", "images"):
        raise GraphError(f"drop: expected None, 'points' or 'images', got {drop!r}")
    model.eval()
    dev = next(model.parameters()).device
    preds, gts = [], []
    for i in range(0, len(scenes), batch_size):
        chunk = scenes[i:i + batch_size]
        batch = collate(chunk, [drop] * len(chunk), dev)
        preds += model.cmt.predict(model(batch, zero_pe=zero_pe))
        gts += [{"boxes": s["boxes"], "labels": s["labels"]} for s in chunk]
    return centre_distance_ap(preds, gts, model.cfg.num_classes, thresholds)


def chance_ap(scenes: Sequence[dict[str, Tensor]], cfg: ToySceneConfig, num_preds: int,
              seed: int = 0, thresholds: Sequence[float] = (0.5, 1.0, 2.0)) -> dict[str, float]:
    """AP of ``num_preds`` random detections per scene: centres uniform over the box region
    (``x_range`` x the y range), random classes and scores. The "chance" reference."""
    gen = torch.Generator().manual_seed(seed)
    lo = torch.tensor([cfg.x_range[0], cfg.pc_range[1] + 1])
    hi = torch.tensor([cfg.x_range[1], cfg.pc_range[4] - 1])
    preds = [{"centres": lo + (hi - lo) * torch.rand(num_preds, 2, generator=gen),
              "scores": torch.rand(num_preds, generator=gen),
              "labels": torch.randint(cfg.num_classes, (num_preds,), generator=gen)}
             for _ in scenes]
    gts = [{"boxes": s["boxes"], "labels": s["labels"]} for s in scenes]
    return centre_distance_ap(preds, gts, cfg.num_classes, thresholds)
