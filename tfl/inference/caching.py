"""A small least-recently-used cache: what inference keeps between calls, bounded.

Decoders, samplers and compiled sample steps are kept between calls so that a loop of calls
traces each compiled function once. The bound is what lets a model that is no longer used be
freed: once it falls out of the cache, nothing here refers to it.

>>> cache = LRUCache(2)
>>> [cache.get(key, lambda: key * 10) for key in (1, 2, 1, 3)]
[10, 20, 10, 30]
>>> list(cache)  # 2 was the least recently used
[1, 3]
"""

from collections import OrderedDict


class LRUCache:
    """At most `max_size` values by key; a new key evicts the least recently used one."""

    def __init__(self, max_size):
        self.max_size = max_size
        self._items = OrderedDict()

    def get(self, key, make):
        """The value kept for `key`, or `make()`'s result, kept from now on."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = make()
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)
        return value

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)
