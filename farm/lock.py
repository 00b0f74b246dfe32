"""A lock on a published output: one ``farm run`` or ``farm refresh`` writes ``OUT`` at a time.

The lock is ``fcntl.flock`` on the file ``OUT.lock`` beside the output, which records who holds
it (pid, host, since when, the command). The kernel releases a flock when its holder exits, however
it exits, so a killed run never blocks the next one; a record left behind by such a run is
reported as stale and taken over. A second writer either refuses at once with a message naming
the holder, or polls until a deadline (``wait_s``).

On file systems without ``flock`` (some network mounts answer ENOLCK or EOPNOTSUPP) the lock
falls back to creating ``OUT.lock`` exclusively; a record of a process that no longer runs on
this host is then stale and removed.

Releasing unlinks ``OUT.lock`` while still holding it. A waiter that locked the unlinked file
notices (the path no longer names the inode it locked) and tries again on the new file.

The lock file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and an existing one opened with
``O_NOFOLLOW``: a symbolic link planted at ``OUT.lock`` is refused, never followed (its target
would be truncated and overwritten with the holder's record: CWE-59), and so is anything that
is not a plain file with one link (a hard link to another file, a FIFO, a folder).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["LockFileError", "LockHolder", "OutputLockedError", "lock_path", "output_lock"]

Log = Callable[[str], None]

_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
"""``flock`` errors that mean the file system does not support it (not that the lock is held)."""


@dataclass(frozen=True, kw_only=True)
class LockHolder:
    """Who holds (or last held) the lock of an output."""

    pid: int
    host: str
    since: float
    """Unix time at which the lock was taken."""
    command: str = ""

    @classmethod
    def me(cls) -> LockHolder:
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            since=time.time(),
            command=" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
        )

    def describe(self) -> str:
        when = datetime.datetime.fromtimestamp(self.since).astimezone()
        return f"pid {self.pid} on host {self.host} since {when.isoformat(timespec='seconds')}"

    def is_dead(self) -> bool:
        """True only when the holder ran on this host and its process is gone."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by another user
            return False
        return False


class OutputLockedError(RuntimeError):
    """Another process is publishing the same output."""

    def __init__(self, out: Path, holder: LockHolder | None, waited_s: float) -> None:
        self.out = out
        self.holder = holder
        self.waited_s = waited_s
        who = "another process" if holder is None else holder.describe()
        what = f" (`{holder.command}`)" if holder is not None and holder.command else ""
        waited = f" (waited {waited_s:.0f} s)" if waited_s > 0 else ""
        msg = (
            f"{out} is being published by {who}{what}{waited}; wait for it to finish and rerun, or "
            f"rerun with --wait SECONDS to queue behind it"
        )
        if holder is not None and holder.is_dead():
            msg += (
                f". Its recorded process {holder.pid} no longer runs, yet {lock_path(out)} is "
                "still locked: a process it started may hold it (`fuser -v` shows which); stop "
                "that process"
            )
        super().__init__(msg)


class LockFileError(OSError):
    """The lock file cannot be created or is not a plain file (a link, a FIFO, a folder)."""


_OPEN = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


def _refuse_link(path: Path, out: Path) -> LockFileError:
    try:
        target = f" (to {os.readlink(path)})"
    except OSError:
        target = ""
    msg = (
        f"{path}: the lock file of {out} is a symbolic link{target}; the farm never follows a "
        "link at its lock path, which would overwrite the link's target (CWE-59). Remove the "
        f"link (`rm {path}`), find out who made it, then rerun"
    )
    return LockFileError(msg)


def _open_lock_file(path: Path, out: Path) -> tuple[int, bool]:
    """(fd, whether this call created it) of the plain file ``path``, created exclusively if
    absent; never through a link."""
    from farm.oserrors import describe_os_error

    while True:
        created = False
        try:
            fd = os.open(path, _OPEN | os.O_CREAT | os.O_EXCL, 0o644)
            created = True
        except FileExistsError:
            try:
                fd = os.open(path, _OPEN)
            except FileNotFoundError:
                continue  # released between the two opens: create it
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise _refuse_link(path, out) from None
                if err.errno == errno.EISDIR:
                    raise _not_plain(path, out, "is not a plain file (a folder)") from None
                raise LockFileError(
                    describe_os_error(err, action=f"open the lock file of {out}")
                ) from None
        except OSError as err:
            if err.errno == errno.ELOOP:  # a dangling link: O_EXCL refuses it too
                raise _refuse_link(path, out) from None
            raise LockFileError(
                describe_os_error(err, action=f"create the lock file of {out}")
            ) from None
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            return fd, created
        os.close(fd)
        kind = "has other hard links" if stat.S_ISREG(info.st_mode) else "is not a plain file"
        raise _not_plain(path, out, kind)


def _not_plain(path: Path, out: Path, kind: str) -> LockFileError:
    msg = (
        f"{path}: the lock file of {out} {kind}; the farm only writes a lock file of its own, "
        f"never through another name. Remove it (`rm {path}`), then rerun"
    )
    return LockFileError(msg)


def lock_path(out: str | os.PathLike[str]) -> Path:
    """The lock file of an output: ``OUT.lock`` beside it."""
    out = Path(out)
    return out.with_name(f"{out.name}.lock")


def _read_holder(path: Path) -> LockHolder | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            text = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        record = json.loads(text)
        return LockHolder(
            pid=int(record["pid"]),
            host=str(record["host"]),
            since=float(record["since"]),
            command=str(record.get("command", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_holder(fd: int, holder: LockHolder) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
    os.fsync(fd)


def _try_flock(path: Path, out: Path) -> int | None:
    """An fd holding the flock of ``path``, or None if another process holds it."""
    while True:
        fd, created = _open_lock_file(path, out)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            if created:  # no flock here: the exclusive-file fallback must find no file
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # locked a file its holder unlinked on release: lock the new one


def _try_exclusive(path: Path, log: Log | None) -> int | None:
    """Fallback without flock: create ``path`` exclusively; remove it if its holder is dead."""
    while True:
        try:
            return os.open(path, _OPEN | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read_holder(path)
            if holder is None or not holder.is_dead():
                return None
            if log is not None:
                log(f"{path}: removing the stale lock of {holder.describe()} (no longer running)")
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _acquire(path: Path, out: Path, log: Log | None) -> tuple[int, bool] | None:
    """(fd, whether it is a flock) if the lock was free, else None."""
    try:
        fd = _try_flock(path, out)
    except OSError as err:
        if err.errno not in _NO_FLOCK:
            raise
        exclusive = _try_exclusive(path, log)
        return None if exclusive is None else (exclusive, False)
    return None if fd is None else (fd, True)


@contextlib.contextmanager
def output_lock(
    out: str | os.PathLike[str],
    *,
    wait_s: float = 0.0,
    poll_s: float = 0.2,
    log: Log | None = None,
) -> Iterator[LockHolder]:
    """Hold the publishing lock of ``out`` for the duration of the ``with`` block.

    Parameters
    ----------
    out
        The output (``--out``); the lock is ``OUT.lock`` beside it (its folder is created).
    wait_s
        How long to wait for another holder to finish: 0 refuses at once, ``inf`` waits forever.
    poll_s
        Interval between attempts while waiting.
    log
        Told when the lock is busy and about a stale lock taken over.

    Raises
    ------
    OutputLockedError
        The lock is still held when ``wait_s`` has passed; the message names the holder.
    """
    out = Path(out)
    path = lock_path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from farm.oserrors import describe_os_error

        action = f"create the folder of {out}"
        raise LockFileError(describe_os_error(err, path.parent, action=action)) from None
    start = time.monotonic()
    told = False
    while True:
        acquired = _acquire(path, out, log)
        if acquired is not None:
            break
        holder = _read_holder(path)
        waited = time.monotonic() - start
        if waited >= wait_s:
            raise OutputLockedError(out, holder, waited)
        if log is not None and not told:
            who = "another process" if holder is None else holder.describe()
            log(f"{out} is being published by {who}: waiting up to {wait_s:g} s")
            told = True
        time.sleep(min(poll_s, max(wait_s - waited, 0.0)))
    fd, _ = acquired
    try:
        previous = _read_holder(path)
        if previous is not None and log is not None:
            log(f"{path}: taking over the stale lock of {previous.describe()} (no longer running)")
        me = LockHolder.me()
        _write_holder(fd, me)
        yield me
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)
