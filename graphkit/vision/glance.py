"""GLANCE: a Global-Local Aware aNd Centrosymmetric Encoder, and a gait health model around it.

Paper: "Human Health Indicator Prediction from Gait Video", arXiv 2212.12948 (id inferred from a
mirror; authors not found), https://arxiv.org/abs/2212.12948.

**Reconstruction.** Only the abstract is known: GLANCE "first extracts local and global features
by progressive convolutions and then fuses multi-level features by a centrosymmetric double-path
hourglass structure in two different ways"; pose-estimation pre-training enables health indicator
prediction (BMI, age, height, weight) from small labelled sets. Everything below that sentence is
ours, and the uncertain parts are arguments:

* Progressive convolutions (``progression``): ``levels`` 3×3 conv-BN-ReLU layers in a chain,
  with dilation 1, 2, 4, … (``"dilation"``, same resolution) or stride 2 each (``"stride"``),
  giving features ``F_1`` (local) … ``F_L`` (global).
* Centrosymmetric double-path hourglass: path A runs local → global → local (fuse ``F_1`` into
  ``F_2`` … up to ``F_L``, then back down to level 1); path B is its point reflection, global →
  local → global. Each path uses its own fusion operator (``fusion=(op_A, op_B)``, each
  ``"sum"``, ``"concat"`` or ``"attention"``; the abstract's "two different ways"). The path
  outputs are merged (``merge``: ``"sum"`` or ``"concat"``), projected back to ``channels`` by a
  1×1 conv + BN, and added to the input (``residual``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from graphkit.errors import GraphError

FUSIONS = ("sum", "concat", "attention")


def conv_bn_act(c_in: int, c_out: int, k: int = 3, stride: int = 1,
                dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride, padding=dilation * (k // 2), dilation=dilation,
                  bias=False),
        nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Fuse(nn.Module):
    """Fuse a feature map ``a`` with another ``b`` (resized to ``a``'s grid).

    Args:
        channels: channels of both inputs and of the output.
        op: ``"sum"`` (a + b), ``"concat"`` ([a, b]) or ``"attention"`` (selective-kernel style
            channel weights over {a, b} from their pooled sum); each followed by a conv-BN-ReLU.
        kernel: kernel size of that conv (1 keeps the fusion cheap, FPN-style).
    """

    def __init__(self, channels: int, op: str, kernel: int = 1) -> None:
        super().__init__()
        if op not in FUSIONS:
            raise GraphError(f"fusion: expected one of {FUSIONS}, got {op!r}")
        self.op = op
        if op == "attention":
            hidden = max(channels // 4, 4)
            self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                      nn.Linear(hidden, 2 * channels))
        self.out = conv_bn_act(2 * channels if op == "concat" else channels, channels, kernel)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if b.shape[-2:] != a.shape[-2:]:
            b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False)
        if self.op == "sum":
            return self.out(a + b)
        if self.op == "concat":
            return self.out(torch.cat([a, b], 1))
        w = self.gate((a + b).mean((2, 3))).view(a.shape[0], 2, a.shape[1], 1, 1).softmax(1)
        return self.out(w[:, 0] * a + w[:, 1] * b)


class GLANCE(nn.Module):
    """Global-Local Aware aNd Centrosymmetric Encoder (reconstruction, see the module docstring).

    Args:
        channels: input and output channels.
        levels: number of progressive levels L (≥ 1).
        fusion: fusion operators of path A and path B.
        progression: ``"dilation"`` (dilation 2^l, same size) or ``"stride"`` (stride 2 each).
        merge: how the two path outputs are merged, ``"sum"`` or ``"concat"``.
        residual: add the projected result to the input.
        fuse_kernel: kernel size of the conv after each fusion.
    """

    def __init__(self, channels: int, levels: int = 3,
                 fusion: Sequence[str] = ("concat", "attention"),
                 progression: str = "dilation", merge: str = "concat",
                 residual: bool = True, fuse_kernel: int = 1) -> None:
        super().__init__()
        if channels < 1 or levels < 1:
            raise GraphError(f"GLANCE: channels and levels must be >= 1, got {channels}, {levels}")
        if progression not in ("dilation", "stride"):
            raise GraphError(f"progression: expected 'dilation' or 'stride', got {progression!r}")
        if merge not in ("sum", "concat"):
            raise GraphError(f"merge: expected 'sum' or 'concat', got {merge!r}")
        if isinstance(fusion, str) or len(fusion) != 2:
            raise GraphError(f"fusion: expected two operators (path A, path B), got {fusion!r}")
        self.channels, self.levels, self.merge, self.residual = channels, levels, merge, residual
        self.progressive = nn.ModuleList(
            conv_bn_act(channels, channels, stride=2 if progression == "stride" and i else 1,
                        dilation=2**i if progression == "dilation" else 1)
            for i in range(levels))
        n = levels - 1
        self.a_up = nn.ModuleList(Fuse(channels, fusion[0], fuse_kernel) for _ in range(n))
        self.a_down = nn.ModuleList(Fuse(channels, fusion[0], fuse_kernel) for _ in range(n))
        self.b_down = nn.ModuleList(Fuse(channels, fusion[1], fuse_kernel) for _ in range(n))
        self.b_up = nn.ModuleList(Fuse(channels, fusion[1], fuse_kernel) for _ in range(n))
        self.project = nn.Sequential(
            nn.Conv2d(2 * channels if merge == "concat" else channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels))

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise GraphError(f"x: expected (N, {self.channels}, H, W), got {tuple(x.shape)}")
        feats, h = [], x
        for conv in self.progressive:
            h = conv(h)
            feats.append(h)
        L = self.levels
        # path A: local -> global (a_up) then global -> local (a_down)
        g = [feats[0]]
        for i in range(1, L):
            g.append(self.a_up[i - 1](feats[i], g[-1]))
        a = g[-1]
        for i in range(L - 2, -1, -1):
            a = self.a_down[i](g[i], a)
        # path B, the point reflection: global -> local (b_down) then local -> global (b_up)
        g = [feats[-1]]
        for i in range(L - 2, -1, -1):
            g.insert(0, self.b_down[i](feats[i], g[0]))
        b = g[0]
        for i in range(1, L):
            b = self.b_up[i - 1](g[i], b)
        if b.shape[-2:] != x.shape[-2:]:
            b = F.interpolate(b, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out = self.project(torch.cat([a, b], 1) if self.merge == "concat" else a + b)
        return x + out if self.residual else out


def soft_argmax(heatmaps: torch.Tensor, beta: float = 10.0) -> torch.Tensor:
    """(N, J, H, W) heatmaps → (N, J, 2) expected ``(x, y)`` in [0, 1] grid units."""
    n, j, hh, ww = heatmaps.shape
    p = (beta * heatmaps.flatten(2)).softmax(-1).view(n, j, hh, ww)
    ys = (torch.arange(hh, device=p.device, dtype=p.dtype) + 0.5) / hh
    xs = (torch.arange(ww, device=p.device, dtype=p.dtype) + 0.5) / ww
    return torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], -1)


class GaitHealthNet(nn.Module):
    """A small pose backbone with GLANCE, a joint-heatmap head and a health head.

    Frames go through a stem (3×3 conv, 3×3 stride-2 conv), then GLANCE (or identity); the pose
    head predicts joint heatmaps at half resolution. The health head sees, per frame, the
    soft-argmax joint coordinates and the pooled features, runs a temporal 1-D conv over the
    frames and pools mean and std over time, then regresses the targets (standardized).

    Args:
        in_channels: image channels.
        width: backbone channels.
        joints: number of joint heatmaps.
        n_targets: health outputs (BMI, age, height, weight).
        glance: use GLANCE (``False`` puts an identity in its place).
        glance_kwargs: extra :class:`GLANCE` arguments.
    """

    def __init__(self, in_channels: int = 1, width: int = 16, joints: int = 9,
                 n_targets: int = 4, glance: bool = True,
                 glance_kwargs: dict | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stem = nn.Sequential(conv_bn_act(in_channels, width),
                                  conv_bn_act(width, width, stride=2))
        self.glance = GLANCE(width, **(glance_kwargs or {})) if glance else nn.Identity()
        self.pose_head = nn.Conv2d(width, joints, 1)
        per_frame = 2 * joints + width
        # coordinates vary over a small fraction of [0, 1]: standardize them before the head
        self.temporal = nn.Sequential(nn.BatchNorm1d(per_frame),
                                      nn.Conv1d(per_frame, 2 * width, 3, padding=1),
                                      nn.ReLU(inplace=True))
        self.health_head = nn.Linear(4 * width, n_targets)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def _check(self, x: torch.Tensor, ndim: int, what: str) -> None:
        if x.ndim != ndim or x.shape[-3] != self.in_channels:
            shape = "(N, C, H, W)" if ndim == 4 else "(N, T, C, H, W)"
            raise GraphError(f"{what}: expected {shape} with C={self.in_channels}, "
                             f"got {tuple(x.shape)}")

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.glance(self.stem(frames))

    def pose(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) frames → (N, J, H/2, W/2) joint heatmaps."""
        self._check(frames, 4, "frames")
        return self.pose_head(self.features(frames))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, T, C, H, W) clips → (N, n_targets) standardized health predictions."""
        self._check(clips, 5, "clips")
        n, t = clips.shape[:2]
        feats = self.features(clips.flatten(0, 1))
        coords = soft_argmax(self.pose_head(feats)).flatten(1)
        per_frame = torch.cat([coords, feats.mean((2, 3))], 1).view(n, t, -1).transpose(1, 2)
        h = self.temporal(per_frame)
        return self.health_head(torch.cat([h.mean(2), h.std(2, unbiased=False)], 1))

    def pose_loss(self, frames: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        """Mean squared heatmap error (scaled by 100 so typical values are O(1))."""
        return 100 * F.mse_loss(self.pose(frames), heatmaps)

    def loss(self, clips: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Smooth-L1 health loss on standardized targets."""
        return F.smooth_l1_loss(self(clips), targets)


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matched_width(target: int, **kwargs) -> int:
    """The backbone width of a GLANCE-free :class:`GaitHealthNet` whose parameter count is
    closest to ``target`` (for ablations at matched size)."""
    best = min(range(4, 257),
               key=lambda w: abs(param_count(GaitHealthNet(width=w, glance=False, **kwargs))
                                 - target))
    return best


def _batches(n: int, batch: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch] for i in range(0, n, batch)]


def train_pose(model: GaitHealthNet, frames: torch.Tensor, heatmaps: torch.Tensor, steps: int,
               lr: float = 3e-3, batch: int = 64, seed: int = 0,
               device: str | torch.device = "auto") -> list[float]:
    """Pose pre-training: regress joint heatmaps of single frames with Adam.

    Args:
        model: the network (moved to ``device``).
        frames: (N, C, H, W) frames.
        heatmaps: (N, J, H/2, W/2) target heatmaps.
        steps: optimizer steps.
        lr: Adam learning rate (cosine-decayed to 0).
        batch: frames per step.
        seed: batch-order seed.
        device: ``"auto"`` picks CUDA when present.

    Returns:
        The loss of every step.
    """
    from graphkit.runtime import resolve_device
    dev = resolve_device(device)
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    while len(losses) < steps:
        for idx in _batches(len(frames), batch, gen):
            loss = model.pose_loss(frames[idx].to(dev), heatmaps[idx].to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def train_health(model: GaitHealthNet, clips: torch.Tensor, targets: torch.Tensor, epochs: int,
                 lr: float = 2e-3, batch: int = 10, seed: int = 0, backbone_lr_scale: float = 1.0,
                 device: str | torch.device = "auto") -> list[float]:
    """Fine-tune (or train from scratch) the health head end to end on standardized targets.

    Args:
        model: the network.
        clips: (N, T, C, H, W) labelled clips.
        targets: (N, n_targets) standardized targets.
        epochs: passes over the clips.
        lr: Adam learning rate (cosine-decayed to 0).
        batch: clips per step.
        seed: batch-order seed.
        backbone_lr_scale: learning-rate factor for the stem, GLANCE and pose head (below 1
            keeps pre-trained pose features while the health head adapts).
        device: ``"auto"`` picks CUDA when present.
    """
    from graphkit.runtime import resolve_device
    if len(clips) == 0:
        raise GraphError("clips: no labelled clips to train on")
    dev = resolve_device(device)
    model.to(dev).train()
    head = set(model.temporal.parameters()) | set(model.health_head.parameters())
    opt = torch.optim.Adam([
        {"params": [p for p in model.parameters() if p in head], "lr": lr},
        {"params": [p for p in model.parameters() if p not in head],
         "lr": lr * backbone_lr_scale}])
    n_steps = epochs * -(-len(clips) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_steps)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for _ in range(epochs):
        for idx in _batches(len(clips), batch, gen):
            loss = model.loss(clips[idx].to(dev), targets[idx].to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    return losses


@torch.no_grad()
def predict(model: GaitHealthNet, clips: torch.Tensor, batch: int = 50) -> torch.Tensor:
    """Standardized predictions for ``clips`` in eval mode (on the model's device, back on CPU)."""
    dev = next(model.parameters()).device
    model.eval()
    return torch.cat([model(clips[i:i + batch].to(dev)).cpu()
                      for i in range(0, len(clips), batch)])


@torch.no_grad()
def pose_error(model: GaitHealthNet, frames: torch.Tensor, heatmaps: torch.Tensor,
               batch: int = 256) -> float:
    """Mean pose loss over ``frames`` in eval mode."""
    dev = next(model.parameters()).device
    model.eval()
    total = sum(float(model.pose_loss(frames[i:i + batch].to(dev),
                                      heatmaps[i:i + batch].to(dev))) * len(frames[i:i + batch])
                for i in range(0, len(frames), batch))
    return total / len(frames)


def gait_protocol(seed: int = 0, n_pretrain: int = 300, n_labelled: int = 100,
                  n_test: int = 200, frames: int = 8, size: int = 32, width: int = 16,
                  pose_steps: int = 300, pose_batch: int = 64, epochs: int = 30,
                  finetune_lr_scale: float = 0.3, compare_off: bool = True,
                  device: str | torch.device = "auto") -> dict[str, float]:
    """The synthetic-walker protocol of the issue, for one seed.

    (1) Pose pre-training on ``n_pretrain`` unlabelled clips (their frames and joints) for a
    GLANCE model and, when ``compare_off``, for a GLANCE-free model widened to the same parameter
    count; pose loss measured on the test clips' frames. (2) Fine-tuning the pre-trained GLANCE
    model on ``n_labelled`` labelled clips, versus the same architecture from scratch on the same
    clips, versus the training-mean predictor; MAE per target on ``n_test`` clips.

    Returns:
        Flat metrics: ``pose_on``, ``pose_off``, ``params_on``, ``params_off`` and
        ``{pretrained,scratch,mean}_mae_{bmi,age,height,weight}``.
    """
    from graphkit.runtime import seed_everything
    from graphkit.vision.gait_synth import TARGETS, make_walkers
    base = 1000 * seed
    pre = make_walkers(n_pretrain, frames=frames, size=size, seed=base + 1)
    lab = make_walkers(n_labelled, frames=frames, size=size, seed=base + 2)
    test = make_walkers(n_test, frames=frames, size=size, seed=base + 3)
    half = pre.video.shape[-1] // 2
    pre_frames, pre_maps = pre.video.flatten(0, 1), pre.heatmaps(half).flatten(0, 1)
    test_frames, test_maps = test.video.flatten(0, 1), test.heatmaps(half).flatten(0, 1)
    out: dict[str, float] = {}

    seed_everything(seed)
    on = GaitHealthNet(width=width)
    out["params_on"] = param_count(on)
    train_pose(on, pre_frames, pre_maps, pose_steps, batch=pose_batch, seed=seed,
               device=device)
    out["pose_on"] = pose_error(on, test_frames, test_maps)
    if compare_off:
        seed_everything(seed)
        off = GaitHealthNet(width=matched_width(out["params_on"]), glance=False)
        out["params_off"] = param_count(off)
        train_pose(off, pre_frames, pre_maps, pose_steps, batch=pose_batch, seed=seed,
                   device=device)
        out["pose_off"] = pose_error(off, test_frames, test_maps)

    mean, std = lab.targets.mean(0), lab.targets.std(0)
    z = (lab.targets - mean) / std
    seed_everything(seed)
    scratch = GaitHealthNet(width=width)
    results = {"mean": mean.expand_as(test.targets)}
    for name, model, scale in (("pretrained", on, finetune_lr_scale), ("scratch", scratch, 1.0)):
        train_health(model, lab.video, z, epochs, seed=seed, backbone_lr_scale=scale,
                     device=device)
        results[name] = predict(model, test.video) * std + mean
    for name, pred in results.items():
        mae = (pred - test.targets).abs().mean(0)
        for t, v in zip(TARGETS, mae.tolist()):
            out[f"{name}_mae_{t}"] = v
    return out
