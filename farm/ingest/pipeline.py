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

from farm.config import ConfigError
from farm.flux.files import FluxFileError, read_flux_file
from farm.flux.model import Flux
from farm.flux.record import flux_record, write_universes
from farm.ingest.columns import map_chunk, plan_columns, store_columns
from farm.ingest.gst import GstFile
from farm.ingest.hepmc3 import HepMC3File
from farm.ingest.kernels import when_mask
from farm.ingest.mapping import IngestMapping, load_mapping
from farm.ingest.normalise import FileXsec, Normalisation, NormalisationError, normalise
from farm.ingest.provenance import exposure_record, store_attrs
from farm.ingest.scan import Scan, check_targets, flavor_names, nuclei_of, scan, target_fields
from farm.ingest.source import EventFile, IngestError
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
    if len(paths) > np.iinfo(np.uint16).max + 1:
        msg = f"{len(paths)} input files: one store takes at most 65 536; ingest them in parts"
        raise ConfigError(msg)
    fmt = _resolve_format(format, mapping, paths, source)
    exposure_scale = 1.0 if exposure is None else exposure / mapping.exposure.value
    if not overwrite and Path(out).exists():  # said before reading the inputs, not after
        hint = "pass overwrite=True (`farm ingest --overwrite`) or choose another path"
        raise StoreError("the path already exists", store=out, hint=hint)

    with ExitStack() as stack:
        files = [stack.enter_context(_open(fmt, p, mapping)) for p in paths]
        fields = _check_fields(files, mapping, source)
        plans = plan_columns(mapping, files[0].info.field_units, source=source)
        _check_weight_sources(mapping, files, fmt)
        targets = target_fields(mapping, files[0].info.fields, str(paths[0]))
        fields = sorted({*fields, *targets})
        scans = [scan(f, mapping, plans, targets) for f in files]
        by_target = check_targets(mapping, scans, [str(p) for p in paths])
        flux = _flux(mapping, source, exposure_scale, exposure)
        norm = _normalisation(files, scans, mapping, flux, source)
        n_events = sum(s.kept for s in scans)
        if n_events == 0:
            msg = "no events to ingest: the inputs hold none, or [ingest] keep drops them all"
            raise IngestError(msg, path=paths[0])
        record, universes = (None, None) if flux is None else flux_record(flux)
        attrs = store_attrs(
            mapping,
            source,
            fmt,
            files,
            scans,
            norm,
            exposure_scale=exposure_scale,
            exposure=exposure_record(mapping, exposure),
            events_by_target=by_target,
            flux=record,
        )
        factor = _Factor(norm=norm, exposure_scale=exposure_scale, target_fields=targets)
        with StoreWriter.create(
            out,
            n_events=n_events,
            columns=store_columns(mapping),
            shard_rows=_shard_rows(n_events, shard_rows),
            attrs=attrs,
            overwrite=overwrite,
        ) as writer:
            if universes is not None:
                write_universes(writer.tmp_path, universes)
            shards = _Shards(writer, on_shard)
            first_id = 0
            for index, (f, s) in enumerate(zip(files, scans, strict=True)):
                for chunk in _mapped_chunks(f, mapping, plans, fields, first_id, factor, index):
                    shards.add(chunk)
                first_id += s.kept
            shards.finish()
    if mapping.weights:
        from farm.weights.attach import attach_from_mapping

        for weights in mapping.weights:
            attach_from_mapping(out, weights, paths, fmt, mapping)
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
class _Factor:
    """Expected events per unit of generator weight: one factor, or one per target nucleus."""

    norm: Normalisation
    exposure_scale: float
    target_fields: tuple[str, ...]

    def of(self, raw: Mapping[str, np.ndarray], n: int) -> float | np.ndarray:
        if not self.norm.per_target:
            return self.norm.events_per_weight * self.exposure_scale
        z, a = nuclei_of(raw, self.target_fields)
        factor = np.zeros(n)
        for (zz, aa), k in self.norm.per_target.items():
            factor[(z == zz) & (a == aa)] = k * self.exposure_scale
        return factor


def _check_weight_sources(mapping: IngestMapping, files: Sequence[EventFile], fmt: str) -> None:
    """Refuse, before anything is written, ``[[weights]]`` branches the inputs lack."""
    for section in mapping.weights:
        if fmt == "gst" and section.branch is not None:
            lacking = [f for f in files if section.branch not in f.info.fields]
            if lacking:
                info = lacking[0].info
                msg = f"[[weights]] {section.name!r}: no branch {section.branch!r}; the tree has: {', '.join(info.fields)}"
                raise IngestError(msg, path=info.path, tree=info.container)


def _flux(
    mapping: IngestMapping, source: str, exposure_scale: float, exposure: float | None
) -> Flux | None:
    """The sample's flux over the (possibly rescaled) exposure, from ``[flux]`` (a relative
    path is relative to the mapping file)."""
    if mapping.flux is None:
        return None
    section = mapping.flux
    if source != "<mapping>" and not Path(section.file).is_absolute():
        section = section.model_copy(update={"file": str(Path(source).parent / section.file)})
    try:
        flux = read_flux_file(section, mapping.exposure.model_dump(), where="[flux]")
    except (FluxFileError, ValueError) as err:
        raise ConfigError(str(err)) from None
    if exposure_scale == 1.0:
        return flux
    return flux.scaled(exposure_scale, exposure_record(mapping, exposure))


def _normalisation(
    files: Sequence[EventFile],
    scans: Sequence[Scan],
    mapping: IngestMapping,
    flux: Flux | None,
    source: str,
) -> Normalisation:
    by_target: dict[tuple[int, int], float] = {}
    for s in scans:
        for key, w in s.sum_weights_by_target.items():
            by_target[key] = by_target.get(key, 0.0) + w
    recorded = {
        (f.info.flux_averaged_xsec, f.info.xsec_unit, f.info.xsec_target_scale) for f in files
    }
    if len(recorded) > 1 and mapping.normalization.flux_averaged_xsec_cm2 == "file":
        msg = f"the inputs record different flux-averaged cross sections {sorted(map(str, recorded))}; ingest them separately"
        raise IngestError(msg, path=files[0].info.path)
    value, unit, scale = next(iter(recorded))
    unscaled = flux
    if flux is not None and flux.exposure.get("value") != mapping.exposure.value:
        factor = mapping.exposure.value / float(flux.exposure["value"])
        unscaled = flux.scaled(factor, mapping.exposure.model_dump())
    try:
        return normalise(
            mapping.normalization,
            mapping.target,
            sum_weights=sum(s.sum_weights for s in scans),
            sum_weights_by_target=by_target,
            file_xsec=FileXsec(value=value, unit=unit, target_scale=scale),
            flux=unscaled,
            flavors=flavor_names(list(scans)),
        )
    except NormalisationError as err:
        raise IngestError(f"{source}: {err}", path=files[0].info.path) from None


def _mapped_chunks(
    f: EventFile,
    mapping: IngestMapping,
    plans: Mapping[str, Any],
    fields: Sequence[str],
    first_id: int,
    factor: _Factor,
    file_index: int,
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
                events_per_weight=factor.of(raw, kept),
                source_file=file_index,
                source_entries=start + (np.arange(kept) if kept_rows is None else kept_rows),
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
