"""Mini-batch training for graph classification, on one process or many (DDP via torchrun).

Distributed runs split every *global* batch of ``batch_size`` graphs evenly over the ranks
(rank ``r`` takes positions ``r, r + W, ...``), and DDP averages the ranks' mean losses, which is
the mean loss over the global batch. A single process with the same ``batch_size`` and seed sees
the same global batches, so both runs follow the same trajectory up to floating-point summation
order (exactly so for models without dropout or batch norm; with them, the random streams and
per-rank statistics differ). Every rank evaluates the full validation and test sets and selects
the same epoch, so ranks end with identical weights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch, Data

from graphkit import distributed as gdist
from graphkit.data.validate import validate
from graphkit.errors import GraphError
from graphkit.runtime import resolve_device

GraphForward = Callable[[torch.nn.Module, Batch], Tensor]


def default_graph_forward(model: torch.nn.Module, batch: Batch) -> Tensor:
    return model(batch.x, batch.edge_index, batch.batch)


def global_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[Tensor]:
    """The epoch's shuffled global batches of indices ``0..n-1`` (same on every rank)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return list(perm.split(batch_size))


def _collate(dataset: Sequence[Data], idx: Sequence[int]) -> Batch:
    return Batch.from_data_list([dataset[int(i)] for i in idx])


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: Sequence[Data], idx: Sequence[int],
             device: torch.device, forward: GraphForward = default_graph_forward,
             batch_size: int = 256) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``dataset[idx]``."""
    model.eval()
    loss_sum, correct, total = 0.0, 0, 0
    for start in range(0, len(idx), batch_size):
        batch = _collate(dataset, idx[start:start + batch_size]).to(device)
        out = forward(model, batch)
        y = batch.y.view(-1)
        loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(-1) == y).sum())
        total += y.numel()
    return loss_sum / max(total, 1), correct / max(total, 1)


def fit_graph(model: torch.nn.Module, dataset: Sequence[Data], train_idx: Sequence[int],
              val_idx: Sequence[int], test_idx: Sequence[int], *, epochs: int = 100,
              batch_size: int = 32, lr: float = 0.01, weight_decay: float = 0.0, seed: int = 0,
              device: str | torch.device = "auto", forward: GraphForward = default_graph_forward,
              select: str = "val_loss") -> dict[str, Any]:
    """Train a graph classifier with Adam and cross-entropy; under torchrun, with DDP.

    Args:
        model: maps a :class:`~torch_geometric.data.Batch` (through ``forward``) to logits.
        dataset: a PyG graph collection; ``train_idx``/``val_idx``/``test_idx`` index into it.
        batch_size: the global batch size (split over ranks when distributed; must divide
            evenly into per-rank batches for exact equivalence with one process).
        select: ``"val_loss"`` (lowest validation loss) or ``"val_acc"``; test accuracy is read
            only at the selected epoch.

    Returns:
        ``train_loss``, ``val_acc``, ``test_acc``, ``best_epoch``, ``seconds``, ``world_size``.
    """
    if select not in ("val_loss", "val_acc"):
        raise GraphError(f"select: expected 'val_loss' or 'val_acc', got {select!r}")
    if len(train_idx) == 0:
        raise GraphError("train_idx: empty")
    validate(dataset[int(train_idx[0])])
    world, rank = gdist.world_size(), gdist.rank()
    if batch_size % world:
        raise GraphError(f"batch_size={batch_size} must be a multiple of the world size {world}")
    dev = gdist.rank_device(device) if gdist.initialized() else resolve_device(device)
    model = model.to(dev)
    net: torch.nn.Module = model
    if gdist.initialized():
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    train_idx = torch.as_tensor(list(train_idx))
    best_key, best_state, best_epoch, last_loss = None, None, -1, float("nan")
    start = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        for batch_positions in global_batches(len(train_idx), batch_size, seed, epoch):
            # Every rank must step together: drop a last partial batch's remainder that cannot
            # be split evenly (nothing is dropped on one process).
            batch_positions = batch_positions[:len(batch_positions) // world * world]
            if batch_positions.numel() == 0:
                continue
            mine = train_idx[batch_positions][rank::world]
            batch = _collate(dataset, mine).to(dev)
            opt.zero_grad()
            loss = F.cross_entropy(forward(net, batch), batch.y.view(-1))
            loss.backward()
            opt.step()
            last_loss = float(loss.detach())
        val_loss, val_acc = evaluate(model, dataset, list(val_idx), dev, forward)
        key = (val_loss,) if select == "val_loss" else (-val_acc, val_loss)
        if best_key is None or key < best_key:
            best_key, best_epoch = key, epoch
            best_state = copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    _, val_acc = evaluate(model, dataset, list(val_idx), dev, forward)
    _, test_acc = evaluate(model, dataset, list(test_idx), dev, forward)
    return {"train_loss": last_loss, "val_acc": val_acc, "test_acc": test_acc,
            "best_epoch": best_epoch, "seconds": seconds, "world_size": world}
