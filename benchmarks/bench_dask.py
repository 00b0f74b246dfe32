"""Dask overhead and scaling: the same analysis in-process, on 1 worker and on 2 workers.

    python3 benchmarks/bench_dask.py --sample sns-csi --events 4194304 --universes 50

Each backend is timed ``--repeat`` times (best kept): one run's wall time moves by ±8 % here.

The event store is generated once (not timed). For each backend the compute stage is timed
(planning, work items, reduction, extraction; checkpoints off), with the LocalCluster already
started, so the figures compare like with like; cluster start-up is reported separately. The
datasets are checked bit-identical across backends.

The machine's own ceiling is measured too: the same in-process computation run by two processes
at once, against one alone (2 × alone / together), i.e. what two cores give to two copies of this
work with no dask at all.

With ``--cli``, the whole command a user types is timed as well (a fresh ``farm run`` process:
interpreter, imports, cluster start, kernels, work items, publishing; the store generated before,
checkpoints off) on 1 and on 2 LocalCluster workers, and its ceiling is two single-threaded
in-process ``farm run`` processes at once against one alone, in the same invocation.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from farm.analysis.pipeline import finish
from farm.cluster import ClusterOptions, connect
from farm.config import load_config
from farm.execute import execute_dask, execute_inprocess
from farm.runner import ensure_store, plan_for


def _inprocess_seconds(cfg, universes: int, ready=None) -> float:
    """Seconds of the in-process computation, timed after the store, plan and kernels are ready
    (and, with ``ready``, a barrier, so that two processes compute at the same time)."""
    from workers.setup import warm_up_kernels

    store = ensure_store(cfg, log=lambda m: None)
    prep, plan = plan_for(cfg, store, universes=universes)
    warm_up_kernels()
    if ready is not None:
        ready.wait()
    t0 = time.perf_counter()
    execute_inprocess(prep, plan, threads=1)  # one core: the ceiling of one worker's process
    return time.perf_counter() - t0


def _child(cfg, universes: int, ready, out) -> None:
    out.put(_inprocess_seconds(cfg, universes, ready))


def _two_at_once(cfg, universes: int) -> float:
    """Seconds the slower of two concurrent in-process computations takes."""
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_child, args=(cfg, universes, ready, out)) for _ in range(2)]
    for child in children:
        child.start()
    seconds = [out.get() for _ in children]
    for child in children:
        child.join()
    return max(seconds)


_ENVIRONMENT = dict(os.environ)
"""This process's environment before any dask nanny wrote its settings into it (see main)."""


def _farm_run(tmp: Path, args: argparse.Namespace, name: str, *cluster: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "farm", "-q", "run", args.sample, "--events", str(args.events)]
    if args.universes > 0:  # 0: the configuration's own throws, as `farm run SAMPLE -n N` does
        command += ["--universes", str(args.universes)]
    command += ["--no-checkpoints", *cluster]
    command += ["--out", str(tmp / f"{name}.zarr")]
    # the tree's own records of verified shards (farm.store.trust), not the user's: the first run
    # verifies every shard, the others trust them, as on a machine after its first run
    env = _ENVIRONMENT | {
        "FARM_STORE_DIR": str(tmp / "stores"),
        "FARM_VERIFIED_DIR": str(tmp / "ok"),
    }
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def _wall(processes: list[subprocess.Popen]) -> float:
    t0 = time.perf_counter()
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"farm run exited {process.returncode}: {process.args}")
    return time.perf_counter() - t0


def _cli_scaling(args: argparse.Namespace) -> None:
    """The whole `farm run` on 1 and 2 workers, and two in-process runs at once against one."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        inprocess = ("--cluster", "inprocess", "--workers", "1")
        _wall([_farm_run(tmp, args, "first", *inprocess)])  # generates the store, fills caches
        best: dict[str, float] = {}
        n = 0
        for _ in range(args.repeat):  # interleaved rounds: a busy moment hits every column
            for label, runs in (
                ("1 worker", [("local", "--workers", "1")]),
                ("2 workers", [("local", "--workers", "2")]),
                ("in-process alone", [inprocess]),
                ("two in-process at once", [inprocess, inprocess]),
            ):
                procs = []
                for flags in runs:
                    n += 1
                    cluster = ("--cluster", *flags) if flags[0] == "local" else flags
                    procs.append(_farm_run(tmp, args, f"r{n}", *cluster))
                best[label] = min(best.get(label, np.inf), _wall(procs))
        print("\n| whole `farm run` | wall (s), best of", args.repeat, "|")
        print("| --- | ---: |")
        for label, seconds in best.items():
            print(f"| {label} | {seconds:.2f} |")
        print(
            f"\nwhole CLI run, 1 -> 2 workers: {best['1 worker'] / best['2 workers']:.2f}x; "
            f"machine ceiling (two whole in-process runs at once): "
            f"{2 * best['in-process alone'] / best['two in-process at once']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="sns-csi")
    parser.add_argument("--events", type=int, default=4_194_304)
    parser.add_argument(
        "--universes",
        type=int,
        default=50,
        help="throws per systematic; 0 (with --cli-only): the configuration's own",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="time each backend this many times, keep the best"
    )
    parser.add_argument(
        "--cli", action="store_true", help="also time the whole `farm run` on 1 and 2 workers"
    )
    parser.add_argument(
        "--cli-only", action="store_true", help="time only the whole `farm run` (implies --cli)"
    )
    args = parser.parse_args()
    if args.universes <= 0 and not args.cli_only:
        parser.error("--universes 0 (the configuration's own) is for --cli-only")
    if args.cli or args.cli_only:  # first, in a clean environment (a nanny's settings would
        _cli_scaling(args)  # slow its processes)
    if args.cli_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            args.sample,
            **{"generation.events": args.events, "sample.store": str(Path(tmp) / "s.zarr")},
        )
        store = ensure_store(cfg, log=lambda m: None)
        prep, plan = plan_for(cfg, store, universes=args.universes)
        print(
            f"{args.sample}: {args.events:,} events, {prep.universes.n_universes} universes, "
            f"{len(plan.items)} work items of {plan.blocks_per_item} blocks\n"
        )
        from workers.setup import warm_up_kernels

        # the ceiling first: a dask nanny leaves MALLOC_TRIM_THRESHOLD_=65536 (and one-thread BLAS
        # settings) in this process's environment, which every process spawned later inherits
        alone = _inprocess_seconds(cfg, args.universes)
        together = _two_at_once(cfg, args.universes)
        warm_up_kernels()  # the numba kernels compile once per process, outside the timing
        t_inprocess = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            sums, _ = execute_inprocess(prep, plan, threads=1)
            reference = finish(prep, sums)
            t_inprocess = min(t_inprocess, time.perf_counter() - t0)
        rows = [("in-process (no dask)", t_inprocess, 0.0)]
        for workers in (1, 2):
            t0 = time.perf_counter()
            with connect(ClusterOptions(kind="local", workers=workers, dashboard=False)) as client:
                t_start = time.perf_counter() - t0
                from workers.setup import FarmWorkerSetup

                client.register_plugin(FarmWorkerSetup())  # as execute_dask does: compile first
                t_compute = np.inf
                for _ in range(args.repeat):
                    t1 = time.perf_counter()
                    sums, _ = execute_dask(prep, plan, client)
                    ds = client.submit(finish, prep, sums, pure=False).result()
                    t_compute = min(t_compute, time.perf_counter() - t1)
            same = all(
                np.array_equal(ds[k].values, reference[k].values) for k in reference.data_vars
            )
            assert same, "dask result differs from the in-process one"
            rows.append((f"LocalCluster, {workers} worker(s)", t_compute, t_start))
        print("| backend | compute stage (s) | cluster start (s) |")
        print("| --- | ---: | ---: |")
        for name, t, start in rows:
            print(f"| {name} | {t:.2f} | {start:.2f} |")
        one, two = rows[1][1], rows[2][1]
        print(
            f"\ndask overhead, 1 worker vs in-process: {100 * (one - t_inprocess) / one:.1f}% of the wall time"
        )
        print(f"speed-up from 1 to 2 workers: {one / two:.2f}×; all datasets bit-identical")
        print(
            f"machine ceiling: one in-process computation {alone:.2f} s alone, {together:.2f} s "
            f"with a second at once: {2 * alone / together:.2f}× for two"
        )


if __name__ == "__main__":
    main()
