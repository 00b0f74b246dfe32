"""Issue 7, item 3: one publisher per output at a time, and readers always see one whole version.

``farm run`` and ``farm refresh`` hold ``OUT.lock`` (``farm.lock``: fcntl.flock, recording pid,
host and time) from before they compute until they have published. A second one refuses at once
with a message naming the holder and exits 75, or with ``--wait`` queues behind it. The processes
here are real: ``farm refresh`` subprocesses against this test process and against each other.

The sample is an SNS CsI store of 100 000 events in four shards; ``-u 50`` makes a refresh hold
the lock for a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import xarray as xr
from click.testing import Result
from conftest import farm_cli, two_config_project

from farm.lock import OutputLockedError, lock_path, output_lock
from farm.publish import list_versions, open_published

EVENTS = 100_000
SHARD_ROWS = 32_768
UNIVERSES = "50"
BUSY = 75


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store, two configurations over it (they differ in the fake-data seed), and nothing else."""
    return two_config_project(tmp_path_factory.mktemp("concurrency"), EVENTS, SHARD_ROWS)


@pytest.fixture
def out(project: Path, tmp_path: Path) -> Path:
    """A result published once (v0001) from a.toml."""
    path = tmp_path / "r.zarr"
    result = farm(project, "run", "a.toml", path)
    assert result.exit_code == 0, result.output
    return path


def farm(project: Path, command: str, config: str, out: Path, *extra: str) -> Result:
    args = [command, project / config, "--out", out, "--cluster", "inprocess", "-u", UNIVERSES]
    return farm_cli(*args, *extra)


def farm_process(project: Path, command: str, config: str, out: Path) -> subprocess.Popen[str]:
    args = [command, str(project / config), "--out", str(out), "--cluster", "inprocess"]
    return subprocess.Popen(
        [sys.executable, "-c", "from farm.cli import main; main()", *args, "-u", UNIVERSES],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def holder_of(out: Path, timeout_s: float = 60.0) -> dict[str, object]:
    """The record in OUT.lock, once a process has written it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return json.loads(lock_path(out).read_text())
        except (FileNotFoundError, ValueError):
            time.sleep(0.01)
    msg = f"nobody took {lock_path(out)} in {timeout_s} s"
    raise AssertionError(msg)


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=120)
    return process.returncode, " ".join(output.split())


def one_line(result: Result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process (plain Python) that holds the lock of ``tmp_path/held.zarr`` until killed."""
    out = tmp_path / "held.zarr"
    code = (
        "import sys, time\n"
        "from farm.lock import output_lock\n"
        f"with output_lock({str(out)!r}):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    try:
        yield process, out
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


# --- two publishers ----------------------------------------------------------------------------


def test_a_refresh_refuses_while_another_process_publishes_the_same_output(
    project: Path, out: Path
) -> None:
    first = farm_process(project, "refresh", "b.toml", out)
    holder = holder_of(out)
    second = farm(project, "refresh", "b.toml", out)
    code, output = finished(first)

    assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
    assert second.exit_code == BUSY, one_line(second)
    message = one_line(second)
    assert (
        f"{out} is being published by pid {first.pid} on host {socket.gethostname()} since "
        in message
    )
    assert "wait for it to finish and rerun, or rerun with --wait SECONDS" in message
    assert code == 0, output
    assert "published" in output and "v0002" in output
    assert [v.number for v in list_versions(out)] == [1, 2]
    assert not lock_path(out).exists()


def test_a_refresh_with_wait_queues_behind_the_running_one_and_finds_its_result(
    project: Path, out: Path
) -> None:
    first = farm_process(project, "refresh", "b.toml", out)
    holder_of(out)
    second = farm(project, "refresh", "b.toml", out, "--wait", "120")
    code, output = finished(first)

    assert code == 0, output
    assert second.exit_code == 0, one_line(second)
    message = one_line(second)
    assert f"is being published by pid {first.pid}" in message and "waiting up to 120 s" in message
    assert "is up to date: recomputed 0 of" in message  # every item from the first's checkpoints
    assert [v.number for v in list_versions(out)] == [1, 2]
    with open_published(out) as ds:
        assert ds.attrs["data"] == xr.open_zarr(list_versions(out)[1].path).attrs["data"]
        assert '"seed":99' in ds.attrs["data"]


def test_a_refresh_that_waits_too_long_gives_up_naming_the_holder(
    lock_holder: tuple[subprocess.Popen[str], Path], project: Path
) -> None:
    process, out = lock_holder
    start = time.monotonic()
    result = farm(project, "run", "a.toml", out, "--wait", "1.5")
    waited = time.monotonic() - start

    assert result.exit_code == BUSY, one_line(result)
    assert f"is being published by pid {process.pid} on host" in one_line(result)
    assert re.search(r"\(waited \d s\); wait for it to finish", one_line(result))
    assert 1.5 <= waited < 10
    assert not out.exists() and not list_versions(out)


# --- readers -----------------------------------------------------------------------------------


def test_a_reader_during_a_refresh_sees_the_old_or_the_new_version_complete(
    project: Path, out: Path
) -> None:
    with open_published(out) as ds:
        old = ds.load()
    seen: list[xr.Dataset] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with open_published(out) as ds:
                seen.append(ds[["xsec_real", "data_counts", "cov_real"]].load())

    refresh = farm_process(project, "refresh", "b.toml", out)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        code, output = finished(refresh)
    finally:
        stop.set()
        reader.join()
    assert code == 0, output
    with open_published(out) as ds:
        new = ds.load()

    assert not new.data_counts.equals(old.data_counts)  # the refresh changed the result
    assert len(seen) >= 5
    for ds in seen:
        reference = old if ds.data_counts.equals(old.data_counts) else new
        for name in ("xsec_real", "data_counts", "cov_real"):
            assert ds[name].equals(reference[name]), name


# --- the lock itself ---------------------------------------------------------------------------


def test_the_lock_of_a_killed_process_is_taken_over_and_reported_stale(
    lock_holder: tuple[subprocess.Popen[str], Path], project: Path
) -> None:
    process, out = lock_holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads(lock_path(out).read_text())["pid"] == process.pid  # left behind

    result = farm(project, "run", "a.toml", out)

    assert result.exit_code == 0, one_line(result)
    assert f"taking over the stale lock of pid {process.pid} on host" in one_line(result)
    assert [v.number for v in list_versions(out)] == [1]
    assert not lock_path(out).exists()


def test_without_flock_a_lock_file_of_a_dead_process_on_this_host_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some network file systems refuse flock (ENOLCK): the lock is then an exclusive file."""
    import errno
    import fcntl

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "r.zarr"
    record = {"pid": dead.pid, "host": socket.gethostname(), "since": time.time(), "command": "x"}
    lock_path(out).write_text(json.dumps(record))
    messages: list[str] = []

    with output_lock(out, log=messages.append) as me:
        assert me.pid == os.getpid()
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
        with pytest.raises(OutputLockedError, match=f"is being published by pid {os.getpid()}"):
            with output_lock(out):
                pass
    [message] = messages
    assert message.startswith(
        f"{lock_path(out)}: removing the stale lock of pid {dead.pid} on host {socket.gethostname()} since "
    )
    assert message.endswith("(no longer running)")
    assert not lock_path(out).exists()


def test_without_flock_a_lock_file_of_a_live_process_is_respected(
    lock_holder: tuple[subprocess.Popen[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import fcntl

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    process, out = lock_holder
    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.raises(OutputLockedError, match=f"by pid {process.pid} on host"):
        with output_lock(out, wait_s=0.3, poll_s=0.05):
            pass
    assert json.loads(lock_path(out).read_text())["pid"] == process.pid
