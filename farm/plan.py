"""Planning: a prepared analysis and its event store become frozen, hashable work items.

A work item is (a run of blocks) × (a chunk of universes). Blocks are fixed 65 536-row ranges of
the store; an item covers ``arity**level`` consecutive blocks aligned to a multiple of that size
(the last item takes the remainder), so items are nodes of the fixed reduction tree
(:func:`farm.accumulate.tree_reduce`). Chunk 0 fills the flux tensors, from which every flux
universe follows; the other chunks hold the per-event universes, never spanning two systematics,
so changing one systematic changes only its own chunks' keys.

Every item has a key hashed from what it computes: the content checksums of the shards its rows
lie in, the parts of the analysis it depends on, its universes' throws, and the kernel version.
A checkpoint under that key is valid for any later run that asks for the same item.

Prefix-stable bootstrap items: a bootstrap replica's histograms do not depend on the other
replicas of its item (each bin sums its events in event order), and the replicas of a
systematic are its throw indices. The key of an item that holds only consecutive throws
``[t0, t1)`` of one bootstrap systematic is ``FAMILY-t0-t1``, FAMILY hashing everything but the
range; a later run that throws more replicas finds the checkpoint of ``FAMILY-t0-t`` (t < t1) and
computes only ``[t, t1)`` (:func:`workers.tasks.compute_item`), with the same bits. Knob items are
not prefix-stable: their fast paths set the expansion range from the item's own thrown values.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.accumulate import AccumulationSpec, columns_needed
from farm.store.schema import COLUMNS

if TYPE_CHECKING:  # a worker imports this module for WorkItem: not the analysis and xarray
    from farm.analysis.pipeline import Prepared

__all__ = ["KERNEL_VERSION", "MAX_ITEMS", "REDUCTION_ARITY", "Plan", "WorkItem", "make_plan"]

KERNEL_VERSION = "4"
"""Bump when a kernel's numbers change: every checkpoint key changes with it. 4: the axial
mass's expansion takes 16 Chebyshev nodes, not 12 (farm.reweight.shortcuts)."""

REDUCTION_ARITY = 8

MAX_ITEMS = 100_000
"""Most work items of a plan: above it, items take 8× more blocks (a level up the tree) until the
plan fits, so the driver's graph and memory stay bounded whatever the events and universes."""

MAX_ITEM_S = 10.0
"""A chunk whose items would take longer at the nominal rates takes items a level down (8× fewer
blocks), so no item holds a worker for minutes; within :data:`MAX_ITEMS`."""

NOMINAL_ROW_S = 20e-9
NOMINAL_ROW_UNIVERSE_S = {"knob": 0.5e-9, "all": 0.5e-9}
NOMINAL_OTHER_UNIVERSE_S = 1.5e-9
"""Nominal seconds per row, and per row and per-event universe, of a chunk (the bootstrap's
0.7 G event-universes/s for every kind, knobs at their 2 G/s: BENCHMARKS.md). They size items the same on
every machine, so a plan and its checkpoint keys never depend on where it is made; the time a
plan takes here comes from measured rates (:mod:`farm.costmodel`)."""


@dataclass(frozen=True, kw_only=True)
class WorkItem:
    index: int
    chunk: int
    first_block: int
    n_blocks: int
    start: int
    """First row (inclusive)."""
    stop: int
    """Last row (exclusive)."""
    universes: tuple[int, int]
    """[lo, hi) into the prepared spec's per-event universes (empty for the flux chunk)."""
    key: str
    prefix_family: str = ""
    """Bootstrap items: the key without the throw range (``key = f"{family}-{t0}-{t1}"``), so a
    checkpoint of the first throws of the same item can be extended; "" for other items."""
    throws: tuple[int, int] = (0, 0)
    """Bootstrap items: the throw indices [t0, t1) of the systematic that the item holds."""

    @property
    def with_flux(self) -> bool:
        return self.chunk == 0


@dataclass(frozen=True, kw_only=True)
class Plan:
    items: tuple[WorkItem, ...]
    chunks: tuple[tuple[int, int], ...]
    level: int
    n_blocks: int
    block_rows: int
    bytes_per_event: int
    universes_per_chunk: tuple[int, ...]
    chunk_levels: tuple[int, ...] = ()
    """Each chunk's level when they differ (a big plan's costly chunks take smaller items);
    empty: every chunk at ``level``."""

    @property
    def blocks_per_item(self) -> int:
        """Blocks of the largest items (every chunk's, unless ``chunk_levels`` differ)."""
        return REDUCTION_ARITY**self.level

    def blocks_per_item_of(self, chunk: int) -> int:
        level = self.chunk_levels[chunk] if self.chunk_levels else self.level
        return REDUCTION_ARITY**level

    def items_of_chunk(self, chunk: int) -> tuple[WorkItem, ...]:
        return tuple(item for item in self.items if item.chunk == chunk)

    def memory_per_task_bytes(self, universes_per_block: int) -> int:
        """Columns of one item plus the (universe × event) weight matrices of one block."""
        rows = self.blocks_per_item * self.block_rows
        return rows * self.bytes_per_event + 4 * universes_per_block * self.block_rows * 8

    def cost_event_universes(self) -> int:
        """Event-universe products the items evaluate (the flux chunk counts as one universe)."""
        rows = [item.stop - item.start for item in self.items]
        width = [max(item.universes[1] - item.universes[0], 1) for item in self.items]
        return int(sum(r * w for r, w in zip(rows, width, strict=True)))


def _chunks(
    prep: Prepared, universes_per_task: int, knob_universes_per_task: int
) -> list[tuple[int, int]]:
    """Chunk 0 is the flux chunk (no per-event universes); then runs of one systematic each.

    A knob systematic's runs hold up to ``knob_universes_per_task`` universes when no weight
    clamping is declared: its per-event cost is then that of a fixed number of exact evaluations
    (expansion nodes, categories, a sort), whatever its number of universes, so every extra chunk
    would repeat it. Bootstrap, the all-knob set and clamped knobs cost in proportion to their
    universes and take ``universes_per_task``.
    """
    owner = prep.universes.systematic_index[prep.spec.event_universes]
    kinds = prep.universes.kinds
    flat = prep.spec.clamp is None
    chunks = [(0, 0)]
    lo = 0
    while lo < owner.size:
        # a weight set is read whole per block: one chunk per systematic saves reading it again
        knob = owner[lo] >= 0 and (
            (flat and kinds[owner[lo]] == "knob") or kinds[owner[lo]] == "weights"
        )
        limit = max(knob_universes_per_task, universes_per_task) if knob else universes_per_task
        hi = lo
        while hi < owner.size and owner[hi] == owner[lo] and hi - lo < limit:
            hi += 1
        chunks.append((lo, hi))
        lo = hi
    return chunks


def _level(n_blocks: int, target_blocks: int | None, n_chunks: int = 1) -> int:
    """Items of arity**level blocks: ≈ 0.5–5 M events per task unless configured, and at most
    :data:`MAX_ITEMS` items over the ``n_chunks`` universe chunks (a level up until they fit).

    Any level reduces in the same tree (items are its nodes), so the level changes the items and
    their keys but never a bit of the result."""
    if target_blocks is not None:
        level = round(np.log(target_blocks) / np.log(REDUCTION_ARITY))
        if REDUCTION_ARITY**level != target_blocks:
            msg = f"[analysis] blocks_per_task must be a power of {REDUCTION_ARITY} (got {target_blocks})"
            raise ValueError(msg)
        return int(level)
    level = 2 if n_blocks >= 256 else (1 if n_blocks >= 8 else 0)
    while n_chunks * -(-n_blocks // REDUCTION_ARITY**level) > MAX_ITEMS and n_blocks > 1:
        if REDUCTION_ARITY**level >= n_blocks:
            break  # one item per chunk already: more universes per task is the only way down
        level += 1
    return level


def _chunk_levels(
    level: int, n_blocks: int, block_rows: int, row_s: list[float], configured: bool
) -> list[int]:
    """Per chunk, ``level`` or lower: a chunk whose items would take more than
    :data:`MAX_ITEM_S` at the nominal rates goes down a level while the plan keeps within
    :data:`MAX_ITEMS` items. Configured ``blocks_per_task`` is kept as it is."""
    levels = [level] * len(row_s)
    if configured:
        return levels

    def items(lv: int) -> int:
        return -(-n_blocks // REDUCTION_ARITY**lv)

    def seconds(chunk: int, lv: int) -> float:
        return min(REDUCTION_ARITY**lv, n_blocks) * block_rows * row_s[chunk]

    total = len(row_s) * items(level)
    # the costliest items first, a level at a time: the budget of items goes where it shortens most
    order = sorted(range(len(row_s)), key=lambda c: -row_s[c])
    while True:
        lowerable = [c for c in order if levels[c] > 0]
        chunk = max(lowerable, key=lambda c: seconds(c, levels[c]), default=None)
        if chunk is None or seconds(chunk, levels[chunk]) <= MAX_ITEM_S:
            return levels
        more = items(levels[chunk] - 1) - items(levels[chunk])
        if total + more > MAX_ITEMS:
            return levels
        levels[chunk] -= 1
        total += more


def _digest(payload: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    _feed(h, payload)
    return h.hexdigest()


def _feed(h: Any, payload: Any) -> None:
    """Hash ``payload`` into ``h``: arrays by dtype, shape and bytes, mappings by sorted key,
    sequences bracketed, anything else as JSON."""

    def feed(value: Any) -> None:
        if isinstance(value, np.ndarray):
            h.update(str(value.dtype).encode() + str(value.shape).encode())
            h.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, dict):
            for k in sorted(value):
                h.update(str(k).encode())
                feed(value[k])
        elif isinstance(value, list | tuple):
            h.update(b"[")
            for v in value:
                feed(v)
            h.update(b"]")
        else:
            h.update(json.dumps(value, sort_keys=True, default=str).encode())

    feed(payload)


def _item_hasher(common: dict[str, Any], chunk_part: dict[str, Any]) -> Any:
    """The hash state after ``[common, chunk_part, `` of an item's key payload: each item copies
    it and adds its rows, so the key is ``_digest([common, chunk_part, start, stop, rows])``
    without hashing the chunk's universes again for every item."""
    h = hashlib.blake2b(digest_size=16)
    h.update(b"[")
    _feed(h, common)
    _feed(h, chunk_part)
    return h


def _item_key(prefix: Any, start: int, stop: int, rows: list[Any]) -> str:
    h = prefix.copy()
    for value in (start, stop, rows):
        _feed(h, value)
    h.update(b"]")
    return h.hexdigest()


def _common_key_parts(prep: Prepared, spec: AccumulationSpec) -> dict[str, Any]:
    cfg = prep.cfg
    return {
        "kernel": KERNEL_VERSION,
        "observable": spec.observable,
        "reco_edges": spec.reco_edges,
        "truth": [spec.truth_column, spec.truth_edges],
        "flux_bins": [spec.flux_bins.flavors, spec.flux_bins.edges],
        "clamp": spec.clamp,
        "detector": None if not hasattr(cfg, "detector") else cfg.detector.model_dump(mode="json"),
        "nuclei": dict(spec.knob_context.nuclei_by_a),
        "block_rows": prep.block_rows,
    }


def _rows_checksums(
    prep: Prepared, shard_ranges: list[tuple[int, int]], start: int, stop: int
) -> list[Any]:
    """``[lo, hi, checksum]`` of the shards that rows [start, stop) lie in (shards in row order:
    the first is found by bisection, so a plan of 10⁵ items over 10³ shards takes no time)."""
    first = max(bisect.bisect_right(shard_ranges, (start, float("inf"))) - 1, 0)
    rows = []
    for i in range(first, len(shard_ranges)):
        lo, hi = shard_ranges[i]
        if lo >= stop:
            break
        if hi > start:
            rows.append([lo, hi, prep.store_checksums[i]])
    return rows


def _bootstrap_throws(prep: Prepared, lo: int, hi: int) -> tuple[int, int, int] | None:
    """(replica base, first throw, end throw) when per-event universes [lo, hi) are consecutive
    throws of one bootstrap systematic and nothing else varies in them; else None."""
    spec = prep.spec
    replicas = spec.bootstrap_replica[lo:hi]
    if hi <= lo or (replicas < 0).any():
        return None
    if any(values[lo:hi].any() for values in spec.knob_values.values()):
        return None
    if spec.event_flux_ratio is not None and (spec.event_flux_ratio[lo:hi] != 1.0).any():
        return None
    throws = prep.universes.throw_index[spec.event_universes[lo:hi]].astype(np.int64)
    base = replicas.astype(np.int64) - throws
    if (base != base[0]).any() or (np.diff(throws) != 1).any():
        return None
    return int(base[0]), int(throws[0]), int(throws[-1]) + 1


def _nominal_row_s(prep: Prepared, chunks: list[tuple[int, int]]) -> list[float]:
    """Each chunk's nominal seconds per row (:data:`NOMINAL_ROW_S` and per universe by kind)."""
    owner = prep.universes.systematic_index[prep.spec.event_universes]
    row_s = []
    for lo, hi in chunks:
        kind = prep.universes.kinds[owner[lo]] if hi > lo and owner[lo] >= 0 else "flux"
        per_universe = NOMINAL_ROW_UNIVERSE_S.get(kind, NOMINAL_OTHER_UNIVERSE_S)
        row_s.append(NOMINAL_ROW_S + per_universe * (hi - lo))
    return row_s


def make_plan(
    prep: Prepared,
    shard_ranges: list[tuple[int, int]],
    *,
    universes_per_task: int = 256,
    knob_universes_per_task: int = 2048,
    blocks_per_task: int | None = None,
) -> Plan:
    """Cut the prepared analysis into work items (deterministically, whatever the cluster)."""
    spec = prep.spec
    n_blocks = prep.n_blocks
    chunks = _chunks(prep, universes_per_task, knob_universes_per_task)
    level = _level(n_blocks, blocks_per_task, len(chunks))
    levels = _chunk_levels(
        level, n_blocks, prep.block_rows, _nominal_row_s(prep, chunks), blocks_per_task is not None
    )
    common = _common_key_parts(prep, spec)
    items: list[WorkItem] = []
    for chunk, (lo, hi) in enumerate(chunks):
        chunk_spec = spec.for_chunk(lo, hi, with_flux=chunk == 0)
        bootstrap = None if chunk == 0 else _bootstrap_throws(prep, lo, hi)
        throws = (0, 0)
        if chunk == 0:
            chunk_part: dict[str, Any] = {"flux": True, "fake": spec.fake_data_model}
        elif bootstrap is not None:
            base, first, end = bootstrap
            throws = (first, end)
            chunk_part = {
                "bootstrap_family": base,
                "knob_names": sorted(chunk_spec.knob_values),
                "bootstrap_key": spec.bootstrap_key,
                "universes_per_block": spec.universes_per_block,
            }
        else:
            chunk_part = {
                "knobs": dict(chunk_spec.knob_values),
                "knob_span": chunk_spec.knob_span,
                "bootstrap": chunk_spec.bootstrap_replica,
                "bootstrap_key": spec.bootstrap_key,
                "flux_ratio": chunk_spec.event_flux_ratio,
                "universes_per_block": spec.universes_per_block,
            }
            if chunk_spec.event_weight_set is not None and (chunk_spec.event_weight_set >= 0).any():
                chunk_part |= {  # the weight sets' checksums: a replaced set changes the key
                    "weight_set": chunk_spec.event_weight_set,
                    "weight_column": chunk_spec.event_weight_column,
                    "weight_sets": list(spec.weight_sets),
                    "unphysical_weights": spec.unphysical_weights,
                }
        prefix = _item_hasher(common, chunk_part)
        per_item = REDUCTION_ARITY ** levels[chunk]
        for first in range(0, n_blocks, per_item):
            count = min(per_item, n_blocks - first)
            start = first * prep.block_rows
            stop = min((first + count) * prep.block_rows, prep.n_events)
            key = _item_key(prefix, start, stop, _rows_checksums(prep, shard_ranges, start, stop))
            family = ""
            if bootstrap is not None:
                family, key = key, f"{key}-{throws[0]}-{throws[1]}"
            items.append(
                WorkItem(
                    index=len(items),
                    chunk=chunk,
                    first_block=first,
                    n_blocks=count,
                    start=start,
                    stop=stop,
                    universes=(lo, hi),
                    key=key,
                    prefix_family=family,
                    throws=throws,
                )
            )
    names = columns_needed(spec)
    return Plan(
        items=tuple(items),
        chunks=tuple(chunks),
        level=level,
        n_blocks=n_blocks,
        block_rows=prep.block_rows,
        bytes_per_event=int(sum(COLUMNS[n].dtype.itemsize for n in names)),
        universes_per_chunk=tuple(hi - lo for lo, hi in chunks),
        chunk_levels=tuple(levels) if len(set(levels)) > 1 else (),
    )
