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


class _ReduceSum(torch.autograd.Function):
    """All-reduce (sum) whose backward scales the gradient by the world size.

    Every rank computes the same global loss from the reduced value, so each rank back-propagates
    ∂L/∂S into its own partial sum; DDP then *averages* the parameter gradients over ranks, and the
    factor ``world`` turns that average back into the exact gradient of the global loss.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, world: int) -> torch.Tensor:
        ctx.world = world
        out = tensor.clone()
        if initialized():
            dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        return grad * ctx.world, None


class RowShard:
    """This rank's contiguous block ``[start, stop)`` of the rows of an N-row matrix.

    Losses and statistics that are sums over rows (Gram matrices, cluster sums and counts,
    K-means centroid sums) are computed from per-rank partial sums through :meth:`sum`; a
    single process is the trivial shard ``[0, N)`` whose reductions are the identity, so the same
    code serves both. Only per-row *scalars* (labels, distances) are ever gathered in full
    (:meth:`gather`); the N×d matrices stay split.

    Args:
        n_total: number of rows N.
        rank_: this rank (default: the process group's).
        world: number of ranks (default: the process group's; 1 without one).
    """

    def __init__(self, n_total: int, rank_: int | None = None, world: int | None = None) -> None:
        self.n_total = int(n_total)
        self.rank = rank() if rank_ is None else rank_
        self.world = world_size() if world is None else world
        if self.world > self.n_total:
            raise GraphError(f"{self.world} ranks for {self.n_total} rows: every rank needs a row")
        self.bounds = [(self.n_total * r // self.world, self.n_total * (r + 1) // self.world)
                       for r in range(self.world)]
        self.start, self.stop = self.bounds[self.rank]

    @property
    def trivial(self) -> bool:
        """One process holding every row: reductions are the identity."""
        return self.world == 1

    @property
    def size(self) -> int:
        return self.stop - self.start

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks, differentiable (see :class:`_ReduceSum`); identity when trivial."""
        if self.trivial:
            return tensor
        return _ReduceSum.apply(tensor, self.world)

    def rows(self, tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` (global row numbers) of the row-sharded ``tensor``, on every rank."""
        if self.trivial:
            return tensor[index]
        out = tensor.new_zeros((index.numel(), *tensor.shape[1:]))
        mine = (index >= self.start) & (index < self.stop)
        out[mine] = tensor[index[mine] - self.start]
        return all_reduce_sum(out)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """The full N-row tensor from every rank's block (for per-row scalars such as labels)."""
        if self.trivial:
            return tensor
        longest = max(b - a for a, b in self.bounds)
        pad = tensor.new_zeros((longest, *tensor.shape[1:]))
        pad[:self.size] = tensor
        parts = [torch.empty_like(pad) for _ in range(self.world)]
        dist.all_gather(parts, pad)
        return torch.cat([p[:b - a] for p, (a, b) in zip(parts, self.bounds)])
