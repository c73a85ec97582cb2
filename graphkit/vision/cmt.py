"""CMT: image and LiDAR tokens in, 3D boxes out, geometry only through coordinate encodings.

Paper: Junjie Yan, Yingfei Liu, Jianjian Sun, Fan Jia, Shuailin Li, Tiancai Wang, Xiangyu Zhang,
"Cross Modal Transformer: Towards Fast and Robust 3D Object Detection", ICCV 2023,
https://arxiv.org/abs/2301.01283 (official code: https://github.com/junjie18/CMT).

The equations follow the official code as summarised in the project's paper notes
(``cmt_head.py`` / ``cmt_transformer.py``):

* :func:`pos2embed` - sine encoding with the code's linear frequency schedule
  ``dim_t[k] = 2*floor(k/2)/num_feats + 1`` over ``2*pi``-scaled coordinates (``standard=True``
  gives the usual ``10000**(2*floor(k/2)/num_feats)``);
* :class:`BEVPositionEncoding` - ``MLP_bev(pos2embed(c))`` of normalised BEV cell centres;
* :class:`CameraRayPositionEncoding` - D depth samples ``d_k = 1 + k (x_max - 1) / D`` along each
  image cell's ray, lifted with ``inv(lidar2img)``, normalised by the point-cloud range, flattened,
  ``MLP_rv``;
* :class:`PositionGuidedQueryGenerator` - learnable anchors in ``[0, 1]^3``; query position =
  BEV encoding of the anchor + the ray encoding of the pixel where it projects in every camera that
  sees it (zero elsewhere), sharing both MLPs;
* :class:`CMTDecoder` - DETR post-norm layers, every layer's output returned (after a final norm);
* :class:`CMT` - input projections, decoder, per-layer heads (centre offset decoded with an inverse
  sigmoid around the anchor), Hungarian matching (:func:`hungarian_match`, scipy), focal + L1 loss;
* :class:`ModalMask` - the 25 % / 25 % / 50 % masked-modal training transform.

Differences from the official head, all deliberate and small: heads are two-layer MLPs without the
GroupLayerNorm, there is no velocity output, query denoising is optional (``dn_groups``, off by
default), and there is no image-backbone / LiDAR backbone (any BEV map and image feature maps are
accepted; toy backbones live in :mod:`graphkit.vision.cmt_toy`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn import functional as F

from graphkit.errors import GraphError

__all__ = [
    "BEVPositionEncoding",
    "CMT",
    "CMTDecoder",
    "CameraRayPositionEncoding",
    "ModalMask",
    "PositionGuidedQueryGenerator",
    "centre_distance_ap",
    "decode_centre",
    "encode_boxes",
    "hungarian_match",
    "inverse_sigmoid",
    "pos2embed",
]


def _check_range(pc_range: Sequence[float]) -> tuple[float, ...]:
    rng = tuple(float(v) for v in pc_range)
    if len(rng) != 6:
        raise GraphError(f"pc_range: expected 6 numbers (xmin, ymin, zmin, xmax, ymax, zmax), "
                         f"got {len(rng)}")
    for axis in range(3):
        if not rng[axis + 3] > rng[axis]:
            raise GraphError(f"pc_range: max must exceed min on axis {axis}, got "
                             f"{rng[axis]} >= {rng[axis + 3]}")
    return rng


def _check_lidar2img(lidar2img: Tensor, batch: int | None = None) -> None:
    if not isinstance(lidar2img, Tensor) or lidar2img.dim() != 4 or lidar2img.shape[-2:] != (4, 4):
        shape = tuple(lidar2img.shape) if isinstance(lidar2img, Tensor) else type(lidar2img)
        raise GraphError(f"lidar2img: expected a (B, V, 4, 4) tensor, got {shape}")
    if batch is not None and lidar2img.shape[0] != batch:
        raise GraphError(f"lidar2img: batch size {lidar2img.shape[0]} does not match the features' "
                         f"{batch}")
    if not torch.isfinite(lidar2img).all():
        raise GraphError("lidar2img: contains non-finite entries")


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """``log(x / (1 - x))`` with both terms clamped at ``eps`` (the DETR-family convention)."""
    x = x.clamp(0.0, 1.0)
    return torch.log(x.clamp(min=eps) / (1.0 - x).clamp(min=eps))


def pos2embed(pos: Tensor, num_feats: int = 128, standard: bool = False,
              temperature: float = 10000.0, scale: float = 2 * math.pi) -> Tensor:
    """Sine encoding of normalised 2D coordinates.

    Args:
        pos: ``(..., 2)`` coordinates in ``[0, 1]`` (x, y).
        num_feats: features per axis (even); the output has ``2 * num_feats`` features, y first.
        standard: use the DETR schedule ``temperature ** (2 floor(k/2) / num_feats)`` instead of the
            official CMT code's ``2 floor(k/2) / num_feats + 1`` (where ``temperature`` is unused).
        temperature: base of the standard schedule.
        scale: coordinates are multiplied by it first (official: ``2 * pi``, i.e. at most one
            period over the range; larger values give sharper position codes).

    Returns:
        ``(..., 2 * num_feats)``: ``[pe_y, pe_x]``, each interleaving sin (even) and cos (odd).
    """
    if pos.shape[-1] != 2:
        raise GraphError(f"pos: expected last dimension 2, got shape {tuple(pos.shape)}")
    if num_feats <= 0 or num_feats % 2:
        raise GraphError(f"num_feats: expected a positive even integer, got {num_feats}")
    pos = pos * scale
    k = torch.arange(num_feats, dtype=pos.dtype, device=pos.device)
    expo = 2 * torch.div(k, 2, rounding_mode="floor") / num_feats
    dim_t = temperature ** expo if standard else expo + 1
    px = pos[..., 0, None] / dim_t
    py = pos[..., 1, None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=-1).flatten(-2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=-1).flatten(-2)
    return torch.cat((py, px), dim=-1)


def bev_cell_centres(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """Normalised centres ``((j + 0.5) / W, (i + 0.5) / H)`` of an ``H x W`` BEV grid, row-major.

    Column ``j`` runs along LiDAR x, row ``i`` along LiDAR y (the official ``coords_bev``).
    """
    ii, jj = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device),
                            indexing="ij")
    return torch.stack(((jj.flatten() + 0.5) / width, (ii.flatten() + 0.5) / height), dim=-1)


class BEVPositionEncoding(nn.Module):
    """``MLP_bev(pos2embed(c))``: Linear(2h, h) -> ReLU -> Linear(h, h).

    Args:
        hidden: model width ``h`` (even).
        standard_freq: use the standard 10000-based frequency schedule in :func:`pos2embed`.
        scale: coordinate scale of :func:`pos2embed` (official ``2 * pi``).
    """

    def __init__(self, hidden: int, standard_freq: bool = False,
                 scale: float = 2 * math.pi) -> None:
        super().__init__()
        if hidden <= 0 or hidden % 2:
            raise GraphError(f"hidden: expected a positive even integer, got {hidden}")
        self.hidden = hidden
        self.standard_freq = standard_freq
        self.scale = scale
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden))

    def reset_parameters(self) -> None:
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, xy: Tensor) -> Tensor:
        """Encode normalised ``(..., 2)`` BEV coordinates to ``(..., hidden)``."""
        return self.mlp(pos2embed(xy, self.hidden, standard=self.standard_freq,
                                  scale=self.scale))

    def grid(self, height: int, width: int) -> Tensor:
        """The ``(H * W, hidden)`` encoding of every cell of an ``H x W`` BEV map."""
        return self(bev_cell_centres(height, width, self.mlp[0].weight.device))


class CameraRayPositionEncoding(nn.Module):
    """Camera-ray encoding ``MLP_rv(flatten_k(norm(inv(lidar2img) [u d_k, v d_k, d_k, 1])))``.

    Args:
        hidden: output width.
        depth_num: number ``D`` of depth samples along each ray.
        pc_range: ``(xmin, ymin, zmin, xmax, ymax, zmax)`` in metres; ``xmax`` also sets the last
            depth ``1 + (D - 1) (xmax - 1) / D``.
        mlp_hidden: width of the MLP's hidden layer (the official code uses ``4 * hidden``).
        depth_start: first depth sample (1 m in the official code).
    """

    def __init__(self, hidden: int, depth_num: int = 64,
                 pc_range: Sequence[float] = (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0),
                 mlp_hidden: int | None = None, depth_start: float = 1.0) -> None:
        super().__init__()
        if depth_num <= 0:
            raise GraphError(f"depth_num: expected a positive integer, got {depth_num}")
        self.hidden = hidden
        self.depth_num = depth_num
        self.depth_start = depth_start
        rng = _check_range(pc_range)
        if rng[3] <= depth_start:
            raise GraphError(f"pc_range: xmax ({rng[3]}) must exceed depth_start ({depth_start})")
        self.register_buffer("pc_range", torch.tensor(rng), persistent=False)
        bin_size = (rng[3] - depth_start) / depth_num
        self.register_buffer("depths", depth_start + bin_size * torch.arange(depth_num).float(),
                             persistent=False)
        width = mlp_hidden or 4 * hidden
        self.mlp = nn.Sequential(nn.Linear(3 * depth_num, width), nn.ReLU(),
                                 nn.Linear(width, hidden))

    def reset_parameters(self) -> None:
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def ray_coords(self, uv: Tensor, lidar2img: Tensor) -> Tensor:
        """Normalised LiDAR-frame coordinates of the depth samples along pixel rays.

        Args:
            uv: ``(..., N, 2)`` pixel coordinates, broadcastable against ``lidar2img``'s leading
                dimensions.
            lidar2img: ``(..., 4, 4)`` projection matrices.

        Returns:
            ``(..., N, 3 * D)`` flattened coordinates in ``[0, 1]`` where inside ``pc_range``.
        """
        d = self.depths.to(uv.dtype)
        hom = torch.cat((uv[..., None, :] * d[:, None], d[:, None].expand(*uv.shape[:-1], -1, 1),
                         torch.ones_like(uv[..., None, :1]).expand(*uv.shape[:-1], d.numel(), 1)),
                        dim=-1)                                            # (..., N, D, 4)
        inv = torch.linalg.inv(lidar2img.to(uv.dtype))                    # (..., 4, 4)
        pts = torch.einsum("...ij,...ndj->...ndi", inv, hom)[..., :3]
        lo, hi = self.pc_range[:3].to(uv.dtype), self.pc_range[3:].to(uv.dtype)
        return ((pts - lo) / (hi - lo)).flatten(-2)

    def feature_pixels(self, feat_hw: tuple[int, int], img_hw: tuple[int, int],
                       device: torch.device | str | None = None) -> Tensor:
        """Pixel coordinates ``(u, v) = (w W_img / W, h H_img / H)`` of an ``H x W`` feature map,
        row-major (the official code's cell corners, not centres)."""
        fh, fw = feat_hw
        ih, iw = img_hw
        hh, ww = torch.meshgrid(torch.arange(fh, device=device), torch.arange(fw, device=device),
                                indexing="ij")
        return torch.stack((ww.flatten() * (iw / fw), hh.flatten() * (ih / fh)), dim=-1).float()

    def forward(self, lidar2img: Tensor, feat_hw: tuple[int, int],
                img_hw: tuple[int, int]) -> Tensor:
        """Ray encodings ``(B, V, H * W, hidden)`` of every cell of ``(B, V)`` feature maps."""
        _check_lidar2img(lidar2img)
        uv = self.feature_pixels(feat_hw, img_hw, lidar2img.device)
        return self.mlp(self.ray_coords(uv, lidar2img))


class PositionGuidedQueryGenerator(nn.Module):
    """Queries from learnable 3D anchors, encoded with the BEV and camera-ray encoders.

    ``query_pos = MLP_bev(pos2embed(a_xy)) + sum_views visible * MLP_rv(ray of projected pixel)``.

    Args:
        num_query: number of anchors.
        hidden: model width.
        depth_num: depth samples of the ray encoding.
        pc_range: point-cloud range in metres.
        bev_pe: a :class:`BEVPositionEncoding` to share (a new one when ``None``).
        ray_pe: a :class:`CameraRayPositionEncoding` to share (a new one when ``None``).
    """

    def __init__(self, num_query: int, hidden: int, depth_num: int = 64,
                 pc_range: Sequence[float] = (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0),
                 bev_pe: BEVPositionEncoding | None = None,
                 ray_pe: CameraRayPositionEncoding | None = None) -> None:
        super().__init__()
        if num_query <= 0:
            raise GraphError(f"num_query: expected a positive integer, got {num_query}")
        self.bev_pe = bev_pe if bev_pe is not None else BEVPositionEncoding(hidden)
        self.ray_pe = ray_pe if ray_pe is not None else CameraRayPositionEncoding(
            hidden, depth_num, pc_range)
        self.anchors = nn.Embedding(num_query, 3)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.anchors.weight, 0.0, 1.0)

    def denormalize(self, anchors: Tensor) -> Tensor:
        rng = self.ray_pe.pc_range.to(anchors.dtype)
        return anchors * (rng[3:] - rng[:3]) + rng[:3]

    def image_part(self, anchors: Tensor, lidar2img: Tensor,
                   img_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Per-view ray encodings of the anchors and their visibility.

        Args:
            anchors: ``(Q, 3)`` normalised anchors, or ``(B, Q, 3)`` per sample.
            lidar2img: ``(B, V, 4, 4)``.
            img_hw: image (padded) height and width in pixels.

        Returns:
            ``(B, Q, hidden)`` summed over the views that see each anchor, and the ``(B, V, Q)``
            visibility mask (in front of the camera and inside the image).
        """
        _check_lidar2img(lidar2img)
        pts = self.denormalize(anchors)
        hom = torch.cat((pts, torch.ones_like(pts[..., :1])), dim=-1)
        if hom.dim() == 2:
            hom = hom.unsqueeze(0).expand(lidar2img.shape[0], -1, -1)
        cam = torch.einsum("bvij,bqj->bvqi", lidar2img.to(pts.dtype), hom)
        depth = cam[..., 2]
        uv = cam[..., :2] / depth.clamp(min=1e-5)[..., None]
        ih, iw = img_hw
        visible = ((depth > 1e-5) & (uv[..., 0] >= 0) & (uv[..., 0] < iw)
                   & (uv[..., 1] >= 0) & (uv[..., 1] < ih))
        enc = self.ray_pe.mlp(self.ray_pe.ray_coords(uv, lidar2img))       # (B, V, Q, h)
        return (enc * visible[..., None].to(enc.dtype)).sum(dim=1), visible

    def forward(self, lidar2img: Tensor | None, img_hw: tuple[int, int] | None,
                batch_size: int, anchors: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Query positional embeddings ``(B, Q, hidden)`` and the anchors used.

        ``lidar2img=None`` leaves out the image part (a LiDAR-only model). ``anchors`` (``(Q, 3)``
        or ``(B, Q, 3)``, normalised) replaces the learnable ones (denoising queries).
        """
        anchors = self.anchors.weight if anchors is None else anchors
        pos = self.bev_pe(anchors[..., :2])
        pos = pos.unsqueeze(0).expand(batch_size, -1, -1) if pos.dim() == 2 else pos
        if lidar2img is not None:
            if img_hw is None:
                raise GraphError("img_hw: required together with lidar2img")
            pos = pos + self.image_part(anchors, lidar2img, img_hw)[0]
        return pos, anchors


class CMTDecoderLayer(nn.Module):
    """Post-norm DETR layer: self-attn, norm, cross-attn, norm, FFN, norm.

    The query position is added to queries and keys of self-attention and to the queries of
    cross-attention; ``key_pos`` is added to the memory keys.
    """

    def __init__(self, hidden: int, num_heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(hidden, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(hidden, num_heads, dropout=dropout,
                                                batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(ffn, hidden))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, tgt: Tensor, query_pos: Tensor, memory: Tensor, key_pos: Tensor,
                key_padding_mask: Tensor | None = None, self_mask: Tensor | None = None) -> Tensor:
        q = tgt + query_pos
        tgt = self.norms[0](tgt + self.drop(self.self_attn(q, q, tgt, attn_mask=self_mask,
                                                           need_weights=False)[0]))
        tgt = self.norms[1](tgt + self.drop(self.cross_attn(
            tgt + query_pos, memory + key_pos, memory, key_padding_mask=key_padding_mask,
            need_weights=False)[0]))
        return self.norms[2](tgt + self.drop(self.ffn(tgt)))


class CMTDecoder(nn.Module):
    """A stack of :class:`CMTDecoderLayer`; returns ``(L, B, Q, hidden)``, every layer's output
    passed through a shared final LayerNorm (the official ``post_norm``)."""

    def __init__(self, hidden: int, num_layers: int = 6, num_heads: int = 8, ffn: int = 1024,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if hidden % num_heads:
            raise GraphError(f"num_heads: {num_heads} does not divide hidden={hidden}")
        self.layers = nn.ModuleList(CMTDecoderLayer(hidden, num_heads, ffn, dropout)
                                    for _ in range(num_layers))
        self.post_norm = nn.LayerNorm(hidden)

    def forward(self, tgt: Tensor, query_pos: Tensor, memory: Tensor, key_pos: Tensor,
                key_padding_mask: Tensor | None = None, self_mask: Tensor | None = None) -> Tensor:
        """``self_mask``: boolean ``(Q, Q)`` self-attention mask, ``True`` = may not attend."""
        outs = []
        for layer in self.layers:
            tgt = layer(tgt, query_pos, memory, key_pos, key_padding_mask, self_mask)
            outs.append(self.post_norm(tgt))
        return torch.stack(outs)


def decode_centre(delta: Tensor, anchors: Tensor, pc_range: Tensor) -> Tensor:
    """``sigmoid(delta + inverse_sigmoid(anchor)) * (max - min) + min`` per axis.

    Args:
        delta: ``(..., Q, k)`` predicted offsets (k = 2 for the BEV centre, 3 with height).
        anchors: ``(Q, >= k)`` or ``(B, Q, >= k)`` normalised anchors.
        pc_range: ``(6,)`` tensor.
    """
    k = delta.shape[-1]
    lo, hi = pc_range[:k], pc_range[3:3 + k]
    return torch.sigmoid(delta + inverse_sigmoid(anchors[..., :k])) * (hi - lo) + lo


def encode_boxes(boxes: Tensor) -> Tensor:
    """``(n, 7)`` boxes ``(cx, cy, cz, w, l, h, yaw)`` to the regression code
    ``(cx, cy, log w, log l, cz, log h, sin yaw, cos yaw)`` (official ``normalize_bbox``)."""
    if boxes.dim() != 2 or boxes.shape[-1] != 7:
        raise GraphError(f"boxes: expected (n, 7) (cx, cy, cz, w, l, h, yaw), got "
                         f"{tuple(boxes.shape)}")
    if boxes.numel() and not (boxes[:, 3:6] > 0).all():
        bad = int((boxes[:, 3:6] <= 0).any(dim=1).nonzero()[0])
        raise GraphError(f"boxes: sizes must be positive, box {bad} has {boxes[bad, 3:6].tolist()}")
    return torch.stack((boxes[:, 0], boxes[:, 1], boxes[:, 3].log(), boxes[:, 4].log(),
                        boxes[:, 2], boxes[:, 5].log(), boxes[:, 6].sin(), boxes[:, 6].cos()),
                       dim=-1)


def hungarian_match(cost: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """Minimum-cost one-to-one assignment of rows (predictions) to columns (targets), scipy's
    ``linear_sum_assignment``; returns ``(rows, cols)`` as long tensors."""
    c = cost.detach().cpu().numpy() if isinstance(cost, Tensor) else np.asarray(cost)
    if c.ndim != 2:
        raise GraphError(f"cost: expected a 2D matrix, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise GraphError("cost: contains non-finite entries")
    rows, cols = linear_sum_assignment(c)
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)


def _focal_cost(logits: Tensor, labels: Tensor, alpha: float, gamma: float) -> Tensor:
    p = logits.sigmoid()
    neg = (1 - alpha) * p.pow(gamma) * -(1 - p + 1e-8).log()
    pos = alpha * (1 - p).pow(gamma) * -(p + 1e-8).log()
    return pos[:, labels] - neg[:, labels]


@dataclass
class CMTLossWeights:
    """Loss / matching weights (official values: focal 2.0, L1 0.25, code weights 2,2,1,...)."""

    cls: float = 2.0
    reg: float = 0.25
    code: tuple[float, ...] = (2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    alpha: float = 0.25
    gamma: float = 2.0
    bg_cls_weight: float = 0.1


class CMT(nn.Module):
    """Cross Modal Transformer head on top of any BEV map and image feature maps.

    Args:
        num_classes: number of object classes.
        bev_channels: channels of the input BEV map (``None``: no LiDAR branch).
        img_channels: channels of the image feature maps (``None``: no camera branch).
        hidden: model width.
        num_query: number of anchors / queries.
        depth_num: depth samples of the ray encoding.
        pc_range: ``(xmin, ymin, zmin, xmax, ymax, zmax)`` in metres.
        num_layers, num_heads, ffn, dropout: decoder shape (official: 6, 8, 1024, 0.1).
        standard_freq: standard sine schedule instead of the code's linear one.
        pe_scale: coordinate scale of the BEV sine encoding (official ``2 * pi``).
        dn_groups: query-denoising groups used in training when targets are passed to
            :meth:`forward` (official 10; 0 disables).
        dn_noise: centre jitter as a fraction of the half box size (official 1.0).
        dn_split: jitters with (normalised) norm above this are labelled "no object" (official
            0.75).
        weights: loss and matching weights.
    """

    def __init__(self, num_classes: int, bev_channels: int | None, img_channels: int | None,
                 hidden: int = 256, num_query: int = 900, depth_num: int = 64,
                 pc_range: Sequence[float] = (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0),
                 num_layers: int = 6, num_heads: int = 8, ffn: int = 1024, dropout: float = 0.1,
                 standard_freq: bool = False, pe_scale: float = 2 * math.pi,
                 dn_groups: int = 0, dn_noise: float = 1.0, dn_split: float = 0.75,
                 weights: CMTLossWeights | None = None) -> None:
        super().__init__()
        if num_classes <= 0:
            raise GraphError(f"num_classes: expected a positive integer, got {num_classes}")
        if bev_channels is None and img_channels is None:
            raise GraphError("bev_channels/img_channels: at least one modality is required")
        self.num_classes = num_classes
        self.hidden = hidden
        self.weights = weights or CMTLossWeights()
        self.dn_groups, self.dn_noise, self.dn_split = dn_groups, dn_noise, dn_split
        self.bev_pe = BEVPositionEncoding(hidden, standard_freq, pe_scale)
        self.ray_pe = CameraRayPositionEncoding(hidden, depth_num, pc_range)
        self.query_gen = PositionGuidedQueryGenerator(num_query, hidden, depth_num, pc_range,
                                                      self.bev_pe, self.ray_pe)
        self.bev_proj = nn.Conv2d(bev_channels, hidden, 1) if bev_channels else None
        self.img_proj = nn.Conv2d(img_channels, hidden, 1) if img_channels else None
        self.decoder = CMTDecoder(hidden, num_layers, num_heads, ffn, dropout)
        outs = {"cls": num_classes, "centre": 2, "height": 1, "dim": 3, "rot": 2}
        self.heads = nn.ModuleList(
            nn.ModuleDict({k: nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(),
                                            nn.Linear(hidden, n)) for k, n in outs.items()})
            for _ in range(num_layers))
        self.reset_parameters()

    @property
    def pc_range(self) -> Tensor:
        return self.ray_pe.pc_range

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.LayerNorm)):
                m.reset_parameters()
            elif isinstance(m, nn.MultiheadAttention):
                m._reset_parameters()
        self.query_gen.reset_parameters()
        prior = -math.log((1 - 0.01) / 0.01)  # focal-loss prior init (official bias -2.19 is p=0.1)
        for head in self.heads:
            nn.init.constant_(head["cls"][-1].bias, prior)

    def forward(self, bev: Tensor | None, img: Tensor | None, lidar2img: Tensor | None = None,
                img_hw: tuple[int, int] | None = None, zero_pe: bool = False,
                targets: Sequence[dict[str, Tensor]] | None = None) -> dict:
        """Detect boxes.

        Args:
            bev: ``(B, C_bev, Hb, Wb)`` BEV map (column = x, row = y) or ``None``.
            img: ``(B, V, C_img, Hi, Wi)`` image feature maps or ``None``.
            lidar2img: ``(B, V, 4, 4)`` projections, required with ``img``.
            img_hw: input image size ``(H, W)`` in pixels, required with ``img``.
            zero_pe: replace every position encoding (BEV, ray, query) by zeros (ablation).
            targets: ground truth (as for :meth:`loss`); in training mode with ``dn_groups > 0``
                it adds denoising queries (noised GT centres) whose outputs go to ``out["dn"]``.

        Returns:
            ``{"cls_logits": (L, B, Q, K), "boxes": (L, B, Q, 8), "anchors": (Q, 3)}`` where the box
            code is ``(cx, cy, log w, log l, cz, log h, sin, cos)`` in metres.
        """
        mem, pos = [], []
        batch = None
        if bev is not None:
            if self.bev_proj is None:
                raise GraphError("bev: this model was built without a LiDAR branch")
            if bev.dim() != 4 or bev.shape[1] != self.bev_proj.in_channels:
                raise GraphError(f"bev: expected (B, {self.bev_proj.in_channels}, Hb, Wb), got "
                                 f"{tuple(bev.shape)}")
            batch = bev.shape[0]
            mem.append(self.bev_proj(bev).flatten(2).transpose(1, 2))
            pos.append(self.bev_pe.grid(*bev.shape[2:]).unsqueeze(0).expand(batch, -1, -1))
        if img is not None:
            if self.img_proj is None:
                raise GraphError("img: this model was built without a camera branch")
            if img.dim() != 5 or img.shape[2] != self.img_proj.in_channels:
                raise GraphError(f"img: expected (B, V, {self.img_proj.in_channels}, H, W), got "
                                 f"{tuple(img.shape)}")
            if lidar2img is None or img_hw is None:
                raise GraphError("lidar2img/img_hw: required together with img")
            if batch is not None and img.shape[0] != batch:
                raise GraphError(f"img: batch size {img.shape[0]} does not match bev's {batch}")
            batch = img.shape[0]
            _check_lidar2img(lidar2img, batch)
            if lidar2img.shape[1] != img.shape[1]:
                raise GraphError(f"lidar2img: {lidar2img.shape[1]} views but img has "
                                 f"{img.shape[1]}")
            b, v, c, h, w = img.shape
            tokens = self.img_proj(img.flatten(0, 1)).flatten(2).transpose(1, 2)
            mem.append(tokens.reshape(b, v * h * w, self.hidden))
            pos.append(self.ray_pe(lidar2img, (h, w), img_hw).reshape(b, v * h * w, self.hidden))
        if batch is None:
            raise GraphError("bev/img: at least one input is required")
        memory, key_pos = torch.cat(mem, dim=1), torch.cat(pos, dim=1)
        l2i = lidar2img if img is not None else None
        query_pos, anchors = self.query_gen(l2i, img_hw, batch)
        anchors = anchors.unsqueeze(0).expand(batch, -1, -1)
        dn = None
        self_mask = None
        if targets is not None and self.training and self.dn_groups > 0:
            dn = self._dn_queries(targets, batch)
            if dn is not None:
                dn_pos, _ = self.query_gen(l2i, img_hw, batch, anchors=dn["anchors"])
                query_pos = torch.cat((dn_pos, query_pos), dim=1)
                anchors = torch.cat((dn["anchors"], anchors), dim=1)
                self_mask = dn["mask"]
        if zero_pe:
            key_pos, query_pos = torch.zeros_like(key_pos), torch.zeros_like(query_pos)
        hs = self.decoder(torch.zeros_like(query_pos), query_pos, memory, key_pos,
                          self_mask=self_mask)
        logits, boxes = [], []
        for layer_out, head in zip(hs, self.heads, strict=True):
            logits.append(head["cls"](layer_out))
            centre = decode_centre(head["centre"](layer_out), anchors, self.pc_range)
            height = decode_centre(
                torch.cat((torch.zeros_like(centre), head["height"](layer_out)), -1),
                anchors, self.pc_range)[..., 2:]
            dims = head["dim"](layer_out)
            boxes.append(torch.cat((centre, dims[..., :2], height, dims[..., 2:],
                                    head["rot"](layer_out)), -1))
        out = {"cls_logits": torch.stack(logits), "boxes": torch.stack(boxes), "anchors": anchors}
        if dn is not None:
            n = dn["anchors"].shape[1]
            out["dn"] = {"cls_logits": out["cls_logits"][:, :, :n], "boxes": out["boxes"][:, :, :n],
                         "labels": dn["labels"], "codes": dn["codes"], "valid": dn["valid"]}
            for key in ("cls_logits", "boxes", "anchors"):
                out[key] = out[key][..., n:, :] if key != "anchors" else out[key][:, n:]
        return out

    def _dn_queries(self, targets: Sequence[dict[str, Tensor]], batch: int) -> dict | None:
        """Denoising anchors (DN-DETR style, official ``prepare_for_dn``): ``dn_groups`` copies of
        every GT centre jittered by up to ``dn_noise`` half box sizes; copies jittered beyond
        ``dn_split`` get the "no object" label (``-1``). The self-attention mask keeps the matching
        queries from seeing DN queries and DN groups from seeing each other."""
        if len(targets) != batch:
            raise GraphError(f"targets: {len(targets)} samples for a batch of {batch}")
        m = max(int(t["labels"].numel()) for t in targets)
        if m == 0:
            return None
        g, rng = self.dn_groups, self.pc_range
        dev = rng.device
        anchors = torch.zeros(batch, g, m, 3, device=dev)
        labels = torch.full((batch, g, m), -1, dtype=torch.long, device=dev)
        codes = torch.zeros(batch, g, m, 8, device=dev)
        valid = torch.zeros(batch, g, m, dtype=torch.bool, device=dev)
        for b, t in enumerate(targets):
            n = int(t["labels"].numel())
            if n == 0:
                continue
            boxes = t["boxes"].to(dev, torch.float32)
            jitter = torch.rand(g, n, 3, device=dev) * 2 - 1
            centre = boxes[:, :3] + jitter * boxes[:, [4, 3, 5]] / 2 * self.dn_noise
            anchors[b, :, :n] = ((centre - rng[:3]) / (rng[3:] - rng[:3])).clamp(0, 1)
            keep = jitter.norm(dim=-1) <= self.dn_split
            labels[b, :, :n] = torch.where(keep, t["labels"].to(dev), -1)
            codes[b, :, :n] = encode_boxes(boxes)
            valid[b, :, :n] = True
        q = self.query_gen.anchors.num_embeddings
        total = g * m + q
        mask = torch.zeros(total, total, dtype=torch.bool, device=dev)
        mask[g * m:, :g * m] = True
        for i in range(g):
            mask[i * m:(i + 1) * m, :i * m] = True
            mask[i * m:(i + 1) * m, (i + 1) * m:g * m] = True
        return {"anchors": anchors.flatten(1, 2), "labels": labels.flatten(1), "mask": mask,
                "codes": codes.flatten(1, 2), "valid": valid.flatten(1)}

    def match(self, logits: Tensor, boxes: Tensor, labels: Tensor,
              gt_code: Tensor) -> tuple[Tensor, Tensor]:
        """Hungarian assignment of one sample's ``(Q, K)`` logits / ``(Q, 8)`` boxes to its targets
        with the official cost ``cls * focal + reg * L1(code_w * pred, code_w * gt)``."""
        w = self.weights
        code_w = boxes.new_tensor(w.code)
        with torch.no_grad():
            cost = (w.cls * _focal_cost(logits, labels, w.alpha, w.gamma)
                    + w.reg * torch.cdist(boxes * code_w, gt_code * code_w, p=1))
        return hungarian_match(cost)

    def loss(self, out: dict[str, Tensor], targets: Sequence[dict[str, Tensor]]) -> Tensor:
        """Focal + L1 loss summed over every decoder layer (auxiliary losses).

        Args:
            out: the output of :meth:`forward`.
            targets: per sample ``{"labels": (n,), "boxes": (n, 7) (cx, cy, cz, w, l, h, yaw)}``.
        """
        logits_all, boxes_all = out["cls_logits"], out["boxes"]
        if len(targets) != logits_all.shape[1]:
            raise GraphError(f"targets: {len(targets)} samples for a batch of "
                             f"{logits_all.shape[1]}")
        codes = []
        for i, t in enumerate(targets):
            labels = t["labels"]
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise GraphError(f"targets[{i}].labels: entries must lie in [0, "
                                 f"{self.num_classes}), got {labels.tolist()}")
            codes.append(encode_boxes(t["boxes"].to(boxes_all.dtype)))
        w = self.weights
        code_w = boxes_all.new_tensor(w.code)
        total = boxes_all.new_zeros(())
        num_q = logits_all.shape[2]
        for logits_l, boxes_l in zip(logits_all, boxes_all, strict=True):
            cls_target = torch.zeros_like(logits_l)
            reg_pred, reg_gt = [], []
            for b, t in enumerate(targets):
                if t["labels"].numel() == 0:
                    continue
                rows, cols = self.match(logits_l[b], boxes_l[b], t["labels"], codes[b])
                cls_target[b, rows, t["labels"][cols]] = 1.0
                reg_pred.append(boxes_l[b, rows])
                reg_gt.append(codes[b][cols])
            num_pos = sum(len(r) for r in reg_pred)
            num_neg = logits_l.shape[0] * num_q - num_pos
            cls_avg = max(num_pos + w.bg_cls_weight * num_neg, 1.0)
            focal = _sigmoid_focal(logits_l, cls_target, w.alpha, w.gamma).sum() / cls_avg
            total = total + w.cls * focal
            if num_pos:
                diff = (torch.cat(reg_pred) - torch.cat(reg_gt)).abs() * code_w
                total = total + w.reg * diff.sum() / num_pos
        if "dn" in out:
            total = total + self._dn_loss(out["dn"])
        return total

    def _dn_loss(self, dn: dict[str, Tensor]) -> Tensor:
        """Focal + L1 on the denoising queries (their targets are known, no matching)."""
        w = self.weights
        valid = dn["valid"]
        n_valid = max(int(valid.sum()), 1)
        target = torch.zeros_like(dn["cls_logits"][0])
        pos = valid & (dn["labels"] >= 0)
        b_idx, q_idx = pos.nonzero(as_tuple=True)
        target[b_idx, q_idx, dn["labels"][b_idx, q_idx]] = 1.0
        code_w = dn["boxes"].new_tensor(w.code)
        total = dn["boxes"].new_zeros(())
        for logits_l, boxes_l in zip(dn["cls_logits"], dn["boxes"], strict=True):
            focal = _sigmoid_focal(logits_l[valid], target[valid], w.alpha, w.gamma).sum()
            total = total + w.cls * focal / n_valid
            diff = (boxes_l[valid] - dn["codes"][valid]).abs() * code_w
            total = total + w.reg * diff.sum() / n_valid
        return total

    @torch.no_grad()
    def predict(self, out: dict[str, Tensor]) -> list[dict[str, Tensor]]:
        """Last-layer detections per sample: every (query, class) pair with its sigmoid score,
        ``centres`` ``(Q K, 3)``, ``scores``, ``labels`` and ``boxes`` ``(Q K, 7)``."""
        logits, boxes = out["cls_logits"][-1], out["boxes"][-1]
        b, q, k = logits.shape
        scores = logits.sigmoid().reshape(b, q * k)
        labels = torch.arange(k, device=logits.device).repeat(q)
        dec = torch.cat((boxes[..., [0, 1, 4]], boxes[..., [2, 3, 5]].exp(),
                         torch.atan2(boxes[..., 6:7], boxes[..., 7:8])), -1)
        dec = dec.repeat_interleave(k, dim=1)
        return [{"centres": dec[i, :, :3], "boxes": dec[i], "scores": scores[i], "labels": labels}
                for i in range(b)]


def _sigmoid_focal(logits: Tensor, target: Tensor, alpha: float, gamma: float) -> Tensor:
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    a_t = alpha * target + (1 - alpha) * (1 - target)
    return a_t * (1 - p_t).pow(gamma) * ce


class ModalMask:
    """Masked-modal transform (official ``ModalMask3D``): zero the raw inputs of one modality.

    Training: with ``u ~ U(0, 1)``, ``u > 1 - p_images`` zeroes the images, else
    ``u > 1 - p_images - p_points`` zeroes the points, else both are kept (25 / 25 / 50 by default).
    Zeroed points keep their count (they all sit at the origin), zeroed images keep their shape.

    Args:
        p_images: probability of dropping the images.
        p_points: probability of dropping the points.
        mode: ``"train"`` (random) or ``"test"`` (always drop ``mask_modal``).
        mask_modal: in test mode, ``"points"``, ``"images"`` or ``None`` (keep both).
    """

    def __init__(self, p_images: float = 0.25, p_points: float = 0.25, mode: str = "train",
                 mask_modal: str | None = None) -> None:
        if not (0 <= p_images and 0 <= p_points and p_images + p_points <= 1):
            raise GraphError(f"p_images/p_points: need non-negative values summing to <= 1, got "
                             f"{p_images}, {p_points}")
        if mode not in ("train", "test"):
            raise GraphError(f"mode: expected 'train' or 'test', got {mode!r}")
        if mask_modal not in (None, "points", "images"):
            raise GraphError(f"mask_modal: expected None, 'points' or 'images', got {mask_modal!r}")
        self.p_images, self.p_points = p_images, p_points
        self.mode, self.mask_modal = mode, mask_modal

    def choose(self, generator: torch.Generator | None = None) -> str | None:
        """The modality to drop for one sample: ``"images"``, ``"points"`` or ``None``."""
        if self.mode == "test":
            return self.mask_modal
        u = float(torch.rand((), generator=generator))
        if u > 1 - self.p_images:
            return "images"
        if u > 1 - self.p_images - self.p_points:
            return "points"
        return None

    def __call__(self, points: Tensor, images: Tensor,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, str | None]:
        """Apply to one sample; returns ``(points, images, dropped)``."""
        dropped = self.choose(generator)
        if dropped == "images":
            images = images * 0
        elif dropped == "points":
            points = points * 0
        return points, images, dropped


def centre_distance_ap(preds: Sequence[dict[str, Tensor]], gts: Sequence[dict[str, Tensor]],
                       num_classes: int, thresholds: Sequence[float] = (0.5, 1.0, 2.0),
                       max_dets: int | None = None) -> dict[str, float]:
    """nuScenes-style detection AP with BEV centre-distance matching.

    Per class and threshold, detections of all samples are sorted by score and greedily matched to
    the nearest unmatched ground-truth centre within the threshold; AP is the 101-point interpolated
    area under the precision-recall curve (without nuScenes' min-recall/precision clipping).

    Args:
        preds: per sample ``{"centres": (n, >=2), "scores": (n,), "labels": (n,)}``.
        gts: per sample ``{"boxes": (m, >=2) centres first, "labels": (m,)}``.
        num_classes: number of classes (AP is averaged over those with ground truth).
        thresholds: centre-distance thresholds in metres.
        max_dets: keep only the top-scoring detections per sample.

    Returns:
        ``{"ap@<t>": ..., "map": mean over thresholds}``.
    """
    if len(preds) != len(gts):
        raise GraphError(f"preds: {len(preds)} samples but gts has {len(gts)}")
    result: dict[str, float] = {}
    levels = np.linspace(0, 1, 101)
    for thr in thresholds:
        aps = []
        for c in range(num_classes):
            scores, owner, centres = [], [], []
            gt_c = []
            for i, (p, g) in enumerate(zip(preds, gts, strict=True)):
                keep = (p["labels"] == c).cpu()
                s = p["scores"].detach().cpu()[keep].double().numpy()
                xy = p["centres"].detach().cpu()[keep, :2].double().numpy()
                if max_dets is not None and len(s) > max_dets:
                    top = np.argsort(-s, kind="stable")[:max_dets]
                    s, xy = s[top], xy[top]
                scores.append(s)
                centres.append(xy)
                owner.append(np.full(len(s), i))
                gt_c.append(g["boxes"].detach().cpu()[(g["labels"] == c).cpu(), :2]
                            .double().numpy())
            n_gt = sum(len(g) for g in gt_c)
            if n_gt == 0:
                continue
            s_all, o_all, xy_all = np.concatenate(scores), np.concatenate(owner), \
                np.concatenate(centres)
            order = np.argsort(-s_all, kind="stable")
            taken = [np.zeros(len(g), dtype=bool) for g in gt_c]
            tp = np.zeros(len(order))
            for k, d in enumerate(order):
                g = gt_c[o_all[d]]
                if len(g) == 0:
                    continue
                dist = np.linalg.norm(g - xy_all[d], axis=1)
                dist[taken[o_all[d]]] = np.inf
                j = int(dist.argmin())
                if dist[j] < thr:
                    taken[o_all[d]][j] = True
                    tp[k] = 1
            if len(tp) == 0:
                aps.append(0.0)
                continue
            ctp = np.cumsum(tp)
            recall = ctp / n_gt
            # Precision envelope (max precision at any recall >= r), sampled at 101 recall levels.
            precision = np.maximum.accumulate((ctp / np.arange(1, len(tp) + 1))[::-1])[::-1]
            idx = np.searchsorted(recall, levels, side="left")
            interp = np.where(idx < len(precision), precision[np.minimum(idx, len(tp) - 1)], 0.0)
            aps.append(float(interp.mean()))
        result[f"ap@{thr:g}"] = float(np.mean(aps)) if aps else float("nan")
    result["map"] = float(np.mean([result[f"ap@{t:g}"] for t in thresholds]))
    return result
