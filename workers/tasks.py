"""What runs on a dask worker: one work item → its partial sums (and its checkpoint).

No orchestration here: the driver plans, submits and reduces (``farm.cluster.execute``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from farm.accumulate import (
    AccumulationSpec,
    PartialSums,
    block_partial_sums,
    columns_needed,
    columns_once_binned,
    tree_reduce,
)
from farm.checkpoint import CheckpointStore
from farm.plan import REDUCTION_ARITY, WorkItem
from farm.reweight.bincache import BIN_CACHE
from farm.store.blocks import iter_blocks
from farm.store.errors import StoreError
from farm.store.reader import EventStore
from farm.store.weights import with_weight_sets

__all__ = ["compute_item", "load_item", "reduce_chunk"]


def _open_store(path: str) -> EventStore:
    """The store at ``path``, opened once per version: a store replaced in place (a refresh) has a
    new ``zarr.json`` (a new inode), so a long-lived worker never reads it with stale metadata."""
    meta = os.stat(Path(path) / "zarr.json")
    return _open_store_version(path, meta.st_ino, meta.st_mtime_ns)


@lru_cache(maxsize=8)
def _open_store_version(path: str, inode: int, mtime_ns: int) -> EventStore:
    del inode, mtime_ns  # the cache key
    # each shard's checksum is recomputed the first time this process reads it: a corrupt shard
    # stops the run with a ChecksumError naming it instead of giving numbers
    return EventStore.open(path, verify_checksums=True)


def _checkpointed_prefix(
    item: WorkItem, checkpoint_dir: str | None
) -> tuple[int, PartialSums] | None:
    """(universes covered, partial sums) of the longest checkpointed prefix of a bootstrap item."""
    if checkpoint_dir is None or not item.prefix_family:
        return None
    store = CheckpointStore(checkpoint_dir)
    found = store.prefix_of(item.prefix_family, *item.throws)
    if found is None:
        return None
    end, key = found
    sums = store.load(key)
    n = end - item.throws[0]
    if sums is None or sums.signal.shape[0] != n or sums.n_events != item.stop - item.start:
        return None
    return n, sums


def _join_universes(head: PartialSums, tail: PartialSums) -> PartialSums:
    """The per-event universes of ``head`` then those of ``tail`` (same rows, no flux tensors)."""
    return PartialSums(
        flux=None,
        signal=np.concatenate([head.signal, tail.signal]),
        background=np.concatenate([head.background, tail.background]),
        truth=np.concatenate([head.truth, tail.truth]),
        truth_nominal=np.concatenate([head.truth_nominal, tail.truth_nominal]),
        clamped=np.concatenate([head.clamped, tail.clamped]),
        n_events=tail.n_events,
        fake_signal=None,
    )


def _weight_sets_of(spec: AccumulationSpec) -> list[str]:
    """The weight sets a chunk's universes read (none for most chunks)."""
    if spec.event_weight_set is None:
        return []
    used = sorted({int(k) for k in spec.event_weight_set if k >= 0})
    return [spec.weight_sets[k][0] for k in used]


def _block_key(
    store: EventStore, block: int, block_rows: int, cols: Mapping[str, np.ndarray]
) -> tuple[object, ...]:
    """What a block's bins depend on besides the binning: its rows and the recorded checksums of
    the shards they lie in (farm.reweight.bincache.BinCache). The rows were read before, so their
    shards were verified against those checksums."""
    start = block * block_rows
    return _rows_key(store, start, start + next(iter(cols.values())).shape[0])


def _rows_key(store: EventStore, start: int, stop: int) -> tuple[object, ...]:
    first, last = start // store.shard_rows, (stop - 1) // store.shard_rows
    checksums = tuple(store.shard_checksums[first : last + 1])
    return (str(store.path), checksums, start, stop)


def _columns_to_read(
    store: EventStore, spec: AccumulationSpec, item: WorkItem, block_rows: int
) -> tuple[str, ...]:
    """The columns an item's blocks are read with: without those only binning reads when this
    process holds the bins of every block of the item (the flux chunk, or another chunk of the
    same blocks, binned them). A column left out is read after all if a block needs it
    (:class:`_BlockColumns`: bins evicted since, or a path that reads it)."""
    starts = range(item.start, item.stop, block_rows)
    binned = all(
        BIN_CACHE.holds(
            (*_rows_key(store, start, min(start + block_rows, item.stop)), spec.binning.digest)
        )
        for start in starts
    )
    return columns_once_binned(spec) if binned else columns_needed(spec)


class _BlockColumns(Mapping[str, np.ndarray]):
    """A block's columns as read, and any other of ``names`` read from the store when first
    asked for: a mapping with every column of :func:`columns_needed`, whichever were read."""

    def __init__(
        self, cols: dict[str, np.ndarray], store: EventStore, names: Sequence[str], start: int
    ) -> None:
        self._cols = cols
        self._store = store
        self._start = start
        self._rows = next(iter(cols.values())).shape[0]
        self._names = (*names, *(name for name in cols if name not in names))

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cols:
            if name not in self._names:
                raise KeyError(name)
            # every column not read yet, in one read: binning (the bins evicted) needs them all
            rest = [n for n in self._names if n not in self._cols]
            start = self._start
            self._cols.update(self._store.read_columns(rest, start, start + self._rows))
        return self._cols[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def compute_item(
    store_path: str,
    spec: AccumulationSpec,
    item: WorkItem,
    block_rows: int,
    checkpoint_dir: str | None = None,
) -> PartialSums:
    """Partial sums of one work item: its blocks reduced in the fixed tree, checkpointed.

    A bootstrap item whose first throws are checkpointed (an earlier run with fewer replicas)
    computes only the rest and joins them: each replica's sums do not depend on the others, so
    the result has the bits of computing the whole item (:mod:`farm.plan`).
    """
    lo, hi = item.universes
    prefix = _checkpointed_prefix(item, checkpoint_dir)
    if prefix is not None:
        lo += prefix[0]
    chunk_spec = spec.for_chunk(lo, hi, with_flux=item.with_flux)
    store = _open_store(store_path)
    try:
        names = columns_needed(chunk_spec)
        to_read = _columns_to_read(store, chunk_spec, item, block_rows)
        blocks = iter_blocks(store, to_read, block_rows, start=item.start, stop=item.stop)
        parts = (
            block_partial_sums(
                _BlockColumns(cols, store, names, block * block_rows),
                chunk_spec,
                block_key=_block_key(store, block, block_rows, cols),
            )
            for block, cols in with_weight_sets(
                blocks, store, _weight_sets_of(chunk_spec), block_rows
            )
        )
        result = tree_reduce(parts, REDUCTION_ARITY)
    except StoreError:
        raise
    except Exception as err:  # report the failure in terms of the input being processed
        msg = (
            f"work item {item.index} (rows {item.start}-{item.stop} of {store_path}, "
            f"universes {item.universes[0]}-{item.universes[1]}) failed: {type(err).__name__}: {err}"
        )
        raise RuntimeError(msg) from err
    if prefix is not None:
        result = _join_universes(prefix[1], result)
    if checkpoint_dir is not None:
        CheckpointStore(checkpoint_dir).save(item.key, result)
    return result


def load_item(
    store_path: str,
    spec: AccumulationSpec,
    item: WorkItem,
    block_rows: int,
    checkpoint_dir: str,
) -> PartialSums:
    """The item's checkpointed partial sums, computed again if the checkpoint has gone.

    A task, not data scattered from the driver: if the worker holding the result dies, the
    scheduler can run it again (scattered data would be lost with the worker).
    """
    sums = CheckpointStore(checkpoint_dir).load(item.key)
    if sums is None:
        sums = compute_item(store_path, spec, item, block_rows, checkpoint_dir)
    return sums


def reduce_chunk(*nodes: PartialSums, full: int) -> PartialSums:
    """Reduce a chunk's item results (in item order): the first ``full`` are complete tree nodes,
    a last one (if any) is the closed remainder, passed as the tree's tail."""
    tail = nodes[full] if len(nodes) > full else None
    if full == 0:
        if tail is None:
            msg = "a chunk with no work items"
            raise ValueError(msg)
        return tail
    return tree_reduce(list(nodes[:full]), REDUCTION_ARITY, tail=tail)
