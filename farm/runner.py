"""Run an analysis: config → event store (generated if missing) → plan → partial sums → dataset.

The same plan and the same worker function serve every backend: ``inprocess`` computes the work
items here, in order; any dask cluster computes them on workers. Both reduce in the fixed tree of
:mod:`farm.plan`, so the numbers are identical bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import xarray as xr

from farm.analysis.pipeline import check_before_running, finish, prepare
from farm.checkpoint import CheckpointStore
from farm.cluster import ClusterOptions, connect
from farm.config import FarmConfig, store_path
from farm.execute import ExecutionStats, execute_dask, execute_inprocess
from farm.plan import Plan, make_plan
from farm.samples.generate import generate_store
from farm.store.reader import EventStore

__all__ = ["checkpoint_dir_for", "ensure_store", "plan_for", "run", "run_inprocess"]

Log = Callable[[str], None]
Progress = Callable[[int, int], None]


def ensure_store(
    cfg: FarmConfig, *, log: Log = print, on_shard: Callable[[int, int], None] | None = None
) -> EventStore:
    """Open the sample's event store, generating it first if it does not exist."""
    path = store_path(cfg)
    if not path.exists():
        log(
            f"event store {path} does not exist: generating {cfg.generation.events:,} events of {cfg.sample.name}"
        )
        generate_store(cfg, path, on_shard=on_shard)
    return EventStore.open(path)


def checkpoint_dir_for(out: str | Path) -> Path:
    """Work-item checkpoints live beside the published result."""
    out = Path(out)
    return out.with_name(f"{out.name}.checkpoints")


def plan_for(
    cfg: FarmConfig, store: EventStore, *, universes: int | None = None
) -> tuple[object, Plan]:
    prep = prepare(cfg, store, universes=universes)
    plan = make_plan(
        prep,
        store.shard_ranges,
        universes_per_task=cfg.analysis.universes_per_task,
        knob_universes_per_task=cfg.analysis.knob_universes_per_task,
        blocks_per_task=cfg.analysis.blocks_per_task,
    )
    return prep, plan


def run(
    cfg: FarmConfig,
    options: ClusterOptions,
    *,
    universes: int | None = None,
    checkpoint_dir: Path | None = None,
    log: Log = print,
    progress: Progress | None = None,
) -> tuple[xr.Dataset, ExecutionStats]:
    """Run the whole analysis of ``cfg`` on the requested cluster; return the dataset and what ran.

    What can be checked without events is checked first, so a bad configuration generates no
    store and starts no cluster (:func:`farm.analysis.pipeline.check_before_running`).
    """
    check_before_running(cfg, universes=universes)
    store = ensure_store(cfg, log=log)
    prep, plan = plan_for(cfg, store, universes=universes)
    checkpoints = CheckpointStore(checkpoint_dir) if checkpoint_dir is not None else None
    if options.kind == "inprocess" and not (options.scheduler_address or options.scheduler_file):
        sums, stats = execute_inprocess(prep, plan, checkpoints=checkpoints, progress=progress)  # type: ignore[arg-type]
        return finish(prep, sums), stats  # type: ignore[arg-type]
    with connect(options) as client:
        link = getattr(client, "dashboard_link", None) if options.dashboard else None
        if link:
            log(f"dask dashboard: {link}")
        sums, stats = execute_dask(prep, plan, client, checkpoints=checkpoints, progress=progress)  # type: ignore[arg-type]
        ds = client.submit(finish, prep, sums, pure=False).result()
    return ds, stats


def run_inprocess(
    cfg: FarmConfig,
    *,
    universes: int | None = None,
    log: Log = print,
    on_block: Progress | None = None,
) -> xr.Dataset:
    """Run the whole analysis of ``cfg`` in this process (no dask) and return the dataset."""
    ds, _ = run(
        cfg, ClusterOptions(kind="inprocess"), universes=universes, log=log, progress=on_block
    )
    return ds


def reduce_inprocess(prep, store):
    """Reduced partial sums of every universe, computed here (no checkpoints)."""
    plan = make_plan(
        prep,
        store.shard_ranges,
        universes_per_task=prep.cfg.analysis.universes_per_task,
        knob_universes_per_task=prep.cfg.analysis.knob_universes_per_task,
        blocks_per_task=prep.cfg.analysis.blocks_per_task,
    )
    sums, _ = execute_inprocess(prep, plan)
    return sums
