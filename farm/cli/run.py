"""``farm run`` and ``farm refresh``: the whole measurement, from config to the published dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from farm.cli._cluster_options import (
    ClusterFlag,
    SchedulerFileFlag,
    SchedulerFlag,
    SettingsFlag,
    ThreadsFlag,
    TlsFlag,
    WorkersFlag,
    cluster_options,
)
from farm.cli._common import console, progress_bar, user_errors

__all__ = ["refresh", "run"]

ConfigArg = Annotated[
    str, typer.Argument(help="Sample name (e.g. sns-csi) or a TOML configuration.")
]
OutFlag = Annotated[
    Path, typer.Option("--out", "-o", help="Where to publish the result dataset (zarr).")
]
EventsFlag = Annotated[
    int | None, typer.Option("--events", "-n", help="Override [generation] events (quick runs).")
]
UniversesFlag = Annotated[
    int | None,
    typer.Option("--universes", "-u", help="Override the throws of every multisim systematic."),
]
WaitFlag = Annotated[
    float,
    typer.Option(
        "--wait",
        help="If another run is publishing OUT, wait up to this many seconds for it (default: refuse at once).",
    ),
]
UntilConvergedFlag = Annotated[
    bool,
    typer.Option(
        "--until-converged",
        help="Keep throwing more universes of each multisim systematic whose covariance is not "
        "known to --precision, reusing the earlier work items, until all are.",
    ),
]
PrecisionFlag = Annotated[
    float | None,
    typer.Option(
        "--precision",
        help="Target relative Monte-Carlo error of each systematic's covariance "
        "(default: the configuration's analysis.universe_precision, 0.10).",
    ),
]
MaxUniversesFlag = Annotated[
    int,
    typer.Option("--max-universes", help="With --until-converged: most universes per systematic."),
]
NewAnalysisFlag = Annotated[
    bool,
    typer.Option(
        "--new-analysis",
        help="Publish even though OUT holds the results of another sample (as its next version; "
        "earlier versions are kept).",
    ),
]
CheckpointFlag = Annotated[
    bool,
    typer.Option(
        "--checkpoints/--no-checkpoints",
        help="Keep per-work-item checkpoints beside the output (resume, refresh).",
    ),
]


def _execute(
    config: str,
    out: Path,
    events: int | None,
    universes: int | None,
    checkpoints: bool,
    options,
    *,
    refresh: bool,
    wait: float = 0.0,
    until_converged: bool = False,
    precision: float | None = None,
    max_universes: int = 10_000,
    new_analysis: bool = False,
) -> None:
    from farm.analysis.convergence import summary_lines
    from farm.config import load_config, store_path
    from farm.lock import output_lock
    from farm.outputs import check_output, check_same_analysis
    from farm.publish import current_version, publish_dataset
    from farm.runner import checkpoint_dir_for
    from farm.stale import clean_stale, temporaries_of

    overrides = {"generation.events": events} if events is not None else {}
    t0 = time.perf_counter()
    with user_errors(writing=out):
        cfg = load_config(config, **overrides)
        _check_config(config, cfg, universes)
        if wait < 0:
            msg = f"--wait must be >= 0 seconds (got {wait:g}); 0 refuses at once while another run publishes OUT"
            raise ValueError(msg)
        if until_converged and not checkpoints:
            msg = "--until-converged reuses the earlier work items through checkpoints; drop --no-checkpoints"
            raise ValueError(msg)
        if not until_converged and (precision is not None or max_universes != 10_000):
            msg = "--precision and --max-universes apply to --until-converged; add it"
            raise ValueError(msg)
        # only ever a result, of this sample: refused before a cluster starts (farm.outputs)
        check_output(out, store=store_path(cfg))
        generator = cfg.sample.generator
        check_same_analysis(out, cfg.sample.name, generator, new_analysis=new_analysis)
        # one publisher per output: the checkpoints, the comparison and the swap are its alone
        with output_lock(out, wait_s=wait, log=lambda m: console.print(m)):
            # what killed runs left in OUT's versions and checkpoints (their writers are gone)
            clean_stale(temporaries_of(out), log=lambda m: console.print(m, markup=False))
            if refresh and current_version(out) is None:
                msg = f"{out}: nothing published yet; run `farm run {config} --out {out}` first"
                raise ValueError(msg)
            with progress_bar() as bar:
                task = bar.add_task("work items", total=None)
                ds, stats = _analyse(
                    cfg,
                    options,
                    universes=universes,
                    checkpoint_dir=checkpoint_dir_for(out) if checkpoints else None,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    until_converged=until_converged,
                    precision=precision,
                    max_universes=max_universes,
                )
            if refresh and _unchanged(out, ds):
                console.print(
                    f"{out} is up to date: recomputed {stats.computed} of {stats.items} work items, nothing changed"
                )
                return
            version = publish_dataset(ds, out, new_analysis=new_analysis)
    dt = time.perf_counter() - t0
    extended = f", {stats.extended} extending checkpointed replicas" if stats.extended else ""
    console.print(
        f"published {out} ({version.name}): {ds.sizes['universe']} universes, {len(ds.systematic)} systematics, "
        f"{ds.sizes['truth_bin']} truth bin(s), in {dt:.1f} s; computed {stats.computed} of {stats.items} "
        f"work items ({stats.from_checkpoint} from checkpoints{extended})"
    )
    for line in summary_lines(ds):
        warn = line.startswith("warning")
        console.print(line, style="bold yellow" if warn else None, markup=False)


def _analyse(
    cfg: object,
    options: object,
    *,
    universes: int | None,
    checkpoint_dir: Path | None,
    progress: object,
    until_converged: bool,
    precision: float | None,
    max_universes: int,
) -> tuple[object, object]:
    """One run, or runs until every systematic converges (then the stats sum every iteration)."""
    from farm.execute import ExecutionStats
    from farm.runner import run as run_analysis
    from farm.runner import run_until_converged

    def log(message: str) -> None:
        console.print(message, markup=False)

    if not until_converged:
        return run_analysis(
            cfg,  # type: ignore[arg-type]
            options,  # type: ignore[arg-type]
            universes=universes,
            checkpoint_dir=checkpoint_dir,
            log=log,
            progress=progress,  # type: ignore[arg-type]
        )
    result = run_until_converged(
        cfg,  # type: ignore[arg-type]
        options,  # type: ignore[arg-type]
        precision=precision,
        max_universes=max_universes,
        universes=universes,
        checkpoint_dir=checkpoint_dir,  # type: ignore[arg-type]
        log=log,
        progress=progress,  # type: ignore[arg-type]
    )
    state = "converged" if result.converged else f"NOT converged (cap {max_universes})"
    throws = ", ".join(f"{k} {v}" for k, v in result.throws.items())
    log(f"until converged: {state} after {len(result.steps)} iteration(s): {throws}")
    runs = [stats for _, stats in result.steps]
    total = ExecutionStats(
        items=sum(s.items for s in runs),
        computed=sum(s.computed for s in runs),
        from_checkpoint=sum(s.from_checkpoint for s in runs),
        extended=sum(s.extended for s in runs),
    )
    return result.ds, total


def _check_config(config: str, cfg: object, universes: int | None) -> None:
    """What the configuration alone decides, checked before any event or cluster; errors name the file."""
    from farm.analysis.pipeline import check_before_running
    from farm.config import ConfigError, resolve_config_path

    source = resolve_config_path(config)
    try:
        check_before_running(cfg, universes=universes)  # type: ignore[arg-type]
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{source}: {err}") from None
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None


def _unchanged(out: Path, ds: object) -> bool:
    import xarray as xr

    from farm.publish import current_version

    with xr.open_zarr(current_version(out), chunks=None) as previous:
        return bool(previous.load().identical(ds))


def run(
    config: ConfigArg,
    out: OutFlag,
    cluster: ClusterFlag = "local",
    workers: WorkersFlag = None,
    threads: ThreadsFlag = False,
    scheduler: SchedulerFlag = None,
    scheduler_file: SchedulerFileFlag = None,
    tls_dir: TlsFlag = None,
    cluster_settings: SettingsFlag = None,
    events: EventsFlag = None,
    universes: UniversesFlag = None,
    checkpoints: CheckpointFlag = True,
    wait: WaitFlag = 0.0,
    until_converged: UntilConvergedFlag = False,
    precision: PrecisionFlag = None,
    max_universes: MaxUniversesFlag = 10_000,
    new_analysis: NewAnalysisFlag = False,
) -> None:
    """Generate the sample if needed, throw the universes, extract, and publish the covariance dataset.

    Without --cluster it starts an embedded LocalCluster (one worker per core) and prints the
    dashboard address; --cluster inprocess runs without dask. A rerun resumes from the work-item
    checkpoints beside OUT. The summary warns when a systematic has too few universes for
    analysis.universe_precision; --until-converged throws more until none has. OUT is a new
    path or an earlier result (an event store, a file or a foreign folder there is refused); a
    result of another sample there needs --new-analysis.

    Example: farm run sns-csi --out results/sns-csi.zarr --workers 2 --events 200000
    Example: farm run sns-csi --out r.zarr --universes 20 --until-converged --precision 0.1
    """
    with user_errors():
        options = cluster_options(
            cluster, workers, threads, scheduler, scheduler_file, tls_dir, cluster_settings
        )
    _execute(
        config,
        out,
        events,
        universes,
        checkpoints,
        options,
        refresh=False,
        wait=wait,
        until_converged=until_converged,
        precision=precision,
        max_universes=max_universes,
        new_analysis=new_analysis,
    )


def refresh(
    config: ConfigArg,
    out: OutFlag,
    cluster: ClusterFlag = "local",
    workers: WorkersFlag = None,
    threads: ThreadsFlag = False,
    scheduler: SchedulerFlag = None,
    scheduler_file: SchedulerFileFlag = None,
    tls_dir: TlsFlag = None,
    cluster_settings: SettingsFlag = None,
    events: EventsFlag = None,
    universes: UniversesFlag = None,
    wait: WaitFlag = 0.0,
    new_analysis: NewAnalysisFlag = False,
) -> None:
    """Recompute only what changed since the published result and publish it as a new version.

    A new or changed shard, a changed systematic or binning recomputes just the work items whose
    keys changed; the rest comes from checkpoints. Earlier versions are kept (farm versions OUT).

    Example: farm refresh sns-csi --out results/sns-csi.zarr
    """
    with user_errors():
        options = cluster_options(
            cluster, workers, threads, scheduler, scheduler_file, tls_dir, cluster_settings
        )
    _execute(
        config,
        out,
        events,
        universes,
        True,
        options,
        refresh=True,
        wait=wait,
        new_analysis=new_analysis,
    )
