"""Temporary files and folders of killed runs: named after their writer, found, and removed.

Every temporary the farm writes is named ``.<base>.<kind>-<host>-<pid>-<random>``: ``host`` is a
short hash of the writer's host name and ``pid`` its process id. A store is written as
``.S.tmp-…`` beside ``S`` (and an overwritten store is renamed aside to ``.S.old-…``), a result
version as ``OUT.versions/.tmp-….zarr``, the link swap as ``.OUT.link-…``, a checkpoint as
``OUT.checkpoints/.KEY.tmp-….npz``. A run killed by SIGKILL (or a machine that went down) leaves
them behind; SIGTERM and Ctrl-C remove their own.

A temporary is **stale**, and removed by the next run or by ``farm clean``, only when

* its writer ran on this host and that process no longer runs (or the pid now belongs to a
  process started after the temporary was last written: the pid was reused); or
* it was written on another host, or by a farm that did not name its writer, and nothing in it
  was modified for ``max_age_s`` (default 24 h): a writer on another host cannot be asked.

A temporary whose writer still runs on this host is never touched, however old. An overwritten
store renamed aside whose replacement never arrived (the writer was killed between the two
renames) is renamed back, not deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import stat
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "Stale",
    "Temporary",
    "clean_stale",
    "find_stale",
    "host_tag",
    "temp_token",
    "temporaries_in",
    "temporaries_of",
]

DEFAULT_MAX_AGE_S = 24 * 3600.0
"""A temporary of another host (or of an unnamed writer) untouched this long is stale."""

Log = Callable[[str], None]

_TOKEN = r"(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{12}"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^\.(?P<base>.+)\.(?P<kind>tmp|old)-{_TOKEN}$"), "store"),
    (re.compile(rf"^\.tmp-{_TOKEN}\.zarr$"), "version"),
    (re.compile(rf"^\.(?P<base>.+)\.link-{_TOKEN}$"), "link"),
    (re.compile(rf"^\.(?P<base>.+)\.tmp-{_TOKEN}\.npz$"), "checkpoint"),
    # written before temporaries named their writer: only their age can tell
    (re.compile(r"^\.(?P<base>.+)\.(?P<kind>tmp|old)-[0-9a-f]{32}$"), "store"),
    (re.compile(r"^\.tmp-[0-9a-f]{12}\.zarr$"), "version"),
    (re.compile(r"^\.(?P<base>.+)\.link-[0-9a-f]{8}$"), "link"),
    (re.compile(r"^\.(?P<base>.+)\.[0-9a-f]{8}\.tmp\.npz$"), "checkpoint"),
)
_WHAT = {
    "store": "event store being written",
    "old": "event store being replaced",
    "version": "result version being published",
    "link": "link being swapped",
    "checkpoint": "checkpoint being saved",
}


def host_tag(host: str | None = None) -> str:
    """8 hex digits naming a host in temporary names (a hash: host names hold dashes)."""
    name = socket.gethostname() if host is None else host
    return hashlib.blake2b(name.encode(), digest_size=4).hexdigest()


def temp_token() -> str:
    """``<host>-<pid>-<random>``: the writer of a temporary, and what makes its name unique."""
    return f"{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True, kw_only=True)
class Temporary:
    """A farm temporary found on disk."""

    path: Path
    kind: str
    """store, old, version, link or checkpoint."""
    host: str | None
    """The writer's host tag, None for a temporary of an earlier farm."""
    pid: int | None
    base: str | None
    """The name it stands in for (a store's or output's), where the name tells it."""

    @property
    def what(self) -> str:
        return _WHAT[self.kind]


@dataclass(frozen=True, kw_only=True)
class Stale:
    """A stale temporary, why it is stale, its size, and what was done with it."""

    temporary: Temporary
    reason: str
    files: int
    bytes: int
    action: str
    """"removed", "restored" (an overwritten store renamed back), or "would remove"/"would
    restore" on a dry run; "failed: …" when it could not be removed."""

    def describe(self) -> str:
        t = self.temporary
        size = f"{self.files:,} file(s), {_format_bytes(self.bytes)}"
        return f"{self.action} {t.path} ({t.what}; {size}): {self.reason}"


def _parse(path: Path) -> Temporary | None:
    for pattern, kind in _PATTERNS:
        m = pattern.match(path.name)
        if m is None:
            continue
        groups = m.groupdict()
        if kind == "store" and groups.get("kind") == "old":
            kind = "old"
        pid = groups.get("pid")
        return Temporary(
            path=path,
            kind=kind,
            host=groups.get("host"),
            pid=None if pid is None else int(pid),
            base=groups.get("base"),
        )
    return None


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def temporaries_of(target: str | os.PathLike[str]) -> list[Temporary]:
    """The temporaries that belong to one store or result ``target`` (existing or not)."""
    target = Path(target)
    found = []
    for entry in _entries(target.parent):
        t = _parse(entry)
        if t is not None and t.base == target.name and t.kind in ("store", "old", "link"):
            found.append(t)
    for folder in (
        target.with_name(f"{target.name}.versions"),
        target.with_name(f"{target.name}.checkpoints"),
    ):
        if folder.is_dir() and not folder.is_symlink():
            found += [t for e in _entries(folder) if (t := _parse(e)) is not None]
    return found


def temporaries_in(folder: str | os.PathLike[str]) -> list[Temporary]:
    """Every farm temporary directly in ``folder``, and in its ``*.versions`` and
    ``*.checkpoints`` folders."""
    folder = Path(folder)
    found = []
    for entry in _entries(folder):
        t = _parse(entry)
        if t is not None:
            found.append(t)
        elif entry.name.endswith((".versions", ".checkpoints")) and entry.is_dir():
            if not entry.is_symlink():
                found += [t for e in _entries(entry) if (t := _parse(e)) is not None]
    return found


def _usage(path: Path) -> tuple[int, int, float]:
    """(files, bytes, newest mtime) of a file, link or folder tree; never follows links."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0, 0, 0.0
    if not stat.S_ISDIR(st.st_mode):
        return 1, st.st_size, st.st_mtime
    files, size, newest = 0, 0, st.st_mtime
    for root, dirs, names in os.walk(path):
        for name in (*dirs, *names):
            with contextlib.suppress(FileNotFoundError):
                s = os.lstat(os.path.join(root, name))
                newest = max(newest, s.st_mtime)
                if not stat.S_ISDIR(s.st_mode):
                    files += 1
                    size += s.st_size
    return files, size, newest


def _writer_runs(pid: int, since: float) -> bool:
    """Whether ``pid`` runs here and started before ``since`` (else the pid was reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # runs, as another user
    try:
        import psutil

        return psutil.Process(pid).create_time() <= since + 1.0
    except Exception:  # psutil absent, or the process ended meanwhile: trust the signal
        return True


def _why_stale(t: Temporary, max_age_s: float, now: float) -> str | None:
    if t.host is not None and t.host == host_tag() and t.pid is not None:
        try:
            since = t.path.lstat().st_mtime
        except FileNotFoundError:
            return None
        if _writer_runs(t.pid, since):
            return None  # a live writer's: never touched
        return f"its writer, pid {t.pid} on this host, no longer runs"
    _, _, newest = _usage(t.path)
    age = now - newest
    if age <= max_age_s:
        return None
    who = "on another host" if t.host is not None else "of an earlier farm, which did not record it"
    return (
        f"nothing in it changed for {age / 3600:.1f} h (more than {max_age_s / 3600:g} h), "
        f"and its writer runs {who}"
    )


def _restore_target(t: Temporary) -> Path | None:
    """The store an ``old`` temporary stands in for, if that store is missing."""
    if t.kind != "old" or t.base is None:
        return None
    target = t.path.with_name(t.base)
    return None if target.exists() or target.is_symlink() else target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def find_stale(
    temporaries: Iterable[Temporary], *, max_age_s: float = DEFAULT_MAX_AGE_S
) -> list[tuple[Temporary, str]]:
    """The stale ones among ``temporaries``, each with the reason."""
    now = time.time()
    return [(t, why) for t in temporaries if (why := _why_stale(t, max_age_s, now)) is not None]


def clean_stale(
    temporaries: Iterable[Temporary],
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    dry_run: bool = False,
    log: Log | None = None,
) -> list[Stale]:
    """Remove the stale ones among ``temporaries`` (or, on a dry run, say what would go)."""
    done = []
    for t, why in find_stale(temporaries, max_age_s=max_age_s):
        files, size, _ = _usage(t.path)
        target = _restore_target(t)
        verb = "restore" if target is not None else "remove"
        action = f"would {verb}" if dry_run else ("restored" if target else "removed")
        if not dry_run:
            try:
                if target is not None:
                    os.rename(t.path, target)
                else:
                    _remove(t.path)
            except FileNotFoundError:
                continue  # another cleaner was first
            except OSError as err:
                action = f"failed to {verb} ({err.strerror or err})"
        record = Stale(temporary=t, reason=why, files=files, bytes=size, action=action)
        if target is not None:
            record = Stale(
                temporary=t,
                reason=f"{why}; {target} was missing, so it is put back",
                files=files,
                bytes=size,
                action=action,
            )
        done.append(record)
        if log is not None:
            log(record.describe())
    return done


def _format_bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"
