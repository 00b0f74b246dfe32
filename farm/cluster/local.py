"""The embedded LocalCluster: one process per worker, one thread each, by default."""

from __future__ import annotations

from typing import Any

__all__ = ["local_cluster"]


def local_cluster(options: Any, security: Any = None) -> Any:
    from distributed import LocalCluster

    kwargs: dict[str, Any] = {
        "n_workers": options.n_workers,
        "threads_per_worker": options.threads_per_worker,
        "processes": options.processes,
        # the scheduler serves HTTP even without the dashboard, on port 8787 unless told otherwise
        # (a warning, and a clash, when two clusters run at once): always a free loopback port
        "dashboard_address": "127.0.0.1:0",
        "scheduler_kwargs": {"dashboard": options.dashboard},
        "silence_logs": 40,
    }
    if options.processes or security is not None:
        # loopback only: an embedded cluster is nobody else's business. (Thread workers talk
        # over inproc://, which listens on no network and takes no host: it fails with one.)
        kwargs["host"] = "127.0.0.1"
    if security is not None:
        kwargs["security"] = security
        kwargs["protocol"] = "tls://"
    return LocalCluster(**kwargs)
