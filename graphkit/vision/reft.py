"""RefT ("Reference Twice") on a small Mask2Former-style instance segmenter.

Paper: Yue Han, Jiangning Zhang, Zhucun Xue, Chao Xu, Xintian Shen, Yabiao Wang, Chengjie Wang,
Yong Liu, Xiangtai Li, "Reference Twice: A Simple and Unified Baseline for Few-Shot Instance
Segmentation", arXiv 2301.01156, https://arxiv.org/abs/2301.01156.

**No code was released** (github:hanyue1648/RefT holds a README and figures only). This module is
a reconstruction from the abstract and teaser figure; every choice the sources do not pin down is
a field of :class:`RefTConfig` and is listed in ``docs/vision/reft.md``:

* Reference 1 (feature level): support features are mask-pooled into one centre per class (mean
  over the shots with a non-empty mask); each query-image pixel attends over the valid class
  centres (``weighting``: scaled dot product or cosine, softmax over classes, all classes in one
  pass) and adds the projected, weighted centres to its feature.
* Reference 2 (instance level): the shared decoder also runs on the support images; per class the
  top-``topk`` support object queries (``topk_rule``: best mask dice with the support mask, or
  highest class probability) are kept, and the query image's decoder queries cross-attend to them
  (``ref2_layers`` residual layers) before the heads.
* ``class_token``: a learnable per-class embedding is added to each centre / support query on the
  value side. Without it the aggregated vector is a weighted sum over an unlabelled set of centres,
  so swapping two classes' supports could not change anything; with it the model can learn *which*
  class a pixel resembles.
* ``classifier``: ``"linear"`` is Mask2Former's fixed class head; ``"support"`` (a reconstruction,
  not from the paper) replaces it by a cosine / prototype classifier whose class weights are the
  projected support prototypes (:class:`SupportClassifier`), so a query's class can only come
  from the supports. With the linear head, the trained toy models learned to ignore the supports
  (swapping two classes' support sets barely changed novel AP, ``docs/vision/reft.md``).

The model: a 4-stage strided CNN, an FPN-style pixel decoder to a 1/4-resolution feature map, a
transformer decoder (cross-attention, self-attention, FFN, post-norm; no masked attention) with
learnable queries, a class head (+ "no object") and a dot-product mask head. Training uses
Hungarian matching (``scipy.optimize.linear_sum_assignment``) with class CE + mask BCE + dice,
weights 2 / 5 / 5 as in Mask2Former, on every decoder layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from graphkit.errors import GraphError

WEIGHTINGS = ("softmax", "cosine")
TOPK_RULES = ("mask", "score")
CLASSIFIERS = ("linear", "support")


@dataclass
class RefTConfig:
    """Hyper-parameters; the reconstructed (unpublished) choices are marked.

    Args:
        num_classes: object classes (without "no object").
        hidden: feature / query width.
        num_queries: learnable object queries.
        dec_layers: transformer decoder depth (unpublished for RefT; Mask2Former uses 9).
        heads: attention heads.
        ref1: enable Reference 1 (feature level).
        ref2: enable Reference 2 (instance level).
        weighting: Reference 1 weighting form, "softmax" (dot product / sqrt(d)) or "cosine"
            (cosine / ``temperature``); reconstructed.
        temperature: temperature of the cosine weighting.
        class_token: add a learnable class embedding to centres and support queries; reconstructed.
        topk: support object queries kept per class (Reference 2); reconstructed.
        topk_rule: "mask" (dice with the support mask) or "score" (class probability);
            reconstructed.
        ref2_layers: query-linking cross-attention layers; reconstructed.
        classifier: where class logits come from. "linear": a fixed linear head over the
            decoder queries (Mask2Former; the class of a query does not need the supports).
            "support": a cosine (prototype) classifier, logits of class c =
            ``scale · cos(W_e q, proto_c)`` with a learned ``scale``, ``proto_c`` built from the
            supports (projected Reference 1 centre, plus the projected mean of the Reference 2
            top-K support queries when ``ref2``), and a "no object" logit ``Linear(q)``; classes
            without supports get no probability. Reconstructed (RefT's iFSIS rows use a cosine
            classifier, "w/ Cos"; iMTFA uses support embeddings as class weights); needs
            ``ref1`` or ``ref2`` and ``topk_rule="mask"``.
        cos_scale: initial value of the learned cosine scale (``classifier="support"``).
        no_object_weight: CE weight of the "no object" class (Mask2Former: 0.1).
        w_class, w_bce, w_dice: loss / matching-cost weights (Mask2Former: 2, 5, 5).
        aux_loss: also supervise every intermediate decoder layer.
    """

    num_classes: int = 8
    hidden: int = 48
    num_queries: int = 10
    dec_layers: int = 2
    heads: int = 4
    ref1: bool = True
    ref2: bool = True
    weighting: str = "softmax"
    temperature: float = 0.1
    class_token: bool = True
    topk: int = 3
    topk_rule: str = "mask"
    ref2_layers: int = 1
    classifier: str = "linear"
    cos_scale: float = 10.0
    no_object_weight: float = 0.1
    w_class: float = 2.0
    w_bce: float = 5.0
    w_dice: float = 5.0
    aux_loss: bool = True
    channels: tuple[int, ...] = field(default=(24, 32, 48, 64))

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise GraphError(f"weighting: expected one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.topk_rule not in TOPK_RULES:
            raise GraphError(f"topk_rule: expected one of {TOPK_RULES}, got {self.topk_rule!r}")
        if self.classifier not in CLASSIFIERS:
            raise GraphError(f"classifier: expected one of {CLASSIFIERS}, got {self.classifier!r}")
        if self.classifier == "support" and not (self.ref1 or self.ref2):
            raise GraphError("classifier='support' needs supports: set ref1 and/or ref2")
        if self.classifier == "support" and self.topk_rule == "score":
            raise GraphError("classifier='support' needs topk_rule='mask' (the 'score' rule "
                             "reads class probabilities, which would need the prototypes first)")
        if self.cos_scale <= 0:
            raise GraphError(f"cos_scale: must be > 0, got {self.cos_scale}")
        for name in ("num_classes", "hidden", "num_queries", "dec_layers", "heads", "topk"):
            if getattr(self, name) < 1:
                raise GraphError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise GraphError(f"hidden: {self.hidden} not divisible by heads={self.heads}")
        if len(self.channels) != 4:
            raise GraphError(f"channels: expected 4 stage widths, got {self.channels}")


# --------------------------------------------------------------------------- support pooling
def mask_pool(features: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Masked average pooling of ``features`` (N, d, h, w) with ``masks`` (N, h, w) in [0, 1].

    Returns the pooled vectors (N, d) and a validity flag (N,). An all-zero mask gives a zero
    vector and ``valid=False`` (the denominator is clamped, so there is never 0/0).
    """
    area = masks.sum(dim=(1, 2))
    pooled = torch.einsum("ndhw,nhw->nd", features, masks) / area.clamp_min(1e-6)[:, None]
    return pooled, area > 0


def class_centres(pooled: Tensor, valid: Tensor, labels: Tensor, num_classes: int
                  ) -> tuple[Tensor, Tensor]:
    """Mean of the valid pooled shots per class: centres (C, d) and class validity (C,).

    Invalid shots and classes without shots contribute nothing; the result does not depend on
    the order of the shots.
    """
    w = valid.to(pooled.dtype)
    sums = pooled.new_zeros(num_classes, pooled.shape[1]).index_add_(0, labels, pooled * w[:, None])
    counts = pooled.new_zeros(num_classes).index_add_(0, labels, w)
    return sums / counts.clamp_min(1.0)[:, None], counts > 0


@dataclass
class SupportMemory:
    """What the support set contributes: class centres (Reference 1) and the selected support
    object queries (Reference 2), each with validity flags."""

    centres: Tensor | None = None        # (C, d)
    centre_valid: Tensor | None = None   # (C,)
    queries: Tensor | None = None        # (C, topk, d)
    query_valid: Tensor | None = None    # (C, topk)
    prototypes: Tensor | None = None     # (C, d), classifier="support" only
    proto_valid: Tensor | None = None    # (C,)


# --------------------------------------------------------------------------- building blocks
def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    # GroupNorm, not BatchNorm: query and support batches have different statistics and sizes
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                         nn.GroupNorm(min(8, cout), cout), nn.ReLU(inplace=True))


class Backbone(nn.Module):
    """Four stride-2 stages; returns the 1/4, 1/8 and 1/16 maps."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.stem = nn.Sequential(_conv(3, c1, 2), _conv(c1, c1, 1))
        self.s2 = nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2, 1))
        self.s3 = _conv(c2, c3, 2)
        self.s4 = _conv(c3, c4, 2)

    def forward(self, x: Tensor) -> list[Tensor]:
        x2 = self.s2(self.stem(x))
        x3 = self.s3(x2)
        return [x2, x3, self.s4(x3)]


class PixelDecoder(nn.Module):
    """FPN top-down path to one ``hidden``-wide map at 1/4 resolution (the mask features)."""

    def __init__(self, channels: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, hidden, 1) for c in channels[1:])
        self.out = nn.Sequential(_conv(hidden, hidden, 1), nn.Conv2d(hidden, hidden, 1))

    def forward(self, feats: list[Tensor]) -> Tensor:
        y = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1]), strict=True):
            y = lat(f) + F.interpolate(y, size=f.shape[-2:], mode="nearest")
        return self.out(y)


class DecoderLayer(nn.Module):
    """Cross-attention to pixels, self-attention, FFN (post-norm, as in Mask2Former)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.cross = nn.MultiheadAttention(d, heads, batch_first=True)
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(inplace=True), nn.Linear(4 * d, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))

    def forward(self, q: Tensor, qpos: Tensor, mem: Tensor, mpos: Tensor) -> Tensor:
        q = self.norms[0](q + self.cross(q + qpos, mem + mpos, mem)[0])
        q = self.norms[1](q + self.self_attn(q + qpos, q + qpos, q)[0])
        return self.norms[2](q + self.ffn(q))


class FeatureReference(nn.Module):
    """Reference 1: per pixel, softmax weights over the class centres; add the weighted,
    projected centres to the pixel feature (all classes in one pass)."""

    def __init__(self, cfg: RefTConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.cfg = cfg
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.class_embed = nn.Embedding(cfg.num_classes, d) if cfg.class_token else None

    def weights(self, feats: Tensor, centres: Tensor, valid: Tensor) -> Tensor:
        """Per-pixel weights over classes, (B, h·w, C); zero on invalid classes."""
        q = self.q_proj(feats.flatten(2).transpose(1, 2))
        k = self.k_proj(centres)
        if self.cfg.weighting == "softmax":
            logits = q @ k.T / math.sqrt(q.shape[-1])
        else:
            logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).T / self.cfg.temperature
        return logits.masked_fill(~valid, float("-inf")).softmax(-1)

    def forward(self, feats: Tensor, centres: Tensor, valid: Tensor) -> Tensor:
        if not bool(valid.any()):
            return feats
        w = self.weights(feats, centres, valid)
        v = self.v_proj(centres)
        if self.class_embed is not None:
            v = v + self.class_embed.weight
        add = self.out_proj(w @ v)                                       # (B, hw, d)
        return feats + add.transpose(1, 2).reshape(feats.shape)


class QueryReference(nn.Module):
    """Reference 2: the query image's object queries cross-attend to the selected support
    object queries (residual, pre-norm)."""

    def __init__(self, cfg: RefTConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.attn = nn.ModuleList(nn.MultiheadAttention(d, cfg.heads, batch_first=True)
                                  for _ in range(cfg.ref2_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(cfg.ref2_layers))
        self.class_embed = nn.Embedding(cfg.num_classes, d) if cfg.class_token else None

    def forward(self, q: Tensor, support: Tensor, valid: Tensor) -> Tensor:
        if not bool(valid.any()):
            return q
        kv = support
        if self.class_embed is not None:
            kv = kv + self.class_embed.weight[:, None, :]
        kv = kv[valid].unsqueeze(0).expand(q.shape[0], -1, -1)   # only valid keys: no masking
        for attn, norm in zip(self.attn, self.norms, strict=True):
            h = norm(q)
            q = q + attn(h, kv, kv)[0]
        return q


class SupportClassifier(nn.Module):
    """``classifier="support"`` (reconstruction): cosine similarity between each (linked)
    decoder query and per-class prototypes built from the supports, plus a "no object" logit.

    There is no per-class weight or bias, so the class identity of a prediction comes only from
    which class's supports the query resembles: swapping two classes' supports swaps their
    logits exactly (for the same query embedding).
    """

    def __init__(self, cfg: RefTConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.embed = nn.Linear(d, d)
        self.centre_proj = nn.Linear(d, d) if cfg.ref1 else None
        self.query_proj = nn.Linear(d, d) if cfg.ref2 else None
        self.no_object = nn.Linear(d, 1)
        self.log_scale = nn.Parameter(torch.tensor(math.log(cfg.cos_scale)))

    def prototypes(self, mem: SupportMemory) -> tuple[Tensor, Tensor]:
        """Prototypes (C, d) and their validity (C,) from an encoded support set."""
        proto, valid = None, None
        if self.centre_proj is not None and mem.centres is not None:
            proto, valid = self.centre_proj(mem.centres), mem.centre_valid
        if self.query_proj is not None and mem.queries is not None:
            w = mem.query_valid.to(mem.queries.dtype)
            mean = (mem.queries * w[..., None]).sum(1) / w.sum(1).clamp_min(1.0)[:, None]
            p2, v2 = self.query_proj(mean), mem.query_valid.any(1)
            proto = p2 if proto is None else proto + p2
            valid = v2 if valid is None else valid | v2
        return proto, valid

    def forward(self, q: Tensor, proto: Tensor, valid: Tensor) -> Tensor:
        """Logits (B, Q, C+1); classes without a valid prototype get -1e4 (no probability)."""
        cos = F.normalize(self.embed(q), dim=-1) @ F.normalize(proto, dim=-1).T
        logits = (self.log_scale.exp() * cos).masked_fill(~valid, -1e4)
        return torch.cat([logits, self.no_object(q)], dim=-1)


# --------------------------------------------------------------------------- the model
class RefT(nn.Module):
    """Mask2Former-lite with optional Reference 1 / Reference 2 (see the module docstring).

    Args:
        cfg: a :class:`RefTConfig` (``ref1=ref2=False`` is the plain Mask2Former baseline).
    """

    def __init__(self, cfg: RefTConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or RefTConfig()
        d = cfg.hidden
        self.backbone = Backbone(cfg.channels)
        self.pixel_decoder = PixelDecoder(cfg.channels, d)
        self.query_feat = nn.Embedding(cfg.num_queries, d)
        self.query_pos = nn.Embedding(cfg.num_queries, d)
        self.level_pos = nn.Conv2d(2, d, 1)  # memory position code from normalized (x, y)
        self.layers = nn.ModuleList(DecoderLayer(d, cfg.heads) for _ in range(cfg.dec_layers))
        # classifier="support" has no class head (class identity comes from the supports)
        self.class_head = nn.Linear(d, cfg.num_classes + 1) if cfg.classifier == "linear" else None
        self.mask_embed = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, d),
                                        nn.ReLU(inplace=True), nn.Linear(d, d))
        self.ref1 = FeatureReference(cfg) if cfg.ref1 else None
        self.ref2 = QueryReference(cfg) if cfg.ref2 else None
        self.support_head = SupportClassifier(cfg) if cfg.classifier == "support" else None
        self.reset_parameters()

    @property
    def uses_support(self) -> bool:
        return self.ref1 is not None or self.ref2 is not None

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is self:
                continue
            if isinstance(m, nn.MultiheadAttention):
                m._reset_parameters()
            elif isinstance(m, SupportClassifier):
                m.log_scale.data.fill_(math.log(self.cfg.cos_scale))
            elif hasattr(m, "reset_parameters"):
                m.reset_parameters()

    # -- pieces
    def _check_images(self, images: Tensor, name: str) -> None:
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise GraphError(f"{name}: expected a (B, 3, H, W) tensor, got {shape}")
        if images.shape[-1] % 16 or images.shape[-2] % 16:
            raise GraphError(f"{name}: H and W must be multiples of 16, got "
                             f"{tuple(images.shape[-2:])}")
        if not torch.isfinite(images).all():
            raise GraphError(f"{name}: contains NaN or infinite values")

    def features(self, images: Tensor) -> Tensor:
        """Mask features (B, d, H/4, W/4)."""
        return self.pixel_decoder(self.backbone(images))

    def decode(self, feats: Tensor) -> list[Tensor]:
        """Decoder queries after every layer, each (B, Q, d); memory = 2×2-pooled features."""
        mem = F.avg_pool2d(feats, 2)
        b, _, h, w = mem.shape
        ys, xs = torch.meshgrid(torch.linspace(0, 1, h, device=feats.device),
                                torch.linspace(0, 1, w, device=feats.device), indexing="ij")
        mpos = self.level_pos(torch.stack([xs, ys])[None]).flatten(2).transpose(1, 2)
        mem = mem.flatten(2).transpose(1, 2)
        q = self.query_feat.weight[None].expand(b, -1, -1)
        qpos = self.query_pos.weight[None].expand(b, -1, -1)
        outs = []
        for layer in self.layers:
            q = layer(q, qpos, mem, mpos)
            outs.append(q)
        return outs

    def heads(self, q: Tensor, feats: Tensor, support: SupportMemory | None = None
              ) -> tuple[Tensor, Tensor]:
        """Class logits (B, Q, C+1) and mask logits (B, Q, h, w).

        With ``classifier="support"`` the logits need ``support.prototypes``; without them
        (inside :meth:`encode_support`) only the mask logits are meaningful and the class logits
        are ``None``.
        """
        masks = torch.einsum("bqd,bdhw->bqhw", self.mask_embed(q), feats)
        if self.support_head is None:
            return self.class_head(q), masks
        if support is None or support.prototypes is None:
            return None, masks
        return self.support_head(q, support.prototypes, support.proto_valid), masks

    def encode_support(self, images: Tensor, masks: Tensor, labels: Tensor) -> SupportMemory:
        """Encode a support set: ``images`` (N, 3, H, W), ``masks`` (N, H, W) of the annotated
        instance, ``labels`` (N,) its class. Classes without shots are simply absent."""
        self._check_images(images, "support images")
        n = images.shape[0]
        if masks.shape != (n, *images.shape[-2:]):
            raise GraphError(f"support masks: expected shape {(n, *images.shape[-2:])}, "
                             f"got {tuple(masks.shape)}")
        if labels.shape != (n,):
            raise GraphError(f"support labels: expected shape ({n},), got {tuple(labels.shape)}")
        bad = ((labels < 0) | (labels >= self.cfg.num_classes)).nonzero()
        if len(bad):
            raise GraphError(f"support labels: entry {int(bad[0])} = {int(labels[bad[0]])} "
                             f"outside [0, {self.cfg.num_classes})")
        mem = SupportMemory()
        if not self.uses_support:
            return mem
        labels = labels.long()
        feats = self.features(images)
        small = F.adaptive_avg_pool2d(masks.float()[:, None], feats.shape[-2:])[:, 0]
        if self.ref1 is not None:
            pooled, valid = mask_pool(feats, small)
            mem.centres, mem.centre_valid = class_centres(pooled, valid, labels,
                                                          self.cfg.num_classes)
        if self.ref2 is not None:
            mem.queries, mem.query_valid = self._select_queries(feats, small, labels)
        if self.support_head is not None:
            mem.prototypes, mem.proto_valid = self.support_head.prototypes(mem)
        return mem

    def _select_queries(self, feats: Tensor, masks: Tensor, labels: Tensor
                        ) -> tuple[Tensor, Tensor]:
        """Top-k support object queries per class (by ``topk_rule``) from the shared decoder."""
        cfg = self.cfg
        q = self.decode(feats)[-1]                                        # (N, Q, d)
        logits, mlogits = self.heads(q, feats)
        with torch.no_grad():
            if cfg.topk_rule == "mask":
                p = mlogits.sigmoid().flatten(2)
                t = masks.flatten(1)[:, None, :]
                score = 2 * (p * t).sum(-1) / (p.sum(-1) + t.sum(-1) + 1.0)
            else:
                probs = logits.softmax(-1)
                score = probs.gather(2, labels[:, None, None].expand(-1, q.shape[1], 1))[..., 0]
            # an empty support mask selects nothing
            score = score.masked_fill((masks.flatten(1).sum(1) <= 0)[:, None], float("-inf"))
        out = q.new_zeros(cfg.num_classes, cfg.topk, q.shape[-1])
        valid = torch.zeros(cfg.num_classes, cfg.topk, dtype=torch.bool, device=q.device)
        flat_q, flat_s = q.reshape(-1, q.shape[-1]), score.reshape(-1)
        flat_lab = labels[:, None].expand(-1, q.shape[1]).reshape(-1)
        for c in labels.unique().tolist():
            idx = (flat_lab == c).nonzero()[:, 0]
            s = flat_s[idx]
            keep = s.isfinite()
            idx, s = idx[keep], s[keep]
            if not len(idx):
                continue
            top = s.topk(min(cfg.topk, len(idx))).indices
            out[c, : len(top)] = flat_q[idx[top]]
            valid[c, : len(top)] = True
        return out, valid

    def forward(self, images: Tensor, support: SupportMemory | None = None) -> dict[str, Tensor]:
        """Predict for ``images`` (B, 3, H, W) given an encoded support set.

        Returns ``pred_logits`` (B, Q, C+1), ``pred_masks`` (B, Q, H/4, W/4) and ``aux`` (a list
        of the same pairs for the earlier decoder layers).
        """
        self._check_images(images, "images")
        if self.uses_support and support is None:
            raise GraphError("support: this variant uses Reference 1/2 and needs encode_support()")
        feats = self.features(images)
        if self.ref1 is not None and support.centres is not None:
            feats = self.ref1(feats, support.centres, support.centre_valid)
        outs = self.decode(feats)
        preds = []
        for q in outs:
            # linking is applied to every layer's queries (for the aux losses), not fed back
            if self.ref2 is not None and support.queries is not None:
                q = self.ref2(q, support.queries, support.query_valid)
            preds.append(self.heads(q, feats, support))
        logits, masks = preds[-1]
        return {"pred_logits": logits, "pred_masks": masks,
                "aux": [{"pred_logits": lg, "pred_masks": m} for lg, m in preds[:-1]]}

    # -- training
    @torch.no_grad()
    def match(self, logits: Tensor, masks: Tensor, target: dict[str, Tensor]
              ) -> tuple[Tensor, Tensor]:
        """Hungarian matching for one image: (query indices, target indices)."""
        cfg = self.cfg
        tgt_lab, tgt_mask = target["labels"], target["masks"]
        if len(tgt_lab) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=logits.device)
            return empty, empty
        prob = logits.softmax(-1)[:, tgt_lab]                                   # (Q, T)
        p = masks.flatten(1)
        t = tgt_mask.flatten(1)
        bce = (F.binary_cross_entropy_with_logits(p[:, None].expand(-1, len(t), -1),
                                                  t[None].expand(len(p), -1, -1),
                                                  reduction="none").mean(-1))
        s = p.sigmoid()
        dice = 1 - (2 * s @ t.T + 1) / (s.sum(-1)[:, None] + t.sum(-1)[None] + 1)
        cost = -cfg.w_class * prob + cfg.w_bce * bce + cfg.w_dice * dice
        qi, ti = linear_sum_assignment(cost.cpu().numpy())
        return (torch.as_tensor(qi, dtype=torch.long, device=logits.device),
                torch.as_tensor(ti, dtype=torch.long, device=logits.device))

    def _loss_one(self, logits: Tensor, masks: Tensor, targets: list[dict[str, Tensor]]
                  ) -> tuple[Tensor, Tensor, Tensor]:
        cfg = self.cfg
        b, nq, _ = logits.shape
        cls_target = torch.full((b, nq), cfg.num_classes, dtype=torch.long, device=logits.device)
        src, tgt = [], []
        for i, t in enumerate(targets):
            small = F.adaptive_avg_pool2d(t["masks"][:, None], masks.shape[-2:])[:, 0]
            qi, ti = self.match(logits[i], masks[i], {"labels": t["labels"], "masks": small})
            cls_target[i, qi] = t["labels"][ti]
            src.append(masks[i, qi])
            tgt.append(small[ti])
        weight = torch.ones(cfg.num_classes + 1, device=logits.device)
        weight[-1] = cfg.no_object_weight
        l_cls = F.cross_entropy(logits.transpose(1, 2), cls_target, weight=weight)
        src_m, tgt_m = torch.cat(src).flatten(1), torch.cat(tgt).flatten(1)
        if len(src_m) == 0:
            zero = masks.sum() * 0.0
            return l_cls, zero, zero
        l_bce = F.binary_cross_entropy_with_logits(src_m, tgt_m)
        s = src_m.sigmoid()
        l_dice = (1 - (2 * (s * tgt_m).sum(-1) + 1) / (s.sum(-1) + tgt_m.sum(-1) + 1)).mean()
        return l_cls, l_bce, l_dice

    def loss(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]
             ) -> tuple[Tensor, dict[str, float]]:
        """Class CE + mask BCE + dice after Hungarian matching, summed over decoder layers.

        ``targets``: one ``{"labels": (n,), "masks": (n, H, W)}`` per image (full resolution;
        masks are average-pooled to the prediction resolution).
        """
        if len(targets) != outputs["pred_logits"].shape[0]:
            raise GraphError(f"targets: expected {outputs['pred_logits'].shape[0]} entries, "
                             f"got {len(targets)}")
        layers = [outputs] + (outputs["aux"] if self.cfg.aux_loss else [])
        total = outputs["pred_logits"].new_zeros(())
        parts = {"cls": 0.0, "bce": 0.0, "dice": 0.0}
        for out in layers:
            c, b, d = self._loss_one(out["pred_logits"], out["pred_masks"], targets)
            total = total + self.cfg.w_class * c + self.cfg.w_bce * b + self.cfg.w_dice * d
            parts["cls"] += float(c.detach())
            parts["bce"] += float(b.detach())
            parts["dice"] += float(d.detach())
        return total, parts

    @torch.no_grad()
    def predict(self, images: Tensor, support: SupportMemory | None = None, top: int = 10,
                threshold: float = 0.5) -> list[dict[str, Tensor]]:
        """Instances per image (Mask2Former inference): the ``top`` (query, class) pairs by
        probability, masks upsampled to the image size, score = class prob × mean mask prob."""
        out = self.forward(images, support)
        probs = out["pred_logits"].softmax(-1)[..., :-1]
        masks = F.interpolate(out["pred_masks"], size=images.shape[-2:], mode="bilinear",
                              align_corners=False).sigmoid()
        nq, nc = probs.shape[1:]
        res = []
        for i in range(images.shape[0]):
            sc, idx = probs[i].flatten().topk(min(top, nq * nc))
            q, c = idx // nc, idx % nc
            m = masks[i, q]
            binary = m > threshold
            quality = (m * binary).flatten(1).sum(-1) / binary.flatten(1).sum(-1).clamp_min(1)
            res.append({"scores": sc * quality, "labels": c, "masks": binary})
        return res


# --------------------------------------------------------------------------- evaluation
def match_image(pred: dict[str, Tensor], gt_labels: Tensor, gt_masks: Tensor,
                iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCO-style greedy matching within one image, per class, in score order.

    Returns (scores, labels, is_true_positive) of the predictions as numpy arrays.
    """
    scores = pred["scores"].cpu().numpy()
    labels = pred["labels"].cpu().numpy()
    tp = np.zeros(len(scores), dtype=bool)
    if len(gt_labels) and len(scores):
        pm = pred["masks"].flatten(1).float()
        gm = gt_masks.flatten(1).float().to(pm.device)
        inter = pm @ gm.T
        iou = (inter / (pm.sum(1)[:, None] + gm.sum(1)[None] - inter).clamp_min(1)).cpu().numpy()
        gl = gt_labels.cpu().numpy()
        used = np.zeros(len(gl), dtype=bool)
        for i in np.argsort(-scores, kind="stable"):
            cand = np.where((gl == labels[i]) & ~used & (iou[i] >= iou_threshold))[0]
            if len(cand):
                j = cand[np.argmax(iou[i, cand])]
                used[j] = tp[i] = True
    return scores, labels, tp


def average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """101-point interpolated AP (COCO); NaN when there is no ground truth."""
    if num_gt == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = tp[order]
    ctp, cfp = np.cumsum(hits), np.cumsum(~hits)
    recall = ctp / num_gt
    precision = ctp / np.maximum(ctp + cfp, 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    ap = 0.0
    for r in np.linspace(0, 1, 101):
        k = np.searchsorted(recall, r, side="left")
        ap += precision[k] if k < len(precision) else 0.0
    return ap / 101


def mask_ap50(per_image: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
              gt_labels: list[np.ndarray], classes: list[int]) -> float:
    """Mean over ``classes`` of mask AP at IoU 0.5, from :func:`match_image` outputs."""
    scores = np.concatenate([p[0] for p in per_image]) if per_image else np.zeros(0)
    labels = np.concatenate([p[1] for p in per_image]) if per_image else np.zeros(0, int)
    tp = np.concatenate([p[2] for p in per_image]) if per_image else np.zeros(0, bool)
    gl = np.concatenate(gt_labels) if gt_labels else np.zeros(0, int)
    aps = [average_precision(scores[labels == c], tp[labels == c], int((gl == c).sum()))
           for c in classes]
    aps = [a for a in aps if not math.isnan(a)]
    return float(np.mean(aps)) if aps else float("nan")


# --------------------------------------------------------------------------- few-shot protocol
@dataclass
class Schedule:
    """Training schedule of the toy few-shot protocol (same for every variant).

    Args:
        base_steps: base-training steps (base classes only).
        ft_steps: K-shot fine-tuning steps on base + novel ("ft-full": all weights train).
        batch: query images per step.
        lr, ft_lr: AdamW learning rates of the two stages.
        weight_decay: AdamW weight decay.
        train_shots: support shots per class drawn each training step (the test uses all K).
        bank: single-instance support images per base class for base training.
        grad_clip: gradient-norm clip.
    """

    base_steps: int = 1500
    ft_steps: int = 300
    batch: int = 8
    lr: float = 1e-3
    ft_lr: float = 2e-4
    weight_decay: float = 1e-4
    train_shots: int = 2
    bank: int = 20
    grad_clip: float = 1.0


def stack_shots(shots: list, device: torch.device | str) -> tuple[Tensor, Tensor, Tensor]:
    """Support tensors (images, masks of the single annotated instance, labels) from
    :func:`graphkit.vision.shapes.draw_shot` samples."""
    images = torch.from_numpy(np.stack([s.image for s in shots])).to(device)
    masks = torch.from_numpy(np.stack([s.masks[0] for s in shots])).float().to(device)
    labels = torch.as_tensor([int(s.labels[0]) for s in shots], dtype=torch.long, device=device)
    return images, masks, labels


def _sample_support(rng: np.random.Generator, by_class: dict[int, list], n: int) -> list:
    out = []
    for c in sorted(by_class):
        pick = rng.choice(len(by_class[c]), min(n, len(by_class[c])), replace=False)
        out += [by_class[c][i] for i in pick]
    return out


def _train_stage(model: RefT, steps: int, lr: float, sched: Schedule, queries, supports,
                 rng: np.random.Generator, device: torch.device, log: list | None) -> None:
    from graphkit.vision.shapes import collate
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=sched.weight_decay)
    lr_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    model.train()
    for step in range(steps):
        images, targets = collate(queries(rng, sched.batch), device)
        support = None
        if model.uses_support:
            support = model.encode_support(*stack_shots(
                _sample_support(rng, supports, sched.train_shots), device))
        loss, parts = model.loss(model(images, support), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), sched.grad_clip)
        opt.step()
        lr_sched.step()
        if log is not None and (step % 100 == 0 or step == steps - 1):
            log.append({"step": step, "loss": float(loss.detach()), **parts})


def train_fsis(model: RefT, splits, seed: int, sched: Schedule | None = None,
               device: torch.device | str = "cpu", log: list | None = None) -> RefT:
    """Base training on base classes, then K-shot fine-tuning on base + novel (in place).

    Query images and the base-training support bank come from seeded generators that do not
    depend on the variant, so every variant sees the same data in the same order.
    """
    from graphkit.vision.shapes import draw_scene, draw_shot
    sched = sched or Schedule()
    device = torch.device(device)
    model.to(device)
    base = splits.base
    size = splits.test[0].image.shape[-1] if splits.test else 64
    bank_rng = np.random.default_rng([seed, 4])
    bank = {c: [draw_shot(bank_rng, c, size) for _ in range(sched.bank)] for c in base}

    def base_queries(r: np.random.Generator, n: int) -> list:
        return [draw_scene(r, base, size) for _ in range(n)]

    _train_stage(model, sched.base_steps, sched.lr, sched, base_queries, bank,
                 np.random.default_rng([seed, 3]), device, log)
    shots = {}
    for s in splits.shots:
        shots.setdefault(int(s.labels[0]), []).append(s)

    def ft_queries(r: np.random.Generator, n: int) -> list:
        return [splits.shots[i] for i in r.choice(len(splits.shots), n, replace=False)]

    _train_stage(model, sched.ft_steps, sched.ft_lr, sched, ft_queries, shots,
                 np.random.default_rng([seed, 5]), device, log)
    model.eval()
    return model


def evaluate_fsis(model: RefT, splits, device: torch.device | str = "cpu",
                  swap: tuple[int, int] | None = None, batch: int = 50
                  ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], list[np.ndarray]]:
    """Per-image AP50 matches on the test set, supports = all K shots per class.

    ``swap=(a, b)`` exchanges the support sets of classes ``a`` and ``b`` (the support-reading
    check). Returns (per-image :func:`match_image` outputs, per-image ground-truth labels).
    """
    from graphkit.vision.shapes import collate
    device = torch.device(device)
    model.to(device).eval()
    imgs, masks, labels = stack_shots(splits.shots, device)
    if swap is not None:
        a, b = swap
        labels = torch.where(labels == a, b, torch.where(labels == b, a, labels))
    with torch.no_grad():
        support = model.encode_support(imgs, masks, labels)
        per_image, gts = [], []
        for i in range(0, len(splits.test), batch):
            images, targets = collate(splits.test[i:i + batch], device)
            for pred, t in zip(model.predict(images, support), targets, strict=True):
                per_image.append(match_image(pred, t["labels"], t["masks"]))
                gts.append(t["labels"].cpu().numpy())
    return per_image, gts


def variant_config(name: str, classifier: str = "linear", **overrides) -> RefTConfig:
    """The three acceptance variants: "baseline", "ref1" (+Reference 1), "ref12" (+both).

    ``classifier`` applies to the support-using variants only ("linear" or "support", see
    :class:`RefTConfig`); the baseline has no supports and always keeps the linear class head.
    """
    flags = {"baseline": (False, False), "ref1": (True, False), "ref12": (True, True)}
    if name not in flags:
        raise GraphError(f"variant: expected one of {sorted(flags)}, got {name!r}")
    r1, r2 = flags[name]
    if name == "baseline":
        classifier = "linear"
    return RefTConfig(ref1=r1, ref2=r2, classifier=classifier, **overrides)
