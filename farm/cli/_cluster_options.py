"""The cluster flags shared by ``farm run`` and ``farm refresh``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import count
from farm.cluster import CLUSTER_KINDS, ClusterOptions

__all__ = [
    "ClusterFlag",
    "SchedulerFileFlag",
    "SchedulerFlag",
    "SettingsFlag",
    "ThreadsFlag",
    "TlsFlag",
    "WorkersFlag",
    "cluster_options",
]

ClusterFlag = Annotated[
    str,
    typer.Option(
        "--cluster",
        help=f"Where to run: {', '.join(CLUSTER_KINDS)} (default auto: in this process when the "
        "plan is too small for workers to pay for their start-up, else an embedded LocalCluster).",
    ),
]
WorkersFlag = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        parser=count,
        metavar="N",
        help="Number of dask workers (default: the machine's cores); with --cluster inprocess, "
        "the threads computing the work items (default: the CPUs, at most 4; "
        "FARM_INPROCESS_THREADS sets it for every run).",
    ),
]
ThreadsFlag = Annotated[
    bool,
    typer.Option(
        "--threads", help="Local workers as threads of this process instead of processes."
    ),
]
SchedulerFlag = Annotated[
    str | None, typer.Option("--scheduler", help="Join a running dask scheduler at this address.")
]
SchedulerFileFlag = Annotated[
    Path | None,
    typer.Option("--scheduler-file", help="Join the dask scheduler described by this file."),
]
TlsFlag = Annotated[
    Path | None,
    typer.Option("--tls-dir", help="TLS: ca.pem, cert.pem, key.pem (farm cluster certs DIR)."),
]
SettingsFlag = Annotated[
    Path | None,
    typer.Option(
        "--cluster-settings", help="Backend settings YAML (SLURM jobqueue, Kubernetes spec)."
    ),
]


def cluster_options(
    cluster: str,
    workers: int | None,
    threads: bool,
    scheduler: str | None,
    scheduler_file: Path | None,
    tls_dir: Path | None,
    settings: Path | None,
) -> ClusterOptions:
    if cluster not in CLUSTER_KINDS:
        msg = f"--cluster {cluster!r} is unknown; choose one of {', '.join(CLUSTER_KINDS)}"
        raise ValueError(msg)
    if workers is not None and workers < 1:
        msg = "--workers must be at least 1"
        raise ValueError(msg)
    if scheduler is not None and scheduler.startswith("tls://") and tls_dir is None:
        msg = (
            f"--scheduler {scheduler}: a tls:// scheduler needs the cluster's certificates; add "
            "--tls-dir DIR (the folder `farm cluster certs` wrote: ca.pem, cert.pem, key.pem)"
        )
        raise ValueError(msg)
    if scheduler is not None and tls_dir is not None and not scheduler.startswith("tls://"):
        rest = scheduler.partition("://")[2] or scheduler
        msg = (
            f"--scheduler {scheduler}: with --tls-dir every connection is encrypted, so the "
            f"address must be tls://{rest}"
        )
        raise ValueError(msg)
    return ClusterOptions(
        kind=cluster,  # type: ignore[arg-type]
        workers=workers,
        processes=not threads,
        scheduler_address=scheduler,
        scheduler_file=scheduler_file,
        tls_dir=tls_dir,
        settings=settings,
    )
