"""Iterate an event store in fixed global blocks of rows, whatever its shard layout."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from farm.store.reader import EventStore

__all__ = ["BLOCK_EVENTS", "iter_blocks"]

BLOCK_EVENTS = 65_536
"""Rows of a block: the unit of generation (one random stream per block), of partial sums and
of the reduction tree, whatever the shard layout."""


def iter_blocks(
    store: EventStore,
    columns: Sequence[str],
    block_rows: int,
    *,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield ``(block_index, columns)`` for rows [start, stop) cut at multiples of ``block_rows``.

    Reads each shard once and stitches blocks that straddle shard boundaries, so blocks (and
    hence partial sums) are the same for any shard size.
    """
    stop = store.n_events if stop is None else stop
    if start % block_rows:
        msg = f"start row {start} is not a multiple of the block size {block_rows}"
        raise ValueError(msg)
    pending: list[dict[str, np.ndarray]] = []
    pending_rows = 0
    block = start // block_rows
    for lo, hi in store.shard_ranges:
        lo, hi = max(lo, start), min(hi, stop)
        if lo >= hi:
            continue
        cols = store.read_columns(columns, lo, hi)
        offset = 0
        n = hi - lo
        while offset < n:
            take = min(block_rows - pending_rows, n - offset)
            pending.append({k: v[offset : offset + take] for k, v in cols.items()})
            pending_rows += take
            offset += take
            if pending_rows == block_rows:
                yield block, _concat(pending)
                block += 1
                pending, pending_rows = [], 0
    if pending_rows:
        yield block, _concat(pending)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
