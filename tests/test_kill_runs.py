"""Issue 7, item 1: in 10 runs on a real cluster, one worker killed at a random moment each time,
10 of 10 complete and give the in-process result bit for bit.

Each run is the shared 540 000-event SNS CsI sample on the shared LocalCluster of two worker
processes (nannies), with one-block work items (90 items of ≈ 30 ms) and no checkpoints, so every
result the killed worker held, and the item it was computing, must be computed again. The moment
is seeded: the kill comes once a random number of items (1 to 89) are done, and hits a random one
of the workers busy with an item. The nanny starts a new worker process, which the next run
waits for (and lets compile its kernels, so that both workers compute).

Two more runs kill worker 0, then worker 1, after the last item and before the chunks are
reduced, once dask's active memory manager has had time to drop the spare copies of what no task
waits for any more — the accumulation spec among them: the results the victim held are computed
again from the one copy left, wherever it is.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from conftest import N_BLOCKS, N_CHUNKS, assert_bit_identical, dist_config, run_quietly

from farm.cluster import ClusterOptions
from workers.setup import warm_up_kernels

LAYOUT = frozenset({"config", "config_hash"})
"""Attributes that record the work-item sizes, which the numbers do not depend on."""
ITEMS = N_CHUNKS * N_BLOCKS
"""90 one-block work items."""
WORK_PREFIXES = ("farm-item-", "farm-checkpoint-")
"""Keys of the tasks that compute a work item, or load it from its checkpoint."""
SEEDS = range(10)


@dataclass(frozen=True, kw_only=True)
class Kill:
    """What a :class:`WorkerKiller` did: when, to which process, and what that process held."""

    pid: int
    done: int
    total: int
    after_s: float
    held: int
    """Work-item results in the killed worker's memory, lost with it."""
    processing: int
    """Work-item tasks the scheduler had assigned to it and not yet received."""


class WorkerKiller:
    """A progress callback that SIGKILLs one worker once ``after`` work items are done.

    The victim is drawn with ``rng`` among the workers busy with a work item (among all workers
    when none is), so it dies inside an item, with the results it computed before in its memory.
    With ``only``, the victim is the worker of that name, busy or not; ``delay_s`` moves the kill
    that long past the item boundary (the driver sleeps, the workers go on).
    """

    def __init__(
        self,
        client: Any,
        rng: np.random.Generator,
        *,
        after: int,
        only: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.client = client
        self.rng = rng
        self.after = after
        self.delay_s = delay_s
        self.pids: dict[str, int] = client.run(os.getpid)
        if only is not None:
            workers = client.scheduler_info()["workers"]
            self.pids = {a: p for a, p in self.pids.items() if str(workers[a]["name"]) == only}
        self.started = time.perf_counter()
        self.kill: Kill | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.kill is not None or done < self.after:
            return
        time.sleep(self.delay_s)
        processing = self.client.processing()
        busy = sorted(
            w for w, keys in processing.items() if w in self.pids and any(map(_is_work, keys))
        )
        victim = str(self.rng.choice(busy or sorted(self.pids)))
        held = sum(map(_is_work, self.client.has_what().get(victim, ())))
        os.kill(self.pids[victim], signal.SIGKILL)
        self.kill = Kill(
            pid=self.pids[victim],
            done=done,
            total=total,
            after_s=time.perf_counter() - self.started,
            held=held,
            processing=sum(map(_is_work, processing.get(victim, ()))),
        )


def _is_work(key: object) -> bool:
    return str(key).startswith(WORK_PREFIXES)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_a_run_with_a_worker_killed_at_a_random_moment_completes_bit_identical(
    seed: int,
    sample_store: Path,
    reference: xr.Dataset,
    client: Any,
    on_cluster: ClusterOptions,
) -> None:
    client.run(warm_up_kernels)  # a restarted worker has compiled its kernels: both compute
    rng = np.random.default_rng(seed)
    killer = WorkerKiller(client, rng, after=int(rng.integers(1, ITEMS)))
    cfg = dist_config(sample_store, blocks_per_task=1)  # checkpoints off: nothing is reloaded

    ds, stats = run_quietly(cfg, on_cluster, progress=killer)

    kill = killer.kill
    assert kill is not None, "the run finished before the worker could be killed"
    print(
        f"seed {seed}: killed pid {kill.pid} after {kill.done}/{kill.total} items "
        f"({kill.after_s:.2f} s into the run), holding {kill.held} results, "
        f"processing {kill.processing}"
    )
    assert kill.done < kill.total == ITEMS  # mid-run
    assert kill.held + kill.processing > 0  # the kill cost work that had to be done again
    assert (stats.items, stats.computed, stats.from_checkpoint) == (ITEMS, ITEMS, 0)
    assert_bit_identical(ds, reference, provenance=LAYOUT)
    # the nanny replaced the killed process; the next run starts with two workers again
    client.wait_for_workers(2, timeout=60)
    assert kill.pid not in client.run(os.getpid).values()


AMM_INTERVAL_S = 2.0
"""How often dask's active memory manager drops the copies of data no task waits for
(``distributed.scheduler.active-memory-manager.interval``)."""


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["0", "1"])
def test_a_worker_killed_after_the_last_item_before_the_reduction_changes_no_bit(
    victim: str,
    sample_store: Path,
    reference: xr.Dataset,
    client: Any,
    on_cluster: ClusterOptions,
) -> None:
    # once every item is done no task waits for the accumulation spec, and the memory manager
    # keeps one copy of it; the results the victim held must be recomputed, which needs the spec
    # (it was once scattered data, lost for good with the only worker that held it: one of the
    # two victims failed its run)
    client.run(warm_up_kernels)
    killer = WorkerKiller(
        client,
        np.random.default_rng(0),
        after=ITEMS,
        only=victim,
        delay_s=AMM_INTERVAL_S + 0.5,
    )
    ds, stats = run_quietly(
        dist_config(sample_store, blocks_per_task=1), on_cluster, progress=killer
    )
    assert killer.kill is not None and killer.kill.done == ITEMS
    assert killer.kill.held > 0
    assert stats.computed == ITEMS
    assert_bit_identical(ds, reference, provenance=LAYOUT)
    client.wait_for_workers(2, timeout=60)
