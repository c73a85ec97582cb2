"""A one-layer MGNN for node classification on large graphs: propagate once, then mini-batch.

Xuexin Chen, Ruichu Cai, Yuan Fang, Min Wu, Zijian Li, Zhifeng Hao, "Motif Graph Neural Network",
IEEE TNNLS 2023, https://arxiv.org/abs/2112.14900.

Why this works: one :class:`~graphkit.nn.MotifConv` layer is linear in its weights up to the
redundancy-minimization step. With ``H0 = Â X W + X W_root + 1 bᵀ`` and ``H_k = M̂_k H0``,

    ``H_k = (M̂_k Â X) W + (M̂_k X) W_root + (M̂_k 1) bᵀ``,

so ``Â X``, ``M̂_k Â X``, ``M̂_k X`` and ``M̂_k 1`` depend on the graph only. They are computed once
(:func:`precompute_features`, sparse products in float64, motif matrices built one motif at a time
in row chunks), and each node's output then needs only its own row of these blocks. Training is
plain mini-batches over node indices (a ``torch.utils.data.DataLoader`` over indices): no
neighbour sampler, no graph in memory during training (PyG's samplers need pyg-lib or
torch-sparse, which are not installed here).

:class:`PrecomputedMGNN` has the same parameter names as a one-layer node-task
:class:`~graphkit.nn.MGNN` (``convs.0.*``, ``head.0.*``), so state dicts move between them; in eval
mode both give the same logits up to float rounding (tested). One difference in training: MGNN's
input dropout acts on ``X`` before propagation, which cannot be precomputed; here
``input_dropout`` drops entries of the precomputed blocks instead (as SIGN-style models do).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from graphkit.data.motifs import PAIRS, motif_csr, parse_motifs
from graphkit.data.validate import check_edge_index
from graphkit.errors import GraphError
from graphkit.nn.motif_conv import MotifConv, base_norm
from graphkit.runtime import resolve_device


@dataclass
class MotifFeatures:
    """Precomputed per-node blocks of a one-layer MGNN.

    ``blocks[i, s]`` is ``[Â X ‖ X]`` for slot ``s = 0`` and ``[M̂_u Â X ‖ M̂_u X]`` for slot
    ``s = 1 + u`` (``u`` a distinct normalized motif matrix), ``[N, 1 + U, 2F]``; ``ones[i, s]`` is
    ``1`` and ``(M̂_u 1)_i``, ``[N, 1 + U]``. ``slots[k]`` is the distinct matrix motif ``k`` uses
    (motifs whose blocks coincide, e.g. all closed motifs of an undirected graph, share one).
    """

    blocks: Tensor
    ones: Tensor
    slots: Tensor
    motifs: tuple[str, ...]
    pairs: str
    negative: bool
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return self.blocks.size(0)

    @property
    def in_channels(self) -> int:
        return self.blocks.size(2) // 2

    def to(self, device: torch.device | str) -> MotifFeatures:
        return MotifFeatures(self.blocks.to(device), self.ones.to(device), self.slots.to(device),
                             self.motifs, self.pairs, self.negative, dict(self.seconds))


def _normalized(mat: sp.csr_matrix, negative: bool) -> sp.csr_matrix:
    """``±D^{-1/2} M D^{-1/2}`` with ``D`` the row sums (rows summing to 0 stay 0), as
    :func:`graphkit.data.motifs.normalize_adjacency`, in float64 scipy."""
    deg = np.asarray(mat.sum(1)).ravel()
    inv = np.zeros_like(deg)
    np.power(deg, -0.5, out=inv, where=deg > 0)
    # In place (the matrix is ours): on a large graph a copy would be another full motif matrix.
    mat.data *= np.repeat(-inv if negative else inv, np.diff(mat.indptr))
    mat.data *= inv[mat.indices]
    return mat


def precompute_features(x: Tensor, edge_index: Tensor, motifs: str | Iterable[str | int] = "all",
                        *, pairs: str = "all", negative: bool = True,
                        chunk_size: int | None = 100_000,
                        dtype: torch.dtype = torch.float32) -> MotifFeatures:
    """Propagate ``X`` through ``Â`` and every ``M̂_k`` once (see the module docstring).

    Args:
        x: ``[N, F]`` node features (dense).
        edge_index: ``[2, E]`` edges of the graph.
        motifs: motif selection, as for :class:`~graphkit.nn.MGNN`.
        pairs, negative: as for :class:`~graphkit.nn.MotifConv` (same defaults).
        chunk_size: rows per block of the motif products (None: all at once); bounds memory.
        dtype: dtype of the stored blocks (products are computed in float64).

    Peak memory is about one motif matrix plus its intermediate row-block products plus the
    blocks: motifs are built and applied one at a time and freed before the next.
    """
    if not isinstance(x, Tensor) or x.dim() != 2 or x.is_sparse:
        raise GraphError("x: expected a dense [N, F] tensor")
    if pairs not in PAIRS:
        raise GraphError(f"pairs: expected one of {PAIRS}, got {pairs!r}")
    names = parse_motifs(motifs)
    n = x.size(0)
    check_edge_index(edge_index, n)
    edge_index = edge_index.cpu()
    seconds = {"base": 0.0, "motifs": 0.0, "propagate": 0.0}
    start = time.perf_counter()
    feats = x.detach().cpu().double().numpy()
    norm = base_norm(edge_index, n, negative, dtype=torch.float64).numpy()
    # Â acts like propagate (source -> target): row = target, column = source.
    base = sp.csr_matrix((norm, (edge_index[1].numpy(), edge_index[0].numpy())), shape=(n, n))
    base_x = base @ feats
    del base
    seconds["base"] = time.perf_counter() - start
    slot_blocks: list[np.ndarray] = [np.concatenate([base_x, feats], 1)]
    slot_ones: list[np.ndarray] = [np.ones(n)]
    slots: list[int] = []
    for name in names:
        start = time.perf_counter()
        mat = _normalized(motif_csr(edge_index, n, name, pairs=pairs,
                                    chunk_size=chunk_size)[name], negative)
        seconds["motifs"] += time.perf_counter() - start
        start = time.perf_counter()
        block = np.concatenate([mat @ base_x, mat @ feats], 1)
        ones = np.asarray(mat.sum(1)).ravel()
        del mat
        for u in range(1, len(slot_blocks)):
            if np.allclose(slot_blocks[u], block, rtol=1e-10, atol=1e-13) \
                    and np.allclose(slot_ones[u], ones, rtol=1e-10, atol=1e-13):
                slots.append(u - 1)
                break
        else:
            slots.append(len(slot_blocks) - 1)
            slot_blocks.append(block)
            slot_ones.append(ones)
        seconds["propagate"] += time.perf_counter() - start
    blocks = torch.from_numpy(np.stack(slot_blocks, 1)).to(dtype)
    ones_t = torch.from_numpy(np.stack(slot_ones, 1)).to(dtype)
    return MotifFeatures(blocks, ones_t, torch.tensor(slots, dtype=torch.long), names, pairs,
                         negative, seconds)


class PrecomputedMGNN(nn.Module):
    """One-layer node-classification MGNN on :class:`MotifFeatures` (see the module docstring).

    Args mirror :class:`~graphkit.nn.MGNN` with ``num_layers=1, task="node"``; ``input_dropout``
    drops entries of the precomputed blocks (the one training-time difference).
    """

    def __init__(self, in_channels: int, hidden_channels: int = 16, out_channels: int = 2,
                 motifs: str | Iterable[str | int] = "all", dropout: float = 0.5,
                 input_dropout: float = 0.5, compress_channels: int = 6, *, pairs: str = "all",
                 negative: bool = True, att_act: str = "sigmoid", motif_dropout: float = 0.1,
                 att_dropout: float = 0.1):
        super().__init__()
        if not isinstance(out_channels, int) or out_channels < 1:
            raise GraphError(f"out_channels: expected a positive int, got {out_channels!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.motifs = parse_motifs(motifs)
        self.pairs, self.negative = pairs, negative
        self.dropout, self.input_dropout = dropout, input_dropout
        # Same module names as MGNN (convs.0, head.0) so state dicts are interchangeable.
        self.convs = nn.ModuleList([MotifConv(
            in_channels, hidden_channels, compress_channels, self.motifs, pairs=pairs,
            negative=negative, att_act=att_act, motif_dropout=motif_dropout,
            att_dropout=att_dropout, cache_size=0)])
        self.head = nn.Sequential(nn.Linear(self.convs[0].out_features, out_channels))

    @classmethod
    def from_mgnn(cls, model: nn.Module) -> PrecomputedMGNN:
        """A copy of a one-layer node-task :class:`~graphkit.nn.MGNN` (same weights)."""
        if getattr(model, "task", None) != "node" or len(getattr(model, "convs", ())) != 1:
            raise GraphError("from_mgnn: expected an MGNN with task='node' and num_layers=1")
        conv = model.convs[0]
        out = cls(model.in_channels, conv.out_channels, model.out_channels, model.motifs,
                  model.dropout, model.input_dropout, conv.compress_channels, pairs=conv.pairs,
                  negative=conv.negative, att_act=conv.att_act,
                  motif_dropout=conv.motif_dropout, att_dropout=conv.att_dropout)
        out.load_state_dict(model.state_dict())
        return out.to(next(model.parameters()).device)

    def reset_parameters(self) -> None:
        self.convs[0].reset_parameters()
        self.head[0].reset_parameters()

    def check(self, features: MotifFeatures) -> None:
        if features.motifs != self.motifs or features.pairs != self.pairs \
                or features.negative != self.negative:
            raise GraphError(f"features: precomputed for motifs={list(features.motifs)}, "
                             f"pairs={features.pairs!r}, negative={features.negative}; the model "
                             f"uses {list(self.motifs)}, {self.pairs!r}, {self.negative}")
        if features.in_channels != self.in_channels:
            raise GraphError(f"features: {features.in_channels} input channels, model expects "
                             f"{self.in_channels}")

    def forward(self, features: MotifFeatures, index: Tensor | None = None) -> Tensor:
        """Logits ``[len(index), out_channels]`` of the nodes ``index`` (all nodes when None)."""
        self.check(features)
        conv = self.convs[0]
        blocks = features.blocks if index is None else features.blocks[index]
        ones = features.ones if index is None else features.ones[index]
        blocks = F.dropout(blocks, self.input_dropout, self.training)
        d = conv.out_channels
        # lin.weight is [2d, F]: rows :d are W, rows d: are W_root; stack them as [2F, d].
        stacked = torch.cat([conv.lin.weight[:d].t(), conv.lin.weight[d:].t()], 0)
        h = blocks @ stacked + ones.unsqueeze(-1) * conv.bias          # [B, 1 + U, d]
        hk = h[:, 1 + features.slots.to(h.device)].transpose(0, 1)      # [K, B, d]
        z = conv.combine(h[:, 0], hk)
        z = F.dropout(F.relu(z), self.dropout, self.training)
        return self.head(z)


def _indices(mask_or_index: Tensor, n: int) -> Tensor:
    t = torch.as_tensor(mask_or_index)
    if t.dtype == torch.bool:
        if t.numel() != n:
            raise GraphError(f"mask: {t.numel()} entries for {n} nodes")
        return t.nonzero().view(-1)
    return t.long().view(-1)


def _loader(index: Tensor, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """Batches of node indices: the dataset is the index tensor, indexed by whole batches."""
    sampler = RandomSampler(index, generator=torch.Generator().manual_seed(seed)) if shuffle \
        else SequentialSampler(index)
    return DataLoader(index, sampler=BatchSampler(sampler, batch_size, drop_last=False),
                      batch_size=None)


@torch.no_grad()
def predict(model: PrecomputedMGNN, features: MotifFeatures, index: Tensor | None = None,
            batch_size: int = 65_536) -> Tensor:
    """Eval-mode logits of ``index`` (all nodes when None), in batches."""
    model.eval()
    index = torch.arange(features.num_nodes) if index is None else _indices(index,
                                                                             features.num_nodes)
    dev = features.blocks.device
    return torch.cat([model(features, batch.to(dev)) for batch in
                      _loader(index, batch_size, False, 0)]) if index.numel() else \
        torch.empty(0, model.out_channels, device=dev)


def fit_precomputed(model: PrecomputedMGNN, features: MotifFeatures, y: Tensor,
                    train: Tensor, val: Tensor, test: Tensor | None = None, *,
                    epochs: int = 20, batch_size: int = 1024, lr: float = 0.01,
                    weight_decay: float = 5e-4, seed: int = 0,
                    device: str | torch.device = "auto", progress: bool = False,
                    eval_batch_size: int = 65_536) -> dict[str, Any]:
    """Mini-batch training with Adam and cross-entropy over node indices.

    ``train``/``val``/``test`` are boolean masks or index tensors. The weights of the epoch with
    the best validation accuracy (ties: lower validation loss) are restored; test accuracy is
    read at that epoch only. ``seed`` fixes the shuffling and dropout. Returns ``train_acc``,
    ``val_acc``, ``test_acc``, ``best_epoch``, ``seconds`` and ``epoch_seconds`` (training part
    of each epoch, without the validation pass).
    """
    model.check(features)
    n = features.num_nodes
    if not isinstance(y, Tensor) or y.numel() != n:
        raise GraphError(f"y: expected {n} labels")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise GraphError(f"batch_size: expected a positive int, got {batch_size!r}")
    train_i, val_i = _indices(train, n), _indices(val, n)
    test_i = _indices(test, n) if test is not None else None
    if train_i.numel() == 0:
        raise GraphError("train: no training nodes")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    model, features, y = model.to(dev), features.to(dev), y.to(dev).long()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loader = _loader(train_i, batch_size, True, seed)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs * len(loader), desc="MGNN", unit="batch")
    best, best_state, best_epoch = (-1.0, float("inf")), None, -1
    epoch_seconds: list[float] = []
    start = time.perf_counter()

    def acc(index: Tensor) -> tuple[float, float]:
        if index.numel() == 0:
            return float("nan"), float("nan")
        out = predict(model, features, index, eval_batch_size)
        target = y[index.to(dev)]
        return float((out.argmax(-1) == target).float().mean()), \
            float(F.cross_entropy(out, target))

    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for batch in loader:
            batch = batch.to(dev)
            opt.zero_grad()
            F.cross_entropy(model(features, batch), y[batch]).backward()
            opt.step()
            if bar is not None:
                bar.update(1)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        epoch_seconds.append(time.perf_counter() - t0)
        val_acc, val_loss = acc(val_i)
        if (val_acc, -val_loss) > (best[0], -best[1]):
            best, best_epoch = (val_acc, val_loss), epoch
            best_state = copy.deepcopy(model.state_dict())
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"train_acc": acc(train_i)[0], "val_acc": acc(val_i)[0],
            "test_acc": acc(test_i)[0] if test_i is not None else float("nan"),
            "best_epoch": best_epoch, "seconds": seconds, "epoch_seconds": epoch_seconds}


__all__ = ["MotifFeatures", "PrecomputedMGNN", "fit_precomputed", "precompute_features", "predict"]
