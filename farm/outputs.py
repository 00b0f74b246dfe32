"""What an output path may be: only ever a farm result, and only of one analysis.

``farm run --out OUT`` publishes versions under ``OUT.versions/`` and makes ``OUT`` a link to the
current one (:mod:`farm.publish`). So ``OUT`` must be a new path, or a result published there
before (the link, or a result written before versions existed, which becomes ``v0000``).
Anything else is refused before a cluster starts or an event is read, and left as it is: an
event store (publishing there once moved the store into ``store.zarr.versions/v0000.zarr`` and
broke every later run), a file (``--out notes.txt`` became version ``v0000``), a foreign folder,
a link to somewhere else, a path inside a store or inside a result's versions.

An existing result belongs to one analysis: its sample (``[sample] name`` and generator).
Publishing a result of another sample there needs ``--new-analysis`` (:func:`check_same_analysis`);
a new configuration of the same sample (a changed systematic, binning, more universes or events)
is a new version of the same analysis, which is what ``farm refresh`` is for.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AnotherAnalysisError",
    "OutputError",
    "VersionSummary",
    "check_output",
    "check_same_analysis",
    "group_attrs",
    "is_farm_result",
    "is_farm_store",
    "refuse_non_result",
    "version_summary",
]

_VERSION = re.compile(r"^v\d{4,}\.zarr$")


class OutputError(ValueError):
    """``--out`` names something that is not a farm result; it is left as it is."""


class AnotherAnalysisError(ValueError):
    """The result at ``--out`` is of another sample; ``--new-analysis`` publishes there anyway."""


def _metadata(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) and meta.get("node_type") == "group" else None


def group_attrs(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The attributes of the zarr group at ``path``, or None if it is not one."""
    meta = _metadata(Path(path))
    if meta is None:
        return None
    attrs = meta.get("attributes", {})
    return attrs if isinstance(attrs, dict) else {}


def is_farm_store(path: str | os.PathLike[str]) -> bool:
    """An event store written by ``farm generate`` or ``farm ingest``."""
    attrs = group_attrs(path)
    return attrs is not None and "farm_schema_version" in attrs


def is_farm_result(path: str | os.PathLike[str]) -> bool:
    """A result dataset published by ``farm run`` (one version, or the link to it)."""
    attrs = group_attrs(path)
    return (
        attrs is not None
        and "farm_schema_version" not in attrs
        and {"sample", "config_hash"} <= attrs.keys()
    )


def _versions_of(folder: Path) -> Path | None:
    """The result whose versions ``folder`` holds, if its name says so."""
    if folder.name.endswith(".versions"):
        return folder.with_name(folder.name.removesuffix(".versions"))
    return None


def _refuse(out: Path, what: str, fix: str) -> OutputError:
    return OutputError(f"{out}: {what}; {fix}")


_NEW_PATH = "give --out a new path (or a result published by `farm run`); it is left as it is"


def check_output(
    out: str | os.PathLike[str], *, store: str | os.PathLike[str] | None = None
) -> None:
    """Refuse an ``--out`` that is not a new path or a farm result, touching nothing.

    Parameters
    ----------
    out
        The output of ``farm run`` or ``farm refresh``.
    store
        The run's event store (which need not exist yet: it may be generated there).

    Raises
    ------
    OutputError
        Naming what ``out`` is and what to give instead.
    """
    out = Path(out)
    absolute = Path(os.path.abspath(out))
    if store is not None and absolute == Path(os.path.abspath(store)):
        msg = (
            f"{out}: --out is this run's own event store ([sample] store, or "
            "<sample>-<hash>.zarr in FARM_STORE_DIR); the result is published beside the store, never "
            "onto it (that would move the store away). Give --out another path, e.g. "
            "results/<sample>.zarr"
        )
        raise OutputError(msg)
    for folder in (absolute, *absolute.parents):
        if folder.name.endswith(".checkpoints"):
            where = "is" if folder == absolute else f"is inside {folder},"
            raise _refuse(out, f"{where} the work-item checkpoint folder of a result", _NEW_PATH)
        result = _versions_of(folder)
        if result is not None:
            where = "is the folder" if folder == absolute else "is inside the folder"
            msg = f"{where} {folder} that holds the published versions of {result}"
            raise _refuse(out, msg, f"publish to {result} itself (or give --out a new path)")
    for parent in absolute.parents:
        if parent.is_file():
            raise _refuse(
                out, f"{parent} is a file, so nothing can be published under it", _NEW_PATH
            )
        if is_farm_store(parent):
            raise _refuse(out, f"is inside the event store {parent}", _NEW_PATH)
        if is_farm_result(parent):
            raise _refuse(out, f"is inside the result {parent}", _NEW_PATH)
    if out.is_symlink():
        _check_link(out)
        return
    if not out.exists():
        return
    if out.is_dir():
        if is_farm_result(out):
            return  # a result published before versions existed: it becomes v0000
        if is_farm_store(out):
            what = "is an event store (written by `farm generate` or `farm ingest`), not a result"
            raise _refuse(out, what, _NEW_PATH)
        entries = sum(1 for _ in out.iterdir())
        kind = (
            "an empty folder"
            if entries == 0
            else f"a folder holding {entries} {'entry' if entries == 1 else 'entries'}"
        )
        raise _refuse(out, f"is {kind} that is not a farm result", _NEW_PATH)
    raise _refuse(out, "is a file, not a farm result", _NEW_PATH)


def _check_link(out: Path) -> None:
    target = Path(os.readlink(out))
    resolved = Path(os.path.abspath(out.parent / target))
    versions = Path(os.path.abspath(out.with_name(f"{out.name}.versions")))
    if resolved.parent == versions and _VERSION.match(resolved.name):
        return  # the link farm made (its version may have been removed: a new one follows)
    msg = (
        f"is a link to {target}, not to a version in {versions.name}/ as a result published "
        "by `farm run` is"
    )
    raise _refuse(out, msg, _NEW_PATH)


def check_same_analysis(
    out: str | os.PathLike[str], sample: str, generator: str, *, new_analysis: bool
) -> None:
    """Refuse to make a result of another sample the current version of ``out``.

    Raises
    ------
    AnotherAnalysisError
        ``out`` currently holds a result of another sample (or generator), and
        ``new_analysis`` is false.
    """
    if new_analysis:
        return
    out = Path(out)
    current = out.resolve() if out.is_symlink() else out
    summary = version_summary(current)
    if summary is None or not summary.sample:
        return
    other_generator = bool(summary.generator and generator and summary.generator != generator)
    if summary.sample == sample and not other_generator:
        return
    was, now = f"sample '{summary.sample}'", f"sample '{sample}'"
    if other_generator:
        was, now = f"{was} (generator {summary.generator})", f"{now} (generator {generator})"
    msg = (
        f"{out}: holds the results of {was} (current version {current.name}, config "
        f"{summary.config_hash[:12]}); this run is of {now}. Give it another --out, or pass "
        f"--new-analysis to publish it as the next version of {out} anyway (earlier versions "
        f"are kept: `farm versions {out}`)"
    )
    raise AnotherAnalysisError(msg)


@dataclass(frozen=True, kw_only=True)
class VersionSummary:
    """What one published version is: its sample, configuration, events and universes."""

    sample: str
    generator: str
    config_hash: str
    n_events: int | None
    n_universes: int | None


def version_summary(path: str | os.PathLike[str]) -> VersionSummary | None:
    """Read from the version's metadata alone (no array is read); None if it is no result."""
    meta = _metadata(Path(path))
    if meta is None:
        return None
    attrs = meta.get("attributes", {})
    if not isinstance(attrs, dict) or "config_hash" not in attrs:
        return None
    try:
        generator = str(json.loads(attrs.get("config", "{}"))["sample"]["generator"])
    except (ValueError, KeyError, TypeError):
        generator = ""
    arrays = (meta.get("consolidated_metadata") or {}).get("metadata") or {}
    shape = (arrays.get("xsec_real") or {}).get("shape") or [None]
    if attrs.get("kind") == "measurement":  # xsec_real is over truth bins: no universe axis
        shape = [None]
    events = attrs.get("n_events")
    return VersionSummary(
        sample=str(attrs.get("sample", "")),
        generator=generator,
        config_hash=str(attrs.get("config_hash", "")),
        n_events=int(events) if isinstance(events, int | float) else None,
        n_universes=int(shape[0]) if isinstance(shape[0], int) else None,
    )


def refuse_non_result(path: str | os.PathLike[str], current: str | os.PathLike[str]) -> None:
    """Refuse, naming what it is, a ``path`` that is an event store or a file rather than a
    published result (``farm report``, ``farm compare`` and ``farm export`` open results through
    :func:`farm.publish.open_published`, which calls this)."""
    if is_farm_store(current):
        msg = (
            f"{path}: is an event store, not a result: it holds events, and this command reads "
            "what `farm run` published. Give the --out of `farm run CONFIG --out RESULT` run "
            f"over it (`farm inspect {path}` describes the store itself)"
        )
        raise OutputError(msg)
    if Path(current).is_file():
        msg = f"{path}: is a file, not a result; give the --out of `farm run` (a zarr folder)"
        raise OutputError(msg)
