"""Explaining many targets in chunks, sharded over the ranks of a ``torch.distributed`` group.

:func:`explain_targets` is what ``graphkit explain`` runs, with or without ``torchrun``. The unit of
work is a *chunk* of ``batch_size`` consecutive targets, and a chunk's result depends only on the
model, the graph, its targets and ``(seed, chunk index)``, never on which rank runs it or on the
other chunks:

- NSEG starts every target's mask from a generator seeded by ``(seed, target id)`` and restarts
  its noise stream from ``seed`` at the start of every vectorised batch; a chunk is exactly one
  such batch (the explainer's own batch size is set to the chunk size), so a chunked run equals
  the one-call ``NSEG.explain`` over all targets.
- ``random`` and ``gnnexplainer`` draw from :func:`chunk_seed` (``seed`` itself for chunk 0, so a
  run of at most ``batch_size`` targets is unchanged); ``saliency`` draws nothing.
- ``pgexplainer`` trains one explainer network on all targets together, so it cannot be split:
  it runs unchunked in one process and is refused under a process group of more than one rank.

Chunks are dealt round-robin over ranks (:func:`graphkit.distributed.shard`); every rank explains
its chunks, the masks are gathered (:func:`graphkit.distributed.gather_objects`), put back in
chunk order (:func:`graphkit.distributed.unshard`) and laid over the computation subgraphs of all
targets, built once on the receiving rank. One process is the one-rank case of the same code, so
``torchrun --nproc-per-node N`` gives the same masks and metrics as one process for the same seed
(up to floating-point differences between thread counts: torchrun runs every rank with
``OMP_NUM_THREADS=1`` unless told otherwise).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from graphkit import distributed as gdist
from graphkit.errors import GraphError
from graphkit.explain._batch import BatchExplanation, build_batch, check_index
from graphkit.explain.baselines import EXPLAINERS, run_explainer

# explainers whose chunk results do not depend on the chunk's position (see the module docstring)
_POSITION_FREE = ("nseg", "nseg-joint", "saliency")


def chunk_seed(seed: int, chunk: int) -> int:
    """Seed of chunk ``chunk`` for explainers that draw random numbers per call: ``seed`` for
    chunk 0, otherwise a hash of ``(seed, chunk)`` (``numpy.random.SeedSequence``), so chunks
    get independent streams that do not depend on the rank running them."""
    if chunk == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(chunk)])
               .generate_state(1)[0])


def chunks(index: Tensor, batch_size: int) -> list[Tensor]:
    """``index`` cut into consecutive chunks of ``batch_size`` targets (the last may be
    shorter)."""
    if int(batch_size) < 1:
        raise GraphError(f"batch_size: expected a positive integer, got {batch_size}")
    return list(index.split(int(batch_size)))


def sync_model(model: torch.nn.Module, src: int = 0) -> torch.nn.Module:
    """Broadcast ``model``'s parameters and buffers from rank ``src`` (in place; a no-op without
    a process group), so every rank explains the very same model even if training was not
    bit-for-bit reproducible across ranks."""
    if gdist.initialized() and gdist.world_size() > 1:
        import torch.distributed as dist
        with torch.no_grad():
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, src=src)
    return model


def _num_targets(x: Tensor, index: Any, task_level: str, kwargs: dict[str, Any]) -> Tensor:
    if task_level == "graph":
        batch = kwargs.get("batch")
        if batch is None:
            raise GraphError("batch: graph-level explanation needs the model's `batch` vector")
        size = int(torch.as_tensor(batch).max()) + 1
        return check_index(index, size, "graph")
    if task_level != "node":
        raise GraphError(f"task_level: expected 'node' or 'graph', got {task_level!r}")
    return check_index(index, x.size(0), "node")


def explain_targets(name: str, model: torch.nn.Module, x: Tensor, edge_index: Tensor,
                    index: Any = None, *, epochs: int = 500, seed: int = 0,
                    batch_size: int = 128, task_level: str = "node",
                    nseg_kw: dict[str, Any] | None = None, root: int | None = 0,
                    sync: bool = True, pgexplainer_epochs: int | None = None,
                    **kwargs: Any) -> BatchExplanation | None:
    """Explain every target in ``index`` with explainer ``name`` (one of
    :data:`~graphkit.explain.EXPLAINERS`), in chunks of ``batch_size`` targets, sharded over the
    ranks when a process group is initialised (``torchrun ... --distributed``, or inside
    :func:`graphkit.distributed.process_group`).

    Every rank must call it with the same arguments. The result is the same for any number of
    ranks (see the module docstring); ``seconds`` is the wall time of the whole call on the
    receiving rank, so ``seconds / num_instances`` shows the speed-up.

    Args:
        name: the explainer.
        model: the trained model (put in eval mode; broadcast from rank 0 when ``sync``).
        x, edge_index: the graph (the same on every rank).
        index: target node ids, or graph ids of ``kwargs["batch"]`` for graph tasks.
        epochs: explainer epochs.
        seed: the run's seed; chunk seeds derive from it (:func:`chunk_seed`).
        batch_size: targets per chunk (NSEG optimises a chunk as one vectorised batch).
        task_level: ``"node"`` or ``"graph"``.
        nseg_kw: further :class:`~graphkit.explain.NSEG` arguments (its ``batch_size`` is
            replaced by ``batch_size``).
        root: the rank that receives the merged explanation (others get ``None``); ``None``:
            every rank gets it.
        sync: broadcast the model from rank 0 first.
        pgexplainer_epochs: PGExplainer's passes over all targets (default
            :data:`~graphkit.explain.baselines.PGEXPLAINER_EPOCHS`; see
            :func:`~graphkit.explain.baselines.run_explainer`).
        **kwargs: further model arguments (``batch`` for graph tasks).

    Returns:
        The :class:`~graphkit.explain.BatchExplanation` of all targets in ``index`` order, on
        ``root`` (every rank with ``root=None``; always in one process).
    """
    if name not in EXPLAINERS:
        raise GraphError(f"explainer: expected one of {EXPLAINERS}, got {name!r}")
    start = time.perf_counter()
    world, me = gdist.world_size(), gdist.rank()
    if root is not None and not 0 <= root < world:
        raise GraphError(f"root: expected a rank in [0, {world}), got {root}")
    if name == "pgexplainer":
        if world > 1:
            raise GraphError("pgexplainer: trains one explainer network on all targets and "
                             "cannot be sharded; run it without --distributed")
        res = run_explainer(name, model, x, edge_index, index, epochs=epochs, seed=seed,
                            task_level=task_level, pgexplainer_epochs=pgexplainer_epochs,
                            **kwargs)
        res.seconds = time.perf_counter() - start
        return res
    idx = _num_targets(x, index, task_level, kwargs)
    parts = chunks(idx, batch_size)
    if sync:
        sync_model(model)
    nseg_kw = {**(nseg_kw or {}), "batch_size": int(batch_size)}
    numbered = list(enumerate(parts))
    mine: list[dict[str, Any]] = []
    for c, part in gdist.shard(numbered, me, world):
        s = seed if name in _POSITION_FREE else chunk_seed(seed, c)
        res = run_explainer(name, model, x, edge_index, part, epochs=epochs, seed=s,
                            task_level=task_level, nseg_kw=nseg_kw, **kwargs)
        mine.append({"chunk": c, "edge_mask": res.edge_mask.detach().cpu(),
                     "node_mask": None if res.node_mask is None
                     else res.node_mask.detach().cpu(),
                     "x_cf": None if res.x_cf is None else res.x_cf.detach().cpu(),
                     "target": res.target.detach().cpu(), "method": res.method,
                     "sub": res.sub if len(parts) == 1 else None})
    shards = gdist.gather_objects(mine) if world > 1 else [mine]
    if root is not None and me != root:
        return None
    done = gdist.unshard(shards)
    if [d["chunk"] for d in done] != list(range(len(parts))):
        raise GraphError("explain_targets: ranks returned an inconsistent set of chunks "
                         "(every rank must get the same targets and batch_size)")
    dev = x.device
    sub = done[0]["sub"] if len(parts) == 1 and done[0]["sub"] is not None else None
    if sub is None:
        # the computation subgraphs of all targets, laid out exactly as NSEG.explain lays them
        hops = nseg_kw.get("num_hops") if name in ("nseg", "nseg-joint") else None
        sub = build_batch(model, x, edge_index, idx, task_level=task_level, hops=hops,
                          **kwargs)

    def cat(key: str) -> Tensor | None:
        if done[0][key] is None:
            return None
        return torch.cat([d[key] for d in done]).to(dev)

    edge_mask, target = cat("edge_mask"), cat("target")
    assert edge_mask is not None and target is not None
    if edge_mask.numel() != sub.edge_index.size(1):
        raise GraphError("explain_targets: chunk masks do not cover the targets' subgraphs")
    return BatchExplanation(sub=sub, target=target, edge_mask=edge_mask,
                            node_mask=cat("node_mask"), x_cf=cat("x_cf"),
                            seconds=time.perf_counter() - start, method=done[0]["method"])
