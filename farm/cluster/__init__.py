"""Where the farm runs: an embedded LocalCluster, an existing scheduler, SLURM or Kubernetes.

:func:`connect` turns :class:`ClusterOptions` into a ``distributed.Client`` (and the cluster it
owns, closed on exit). Each backend lives in its own module; optional dependencies (dask-jobqueue,
dask-kubernetes) are imported only when that backend is asked for.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["CLUSTER_KINDS", "ClusterOptions", "connect"]

ClusterKind = Literal["auto", "local", "inprocess", "slurm", "kubernetes"]
CLUSTER_KINDS: tuple[str, ...] = ("local", "inprocess", "slurm", "kubernetes", "auto")
"""``auto`` (``farm run``'s default): in-process when the plan is too small for workers to pay
for their start-up, else ``local`` (:func:`farm.costmodel.choose_cluster`)."""


@dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    kind: ClusterKind = "local"
    workers: int | None = None
    """Number of workers (default: the machine's cores for local, 2 for batch systems); for
    ``inprocess``, the threads computing the work items (``farm.execute.inprocess_threads``)."""
    threads_per_worker: int = 1
    processes: bool = True
    """Local workers as processes (default) or threads in this process."""
    scheduler_address: str | None = None
    scheduler_file: Path | None = None
    tls_dir: Path | None = None
    """Directory holding ca.pem, cert.pem, key.pem (see ``farm cluster certs``); enables TLS."""
    settings: Path | None = None
    """Backend settings file: jobqueue YAML for SLURM, a cluster-spec YAML for Kubernetes."""
    overrides: dict[str, Any] = field(default_factory=dict)
    dashboard: bool = True

    @property
    def n_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        if self.kind in ("local", "auto"):
            return os.cpu_count() or 1
        return 2


def _security(options: ClusterOptions) -> Any:
    if options.tls_dir is None:
        return None
    from farm.cluster.security import security_from_dir

    return security_from_dir(options.tls_dir)


def _scheduler_address(options: ClusterOptions) -> tuple[str, str]:
    """(address, where it came from) of the scheduler to join."""
    if options.scheduler_file is None:
        return str(options.scheduler_address), "--scheduler"
    import json

    try:
        address = json.loads(Path(options.scheduler_file).read_text())["address"]
    except (OSError, ValueError, KeyError, TypeError):
        msg = (
            f"--scheduler-file {options.scheduler_file}: cannot read a scheduler address from "
            "it; give the file `dask scheduler --scheduler-file FILE` wrote"
        )
        raise ConnectionError(msg) from None
    return str(address), f"the address in --scheduler-file {options.scheduler_file}:"


@contextlib.contextmanager
def _joined(options: ClusterOptions, security: Any) -> Iterator[Any]:
    """A client of an existing scheduler; a failed connection says why (farm.cluster.probe)."""
    from distributed import Client

    from farm.cluster.probe import explain_connect_failure

    address, source = _scheduler_address(options)
    if address.startswith("tls://") and security is None:
        raise explain_connect_failure(address, ValueError(), tls_dir=None, source=source)
    # never the process's default client: a failed connection leaves a registered default
    # behind (distributed 2026.8), which would take every later dask computation and hang it
    kwargs: dict[str, Any] = {"set_as_default": False}
    if security is not None:
        kwargs["security"] = security
    try:
        client = Client(address, **kwargs)
    except (OSError, TimeoutError, TypeError, ValueError, RuntimeError) as err:
        raise explain_connect_failure(
            address, err, tls_dir=options.tls_dir, source=source
        ) from None
    with client:
        yield client


@contextlib.contextmanager
def connect(options: ClusterOptions) -> Iterator[Any]:
    """Yield a ``distributed.Client`` for the requested cluster; close what was started on exit."""
    from distributed import Client

    security = _security(options)
    if options.scheduler_address or options.scheduler_file:
        with _joined(options, security) as client:
            yield client
        return
    if options.kind in ("local", "auto"):  # auto is decided by the runner; anywhere else: local
        from farm.cluster.local import local_cluster

        cluster = local_cluster(options, security)
    elif options.kind == "slurm":
        from farm.cluster.slurm import slurm_cluster

        cluster = slurm_cluster(options, security)
    elif options.kind == "kubernetes":
        from farm.cluster.kubernetes import kubernetes_cluster

        cluster = kubernetes_cluster(options, security)
    else:
        msg = f"cluster kind {options.kind!r} has no dask client; choose one of {', '.join(CLUSTER_KINDS)}"
        raise ValueError(msg)
    with cluster, Client(cluster, security=security, set_as_default=False) as client:
        if options.kind not in ("local", "auto"):
            client.wait_for_workers(options.n_workers, timeout=300)
        yield client
