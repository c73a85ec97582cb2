"""A plain full-batch training loop for node classification, shared by the demo, the benchmarks
and the explainer tests (model selection on validation accuracy, never on test labels)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from graphkit.data.validate import validate
from graphkit.errors import GraphError
from graphkit.runtime import resolve_device

Forward = Callable[[torch.nn.Module, Data], Tensor]


def default_forward(model: torch.nn.Module, data: Data) -> Tensor:
    return model(data.x, data.edge_index)


@torch.no_grad()
def accuracy(logits: Tensor, y: Tensor, mask: Tensor) -> float:
    if int(mask.sum()) == 0:
        return float("nan")
    return float((logits[mask].argmax(-1) == y[mask]).float().mean())


def fit_node(model: torch.nn.Module, data: Data, *, epochs: int = 200, lr: float = 0.01,
             weight_decay: float = 5e-4, device: str | torch.device = "auto",
             forward: Forward = default_forward, restore_best: bool = True) -> dict[str, Any]:
    """Train ``model`` on ``data.train_mask`` with Adam and cross-entropy.

    The weights of the epoch with the best validation accuracy (ties: lower validation loss) are
    restored at the end when ``restore_best``; test accuracy is read at that epoch only.
    Returns ``train_acc``, ``val_acc``, ``test_acc``, ``best_epoch`` and ``seconds``.
    """
    validate(data, task="node")
    for key in ("train_mask", "val_mask", "test_mask"):
        if getattr(data, key, None) is None:
            raise GraphError(f"{key}: fit_node needs train/val/test masks on data")
    dev = resolve_device(device)
    model, data = model.to(dev), data.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best = (-1.0, float("inf"))
    best_state, best_epoch = None, -1
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        opt.zero_grad()
        out = forward(model, data)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            out = forward(model, data)
            val_acc = accuracy(out, data.y, data.val_mask)
            val_loss = float(F.cross_entropy(out[data.val_mask], data.y[data.val_mask]))
        if (val_acc, -val_loss) > (best[0], -best[1]):
            best, best_epoch = (val_acc, val_loss), epoch
            best_state = copy.deepcopy(model.state_dict()) if restore_best else None
    seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        out = forward(model, data)
    return {"train_acc": accuracy(out, data.y, data.train_mask),
            "val_acc": accuracy(out, data.y, data.val_mask),
            "test_acc": accuracy(out, data.y, data.test_mask),
            "best_epoch": best_epoch, "seconds": seconds}
