"""Time to first result (issue 15 item 3, issue 16 items 3–4): start-up, quick runs, the planner.

    python3 benchmarks/bench_startup.py --events 1000000 --universes 85 --sizes 200000:20 1000000:85 4194304:200

Every figure is a fresh process of the working tree's ``farm`` (``python3 -c 'from farm.cli
import app; app()'``), one after the other, in one temporary folder with its own event stores,
numba cache and cost-model rates, so "cold" means what a first run on a machine pays and "warm"
what every later one does:

- ``farm --help``: cold-ish (bytecode recompiled into an empty ``PYTHONPYCACHEPREFIX``) and warm
  (best of 5);
- time to first result of ``farm run sns-csi --events E --universes U``: cold (no store, no
  compiled kernels), then warm (store and kernels there, a new --out) in-process, on the default
  cluster (the planner's choice), and on a 2-worker LocalCluster;
- the warm in-process run on its default threads, on one thread (``FARM_INPROCESS_THREADS=1``),
  without a bytecode cache for farm's modules (``PYTHONDONTWRITEBYTECODE=1``) and, with
  ``--baseline DIR``, on another tree, alternating round by round (best and median of
  ``--repeat`` rounds), so that a busy machine slows them all alike;
- a worker's start-up: importing dask's distributed, then what farm adds (the task module and its
  kernels from numba's cache);
- ``farm plan``'s estimate against the measured in-process run for each ``--sizes E:U``, and a
  synthetic plan of 10¹⁰ events × 10⁴ universes (wall time, work items, peak RSS).

Python's bytecode cache is on for every process but the variant without it, whatever the calling
shell sets: a tree's modules are compiled on its first run and read back after, as Python does by
default.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FARM = [sys.executable, "-c", "from farm.cli import app; app()"]


def _env(work: Path, **extra: str) -> dict[str, str]:
    # Python's default: a tree's modules are compiled once and their bytecode cached beside them,
    # whatever the calling shell says (some images set PYTHONDONTWRITEBYTECODE=1; the run without
    # a bytecode cache is a variant of its own in interleaved())
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **inherited,
        "PYTHONPATH": extra.pop("tree", str(ROOT)),
        "FARM_STORE_DIR": str(work / "stores"),
        "FARM_RATES_FILE": str(work / "rates.json"),
        "NUMBA_CACHE_DIR": str(work / "numba-cache"),
        "COLUMNS": "200",
        **extra,
    }


def _timed(args: list[str], work: Path, **extra: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(
        args, cwd=work, env=_env(work, **extra), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        msg = f"{' '.join(args[3:])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise RuntimeError(msg)
    return elapsed, done.stdout + done.stderr


def _run(
    work: Path, out: str, events: int, universes: int, *cluster: str, **env: str
) -> tuple[float, str]:
    args = [*FARM, "run", "sns-csi", "--out", out, "-n", str(events), "-u", str(universes)]
    return _timed([*args, *cluster], work, **env)


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def help_times(work: Path) -> list[tuple[str, float]]:
    cold, _ = _timed([*FARM, "--help"], work, PYTHONPYCACHEPREFIX=str(work / "pycache"))
    warm = min(_timed([*FARM, "--help"], work)[0] for _ in range(5))
    code = "import time; t = time.perf_counter(); import farm.cli; print(time.perf_counter() - t)"
    imports = min(float(_timed([sys.executable, "-c", code], work)[1]) for _ in range(5))
    return [
        ("`farm --help`, cold-ish (bytecode recompiled)", cold),
        ("`farm --help`, warm (best of 5)", warm),
        ("`import farm.cli` alone (best of 5)", imports),
    ]


def first_results(
    work: Path, events: int, universes: int, repeat: int, baseline: Path | None
) -> list[tuple[str, float, str]]:
    """Cold, then warm runs (best of ``repeat``, each to a new --out), and the rerun of one."""
    rows = []
    cold, _ = _run(work, "cold.zarr", events, universes, "--cluster", "inprocess")
    rows.append(("cold: no store, no compiled kernels (in-process)", cold, ""))
    # the first plan measures this machine's rates and start-up once (cached for every later run)
    calibrate, _ = _timed([*FARM, "plan", "sns-csi", "-n", str(events), "-u", str(universes)], work)
    rows.append(("first `farm plan`: measures the machine's rates once", calibrate, ""))
    for name, out, cluster in (
        ("warm, in-process", "warm-inprocess", ["--cluster", "inprocess"]),
        ("warm, default cluster (the planner's choice)", "warm-auto", []),
        ("warm, LocalCluster of 2 workers", "warm-local", ["--cluster", "local", "-w", "2"]),
    ):
        runs = [_run(work, f"{out}-{i}.zarr", events, universes, *cluster) for i in range(repeat)]
        elapsed = min(t for t, _ in runs)
        chosen = re.search(r"^(in-process|a local cluster)[^:]*", runs[0][1], re.MULTILINE)
        rows.append((f"{name} (best of {repeat})", elapsed, chosen.group(0) if chosen else ""))
    rerun, _ = _run(work, "warm-inprocess-0.zarr", events, universes, "--cluster", "inprocess")
    rows.append(("warm, in-process, rerun of the same --out (items from checkpoints)", rerun, ""))
    return rows


def interleaved(
    work: Path, events: int, universes: int, rounds: int, baseline: Path | None
) -> list[tuple[str, list[float]]]:
    """Warm in-process runs of this tree (default threads, then one thread) and of ``baseline``,
    alternating round by round, each to a new --out: (label, wall times)."""
    variants: list[tuple[str, dict[str, str]]] = [
        ("this tree, default threads", {}),
        ("this tree, one thread (`FARM_INPROCESS_THREADS=1`)", {"FARM_INPROCESS_THREADS": "1"}),
    ]
    # the same sources with no bytecode cache: each start compiles farm's modules again (Python
    # with PYTHONDONTWRITEBYTECODE=1 and no __pycache__ beside them, as in an editable install on
    # such an image)
    bare = work / "tree-without-bytecode"
    for part in ("farm", "workers", "examples"):
        shutil.copytree(ROOT / part, bare / part, ignore=shutil.ignore_patterns("__pycache__"))
    no_cache = {"tree": str(bare), "PYTHONDONTWRITEBYTECODE": "1"}
    variants.append(("this tree, no bytecode cache (`PYTHONDONTWRITEBYTECODE=1`)", no_cache))
    if baseline is not None:
        variants.append((f"{baseline.name} (its own default)", {"tree": str(baseline)}))
    for k, (_, env) in enumerate(variants[2:]):
        # their kernels compile once (numba keys its cache on the source file's path)
        _run(work, f"prime-{k}.zarr", events, universes, "--cluster", "inprocess", **env)
    times: dict[str, list[float]] = {label: [] for label, _ in variants}
    for i in range(rounds):
        for k, (label, env) in enumerate(variants):
            out = f"alt-{k}-{i}.zarr"
            times[label].append(
                _run(work, out, events, universes, "--cluster", "inprocess", **env)[0]
            )
    return list(times.items())


_WORKER = """
import time
t0 = time.perf_counter()
import distributed
t1 = time.perf_counter()
import workers.tasks
from workers.warmup import warm_up_kernels
warm_up_kernels()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def worker_startup(work: Path, repeat: int) -> list[tuple[float, float]]:
    """(distributed, farm's task module and kernels) for fresh processes; the first may compile."""
    found = []
    for _ in range(repeat):
        _, out = _timed([sys.executable, "-c", _WORKER], work, FARM_NUMBA_EXTENSIONS="0")
        dask_s, farm_s = (float(x) for x in out.split()[:2])
        found.append((dask_s, farm_s))
    return found


def plan_against_run(
    work: Path, sizes: list[tuple[int, int]]
) -> list[tuple[int, int, float, float]]:
    rows = []
    for events, universes in sizes:
        _run(work, f"prime-{events}.zarr", events, universes, "--cluster", "inprocess")  # the store
        _, log = _timed(
            [*FARM, "plan", "sns-csi", "-n", str(events), "-u", str(universes), "--json"], work
        )
        record = json.loads(log[log.index("{") : log.rindex("}") + 1])
        estimate = record["estimate"]["inprocess_seconds"]
        measured, _ = _run(work, f"size-{events}.zarr", events, universes, "--cluster", "inprocess")
        rows.append((events, universes, estimate, measured))
    return rows


_PEAK = (
    "import resource, sys\n"
    "from farm.cli import app\n"
    "try:\n"
    "    app(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n"
    "    print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def synthetic_plan(work: Path, events: float, universes: int) -> tuple[float, int, float]:
    """Wall time, work items and the driver's peak RSS (GiB) of a plan without its store."""
    elapsed, log = _timed(
        [sys.executable, "-c", _PEAK, "plan", "sns-csi", "-n", f"{events:g}", "-u",
         str(universes), "--synthetic", "--json"],
        work,
    )  # fmt: skip
    peak_kib = int(re.search(r"peak_kib (\d+)", log).group(1))  # type: ignore[union-attr]
    record = json.loads(log[log.index("{") : log.rindex("}") + 1])
    return elapsed, int(record["work_items"]), peak_kib / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--universes", type=int, default=85)
    parser.add_argument("--sizes", nargs="*", default=["200000:20", "1000000:85"])
    parser.add_argument("--synthetic-events", type=float, default=1e10)
    parser.add_argument("--synthetic-universes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another tree to time the warm in-process run on (`git archive HEAD | tar -x -C DIR`)",
    )
    args = parser.parse_args()
    sizes = [tuple(int(float(v)) for v in s.split(":")) for s in args.sizes]
    with tempfile.TemporaryDirectory(prefix="farm-bench-startup-") as tmp:
        work = Path(tmp)
        print(f"load average at start: {_load()} ({os.cpu_count()} cores)\n")
        print("| command | wall (s) |\n| --- | ---: |")
        for name, seconds in help_times(work):
            print(f"| {name} | {seconds:.2f} |")
        print(f"\n| time to first result: `farm run sns-csi -n {args.events} -u {args.universes}`"
              " | wall (s) | vs warm in-process | decision |\n| --- | ---: | ---: | --- |")  # fmt: skip
        rows = first_results(work, args.events, args.universes, args.repeat, args.baseline)
        warm = rows[2][1]
        for name, seconds, note in rows:
            print(f"| {name} | {seconds:.2f} | {seconds / warm:.2f} | {note} |")
        alternating = interleaved(work, args.events, args.universes, args.repeat, args.baseline)
        first = statistics.median(alternating[0][1])
        print(f"\n| warm in-process, alternating ({args.repeat} rounds, load {_load()}) | best (s) "
              "| median (s) | median / default threads' |\n| --- | ---: | ---: | ---: |")  # fmt: skip
        for label, times in alternating:
            median = statistics.median(times)
            print(f"| {label} | {min(times):.2f} | {median:.2f} | {median / first:.2f} |")
        print("\n| worker start-up (fresh process) | import distributed (s) | farm: task module + "
              "kernels (s) |\n| --- | ---: | ---: |")  # fmt: skip
        for i, (dask_s, farm_s) in enumerate(worker_startup(work, args.repeat)):
            print(f"| process {i + 1} | {dask_s:.2f} | {farm_s:.2f} |")
        print("\n| events | universes | `farm plan` estimate (s) | measured in-process (s) | "
              "measured / estimate |\n| ---: | ---: | ---: | ---: | ---: |")  # fmt: skip
        for events, universes, estimate, measured in plan_against_run(work, sizes):
            print(f"| {events:,} | {universes} | {estimate:.2f} | {measured:.2f} | "
                  f"{measured / estimate:.2f} |")  # fmt: skip
        elapsed, items, peak_gib = synthetic_plan(
            work, args.synthetic_events, args.synthetic_universes
        )
        print(
            "\n| synthetic plan | wall (s) | work items | peak RSS (GiB) |\n| --- | ---: | ---: | ---: |"
        )
        print(f"| {args.synthetic_events:.0e} events × {args.synthetic_universes} universes | "
              f"{elapsed:.1f} | {items:,} | {peak_gib:.2f} |")  # fmt: skip
        print(f"\nload average at end: {_load()}")


if __name__ == "__main__":
    main()
