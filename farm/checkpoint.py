"""Per-work-item checkpoints: partial sums saved under the item's key, loaded only if valid.

Files are plain ``.npz`` (no pickle is ever loaded: ``allow_pickle=False``), written to a
temporary name and renamed, so a killed worker leaves either a complete checkpoint or none.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np

from farm.accumulate import PartialSums
from farm.reweight.flux import FluxTensors

__all__ = ["CheckpointError", "CheckpointStore"]

_OPTIONAL = ("flux_signal", "flux_background", "flux_truth", "fake_signal")


class CheckpointError(OSError):
    """A checkpoint could not be written."""


class CheckpointStore:
    """A directory of ``<key>.npz`` files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

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
        """Write ``sums`` under ``key`` (temporary file, fsync, rename).

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
        target = self.path(key)
        tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp.npz")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
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
        """The saved partial sums, or None if absent or unreadable (then it is recomputed)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (FileNotFoundError, OSError, ValueError, zipfile.BadZipFile, EOFError):
            return None
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
