"""A ``farm`` command in a subprocess that stops at a named point, to be killed there.

:func:`paused_farm` starts ``farm ARGS`` (through ``farm.cli.main``, so with its SIGTERM
handling) after patching one function so that, when the command reaches the point, it writes a
marker file and sleeps. The test waits for the marker (:meth:`Paused.wait`), then sends the
signal: the kill lands at the same place every time.

Points (``FARM_FAULT_POINT``):

* ``shard``: in ``StoreWriter.write_shard`` of shard 1, after shard 0 was written (generate);
* ``item``: in the third work item computed in this process (run, between checkpoints);
* ``checkpoint``: in the third checkpoint save, half of the file written;
* ``version``: in publishing, the new version written under its temporary name, before it is
  renamed and linked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

POINTS = ("shard", "item", "checkpoint", "version")

_WRAPPER = r"""
import os, sys, time
from pathlib import Path

point, marker = os.environ["FARM_FAULT_POINT"], Path(os.environ["FARM_FAULT_MARKER"])


def pause():
    marker.write_text(str(os.getpid()))
    time.sleep(300)


if point == "shard":
    from farm.store.writer import StoreWriter

    write_shard = StoreWriter.write_shard

    def paused_write_shard(self, index, columns):
        if index == 1:
            pause()
        return write_shard(self, index, columns)

    StoreWriter.write_shard = paused_write_shard
elif point == "item":
    import farm.execute

    compute_item, calls = farm.execute.compute_item, [0]

    def paused_compute_item(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            pause()
        return compute_item(*args, **kwargs)

    farm.execute.compute_item = paused_compute_item
elif point == "checkpoint":
    import numpy as np

    savez, calls = np.savez, [0]

    def paused_savez(file, **arrays):
        calls[0] += 1
        if calls[0] == 3:
            file.write(b"PK\x03\x04 half a checkpoint")
            file.flush()
            pause()
        return savez(file, **arrays)

    np.savez = paused_savez
elif point == "version":
    import farm.publish

    write = farm.publish._write

    def paused_write(ds, target, groups=None):
        write(ds, target, groups)
        pause()  # written in full under its temporary name, not yet renamed or linked

    farm.publish._write = paused_write
sys.argv = ["farm", *sys.argv[1:]]
from farm.cli import main

main()
"""


@dataclass
class Paused:
    """The subprocess, and where its marker and output go."""

    process: subprocess.Popen[bytes]
    marker: Path
    log: Path

    def wait(self, timeout_s: float = 120.0) -> None:
        """Until the command reached its point (fails if it ended or took too long)."""
        deadline = time.monotonic() + timeout_s
        while not self.marker.exists():
            if self.process.poll() is not None:
                msg = (
                    f"farm ended (exit {self.process.returncode}) before its point: {self.output()}"
                )
                raise AssertionError(msg)
            if time.monotonic() > deadline:
                self.process.kill()
                msg = f"farm did not reach its point in {timeout_s} s: {self.output()}"
                raise AssertionError(msg)
            time.sleep(0.02)

    def stop(self, signum: int, timeout_s: float = 60.0) -> int:
        """Send ``signum`` (to the whole process group for SIGKILL); its exit status."""
        if signum == 9:
            os.killpg(self.process.pid, signum)
        else:
            os.kill(self.process.pid, signum)
        return self.process.wait(timeout=timeout_s)

    def output(self) -> str:
        return " ".join(self.log.read_text(errors="replace").split()) if self.log.exists() else ""


def paused_farm(point: str, args: list[object], cwd: Path, tmp: Path) -> Paused:
    """Start ``farm *args`` in ``cwd``, to stop at ``point`` (one of :data:`POINTS`)."""
    assert point in POINTS, point
    marker, log = tmp / f"reached-{point}", tmp / f"farm-{point}.log"
    env = {
        **os.environ,
        "FARM_FAULT_POINT": point,
        "FARM_FAULT_MARKER": str(marker),
        "COLUMNS": "200",
    }
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, *map(str, args)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Paused(process=process, marker=marker, log=log)
