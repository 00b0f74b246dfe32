"""Per-work-item checkpoints: partial sums saved under the item's key, loaded only if authentic.

Files are plain ``.npz`` (no pickle is ever loaded: ``allow_pickle=False``), written to a
temporary name (created with ``O_EXCL | O_NOFOLLOW``) and renamed, so a killed worker leaves
either a complete checkpoint or none (and a temporary that :mod:`farm.stale` removes later).

Each checkpoint records its own key and a digest of its content (``farm_checkpoint``: a JSON
record as bytes): the key, then every array's name, dtype, shape and bytes. A checkpoint is
used only if it is the checkpoint of the key asked for and its arrays match the digest;
anything else (a file copied over another key's, edited arrays, a checkpoint of an earlier farm
without a digest) is recomputed, with a warning that names the file. The digest is BLAKE2b,
which catches accidents; with ``FARM_CHECKPOINT_KEY`` set it is an HMAC-SHA256 under that key,
which makes a shared checkpoint folder tamper-evident: without the key nobody can write a
checkpoint the farm accepts (docs/guide-operators.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from farm.accumulate import PartialSums
from farm.reweight.flux import FluxTensors
from farm.stale import temp_token

__all__ = ["KEY_ENV", "CheckpointError", "CheckpointStore", "checkpoint_secret", "content_digest"]

_OPTIONAL = ("flux_signal", "flux_background", "flux_truth", "fake_signal")
_REQUIRED = ("signal", "background", "truth", "truth_nominal", "clamped", "n_events")
_META = "farm_checkpoint"
FORMAT = 2
KEY_ENV = "FARM_CHECKPOINT_KEY"
"""Environment variable holding the HMAC key of the checkpoints (the same on every worker)."""
_MIN_KEY_CHARS = 16
_logger = logging.getLogger("farm.checkpoint")
_KEY_FORM = re.compile(r"[0-9a-f][0-9a-f-]{0,79}")

_NPY_HEADERS = threading.Lock()
"""Checkpoints are read one at a time in a process: numpy parses each array's header with
``ast.literal_eval``, which CPython 3.11 cannot run in two threads at once (gh-106905:
"SystemError: AST constructor recursion depth mismatch"), and an in-process run's item threads
(farm.execute) load checkpoints concurrently. A checkpoint is small; the lock costs nothing."""


class CheckpointError(OSError):
    """A checkpoint could not be written."""


def checkpoint_secret() -> bytes | None:
    """The HMAC key from ``FARM_CHECKPOINT_KEY``, or None when it is not set.

    Raises
    ------
    ValueError
        The key is shorter than 16 characters (its value is never shown).
    """
    value = os.environ.get(KEY_ENV, "")
    if not value:
        return None
    if len(value) < _MIN_KEY_CHARS:
        msg = (
            f"{KEY_ENV} holds {len(value)} characters, too few for an HMAC key; set it to at "
            "least 32 random characters, the same on the driver and every worker: "
            "python3 -c 'import secrets; print(secrets.token_hex(32))'"
        )
        raise ValueError(msg)
    return value.encode()


def content_digest(
    key: str, arrays: Mapping[str, np.ndarray], secret: bytes | None
) -> tuple[str, str]:
    """(algorithm, hex digest) of a checkpoint's key and arrays (name, dtype, shape, bytes)."""
    h = hmac.new(secret, digestmod="sha256") if secret else hashlib.blake2b(digest_size=32)
    h.update(json.dumps({"format": FORMAT, "key": key}, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return ("hmac-sha256" if secret else "blake2b-256"), h.hexdigest()


class CheckpointStore:
    """A directory of ``<key>.npz`` files.

    ``log`` is told why a checkpoint was not used (default: the ``farm.checkpoint`` logger).
    """

    def __init__(self, root: str | Path, *, log: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.log = log
        self.secret = checkpoint_secret()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        # not the hidden temporary files of a save that was interrupted
        return {p.stem for p in self.root.glob("*.npz") if not p.name.startswith(".")}

    def prefix_of(self, family: str, first: int, end: int) -> tuple[int, str] | None:
        """The longest checkpointed prefix ``family-first-t`` (first < t < end) of a bootstrap
        item ``family-first-end``: (t, its key), or None (see :mod:`farm.plan`)."""
        if not family or not self.root.is_dir():
            return None
        best: tuple[int, str] | None = None
        for path in self.root.glob(f"{family}-{first}-*.npz"):
            tail = path.stem.rsplit("-", 1)[-1]
            if tail.isdigit() and first < int(tail) < end and (best is None or int(tail) > best[0]):
                best = (int(tail), path.stem)
        return best

    def save(self, key: str, sums: PartialSums) -> Path:
        """Write ``sums`` under ``key`` with its digest (temporary file, fsync, rename).

        Raises
        ------
        CheckpointError
            The write failed (a full disk, a read-only or missing folder); no temporary file is
            left, and an earlier checkpoint under ``key`` is untouched.
        """
        arrays: dict[str, np.ndarray] = {
            "signal": sums.signal,
            "background": sums.background,
            "truth": sums.truth,
            "truth_nominal": sums.truth_nominal,
            "clamped": sums.clamped,
            "n_events": np.array(sums.n_events),
        }
        if sums.flux is not None:
            arrays |= {
                "flux_signal": sums.flux.signal,
                "flux_background": sums.flux.background,
                "flux_truth": sums.flux.truth,
            }
        if sums.fake_signal is not None:
            arrays["fake_signal"] = sums.fake_signal
        algorithm, digest = content_digest(key, arrays, self.secret)
        record = {"format": FORMAT, "key": key, "algorithm": algorithm, "digest": digest}
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
                raise  # SIGTERM, Ctrl-C: no partial file is left either
            msg = (
                f"{self.root}: cannot save the checkpoint of work item {key} "
                f"({type(err).__name__}: {err}); free space or fix that folder (it must be a "
                "writable directory), or run with --no-checkpoints"
            )
            failure = CheckpointError(msg)
            failure.errno = err.errno
            raise failure from err
        return target

    def load(self, key: str) -> PartialSums | None:
        """The saved partial sums if the checkpoint is authentic, else None (it is recomputed).

        Absent: None, silently. Unreadable, without a digest, of another key, or not matching
        its digest: None, and ``log`` is told which file and why.
        """
        path = self.path(key)
        try:
            # the file is opened here, so that it is closed even when numpy fails on a damaged zip
            with open(path, "rb") as f, _NPY_HEADERS:
                data = np.load(f, allow_pickle=False)
                if not isinstance(data, Mapping):  # an .npy array, not an .npz archive
                    return self._reject(path, key, "it is a single .npy array, not a checkpoint")
                with data:
                    arrays = {name: data[name] for name in data.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            reason = "it cannot be read as a .npz of numbers"
            if isinstance(err, ValueError) and "pickle" in str(err):
                reason = "it holds an array of Python objects (a pickle), which is never loaded"
            return self._reject(path, key, reason)
        why = self._why_not_authentic(key, arrays)
        if why is not None:
            return self._reject(path, key, why)
        flux = None
        if "flux_signal" in arrays:
            flux = FluxTensors(
                signal=arrays["flux_signal"],
                background=arrays["flux_background"],
                truth=arrays["flux_truth"],
            )
        return PartialSums(
            flux=flux,
            signal=arrays["signal"],
            background=arrays["background"],
            truth=arrays["truth"],
            truth_nominal=arrays["truth_nominal"],
            clamped=arrays["clamped"],
            n_events=int(arrays["n_events"]),
            fake_signal=arrays.get("fake_signal"),
        )

    def _why_not_authentic(self, key: str, arrays: dict[str, np.ndarray]) -> str | None:
        meta = arrays.pop(_META, None)
        if meta is None:
            return "it has no content digest (written by an earlier farm), so it is not trusted"
        try:
            record = json.loads(meta.astype(np.uint8).tobytes())
            stored_key, algorithm, digest = record["key"], record["algorithm"], record["digest"]
        except (ValueError, KeyError, TypeError):
            return "its record (farm_checkpoint) cannot be read"
        if stored_key != key:
            # a key is hex digits and dashes; anything else read from the file is not shown
            shown = f" {stored_key}" if _KEY_FORM.fullmatch(str(stored_key)) else ""
            return (
                f"it holds the checkpoint of another work item{shown}, not of this one (a file "
                "copied or renamed over it)"
            )
        if self.secret is not None and algorithm != "hmac-sha256":
            return f"it is not signed with {KEY_ENV} (written by a process without the key)"
        if self.secret is None and algorithm == "hmac-sha256":
            return f"it is signed with a {KEY_ENV}, which this process does not have; set it"
        missing = [name for name in _REQUIRED if name not in arrays]
        if missing:
            return f"it lacks the arrays {', '.join(missing)}"
        _, actual = content_digest(key, arrays, self.secret)
        if not hmac.compare_digest(str(digest), actual):
            signed = f" under {KEY_ENV}" if self.secret is not None else ""
            return f"its arrays do not match its digest{signed}: they changed after it was written"
        return None

    def _reject(self, path: Path, key: str, reason: str) -> None:
        message = f"warning: {path}: checkpoint not used, work item {key} is recomputed: {reason}"
        if self.log is not None:
            self.log(message)
        else:
            _logger.warning(message)
        return None
