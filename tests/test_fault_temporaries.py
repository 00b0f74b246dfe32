"""Issue 11, item 4: temporaries of killed runs are found and removed, and only those.

A SIGKILLed ``farm generate`` left ``.S.zarr.tmp-…`` (266 MB, or 207 491 files with
``--shard-size 1``) that nothing ever removed. Every temporary is now named after its writer
(``<host>-<pid>``, :mod:`farm.stale`). Each case here makes one temporary of each kind (a store
being written, a store renamed aside, a result version, a link swap, a checkpoint), written by a
process that is gone, by this live process, by another host, or by a farm that did not name its
writer, recently or two days ago, and runs ``farm clean`` (and its ``--dry-run``), ``farm run``
and ``farm generate``: a stale one is removed and named with the reason, a live writer's never.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import test_bad_input
from conftest import farm_cli
from test_bad_input import Case

from farm.stale import host_tag

pytestmark = pytest.mark.faults

# the working directory of tests/test_bad_input.py (a published result, the store)
inputs = test_bad_input.inputs
case = test_bad_input.case

TWO_DAYS_S = 2 * 24 * 3600.0


def dead_pid() -> int:
    """The pid of a process that has ended (on this host)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def token(owner: str) -> str:
    rand = uuid.uuid4().hex[:12]
    if owner == "dead":
        return f"{host_tag()}-{dead_pid()}-{rand}"
    if owner == "live":
        return f"{host_tag()}-{os.getpid()}-{rand}"
    return f"{host_tag('node42.elsewhere')}-{os.getpid()}-{rand}"  # another host


def legacy(kind: str) -> str:
    """A name of a temporary written before temporaries named their writer."""
    return {
        "store": f".s.zarr.tmp-{uuid.uuid4().hex}",
        "old": f".s.zarr.old-{uuid.uuid4().hex}",
        "version": f".tmp-{uuid.uuid4().hex[:12]}.zarr",
        "link": f".r.zarr.link-{uuid.uuid4().hex[:8]}",
        "checkpoint": f".{uuid.uuid4().hex}.{uuid.uuid4().hex[:8]}.tmp.npz",
    }[kind]


def make(root: Path, kind: str, owner: str) -> Path:
    """One temporary of ``kind`` under ``root`` (a folder with ``s.zarr`` and ``r.zarr``)."""
    name = {
        "store": lambda t: f".s.zarr.tmp-{t}",
        "old": lambda t: f".s.zarr.old-{t}",
        "version": lambda t: f".tmp-{t}.zarr",
        "link": lambda t: f".r.zarr.link-{t}",
        "checkpoint": lambda t: f".{uuid.uuid4().hex}.tmp-{t}.npz",
    }[kind]
    base = legacy(kind) if owner == "legacy" else name(token(owner))
    folder = {"version": "r.zarr.versions", "checkpoint": "r.zarr.checkpoints"}.get(kind, "")
    path = root / folder / base
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind in ("store", "old", "version"):
        (path / "w_nominal" / "c").mkdir(parents=True)
        (path / "zarr.json").write_text("{}")
        (path / "w_nominal" / "c" / "0").write_bytes(b"\0" * 4096)
    elif kind == "link":
        os.symlink("r.zarr.versions/v0001.zarr", path)
    else:
        path.write_bytes(b"PK\x03\x04 half a checkpoint")
    return path


def age(path: Path, seconds: float) -> None:
    """Make every entry of ``path`` last modified ``seconds`` ago."""
    when = time.time() - seconds
    entries = [path] if path.is_symlink() or not path.is_dir() else [path, *path.rglob("*")]
    for entry in entries:
        os.utime(entry, (when, when), follow_symlinks=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "s.zarr").mkdir()
    (tmp_path / "r.zarr.versions" / "v0001.zarr").mkdir(parents=True)
    os.symlink("r.zarr.versions/v0001.zarr", tmp_path / "r.zarr")
    return tmp_path


KINDS = ("store", "old", "version", "link", "checkpoint")
OWNERS = {
    # owner, age: whether it is stale, and the reason given
    ("dead", 0.0): r"its writer, pid \d+ on this host, no longer runs",
    ("live", 0.0): None,
    ("live", TWO_DAYS_S): r"its writer, pid \d+ on this host, no longer runs",  # pid reused
    ("other host", 0.0): None,
    ("other host", TWO_DAYS_S): r"nothing in it changed for 48.0 h \(more than 24 h\), and its "
    r"writer runs on another host",
    ("legacy", 0.0): None,
    ("legacy", TWO_DAYS_S): r"nothing in it changed for 48.0 h .*of an earlier farm",
}


@pytest.mark.parametrize(("owner", "seconds"), list(OWNERS), ids=lambda v: str(v))
@pytest.mark.parametrize("kind", KINDS)
def test_farm_clean_removes_a_temporary_exactly_when_it_is_stale(
    root: Path, kind: str, owner: str, seconds: float
) -> None:
    path = make(root, kind, owner)
    age(path, seconds)
    reason = OWNERS[owner, seconds]

    listed = farm_cli("clean", root, "--dry-run")
    assert listed.exit_code == 0, listed.output
    assert os.path.lexists(path)  # a dry run removes nothing
    cleaned = farm_cli("clean", root)
    assert cleaned.exit_code == 0, cleaned.output
    text = " ".join(cleaned.output.split())
    if reason is None:
        assert os.path.lexists(path), text
        assert "nothing stale to remove" in text and "kept 1 temporary(ies) still in use" in text
        return
    verb = "restore" if kind == "old" else "remove"  # s.zarr is there: an old one is removed
    assert f"would {verb}" not in text
    assert f"would remove {path.relative_to(root.parent)}" in " ".join(listed.output.split()) or (
        f"would remove {path}" in " ".join(listed.output.split())
    )
    assert re.search(rf"removed {re.escape(str(path))} \(.*\): {reason}", text), text
    assert not os.path.lexists(path)
    assert (root / "s.zarr").is_dir() and os.readlink(root / "r.zarr")  # the rest is untouched


def test_a_store_renamed_aside_whose_replacement_never_came_is_put_back(root: Path) -> None:
    """A ``farm generate --overwrite`` killed between its two renames."""
    (root / "s.zarr").rmdir()
    old = make(root, "old", "dead")
    result = farm_cli("clean", root)
    assert result.exit_code == 0, result.output
    assert "restored" in result.output and "was missing, so it is put back" in " ".join(
        result.output.split()
    )
    assert (root / "s.zarr" / "zarr.json").is_file() and not old.exists()


def test_a_live_writer_s_temporary_is_kept_whatever_the_bound(root: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        live = root / f".s.zarr.tmp-{host_tag()}-{writer.pid}-{uuid.uuid4().hex[:12]}"
        live.mkdir()
        foreign = make(root, "store", "other host")
        age(live, 0.2)
        age(foreign, 0.2)
        result = farm_cli("clean", root, "--older-than", "0.00001")  # 36 ms
        assert result.exit_code == 0, result.output
        assert live.is_dir() and not foreign.exists()
    finally:
        writer.kill()
        writer.wait()


def test_older_than_must_be_positive(root: Path) -> None:
    result = farm_cli("clean", root, "--older-than", "0")
    assert result.exit_code == 2
    assert "--older-than must be a positive number of hours" in result.output


# --- the next run removes what killed runs left ------------------------------------------------


def test_farm_run_removes_the_stale_temporaries_of_its_output_and_keeps_live_ones(
    case: Case,
) -> None:
    out = case.out
    results = out.parent
    stale = [
        results / "r.zarr.versions" / f".tmp-{token('dead')}.zarr",
        results / f".r.zarr.link-{token('dead')}",
        results / "r.zarr.checkpoints" / f".{uuid.uuid4().hex}.tmp-{token('dead')}.npz",
    ]
    live = results / "r.zarr.versions" / f".tmp-{token('live')}.zarr"
    for path in [*stale, live]:
        path.parent.mkdir(exist_ok=True)
        if path.name.endswith(".zarr"):
            path.mkdir()
        elif ".link-" in path.name:
            os.symlink("r.zarr.versions/v0001.zarr", path)
        else:
            path.write_bytes(b"PK")
    result = case.run()
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for path in stale:
        assert f"removed {path}" in text and "no longer runs" in text
        assert not os.path.lexists(path)
    assert live.is_dir()  # its writer (this process) runs


def test_farm_generate_removes_what_a_killed_generate_left(case: Case) -> None:
    out = case.root / "fresh.zarr"
    left = case.root / f".fresh.zarr.tmp-{token('dead')}"
    (left / "w_nominal" / "c").mkdir(parents=True)
    (left / "w_nominal" / "c" / "0").write_bytes(b"\0" * 100_000)
    result = farm_cli("generate", case.config, "--out", out, "--shard-size", 16_384)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"removed {left} (event store being written; 1 file(s), 100 kB)" in text
    assert not left.exists() and (out / "zarr.json").is_file()
