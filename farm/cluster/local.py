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
        # loopback only: an embedded cluster is nobody else's business
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0" if options.dashboard else None,
        "silence_logs": 40,
    }
    if security is not None:
        kwargs["security"] = security
        kwargs["protocol"] = "tls://"
    return LocalCluster(**kwargs)
