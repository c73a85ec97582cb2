"""A small LRU cache whose hits are confirmed by tensors equal element by element.

Motif matrices, motif-formula tapes and sparsity patterns are cached by cheap keys (shapes,
node count, device, options), but a key match alone could reuse a stale value for an edited
graph, so every entry also keeps its defining tensors and a hit needs them ``torch.equal``
(O(size) per check, far cheaper than recomputing).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import torch
from torch import Tensor


class TensorLRU:
    """The last ``size`` values, each stored with the tensors it was computed from.

    Args:
        size: entries kept (least recently used evicted first); 0 disables caching.
    """

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[list[Tensor], Any]] = OrderedDict()

    def lookup(self, key: Hashable, tensors: Sequence[Tensor]) -> Any:
        """The value stored under ``key`` for equal ``tensors``, or ``None``."""
        hit = self._entries.get(key)
        if hit is None or len(hit[0]) != len(tensors) \
                or not all(torch.equal(a, b) for a, b in zip(hit[0], tensors, strict=True)):
            return None
        self._entries.move_to_end(key)
        return hit[1]

    def put(self, key: Hashable, tensors: Sequence[Tensor], value: Any) -> None:
        """Store ``value`` with copies of ``tensors`` (no-op when ``size`` is 0)."""
        if self.size <= 0:
            return
        self._entries[key] = ([t.detach().clone() for t in tensors], value)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
