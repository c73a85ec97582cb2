"""torch.distributed helpers: graphkit scales out with DDP launched by ``torchrun``, never with a
scheduler of its own.

``torchrun --standalone --nproc-per-node 2 -m graphkit ... --distributed`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables; :func:`process_group` joins the group
with NCCL when CUDA is available and gloo otherwise, and leaves it on exit. Without those variables
every helper degrades to the single-process case, so the same code runs with and without torchrun.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from graphkit.errors import GraphError

T = TypeVar("T")


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher setting RANK)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if initialized() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def rank_device(device: str | torch.device = "auto") -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` under ``'auto'`` with CUDA, else CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            dev = torch.device("cuda", local_rank() % torch.cuda.device_count())
            torch.cuda.set_device(dev)
            return dev
        return torch.device("cpu")
    return torch.device(device)


@contextlib.contextmanager
def process_group(backend: str = "auto") -> Iterator[None]:
    """Join the process group for the duration of the block (a no-op outside torchrun)."""
    if not launched() or initialized():
        yield
        return
    if not dist.is_available():
        raise GraphError("--distributed: this torch build has no torch.distributed")
    dist.init_process_group(backend=default_backend() if backend == "auto" else backend)
    try:
        yield
    finally:
        dist.barrier()
        dist.destroy_process_group()


def shard(items: Sequence[T], rank_: int | None = None, world: int | None = None) -> list[T]:
    """The items this rank handles: every ``world``-th item starting at ``rank``."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    return list(items[r::w])


def gather_objects(obj: Any) -> list[Any]:
    """``all_gather_object``: every rank's ``obj`` in rank order (``[obj]`` without a group)."""
    if not initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place and return it (identity without a group)."""
    if initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def unshard(shards: list[list[T]]) -> list[T]:
    """Invert :func:`shard`: interleave per-rank lists back into the original order."""
    out: list[T] = []
    longest = max((len(s) for s in shards), default=0)
    for i in range(longest):
        for s in shards:
            if i < len(s):
                out.append(s[i])
    return out
