"""Checkpoints of Feldman–Cousins toy blocks: Δχ² arrays saved under the block's key.

One ``.npz`` per block of toys (a θ point and a range of toy indices), written by the driver as
each block arrives (a temporary file renamed into place), so an interrupted ``farm fit`` resumes
with the blocks it had. A block's key holds a fingerprint of everything that decides its toys
(the tabulated grid, the generating points, how toys are thrown, the seed), so a checkpoint of
another fit is never taken for this one. Like the run's checkpoints (:mod:`farm.checkpoint`),
each file records its key and a digest of its content — BLAKE2b, or HMAC-SHA256 under
``FARM_CHECKPOINT_KEY`` — and is used only if both match; no pickle is ever loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from farm.checkpoint import CheckpointError, checkpoint_secret, content_digest
from farm.stale import temp_token

__all__ = ["ToyCheckpoints", "fingerprint"]

_META = "farm_fit_checkpoint"
_logger = logging.getLogger("farm.fit")


def fingerprint(parts: Iterable[object]) -> str:
    """BLAKE2b-128 over arrays (dtype, shape, bytes) and JSON-able values, in order."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())
            h.update(a.tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


class ToyCheckpoints:
    """A directory of ``<key>.npz`` files each holding one array ``dchi2``."""

    def __init__(self, root: str | Path, *, log: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.log = log
        self.secret = checkpoint_secret()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def save(self, key: str, dchi2: np.ndarray) -> Path:
        """Write ``dchi2`` under ``key`` (temporary file, fsync, rename).

        Raises
        ------
        CheckpointError
            The write failed; no temporary file is left.
        """
        arrays = {"dchi2": np.asarray(dchi2, dtype=np.float64)}
        algorithm, digest = content_digest(key, arrays, self.secret)
        record = {"key": key, "algorithm": algorithm, "digest": digest}
        arrays[_META] = np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)
        target = self.path(key)
        tmp = target.with_name(f".{target.stem}.tmp-{temp_token()}.npz")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with os.fdopen(os.open(tmp, flags, 0o644), "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not isinstance(err, OSError):
                raise
            msg = (
                f"{self.root}: cannot save the checkpoint of toy block {key} "
                f"({type(err).__name__}: {err}); free space or fix that folder, or run with "
                "--no-checkpoints"
            )
            raise CheckpointError(msg) from err
        return target

    def load(self, key: str, size: int) -> np.ndarray | None:
        """The saved Δχ² of ``key`` if authentic and of ``size`` toys, else None (recomputed)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return self._reject(path, key, "it cannot be read as a .npz of numbers")
        meta = arrays.pop(_META, None)
        if meta is None or "dchi2" not in arrays:
            return self._reject(path, key, "it is not a farm fit checkpoint")
        try:
            record = json.loads(meta.astype(np.uint8).tobytes())
            stored, algorithm, digest = record["key"], record["algorithm"], record["digest"]
        except (ValueError, KeyError, TypeError):
            return self._reject(path, key, "its record cannot be read")
        if stored != key:
            return self._reject(path, key, "it holds another toy block (a file copied over it)")
        wanted = "hmac-sha256" if self.secret is not None else "blake2b-256"
        if algorithm != wanted:
            return self._reject(
                path,
                key,
                f"it is signed with {algorithm}, this process expects {wanted} (FARM_CHECKPOINT_KEY)",
            )
        _, actual = content_digest(key, arrays, self.secret)
        if not hmac.compare_digest(str(digest), actual):
            return self._reject(path, key, "its numbers do not match its digest")
        values = arrays["dchi2"]
        if values.shape != (size,) or values.dtype != np.float64:
            return self._reject(path, key, f"it holds {values.shape} values, not {size}")
        return values

    def _reject(self, path: Path, key: str, reason: str) -> None:
        message = f"warning: {path}: checkpoint not used, toy block {key} is recomputed: {reason}"
        if self.log is not None:
            self.log(message)
        else:
            _logger.warning(message)
        return None
