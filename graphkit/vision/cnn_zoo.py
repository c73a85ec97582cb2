"""Small CNN builders and an offline image task shared by the vision adapters.

* :func:`resnet56`: the CIFAR ResNet-56 of He et al., "Deep Residual Learning for Image
  Recognition", CVPR 2016, https://arxiv.org/abs/1512.03385 (3 stages x 9 basic blocks, widths
  16/32/64, parameter-free option-A shortcuts: 853,018 parameters, about 125.5M multiply-adds at
  32x32).
* :func:`mobilenet_v2`: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
  CVPR 2018, https://arxiv.org/abs/1801.04381 (3,504,872 parameters at width 1.0, 1000 classes).
* :func:`digits_cnn` and :func:`load_digits_tensors`: scikit-learn's 8x8 digits as a tensor task,
  optionally upsampled, for CI-sized training runs without any download.

Each builder's model has a ``qsfm_units()`` method that tells :mod:`graphkit.vision.qsfm` which
filters may be pruned and where to compensate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.errors import GraphError
from graphkit.runtime import resolve_device

__all__ = ["BasicBlock", "InvertedResidual", "MobileNetV2", "ResNetCifar", "accuracy",
           "digits_cnn", "fit_classifier", "load_digits_splits", "load_digits_tensors",
           "mobilenet_v2",
           "plant_duplicates", "resnet56"]


class BasicBlock(nn.Module):
    """CIFAR basic block; the shortcut subsamples and zero-pads channels (option A, no weights)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, c_out - c_in

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        short = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.pad:
            short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + short)


class ResNetCifar(nn.Module):
    """CIFAR ResNet-(6n+2) with three stages of ``n`` basic blocks.

    Args:
        depth: 6n + 2 (56 gives ResNet-56).
        num_classes: head size.
        widths: the three stage widths.
    """

    def __init__(self, depth: int = 56, num_classes: int = 10,
                 widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        if (depth - 2) % 6 or depth < 8:
            raise GraphError(f"ResNetCifar: depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks, c_in = [], widths[0]
        for s, w in enumerate(widths):
            for b in range(n):
                blocks.append(BasicBlock(c_in, w, 2 if s > 0 and b == 0 else 1))
                c_in = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.Linear)):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise GraphError(f"ResNetCifar: expected input (N, 3, H, W), got {tuple(x.shape)}")
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target)

    def qsfm_units(self) -> list[dict]:
        """The inner conv of every block: its filters go, ``conv2`` compensates (shortcuts stay)."""
        return [dict(name=f"blocks.{i}", producers=[(b.conv1, b.bn1)], tap=b.relu1,
                     consumer=b.conv2, consumer_bn=b.bn2) for i, b in enumerate(self.blocks)]


def resnet56(num_classes: int = 10) -> ResNetCifar:
    """ResNet-56 for 32x32 inputs (853,018 parameters with 10 classes)."""
    return ResNetCifar(56, num_classes)


def _divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand + BN + ReLU6, 3x3 depthwise + BN + ReLU6, 1x1 project + BN."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.use_res = stride == 1 and c_in == c_out
        self.expand = None
        if expand != 1:
            self.expand = nn.Sequential(nn.Conv2d(c_in, hidden, 1, bias=False),
                                        nn.BatchNorm2d(hidden), nn.ReLU6())
        self.dw = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)
        self.dw_bn = nn.BatchNorm2d(hidden)
        self.dw_act = nn.ReLU6()
        self.project = nn.Conv2d(hidden, c_out, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        h = self.expand(x) if self.expand is not None else x
        out = self.project_bn(self.project(self.dw_act(self.dw_bn(self.dw(h)))))
        return x + out if self.use_res else out


class MobileNetV2(nn.Module):
    """MobileNetV2 (ImageNet layout; works at any input size >= 32).

    Args:
        num_classes: head size.
        width_mult: channel multiplier (channels rounded to multiples of 8).
        dropout: dropout before the classifier.
    """

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if width_mult <= 0:
            raise GraphError(f"MobileNetV2: width_mult must be positive, got {width_mult}")
        c_in = _divisible(32 * width_mult)
        last = _divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [nn.Conv2d(3, c_in, 3, 2, 1, bias=False),
                                   nn.BatchNorm2d(c_in), nn.ReLU6()]
        for t, c, n, s in self.SETTINGS:
            c_out = _divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                c_in = c_out
        layers += [nn.Conv2d(c_in, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise GraphError(f"MobileNetV2: expected input (N, 3, H, W), got {tuple(x.shape)}")
        return self.classifier(self.features(x).mean((2, 3)))

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target)

    def qsfm_units(self) -> list[dict]:
        """Every block with an expansion: similarity at the depthwise output; channel j drops the
        expand and depthwise filter j; the 1x1 projection compensates."""
        units = []
        for i, b in enumerate(self.features):
            if isinstance(b, InvertedResidual) and b.expand is not None:
                units.append(dict(name=f"features.{i}",
                                  producers=[(b.expand[0], b.expand[1]), (b.dw, b.dw_bn)],
                                  tap=b.dw_act, consumer=b.project, consumer_bn=b.project_bn))
        return units


def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0) -> MobileNetV2:
    """MobileNetV2 (3,504,872 parameters at width 1.0 with 1000 classes)."""
    return MobileNetV2(num_classes, width_mult)


def digits_cnn(width1: int = 32, width2: int = 64, in_chans: int = 1,
               num_classes: int = 10) -> nn.Sequential:
    """conv3x3 -> ReLU -> conv3x3 -> ReLU -> global average pool -> linear (no padding, for 8x8).

    A plain ``nn.Sequential``: :func:`graphkit.vision.qsfm.prune` finds its units itself.
    """
    return nn.Sequential(nn.Conv2d(in_chans, width1, 3), nn.ReLU(), nn.Conv2d(width1, width2, 3),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width2, num_classes))


def plant_duplicates(model: nn.Sequential, dup: list[int], seed: int = 0) -> nn.Sequential:
    """A :func:`digits_cnn` widened with copies of its first-conv filters ``dup`` (appended last).

    The second conv's weights are split randomly between each original and its copy, so the
    function is unchanged: a pruner must find exactly the planted copies.
    """
    gen = torch.Generator().manual_seed(seed)
    conv1, conv2 = model[0], model[2]
    wide = digits_cnn(conv1.out_channels + len(dup), conv2.out_channels, conv1.in_channels,
                      model[-1].out_features)
    wide.load_state_dict({k: v for k, v in model.state_dict().items()
                          if not k.startswith(("0.", "2."))}, strict=False)
    with torch.no_grad():
        wide[0].weight.copy_(torch.cat([conv1.weight, conv1.weight[dup]]))
        wide[0].bias.copy_(torch.cat([conv1.bias, conv1.bias[dup]]))
        frac = torch.rand(conv2.out_channels, len(dup), 1, 1, generator=gen)
        w = conv2.weight.clone()
        copies = w[:, dup] * (1 - frac)
        w[:, dup] = w[:, dup] * frac
        wide[2].weight.copy_(torch.cat([w, copies], 1))
        wide[2].bias.copy_(conv2.bias)
    return wide.eval()


def load_digits_tensors(size: int = 8, channels: int = 1, test_size: float = 0.3,
                        seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's digits (1,797 images of 8x8, bundled, offline) as float tensors in [0, 1].

    Args:
        size: output side; bilinear upsampling when larger than 8.
        channels: repeat the grey channel (3 for RGB models).
        test_size: stratified test fraction.
        seed: split seed.

    Returns:
        ``(x_train, y_train, x_test, y_test)``; 1,257 / 540 images at the default split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise GraphError(f"test_size must be in (0, 1), got {test_size}")
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.repeat(1, channels, 1, 1)
    y = torch.tensor(d.target)
    idx_tr, idx_te = train_test_split(torch.arange(len(y)).numpy(), test_size=test_size,
                                      stratify=d.target, random_state=seed)
    return x[idx_tr], y[idx_tr], x[idx_te], y[idx_te]


def load_digits_splits(size: int = 8, channels: int = 1, val_size: float = 0.2,
                       test_size: float = 0.3, seed: int = 0) -> tuple[Tensor, ...]:
    """Digits with a validation part carved (stratified, seeded) from the training part.

    The test part is exactly that of :func:`load_digits_tensors` with the same ``seed`` and
    ``test_size``; validation images never overlap it, so recipes can be chosen without test labels.

    Args:
        size: output side (see :func:`load_digits_tensors`).
        channels: repeat the grey channel.
        val_size: fraction of the training part held out for validation.
        test_size: stratified test fraction of the whole set.
        seed: split seed (both splits).

    Returns:
        ``(x_train, y_train, x_val, y_val, x_test, y_test)``; 1,005 / 252 / 540 at the defaults.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < val_size < 1:
        raise GraphError(f"val_size must be in (0, 1), got {val_size}")
    x_tr, y_tr, x_te, y_te = load_digits_tensors(size, channels, test_size, seed)
    idx_tr, idx_va = train_test_split(torch.arange(len(y_tr)).numpy(), test_size=val_size,
                                      stratify=y_tr.numpy(), random_state=seed)
    return x_tr[idx_tr], y_tr[idx_tr], x_tr[idx_va], y_tr[idx_va], x_te, y_te


def fit_classifier(model: nn.Module, x: Tensor, y: Tensor, epochs: int = 20, lr: float = 3e-3,
                   weight_decay: float = 0.0, batch_size: int = 64, seed: int = 0,
                   schedule: str = "onecycle",
                   device: str | torch.device = "auto") -> nn.Module:
    """Minimal AdamW classifier training (uses ``model.loss`` when present).

    ``schedule`` is ``"onecycle"`` (warm-up then cosine decay) or ``"constant"``.

    Returns the model in eval mode, on ``device``.
    """
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    model = model.to(dev).train()
    loss_fn = getattr(model, "loss", None) or F.cross_entropy
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(y) // batch_size)
    if schedule not in ("onecycle", "constant"):
        raise GraphError(f"schedule: unknown {schedule!r}; use 'onecycle' or 'constant'")
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.15)
             if schedule == "onecycle" else None)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), batch_size):
            idx = perm[start:start + batch_size]
            opt.zero_grad()
            loss_fn(model(x[idx].to(dev)), y[idx].to(dev)).backward()
            opt.step()
            if sched is not None:
                sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on ``(x, y)``."""
    dev = next(model.parameters()).device
    model.eval()
    correct = sum(int((model(x[i:i + batch_size].to(dev)).argmax(1).cpu()
                       == y[i:i + batch_size]).sum()) for i in range(0, len(y), batch_size))
    return correct / len(y)
