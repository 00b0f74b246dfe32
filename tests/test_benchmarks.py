"""The benchmark suite runs (issue 6): every script at tiny sizes, so that none of them rots.

Nothing here is timed against a target — speed is measured by ``benchmarks/run_all.py`` at the
recorded sizes, and the figures live in BENCHMARKS.md. What is checked is that each benchmark
still runs end to end through the current code and prints its table, including the checks the
benchmarks make themselves (the factorised and per-event paths agree with exact weights, the dask
datasets are bit-identical to the in-process one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from run_all import FULL, SMALL  # noqa: E402


def test_the_small_suite_covers_every_benchmark_script_and_the_recorded_commands() -> None:
    scripts = {p.name for p in (ROOT / "benchmarks").glob("bench_*.py")}
    assert set(SMALL) == set(FULL) == scripts
    recorded = (ROOT / "BENCHMARKS.md").read_text()
    for script, arguments in FULL.items():
        assert f"python3 benchmarks/{script} {' '.join(arguments)}" in recorded, script


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALL))
def test_each_benchmark_runs_at_small_size_and_prints_its_table(
    script: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--small", "--only", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) >= 3, result.stdout  # a header, its rule, and at least one measured row
    assert f"({script}: exit 0," in result.stdout
