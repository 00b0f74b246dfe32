"""Deterministic layout of generated events: blocks, components and seed streams.

Events are generated in fixed blocks of ``BLOCK_EVENTS`` rows. Block *b* draws from its own seed
stream ``SeedSequence(seed, spawn_key=(b, component))``, and the number of events of each component
in a block follows from the block length alone. So an event depends only on (config, seed, row),
never on how rows are grouped into shards: the same generation with another ``--shard-size``
writes the same events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from farm.store.blocks import BLOCK_EVENTS  # generation's unit too: one random stream per block

__all__ = [
    "BLOCK_EVENTS",
    "BlockLayout",
    "allocate",
    "block_rng",
]


def allocate(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Split ``n`` events over components by the largest-remainder rule (exact, deterministic).

    >>> allocate(10, {"a": 0.5, "b": 0.3, "c": 0.2})
    {'a': 5, 'b': 3, 'c': 2}
    """
    names = list(fractions)
    share = np.array([fractions[k] for k in names], dtype=np.float64)
    share = share / share.sum()
    exact = n * share
    counts = np.floor(exact).astype(np.int64)
    remainder = n - int(counts.sum())
    # ties broken by component order so the allocation never depends on float noise elsewhere
    order = np.lexsort((np.arange(len(names)), -(exact - counts)))
    counts[order[:remainder]] += 1
    return {k: int(c) for k, c in zip(names, counts, strict=True)}


def block_rng(seed: int, block: int, component: int) -> np.random.Generator:
    """The random stream of one component in one block."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block, component)))
    )


@dataclass(frozen=True, kw_only=True)
class BlockLayout:
    """Where every component's events sit among ``n_events`` rows."""

    n_events: int
    fractions: tuple[tuple[str, float], ...]
    block_events: int = BLOCK_EVENTS

    @property
    def n_blocks(self) -> int:
        return -(-self.n_events // self.block_events)

    def block_range(self, block: int) -> tuple[int, int]:
        start = block * self.block_events
        return start, min(start + self.block_events, self.n_events)

    def block_counts(self, block: int) -> dict[str, int]:
        start, stop = self.block_range(block)
        return allocate(stop - start, dict(self.fractions))

    def totals(self) -> dict[str, int]:
        """Generated events per component over the whole sample."""
        totals = dict.fromkeys(dict(self.fractions), 0)
        full = self.n_events // self.block_events
        if full:
            for k, c in self.block_counts(0).items():
                totals[k] += c * full
        if self.n_events % self.block_events:
            for k, c in self.block_counts(full).items():
                totals[k] += c
        return totals

    def blocks_overlapping(self, start: int, stop: int) -> range:
        return range(start // self.block_events, -(-stop // self.block_events))
