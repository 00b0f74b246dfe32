"""Publish result datasets atomically, keeping every earlier version.

Layout, for ``--out results/x.zarr``::

    results/x.zarr            → symlink to the current version
    results/x.zarr.versions/  v0001.zarr, v0002.zarr, …   (complete datasets, never modified)

A new version is written under a temporary name inside ``.versions``, renamed to its final name
once complete, and only then the symlink is swapped with one atomic rename. A reader that opens
``results/x.zarr`` with :func:`open_published` (which follows the link once) sees the old or the
new version, never a mix; a failed write (full disk, an error while encoding) leaves the current
version untouched and no temporary directory behind.

``OUT`` is only ever a result: anything else there (an event store, a file, a foreign folder) is
refused and left as it is, and a result of another sample needs ``new_analysis``
(:mod:`farm.outputs`). Temporaries are named after their writer (:mod:`farm.stale`), so those a
killed publisher left are removed by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from farm.finite import require_finite
from farm.lazy_dask import defer_dask_array_import
from farm.outputs import check_output, check_same_analysis, refuse_non_result
from farm.stale import temp_token

__all__ = [
    "PublishError",
    "Version",
    "current_version",
    "list_versions",
    "open_published",
    "open_sample",
    "publish_dataset",
    "sample_groups",
    "versions_dir",
]

_VERSION = re.compile(r"^v(\d{4,})\.zarr$")


class PublishError(OSError):
    """Writing a new version (or making it current) failed; the current version is unchanged."""


@dataclass(frozen=True, kw_only=True)
class Version:
    number: int
    path: Path
    created: float
    current: bool


def versions_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.name}.versions")


def list_versions(out: str | Path) -> list[Version]:
    folder = versions_dir(out)
    if not folder.is_dir():
        return []
    current = current_version(out)
    found = []
    for entry in folder.iterdir():
        m = _VERSION.match(entry.name)
        if m:
            found.append(
                Version(
                    number=int(m.group(1)),
                    path=entry,
                    created=entry.stat().st_mtime,
                    current=current is not None and entry.resolve() == current.resolve(),
                )
            )
    return sorted(found, key=lambda v: v.number)


def current_version(out: str | Path) -> Path | None:
    out = Path(out)
    if out.is_symlink():
        return out.resolve()
    return out if out.exists() else None


def open_published(out: str | Path) -> xr.Dataset:
    """Open the current version of a published result, pinned to that version.

    ``xr.open_zarr(out)`` reads lazily through the symlink: arrays read after a later publish
    would come from the new version, mixed with the old one's. Opening the version the link
    points to now keeps every later read in that one complete, never-modified version.

    The arrays are read without dask (``chunks=None``): a result is small, and reading it must
    not depend on whichever dask scheduler the calling process has as its default (a client
    left registered by an earlier failed connection would otherwise take, and hang, the read).
    """
    current = current_version(out)
    if current is None:
        msg = f"{out}: nothing published yet; publish with `farm run CONFIG --out {out}`"
        raise FileNotFoundError(msg)
    refuse_non_result(out, current)
    return xr.open_zarr(current, chunks=None)


def sample_groups(path: str | Path) -> list[str]:
    """The samples a published multi-sample measurement keeps under ``samples/`` (else [])."""
    import zarr

    try:
        root = zarr.open_group(Path(path), mode="r")
        return sorted(root["samples"].group_keys()) if "samples" in root else []
    except (KeyError, ValueError, OSError, TypeError):
        return []


def open_sample(out: str | Path, sample: str) -> xr.Dataset:
    """One sample's own result inside a published multi-sample measurement (current version)."""
    current = current_version(out)
    if current is None:
        msg = f"{out}: nothing published yet; publish with `farm run CONFIG --out {out}`"
        raise FileNotFoundError(msg)
    refuse_non_result(out, current)
    names = sample_groups(current)
    if sample not in names:
        held = ", ".join(names) if names else "none: it is a single-sample result"
        msg = f"{out}: holds no sample {sample!r} (samples: {held})"
        raise ValueError(msg)
    return xr.open_zarr(current, group=f"samples/{sample}", chunks=None)


PLAIN_BELOW_BYTES = 1 << 20
"""Arrays smaller than this are stored uncompressed: zstd shrinks a result's floats by a few per
cent, and compressing its hundred-odd small arrays took an eighth of the write's time."""


def result_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """The ``to_zarr`` encoding of a published result: arrays under :data:`PLAIN_BELOW_BYTES`
    uncompressed, the others with zarr's default compression."""
    return {
        name: {"compressors": None}
        for name, v in ds.variables.items()
        if v.nbytes < PLAIN_BELOW_BYTES
    }


def _write(ds: xr.Dataset, target: Path, groups: Mapping[str, xr.Dataset] | None = None) -> None:
    """Write ``ds`` (and ``groups``) as a new zarr store at ``target``, a path not yet there.

    The store is encoded in memory first and its files then written by zarr's own file store in
    one batch: the same files, byte for byte, as ``to_zarr(target)``, without a round trip to
    zarr's I/O thread for every file of the 100-odd small arrays (a third of the write's time).
    """
    from zarr.core.sync import sync
    from zarr.storage import LocalStore, MemoryStore

    defer_dask_array_import()
    datasets = [ds, *(groups or {}).values()]
    lazy = any(v.chunks is not None for d in datasets for v in d.variables.values())
    encoded: dict[str, Any] = {}
    memory = target if lazy else MemoryStore(encoded)  # dask arrays: written where they are
    with warnings.catch_warnings():
        # consolidated metadata is not in the zarr v3 spec yet; xarray readers expect it
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        for name, part in [(None, ds), *(groups or {}).items()]:  # the root, then each group
            part.to_zarr(
                memory,
                group=name,
                mode="w-",
                consolidated=True,
                zarr_format=3,
                encoding=result_encoding(part),
            )
    if lazy:
        return
    target.mkdir()  # refused if something is already there, as mode="w-" does
    store = LocalStore(target)

    async def write_all() -> list[BaseException | None]:
        # every write finished, failed or not, before the caller removes a failed version
        writes = (store.set(key, value) for key, value in encoded.items())
        return await asyncio.gather(*writes, return_exceptions=True)

    failed = [err for err in sync(write_all()) if isinstance(err, BaseException)]
    if failed:
        raise failed[0]


def publish_dataset(
    ds: xr.Dataset,
    out: str | Path,
    *,
    new_analysis: bool = False,
    groups: Mapping[str, xr.Dataset] | None = None,
) -> Path:
    """Write ``ds`` as the next version and make it current; returns the version's path.

    Refused with a :class:`ValueError` before anything is written: a dataset holding NaN or inf
    where a result may not (:mod:`farm.finite`); an ``out`` that is not a new path or a farm
    result (:func:`farm.outputs.check_output`); a dataset of another sample than the current
    version's, unless ``new_analysis`` (:func:`farm.outputs.check_same_analysis`).

    ``groups`` are written as zarr groups of the same version (a multi-sample measurement keeps
    each sample's own result under ``samples/NAME``: :func:`open_sample`).
    """
    out = Path(out)
    check_output(out)
    config = ds.attrs.get("config", "{}")
    try:
        generator = str(json.loads(config)["sample"]["generator"])
    except (ValueError, KeyError, TypeError):
        generator = ""
    sample = str(ds.attrs.get("sample", ""))
    if sample:
        check_same_analysis(out, sample, generator, new_analysis=new_analysis)
    kept = (
        "nothing was published"
        if current_version(out) is None
        else "the current version is unchanged"
    )
    require_finite(ds, source=out, action=f"published ({kept})")
    for name, group in (groups or {}).items():
        require_finite(group, source=f"{out} ({name})", action=f"published ({kept})")
    folder = versions_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_symlink():
        # a result published before versioning (check_output made sure it is one): keep it
        # as the first version
        legacy = folder / "v0000.zarr"
        if not legacy.exists():
            os.rename(out, legacy)
            os.symlink(os.path.relpath(legacy, out.parent), out)
    before = current_version(out)
    tmp = folder / f".tmp-{temp_token()}.zarr"
    try:
        _write(ds, tmp, groups)
        while True:
            number = max([v.number for v in list_versions(out)], default=0) + 1
            final = folder / f"v{number:04d}.zarr"
            try:
                os.rename(tmp, final)
                break
            except OSError:
                if not final.exists():  # not a race with another publisher: a real failure
                    raise
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if nothing was ever published there
        if isinstance(err, Exception):
            raise _publish_error(out, before, "writing the new version", err) from err
        raise
    link = out.with_name(f".{out.name}.link-{temp_token()}")
    try:
        os.symlink(os.path.relpath(final, out.parent), link)
        os.replace(link, out)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(link)
        if current_version(out) != final.resolve():  # never remove what readers now open
            shutil.rmtree(final, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(err, Exception):
            raise _publish_error(out, before, "making the new version current", err) from err
        raise
    with contextlib.suppress(OSError):
        os.utime(final, (time.time(), time.time()))
    return final


def _publish_error(out: Path, before: Path | None, step: str, err: Exception) -> PublishError:
    kept = (
        f"the current version is still {before.name}, unchanged"
        if before is not None
        else "nothing was published"
    )
    msg = (
        f"{out}: {step} failed ({type(err).__name__}: {err}); {kept}, and no temporary files "
        "were left. Free space or fix the storage, then rerun (`farm run` reuses the work items "
        "it checkpointed)"
    )
    failure = PublishError(msg)
    failure.errno = getattr(err, "errno", None)
    return failure
