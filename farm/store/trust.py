"""Shards verified once on a machine, trusted after while their files are unchanged.

Verifying a shard (docs/internals.md §2) reads all its columns and recomputes their checksum:
at ≈ 1 GB/s it cost a 1.6e7-event run 2.3 s in every worker process, more than a third of the
work items themselves. After a shard's checksum matched (and, with value checks, its values
passed), :func:`record` writes what its files were then: for each column's file its inode, size,
modification time and status-change time (``st_ctime_ns``, which no program can set back: any
write, truncation, rename-over or ``touch`` moves it). A later process on the same store trusts
the shard when :func:`is_trusted` finds every file exactly as recorded, and verifies it again
otherwise. A byte flipped in place, a file replaced or restored from a copy, all change a file's
status-change time; only damage below the file system (a failing disk under an unchanged inode)
goes unseen until ``farm inspect --verify``, which always recomputes.

A record is written only for files that had not changed for :data:`SETTLE_NS` when the
verification started ("racily clean" files, as git calls them): a file written again within the
file system's timestamp granularity of its verification could keep its times, so such a shard is
simply verified again next time.

The records are one small JSON file per shard in ``$FARM_VERIFIED_DIR``, else
``$XDG_CACHE_HOME/farm/verified`` (``~/.cache/farm/verified``), written atomically; a store on a
read-only file system is recorded there too. ``FARM_VERIFIED_DIR=off`` turns them off: every
process then verifies each shard on its first read. A record that cannot be written (a read-only
home folder) is skipped: the next process verifies again, nothing else changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from farm.usercache import farm_cache_dir

__all__ = [
    "SETTLE_NS",
    "VERIFIED_DIR_ENV",
    "FileStamp",
    "forget",
    "is_trusted",
    "prune",
    "record",
    "stamp",
]

VERIFIED_DIR_ENV = "FARM_VERIFIED_DIR"
"""The environment variable naming the folder of verification records (``off``: none)."""

SETTLE_NS = 2_000_000_000
"""A file changed less than this before its verification started is not recorded as verified
(2 s: twice the coarsest timestamps of the file systems farm runs on)."""

FileStamp = tuple[int, int, int, int]
"""(inode, size in bytes, modification time, status-change time), times in ns."""

_FORMAT = 1


def stamp(path: Path) -> FileStamp:
    """What a shard file is now: ``os.stat`` reduced to what any change of its bytes moves."""
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def records_dir() -> Path | None:
    """``$FARM_VERIFIED_DIR``, else ``$XDG_CACHE_HOME/farm/verified``; ``None`` when set to ``off``."""
    configured = os.environ.get(VERIFIED_DIR_ENV, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured).expanduser()
    return farm_cache_dir() / "verified"


def _record_path(folder: Path, store: Path, shard: int, checksum: str) -> Path:
    key = f"{os.path.realpath(store)}\0{shard}\0{checksum}"
    return folder / f"{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}.json"


def is_trusted(
    store: Path, shard: int, checksum: str, stamps: Sequence[FileStamp], *, values_checked: bool
) -> bool:
    """Whether shard ``shard`` of ``store``, recorded with ``checksum``, was verified on this
    machine with its files exactly as ``stamps`` says they are now (and its values checked, when
    ``values_checked`` is asked for)."""
    folder = records_dir()
    if folder is None:
        return False
    try:
        entry = json.loads(_record_path(folder, store, shard, checksum).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(entry, dict) or entry.get("format") != _FORMAT:
        return False
    if values_checked and entry.get("values_checked") is not True:
        return False
    recorded = entry.get("files")
    return isinstance(recorded, list) and [tuple(s) for s in recorded] == [tuple(s) for s in stamps]


def record(
    store: Path,
    shard: int,
    checksum: str,
    stamps: Sequence[FileStamp],
    *,
    started_ns: int,
    values_checked: bool,
) -> bool:
    """Record that shard ``shard`` (files as ``stamps``) matched ``checksum`` in a verification
    that started at ``started_ns`` (``time.time_ns()``). Returns whether a record was written:
    not for files changed within :data:`SETTLE_NS` of ``started_ns``, nor when records are off or
    their folder cannot be written."""
    folder = records_dir()
    if folder is None or any(max(s[2], s[3]) > started_ns - SETTLE_NS for s in stamps):
        return False
    entry = {
        "format": _FORMAT,
        "store": os.path.realpath(store),
        "shard": shard,
        "checksum": checksum,
        "values_checked": values_checked,
        "files": [list(s) for s in stamps],
    }
    target = _record_path(folder, store, shard, checksum)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(entry, out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True


def forget(store: Path, shard: int, checksum: str) -> None:
    """Remove the record of a shard that failed its verification (nothing if there is none)."""
    folder = records_dir()
    if folder is not None:
        try:
            _record_path(folder, store, shard, checksum).unlink(missing_ok=True)
        except OSError:
            pass


def prune() -> int:
    """Remove the records of stores that are gone (``farm stores clean`` calls it); returns how
    many. A record that cannot be read is removed too: it would never be trusted."""
    folder = records_dir()
    if folder is None or not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.glob("*.json"):
        try:
            store = json.loads(entry.read_text()).get("store")
        except (OSError, ValueError, AttributeError):
            store = None
        if isinstance(store, str) and Path(store).is_dir():
            continue
        try:
            entry.unlink()
            removed += 1
        except OSError:
            pass
    return removed
