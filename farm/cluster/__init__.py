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

ClusterKind = Literal["local", "inprocess", "slurm", "kubernetes"]
CLUSTER_KINDS: tuple[str, ...] = ("local", "inprocess", "slurm", "kubernetes")


@dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    kind: ClusterKind = "local"
    workers: int | None = None
    """Number of workers (default: the machine's cores for local, 2 for batch systems)."""
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
        if self.kind == "local":
            return os.cpu_count() or 1
        return 2


def _security(options: ClusterOptions) -> Any:
    if options.tls_dir is None:
        return None
    from farm.cluster.security import security_from_dir

    return security_from_dir(options.tls_dir)


@contextlib.contextmanager
def connect(options: ClusterOptions) -> Iterator[Any]:
    """Yield a ``distributed.Client`` for the requested cluster; close what was started on exit."""
    from distributed import Client

    security = _security(options)
    if options.scheduler_address or options.scheduler_file:
        kwargs: dict[str, Any] = {"security": security} if security is not None else {}
        if options.scheduler_file:
            client = Client(scheduler_file=str(options.scheduler_file), **kwargs)
        else:
            client = Client(options.scheduler_address, **kwargs)
        with client:
            yield client
        return
    if options.kind == "local":
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
    with cluster, Client(cluster, security=security) as client:
        if options.kind != "local":
            client.wait_for_workers(options.n_workers, timeout=300)
        yield client
