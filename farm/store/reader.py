"""Open, read and verify an event store (design.md §4).

:meth:`EventStore.open` checks the whole store cheaply (metadata and file sizes, no data) and
refuses anything farm did not write or cannot read. Data is then read straight from the shard
files into numpy: the store's columns use zarr's ``sharding_indexed`` codec with uncompressed
chunks, so a chunk's rows are one ``readinto`` at the offset the shard index gives. That reads as
fast as ``np.load`` (zarr's own path copies each chunk three times), and every failure — a
missing or truncated file, a damaged index, a missing chunk — raises
:class:`~farm.store.errors.CorruptShardError` where zarr would return fill values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import google_crc32c
import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ShardingCodecIndexLocation
from zarr.errors import BaseZarrError

from farm.store.checksum import shard_checksum
from farm.store.errors import ChecksumError, CorruptShardError, SchemaError, StoreError
from farm.store.schema import COLUMNS, REQUIRED_COLUMNS, SCHEMA_VERSION, shard_ranges

__all__ = ["EventStore", "ShardCheck", "validate_values"]

_NON_NEGATIVE_FINITE = ("enu_true", "w_nominal")
"""Columns whose values must be finite and >= 0 for any analysis to make sense."""


@dataclass(frozen=True, kw_only=True)
class ShardCheck:
    """Outcome of verifying one shard: recomputed checksum against the recorded one."""

    index: int
    ok: bool
    expected: str
    actual: str | None
    """``None`` when the shard could not be read at all."""
    error: str | None


def validate_values(
    columns: Mapping[str, np.ndarray],
    *,
    store: str | os.PathLike[str] = "<in memory>",
    shard: int | None = None,
    first_row: int = 0,
) -> None:
    """Check that ``enu_true`` and ``w_nominal``, where present, are finite and >= 0.

    Costs two vectorised reductions per column (``min >= 0`` rejects NaN, negatives and -inf;
    ``max < inf`` rejects +inf); the offending row is only searched for on failure.

    Raises
    ------
    StoreError
        Naming the column and the first bad row (``first_row`` + position in the array).
    """
    for name in _NON_NEGATIVE_FINITE:
        values = columns.get(name)
        if values is None or values.size == 0:
            continue
        if values.min() >= 0 and values.max() < np.inf:
            continue
        position = int(np.argmin((values >= 0) & (values < np.inf)))
        msg = f"row {first_row + position} has {name} = {values[position]}; it must be finite and >= 0"
        hint = "fix the generator or ingestion that wrote it, then regenerate the store with `farm generate`"
        raise StoreError(msg, store=store, shard=shard, column=name, hint=hint)


@dataclass(frozen=True, kw_only=True, eq=False)
class EventStore:
    """A validated, read-only event store. Build it with :meth:`open`; it pickles to workers."""

    path: Path
    attrs: dict[str, Any] = field(repr=False)
    """All group attributes: layout, shard manifest and the writer's provenance."""
    columns: tuple[str, ...]
    """Every column in the store."""
    default_columns: tuple[str, ...]
    """Columns returned when a read names none (``open(columns=...)``, else all)."""
    validate: bool
    """Whether reads run :func:`validate_values` on every shard."""
    _shard_files: dict[str, tuple[Path, ...]] = field(repr=False)
    verify_checksums: bool = False
    """Whether the first read of each shard recomputes its checksum (all columns) first."""
    _verified: dict[int, tuple[tuple[int, int, int], ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    """Shards whose checksum matched, with the (inode, size, mtime) of their files then."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        columns: Sequence[str] | None = None,
        validate: bool = True,
        verify_checksums: bool = False,
    ) -> EventStore:
        """Open a store after checking its metadata and file sizes (no data is read).

        Parameters
        ----------
        path
            The store directory.
        columns
            Columns that reads return by default (default: all).
        validate
            Run :func:`validate_values` on each shard read.
        verify_checksums
            Before the first read of a shard, read all its columns and compare their checksum to
            the recorded one (raises :class:`ChecksumError`): a corrupt shard then never yields
            numbers. A shard is verified again only if one of its files changed since (inode,
            size or modification time). Costs one read of the shard at ≈1 GB/s.

        Raises
        ------
        StoreError
            Not a farm store, or not committed.
        SchemaError
            Another schema version, a missing required column, a wrong dtype, length or layout.
        CorruptShardError
            A shard file is missing or has another size than the one recorded at writing.
        """
        path = Path(path)
        group, attrs = _open_group(path)
        n_events, shard_rows, chunk_rows = _check_layout_attrs(path, attrs)
        names = tuple(attrs["columns"])
        shard_files = {
            name: _check_column(path, name, group, n_events, shard_rows, chunk_rows)
            for name in names
        }
        _check_manifest(path, attrs["shards"], n_events, shard_rows, names)
        _check_file_sizes(path, attrs["shards"], shard_files)
        return cls(
            path=path,
            attrs=attrs,
            columns=names,
            default_columns=names if columns is None else _select(path, columns, names),
            validate=validate,
            _shard_files=shard_files,
            verify_checksums=verify_checksums,
        )

    # --- layout ------------------------------------------------------------------------------

    @property
    def n_events(self) -> int:
        return int(self.attrs["n_events"])

    @property
    def shard_rows(self) -> int:
        return int(self.attrs["shard_rows"])

    @property
    def chunk_rows(self) -> int:
        return int(self.attrs["chunk_rows"])

    @property
    def n_shards(self) -> int:
        return len(self.attrs["shards"])

    @property
    def shard_ranges(self) -> list[tuple[int, int]]:
        """Row range ``[start, stop)`` of every shard, in order."""
        return [(int(s["start"]), int(s["stop"])) for s in self.attrs["shards"]]

    @property
    def shard_checksums(self) -> list[str]:
        """Checksum recorded for every shard at writing (keys for checkpoints)."""
        return [str(s["checksum"]) for s in self.attrs["shards"]]

    # --- reading -----------------------------------------------------------------------------

    def read_shard(self, index: int, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All rows of shard ``index`` for ``columns`` (default: ``default_columns``)."""
        start, stop = self._shard_range(index)
        return self.read_columns(columns, start, stop)

    def iter_shards(
        self, columns: Sequence[str] | None = None, *, verify: bool = False
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Yield ``(index, columns)`` for every shard in order.

        With ``verify=True`` every column of each shard is read and its checksum compared to the
        recorded one before the shard is yielded (raises :class:`ChecksumError`).
        """
        names = self._selection(columns)
        for index in range(self.n_shards):
            if not verify:
                yield index, self.read_shard(index, names)
                continue
            data = self._read_shard_unvalidated(index, self.columns)
            mismatch = self._checksum_mismatch(index, shard_checksum(data))
            if mismatch is not None:
                raise mismatch
            selected = {name: data[name] for name in names}
            if self.validate:
                first_row = self._shard_range(index)[0]
                validate_values(selected, store=self.path, shard=index, first_row=first_row)
            yield index, selected

    def read_columns(
        self, columns: Sequence[str] | None, start: int, stop: int
    ) -> dict[str, np.ndarray]:
        """Rows ``[start, stop)`` of ``columns`` (default: ``default_columns``), across shards."""
        names = self._selection(columns)
        if not 0 <= start <= stop <= self.n_events:
            msg = f"row range [{start}, {stop}) is outside the store's [0, {self.n_events})"
            raise StoreError(msg, store=self.path, hint="ask for rows within n_events")
        out = {name: np.empty(stop - start, dtype=_file_dtype(name)) for name in names}
        for index in self._shards_overlapping(start, stop):
            if self.verify_checksums:
                self._ensure_verified(index)
            shard_start, shard_stop = self._shard_range(index)
            lo, hi = max(start, shard_start), min(stop, shard_stop)
            for name in names:
                target = out[name][lo - start : hi - start]
                self._read_rows_into(index, name, lo - shard_start, hi - shard_start, target)
            if self.validate:
                part = {name: out[name][lo - start : hi - start] for name in names}
                validate_values(part, store=self.path, shard=index, first_row=lo)
        return out

    def verify(self, shards: Sequence[int] | None = None) -> list[ShardCheck]:
        """Recompute the checksum of each shard (default: all) and compare to the recorded one.

        Never raises for damaged data: a shard that cannot be read is a failed check whose
        ``error`` says why.
        """
        indices = range(self.n_shards) if shards is None else shards
        checks = []
        for index in indices:
            self._shard_range(index)
            expected = self.shard_checksums[index]
            try:
                data = self._read_shard_unvalidated(index, self.columns)
            except CorruptShardError as err:
                failed = ShardCheck(
                    index=index, ok=False, expected=expected, actual=None, error=str(err)
                )
                checks.append(failed)
                continue
            actual = shard_checksum(data)
            mismatch = self._checksum_mismatch(index, actual)
            error = None if mismatch is None else str(mismatch)
            check = ShardCheck(
                index=index, ok=error is None, expected=expected, actual=actual, error=error
            )
            checks.append(check)
        return checks

    # --- internals -----------------------------------------------------------------------

    def _selection(self, columns: Sequence[str] | None) -> tuple[str, ...]:
        if columns is None:
            return self.default_columns
        return _select(self.path, columns, self.columns)

    def _shard_range(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.n_shards:
            msg = f"no shard {index}: the store has shards 0..{self.n_shards - 1}"
            hint = "ask for an index below n_shards"
            raise StoreError(msg, store=self.path, shard=index, hint=hint)
        # open() checked that the manifest follows this arithmetic
        start = index * self.shard_rows
        return start, min(start + self.shard_rows, self.n_events)

    def _file_signature(self, index: int) -> tuple[tuple[int, int, int], ...]:
        signature = []
        for name in self.columns:
            path = self._shard_files[name][index]
            try:
                st = path.stat()
            except FileNotFoundError:
                msg = f"the shard file is missing ({path})"
                raise CorruptShardError(msg, store=self.path, shard=index, column=name) from None
            signature.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(signature)

    def _ensure_verified(self, index: int) -> None:
        """Recompute shard ``index``'s checksum unless its unchanged files were verified already.

        Columns are read one at a time as the checksum consumes them, so verifying holds one
        column of one shard in memory, not the whole shard.
        """
        signature = self._file_signature(index)
        if self._verified.get(index) == signature:
            return
        lazy = _ColumnsOnDemand(self, index)
        mismatch = self._checksum_mismatch(index, shard_checksum(lazy))
        if mismatch is not None:
            raise mismatch
        self._verified[index] = signature

    def _checksum_mismatch(self, index: int, actual: str) -> ChecksumError | None:
        expected = self.shard_checksums[index]
        if actual == expected:
            return None
        msg = f"checksum {actual} differs from the recorded {expected}: the data changed since it was written"
        return ChecksumError(msg, store=self.path, shard=index)

    def _shards_overlapping(self, start: int, stop: int) -> range:
        if start == stop:
            return range(0)
        return range(start // self.shard_rows, (stop - 1) // self.shard_rows + 1)

    def _read_shard_unvalidated(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        start, stop = self._shard_range(index)
        out = {}
        for name in names:
            out[name] = np.empty(stop - start, dtype=_file_dtype(name))
            self._read_rows_into(index, name, 0, stop - start, out[name])
        return out

    def _read_rows_into(self, index: int, name: str, lo: int, hi: int, out: np.ndarray) -> None:
        """Read rows ``[lo, hi)`` of shard ``index`` (shard-local) of one column into ``out``."""
        path = self._shard_files[name][index]
        expected_size = int(self.attrs["shards"][index]["nbytes"][name])

        def corrupt(detail: str) -> CorruptShardError:
            return CorruptShardError(
                f"{detail} ({path})", store=self.path, shard=index, column=name
            )

        try:
            file = open(path, "rb", buffering=0)  # closed by the with below
        except FileNotFoundError:
            raise corrupt("the shard file is missing") from None
        with file:
            size = os.fstat(file.fileno()).st_size
            if size != expected_size:
                raise corrupt(
                    f"the shard file has {size} bytes, {expected_size} were written: it is truncated or was replaced"
                )
            table = _read_shard_index(file, size, self.shard_rows // self.chunk_rows, corrupt)
            chunk_rows = self.chunk_rows
            chunk_bytes = chunk_rows * out.itemsize
            data_end = size - _index_nbytes(len(table))
            for chunk in range(lo // chunk_rows, -(-hi // chunk_rows)):
                offset, nbytes = (int(v) for v in table[chunk])
                if nbytes != chunk_bytes or offset + nbytes > data_end:
                    raise corrupt(
                        f"the shard index has no valid entry for chunk {chunk} (offset {offset}, {nbytes} bytes)"
                    )
                first = max(lo, chunk * chunk_rows)
                last = min(hi, (chunk + 1) * chunk_rows)
                position = offset + (first - chunk * chunk_rows) * out.itemsize
                _readinto_exact(file, position, out[first - lo : last - lo], corrupt)


class _ColumnsOnDemand(Mapping[str, np.ndarray]):
    """All columns of one shard, each read from its file only when asked for."""

    def __init__(self, store: EventStore, index: int) -> None:
        self._store = store
        self._index = index

    def __getitem__(self, name: str) -> np.ndarray:
        return self._store._read_shard_unvalidated(self._index, (name,))[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.columns)

    def __len__(self) -> int:
        return len(self._store.columns)


def _select(path: Path, columns: Sequence[str], available: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(columns, str):
        msg = f"columns must be a sequence of names, got the string {columns!r}"
        raise StoreError(msg, store=path, hint=f"pass [{columns!r}]")
    for name in columns:
        if name not in available:
            msg = f"column {name!r} is not in this store, which holds {list(available)}"
            raise StoreError(msg, store=path, column=name, hint="ask for one of those")
    return tuple(columns)


_Corrupt = Callable[[str], CorruptShardError]
"""Builds the error for a damaged shard file from a description of the damage."""


def _file_dtype(name: str) -> np.dtype:
    # shard files hold little-endian values; on little-endian machines this is the native dtype
    return COLUMNS[name].dtype.newbyteorder("<")


def _index_nbytes(chunks_per_shard: int) -> int:
    # zarr v3 sharding_indexed: (offset, nbytes) uint64 pairs, little-endian, then a crc32c
    return 16 * chunks_per_shard + 4


def _read_shard_index(
    file: BinaryIO, size: int, chunks_per_shard: int, corrupt: _Corrupt
) -> np.ndarray:
    nbytes = _index_nbytes(chunks_per_shard)
    if size < nbytes:
        raise corrupt(f"the shard file has {size} bytes, fewer than its index needs")
    file.seek(size - nbytes)
    raw = file.read(nbytes)
    if len(raw) != nbytes:
        raise corrupt("the shard index could not be read")
    if google_crc32c.value(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
        raise corrupt("the shard index fails its crc32c check")
    return np.frombuffer(raw, dtype="<u8", count=2 * chunks_per_shard).reshape(chunks_per_shard, 2)


def _readinto_exact(file: BinaryIO, position: int, out: np.ndarray, corrupt: _Corrupt) -> None:
    view = memoryview(out.view(np.uint8))
    file.seek(position)
    done = 0
    while done < len(view):
        n = file.readinto(view[done:])
        if not n:
            raise corrupt(f"the shard file ends at byte {position + done}, inside chunk data")
        done += n


# --- validation on open --------------------------------------------------------------------


def _open_group(path: Path) -> tuple[zarr.Group, dict[str, Any]]:
    not_farm = "regenerate it with `farm generate`, or ingest it into farm's schema"
    if not path.exists():
        raise StoreError("no event store at this path", store=path, hint="check the path")
    try:
        group = zarr.open_group(path, mode="r", zarr_format=3)
        attrs = dict(group.attrs.asdict())
    except (OSError, ValueError, KeyError, TypeError, BaseZarrError) as err:
        msg = f"not a farm event store: not a zarr v3 group ({type(err).__name__}: {err})"
        raise StoreError(msg, store=path, hint=not_farm) from None
    if "farm_schema_version" not in attrs:
        msg = "not a farm event store: the zarr group has no farm_schema_version attribute"
        raise StoreError(msg, store=path, hint=not_farm)
    version = attrs["farm_schema_version"]
    if version != SCHEMA_VERSION:
        msg = f"the store has schema version {version!r}; this farm reads version {SCHEMA_VERSION}"
        hint = "regenerate the store with `farm generate`, or read it with the farm release that wrote it"
        raise SchemaError(msg, store=path, hint=hint)
    if "shards" not in attrs:
        msg = "the store was never committed (no shard manifest): its writer failed or is still running"
        raise StoreError(msg, store=path, hint="regenerate the store with `farm generate`")
    return group, attrs


def _check_layout_attrs(path: Path, attrs: Mapping[str, Any]) -> tuple[int, int, int]:
    for key in ("n_events", "shard_rows", "chunk_rows"):
        if not isinstance(attrs.get(key), int) or isinstance(attrs.get(key), bool):
            raise SchemaError(
                f"attribute {key!r} is {attrs.get(key)!r}, not an integer", store=path
            )
    n_events, shard_rows, chunk_rows = attrs["n_events"], attrs["shard_rows"], attrs["chunk_rows"]
    if n_events < 0 or chunk_rows < 1 or shard_rows < 1 or shard_rows % chunk_rows:
        msg = (
            f"invalid layout n_events={n_events}, shard_rows={shard_rows}, chunk_rows={chunk_rows}"
        )
        raise SchemaError(msg, store=path)
    columns = attrs.get("columns")
    if not isinstance(columns, dict):
        raise SchemaError("attribute 'columns' is missing or not a mapping", store=path)
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            msg = f"required column {name!r} is missing; every store holds {list(REQUIRED_COLUMNS)}"
            raise SchemaError(msg, store=path, column=name)
    for name in columns:
        if name not in COLUMNS:
            msg = f"unknown column {name!r}; this farm knows {', '.join(COLUMNS)}"
            raise SchemaError(msg, store=path, column=name)
    return n_events, shard_rows, chunk_rows


def _check_column(
    path: Path,
    name: str,
    group: zarr.Group,
    n_events: int,
    shard_rows: int,
    chunk_rows: int,
) -> tuple[Path, ...]:
    """Check one column's zarr metadata against the schema and layout; return its shard files."""
    try:
        array = group[name]
    except KeyError:
        msg = "the column is listed in the attributes but has no array"
        raise SchemaError(msg, store=path, column=name) from None
    except (OSError, ValueError, TypeError, BaseZarrError) as err:
        msg = f"the column's zarr metadata cannot be read ({type(err).__name__}: {err})"
        raise SchemaError(msg, store=path, column=name) from None
    if not isinstance(array, zarr.Array):
        raise SchemaError("the column is a zarr group, not an array", store=path, column=name)
    expected = COLUMNS[name].dtype
    if array.dtype != expected:
        msg = f"the column has dtype {array.dtype}, the schema stores {expected}"
        raise SchemaError(msg, store=path, column=name)
    if array.shape != (n_events,):
        msg = f"the column has shape {array.shape}, the store holds {n_events} events"
        raise SchemaError(msg, store=path, column=name)
    meta = array.metadata
    codecs = getattr(meta, "codecs", ())
    sharding = codecs[0] if len(codecs) == 1 else None
    if not (
        isinstance(sharding, ShardingCodec)
        and meta.chunk_grid.chunk_shape == (shard_rows,)
        and sharding.chunk_shape == (chunk_rows,)
        and len(sharding.codecs) == 1
        and isinstance(sharding.codecs[0], BytesCodec)
        and sharding.codecs[0].endian in (None, BytesCodec().endian)
        and tuple(type(c) for c in sharding.index_codecs) == (BytesCodec, Crc32cCodec)
        and sharding.index_location == ShardingCodecIndexLocation.end
    ):
        msg = (
            f"the column's zarr layout (shards {meta.chunk_grid.chunk_shape}, codecs {codecs}) is not "
            f"the uncompressed sharded layout of {shard_rows}-row shards and {chunk_rows}-row chunks "
            "that farm writes"
        )
        raise SchemaError(msg, store=path, column=name)
    n_shards = -(-n_events // shard_rows)
    return tuple(path / name / meta.encode_chunk_key((i,)) for i in range(n_shards))


def _check_manifest(
    path: Path, manifest: Any, n_events: int, shard_rows: int, names: tuple[str, ...]
) -> None:
    """The shard manifest must cover ``[0, n_events)`` contiguously, shard by shard."""
    expected = shard_ranges(n_events, shard_rows)
    hint = "the store's metadata is damaged; regenerate the store with `farm generate`"
    if not isinstance(manifest, list) or len(manifest) != len(expected):
        count = len(manifest) if isinstance(manifest, list) else manifest
        msg = f"the shard manifest lists {count} shards; {n_events} events in {shard_rows}-row shards need {len(expected)}"
        raise SchemaError(msg, store=path, hint=hint)
    for index, ((start, stop), entry) in enumerate(zip(expected, manifest, strict=True)):
        if not isinstance(entry, dict):
            raise SchemaError(
                f"manifest entry {entry!r} is not a mapping", store=path, shard=index, hint=hint
            )
        found = (entry.get("index"), entry.get("start"), entry.get("stop"))
        if found != (index, start, stop):
            msg = f"the manifest gives (index, start, stop) = {found}, expected {(index, start, stop)}: shards must cover [0, {n_events}) in order"
            raise SchemaError(msg, store=path, shard=index, hint=hint)
        nbytes = entry.get("nbytes")
        if not isinstance(entry.get("checksum"), str) or not isinstance(nbytes, dict):
            raise SchemaError(
                "the manifest entry has no checksum or file sizes",
                store=path,
                shard=index,
                hint=hint,
            )
        for name in names:
            if not isinstance(nbytes.get(name), int):
                raise SchemaError(
                    "the manifest records no file size",
                    store=path,
                    shard=index,
                    column=name,
                    hint=hint,
                )


def _check_file_sizes(
    path: Path, manifest: list[dict[str, Any]], shard_files: Mapping[str, tuple[Path, ...]]
) -> None:
    for name, files in shard_files.items():
        for index, file in enumerate(files):
            expected = manifest[index]["nbytes"][name]
            try:
                size = file.stat().st_size
            except FileNotFoundError:
                raise CorruptShardError(
                    f"the shard file is missing ({file})", store=path, shard=index, column=name
                ) from None
            if size != expected:
                msg = f"the shard file has {size} bytes, {expected} were written: it is truncated or was replaced ({file})"
                raise CorruptShardError(msg, store=path, shard=index, column=name)
