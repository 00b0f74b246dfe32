"""Ingest outside generators' events into an event store: open, check, map, write shard by shard.

Every input is opened and checked against the mapping before a byte is written (missing trees
or branches are reported together, naming the file, the tree and what the mapping wanted them
for). Events are then read a chunk at a time, mapped to the store's columns, and written
through :class:`~farm.store.StoreWriter`, which publishes the store atomically. ``event_id``
numbers the events of all inputs in the order given; the store's ``ingest.inputs`` attribute
gives each input's range of ids, its checksum and the tree read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import farm
from farm.config import ConfigError, config_hash
from farm.ingest.columns import map_chunk, plan_columns, store_columns
from farm.ingest.gst import GstFile
from farm.ingest.hepmc3 import HepMC3File
from farm.ingest.kernels import expected_events_per_weight, when_mask
from farm.ingest.mapping import IngestMapping, load_mapping
from farm.ingest.source import CHECKSUM_ALGORITHM, EventFile, IngestError, file_checksum
from farm.store import DEFAULT_CHUNK_ROWS, DEFAULT_SHARD_ROWS, StoreError, StoreWriter
from farm.store.schema import check_shard_rows
from farm.store.values import first_invalid

__all__ = ["FORMATS", "guess_format", "ingest"]

FORMATS = ("gst", "hepmc3")
_SUFFIXES = {".root": "gst", ".hepmc3": "hepmc3", ".hepmc": "hepmc3"}


def guess_format(path: str | os.PathLike[str]) -> str | None:
    """The format a file name suggests (``.root``: gst; ``.hepmc3``/``.hepmc``, maybe compressed).

    >>> guess_format("run1.gst.root"), guess_format("nuwro.hepmc3.gz"), guess_format("x.txt")
    ('gst', 'hepmc3', None)
    """
    suffixes = [s for s in Path(path).suffixes if s not in (".gz", ".bz2", ".xz", ".zst")]
    return _SUFFIXES.get(suffixes[-1]) if suffixes else None


def ingest(
    inputs: Sequence[str | os.PathLike[str]],
    mapping: IngestMapping | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: str | None = None,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    exposure: float | None = None,
    overwrite: bool = False,
    on_shard: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the events of ``inputs`` into a new event store at ``out``; return its attributes.

    Parameters
    ----------
    inputs
        gst ROOT files or HepMC3 files, all of one format; their events are concatenated.
    mapping
        A validated mapping or the path of a mapping file (TOML).
    out
        The store to write (published atomically; ``overwrite`` replaces a farm store there).
    format
        ``gst`` or ``hepmc3``; default the mapping's ``[ingest] format``, else the file suffix.
    shard_rows
        Events per shard (the unit of work of later runs).
    exposure
        Exposure to normalise to, in the mapping's ``[exposure] unit``; weights are scaled by
        ``exposure / [exposure] value`` (default: the mapping's value, no scaling).
    on_shard
        Called as ``on_shard(events_written, n_events)`` after each shard.

    Raises
    ------
    ConfigError
        The mapping is invalid or contradicts the input (units, format).
    IngestError
        An input is unreadable, lacks the tree or branches the mapping reads, or holds values
        that do not fit (the message names the file, the tree and the events).
    """
    try:
        check_shard_rows(shard_rows, "--shard-size")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if exposure is not None and not (exposure > 0 and math.isfinite(exposure)):
        msg = f"--exposure must be a finite positive number, got {exposure}"
        raise ConfigError(msg)
    mapping, source = _mapping(mapping)
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ConfigError("give at least one input file")
    fmt = _resolve_format(format, mapping, paths, source)
    exposure_scale = 1.0 if exposure is None else exposure / mapping.exposure.value
    if not overwrite and Path(out).exists():  # said before reading the inputs, not after
        hint = "pass overwrite=True (`farm ingest --overwrite`) or choose another path"
        raise StoreError("the path already exists", store=out, hint=hint)

    with ExitStack() as stack:
        files = [stack.enter_context(_open(fmt, p, mapping)) for p in paths]
        fields = _check_fields(files, mapping, source)
        plans = plan_columns(mapping, files[0].info.field_units, source=source)
        scans = [_scan(f, mapping) for f in files]
        norm = _normalisation(files, scans, mapping, exposure_scale)
        n_events = sum(scan.kept for scan in scans)
        if n_events == 0:
            msg = "no events to ingest: the inputs hold none, or [ingest] keep drops them all"
            raise IngestError(msg, path=paths[0])
        attrs = _attrs(mapping, source, fmt, files, scans, norm, exposure)
        with StoreWriter.create(
            out,
            n_events=n_events,
            columns=store_columns(mapping),
            shard_rows=_shard_rows(n_events, shard_rows),
            attrs=attrs,
            overwrite=overwrite,
        ) as writer:
            shards = _Shards(writer, on_shard)
            first_id = 0
            for f, scan in zip(files, scans, strict=True):
                for chunk in _mapped_chunks(f, mapping, plans, fields, first_id, norm):
                    shards.add(chunk)
                first_id += scan.kept
            shards.finish()
    return attrs


# --- steps ---------------------------------------------------------------------------------------


def _mapping(mapping: IngestMapping | str | os.PathLike[str]) -> tuple[IngestMapping, str]:
    if isinstance(mapping, IngestMapping):
        return mapping, "<mapping>"
    return load_mapping(mapping), os.fspath(mapping)


def _resolve_format(
    given: str | None, mapping: IngestMapping, paths: Sequence[Path], source: str
) -> str:
    declared = mapping.ingest.format
    if given is not None and given not in FORMATS:
        msg = f"unknown input format {given!r}; allowed: {', '.join(FORMATS)}"
        raise ConfigError(msg)
    if given and declared and given != declared:
        msg = f"{source}: [ingest.format] is {declared!r} but the inputs were given as {given!r}; the mapping's field names belong to one format"
        raise ConfigError(msg)
    fmt = given or declared
    if fmt is None:
        guesses = {guess_format(p) for p in paths}
        if len(guesses) != 1 or None in guesses:
            msg = f"cannot tell the input format from {', '.join(map(str, paths))}; pass --format {' or '.join(FORMATS)} or set [ingest] format"
            raise ConfigError(msg)
        fmt = guesses.pop()
    assert fmt is not None
    return fmt


def _open(fmt: str, path: Path, mapping: IngestMapping) -> GstFile | HepMC3File:
    if fmt == "gst":
        return GstFile.open(path, mapping.ingest.tree)
    return HepMC3File.open(path)


def _shard_rows(n_events: int, shard_rows: int) -> int:
    """Rows per shard: as asked, but no larger than the store needs (in whole chunks)."""
    if n_events >= shard_rows or n_events <= DEFAULT_CHUNK_ROWS:
        return min(shard_rows, n_events)
    return -(-n_events // DEFAULT_CHUNK_ROWS) * DEFAULT_CHUNK_ROWS


def _check_fields(files: Sequence[EventFile], mapping: IngestMapping, source: str) -> list[str]:
    """The fields the mapping reads; every input must have them all."""
    uses = mapping.fields_used()
    lacking = [f for f in files if not set(uses) <= set(f.info.fields)]
    if not lacking:
        return sorted(uses)
    info = lacking[0].info
    missing = [name for name in uses if name not in info.fields]
    kind = "branch(es)" if info.format == "gst" else "field(s)"
    wanted = "; ".join(f"{name!r} for {', '.join(uses[name])}" for name in missing)
    others = f" (and {len(lacking) - 1} other input(s))" if len(lacking) > 1 else ""
    msg = (
        f"no {kind} {', '.join(map(repr, missing))}{others}; the mapping {source} reads {wanted}. "
        f"The {'tree' if info.container else 'file'} has: {', '.join(info.fields)}. "
        "Fix the names in the mapping's tables, or write those branches into the input"
    )
    raise IngestError(msg, path=info.path, tree=info.container)


@dataclass(frozen=True, kw_only=True)
class _Scan:
    """One input's events kept by ``[ingest] keep`` and the sum of all its generator weights."""

    kept: int
    sum_weights: float


@dataclass(frozen=True, kw_only=True)
class _Normalisation:
    events_per_weight: float
    sum_weights: float
    xsec_cm2: float | None
    exposure_scale: float


def _scan(f: EventFile, mapping: IngestMapping) -> _Scan:
    weight, keep = mapping.normalization.weight, mapping.ingest.keep
    n, rows = f.info.n_events, mapping.ingest.read_rows
    if weight is None and not keep:
        return _Scan(kept=n, sum_weights=float(n))
    names = sorted({*keep, *([weight] if weight else [])})
    kept, total = 0, 0.0
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        raw = f.read(names, start, stop)
        kept += int(when_mask(raw, keep, stop - start).sum())
        total += float(np.sum(raw[weight], dtype=np.float64)) if weight else stop - start
    return _Scan(kept=kept, sum_weights=total)


def _normalisation(
    files: Sequence[EventFile],
    scans: Sequence[_Scan],
    mapping: IngestMapping,
    exposure_scale: float,
) -> _Normalisation:
    norm = mapping.normalization
    sum_weights = sum(scan.sum_weights for scan in scans)
    xsec = _file_xsec(files) if norm.flux_averaged_xsec_cm2 == "file" else None
    try:
        per_weight = expected_events_per_weight(norm, sum_weights=sum_weights, xsec_cm2=xsec)
    except ValueError as err:
        raise IngestError(str(err), path=files[0].info.path) from None
    return _Normalisation(
        events_per_weight=per_weight * exposure_scale,
        sum_weights=sum_weights,
        xsec_cm2=xsec,
        exposure_scale=exposure_scale,
    )


def _file_xsec(files: Sequence[EventFile]) -> float | None:
    values = {f.info.flux_averaged_xsec_cm2 for f in files}
    if len(values) > 1:
        msg = f"the inputs record different flux-averaged cross sections {sorted(map(str, values))}; ingest them separately"
        raise IngestError(msg, path=files[0].info.path)
    return values.pop()


def _mapped_chunks(
    f: EventFile,
    mapping: IngestMapping,
    plans: Mapping[str, Any],
    fields: Sequence[str],
    first_id: int,
    norm: _Normalisation,
) -> Iterator[dict[str, np.ndarray]]:
    n, rows, keep = f.info.n_events, mapping.ingest.read_rows, mapping.ingest.keep
    next_id = first_id
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        raw = f.read(fields, start, stop)
        kept = stop - start
        kept_rows = None
        if keep:
            mask = when_mask(raw, keep, stop - start)
            raw, kept = {k: v[mask] for k, v in raw.items()}, int(mask.sum())
            kept_rows = np.flatnonzero(mask)
        try:
            chunk = map_chunk(
                mapping,
                plans,
                raw,
                kept,
                first_event_id=next_id,
                events_per_weight=norm.events_per_weight,
            )
        except (StoreError, ValueError) as err:
            detail = err.detail if isinstance(err, StoreError) else str(err)
            msg = f"events {start}..{stop - 1}: {detail}"
            raise IngestError(msg, path=f.info.path, tree=f.info.container) from None
        _check_values(chunk, start, stop, kept_rows, mapping, f)
        next_id += kept
        yield chunk


def _check_values(
    chunk: Mapping[str, np.ndarray],
    start: int,
    stop: int,
    rows: np.ndarray | None,
    mapping: IngestMapping,
    f: EventFile,
) -> None:
    """Refuse a mapped value its column may not hold (farm.store.values), naming the input row."""
    found = first_invalid(chunk, across=True)
    if found is None:
        return
    row = start + (found.position if rows is None else int(rows[found.position]))
    where = f"[columns.{found.column}]" if found.column in mapping.columns else "rules"
    msg = (
        f"events {start}..{stop - 1}: row {row} has {found.column} = {found.value}; it must be "
        f"{found.allowed}; nothing was written: fix the input or the mapping's {where}, or leave "
        "such events out with [ingest] keep"
    )
    raise IngestError(msg, path=f.info.path, tree=f.info.container)


class _Shards:
    """Cuts a stream of mapped chunks into the writer's shards and writes each once."""

    def __init__(self, writer: StoreWriter, on_shard: Callable[[int, int], None] | None) -> None:
        self.writer = writer
        self.on_shard = on_shard
        self.parts: list[dict[str, np.ndarray]] = []
        self.rows = 0
        self.index = 0

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        self.parts.append(chunk)
        self.rows += len(chunk["event_id"])
        while self.index < self.writer.n_shards:
            start, stop = self.writer.shard_range(self.index)
            if self.rows < stop - start:
                return
            self._write(stop - start)

    def finish(self) -> None:
        if self.rows or self.index != self.writer.n_shards:
            msg = f"{self.rows} events left after {self.index} of {self.writer.n_shards} shards: the inputs changed while being read"
            raise StoreError(msg, store=self.writer.path)

    def _write(self, rows: int) -> None:
        names = self.parts[0].keys()
        joined = {k: np.concatenate([p[k] for p in self.parts]) for k in names}
        self.writer.write_shard(self.index, {k: v[:rows] for k, v in joined.items()})
        rest = {k: v[rows:] for k, v in joined.items()}
        self.parts = [rest] if len(rest["event_id"]) else []
        self.rows -= rows
        self.index += 1
        if self.on_shard is not None:
            self.on_shard(self.writer.shard_range(self.index - 1)[1], self.writer.n_events)


# --- provenance ----------------------------------------------------------------------------------


def _attrs(
    mapping: IngestMapping,
    source: str,
    fmt: str,
    files: Sequence[EventFile],
    scans: Sequence[_Scan],
    norm: _Normalisation,
    exposure: float | None,
) -> dict[str, Any]:
    from_file = dict(files[0].info.generator)
    given = mapping.generator.model_dump(exclude_none=True)
    inputs, first = [], 0
    for f, scan in zip(files, scans, strict=True):
        inputs.append(
            {
                "path": str(f.info.path.resolve()),
                "format": fmt,
                "tree": f.info.container,
                "n_events": f.info.n_events,
                "dropped": f.info.n_events - scan.kept,
                "event_ids": [first, first + scan.kept],
                "checksum": file_checksum(f.info.path),
            }
        )
        first += scan.kept
    attrs: dict[str, Any] = {
        "source_family": "external",
        "sample": mapping.store.sample,
        "description": mapping.store.description,
        "exposure": _exposure(mapping, exposure),
        "generator": {**from_file, **given, "format": fmt},
        "ingest": {
            "mapping": mapping.model_dump(mode="json"),
            "mapping_file": None if source == "<mapping>" else str(Path(source).resolve()),
            "mapping_hash": config_hash(mapping),
            "checksum_algorithm": CHECKSUM_ALGORITHM,
            "inputs": inputs,
            "normalization": {
                "expected_events_per_weight": norm.events_per_weight,
                "sum_weights": norm.sum_weights,
                "flux_averaged_xsec_cm2": norm.xsec_cm2,
                "exposure_scale": norm.exposure_scale,
            },
        },
        "software_version": farm.__version__,
    }
    if mapping.target is not None:
        attrs["target"] = mapping.target.model_dump(mode="json", exclude_none=True)
    return attrs


def _exposure(mapping: IngestMapping, exposure: float | None) -> dict[str, Any]:
    """The store's exposure; with ``--exposure`` the running time scales along (same power)."""
    given = mapping.exposure
    value = given.value if exposure is None else exposure
    out: dict[str, Any] = {"value": value, "unit": given.unit}
    if given.unit == "seconds":
        out["seconds"] = value
    elif given.seconds is not None:
        out["seconds"] = given.seconds * (value / given.value)
    return out
