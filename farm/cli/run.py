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
from farm.cli._common import (
    configure_output,
    console,
    count,
    emit_json,
    user_errors,
)
from farm.cli._common import out as out_console
from farm.cli._stages import StageDisplay
from farm.stages import stage

__all__ = ["refresh", "run"]

ConfigArg = Annotated[
    str, typer.Argument(help="Sample name (e.g. sns-csi) or a TOML configuration.")
]
OutFlag = Annotated[
    Path, typer.Option("--out", "-o", help="Where to publish the result dataset (zarr).")
]
EventsFlag = Annotated[
    int | None,
    typer.Option(
        "--events",
        "-n",
        parser=count,
        metavar="N",
        help="Override [generation] events (2e5, 200_000).",
    ),
]
UniversesFlag = Annotated[
    int | None,
    typer.Option(
        "--universes",
        "-u",
        parser=count,
        metavar="N",
        help="Override the throws of every multisim systematic.",
    ),
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
    typer.Option(
        "--max-universes",
        parser=count,
        metavar="N",
        help="With --until-converged: most universes per systematic.",
    ),
]
NewAnalysisFlag = Annotated[
    bool,
    typer.Option(
        "--new-analysis",
        help="Publish even though OUT holds the results of another sample (as its next version; "
        "earlier versions are kept).",
    ),
]
JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the result as one JSON document on stdout (and nothing else there): "
        "version, universes, work items, each model's chi-squares and p-values.",
    ),
]
QuietFlag = Annotated[
    bool, typer.Option("--quiet", "-q", help="Only errors on stderr (no stages, no progress).")
]
VerboseFlag = Annotated[
    bool, typer.Option("--verbose", "-v", help="Also each stage's time and more detail.")
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
    as_json: bool = False,
) -> None:
    from farm.config import load_config, store_path
    from farm.config.measurement import is_measurement_file
    from farm.lock import output_lock
    from farm.outputs import check_output, check_same_analysis
    from farm.publish import current_version, publish_dataset
    from farm.runner import checkpoint_dir_for
    from farm.stale import clean_stale, temporaries_of

    if is_measurement_file(config):
        from farm.cli._measurement import execute_measurement

        execute_measurement(
            config,
            out,
            events,
            universes,
            checkpoints,
            options,
            refresh=refresh,
            wait=wait,
            until_converged=until_converged or precision is not None or max_universes != 10_000,
            new_analysis=new_analysis,
            as_json=as_json,
        )
        return
    from farm.cli import _refresh

    shown = StageDisplay(console, checkpoints=checkpoints)

    def say(message: str) -> None:
        console.print(message, markup=False, highlight=False)

    t0 = time.perf_counter()
    with user_errors(writing=out), shown.interrupts():
        # a refresh keeps the published run's --events and --universes unless given again
        pub = _refresh.published(out) if refresh and out.exists() else None
        events = _refresh.keep_events(pub, events, say)
        overrides = {"generation.events": events} if events is not None else {}
        cfg = load_config(config, **overrides)
        cfg, universes = _refresh.keep_universes(pub, cfg, universes, say)
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
        if pub is not None:
            say(_refresh.describe_changes(pub, cfg, store_path(cfg)))
        # one publisher per output: the checkpoints, the comparison and the swap are its alone
        with output_lock(out, wait_s=wait, log=lambda m: console.print(m)):
            # what killed runs left in OUT's versions and checkpoints (their writers are gone)
            clean_stale(temporaries_of(out), log=lambda m: console.print(m, markup=False))
            if refresh and current_version(out) is None:
                msg = f"{out}: nothing published yet; run `farm run {config} --out {out}` first"
                raise ValueError(msg)
            with shown:  # labelled stages: generating, cluster, kernels, work items, reducing
                ds, stats = _analyse(
                    cfg,
                    options,
                    universes=universes,
                    checkpoint_dir=checkpoint_dir_for(out) if checkpoints else None,
                    progress=shown.items,
                    until_converged=until_converged,
                    precision=precision,
                    max_universes=max_universes,
                )
                _refresh.record(ds, events, universes)  # what a later refresh keeps
                if refresh:
                    stage("comparing with the published version")
                    if _refresh.unchanged(out, ds):
                        done = f"recomputed {stats.computed} of {stats.items} work items, nothing changed"
                        _print_result(out, None, ds, stats, time.perf_counter() - t0, as_json, done)
                        return
                stage("publishing")
                version = publish_dataset(ds, out, new_analysis=new_analysis)
    _print_result(out, version.name, ds, stats, time.perf_counter() - t0, as_json)


def _print_result(
    out: Path,
    version: str | None,
    ds: object,
    stats: object,
    seconds: float,
    as_json: bool,
    up_to_date: str | None = None,
) -> None:
    """The result on stdout: a summary and the chi-squares with their p-values, or one JSON
    document (--json); ``version`` None: a refresh found the published version up to date."""
    from farm.analysis.convergence import summary_lines, summary_record

    if as_json:
        record = {"out": str(out), "version": version, "up_to_date": up_to_date is not None}
        emit_json(record | {"seconds": round(seconds, 3)} | summary_record(ds, stats))  # type: ignore[arg-type]
        return
    if up_to_date is not None:
        out_console.print(f"{out} is up to date: {up_to_date}", markup=False, highlight=False)
        return
    extended = f", {stats.extended} extending checkpointed replicas" if stats.extended else ""  # type: ignore[attr-defined]
    out_console.print(
        f"published {out} ({version}): {ds.sizes['universe']} universes, {len(ds.systematic)} systematics, "  # type: ignore[attr-defined]
        f"{ds.sizes['truth_bin']} truth bin(s), in {seconds:.1f} s; computed {stats.computed} of {stats.items} "  # type: ignore[attr-defined]
        f"work items ({stats.from_checkpoint} from checkpoints{extended})",  # type: ignore[attr-defined]
        markup=False,
        highlight=False,
    )
    for line in summary_lines(ds):  # type: ignore[arg-type]
        if line.startswith("warning"):  # a diagnostic: stderr
            console.print(line, style="bold yellow", markup=False, highlight=False)
        else:
            out_console.print(line, markup=False, highlight=False)


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
            checked=True,  # by _check_config, before the output was locked
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


def run(
    config: ConfigArg,
    out: OutFlag,
    cluster: ClusterFlag = "auto",
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
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Generate the sample if needed, throw the universes, extract, and publish the covariance dataset.

    Without --cluster it runs in this process when the plan's estimated work is shorter than
    starting workers (it says so), else it starts an embedded LocalCluster (one worker per core)
    and prints the dashboard address; --cluster local or inprocess decides. A rerun resumes from the work-item
    checkpoints beside OUT. The summary warns when a systematic has too few universes for
    analysis.universe_precision; --until-converged throws more until none has. OUT is a new
    path or an earlier result (an event store, a file or a foreign folder there is refused); a
    result of another sample there needs --new-analysis.

    Stages (starting the cluster, compiling the kernels, generating, computing the work items
    with the time left, reducing, publishing) and messages go to stderr; the summary (each
    model's chi2/dof and p-value) or, with --json, one JSON document to stdout. Ctrl-C exits 130
    saying how many work items are checkpointed: the same command resumes from them.

    \b
    Example: farm run sns-csi --out results/sns-csi.zarr --workers 2 --events 2e5
    Example: farm run sns-csi --out r.zarr --universes 20 --until-converged --precision 0.1
    """
    if quiet or verbose:
        configure_output(quiet=quiet, verbose=verbose)
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
        as_json=as_json,
    )


def refresh(
    config: ConfigArg,
    out: OutFlag,
    cluster: ClusterFlag = "auto",
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
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Recompute only what changed since the published result and publish it as a new version.

    It keeps the published version's events and universes (--events, --universes, or what
    --until-converged reached) unless they are given again, and first says what changed since
    that version: systematics added, removed or changed, other sections such as the binning,
    changed shards; the stage line then says how many work items that costs. A new or changed
    shard, a changed systematic or binning recomputes just the work items whose keys changed;
    the rest comes from checkpoints. Earlier versions are kept (farm versions OUT).

    Example: farm refresh sns-csi --out results/sns-csi.zarr
    """
    if quiet or verbose:
        configure_output(quiet=quiet, verbose=verbose)
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
        as_json=as_json,
    )
