"""The embedded LocalCluster: one process per worker, one thread each, by default."""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["LOOPBACK_CONNECT_TIMEOUT", "local_cluster"]

LOOPBACK_CONNECT_TIMEOUT = "5s"
"""How long a local worker process keeps trying to connect to a peer or the scheduler.

dask's default (``distributed.comm.timeouts.connect``, 30 s) is made for networks: a worker that
was fetching a result from a peer when the peer died retries the refused connection for that
long before it asks for the result to be recomputed, and the whole run waits. On loopback a live
process accepts in milliseconds, so a lost worker costs at most this long.
"""


def local_cluster(options: Any, security: Any = None) -> Any:
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
    if options.processes:
        # merged into each worker process's dask config by its nanny
        kwargs["config"] = {"distributed.comm.timeouts.connect": LOOPBACK_CONNECT_TIMEOUT}
    if options.processes or security is not None:
        # loopback only: an embedded cluster is nobody else's business. (Thread workers talk
        # over inproc://, which listens on no network and takes no host: it fails with one.)
        kwargs["host"] = "127.0.0.1"
    if security is not None:
        kwargs["security"] = security
        kwargs["protocol"] = "tls://"
    return _cluster_class()(**kwargs)


@functools.cache
def _cluster_class() -> type:
    """The class, made once (distributed is imported only when a local cluster is wanted)."""
    from distributed import LocalCluster
    from distributed.deploy.spec import SpecCluster

    class FarmLocalCluster(LocalCluster):
        """A LocalCluster whose nannies go on restarting their workers however often one dies.

        When a worker leaves, a SpecCluster closes that worker's nanny unless a worker of the same
        *name* is registered ``distributed.deploy.lost-worker-timeout`` (15 s) later. The check
        goes by the name only: if the worker the nanny restarted is killed again (an OOM kill, a
        crash in a native library) just as the timer fires, the nanny is closed for good, with
        the process it is restarting, and the run goes on one worker short. That rule is there
        for nannies that may be gone with their host; an embedded cluster's nannies live in this
        process and always restart their worker, so the rule is skipped for worker processes.
        """

        def _update_worker_status(self, op: str, msg: Any) -> None:
            if self.processes:
                super(SpecCluster, self)._update_worker_status(op, msg)
            else:
                super()._update_worker_status(op, msg)

    return FarmLocalCluster
