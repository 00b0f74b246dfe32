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
) -> None:
    from farm.config import load_config
    from farm.lock import output_lock
    from farm.publish import current_version, publish_dataset
    from farm.runner import checkpoint_dir_for
    from farm.runner import run as run_analysis

    overrides = {"generation.events": events} if events is not None else {}
    t0 = time.perf_counter()
    with user_errors():
        cfg = load_config(config, **overrides)
        _check_config(config, cfg, universes)
        if wait < 0:
            msg = f"--wait must be >= 0 seconds (got {wait:g}); 0 refuses at once while another run publishes OUT"
            raise ValueError(msg)
        # one publisher per output: the checkpoints, the comparison and the swap are its alone
        with output_lock(out, wait_s=wait, log=lambda m: console.print(m)):
            if refresh and current_version(out) is None:
                msg = f"{out}: nothing published yet; run `farm run {config} --out {out}` first"
                raise ValueError(msg)
            with progress_bar() as bar:
                task = bar.add_task("work items", total=None)
                ds, stats = run_analysis(
                    cfg,
                    options,
                    universes=universes,
                    checkpoint_dir=checkpoint_dir_for(out) if checkpoints else None,
                    log=lambda m: console.print(m),
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
            if refresh and _unchanged(out, ds):
                console.print(
                    f"{out} is up to date: recomputed {stats.computed} of {stats.items} work items, nothing changed"
                )
                return
            version = publish_dataset(ds, out)
    dt = time.perf_counter() - t0
    console.print(
        f"published {out} ({version.name}): {ds.sizes['universe']} universes, {len(ds.systematic)} systematics, "
        f"{ds.sizes['truth_bin']} truth bin(s), in {dt:.1f} s; computed {stats.computed} of {stats.items} "
        f"work items ({stats.from_checkpoint} from checkpoints)"
    )
    for model in ds.model.values:
        sel = ds.sel(model=model)
        console.print(
            f"  {model}: chi2/dof real {float(sel.chi2_real_joint):.2f}/{int(ds.chi2_dof)} "
            f"(uncorrelated {float(sel.chi2_real_uncorrelated):.2f}), nominal {float(sel.chi2_nominal_joint):.2f}"
        )


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

    with xr.open_zarr(current_version(out)) as previous:
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
) -> None:
    """Generate the sample if needed, throw the universes, extract, and publish the covariance dataset.

    Without --cluster it starts an embedded LocalCluster (one worker per core) and prints the
    dashboard address; --cluster inprocess runs without dask. A rerun resumes from the work-item
    checkpoints beside OUT.

    Example: farm run sns-csi --out results/sns-csi.zarr --workers 2 --events 200000
    """
    with user_errors():
        options = cluster_options(
            cluster, workers, threads, scheduler, scheduler_file, tls_dir, cluster_settings
        )
    _execute(config, out, events, universes, checkpoints, options, refresh=False, wait=wait)


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
    _execute(config, out, events, universes, True, options, refresh=True, wait=wait)
