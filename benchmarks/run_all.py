"""Run the whole benchmark suite with one command, as BENCHMARKS.md records it.

    python3 benchmarks/run_all.py            # the recorded sizes (about 10 minutes here)
    python3 benchmarks/run_all.py --small    # tiny sizes, seconds each: CI runs this so that no
                                             # benchmark rots (nothing is timed against a target)

Each benchmark runs in its own process, one after the other (never two at once: they would
share the cores they measure); their markdown tables are printed in order, and the exit status
is that of the first one that fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL: dict[str, list[str]] = {
    "bench_generate.py": ["--events", "4194304"],
    "bench_store_read.py": ["--events", "1e7"],
    "bench_reweight.py": ["--events", "10000000", "--universes", "1000"],
    "bench_knobs.py": ["--events", "10000000", "--universes", "200"],
    "bench_weights.py": ["--events", "1048576", "--universes", "1000"],
    "bench_dask.py": ["--events", "4194304", "--universes", "50"],
    "bench_e2e.py": [
        "--events", "10000000", "--flux", "1000", "--continuous", "200", "--bootstrap", "100",
        "--scale", "1", "10",
    ],
    "bench_fit.py": ["--events", "200000", "--toys", "4000", "--points", "21"],
    "bench_workitem.py": ["--events", "10000000", "--universes", "1000", "--rounds", "5"],
    "bench_chunks.py": ["--events", "10000000", "--repeat", "3"],
    "bench_startup.py": [
        "--events", "1000000", "--universes", "85", "--sizes", "200000:20", "1000000:85",
        "4194304:200",
    ],
}  # fmt: skip
SMALL: dict[str, list[str]] = {
    "bench_generate.py": ["--events", "70000"],
    "bench_store_read.py": ["--events", "2e5", "--repeat", "1"],
    "bench_reweight.py": ["--events", "100000", "--universes", "20"],
    "bench_knobs.py": ["--events", "70000", "--universes", "20"],
    "bench_weights.py": ["--events", "70000", "--universes", "20", "--repeat", "1"],
    "bench_dask.py": ["--events", "70000", "--universes", "4", "--repeat", "1", "--cli"],
    "bench_e2e.py": [
        "--events", "70000", "--flux", "8", "--continuous", "4", "--bootstrap", "2",
        "--scale", "1", "2",
    ],
    "bench_fit.py": ["--events", "70000", "--toys", "100", "--points", "5", "--block", "50"],
    "bench_workitem.py": [
        "--events", "70000", "--universes", "8", "--knob-universes", "4", "--replicas", "4",
        "--rounds", "1",
    ],
    "bench_chunks.py": ["--events", "70000", "--repeat", "1"],
    "bench_startup.py": [
        "--events", "70000", "--universes", "4", "--sizes", "70000:4", "--synthetic-events",
        "1e8", "--synthetic-universes", "100", "--repeat", "1",
    ],
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--only", nargs="*", default=None, help="run these scripts only")
    args = parser.parse_args(argv)
    suite = SMALL if args.small else FULL
    status = 0
    for script, arguments in suite.items():
        if args.only is not None and script not in args.only:
            continue
        command = [sys.executable, str(HERE / script), *arguments]
        print(f"\n### {' '.join(['python3', f'benchmarks/{script}', *arguments])}\n", flush=True)
        t0 = time.perf_counter()
        result = subprocess.run(command, check=False)
        print(
            f"\n({script}: exit {result.returncode}, {time.perf_counter() - t0:.0f} s)", flush=True
        )
        status = status or result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
