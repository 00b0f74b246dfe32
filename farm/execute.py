"""Execute a plan: in this process, or on a dask cluster. Both reduce in the same fixed tree.

For each work item: load its checkpoint if one is valid, otherwise compute it (on a worker, which
writes the checkpoint). Each universe chunk is reduced over its items in item order; the chunks
are then joined along the universe axis. The driver never decides an order of addition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from farm.accumulate import PartialSums
from farm.analysis.pipeline import Prepared
from farm.checkpoint import CheckpointStore
from farm.plan import Plan, WorkItem
from workers.tasks import compute_item, load_item, reduce_chunk

__all__ = [
    "ExecutionStats",
    "combine_chunks",
    "execute_dask",
    "execute_dask_many",
    "execute_inprocess",
]

Progress = Callable[[int, int], None]


@dataclass(frozen=True, kw_only=True)
class ExecutionStats:
    items: int
    computed: int
    from_checkpoint: int
    extended: int = 0
    """Computed items that only added replicas to a checkpointed prefix (bootstrap, farm.plan)."""


def _extends(checkpoints: CheckpointStore | None, item: WorkItem) -> bool:
    """Whether the item will be computed from a checkpointed prefix of its replicas."""
    if checkpoints is None or not item.prefix_family:
        return False
    return checkpoints.prefix_of(item.prefix_family, *item.throws) is not None


def combine_chunks(chunks: Sequence[PartialSums]) -> PartialSums:
    """Chunk 0 carries the flux tensors; the others' per-event universes follow in order."""
    flux, events = chunks[0], chunks[1:]

    def join(name: str, empty: np.ndarray) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in events]) if events else empty

    return PartialSums(
        flux=flux.flux,
        signal=join("signal", flux.signal),
        background=join("background", flux.background),
        truth=join("truth", flux.truth),
        truth_nominal=join("truth_nominal", flux.truth_nominal),
        clamped=join("clamped", flux.clamped),
        n_events=flux.n_events,
        fake_signal=flux.fake_signal,
    )


def _estimated_cost(item: WorkItem) -> int:
    """Relative cost of an item for scheduling order: rows × per-event universes (≥ 1)."""
    return (item.stop - item.start) * max(item.universes[1] - item.universes[0], 1)


def _value(value: Any) -> Any:
    return value


def _full_items(plan: Plan, items: Sequence[WorkItem]) -> int:
    return sum(1 for item in items if item.n_blocks == plan.blocks_per_item_of(item.chunk))


def execute_inprocess(
    prep: Prepared,
    plan: Plan,
    *,
    checkpoints: CheckpointStore | None = None,
    progress: Progress | None = None,
) -> tuple[PartialSums, ExecutionStats]:
    done = computed = extended = 0
    reduced: list[PartialSums] = []
    if progress is not None:
        progress(0, len(plan.items))  # the stage starts (checkpoints load as it goes)
    for chunk in range(len(plan.chunks)):
        items = plan.items_of_chunk(chunk)
        results = []
        for item in items:
            sums = checkpoints.load(item.key) if checkpoints is not None else None
            if sums is None:
                extended += _extends(checkpoints, item)
                sums = compute_item(
                    str(prep.store_path),
                    prep.spec,
                    item,
                    prep.block_rows,
                    None if checkpoints is None else str(checkpoints.root),
                )
                computed += 1
            results.append(sums)
            done += 1
            if progress is not None:
                progress(done, len(plan.items))
        reduced.append(reduce_chunk(*results, full=_full_items(plan, items)))
    stats = ExecutionStats(
        items=len(plan.items),
        computed=computed,
        from_checkpoint=done - computed,
        extended=extended,
    )
    return combine_chunks(reduced), stats


def execute_dask(
    prep: Prepared,
    plan: Plan,
    client: Any,
    *,
    checkpoints: CheckpointStore | None = None,
    progress: Progress | None = None,
) -> tuple[PartialSums, ExecutionStats]:
    """Submit the missing items, reduce each chunk in a task, join the chunks in a task."""
    sums, stats = execute_dask_many(
        [prep], [plan], client, checkpoints=checkpoints, progress=progress, tags=[""]
    )
    return sums[0], stats


@dataclass(kw_only=True)
class _Submitted:
    futures: dict[int, Any]
    loaded: dict[int, Any]
    pending: list[Any]
    extended: int


def _submit(
    prep: Prepared, plan: Plan, client: Any, checkpoints: CheckpointStore | None, tag: str
) -> _Submitted:
    """Submit the plan's missing items (checkpointed ones are loaded by tasks)."""
    # the spec as the result of a task, not scattered data: the scheduler computes a lost task
    # result again, but scattered data lost with its worker is gone for good, and dask's active
    # memory manager keeps one copy of a broadcast once no task waits for it; a worker killed
    # after the last item (its results must be recomputed) then failed the whole run
    spec = client.submit(_value, prep.spec, pure=False)
    # workers may run in another working directory: give them absolute paths
    store_path = str(Path(prep.store_path).resolve())
    checkpoint_dir = None if checkpoints is None else str(checkpoints.root.resolve())
    futures: dict[int, Any] = {}
    loaded: dict[int, Any] = {}
    pending = []
    extended = 0
    for item in plan.items:
        if checkpoints is not None and checkpoints.load(item.key) is not None:
            # loaded by a task, so that a worker lost with the result can load it again
            loaded[item.index] = client.submit(
                load_item,
                store_path,
                spec,
                item,
                prep.block_rows,
                checkpoint_dir,
                key=f"farm-checkpoint-{tag}{item.index}-{item.key}",
                pure=False,
                retries=2,
            )
            continue
        future = client.submit(
            compute_item,
            store_path,
            spec,
            item,
            prep.block_rows,
            checkpoint_dir,
            key=f"farm-item-{tag}{item.index}-{item.key}",
            pure=False,
            retries=2,
            # longest first: the expensive chunks start early and the cheap ones fill the gaps
            priority=_estimated_cost(item),
        )
        futures[item.index] = future
        pending.append(future)
        extended += _extends(checkpoints, item)
    return _Submitted(futures=futures, loaded=loaded, pending=pending, extended=extended)


def execute_dask_many(
    preps: Sequence[Prepared],
    plans: Sequence[Plan],
    client: Any,
    *,
    checkpoints: CheckpointStore | None = None,
    progress: Progress | None = None,
    tags: Sequence[str] | None = None,
) -> tuple[list[PartialSums], ExecutionStats]:
    """Several plans on one cluster at once (a multi-sample measurement, farm.measurement).

    Every item of every plan is submitted before any is awaited; each plan is then reduced in
    its own fixed tree, exactly as :func:`execute_dask` reduces one. ``tags`` keep the task
    keys of the plans apart (one per plan).
    """
    from distributed import as_completed

    from workers.setup import FarmWorkerSetup

    client.register_plugin(FarmWorkerSetup())
    tags = list(tags) if tags is not None else [f"{k}-" for k in range(len(plans))]
    submitted = [
        _submit(prep, plan, client, checkpoints, tag)
        for prep, plan, tag in zip(preps, plans, tags, strict=True)
    ]
    total = sum(len(plan.items) for plan in plans)
    done = sum(len(s.loaded) for s in submitted)
    if progress is not None:
        progress(done, total)
    # the client's own loop: farm's clients are never the process default (farm.cluster)
    for future in as_completed([f for s in submitted for f in s.pending], loop=client.loop):
        if future.status == "error":
            future.result()  # raises the worker's exception, which names the work item
        done += 1
        if progress is not None:
            progress(done, total)
    results = []
    for plan, sub in zip(plans, submitted, strict=True):
        chunk_results = []
        for chunk in range(len(plan.chunks)):
            items = plan.items_of_chunk(chunk)
            nodes = [sub.futures.get(item.index, sub.loaded.get(item.index)) for item in items]
            chunk_results.append(
                client.submit(reduce_chunk, *nodes, full=_full_items(plan, items), pure=False)
            )
        results.append(client.submit(combine_chunks, chunk_results, pure=False))
    combined = [future.result() for future in results]
    stats = ExecutionStats(
        items=total,
        computed=sum(len(s.futures) for s in submitted),
        from_checkpoint=sum(len(s.loaded) for s in submitted),
        extended=sum(s.extended for s in submitted),
    )
    return combined, stats
