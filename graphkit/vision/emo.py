"""EMO: the inverted Residual Mobile Block (iRMB) and the EMO backbones.

Paper: Jiangning Zhang, Xiangtai Li, Jian Li, Liang Liu, Zhucun Xue, Boshen Zhang, Zhengkai Jiang,
Tianxin Huang, Yabiao Wang, Chengjie Wang, "Rethinking Mobile Block for Efficient Attention-based
Models", ICCV 2023, https://arxiv.org/abs/2301.01146 (official code: github.com/zhangzjn/EMO).

Written from the paper and the official code's structure (not copied): the block keeps the code's
details that decide the parameter count and the maths, namely the *strided* attention windows
(window ``(i, j)`` of an ``H x W`` map gathers rows ``i, i + H/ws, ...``), Q/K from the un-expanded
input while V is the expanded projection, and two residuals (an inner one around the depthwise conv
and SE, an outer one with drop-path). With a 1000-class head the four variants have exactly
1,361,168 / 2,377,472 / 5,108,848 / 6,168,496 parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.errors import GraphError

__all__ = ["EMO", "LayerNorm2d", "SqueezeExcite", "emo_1m", "emo_2m", "emo_5m", "emo_6m", "iRMB"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` map (eps 1e-6 as in EMO)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SqueezeExcite(nn.Module):
    """Squeeze-excite with a 1x1-conv bottleneck of ``round(channels * rd_ratio)`` (timm layout)."""

    def __init__(self, channels: int, rd_ratio: float = 0.25,
                 act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        rd = max(1, round(channels * rd_ratio))
        self.conv_reduce = nn.Conv2d(channels, rd, 1, bias=True)
        self.act = act_layer()
        self.conv_expand = nn.Conv2d(rd, channels, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        s = self.conv_expand(self.act(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * s.sigmoid()


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device,
                           dtype=x.dtype).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


_NORMS = {"bn": nn.BatchNorm2d, "bn_2d": nn.BatchNorm2d, "ln": LayerNorm2d, "ln_2d": LayerNorm2d}
_ACTS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}


def _norm(name: str | type[nn.Module], dim: int) -> nn.Module:
    if isinstance(name, str):
        if name not in _NORMS:
            raise GraphError(f"norm_layer: unknown {name!r}; use one of {sorted(_NORMS)}")
        return _NORMS[name](dim)
    return name(dim)


def _act(name: str | type[nn.Module]) -> type[nn.Module]:
    if isinstance(name, str):
        if name not in _ACTS:
            raise GraphError(f"act_layer: unknown {name!r}; use one of {sorted(_ACTS)}")
        return _ACTS[name]
    return name


def _conv_act(dim_in: int, dim_out: int, bias: bool, act: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(dim_in, dim_out, 1, bias=bias), act())


class iRMB(nn.Module):  # noqa: N801 (the paper's name)
    """Inverted Residual Mobile Block: window attention + depthwise conv in an inverted residual.

    Args:
        dim_in: input channels.
        dim_out: output channels.
        norm_in: normalise the input first.
        has_skip: use the residuals (only honoured when ``dim_in == dim_out`` and ``stride == 1``).
        exp_ratio: expansion; the inner width is ``int(dim_in * exp_ratio)``.
        norm_layer: ``"bn_2d"``, ``"ln_2d"`` or a module class (applied to the input).
        act_layer: ``"silu"``, ``"gelu"``, ``"relu"`` or a module class (V projection and SE).
        v_proj: without attention, expand with a 1x1 conv + act (else identity).
        dw_ks: depthwise kernel size.
        stride: depthwise stride (2 downsamples).
        se_ratio: squeeze-excite reduction ratio; 0 disables SE.
        dim_head: channels per attention head (``dim_in`` must be a multiple).
        window_size: attention window; ``<= 0`` means one global window.
        attn_s: use window self-attention.
        qkv_bias: bias in the Q/K and V 1x1 convs.
        attn_pre: attend over the un-expanded ``x`` and then expand with V (EMO's setting);
            otherwise attend over ``V(x)``.
        drop_path: stochastic-depth probability of the outer residual.
    """

    def __init__(self, dim_in: int, dim_out: int, norm_in: bool = True, has_skip: bool = True,
                 exp_ratio: float = 1.0, norm_layer: str | type[nn.Module] = "bn_2d",
                 act_layer: str | type[nn.Module] = "relu", v_proj: bool = True, dw_ks: int = 3,
                 stride: int = 1, se_ratio: float = 0.0, dim_head: int = 64, window_size: int = 7,
                 attn_s: bool = True, qkv_bias: bool = False, attn_pre: bool = False,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        if dim_in < 1 or dim_out < 1:
            raise GraphError(f"iRMB: dim_in/dim_out must be positive, got {dim_in}/{dim_out}")
        if stride not in (1, 2):
            raise GraphError(f"iRMB: stride must be 1 or 2, got {stride}")
        act = _act(act_layer)
        self.dim_in, self.dim_out = dim_in, dim_out
        dim_mid = int(dim_in * exp_ratio)
        self.has_skip = has_skip and dim_in == dim_out and stride == 1
        self.norm = _norm(norm_layer, dim_in) if norm_in else nn.Identity()
        self.attn_s = attn_s
        if attn_s:
            if dim_head < 1 or dim_in % dim_head:
                raise GraphError(f"iRMB: dim_in={dim_in} is not a multiple of dim_head={dim_head}")
            self.dim_head, self.num_head = dim_head, dim_in // dim_head
            self.window_size, self.attn_pre = window_size, attn_pre
            self.qk = nn.Conv2d(dim_in, 2 * dim_in, 1, bias=qkv_bias)
            self.v = _conv_act(dim_in, dim_mid, qkv_bias, act)
        else:
            self.v = _conv_act(dim_in, dim_mid, qkv_bias, act) if v_proj else nn.Identity()
            if not v_proj and dim_mid != dim_in:
                raise GraphError("iRMB: v_proj=False needs exp_ratio 1 (no expansion without V)")
        # padding ceil((k - s) / 2) keeps the official code's output sizes for odd k
        self.conv_local = nn.Sequential(
            nn.Conv2d(dim_mid, dim_mid, dw_ks, stride, -(-(dw_ks - stride) // 2), groups=dim_mid,
                      bias=False),
            nn.BatchNorm2d(dim_mid), nn.SiLU())
        self.se = SqueezeExcite(dim_mid, se_ratio, act) if se_ratio > 0 else nn.Identity()
        self.proj = nn.Conv2d(dim_mid, dim_out, 1, bias=False)
        self.drop_path = DropPath(drop_path)

    def _windows(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        ws_h, ws_w = (H, W) if self.window_size <= 0 else (self.window_size,) * 2
        pad_b, pad_r = (-H) % ws_h, (-W) % ws_w
        x = F.pad(x, (0, pad_r, 0, pad_b))
        n1, n2 = (H + pad_b) // ws_h, (W + pad_r) // ws_w
        # strided windows: padded row r = h1 * n1 + i belongs to window row i
        xw = x.view(B, C, ws_h, n1, ws_w, n2).permute(0, 3, 5, 1, 2, 4)
        xw = xw.reshape(B * n1 * n2, C, ws_h, ws_w)
        out = self._attend(xw)
        c_out = out.shape[1]
        out = out.view(B, n1, n2, c_out, ws_h, ws_w).permute(0, 3, 4, 1, 5, 2)
        return out.reshape(B, c_out, H + pad_b, W + pad_r)[:, :, :H, :W]

    def _attend(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        heads, dh = self.num_head, self.dim_head
        qk = self.qk(x).view(b, 2, heads, dh, h * w).transpose(-1, -2)
        attn = (qk[:, 0] @ qk[:, 1].transpose(-1, -2) * dh ** -0.5).softmax(dim=-1)
        src = x if self.attn_pre else self.v(x)
        vals = src.reshape(b, heads, -1, h * w).transpose(-1, -2)
        out = (attn @ vals).transpose(-1, -2).reshape(b, -1, h, w)
        return self.v(out) if self.attn_pre else out

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.dim_in:
            raise GraphError(f"iRMB: expected input (N, {self.dim_in}, H, W), got "
                             f"{tuple(x.shape)}")
        shortcut = x
        x = self.norm(x)
        x = self._windows(x) if self.attn_s else self.v(x)
        local = self.se(self.conv_local(x))
        x = x + local if self.has_skip else local
        x = self.proj(x)
        return shortcut + self.drop_path(x) if self.has_skip else x


class EMO(nn.Module):
    """The EMO backbone: a stem, four iRMB stages, LayerNorm, global pooling and a linear head.

    The first block of each stage downsamples (stride 2, no skip, no attention, doubled expansion);
    the others are residual iRMBs with attention where ``attn_ss`` says so.

    Args:
        num_classes: head size.
        in_chans: input channels.
        depths, embed_dims, exp_ratios, dim_heads: per-stage settings (four entries each).
        stem_dim: stem width.
        norm_layers, act_layers, dw_kss, se_ratios, window_sizes, attn_ss: per-stage settings.
        qkv_bias: bias in the Q/K/V convs.
        attn_pre: see :class:`iRMB`.
        drop_path: final stochastic-depth rate (linearly increasing over blocks).
        label_smoothing: used by :meth:`loss` (the EMO recipe uses 0.1).
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3,
                 depths: Sequence[int] = (2, 2, 8, 3), stem_dim: int = 24,
                 embed_dims: Sequence[int] = (32, 48, 80, 168),
                 exp_ratios: Sequence[float] = (2.0, 2.5, 3.0, 3.5),
                 norm_layers: Sequence[str] = ("bn_2d", "bn_2d", "ln_2d", "ln_2d"),
                 act_layers: Sequence[str] = ("silu", "silu", "gelu", "gelu"),
                 dw_kss: Sequence[int] = (3, 3, 5, 5), se_ratios: Sequence[float] = (0, 0, 0, 0),
                 dim_heads: Sequence[int] = (16, 16, 20, 21),
                 window_sizes: Sequence[int] = (7, 7, 7, 7),
                 attn_ss: Sequence[bool] = (False, False, True, True), qkv_bias: bool = True,
                 attn_pre: bool = True, drop_path: float = 0.0,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        per_stage = {"depths": depths, "embed_dims": embed_dims, "exp_ratios": exp_ratios,
                     "norm_layers": norm_layers, "act_layers": act_layers, "dw_kss": dw_kss,
                     "se_ratios": se_ratios, "dim_heads": dim_heads,
                     "window_sizes": window_sizes, "attn_ss": attn_ss}
        n = len(depths)
        for key, val in per_stage.items():
            if len(val) != n:
                raise GraphError(f"EMO: {key} has {len(val)} entries, depths has {n}")
        if num_classes < 1 or in_chans < 1:
            raise GraphError(f"EMO: num_classes/in_chans must be positive, got "
                             f"{num_classes}/{in_chans}")
        self.in_chans, self.label_smoothing = in_chans, label_smoothing
        dpr = torch.linspace(0, drop_path, sum(depths)).tolist()
        self.stage0 = nn.Sequential(
            nn.Conv2d(in_chans, stem_dim, dw_kss[0], 2, dw_kss[0] // 2, bias=True),
            nn.BatchNorm2d(stem_dim),
            iRMB(stem_dim, stem_dim, norm_in=False, has_skip=False, exp_ratio=1,
                 norm_layer=norm_layers[0], act_layer=act_layers[0], v_proj=False,
                 dw_ks=dw_kss[0], se_ratio=1, attn_s=False))
        stages, dim_prev, k = [], stem_dim, 0
        for i in range(n):
            blocks = []
            for j in range(depths[i]):
                first = j == 0
                blocks.append(iRMB(
                    dim_prev, embed_dims[i], norm_in=True, has_skip=not first,
                    exp_ratio=exp_ratios[i] * (2 if first else 1), norm_layer=norm_layers[i],
                    act_layer=act_layers[i], v_proj=True, dw_ks=dw_kss[i],
                    stride=2 if first else 1, se_ratio=se_ratios[i], dim_head=dim_heads[i],
                    window_size=window_sizes[i], attn_s=attn_ss[i] and not first,
                    qkv_bias=qkv_bias, attn_pre=attn_pre, drop_path=dpr[k]))
                dim_prev, k = embed_dims[i], k + 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.norm = _norm(norm_layers[-1], dim_prev)
        self.head = nn.Linear(dim_prev, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch defaults for convs; truncated normal (std 0.02) for linear layers; unit norms."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                m.reset_parameters()
            elif isinstance(m, nn.Conv2d):
                m.reset_parameters()
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()

    def forward_features(self, x: Tensor) -> Tensor:
        """The final feature map, before the last norm."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise GraphError(f"EMO: expected input (N, {self.in_chans}, H, W), got "
                             f"{tuple(x.shape)}")
        x = self.stage0(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(self.forward_features(x)).mean((2, 3)))

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy with the model's label smoothing."""
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)


_VARIANTS = {
    "1m": dict(depths=(2, 2, 8, 3), embed_dims=(32, 48, 80, 168),
               exp_ratios=(2.0, 2.5, 3.0, 3.5), dim_heads=(16, 16, 20, 21), drop_path=0.04036),
    "2m": dict(depths=(3, 3, 9, 3), embed_dims=(32, 48, 120, 200),
               exp_ratios=(2.0, 2.5, 3.0, 3.5), dim_heads=(16, 16, 20, 20), drop_path=0.05),
    "5m": dict(depths=(3, 3, 9, 3), embed_dims=(48, 72, 160, 288),
               exp_ratios=(2.0, 3.0, 4.0, 4.0), dim_heads=(24, 24, 32, 32), drop_path=0.05),
    "6m": dict(depths=(3, 3, 9, 3), embed_dims=(48, 72, 160, 320),
               exp_ratios=(2.0, 3.0, 4.0, 5.0), dim_heads=(16, 24, 20, 32), drop_path=0.05),
}


def _variant(name: str, **kwargs) -> EMO:
    cfg = dict(_VARIANTS[name])
    cfg.update(kwargs)
    return EMO(**cfg)


def emo_1m(**kwargs) -> EMO:
    """EMO-1M (1,361,168 parameters with 1000 classes); ``kwargs`` override :class:`EMO`."""
    return _variant("1m", **kwargs)


def emo_2m(**kwargs) -> EMO:
    """EMO-2M (2,377,472 parameters with 1000 classes)."""
    return _variant("2m", **kwargs)


def emo_5m(**kwargs) -> EMO:
    """EMO-5M (5,108,848 parameters with 1000 classes)."""
    return _variant("5m", **kwargs)


def emo_6m(**kwargs) -> EMO:
    """EMO-6M (6,168,496 parameters with 1000 classes)."""
    return _variant("6m", **kwargs)
