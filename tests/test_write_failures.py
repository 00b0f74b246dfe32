"""Issue 7, item 4: a full disk or a failing store while publishing leaves the previous result.

Each test publishes ``r.zarr`` once (v0001), then breaks a write of the next ``farm refresh`` or
``farm run``: the zarr store of the new version runs out of space half-way (ENOSPC raised from
zarr's file writer after some files were written, the failing one half-written), the symlink swap
fails, a checkpoint write runs out of space half-way, or the checkpoint folder is not a folder
(on a real two-process LocalCluster). Every time the command exits 1 with a message that names
what failed and what to do, v0001 is still current and reads back bit for bit, and no temporary
file or folder is left.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr.storage._local
from click.testing import Result
from conftest import assert_bit_identical, farm_cli, two_config_project

from farm.lock import lock_path
from farm.publish import list_versions, open_published, versions_dir
from farm.runner import checkpoint_dir_for

EVENTS = 40_000
SHARD_ROWS = 16_384
UNIVERSES = "2"
NO_SPACE = "No space left on device"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store and two configurations over it that differ in the fake-data seed."""
    return two_config_project(tmp_path_factory.mktemp("write-failures"), EVENTS, SHARD_ROWS)


def farm(project: Path, command: str, config: str, out: Path, *extra: str) -> Result:
    args = [command, project / config, "--out", out, "--cluster", "inprocess", "-u", UNIVERSES]
    return farm_cli(*args, *extra)


@pytest.fixture
def out(project: Path, tmp_path: Path) -> Path:
    path = tmp_path / "results" / "r.zarr"
    result = farm(project, "run", "a.toml", path)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def published(out: Path) -> xr.Dataset:
    with open_published(out) as ds:
        return ds.load()


def one_line(result: Result) -> str:
    return " ".join(result.output.split())


def temporary_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]


def assert_previous_result_intact(out: Path, published: xr.Dataset) -> None:
    assert [(v.number, v.current) for v in list_versions(out)] == [(1, True)]
    with open_published(out) as ds:
        assert_bit_identical(ds.load(), published)
    assert temporary_files(out.parent) == []
    assert not lock_path(out).exists()


def _fail_after(writes: int, *, only: Callable[[Path], bool] = lambda _: True) -> Any:
    """A stand-in for zarr's file writer that runs out of space on write number ``writes + 1``,
    leaving that file half-written, as a full disk does."""
    put = zarr.storage._local._put
    count = {"n": 0}
    lock = threading.Lock()

    def failing_put(path: Path, value: Any, exclusive: bool = False) -> int:
        if only(path):
            with lock:
                count["n"] += 1
                fail = count["n"] > writes
            if fail:
                path.parent.mkdir(parents=True, exist_ok=True)
                raw = bytes(value.as_buffer_like())
                path.write_bytes(raw[: len(raw) // 2])
                raise OSError(errno.ENOSPC, NO_SPACE, str(path))
        return put(path, value, exclusive=exclusive)

    return failing_put, count


# --- the result store ------------------------------------------------------------------------


def test_a_full_disk_while_writing_the_new_version_leaves_the_previous_one_current(
    project: Path, out: Path, published: xr.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, count = _fail_after(40, only=lambda p: ".tmp-" in str(p))
    monkeypatch.setattr(zarr.storage._local, "_put", failing)
    result = farm(project, "refresh", "b.toml", out)
    monkeypatch.undo()

    assert count["n"] > 40  # it failed half-way through the new version's files
    assert result.exit_code == 1, one_line(result)
    message = one_line(result)
    assert f"{out}: writing the new version failed (OSError: [Errno 28] {NO_SPACE}" in message
    assert (
        "the current version is still v0001.zarr, unchanged, and no temporary files were left"
        in message
    )
    assert "Free space or fix the storage, then rerun" in message
    assert_previous_result_intact(out, published)


def test_the_refresh_after_space_is_freed_publishes_from_the_checkpoints(
    project: Path, out: Path, published: xr.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, _ = _fail_after(10, only=lambda p: ".tmp-" in str(p))
    monkeypatch.setattr(zarr.storage._local, "_put", failing)
    assert farm(project, "refresh", "b.toml", out).exit_code == 1
    monkeypatch.undo()

    result = farm(project, "refresh", "b.toml", out)

    assert result.exit_code == 0, one_line(result)
    assert "(v0002.zarr)" in one_line(result) and "from checkpoints" in one_line(result)
    assert [(v.number, v.current) for v in list_versions(out)] == [(1, False), (2, True)]
    with xr.open_zarr(versions_dir(out) / "v0001.zarr") as kept:
        assert_bit_identical(kept.load(), published)


def test_a_full_disk_on_the_first_publish_leaves_nothing_behind(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "first" / "r.zarr"
    failing, _ = _fail_after(5, only=lambda p: ".tmp-" in str(p))
    monkeypatch.setattr(zarr.storage._local, "_put", failing)
    result = farm(project, "run", "a.toml", out, "--no-checkpoints")
    monkeypatch.undo()

    assert result.exit_code == 1, one_line(result)
    assert "nothing was published, and no temporary files were left" in one_line(result)
    assert sorted(p.name for p in out.parent.iterdir()) == []


def test_a_failed_swap_of_the_link_leaves_the_previous_version_current(
    project: Path, out: Path, published: xr.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    symlink = os.symlink

    def failing_symlink(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if ".link-" in str(dst):
            raise OSError(errno.ENOSPC, NO_SPACE)
        symlink(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "symlink", failing_symlink)
    result = farm(project, "refresh", "b.toml", out)
    monkeypatch.undo()

    assert result.exit_code == 1, one_line(result)
    assert "making the new version current failed" in one_line(result)
    assert "the current version is still v0001.zarr, unchanged" in one_line(result)
    assert_previous_result_intact(out, published)


# --- checkpoints -------------------------------------------------------------------------------


def test_a_full_disk_while_saving_a_checkpoint_stops_the_run_and_leaves_no_partial_file(
    project: Path, out: Path, published: xr.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    savez = np.savez
    calls = {"n": 0}

    def failing_savez(file: Any, **arrays: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            file.write(b"PK\x03\x04 half a zip")
            raise OSError(errno.ENOSPC, NO_SPACE)
        savez(file, **arrays)

    checkpoints = checkpoint_dir_for(out)
    before = sorted(p.name for p in checkpoints.iterdir())
    monkeypatch.setattr(np, "savez", failing_savez)
    result = farm(project, "refresh", "b.toml", out, "-u", "3")  # new items to checkpoint
    monkeypatch.undo()

    assert result.exit_code == 1, one_line(result)
    message = one_line(result)
    assert f"{checkpoints}: cannot save the checkpoint of work item" in message
    assert f"(OSError: [Errno 28] {NO_SPACE}); free space or fix that folder" in message
    assert "or run with --no-checkpoints" in message
    after = sorted(p.name for p in checkpoints.iterdir())
    assert len(after) == len(before) + 3  # the three complete ones, and no partial file
    assert not [name for name in after if name.startswith(".")]
    assert_previous_result_intact(out, published)


def test_a_checkpoint_folder_that_cannot_be_written_stops_a_dask_run_naming_it(
    project: Path, out: Path, published: xr.Dataset
) -> None:
    """On a real LocalCluster of two worker processes: every item fails on its workers (and on
    its retries), the run stops with the workers' error, and the result is untouched."""
    import shutil

    checkpoints = checkpoint_dir_for(out)
    shutil.rmtree(checkpoints)
    checkpoints.write_text("not a folder")
    result = farm_cli("run", project / "b.toml", "--out", out, "--workers", "2", "-u", UNIVERSES)

    assert result.exit_code == 1, one_line(result)
    message = one_line(result)
    assert f"{checkpoints}: cannot save the checkpoint of work item" in message
    assert "(FileExistsError: [Errno 17] File exists" in message
    assert "it must be a writable directory), or run with --no-checkpoints" in message
    assert checkpoints.read_text() == "not a folder"
    assert_previous_result_intact(out, published)
