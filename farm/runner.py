"""Run an analysis: config → event store (generated if missing) → plan → partial sums → dataset.

The same plan and the same worker function serve every backend: ``inprocess`` computes the work
items here, in order; any dask cluster computes them on workers. Both reduce in the fixed tree of
:mod:`farm.plan`, so the numbers are identical bit for bit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from farm.analysis.convergence import next_throws
from farm.analysis.pipeline import check_before_running, finish, prepare
from farm.checkpoint import CheckpointStore
from farm.cluster import ClusterOptions, connect
from farm.config import FarmConfig, store_path
from farm.execute import ExecutionStats, execute_dask, execute_inprocess, inprocess_threads
from farm.plan import Plan, make_plan
from farm.samples.generate import generate_store
from farm.stages import advance, note, stage
from farm.stale import clean_stale, temporaries_of
from farm.store.reader import EventStore

__all__ = [
    "ConvergedRun",
    "checkpoint_dir_for",
    "ensure_store",
    "plan_for",
    "resolve_auto",
    "run",
    "run_inprocess",
    "run_until_converged",
    "synthetic_plan_for",
    "with_throws",
]

Log = Callable[[str], None]
Progress = Callable[[int, int], None]


def ensure_store(
    cfg: FarmConfig, *, log: Log = print, on_shard: Callable[[int, int], None] | None = None
) -> EventStore:
    """Open the sample's event store, generating it first if it does not exist.

    Temporaries a killed generation of this store left beside it are removed first
    (:mod:`farm.stale`: only those whose writer no longer runs).
    """
    path = store_path(cfg)
    clean_stale(temporaries_of(path), log=log)
    if not path.exists():
        log(
            f"event store {path} does not exist: generating {cfg.generation.events:,} events of {cfg.sample.name}"
        )
        stage(f"generating {cfg.generation.events:,} events", total=cfg.generation.events)
        generate_store(cfg, path, on_shard=on_shard or advance)
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


def synthetic_plan_for(
    cfg: FarmConfig, *, universes: int | None = None, log: Log = print
) -> tuple[object, Plan, list[tuple[int, int]]]:
    """The plan of ``cfg`` at its configured events, without its event store: a plan needs only
    the store's attributes and shard layout. A one-block store of the same sample (generated once,
    ``farm stores`` lists it) gives the attributes and the block the cost model times; the layout
    is the one ``farm generate`` would write. Keys are not those of the real store (its checksums
    do not exist yet); everything else is."""
    import dataclasses

    from farm.store.blocks import BLOCK_EVENTS

    one_block = cfg.model_copy(
        update={
            "generation": cfg.generation.model_copy(update={"events": BLOCK_EVENTS}),
            "sample": cfg.sample.model_copy(update={"store": None}),
        }
    )
    prep = prepare(one_block, ensure_store(one_block, log=log), universes=universes)
    n_events, shard = cfg.generation.events, cfg.generation.shard_size
    ranges = [(lo, min(lo + shard, n_events)) for lo in range(0, n_events, shard)]
    prep = dataclasses.replace(
        prep,
        cfg=cfg,
        n_events=n_events,
        store_checksums=tuple(f"synthetic-{i}" for i in range(len(ranges))),
    )
    plan = make_plan(
        prep,
        ranges,
        universes_per_task=cfg.analysis.universes_per_task,
        knob_universes_per_task=cfg.analysis.knob_universes_per_task,
        blocks_per_task=cfg.analysis.blocks_per_task,
    )
    return prep, plan, ranges


@contextlib.contextmanager
def _client(options: ClusterOptions, log: Log) -> Iterator[Any]:
    """None for in-process execution, else a dask client for the whole session."""
    if options.kind == "inprocess" and not (options.scheduler_address or options.scheduler_file):
        yield None
        return
    where = options.scheduler_address or options.scheduler_file
    joining = f"joining the cluster at {where}" if where else None
    stage(joining or f"starting cluster ({options.kind}, {options.n_workers} workers)")
    with connect(options) as client:
        link = getattr(client, "dashboard_link", None) if options.dashboard else None
        if link:
            log(f"dask dashboard: {link}")
        _compile_kernels(client)
        yield client


def _compile_kernels(client: Any) -> None:
    """Compile the numba kernels on every worker now, as a stage of its own (the work items
    would otherwise each wait for it unannounced); the execution registers the same setup
    again, which is then instant."""
    from workers.setup import FarmWorkerSetup

    stage(f"compiling kernels on {len(client.nthreads())} worker(s)")
    client.register_plugin(FarmWorkerSetup())


def _run_once(
    cfg: FarmConfig,
    store: EventStore,
    client: Any,
    *,
    universes: int | None,
    checkpoints: CheckpointStore | None,
    progress: Progress | None,
    threads: int | None = None,
) -> tuple[xr.Dataset, ExecutionStats]:
    prep, plan = plan_for(cfg, store, universes=universes)
    if checkpoints is not None:  # what the run costs, before it starts (farm refresh says so)
        kept = sum(checkpoints.has(item.key) for item in plan.items)
        total = len(plan.items)
        note(f"{total - kept:,} of {total:,} work items to compute, {kept:,} checkpointed")
    if client is None:
        sums, stats = execute_inprocess(
            prep,  # type: ignore[arg-type]
            plan,
            checkpoints=checkpoints,
            progress=progress,
            threads=threads,
        )
        return finish(prep, sums), stats  # type: ignore[arg-type]
    sums, stats = execute_dask(prep, plan, client, checkpoints=checkpoints, progress=progress)  # type: ignore[arg-type]
    return client.submit(finish, prep, sums, pure=False).result(), stats


def run(
    cfg: FarmConfig,
    options: ClusterOptions,
    *,
    universes: int | None = None,
    checkpoint_dir: Path | None = None,
    log: Log = print,
    progress: Progress | None = None,
    checked: bool = False,
) -> tuple[xr.Dataset, ExecutionStats]:
    """Run the whole analysis of ``cfg`` on the requested cluster; return the dataset and what ran.

    What can be checked without events is checked first, so a bad configuration generates no
    store and starts no cluster (:func:`farm.analysis.pipeline.check_before_running`; ``checked``:
    the caller has just done so for this ``cfg`` and ``universes``, as ``farm run`` does).
    """
    if not checked:
        check_before_running(cfg, universes=universes)
    if options.kind in ("inprocess", "auto"):
        inprocess_threads(options.workers)  # a bad FARM_INPROCESS_THREADS, before any event
    store = ensure_store(cfg, log=log)
    checkpoints = CheckpointStore(checkpoint_dir, log=log) if checkpoint_dir is not None else None
    options = resolve_auto(
        cfg, store, options, universes=universes, checkpoints=checkpoints, log=log
    )
    with _client(options, log) as client:
        return _run_once(
            cfg,
            store,
            client,
            universes=universes,
            checkpoints=checkpoints,
            progress=progress,
            threads=options.workers,
        )


def resolve_auto(
    cfg: FarmConfig,
    store: EventStore,
    options: ClusterOptions,
    *,
    universes: int | None,
    checkpoints: CheckpointStore | None,
    log: Log,
) -> ClusterOptions:
    """``--cluster auto`` (the default) made ``inprocess`` or ``local`` from the plan's cost on
    this machine (:func:`farm.costmodel.choose_cluster`), and the reason logged; other kinds,
    a named scheduler or explicit ``--workers``/``--threads`` are kept."""
    import dataclasses

    if options.kind != "auto":
        return options
    if options.scheduler_address or options.scheduler_file:
        return options  # joins the named scheduler (farm.cluster.connect)
    if options.workers is not None or not options.processes:
        return dataclasses.replace(options, kind="local")  # workers were asked for
    from farm.costmodel import choose_cluster, estimate, measure_rates, measure_startup

    prep, plan = plan_for(cfg, store, universes=universes)
    done = checkpoints.keys() if checkpoints is not None else set()
    todo = dataclasses.replace(plan, items=tuple(i for i in plan.items if i.key not in done))
    rates = measure_rates(prep, todo, log=log)  # type: ignore[arg-type]
    est = estimate(prep, todo, rates, measure_startup(measure=False))  # type: ignore[arg-type]
    kind, why = choose_cluster(est, options.n_workers)
    log(why)
    return dataclasses.replace(options, kind=kind)  # type: ignore[arg-type]


def with_throws(cfg: FarmConfig, throws: dict[str, int], precision: float) -> FarmConfig:
    """``cfg`` with the given throws per multisim systematic and the given universe precision."""
    systematics = [
        s.model_copy(update={"throws": throws[s.name]}) if s.name in throws else s
        for s in cfg.systematics
    ]
    analysis = cfg.analysis.model_copy(update={"universe_precision": precision})
    return cfg.model_copy(update={"systematics": systematics, "analysis": analysis})


@dataclass(frozen=True, kw_only=True)
class ConvergedRun:
    """The last iteration's dataset, and the throws and execution of every iteration."""

    ds: xr.Dataset
    steps: tuple[tuple[dict[str, int], ExecutionStats], ...]
    converged: bool

    @property
    def throws(self) -> dict[str, int]:
        return self.steps[-1][0]


def run_until_converged(
    cfg: FarmConfig,
    options: ClusterOptions,
    *,
    precision: float | None = None,
    max_universes: int = 10_000,
    universes: int | None = None,
    checkpoint_dir: Path,
    log: Log = print,
    progress: Progress | None = None,
) -> ConvergedRun:
    """Run, then throw more universes of each multisim systematic that is short, until all converge.

    Starts from ``universes`` per multisim systematic (default: the configured throws). After
    each run, every systematic whose covariance's relative MC error is above ``precision``
    (default ``[analysis] universe_precision``), or whose rank is limited by its universes, goes
    to the universes it needs (at least twice as many, at most ``max_universes``;
    :func:`farm.analysis.convergence.next_throws`), and the run is repeated. Throws depend only
    on (seed, systematic, index), so the earlier universes are the first ones of the new run:
    its work items come from the checkpoints in ``checkpoint_dir`` (flux systematics need no
    item at all, bootstrap items extend their checkpointed replicas; a knob item whose
    systematic grows is recomputed, at the cost of a fixed number of exact evaluations per
    event). The result equals, bit for bit, a plain run with the final throws; its
    ``until_converged`` attribute records the throws of every iteration and whether all
    converged.
    """
    target = cfg.analysis.universe_precision if precision is None else precision
    if not 0 < target < 1:
        msg = f"--precision must be a fraction in (0, 1), e.g. 0.05; got {target}"
        raise ValueError(msg)
    throws = {  # weight sets and flux files bring their universes: none to throw
        s.name: universes or s.throws
        for s in cfg.systematics
        if s.mode == "multisim" and s.kind != "weights" and not s.from_flux
    }
    if max_universes < max(throws.values(), default=1):
        msg = (
            f"--max-universes {max_universes} is below the {max(throws.values())} universes a "
            "systematic starts with; raise it or start lower with --universes"
        )
        raise ValueError(msg)
    first = with_throws(cfg, throws, target)
    check_before_running(first)
    if options.kind in ("inprocess", "auto"):
        inprocess_threads(options.workers)  # a bad FARM_INPROCESS_THREADS, before any event
    store = ensure_store(first, log=log)
    checkpoints = CheckpointStore(checkpoint_dir, log=log)
    steps: list[tuple[dict[str, int], ExecutionStats]] = []
    # decided on the first iteration's plan: later ones reuse its items from the checkpoints
    options = resolve_auto(first, store, options, universes=None, checkpoints=checkpoints, log=log)
    with _client(options, log) as client:
        while True:
            ds, stats = _run_once(
                with_throws(cfg, throws, target),
                store,
                client,
                universes=None,
                checkpoints=checkpoints,
                progress=progress,
                threads=options.workers,
            )
            steps.append((dict(throws), stats))
            grown = next_throws(ds, throws, max_universes)
            if grown is None:
                break
            more = ", ".join(f"{k} {throws[k]} → {v}" for k, v in grown.items() if v != throws[k])
            log(f"until converged: iteration {len(steps)} short of {100 * target:g} %: {more}")
            throws = grown
    names = [str(v) for v in ds["systematic"].values]
    flags = dict(zip(names, ds["universes_converged"].values, strict=True))
    converged = all(bool(flags[name]) for name in throws)
    ds.attrs["until_converged"] = json.dumps(
        {
            "precision": target,
            "max_universes": max_universes,
            "converged": converged,
            "iterations": len(steps),
            "throws": throws,
            "history": [step for step, _ in steps],
        },
        sort_keys=True,
    )
    return ConvergedRun(ds=ds, steps=tuple(steps), converged=converged)


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
