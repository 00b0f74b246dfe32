"""Issue 11, item 7: ``farm`` killed (SIGKILL, SIGTERM) while it generates, runs, checkpoints and
publishes: nothing new is published, nothing old is lost, and nothing is left for long.

Each case starts the real command in a subprocess that stops at a named point
(tests/fault_points.py: in shard 1 of a store, in the third work item, half-way through the
third checkpoint, with the new version written but not yet renamed or linked) and kills it there.
After SIGTERM the command exits 143 saying so, having removed what it was writing and released
its lock. After SIGKILL its temporaries stay; the next run removes them, naming the killed pid,
takes over the lock, and publishes exactly what an uninterrupted run publishes.

The project is tests/conftest.py's two-configuration one (40 000 events in three shards); a
refresh from a.toml's ``-u 2`` result to b.toml's ``-u 3`` computes new work items.
"""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

import pytest
import xarray as xr
from conftest import assert_bit_identical, farm_cli, two_config_project
from fault_points import paused_farm

from farm.lock import lock_path
from farm.publish import list_versions, open_published
from farm.stale import temporaries_of
from farm.store import EventStore

pytestmark = pytest.mark.faults

EVENTS = 40_000
SHARD_ROWS = 16_384
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
TERMINATED = 128 + signal.SIGTERM


def _published(out: Path) -> xr.Dataset:
    with open_published(out) as ds:
        return ds.load()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, with ``r.zarr`` published once (v0001) from a.toml."""
    root = two_config_project(tmp_path_factory.mktemp("kills"), EVENTS, SHARD_ROWS)
    result = farm_cli(*run_a(root))
    assert result.exit_code == 0, result.output
    return root


def run_a(root: Path) -> list[object]:
    return ["run", root / "a.toml", "--out", root / "r.zarr", "--cluster", "inprocess", "-u", 2]


def refresh_b(root: Path) -> list[object]:
    return ["refresh", root / "b.toml", "--out", root / "r.zarr", "--cluster", "inprocess", "-u", 3]


@pytest.fixture(scope="module")
def uninterrupted(baseline: Path, tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    """What the refresh publishes when nothing kills it."""
    copy = tmp_path_factory.mktemp("uninterrupted") / "project"
    shutil.copytree(baseline, copy, symlinks=True)
    result = farm_cli(*refresh_b(copy))
    assert result.exit_code == 0, result.output
    return _published(copy / "r.zarr")


@pytest.fixture
def project(baseline: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(baseline, copy, symlinks=True)
    return copy


@pytest.mark.parametrize("name", list(SIGNALS))
@pytest.mark.parametrize("point", ["item", "checkpoint", "version"])
def test_a_refresh_killed_publishes_nothing_loses_nothing_and_the_next_one_cleans_up(
    project: Path, tmp_path: Path, uninterrupted: xr.Dataset, point: str, name: str
) -> None:
    out = project / "r.zarr"
    before = _published(out)
    paused = paused_farm(point, refresh_b(project), project, tmp_path)
    paused.wait()
    code = paused.stop(SIGNALS[name])

    # nothing new published, nothing old lost
    assert [(v.number, v.current) for v in list_versions(out)] == [(1, True)]
    assert_bit_identical(_published(out), before)
    left = temporaries_of(out)
    if name == "SIGTERM":
        assert code == TERMINATED, paused.output()
        assert "error: stopped by SIGTERM: the temporary files it was writing were removed" in (
            paused.output()
        )
        assert left == [] and not lock_path(out).exists()
    else:
        assert code == -signal.SIGKILL
        kinds = {"item": [], "checkpoint": ["checkpoint"], "version": ["version"]}[point]
        if point == "item":  # the calling thread may be saving an earlier item's checkpoint
            kinds = [t.kind for t in left if t.kind == "checkpoint"][:1]  # (farm.execute)
        assert sorted(t.kind for t in left) == kinds
        assert all(t.pid == paused.process.pid for t in left)

    result = farm_cli(*refresh_b(project))
    text = " ".join(result.output.split())
    assert result.exit_code == 0, text
    pid = paused.process.pid
    for t in left:  # each named, with the killed run that left it
        assert f"removed {t.path} ({t.what};" in text
        assert f"its writer, pid {pid} on this host, no longer runs" in text
    if name == "SIGKILL":
        assert f"taking over the stale lock of pid {pid} on host" in text
    assert temporaries_of(out) == []
    assert [(v.number, v.current) for v in list_versions(out)] == [(1, False), (2, True)]
    assert_bit_identical(_published(out), uninterrupted)


@pytest.mark.parametrize("name", list(SIGNALS))
@pytest.mark.parametrize("overwrite", [False, True], ids=["new store", "--overwrite"])
def test_a_generate_killed_leaves_no_store_or_the_old_one_and_the_next_one_cleans_up(
    project: Path, tmp_path: Path, name: str, overwrite: bool
) -> None:
    store = project / "store.zarr"  # the project's own copy: the configurations use the original
    out = store if overwrite else project / "fresh.zarr"
    before = (store / "zarr.json").read_bytes()
    args = ["generate", project / "a.toml", "--out", out, "--shard-size", SHARD_ROWS]
    args += ["--overwrite"] if overwrite else []
    paused = paused_farm("shard", args, project, tmp_path)
    paused.wait()
    code = paused.stop(SIGNALS[name])

    assert (store / "zarr.json").read_bytes() == before  # the old store is untouched
    assert all(check.ok for check in EventStore.open(store).verify())
    if not overwrite:
        assert not out.exists()
    left = temporaries_of(out)
    if name == "SIGTERM":
        assert code == TERMINATED, paused.output()
        assert "stopped by SIGTERM" in paused.output()
        assert left == []
    else:
        assert code == -signal.SIGKILL
        assert [t.kind for t in left] == ["store"] and left[0].pid == paused.process.pid
        assert (left[0].path / "zarr.json").is_file()  # shard 0 was written into it

    result = farm_cli(*args)
    text = " ".join(result.output.split())
    assert result.exit_code == 0, text
    if left:
        assert re.search(
            rf"removed {re.escape(str(left[0].path))} \(event store being written; \d+ file\(s\), "
            rf"[\d.]+ [kM]B\): its writer, pid {paused.process.pid} on this host, no longer runs",
            text,
        ), text
    assert temporaries_of(out) == []
    assert all(check.ok for check in EventStore.open(out).verify())
