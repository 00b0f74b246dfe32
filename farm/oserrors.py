"""Operating-system errors in words: which path, what went wrong, and what to do.

Python's own text (``[Errno 30] Read-only file system: 'r.zarr.lock'``, or ``[Errno 28] No space
left on device`` with no path at all) tells neither which output it was about nor what to do.
:func:`describe_os_error` says both; :func:`is_raw` tells such a bare error from the farm's own
errors, which already carry a full message.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["describe_os_error", "is_raw"]

_WHY: dict[int, tuple[str, str]] = {
    errno.EROFS: (
        "the file system is read-only",
        "write to a folder on a writable file system (choose another path)",
    ),
    errno.ENOSPC: (
        "no space is left on its device",
        "free space there (`df -h` shows how much is left), or write elsewhere",
    ),
    errno.EDQUOT: (
        "your disk quota is exceeded",
        "free space within your quota (`quota -s`), or write elsewhere",
    ),
    errno.EACCES: (
        "permission denied",
        "make it (and its folder) writable by this user, or choose another path",
    ),
    errno.EPERM: (
        "the operation is not permitted",
        "check its owner and permissions, or choose another path",
    ),
    errno.ENOTDIR: (
        "a part of the path is a file, not a folder",
        "move that file away, or choose another path",
    ),
    errno.EISDIR: ("it is a folder, not a file", "choose a file"),
    errno.ELOOP: (
        "it is a symbolic link, which the farm never follows there",
        "remove the link (it may have been planted), then rerun",
    ),
    errno.EMFILE: (
        "this process has too many open files",
        "raise the limit (`ulimit -n 65536`), then rerun",
    ),
    errno.ENFILE: ("the system has too many open files", "retry when the load is lower"),
    errno.EIO: (
        "the device reported an input/output error",
        "check the storage (`dmesg`), then rerun",
    ),
    errno.ENAMETOOLONG: ("the name is too long for this file system", "choose a shorter path"),
    errno.ENOENT: ("it does not exist", "check the path"),
    errno.EEXIST: ("it already exists", "remove it or choose another path"),
    errno.ESTALE: (
        "the network file system lost track of it (stale file handle)",
        "rerun; if it persists, remount the file system",
    ),
}


def is_raw(err: BaseException) -> bool:
    """Whether ``err`` is an operating-system error with only Python's own text.

    The farm's errors (:class:`farm.publish.PublishError`, :class:`farm.checkpoint.CheckpointError`,
    …) subclass ``OSError`` but carry a message that names the output and the fix.
    """
    return (
        isinstance(err, OSError)
        and isinstance(err.errno, int)
        and bool(err.strerror)
        and str(err).startswith("[Errno")
    )


_WRITES = {errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def describe_os_error(
    err: OSError, path: str | os.PathLike[str] | None = None, *, action: str | None = None
) -> str:
    """``PATH: cannot ACTION: why (errno NAME); what to do``.

    Parameters
    ----------
    err
        The error; its own ``filename`` is named when it has one (the exact file), else ``path``.
    path
        What the command was writing (its ``--out``), for errors that name no file.
    action
        The verb: "write", "read", "create the lock file", … (default: "write" for a full,
        read-only or over-quota file system, else "access").
    """
    if action is None:
        action = "write" if err.errno in _WRITES else "access"
    where = err.filename if err.filename is not None else path
    name = errno.errorcode.get(err.errno or 0, str(err.errno))
    why, fix = _WHY.get(err.errno or 0, (str(err.strerror or err).lower(), "fix it, then rerun"))
    subject = f"{os.fspath(where)}: " if where is not None else ""
    also = ""
    if path is not None and where is not None and Path(os.fspath(where)) != Path(os.fspath(path)):
        also = f" (while writing {os.fspath(path)})"
    return f"{subject}cannot {action}{also}: {why} (errno {name}); {fix}"
