"""Each process keeps the bins of its recently binned blocks (:class:`BinCache`), so the flux
chunk and every per-event chunk of a block bin its events once (docs/internals.md).

The budget is ``FARM_BIN_CACHE_MB`` (default 256 MiB; 0 turns the cache off).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable

from farm.reweight.binning import BlockBins

__all__ = ["BIN_CACHE", "BinCache"]


def _budget_from_env() -> int:
    raw = os.environ.get("FARM_BIN_CACHE_MB", "256")
    try:
        megabytes = float(raw)
    except ValueError:
        msg = f"FARM_BIN_CACHE_MB={raw!r}: give the bin cache's budget in MiB (0 turns it off)"
        raise ValueError(msg) from None
    if not megabytes >= 0:
        msg = f"FARM_BIN_CACHE_MB={raw!r}: the budget must be >= 0 MiB"
        raise ValueError(msg)
    return int(megabytes * 2**20)


class BinCache:
    """Bins of recently binned blocks, least recently used first out, within a byte budget.

    Keyed by (store path, the recorded checksums of the block's shards, its rows, the binning's
    digest): the same rows of the same store content under the same binning have the same bins.
    The rows are read (and their shard verified) before the cache is asked, so a shard that
    changed on disk stops the run before a cached bin is used. Bins are held in the narrowest
    integer types (≈ 4–7 bytes per event). Thread-safe (thread workers share it).
    """

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget_bytes = _budget_from_env() if budget_bytes is None else int(budget_bytes)
        self._entries: OrderedDict[tuple, BlockBins] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def holds(self, key: tuple) -> bool:
        """Whether the bins under ``key`` are held now (not counted as a hit or a miss)."""
        with self._lock:
            return key in self._entries

    def get(self, key: tuple) -> BlockBins | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return found.widened()

    def put(self, key: tuple, bins: BlockBins) -> None:
        entry = bins.compact()
        size = entry.nbytes
        if size > self.budget_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            while self._entries and self.nbytes + size > self.budget_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.nbytes -= evicted.nbytes
                self.evictions += 1
            self._entries[key] = entry
            self.nbytes += size

    def get_or_compute(self, key: tuple | None, compute: Callable[[], BlockBins]) -> BlockBins:
        if key is None or self.budget_bytes == 0:
            return compute()
        found = self.get(key)
        if found is not None:
            return found
        bins = compute()
        self.put(key, bins)
        return bins

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0
            self.hits = self.misses = self.evictions = 0


BIN_CACHE = BinCache()
"""This process's cache (workers keep it between work items)."""
