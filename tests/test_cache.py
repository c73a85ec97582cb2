"""TensorLRU: hits need equal tensors, least recently used entries go first, size 0 disables."""

import torch

from graphkit.cache import TensorLRU


def test_hit_needs_equal_tensors_and_eviction_is_lru():
    cache = TensorLRU(size=2)
    a, b, c = torch.arange(3), torch.arange(4), torch.arange(5)
    cache.put("a", [a], 1)
    cache.put("b", [b], 2)
    assert cache.lookup("a", [a.clone()]) == 1
    assert cache.lookup("a", [a + 1]) is None  # same key, edited tensor: a miss
    cache.put("c", [c], 3)  # evicts "b", the least recently used
    assert cache.lookup("b", [b]) is None and cache.lookup("a", [a]) == 1
    a[0] = 9  # the cache keeps its own copy
    assert cache.lookup("a", [torch.arange(3)]) == 1


def test_size_zero_stores_nothing():
    cache = TensorLRU(size=0)
    cache.put("k", [torch.ones(2)], 1)
    assert cache.lookup("k", [torch.ones(2)]) is None
