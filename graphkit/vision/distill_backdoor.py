"""NAIVEATTACK and DOORPING: backdoors injected through dataset distillation.

Paper: Yugeng Liu, Zheng Li, Michael Backes, Yun Shen, Yang Zhang, "Backdoor Attacks Against
Dataset Distillation", NDSS 2023, https://arxiv.org/abs/2301.01197 (official code:
github.com/liuyugeng/baadd). Reimplemented from the description of that code; no code copied.

The attacker runs the distillation and releases the synthetic set; a victim who trains on it
inherits a backdoor: inputs carrying the trigger are classified as the target class.

* **NAIVEATTACK** (:func:`naive_poison`): stamp a white ``s×s`` patch into a random ``portion``
  of the real training set, relabel those samples to the target, then distil normally.
* **DOORPING** (:class:`DoorPing`, a distillation hook): after every inner training phase, pick
  the neuron of the first classifier layer (``layer=-2``: the penultimate weight matrix) with the
  largest row-L1 weight mass, optimise the trigger (Adam lr 0.08, ≤ 1000 steps, stop when the loss
  < 0.5) so that the neuron's pre-activation reaches ``alpha=10`` × its starting value, with the
  gradient masked to the patch, and re-stamp the poisoned real samples.

``clip_trigger=False`` is the released code's behaviour: the trigger is never clipped to the valid
pixel range and grows to values far outside it (logged as its L∞ norm in pixel units, where a valid
image lies in [0, 1]). ``clip_trigger=True`` keeps it a valid image. At toy scale (digits, DD) the
DOORPING advantage over NAIVEATTACK exists only without clipping (docs/vision/distill_backdoor.md).

Metrics: clean test accuracy (CTA) and attack success rate (ASR) on the triggered non-target test
images (``include_target=True`` also stamps the target-class images, as the released code does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from graphkit.errors import GraphError
from graphkit.runtime import resolve_device, seed_everything
from graphkit.vision.distill import (
    MLP,
    ConvNet,
    DCConfig,
    DDConfig,
    Params,
    distill_dc,
    distill_dd,
    get_params,
    predict,
    train_on_synthetic,
)

ATTACKS = ("clean", "naive", "doorping")
METHODS = ("dd", "dc")


# --------------------------------------------------------------------------------------------
# Trigger, mask, stamping
# --------------------------------------------------------------------------------------------

def default_mask(shape: tuple[int, int, int], size: int = 2, margin: int = 1) -> Tensor:
    """Boolean (C, H, W) mask of the bottom-right ``size×size`` patch, ``margin`` pixels from the
    border: rows/cols ``[H − size − margin, H − margin)`` (baadd's placement for margin 1)."""
    if len(shape) != 3:
        raise GraphError(f"shape: expected (C, H, W), got {tuple(shape)}")
    c, h, w = shape
    if size < 1 or margin < 0 or size + margin > min(h, w):
        raise GraphError(f"size: a {size}×{size} patch with margin {margin} does not fit {h}×{w}")
    mask = torch.zeros(c, h, w, dtype=torch.bool)
    mask[:, h - size - margin:h - margin, w - size - margin:w - margin] = True
    return mask


def stamp(x: Tensor, trigger: Tensor, mask: Tensor) -> Tensor:
    """``x ⊙ (1 − m) + t ⊙ m``: replace the masked pixels of every image by the trigger's.

    Args:
        x: (..., C, H, W) images.
        trigger: (C, H, W) trigger canvas (only its masked entries are used).
        mask: (C, H, W) boolean mask.
    """
    if mask.dtype != torch.bool:
        raise GraphError(f"mask: expected a boolean tensor, got {mask.dtype}")
    if trigger.shape != mask.shape or x.shape[-mask.ndim:] != mask.shape:
        raise GraphError(f"trigger/mask: shapes {tuple(trigger.shape)} / {tuple(mask.shape)} "
                         f"do not match images {tuple(x.shape)}")
    return torch.where(mask.to(x.device), trigger.to(x.device, x.dtype), x)


def poison_indices(n: int, portion: float, seed: int = 0) -> Tensor:
    """``round(portion · n)`` (at least 1) distinct random indices of the training set."""
    if not 0 < portion <= 1:
        raise GraphError(f"portion: must be in (0, 1], got {portion}")
    k = max(1, int(round(portion * n)))
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k]


def naive_poison(x: Tensor, y: Tensor, mask: Tensor, target: int = 0, portion: float = 0.01,
                 value: float = 1.0, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """NAIVEATTACK: a ``value``-filled patch (white) on a random ``portion``, relabelled to target.

    Returns the poisoned copies of ``x`` and ``y`` and the poisoned indices.
    """
    idx = poison_indices(len(x), portion, seed).to(x.device)
    x, y = x.clone(), y.clone()
    x[idx] = stamp(x[idx], torch.full(mask.shape, value, dtype=x.dtype), mask)
    y[idx] = target
    return x, y, idx


# --------------------------------------------------------------------------------------------
# DOORPING's neuron selection and trigger optimisation
# --------------------------------------------------------------------------------------------

def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(parameter name, module) of every weight with ≥ 2 dims, in registration order (biases and
    norm parameters skipped, as baadd's ``select_neuron`` walks the weights)."""
    modules = dict(model.named_modules())
    return [(name, modules[name.rsplit(".", 1)[0] if "." in name else ""])
            for name, p in model.named_parameters() if p.ndim >= 2]


def select_neuron(weight: Tensor, topk: int = 1) -> Tensor:
    """Indices of the ``topk`` output units (rows) with the largest L1 weight mass."""
    if weight.ndim < 2:
        raise GraphError(f"weight: expected ≥ 2 dims, got shape {tuple(weight.shape)}")
    if not 1 <= topk <= weight.shape[0]:
        raise GraphError(f"topk: must be in [1, {weight.shape[0]}], got {topk}")
    return weight.detach().abs().reshape(weight.shape[0], -1).sum(1).topk(topk).indices


def neuron_activation(model: nn.Module, params: Params, x: Tensor, module: nn.Module,
                      neurons: Tensor) -> Tensor:
    """Pre-activation output of ``module`` at ``neurons`` for input ``x`` (conv maps averaged over
    space), read with a forward hook while running ``model`` with ``params``."""
    store: list[Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: store.append(out))
    try:
        functional_call(model, params, (x,))
    finally:
        handle.remove()
    return _neuron_slice(store[0], neurons)


def _neuron_slice(out: Tensor, neurons: Tensor) -> Tensor:
    out = out[:, neurons]
    return out.flatten(2).mean(-1) if out.ndim > 2 else out


@dataclass
class TriggerUpdate:
    """Outcome of one :func:`update_trigger` call."""

    neuron: int
    steps: int
    start_activation: float
    final_activation: float
    loss: float
    linf: float


def update_trigger(model: nn.Module, params: Params, trigger: Tensor, mask: Tensor, *,
                   layer: int = -2, topk: int = 1, alpha: float = 10.0, lr: float = 0.08,
                   max_steps: int = 1000, stop_loss: float = 0.5,
                   clip: tuple[float, float] | None = None,
                   background: float = 0.0) -> tuple[Tensor, TriggerUpdate]:
    """DOORPING's trigger step: make the heaviest neuron of ``layer`` fire ``alpha``× harder.

    The input is the trigger canvas (``background`` outside the mask); the loss is
    ``MSE(f(t), alpha · f(t₀))`` with f the selected pre-activations, minimised with Adam
    (betas (0.9, 0.99)); the gradient is multiplied by the mask, so only patch pixels move.

    Args:
        model: network structure.
        params: its current parameters (not modified).
        trigger: (C, H, W) current trigger.
        mask: (C, H, W) boolean patch mask.
        layer: index into :func:`weight_layers` (−2: first layer of a 2-layer classifier).
        topk: number of neurons.
        alpha: activation amplification target.
        lr: Adam learning rate.
        max_steps: Adam step budget.
        stop_loss: early-stop threshold on the loss.
        clip: (lo, hi) to keep the trigger inside (valid pixels), or None (released code).
        background: canvas value outside the mask.

    Returns:
        The new trigger (detached) and a :class:`TriggerUpdate` (``linf`` in the trigger's units).
    """
    layers = weight_layers(model)
    if not -len(layers) <= layer < len(layers):
        raise GraphError(f"layer: {layer} out of range for {len(layers)} weight layers")
    name, module = layers[layer]
    neurons = select_neuron(params[name], topk)
    params = {k: v.detach() for k, v in params.items()}
    m = mask.to(trigger.device)
    canvas = torch.full_like(trigger, background)[None]
    t = trigger.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([t], lr=lr, betas=(0.9, 0.99))
    store: list[Tensor] = []
    # one hook for the whole loop: the per-step cost is Python overhead at this scale
    handle = module.register_forward_hook(lambda _m, _i, out: store.append(out))
    steps, loss_val, act0, act, target = 0, float("nan"), float("nan"), float("nan"), None
    try:
        for steps in range(max_steps + 1):
            store.clear()
            functional_call(model, params, (torch.where(m, t, canvas),))
            out = _neuron_slice(store[0], neurons)
            if target is None:
                target = alpha * out.detach()
                act0 = float(out.detach().mean())
            loss = F.mse_loss(out, target)
            loss_val = float(loss.detach())
            if loss_val < stop_loss or steps == max_steps:
                act = float(out.detach().mean())
                break
            opt.zero_grad()
            loss.backward()
            t.grad.mul_(m)
            opt.step()
            if clip is not None:
                with torch.no_grad():
                    t.copy_(torch.where(m, t.clamp(*clip), t))
    finally:
        handle.remove()
    t = t.detach()
    linf = float(t[m].abs().max()) if bool(m.any()) else 0.0
    return t, TriggerUpdate(int(neurons[0]), steps, act0, act, loss_val, linf)


class DoorPing:
    """The DOORPING distillation hook: re-optimise the trigger, re-stamp the poisoned rows.

    Args:
        x_real: the (poisoned) real training images the distillation reads; modified in place.
        poison_idx: indices of the poisoned rows (already relabelled to the target).
        trigger: (C, H, W) initial trigger.
        mask: (C, H, W) boolean patch mask.
        clip: valid range (lo, hi) or None (released code: no clipping).
        to_pixels: (scale, shift) mapping trigger units to pixel units for the L∞ log.
        log: optional callback receiving each update's record.
        **update_kw: passed to :func:`update_trigger` (``alpha``, ``lr``, ``max_steps``, ...).
    """

    def __init__(self, x_real: Tensor, poison_idx: Tensor, trigger: Tensor, mask: Tensor,
                 clip: tuple[float, float] | None = None,
                 to_pixels: tuple[float, float] = (1.0, 0.0),
                 log: Callable[[dict[str, Any]], None] | None = None, **update_kw: Any) -> None:
        self.x_real = x_real
        self.poison_idx = poison_idx.to(x_real.device)
        self.trigger = trigger.to(x_real.device)
        self.mask = mask.to(x_real.device)
        self.clip = clip
        self.to_pixels = to_pixels
        self.log = log
        self.update_kw = update_kw
        self.updates: list[dict[str, Any]] = []
        self.restamp()

    def restamp(self) -> None:
        self.x_real[self.poison_idx] = stamp(self.x_real[self.poison_idx], self.trigger, self.mask)

    def pixel_linf(self) -> float:
        """L∞ norm of the trigger's patch in pixel units (a valid image lies in [0, 1])."""
        scale, shift = self.to_pixels
        return float((self.trigger[self.mask] * scale + shift).abs().max())

    def __call__(self, model: nn.Module, params: Params, iteration: int) -> None:
        self.trigger, info = update_trigger(model, params, self.trigger, self.mask,
                                            clip=self.clip, **self.update_kw)
        self.restamp()
        rec = {"iteration": iteration, "neuron": info.neuron, "steps": info.steps,
               "loss": info.loss, "activation": info.final_activation,
               "trigger_linf_pixels": self.pixel_linf()}
        self.updates.append(rec)
        if self.log is not None:
            self.log(rec)

    def state_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger.cpu(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trigger = state["trigger"].to(self.x_real.device)
        self.updates = list(state["updates"])


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------

def attack_metrics(predict_fn: Callable[[Tensor], Tensor], x_test: Tensor, y_test: Tensor,
                   trigger: Tensor, mask: Tensor, target: int = 0,
                   include_target: bool = False) -> dict[str, float]:
    """CTA on clean ``x_test`` and ASR = share of triggered test images predicted as ``target``.

    Args:
        predict_fn: images → predicted labels.
        x_test: (N, C, H, W) test images.
        y_test: (N,) labels.
        trigger: (C, H, W) trigger; mask: (C, H, W) boolean mask.
        target: the target label.
        include_target: also count target-class images (the released code's convention).
    """
    if len(x_test) != len(y_test) or len(x_test) == 0:
        raise GraphError(f"x_test/y_test: need equal, non-zero lengths, got {len(x_test)} "
                         f"and {len(y_test)}")
    cta = float((predict_fn(x_test) == y_test).float().mean())
    keep = torch.ones_like(y_test, dtype=torch.bool) if include_target else y_test != target
    if not bool(keep.any()):
        raise GraphError("y_test: no non-target test image to measure the ASR on")
    asr = float((predict_fn(stamp(x_test[keep], trigger, mask)) == target).float().mean())
    return {"cta": cta, "asr": asr}


# --------------------------------------------------------------------------------------------
# The digits experiment
# --------------------------------------------------------------------------------------------

@dataclass
class DigitsSplit:
    """sklearn digits as (N, 1, 8, 8) tensors, pixels/16 standardised with the train mean/std."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    mean: float
    std: float

    def normalize(self, pixels: float | Tensor) -> float | Tensor:
        return (pixels - self.mean) / self.std

    @property
    def valid_range(self) -> tuple[float, float]:
        """Normalised values of pixel 0 and pixel 1."""
        return float(self.normalize(0.0)), float(self.normalize(1.0))


def load_digits_split(seed: int = 0, test_size: float = 0.33,
                      device: str | torch.device = "cpu") -> DigitsSplit:
    """Stratified train/test split of sklearn's bundled digits (offline)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise GraphError(f"test_size: must be in (0, 1), got {test_size}")
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, stratify=y,
                                          random_state=seed)
    mean, std = float(xtr.mean()), float(xtr.std())
    dev = resolve_device(device)

    def prep(a: np.ndarray) -> Tensor:
        return torch.from_numpy((a - mean) / std).reshape(-1, 1, 8, 8).to(dev)

    return DigitsSplit(prep(xtr), torch.from_numpy(ytr).long().to(dev), prep(xte),
                       torch.from_numpy(yte).long().to(dev), mean, std)


def run_attack(attack: str = "doorping", method: str = "dd", *, clip_trigger: bool = False,
               portion: float = 0.01, trigger_size: int = 2, target: int = 0, seed: int = 0,
               dd_config: DDConfig | None = None, dc_config: DCConfig | None = None,
               hidden: int = 128, trigger_steps: int = 1000, eval_nets: int = 3,
               eval_epochs: int = 300, include_target: bool = False,
               checkpoint: str | Path | None = None, device: str | torch.device = "auto",
               log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Distil sklearn digits with an optional backdoor and measure CTA / ASR.

    DD uses an MLP(64, ``hidden``, 10) with a known init (the evaluation replays the distilled
    steps from that init); DC uses a 2-block ConvNet and trains ``eval_nets`` fresh networks.

    Args:
        attack: ``"clean"``, ``"naive"`` or ``"doorping"``.
        method: ``"dd"`` or ``"dc"``.
        clip_trigger: keep DOORPING's trigger inside the valid pixel range.
        portion: share of the real training set poisoned (the paper's 1 % by default; the
            benchmark and tests pass 5 %, as the toy training set is small).
        trigger_size: side of the square patch.
        target: target label.
        seed: data split, model init, poisoning and distillation seed.
        dd_config: DD hyper-parameters; dc_config: DC hyper-parameters.
        hidden: MLP width (DD).
        trigger_steps: Adam budget of each trigger update (released code: 1000).
        eval_nets: networks trained on the DC synthetic set.
        eval_epochs: their epochs.
        include_target: ASR convention (see :func:`attack_metrics`).
        checkpoint: distillation checkpoint file (resumed when it exists).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        log: receives progress records (distillation and trigger updates).

    Returns:
        ``{"cta", "asr", "asr_incl_target", "trigger_linf_pixels", "trigger_valid",
        "n_poison", "seconds", ...}``; the trigger L∞ is in pixel units (valid: ≤ 1).
    """
    if attack not in ATTACKS:
        raise GraphError(f"attack: expected one of {ATTACKS}, got {attack!r}")
    if method not in METHODS:
        raise GraphError(f"method: expected one of {METHODS}, got {method!r}")
    if not 0 <= target < 10:
        raise GraphError(f"target: digits has labels 0..9, got {target}")
    dev = resolve_device(device)
    start = time.perf_counter()
    seed_everything(seed)
    data = load_digits_split(seed, device=dev)
    mask = default_mask((1, 8, 8), trigger_size).to(dev)
    x_real, y_real = data.x_train.clone(), data.y_train.clone()
    lo, hi = data.valid_range
    hook: DoorPing | None = None
    n_poison = 0
    trigger = torch.full(mask.shape, hi, device=dev)  # white: NAIVEATTACK's patch
    if attack == "naive":
        x_real, y_real, idx = naive_poison(x_real, y_real, mask, target, portion, hi, seed)
        n_poison = len(idx)
    elif attack == "doorping":
        idx = poison_indices(len(x_real), portion, seed).to(dev)
        n_poison = len(idx)
        y_real[idx] = target
        gen = torch.Generator().manual_seed(seed)
        init = torch.randint(1, 256, mask.shape, generator=gen).float() / 255.0
        init = init.to(dev)
        trigger = torch.where(mask, data.normalize(init), torch.zeros_like(init))
        hook = DoorPing(x_real, idx, trigger, mask, clip=(lo, hi) if clip_trigger else None,
                        to_pixels=(data.std, data.mean), log=log, max_steps=trigger_steps)
    torch.manual_seed(seed)
    if method == "dd":
        model = MLP(64, hidden, 10).to(dev)
        res = distill_dd(model, x_real, y_real, 10, dd_config, seed, hook, checkpoint, log)
        params = res.train(model)

        def predict_fn(x: Tensor) -> Tensor:
            return predict(model, params, x)

        metrics = _metrics(predict_fn, data, hook.trigger if hook else trigger, mask, target)
        metrics["mean_step_lr"] = float(res.step_lrs.mean())
    else:
        model = ConvNet(1, 10, (8, 8)).to(dev)
        images, labels = distill_dc(model, x_real, y_real, 10, dc_config, seed, hook,
                                    checkpoint, log)
        runs = []
        for k in range(eval_nets):
            torch.manual_seed(seed * 1000 + k)
            net = ConvNet(1, 10, (8, 8)).to(dev)
            p = train_on_synthetic(net, images, labels, epochs=eval_epochs)
            runs.append(_metrics(lambda x, p=p, net=net: predict(net, p, x), data,
                                 hook.trigger if hook else trigger, mask, target))
        metrics = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    final = hook.trigger if hook else trigger
    linf = float((final[mask] * data.std + data.mean).abs().max())
    metrics.update({
        "asr": metrics["asr_incl_target"] if include_target else metrics["asr"],
        "trigger_linf_pixels": linf,
        "trigger_valid": bool(linf <= 1.0 + 1e-4 and float(final[mask].min()) >= lo - 1e-4),
        "n_poison": n_poison, "seconds": time.perf_counter() - start,
        "trigger_updates": len(hook.updates) if hook else 0,
    })
    return metrics


def _metrics(predict_fn: Callable[[Tensor], Tensor], data: DigitsSplit, trigger: Tensor,
             mask: Tensor, target: int) -> dict[str, float]:
    excl = attack_metrics(predict_fn, data.x_test, data.y_test, trigger, mask, target)
    incl = attack_metrics(predict_fn, data.x_test, data.y_test, trigger, mask, target, True)
    return {"cta": excl["cta"], "asr": excl["asr"], "asr_incl_target": incl["asr"]}


__all__ = [
    "ATTACKS", "METHODS", "DigitsSplit", "DoorPing", "TriggerUpdate", "attack_metrics",
    "default_mask", "get_params", "load_digits_split", "naive_poison", "neuron_activation",
    "poison_indices", "run_attack", "select_neuron", "stamp", "update_trigger", "weight_layers",
]
