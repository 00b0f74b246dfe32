"""Feldman–Cousins toys on the farm's clusters: blocks of toys as dask tasks, checkpointed.

Each task throws and refits one block of toys at one θ point (:func:`farm.fit.toys.run_block`).
Tasks run in this process (``--cluster inprocess``) or on any cluster :func:`farm.cluster.connect`
gives (an embedded LocalCluster, an existing scheduler, SLURM, Kubernetes), with the flags of
``farm run``. Toys are seeded one by one from (seed, parameter, θ index, toy index), and blocks are
fixed by the block size, so the Δχ² of every toy is the same whatever the number of workers and
whether it was computed now or loaded from a checkpoint (:mod:`farm.fit.checkpoints`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from farm.fit.checkpoints import ToyCheckpoints, fingerprint
from farm.fit.toys import Grid, Thrower, ToyPoint, run_block

__all__ = ["ToyRunStats", "ToyTask", "run_toys", "toy_fingerprint", "toy_tasks"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ToyTask:
    """Toys ``first`` … ``stop`` − 1 at ``points[point]``."""

    point: int
    first: int
    stop: int


@dataclass(frozen=True, kw_only=True)
class ToyRunStats:
    tasks: int
    computed: int
    from_checkpoint: int


def toy_tasks(n_points: int, toys: int, block: int) -> list[ToyTask]:
    """Every point's toys cut into blocks of ``block`` (the last may be shorter)."""
    if toys < 1 or block < 1:
        msg = f"--toys and --block must be at least 1; got {toys} and {block}"
        raise ValueError(msg)
    return [
        ToyTask(point=p, first=first, stop=min(first + block, toys))
        for p in range(n_points)
        for first in range(0, toys, block)
    ]


def toy_fingerprint(
    grid: Grid, thrower: Thrower, points: Sequence[ToyPoint], names: Sequence[str], seed: int
) -> str:
    """What decides every toy's Δχ²: the grid, how toys are thrown, the points, names, seed."""
    parts: list[object] = [
        "farm-fit-toys-1",
        list(names),
        int(seed),
        thrower.kind,
        float(thrower.scale),
        thrower.stat_cov,
        *grid.axes,
        grid.pred,
        grid.v_syst,
    ]
    if thrower.counts is not None:
        parts += thrower.counts.fingerprint_parts()  # one sample's, or every sample's (joint)
    for p in points:
        parts += [int(p.poi), int(p.index), p.theta, p.pred, p.expected, p.syst_factor]
    return fingerprint(parts)


def _key(print_: str, point: ToyPoint, task: ToyTask) -> str:
    return f"fc-{print_[:20]}-{point.poi}-{point.index}-{task.first}-{task.stop}"


def _value(value: Any) -> Any:
    return value


def run_toys(
    grid: Grid,
    thrower: Thrower,
    points: Sequence[ToyPoint],
    names: Sequence[str],
    *,
    seed: int,
    toys: int,
    block: int,
    options: Any = None,
    checkpoint_dir: str | Path | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, ToyRunStats]:
    """(len(points), toys) Δχ² of every toy at every point, and what was computed or loaded.

    ``options`` is a :class:`farm.cluster.ClusterOptions` (None or kind ``inprocess``: no dask).
    """
    tasks = toy_tasks(len(points), toys, block)
    out = np.full((len(points), toys), np.nan)
    store = None if checkpoint_dir is None else ToyCheckpoints(checkpoint_dir, log=log)
    print_ = toy_fingerprint(grid, thrower, points, names, seed)
    missing = []
    for task in tasks:
        loaded = None
        if store is not None:
            loaded = store.load(_key(print_, points[task.point], task), task.stop - task.first)
        if loaded is None:
            missing.append(task)
        else:
            out[task.point, task.first : task.stop] = loaded
    done = len(tasks) - len(missing)
    if progress is not None:
        progress(done, len(tasks))

    def finished(task: ToyTask, values: np.ndarray) -> None:
        nonlocal done
        out[task.point, task.first : task.stop] = values
        if store is not None:
            store.save(_key(print_, points[task.point], task), values)
        done += 1
        if progress is not None:
            progress(done, len(tasks))

    def arguments(task: ToyTask) -> dict[str, Any]:
        point = points[task.point]
        return {"seed": seed, "name": names[point.poi], "first": task.first, "stop": task.stop}

    inprocess = options is None or (
        getattr(options, "kind", "") == "inprocess"
        and not (options.scheduler_address or options.scheduler_file)
    )
    if inprocess:
        for task in missing:
            finished(task, run_block(grid, thrower, points[task.point], **arguments(task)))
    elif missing:
        from distributed import as_completed

        from farm.cluster import connect
        from workers.setup import FarmWorkerSetup

        with connect(options) as client:
            client.register_plugin(FarmWorkerSetup())  # malloc thresholds, as for farm run
            # inputs as task results, not scattered data: a lost worker's copy is recomputed
            grid_f = client.submit(_value, grid, pure=False)
            thrower_f = client.submit(_value, thrower, pure=False)
            point_f = [client.submit(_value, p, pure=False) for p in points]
            futures = {}
            for task in missing:
                future = client.submit(
                    run_block,
                    grid_f,
                    thrower_f,
                    point_f[task.point],
                    **arguments(task),
                    key=f"farm-{_key(print_, points[task.point], task)}",
                    pure=False,
                    retries=2,
                )
                futures[future] = task
            # results arrive with their completion (no round trip per block to fetch each)
            for future, values in as_completed(futures, loop=client.loop, with_results=True):
                finished(futures[future], np.asarray(values, dtype=np.float64))
    stats = ToyRunStats(
        tasks=len(tasks), computed=len(missing), from_checkpoint=len(tasks) - len(missing)
    )
    return out, stats
