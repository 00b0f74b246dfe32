"""Worker-side setup, registered by the driver on every worker it uses (local, SLURM, Kubernetes).

dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``. Setting that variable freezes
glibc's mmap threshold at 128 KiB, so every numpy temporary above it is mmap'ed and unmapped again,
page faults included: the reweighting kernels then ran 1.7× slower on a worker than in-process.
:func:`tune_malloc` raises both thresholds with ``mallopt`` so freed blocks are reused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from workers.warmup import warm_up_kernels

__all__ = ["MALLOC_THRESHOLD_BYTES", "FarmWorkerSetup", "tune_malloc", "warm_up_kernels"]

MALLOC_THRESHOLD_BYTES = 256 * 2**20
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc(threshold: int = MALLOC_THRESHOLD_BYTES) -> bool:
    """Keep freed memory below ``threshold`` in the heap for reuse (glibc only; else a no-op)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, threshold) == 1
    ok_trim = mallopt(_M_TRIM_THRESHOLD, threshold) == 1
    return ok_mmap and ok_trim


class FarmWorkerSetup(WorkerPlugin):
    """Runs once on every worker (and on workers that join later)."""

    name = "farm-worker-setup"

    def setup(self, worker: Any) -> None:
        del worker
        tune_malloc()
        warm_up_kernels()
