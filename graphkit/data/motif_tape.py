"""Differentiable motif matrices with the sparsity pattern worked out once per graph.

Explainers call an MGNN hundreds of times on the same edges with new soft edge weights (masks),
and every call recomputes the 13 motif matrices as polynomials in those weights
(:func:`graphkit.data.motifs.motif_adjacency`). Every intermediate of Benson et al.'s formulas
(``A·A``, ``B ∘ A``, sums, transposes) has a sparsity pattern that depends only on the edges, not
on the weights. A :class:`Tape` records, on the first call for a graph, the index maps of every
operation (which entries of the operands meet in which entry of the result); later calls replay
them as gathers, products and ``index_add``, which autograd differentiates cheaply, instead of
re-sorting and coalescing torch sparse tensors at every step.

Row blocks (``chunk_size``) are supported as in the other backends; the returned matrices drop
entries whose value is exactly 0, as the scipy path does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from graphkit.cache import TensorLRU
from graphkit.errors import GraphError


@dataclass
class Pattern:
    """A ``height x n`` sparse matrix: unique ``(row, col)`` in row-major order, its values."""

    row: Tensor
    col: Tensor
    val: Tensor
    ops: Tape
    height: int

    def key(self) -> Tensor:
        return self.row * self.ops.n + self.col

    def __add__(self, other: Pattern) -> Pattern:
        return self.ops.add(self, other, 1.0)

    def __sub__(self, other: Pattern) -> Pattern:
        return self.ops.add(self, other, -1.0)


class Tape:
    """The operations backend of :func:`graphkit.data.motifs._formulas` over :class:`Pattern`.

    A new tape records the index maps of each operation in call order; :meth:`replay` returns a
    backend that reuses them, so the same sequence of operations on the same edges only gathers
    and scatters values.
    """

    def __init__(self, n: int):
        self.n = n
        self.steps: list[tuple[Any, ...]] = []
        self._cursor: int | None = None  # None while recording

    def replay(self) -> Tape:
        self._cursor = 0
        return self

    def _step(self, build: Any) -> tuple[Any, ...]:
        if self._cursor is None:
            with torch.no_grad():
                step = build()
            self.steps.append(step)
            return step
        step = self.steps[self._cursor]
        self._cursor += 1
        return step

    def _from_keys(self, keys: Tensor) -> tuple[Tensor, Tensor]:
        return keys // self.n, keys % self.n

    # operations of _formulas -----------------------------------------------------------------

    def matrix(self, row: Tensor, col: Tensor, val: Tensor) -> Pattern:
        def build():
            key = row * self.n + col
            order = torch.argsort(key)
            if bool((key[order][1:] == key[order][:-1]).any()):
                raise GraphError("motif tape: duplicate edges (coalesce them first)")
            return order, row[order], col[order]

        order, r, c = self._step(build)
        return Pattern(r, c, val[order], self, self.n)

    def t(self, x: Pattern) -> Pattern:
        def build():
            order = torch.argsort(x.col * self.n + x.row)
            return order, x.col[order], x.row[order]

        order, r, c = self._step(build)
        return Pattern(r, c, x.val[order], self, self.n)

    def mul(self, x: Pattern, y: Pattern) -> Pattern:
        """Element-wise product (the pattern is the intersection)."""
        def build():
            kx, ky = x.key(), y.key()
            pos = torch.searchsorted(ky, kx).clamp_max(max(ky.numel() - 1, 0))
            hit = (ky[pos] == kx) if ky.numel() else torch.zeros_like(kx, dtype=torch.bool)
            ix = hit.nonzero().view(-1)
            return ix, pos[ix], x.row[ix], x.col[ix]

        ix, iy, r, c = self._step(build)
        return Pattern(r, c, x.val[ix] * y.val[iy], self, x.height)

    def add(self, x: Pattern, y: Pattern, sign: float) -> Pattern:
        def build():
            keys, inverse = torch.unique(torch.cat([x.key(), y.key()]), return_inverse=True)
            r, c = self._from_keys(keys)
            return inverse[:x.row.numel()], inverse[x.row.numel():], r, c

        ux, uy, r, c = self._step(build)
        val = x.val.new_zeros(r.numel()).index_add(0, ux, x.val)
        return Pattern(r, c, val.index_add(0, uy, y.val, alpha=sign), self, x.height)

    def mm(self, x: Pattern, y: Pattern) -> Pattern:
        def build():
            crow = torch.zeros(self.n + 1, dtype=torch.long, device=y.row.device)
            crow[1:] = torch.cumsum(torch.bincount(y.row, minlength=self.n), 0)
            counts = crow[x.col + 1] - crow[x.col]
            ex = torch.repeat_interleave(torch.arange(x.row.numel(), device=x.row.device),
                                         counts)
            first = torch.cumsum(counts, 0) - counts
            ey = crow[x.col][ex] + torch.arange(ex.numel(), device=ex.device) - first[ex]
            keys, inverse = torch.unique(x.row[ex] * self.n + y.col[ey], return_inverse=True)
            r, c = self._from_keys(keys)
            return ex, ey, inverse, r, c

        ex, ey, inverse, r, c = self._step(build)
        val = x.val.new_zeros(r.numel()).index_add(0, inverse, x.val[ex] * y.val[ey])
        return Pattern(r, c, val, self, x.height)

    def offdiag(self, x: Pattern, offset: int = 0) -> Pattern:
        def build():
            keep = (x.row + offset != x.col).nonzero().view(-1)
            return keep, x.row[keep], x.col[keep]

        keep, r, c = self._step(build)
        return Pattern(r, c, x.val[keep], self, x.height)

    def rowsum(self, x: Pattern) -> Tensor:
        return x.val.new_zeros(self.n).index_add(0, x.row, x.val)

    def colsum(self, x: Pattern) -> Tensor:
        return x.val.new_zeros(self.n).index_add(0, x.col, x.val)

    def diag_l(self, v: Tensor, x: Pattern) -> Pattern:
        return Pattern(x.row, x.col, x.val * v[x.row], self, x.height)

    def diag_r(self, x: Pattern, v: Tensor) -> Pattern:
        return Pattern(x.row, x.col, x.val * v[x.col], self, x.height)

    def rows(self, x: Pattern, start: int, stop: int) -> Pattern:
        if (start, stop) == (0, x.height):
            return x

        def build():
            keep = ((x.row >= start) & (x.row < stop)).nonzero().view(-1)
            return keep, x.row[keep] - start, x.col[keep]

        keep, r, c = self._step(build)
        return Pattern(r, c, x.val[keep], self, stop - start)

    def vstack(self, blocks: list[Pattern]) -> Pattern:
        if len(blocks) == 1:
            return blocks[0]
        starts = torch.tensor([0] + [b.height for b in blocks[:-1]]).cumsum(0).tolist()
        return Pattern(torch.cat([b.row + s for b, s in zip(blocks, starts, strict=True)]),
                       torch.cat([b.col for b in blocks]), torch.cat([b.val for b in blocks]),
                       self, sum(b.height for b in blocks))

    def to_pyg(self, x: Pattern, device: torch.device, dtype: torch.dtype
               ) -> tuple[Tensor, Tensor]:
        keep = (x.val != 0).nonzero().view(-1)
        return torch.stack([x.row[keep], x.col[keep]]).to(device), x.val[keep].to(dtype)


class TapeCache(TensorLRU):
    """Tapes of the last few graphs, keyed by the coalesced edges, the motifs and ``pairs``.

    A hit needs an ``edge_index`` equal element by element (``torch.equal``), so an edited graph
    never replays a stale pattern."""

    def __init__(self, size: int = 2):
        super().__init__(size)

    def get(self, index: Tensor, n: int, motifs: tuple[str, ...], pairs: str) -> Tape:
        """A replaying tape for this graph, or a new one that :meth:`store` keeps once it has
        recorded a whole computation."""
        tape = self.lookup(self._key(index, n, motifs, pairs), [index])
        return Tape(n) if tape is None else tape.replay()

    def store(self, index: Tensor, motifs: tuple[str, ...], pairs: str, tape: Tape) -> None:
        if self.size <= 0 or tape._cursor is not None:
            return
        tape._cursor = -1  # recorded: replay() rewinds it
        self.put(self._key(index, tape.n, motifs, pairs), [index], tape)

    @staticmethod
    def _key(index: Tensor, n: int, motifs: tuple[str, ...], pairs: str) -> tuple:
        return (tuple(index.shape), n, index.device, motifs, pairs)
