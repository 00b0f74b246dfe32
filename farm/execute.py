"""Execute a plan: in this process, or on a dask cluster. Both reduce in the same fixed tree.

For each work item: load its checkpoint if one is valid, otherwise compute it (on a worker, which
writes the checkpoint). Each universe chunk is reduced over its items in item order; the chunks
are then joined along the universe axis. The driver never decides an order of addition.

In this process the items are computed by a few threads (:func:`inprocess_threads`; the numba
kernels release the GIL), a bounded window of them ahead of the one reduced next; whichever
thread computes an item and whenever it ends, its result is reduced in item order, so the
numbers do not depend on the thread count. The threads write nothing: the calling thread saves
each checkpoint as it takes the item's result, so Ctrl-C or SIGTERM, which arrive there, remove
what was being written and never wait for an item still running.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
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
    "inprocess_threads",
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


def block_homes(nthreads: dict[str, int], n_blocks: int) -> list[str] | None:
    """The worker each block's items should run on: consecutive blocks per worker, in shares of
    its threads (addresses sorted, so the same cluster gives the same homes); None for a single
    worker.

    Every chunk of a block then runs where its bins are (each worker bins only its own blocks,
    once per run, and its bin cache holds only those) and reads only its part of the store. The
    homes are a preference (``allow_other_workers``): dask's work stealing still moves an item to
    an idle worker, and a worker's death sends its items elsewhere. Where an item runs never
    changes its numbers.
    """
    workers = sorted(nthreads)
    if len(workers) < 2 or n_blocks < 1:
        return None
    bounds = np.cumsum([max(int(nthreads[w]), 1) for w in workers], dtype=np.float64)
    share = bounds / bounds[-1] * n_blocks  # worker k takes blocks below share[k]
    return [workers[int(np.searchsorted(share, b + 0.5))] for b in range(n_blocks)]


def _full_items(plan: Plan, items: Sequence[WorkItem]) -> int:
    return sum(1 for item in items if item.n_blocks == plan.blocks_per_item_of(item.chunk))


MAX_INPROCESS_THREADS = 4
"""Default ceiling of :func:`inprocess_threads`. An item holds the GIL between its kernels for
about half its time (the 20 items of a 10⁶-event run: 0.69 s on one thread, 0.46 s on two, on 2
idle cores; BENCHMARKS.md), so threads beyond a few gain little, and each holds an item's sums."""


def inprocess_threads(requested: int | None = None) -> int:
    """Threads computing an in-process run's work items: ``requested`` (``farm run --cluster
    inprocess --workers N``), else the environment's ``FARM_INPROCESS_THREADS``, else the CPUs
    this process may use, at most :data:`MAX_INPROCESS_THREADS`. 1 computes the items one after
    the other in the calling thread."""
    where = f"{requested} threads for the work items"
    if requested is None:
        raw = os.environ.get("FARM_INPROCESS_THREADS", "").strip()
        if not raw:
            cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            return max(1, min(cpus or os.cpu_count() or 1, MAX_INPROCESS_THREADS))
        where = f"FARM_INPROCESS_THREADS={raw!r}"
        requested = int(raw) if raw.isdigit() else 0
    if requested < 1:
        msg = f"{where}: give a whole number >= 1 (1 computes the items one after another)"
        raise ValueError(msg)
    return requested


def _in_item_order(
    compute: Callable[[WorkItem], Any], items: Sequence[WorkItem], threads: int
) -> Iterator[Any]:
    """``compute(item)`` of every item, yielded in item order; ``threads`` daemon threads
    compute at most ``2 × threads`` items ahead of the one yielded. The first item runs alone:
    it opens and verifies the store and loads the kernels, which the others would repeat or
    wait for. Stopped early (an item's error, raised in item order; Ctrl-C or SIGTERM while it
    waits), the items not started are dropped and the running ones are not waited for: the
    threads end after them, or with the process."""
    if threads <= 1 or len(items) <= 1:
        yield from (compute(item) for item in items)
        return
    jobs: queue.SimpleQueue[tuple[Future[Any], WorkItem] | None] = queue.SimpleQueue()

    def work() -> None:
        while (job := jobs.get()) is not None:
            future, item = job
            if not future.set_running_or_notify_cancel():
                continue  # dropped: the run stopped
            try:
                future.set_result(compute(item))
            except BaseException as err:  # raised in the calling thread, in item order
                future.set_exception(err)

    for k in range(threads):
        threading.Thread(target=work, name=f"farm-item-{k}", daemon=True).start()
    window: deque[Future[Any]] = deque()
    todo = iter(items)
    taken = 0
    try:
        while True:
            for item in todo:
                window.append(Future())
                jobs.put((window[-1], item))
                if len(window) == (2 * threads if taken else 1):
                    break
            if not window:
                return
            result = window[0].result()  # the item's own error, raised in item order
            window.popleft()
            taken += 1
            yield result
    finally:
        for future in window:
            future.cancel()
        for _ in range(threads):
            jobs.put(None)


def execute_inprocess(
    prep: Prepared,
    plan: Plan,
    *,
    checkpoints: CheckpointStore | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
) -> tuple[PartialSums, ExecutionStats]:
    """The plan's items here, by :func:`inprocess_threads` threads (``threads`` None: its
    default), each chunk reduced in item order as soon as its items are there."""
    total = len(plan.items)
    by_chunk = [plan.items_of_chunk(chunk) for chunk in range(len(plan.chunks))]
    threads = inprocess_threads(threads)
    root = None if checkpoints is None else str(checkpoints.root)

    def compute(item: WorkItem, checkpoint_dir: str | None) -> PartialSums:
        return compute_item(str(prep.store_path), prep.spec, item, prep.block_rows, checkpoint_dir)

    def one(item: WorkItem) -> tuple[PartialSums | None, bool, bool]:
        """(sums, computed, extends): its checkpoint, else its sums (on a thread of the pool not
        saved yet; None for an item extending checkpointed replicas, computed when taken)."""
        sums = checkpoints.load(item.key) if checkpoints is not None else None
        if sums is not None:
            return sums, False, False
        extends = _extends(checkpoints, item)
        if threads == 1:
            return compute(item, root), True, extends  # it saves its checkpoint
        return (None if extends else compute(item, None)), True, extends

    if progress is not None:
        progress(0, total)  # the stage starts (checkpoints load as it goes)
    done = computed = extended = 0
    reduced: list[PartialSums] = []
    ordered = [item for items in by_chunk for item in items]
    with contextlib.closing(_in_item_order(one, ordered, threads)) as results:
        for items in by_chunk:
            sums = []
            for item in items:
                item_sums, was_computed, extends = next(results)
                if item_sums is None:  # reads and extends its checkpointed replicas, saves
                    item_sums = compute(item, root)
                elif was_computed and threads > 1 and checkpoints is not None:
                    checkpoints.save(item.key, item_sums)
                computed += was_computed
                extended += extends
                sums.append(item_sums)
                done += 1
                if progress is not None:
                    progress(done, total)
            reduced.append(reduce_chunk(*sums, full=_full_items(plan, items)))
    stats = ExecutionStats(
        items=total,
        computed=computed,
        from_checkpoint=total - computed,
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
    homes = block_homes(client.nthreads(), plan.n_blocks)
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
            # where its blocks' bins are (its middle block's home), not a hard restriction
            workers=None if homes is None else [homes[item.first_block + item.n_blocks // 2]],
            allow_other_workers=homes is not None,
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
