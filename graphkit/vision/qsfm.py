"""QSFM: filter pruning without fine-tuning by the quantified similarity of feature maps.

Paper: Zidu Wang, Xuexin Liu, Long Huang, Yunqing Chen, Yufei Zhang, Zhikang Lin, Rui Wang,
"Model Pruning Based on Quantified Similarity of Feature Maps", IEEE Internet of Things Journal
2022, https://arxiv.org/abs/2105.06052.

**This is a reconstruction.** Only the abstract was available (no code was published), so the
paper's exact similarity formula, selection rule and per-layer ratios are unknown. What is
implemented is the mechanism the abstract describes, made to work without fine-tuning:

1. Hook a layer's post-activation maps ``F`` (N x C x H x W) on a calibration batch.
2. Similarity ``s_ij = corr(F_i, F_j)^2`` over (N, H, W), the R^2 of the least-squares fit
   ``F_j ~ a F_i + b`` (pluggable: ``"cosine"`` or any callable). Dead (constant) channels count as
   fully redundant.
3. Greedily remove the channel ``j`` with the largest ``max_i s_ij`` over surviving partners ``i``.
4. Compensate in the next layer: ``W'[:, i] += a W'[:, j]`` and ``bias += b * sum(W'[:, j])``
   (exact for 1x1 convs, linear layers and interior pixels; approximate at zero-padded borders).
   Compensations are applied in removal order, so partner chains compose. Filter ``j`` is deleted
   with its bias and BatchNorm entries; a BN between conv and activation is per-channel, so its
   entries simply go with the filter. If the next layer has no bias, the offset is folded into the
   BatchNorm that follows it (exact in eval mode), else a bias is added.

Architecture rules come from a model's ``qsfm_units()`` (see :mod:`graphkit.vision.cnn_zoo`:
ResNet-56 prunes the inner conv of each basic block so shortcut widths stay; MobileNetV2 measures
similarity at the depthwise output, drops the expand and depthwise filter and compensates on the
projection). Flat ``nn.Sequential`` CNNs are analysed automatically.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from graphkit.errors import GraphError
from graphkit.vision.cnn_zoo import mobilenet_v2, resnet56

__all__ = ["PruneReport", "count_macs", "count_params", "find_units", "mobilenet_v2", "prune",
           "resnet56", "similarity_matrix"]

_ACT = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.ELU, nn.Tanh, nn.Sigmoid,
        nn.Hardswish)
_PASS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten,
         nn.Dropout)


@dataclass
class PruneReport:
    """What :func:`prune` did: sizes before/after and the removed channels (original indices)."""

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    removed: dict[str, list[int]] = field(default_factory=dict)
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)
    criterion: str = "qsfm"

    @property
    def params_reduction(self) -> float:
        return 1.0 - self.params_after / self.params_before

    @property
    def macs_reduction(self) -> float:
        return 1.0 - self.macs_after / self.macs_before

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params_reduction": self.params_reduction,
                "macs_reduction": self.macs_reduction}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, example: Tensor) -> int:
    """Multiply-adds of one forward pass (convs and matmuls: half of torch's FLOP count)."""
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(example)
    model.train(was_training)
    return counter.get_total_flops() // 2


def find_units(model: nn.Module) -> list[dict[str, Any]]:
    """The prunable units of ``model``: its ``qsfm_units()``, or those of a flat ``nn.Sequential``.

    A unit is a dict with ``name``, ``producers`` (list of ``(conv, bn or None)`` whose output
    channel ``j`` goes; depthwise ones also lose input channel ``j``), ``tap`` (the module whose
    output are the maps), ``consumer`` (next conv or linear) and ``consumer_bn``.
    """
    if hasattr(model, "qsfm_units"):
        return list(model.qsfm_units())
    if not isinstance(model, nn.Sequential):
        raise GraphError(f"prune: {type(model).__name__} is neither an nn.Sequential nor defines "
                         "qsfm_units(); add that method to say which filters may be pruned")
    mods, units = list(model), []
    for k, m in enumerate(mods):
        if not isinstance(m, nn.Conv2d) or m.groups != 1:
            continue
        p, bn, tap = k + 1, None, m
        if p < len(mods) and isinstance(mods[p], nn.BatchNorm2d):
            bn = tap = mods[p]
            p += 1
        if p < len(mods) and isinstance(mods[p], _ACT):
            tap = mods[p]
            p += 1
        while p < len(mods) and isinstance(mods[p], _PASS):
            p += 1
        if p >= len(mods) or not (isinstance(mods[p], nn.Linear)
                                  or (isinstance(mods[p], nn.Conv2d) and mods[p].groups == 1)):
            continue
        after = mods[p + 1] if p + 1 < len(mods) else None
        units.append(dict(name=str(k), producers=[(m, bn)], tap=tap, consumer=mods[p],
                          consumer_bn=after if isinstance(after, nn.BatchNorm2d) else None))
    return units


def similarity_matrix(x: Tensor, kind: str | Callable[[Tensor], Tensor] = "corr2") -> Tensor:
    """``S[i, j]``: how well channel ``i`` explains channel ``j``; ``x`` is (C, M) samples.

    Args:
        x: one row per channel.
        kind: ``"corr2"`` (squared Pearson correlation, the default), ``"cosine"``, or a callable
            returning a (C, C) matrix. Constant channels get ``S[:, j] = 1`` (fully redundant).
    """
    if callable(kind):
        return kind(x)
    var = x.var(1, unbiased=False)
    dead = var <= 1e-10 * var.max().clamp_min(1e-30)
    if kind == "corr2":
        xc = x - x.mean(1, keepdim=True)
        cov = xc @ xc.T / x.shape[1]
        cov = (cov + cov.T) / 2  # bitwise symmetric: a duplicate pair then ties exactly
        denom = var[:, None] * var[None, :]
        s = torch.where(denom > 0, cov ** 2 / denom.clamp_min(1e-30), torch.zeros_like(cov))
    elif kind == "cosine":
        norm = x.norm(dim=1).clamp_min(1e-30)
        s = (x @ x.T) / (norm[:, None] * norm[None, :])
    else:
        raise GraphError(f"similarity: unknown {kind!r}; use 'corr2', 'cosine' or a callable")
    s[:, dead] = 1.0
    return s


def _greedy(maps: Tensor, n_remove: int, similarity) -> list[tuple[int, int, float, float]]:
    """Removal order ``[(j, partner i, a, b)]`` with ``F_j ~ a F_i + b`` on the calibration maps."""
    c = maps.shape[1]
    x = maps.transpose(0, 1).reshape(c, -1).double()
    s = similarity_matrix(x, similarity).double()
    mean = x.mean(1)
    xc = x - mean[:, None]
    var = (xc ** 2).mean(1)
    alive = torch.ones(c, dtype=torch.bool)
    order = []
    for _ in range(n_remove):
        masked = s.clone()
        masked[~alive, :] = -torch.inf
        masked[:, ~alive] = -torch.inf
        masked.fill_diagonal_(-torch.inf)
        score, partner = masked.max(0)
        # ties go to the later channel, so an appended copy is removed before its original
        j = c - 1 - int(torch.argmax(score.flip(0)))
        i = int(partner[j])
        a = float((xc[i] @ xc[j]) / x.shape[1] / var[i]) if var[i] > 0 else 0.0
        order.append((j, i, a, float(mean[j] - a * mean[i])))
        alive[j] = False
    return order


def _capture(model: nn.Module, tap: nn.Module, batch: Tensor) -> Tensor:
    class _Stop(Exception):
        pass

    store: list[Tensor] = []

    def hook(_m, _inp, out):
        store.append(out.detach())
        raise _Stop

    handle = tap.register_forward_hook(hook)
    try:
        model(batch)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not store:
        raise GraphError("prune: a unit's tap module was never called in the forward pass")
    return store[0]


def _slice_bn(bn: nn.BatchNorm2d, keep: Tensor) -> None:
    bn.weight = nn.Parameter(bn.weight.data[keep].clone())
    bn.bias = nn.Parameter(bn.bias.data[keep].clone())
    bn.running_mean = bn.running_mean[keep].clone()
    bn.running_var = bn.running_var[keep].clone()
    bn.num_features = len(keep)


def _apply(unit: dict[str, Any], c: int, order: Sequence[tuple[int, int, float, float]],
           compensate: bool) -> list[int]:
    removed = [j for j, *_ in order]
    keep = torch.tensor(sorted(set(range(c)) - set(removed)), dtype=torch.long)
    cons = unit["consumer"]
    w = cons.weight.data
    w = w.view(w.shape[0], c, -1).clone()  # (out, C, kernel or spatial positions)
    delta = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
    if compensate:
        for j, i, a, b in order:
            w[:, i] += a * w[:, j]
            delta += b * w[:, j].sum(1)
            w[:, j] = 0
    w = w[:, keep.to(w.device)]
    if isinstance(cons, nn.Linear):
        cons.weight = nn.Parameter(w.reshape(w.shape[0], -1).contiguous())
        cons.in_features = cons.weight.shape[1]
    else:
        cons.weight = nn.Parameter(w.reshape(w.shape[0], len(keep), *cons.kernel_size)
                                   .contiguous())
        cons.in_channels = len(keep)
    if compensate:
        if cons.bias is not None:
            cons.bias.data += delta
        elif unit.get("consumer_bn") is not None:
            unit["consumer_bn"].running_mean -= delta
        else:
            cons.bias = nn.Parameter(delta)
    for conv, bn in unit["producers"]:
        depthwise = conv.groups > 1
        kd = keep.to(conv.weight.device)
        conv.weight = nn.Parameter(conv.weight.data[kd].clone())
        if conv.bias is not None:
            conv.bias = nn.Parameter(conv.bias.data[kd].clone())
        conv.out_channels = len(keep)
        if depthwise:
            conv.in_channels = conv.groups = len(keep)
        if bn is not None:
            _slice_bn(bn, kd)
    return removed


def prune(model: nn.Module, calib_batch: Tensor, ratio: float | dict[str, float] = 0.25,
          layers: Sequence[str] | None = None, criterion: str = "qsfm",
          similarity: str | Callable[[Tensor], Tensor] = "corr2", compensate: bool | None = None,
          seed: int = 0) -> tuple[nn.Module, PruneReport]:
    """Prune filters of ``model`` without fine-tuning; the input model is left untouched.

    Args:
        model: an ``nn.Sequential`` CNN or a model with ``qsfm_units()``.
        calib_batch: (N, C, H, W) calibration images (no labels needed).
        ratio: fraction of each selected unit's channels to remove, in (0, 1); or a dict
            ``{unit name: ratio}`` (then ``layers`` defaults to its keys).
        layers: unit names to prune (default: all units, see :func:`find_units`).
        criterion: ``"qsfm"`` (similarity), ``"l1"`` (smallest filter L1 norm) or ``"random"``;
            the last two are the usual baselines.
        similarity: ``"corr2"``, ``"cosine"`` or a callable, see :func:`similarity_matrix`.
        compensate: next-layer compensation (default: only for ``"qsfm"``).
        seed: for ``"random"``.

    Returns:
        ``(pruned_model, report)``; units are pruned one after another, each on the maps of the
        already-pruned model.
    """
    if not isinstance(calib_batch, Tensor) or calib_batch.ndim != 4 or len(calib_batch) == 0:
        raise GraphError("calib_batch: expected a non-empty (N, C, H, W) tensor, got "
                         f"{getattr(calib_batch, 'shape', type(calib_batch))}")
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and calib_batch.shape[1] != first.in_channels:
        raise GraphError(f"calib_batch: has {calib_batch.shape[1]} channels, the model's first "
                         f"conv expects {first.in_channels}")
    if criterion not in ("qsfm", "l1", "random"):
        raise GraphError(f"criterion: unknown {criterion!r}; use 'qsfm', 'l1' or 'random'")
    compensate = criterion == "qsfm" if compensate is None else compensate
    model = copy.deepcopy(model).eval()
    units = {u["name"]: u for u in find_units(model)}
    if not units:
        raise GraphError("prune: no prunable conv -> act -> conv/linear unit found in the model")
    if isinstance(ratio, dict):
        ratios = dict(ratio)
        names = list(layers) if layers is not None else list(ratios)
    else:
        names = list(layers) if layers is not None else list(units)
        ratios = {n: ratio for n in names}
    for n in names:
        if n not in units:
            raise GraphError(f"layers: unknown unit {n!r}; available: {list(units)}")
        r = ratios.get(n)
        if not isinstance(r, (int, float)) or not 0 < r < 1:
            raise GraphError(f"ratio: must be in (0, 1), got {r!r} for unit {n!r}")
    dev = next(model.parameters()).device
    batch = calib_batch.to(dev)
    example = batch[:1]
    report = PruneReport(count_params(model), 0, count_macs(model, example), 0,
                         criterion=criterion)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n in names:
            unit = units[n]
            c = unit["producers"][0][0].out_channels
            k = min(int(round(ratios[n] * c)), c - 1)
            if k == 0:
                report.channels[n] = (c, c)
                continue
            if criterion == "qsfm":
                order = _greedy(_capture(model, unit["tap"], batch), k, similarity)
            else:
                if criterion == "l1":
                    w = unit["producers"][0][0].weight.detach()
                    ranked = w.abs().flatten(1).sum(1).argsort().tolist()
                else:
                    ranked = torch.randperm(c, generator=gen).tolist()
                order = [(j, 0, 0.0, 0.0) for j in ranked[:k]]
            report.removed[n] = sorted(_apply(unit, c, order, compensate))
            report.channels[n] = (c, c - k)
    report.params_after = count_params(model)
    report.macs_after = count_macs(model, example)
    return model, report
