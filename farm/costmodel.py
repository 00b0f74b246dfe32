"""What a plan costs on this machine: work-item seconds from measured rates, and where to run it.

A work item's time is its rows × the seconds per row of its chunk, plus a small fixed cost
(its checkpoint). The seconds per row are measured, not assumed: a calibration probe pushes the
plan's first block through each chunk's kernels exactly as a worker does
(:func:`workers.tasks.compute_item`), once to load them and then timed. A chunk's cost depends
on what it varies and how many universes it holds (a knob costs a fixed number of exact
evaluations per event, the bootstrap and weight sets one pass per universe), so the rates are
kept per (sample, systematic, kind, universes in the chunk), and cached per machine in the user
cache folder (``$XDG_CACHE_HOME/farm/rates.json``), under the farm version, the kernel version
(:data:`farm.plan.KERNEL_VERSION`) and the CPU model: the next plan of the same kind measures
nothing, and an upgrade or another machine measures again.

The fixed costs of a run are measured the same way, once per machine, in a fresh interpreter:
importing what a run needs with its kernels loaded from numba's cache (the driver), and what a
dask worker adds to the process dask starts (a worker's start-up). They decide where a run
without ``--cluster`` goes: in this process when the plan's work is shorter than what starting
the workers would cost (:func:`choose_cluster`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.usercache import farm_cache_dir

if TYPE_CHECKING:
    from farm.analysis.pipeline import Prepared
    from farm.plan import Plan

__all__ = [
    "Estimate",
    "Rates",
    "StartupCosts",
    "choose_cluster",
    "estimate",
    "machine_key",
    "measure_rates",
    "measure_startup",
]

ITEM_OVERHEAD_S = 0.005
"""Per work item beyond its rows: writing its checkpoint, opening its store (measured ≈ 3–5 ms)."""

FINISH_S = 0.6
FINISH_S_PER_UNIVERSE = 2e-4
"""Building and publishing the dataset: ≈ 0.7 s at 600 universes, 1.3 s at 3 500 (BENCHMARKS.md)."""

CLUSTER_START_S = 1.0
"""Starting a LocalCluster's scheduler and nannies, beyond the workers' own start-up."""

DEFAULT_STARTUP = {"driver_s": 2.0, "dask_s": 1.0, "worker_s": 1.5}
"""Before the first measurement on a machine (about this project's reference machine)."""

Log = Callable[[str], None]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What the cached rates are valid for: farm and kernel versions, CPU model, cores, Python."""
    import farm
    from farm.plan import KERNEL_VERSION

    return (
        f"farm {farm.__version__} | kernels {KERNEL_VERSION} | {_cpu_model()} | "
        f"{os.cpu_count()} cores | Python {platform.python_version()}"
    )


def cache_file() -> Path:
    """``$FARM_RATES_FILE``, else ``$XDG_CACHE_HOME/farm/rates.json`` (``~/.cache/farm``)."""
    if os.environ.get("FARM_RATES_FILE"):
        return Path(os.environ["FARM_RATES_FILE"])
    return farm_cache_dir() / "rates.json"


def _load_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    entry = data.get(machine_key()) if isinstance(data, dict) else None
    return entry if isinstance(entry, dict) else {}


def _save_cache(entry: dict[str, Any], *, replace: bool = False) -> None:
    """Merge ``entry`` into this machine's cached figures, keeping the shorter of an old and a
    new one unless ``replace`` (atomically; a failure costs a re-probe)."""
    path = cache_file()
    try:
        data = json.loads(path.read_text())
        data = data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        data = {}
    mine = data.get(machine_key()) if isinstance(data.get(machine_key()), dict) else {}
    for key, value in entry.items():
        old = mine.get(key) if isinstance(mine.get(key), dict) else {}
        keep = value if replace else {k: min(v, old.get(k, v)) for k, v in value.items()}
        mine[key] = {**old, **keep}
    data[machine_key()] = mine
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


# --- rates of work items -----------------------------------------------------------------------


def chunk_class(prep: Prepared, plan: Plan, chunk: int) -> str:
    """What decides a chunk's cost per row: the sample, the systematic and its kind, the width."""
    cfg = prep.cfg
    head = f"{cfg.sample.name}/{cfg.sample.generator}/{prep.spec.observable}"
    if chunk == 0:
        return f"{head}/flux"
    lo, hi = plan.chunks[chunk]
    owner = int(prep.universes.systematic_index[prep.spec.event_universes[lo]])
    name = prep.universes.names[owner]
    kind = prep.universes.kinds[owner]
    return f"{head}/{kind}:{name}/{hi - lo}"


@dataclass(frozen=True, kw_only=True)
class Rates:
    """Seconds per row of every chunk of a plan, and which were measured now."""

    per_row_s: tuple[float, ...]
    measured: int
    """Chunks probed by this call (0: every rate came from the cache)."""


def measure_rates(
    prep: Prepared, plan: Plan, *, use_cache: bool = True, log: Log | None = None
) -> Rates:
    """Seconds per row of each chunk of ``plan``, from the cache or timed on its first block
    (``use_cache=False``: timed again, and the cache's figures replaced).

    The probe runs the worker's own function on one block per chunk class not yet cached: a
    first pass loads the kernels (from numba's cache) and reads the block, the next two are timed
    (the second pass of the flux chunk finds the block's bins cached and may load the kernel of
    that path: the shorter of the two).
    """
    from farm.plan import WorkItem
    from workers.tasks import compute_item

    cached = _load_cache().get("rates", {}) if use_cache else {}
    classes = [chunk_class(prep, plan, c) for c in range(len(plan.chunks))]
    used = {item.chunk for item in plan.items}  # a plan's chunks without items cost nothing
    missing = sorted({classes[c] for c in used if classes[c] not in cached}, key=classes.index)
    found: dict[str, float] = {}
    if missing:
        rows = min(prep.block_rows, prep.n_events)
        if log is not None:
            log(f"measuring this machine's rates on one block: {len(missing)} chunk kind(s)")
        for chunk, key in enumerate(classes):
            if key not in missing or key in found:
                continue
            item = WorkItem(
                index=chunk,
                chunk=chunk,
                first_block=0,
                n_blocks=1,
                start=0,
                stop=rows,
                universes=plan.chunks[chunk],
                key=f"probe-{chunk}",
            )
            times = []
            for _ in range(3):  # the shorter of the last two: a pass may still load a kernel
                t0 = time.perf_counter()
                compute_item(str(prep.store_path), prep.spec, item, prep.block_rows, None)
                times.append(time.perf_counter() - t0)
            found[key] = min(times[1:]) / rows
        _save_cache({"rates": found}, replace=not use_cache)
    table = {**cached, **found}
    return Rates(per_row_s=tuple(float(table.get(k, 0.0)) for k in classes), measured=len(found))


# --- start-up ----------------------------------------------------------------------------------

_STARTUP_PROBE = """
import time
t0 = time.perf_counter()
import farm.runner
from workers.warmup import warm_up_kernels
warm_up_kernels()
t1 = time.perf_counter()
print("driver_s", t1 - t0)
"""

_WORKER_PROBE = """
import time
t0 = time.perf_counter()
import distributed
t1 = time.perf_counter()
import workers.tasks
from workers.warmup import warm_up_kernels
warm_up_kernels()
t2 = time.perf_counter()
print("dask_s", t1 - t0)
print("worker_s", t2 - t1)
"""


@dataclass(frozen=True, kw_only=True)
class StartupCosts:
    """A fresh process's fixed costs on this machine, in seconds (kernels loaded from cache)."""

    driver_s: float
    """``farm run``'s imports and kernels, before any work."""
    dask_s: float
    """Importing dask's distributed (a worker process, or a driver that starts a cluster)."""
    worker_s: float
    """What a dask worker adds to run a work item: the task module's imports and kernels."""
    measured: bool


def _probe(code: str) -> dict[str, float]:
    root = Path(__file__).resolve().parents[1]
    path = [str(root), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    pairs = (line.split() for line in done.stdout.splitlines() if line.strip())
    return {name: float(value) for name, value in pairs}


def measure_startup(*, use_cache: bool = True, measure: bool = True) -> StartupCosts:
    """The start-up costs from the cache, else measured in fresh interpreters.

    Each is the shortest of two processes (the first may compile the kernels; other processes
    on the machine only ever slow one down), and a later measurement replaces a cached figure
    only where it is shorter. ``use_cache=False`` measures again and replaces them all
    (``farm plan --calibrate``). With ``measure=False`` an unmeasured machine gets
    :data:`DEFAULT_STARTUP`.
    """
    cached = _load_cache().get("startup") if use_cache else None
    if isinstance(cached, dict) and set(DEFAULT_STARTUP) <= set(cached):
        return StartupCosts(**{k: float(cached[k]) for k in DEFAULT_STARTUP}, measured=True)
    if not measure:
        return StartupCosts(**DEFAULT_STARTUP, measured=False)
    try:
        passes = [_probe(_STARTUP_PROBE) | _probe(_WORKER_PROBE) for _ in range(2)]
    except (OSError, subprocess.SubprocessError, ValueError):
        return StartupCosts(**DEFAULT_STARTUP, measured=False)
    found = {k: min(p[k] for p in passes) for k in DEFAULT_STARTUP}
    _save_cache({"startup": found}, replace=not use_cache)
    return StartupCosts(**found, measured=True)


# --- estimates ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """A plan's cost on this machine (seconds)."""

    item_s: np.ndarray
    """Each work item's estimated time, in plan order."""
    finish_s: float
    startup: StartupCosts

    @property
    def work_s(self) -> float:
        """Core-seconds of the work items."""
        return float(self.item_s.sum())

    def inprocess_s(self) -> float:
        """Wall time of ``--cluster inprocess`` from the command's start."""
        return self.startup.driver_s + self.work_s + self.finish_s

    def cluster_start_s(self, workers: int, cores: int) -> float:
        """Extra wall time to start ``workers`` local worker processes on ``cores`` cores."""
        rounds = -(-workers // max(cores, 1))
        return (
            self.startup.dask_s
            + CLUSTER_START_S
            + rounds * (self.startup.dask_s + self.startup.worker_s)
        )

    def local_s(self, workers: int, cores: int | None = None) -> float:
        """Wall time of a LocalCluster of ``workers`` processes (work shared, longest item last)."""
        cores = (os.cpu_count() or 1) if cores is None else cores
        parallel = max(self.work_s / min(workers, cores), float(self.item_s.max(initial=0.0)))
        return (
            self.startup.driver_s + self.cluster_start_s(workers, cores) + parallel + self.finish_s
        )


def estimate(prep: Prepared, plan: Plan, rates: Rates, startup: StartupCosts) -> Estimate:
    """Every item's time (rows × its chunk's rate + :data:`ITEM_OVERHEAD_S`) and the run's."""
    rows = np.fromiter((item.stop - item.start for item in plan.items), np.float64, len(plan.items))
    chunk = np.fromiter((item.chunk for item in plan.items), np.int64, len(plan.items))
    per_row = np.asarray(rates.per_row_s, dtype=np.float64)
    item_s = rows * per_row[chunk] + ITEM_OVERHEAD_S
    finish = FINISH_S + FINISH_S_PER_UNIVERSE * prep.universes.n_universes
    return Estimate(item_s=item_s, finish_s=finish, startup=startup)


def choose_cluster(est: Estimate, workers: int, cores: int | None = None) -> tuple[str, str]:
    """``("inprocess" | "local", why)`` for a run that did not name its cluster.

    In this process when the work items would end sooner here than on ``workers`` local
    processes once their start-up is paid; the reason quotes both figures.
    """
    cores = (os.cpu_count() or 1) if cores is None else cores
    here = est.work_s
    there = est.local_s(workers, cores) - est.startup.driver_s - est.finish_s
    start = est.cluster_start_s(workers, cores)
    if here <= there:
        return "inprocess", (
            f"in-process: the plan's estimated {here:.1f} s of work is less than starting "
            f"{workers} worker(s) (≈ {start:.1f} s) and sharing it ({there:.1f} s in all); "
            "pass --cluster local to force a cluster"
        )
    return "local", (
        f"a local cluster of {workers} worker(s): the plan's estimated {here:.1f} s of work takes "
        f"≈ {there:.1f} s there, starting included; pass --cluster inprocess to run here"
    )
