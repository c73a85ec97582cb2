"""Dataset distillation: DD (unrolled hyper-gradients) and DC (gradient matching).

The two distillation methods attacked in "Backdoor Attacks Against Dataset Distillation"
(Liu et al., NDSS 2023, https://arxiv.org/abs/2301.01197), written as small PyTorch loops:

* **DD** (Wang, Zhu, Torralba, Efros, "Dataset Distillation", https://arxiv.org/abs/1811.10959):
  learnable synthetic images for ``distill_steps`` gradient-descent steps, each with a learnable
  step size (softplus-parametrised, as in the reference code), replayed ``distill_epochs`` times;
  the outer loss is the cross-entropy of the unrolled model on a real batch, differentiated through
  the whole unroll (``torch.autograd.grad(create_graph=True)`` over ``torch.func.functional_call``).
  ``known_init=True`` is DD's default ``train_nets_type=known_init``: one fixed initialisation is
  used for distillation *and* evaluation.
* **DC** (Zhao, Mopuri, Bilen, "Dataset Condensation with Gradient Matching",
  https://arxiv.org/abs/2006.05929): per-class matching of the gradients a network gets on real
  and synthetic data, with the layer-wise distance of the original code (:func:`distance_wb`),
  alternated with short training of the network on the synthetic set.

Both loops accept a ``hook`` called after each inner training phase with the current network
parameters; the backdoor attacks in :mod:`graphkit.vision.distill_backdoor` use it to re-optimise
their trigger (DOORPING). Both loops checkpoint atomically and resume (``checkpoint=path``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from graphkit.errors import GraphError
from graphkit.runtime import atomic_path

Params = dict[str, Tensor]


class DistillHook(Protocol):
    """Called after an inner training phase with the network and its current parameters."""

    def __call__(self, model: nn.Module, params: Params, iteration: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class MLP(nn.Module):
    """Flatten → Linear → ReLU → Linear: the small classifier of the digits experiments.

    Args:
        in_features: flattened input size.
        hidden: hidden width.
        num_classes: number of outputs.
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def reset_parameters(self) -> None:
        self.fc1.reset_parameters()
        self.fc2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.relu(self.fc1(x.flatten(1))))

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y)


class ConvNet(nn.Module):
    """DC's ConvNet: ``depth`` × (conv3×3 → instance norm → ReLU → avg-pool 2), then one Linear.

    Args:
        in_channels: image channels.
        num_classes: number of outputs.
        im_size: (H, W) of the input.
        width: channels of every conv layer.
        depth: number of conv blocks (each halves H and W).
    """

    def __init__(self, in_channels: int, num_classes: int, im_size: tuple[int, int],
                 width: int = 16, depth: int = 2) -> None:
        super().__init__()
        h, w = im_size
        if h >> depth < 1 or w >> depth < 1:
            raise GraphError(f"depth: {depth} pooling layers do not fit an image of size {im_size}")
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(ch, width, 3, padding=1),
                       nn.GroupNorm(width, width, affine=True), nn.ReLU(), nn.AvgPool2d(2)]
            ch = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * (h >> depth) * (w >> depth), num_classes)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y)


def get_params(model: nn.Module) -> Params:
    """Detached copies of the model's parameters (the functional state used by the loops)."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def predict(model: nn.Module, params: Params, x: Tensor, batch: int = 4096) -> Tensor:
    """Predicted labels of ``model`` with ``params`` on ``x`` (no grad)."""
    with torch.no_grad():
        return torch.cat([functional_call(model, params, (x[i:i + batch],)).argmax(1)
                          for i in range(0, len(x), batch)])


def _check_real(x: Tensor, y: Tensor, num_classes: int) -> None:
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise GraphError(f"x_real/y_real: expected (N, ...) and (N,), got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        bad = int(((y < 0) | (y >= num_classes)).nonzero()[0])
        raise GraphError(f"y_real: label {int(y[bad])} at index {bad} outside [0, {num_classes})")
    missing = set(range(num_classes)) - set(y.unique().tolist())
    if missing:
        raise GraphError(f"y_real: no real sample of class {min(missing)}")


def _check_at_least_one(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(config, name) < 1:
            raise GraphError(f"{name}: must be ≥ 1, got {getattr(config, name)}")


# --------------------------------------------------------------------------------------------
# Checkpointing (shared by DD and DC)
# --------------------------------------------------------------------------------------------

def _save(path: Path | None, state: dict[str, Any]) -> None:
    if path is None:
        return
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load(path: Path | None) -> dict[str, Any] | None:
    if path is None or not Path(path).exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


# --------------------------------------------------------------------------------------------
# DD
# --------------------------------------------------------------------------------------------

@dataclass
class DDConfig:
    """Hyper-parameters of DD (defaults: the digits setting of the backdoor experiments).

    Args:
        distill_steps: number of distinct synthetic GD steps (T).
        distill_epochs: how often the T steps are replayed.
        ipc: synthetic images per class per step.
        init_step_lr: initial value of every learnable step size.
        lr: Adam learning rate of images and step sizes.
        betas: Adam betas (the reference code uses (0.5, 0.999)).
        iterations: outer iterations.
        batch_real: real minibatch size of the outer loss.
        decay_every: multiply the Adam lr by ``decay_factor`` every this many iterations.
        decay_factor: see ``decay_every``.
        known_init: one fixed network initialisation for distillation and evaluation.
        checkpoint_every: iterations between checkpoints (when a path is given).
    """

    distill_steps: int = 10
    distill_epochs: int = 3
    ipc: int = 1
    init_step_lr: float = 0.02
    lr: float = 0.01
    betas: tuple[float, float] = (0.5, 0.999)
    iterations: int = 300
    batch_real: int = 256
    decay_every: int = 100
    decay_factor: float = 0.5
    known_init: bool = True
    checkpoint_every: int = 50

    def validate(self) -> None:
        _check_at_least_one(self, ("distill_steps", "distill_epochs", "ipc", "iterations",
                                   "batch_real", "decay_every", "checkpoint_every"))
        for name in ("init_step_lr", "lr"):
            if not getattr(self, name) > 0:
                raise GraphError(f"{name}: must be > 0, got {getattr(self, name)}")


@dataclass
class DDResult:
    """Distilled data of DD: ``images[i]`` / ``labels[i]`` are step i's batch."""

    images: Tensor
    labels: Tensor
    step_lrs: Tensor
    init_params: Params | None
    config: DDConfig
    history: list[dict[str, float]] = field(default_factory=list)

    def train(self, model: nn.Module, params: Params | None = None) -> Params:
        """Replay the distilled steps from ``params`` (default: the known init) → final params."""
        start = params if params is not None else self.init_params
        if start is None:
            raise GraphError("params: DD was run with known_init=False; pass initial params")
        return dd_unroll(model, start, self.images, self.labels, self.step_lrs,
                         self.config.distill_epochs, create_graph=False)


def inverse_softplus(x: float) -> float:
    return math.log(math.expm1(x))


def dd_unroll(model: nn.Module, params: Params, images: Tensor, labels: Tensor, step_lrs: Tensor,
              epochs: int, create_graph: bool = True) -> Params:
    """θ ← θ − lr_i ∇ CE(f(x_i; θ), y_i) for i = 1..T, ``epochs`` times (differentiable).

    Args:
        model: the network (only its structure is used).
        params: starting parameters.
        images: (T, n, ...) synthetic images.
        labels: (T, n) synthetic labels.
        step_lrs: (T,) positive step sizes.
        epochs: number of replays of the T steps.
        create_graph: keep the graph for hyper-gradients.
    """
    names = list(params)
    theta = [params[k] if params[k].requires_grad else params[k].detach().requires_grad_(True)
             for k in names]
    for _ in range(epochs):
        for i in range(images.shape[0]):
            out = functional_call(model, dict(zip(names, theta, strict=True)), (images[i],))
            grads = torch.autograd.grad(F.cross_entropy(out, labels[i]), theta,
                                        create_graph=create_graph)
            theta = [t - step_lrs[i] * g for t, g in zip(theta, grads, strict=True)]
            if not create_graph:
                theta = [t.detach().requires_grad_(True) for t in theta]
    return {k: (t if create_graph else t.detach()) for k, t in zip(names, theta, strict=True)}


def distill_dd(model: nn.Module, x_real: Tensor, y_real: Tensor, num_classes: int,
               config: DDConfig | None = None, seed: int = 0, hook: DistillHook | None = None,
               checkpoint: str | Path | None = None,
               log: Callable[[dict[str, float]], None] | None = None) -> DDResult:
    """Distil ``(x_real, y_real)`` with DD.

    ``x_real`` is read at every iteration, so a hook may modify it in place (DOORPING re-stamps
    its poisoned rows there).

    Args:
        model: the network; its current parameters are the known initialisation.
        x_real: (N, ...) real images on the target device.
        y_real: (N,) real labels.
        num_classes: number of classes.
        config: hyper-parameters (default :class:`DDConfig`).
        seed: seeds synthetic-image init, minibatches and (unknown-init) network inits.
        hook: called after the unroll of every iteration with the unrolled parameters θ_T.
        checkpoint: file to save to every ``checkpoint_every`` iterations and resume from.
        log: receives ``{"iteration", "loss", ...}`` at every checkpoint interval.
    """
    config = config or DDConfig()
    config.validate()
    _check_real(x_real, y_real, num_classes)
    device = x_real.device
    gen = torch.Generator().manual_seed(seed)
    n = num_classes * config.ipc
    images = torch.randn((config.distill_steps, n, *x_real.shape[1:]), generator=gen)
    images = images.to(device).requires_grad_(True)
    labels = torch.arange(num_classes, device=device).repeat(config.ipc)
    labels = labels.expand(config.distill_steps, n).contiguous()
    raw_lrs = torch.full((config.distill_steps,), inverse_softplus(config.init_step_lr),
                         device=device, requires_grad=True)
    opt = torch.optim.Adam([images, raw_lrs], lr=config.lr, betas=config.betas)
    init_params = get_params(model)
    history: list[dict[str, float]] = []
    start = 0
    path = Path(checkpoint) if checkpoint is not None else None
    state = _load(path)
    if state is not None:
        with torch.no_grad():
            images.copy_(state["images"])
            raw_lrs.copy_(state["raw_lrs"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        init_params = {k: v.to(device) for k, v in state["init_params"].items()}
        x_real.copy_(state["x_real"].to(device))
        history = state["history"]
        start = state["iteration"]
        if hook is not None:
            hook.load_state_dict(state["hook"])
    for it in range(start, config.iterations):
        for group in opt.param_groups:
            group["lr"] = config.lr * config.decay_factor ** (it // config.decay_every)
        if config.known_init:
            params = init_params
        else:
            model.reset_parameters()
            params = get_params(model)
        batch = torch.randint(len(x_real), (min(config.batch_real, len(x_real)),), generator=gen)
        theta = dd_unroll(model, params, images, labels, F.softplus(raw_lrs),
                          config.distill_epochs, create_graph=True)
        if hook is not None:
            hook(model, {k: v.detach() for k, v in theta.items()}, it)
        batch = batch.to(device)
        out = functional_call(model, theta, (x_real[batch],))
        loss = F.cross_entropy(out, y_real[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (it + 1) % config.checkpoint_every == 0 or it + 1 == config.iterations:
            rec = {"iteration": it + 1, "loss": float(loss.detach()),
                   "mean_step_lr": float(F.softplus(raw_lrs.detach()).mean())}
            history.append(rec)
            if log is not None:
                log(rec)
            _save(path, {"iteration": it + 1, "images": images.detach().cpu(),
                         "raw_lrs": raw_lrs.detach().cpu(), "opt": opt.state_dict(),
                         "gen": gen.get_state(), "x_real": x_real.cpu(),
                         "init_params": {k: v.cpu() for k, v in init_params.items()},
                         "history": history, "hook": hook.state_dict() if hook else {}})
    return DDResult(images.detach(), labels, F.softplus(raw_lrs).detach(),
                    init_params if config.known_init else None, config, history)


# --------------------------------------------------------------------------------------------
# DC
# --------------------------------------------------------------------------------------------

def distance_wb(g_real: Tensor, g_syn: Tensor) -> Tensor:
    """DC's layer-wise gradient distance: Σ_rows (1 − cos) after reshaping to (out, −1).

    One-dimensional tensors (biases, norm parameters) contribute 0, as in the original code.
    """
    if g_real.shape != g_syn.shape:
        raise GraphError(f"g_syn: shape {tuple(g_syn.shape)} != g_real {tuple(g_real.shape)}")
    if g_real.ndim == 1:
        return g_real.new_zeros(())
    gr = g_real.reshape(g_real.shape[0], -1)
    gs = g_syn.reshape(g_syn.shape[0], -1)
    cos = (gr * gs).sum(-1) / (gr.norm(dim=-1) * gs.norm(dim=-1) + 1e-6)
    return (1 - cos).sum()


def match_loss(g_real: list[Tensor], g_syn: list[Tensor]) -> Tensor:
    """Sum of :func:`distance_wb` over the layers (DC's default ``dis_metric='ours'``)."""
    return sum((distance_wb(a, b) for a, b in zip(g_real, g_syn, strict=True)),
               start=g_real[0].new_zeros(()))


@dataclass
class DCConfig:
    """Hyper-parameters of DC (original-code defaults where they fit a toy).

    Args:
        ipc: synthetic images per class.
        iterations: outer iterations (a fresh network each).
        outer_loop: matching steps per iteration.
        inner_loop: network SGD steps on the synthetic set between matching steps.
        lr_img: SGD lr of the synthetic images (momentum 0.5).
        lr_net: SGD lr of the network.
        batch_real: real images per class per matching step.
        init: ``"real"`` (random real images of the class) or ``"noise"``.
        checkpoint_every: iterations between checkpoints (when a path is given).
    """

    ipc: int = 10
    iterations: int = 100
    outer_loop: int = 10
    inner_loop: int = 10
    lr_img: float = 0.1
    lr_net: float = 0.01
    batch_real: int = 64
    init: str = "real"
    checkpoint_every: int = 10

    def validate(self) -> None:
        _check_at_least_one(self, ("ipc", "iterations", "outer_loop", "inner_loop",
                                   "batch_real", "checkpoint_every"))
        if self.init not in ("real", "noise"):
            raise GraphError(f"init: expected 'real' or 'noise', got {self.init!r}")


def distill_dc(model: nn.Module, x_real: Tensor, y_real: Tensor, num_classes: int,
               config: DCConfig | None = None, seed: int = 0, hook: DistillHook | None = None,
               checkpoint: str | Path | None = None,
               log: Callable[[dict[str, float]], None] | None = None) -> tuple[Tensor, Tensor]:
    """Distil ``(x_real, y_real)`` with DC gradient matching → (images, labels).

    Args:
        model: the network (re-initialised every iteration with ``reset_parameters``).
        x_real: (N, C, H, W) real images; a hook may modify it in place.
        y_real: (N,) real labels.
        num_classes: number of classes.
        config: hyper-parameters (default :class:`DCConfig`).
        seed: seeds the synthetic init and real batches.
        hook: called after every inner training phase with the network's parameters.
        checkpoint: file to save to every ``checkpoint_every`` iterations and resume from.
        log: receives ``{"iteration", "match_loss"}`` at every checkpoint interval.
    """
    config = config or DCConfig()
    config.validate()
    _check_real(x_real, y_real, num_classes)
    device = x_real.device
    gen = torch.Generator().manual_seed(seed)
    by_class = [(y_real == c).nonzero().flatten().cpu() for c in range(num_classes)]
    labels = torch.arange(num_classes, device=device).repeat_interleave(config.ipc)
    if config.init == "real":
        pick = torch.cat([idx[torch.randint(len(idx), (config.ipc,), generator=gen)]
                          for idx in by_class])
        images = x_real[pick.to(device)].detach().clone()
    else:
        images = torch.randn((len(labels), *x_real.shape[1:]), generator=gen).to(device)
    images.requires_grad_(True)
    opt_img = torch.optim.SGD([images], lr=config.lr_img, momentum=0.5)
    start, history = 0, []
    path = Path(checkpoint) if checkpoint is not None else None
    state = _load(path)
    if state is not None:
        with torch.no_grad():
            images.copy_(state["images"])
        opt_img.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        x_real.copy_(state["x_real"].to(device))
        history, start = state["history"], state["iteration"]
        if hook is not None:
            hook.load_state_dict(state["hook"])
        torch.set_rng_state(state["torch_rng"])
    for it in range(start, config.iterations):
        model.reset_parameters()
        net_params = list(model.parameters())
        opt_net = torch.optim.SGD(net_params, lr=config.lr_net, momentum=0.5)
        total = 0.0
        for ol in range(config.outer_loop):
            loss = images.new_zeros(())
            for c in range(num_classes):
                idx = by_class[c]
                b = idx[torch.randint(len(idx), (config.batch_real,), generator=gen)].to(device)
                g_real = torch.autograd.grad(model.loss(model(x_real[b]), y_real[b]), net_params)
                g_real = [g.detach() for g in g_real]
                sl = slice(c * config.ipc, (c + 1) * config.ipc)
                g_syn = torch.autograd.grad(model.loss(model(images[sl]), labels[sl]),
                                            net_params, create_graph=True)
                loss = loss + match_loss(g_real, list(g_syn))
            opt_img.zero_grad()
            loss.backward()
            opt_img.step()
            total += float(loss.detach())
            if ol == config.outer_loop - 1:
                break
            syn_x, syn_y = images.detach(), labels
            for _ in range(config.inner_loop):
                opt_net.zero_grad()
                model.loss(model(syn_x), syn_y).backward()
                opt_net.step()
            if hook is not None:
                hook(model, get_params(model), it)
        if (it + 1) % config.checkpoint_every == 0 or it + 1 == config.iterations:
            rec = {"iteration": it + 1, "match_loss": total / config.outer_loop}
            history.append(rec)
            if log is not None:
                log(rec)
            _save(path, {"iteration": it + 1, "images": images.detach().cpu(),
                         "opt": opt_img.state_dict(), "gen": gen.get_state(),
                         "torch_rng": torch.get_rng_state(), "x_real": x_real.cpu(),
                         "history": history, "hook": hook.state_dict() if hook else {}})
    return images.detach(), labels


def train_on_synthetic(model: nn.Module, images: Tensor, labels: Tensor, epochs: int = 300,
                       lr: float = 0.01, batch: int = 256) -> Params:
    """Train ``model`` (from its current parameters) on a distilled set with SGD (momentum 0.9,
    wd 5e-4, lr ×0.1 at half time, as DC's evaluation) → its parameters."""
    if len(images) != len(labels):
        raise GraphError(f"labels: {len(labels)} labels for {len(images)} images")
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    for ep in range(epochs):
        if ep == epochs // 2:
            for g in opt.param_groups:
                g["lr"] = lr * 0.1
        perm = torch.randperm(len(images), generator=gen).to(images.device)
        for i in range(0, len(images), batch):
            b = perm[i:i + batch]
            opt.zero_grad()
            model.loss(model(images[b]), labels[b]).backward()
            opt.step()
    return get_params(model)
