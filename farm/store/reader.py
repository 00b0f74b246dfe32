"""Open, read and verify an event store (docs/internals.md §2).

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
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import google_crc32c
import numpy as np

from farm.store import trust
from farm.store.checksum import shard_checksum
from farm.store.errors import ChecksumError, CorruptShardError, StoreError
from farm.store.schema import COLUMNS
from farm.store.validate import (
    check_column,
    check_file_sizes,
    check_layout_attrs,
    check_manifest,
    open_group,
)
from farm.store.values import validate_values

__all__ = ["EventStore", "ShardCheck", "validate_values"]


@dataclass(frozen=True, kw_only=True)
class ShardCheck:
    """Outcome of verifying one shard: recomputed checksum against the recorded one."""

    index: int
    ok: bool
    expected: str
    actual: str | None
    """``None`` when the shard could not be read at all."""
    error: str | None


def _listed(err: StoreError) -> str:
    """``err`` as a line of ``farm inspect --verify``: without the advice to run that command."""
    if err.hint and "farm inspect --verify" in err.hint:
        rebuild, (cls, detail, fields) = err.__reduce__()  # how the error pickles
        return str(rebuild(cls, detail, {**fields, "hint": ""}))  # type: ignore[operator]
    return str(err)


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
    _verified: dict[int, tuple[trust.FileStamp, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    """Shards whose checksum matched, with what their files were then (:func:`trust.stamp`)."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        columns: Sequence[str] | None = None,
        validate: bool = True,
        verify_checksums: bool = False,
        check_files: bool = True,
    ) -> EventStore:
        """Open a store after checking its metadata and file sizes (no data is read).

        Parameters
        ----------
        path
            The store directory.
        columns
            Columns that reads return by default (default: all).
        validate
            Check the values read against their columns' rules (:mod:`farm.store.values`): the
            columns of each read, and, with ``verify_checksums``, every column of a shard the
            first time it is verified (read anyway for its checksum).
        verify_checksums
            Before the first read of a shard, read all its columns and compare their checksum to
            the recorded one (raises :class:`ChecksumError`): a corrupt shard then never yields
            numbers. A shard is verified again only if one of its files changed since (inode,
            size, modification or status-change time). Costs one read of the shard at ≈1 GB/s,
            once per machine: a shard verified by an earlier process, its files unchanged since,
            is trusted (:mod:`farm.store.trust`). With ``validate``, a verified shard's values
            are checked once, when it is verified, not again on every read.
        check_files
            Check that every shard file exists with the size recorded at writing. ``False``
            leaves that to each read and to :meth:`verify`, which then reports every damaged
            shard instead of the first (``farm inspect --verify``).

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
        group, attrs = open_group(path)
        n_events, shard_rows, chunk_rows = check_layout_attrs(path, attrs)
        names = tuple(attrs["columns"])
        shard_files = {
            name: check_column(path, name, group, n_events, shard_rows, chunk_rows)
            for name in names
        }
        check_manifest(path, attrs["shards"], n_events, shard_rows, names)
        if check_files:
            check_file_sizes(path, attrs["shards"], shard_files)
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

    def column_range(self, name: str, *, selected: bool = False) -> tuple[float, float] | None:
        """``(min, max)`` of a float column's finite values (of the selected rows only, with
        ``selected``), from the ranges the writer recorded per shard; ``(inf, -inf)`` when there
        are none, ``None`` when a shard recorded no ranges (a store written before farm did)."""
        lo, hi = np.inf, -np.inf
        for shard in self.attrs["shards"]:
            entry = shard.get("ranges", {}).get(name) if isinstance(shard, dict) else None
            if not isinstance(entry, dict):
                return None
            span = entry.get("selected" if selected else "all")
            if span is not None:
                lo, hi = min(lo, float(span[0])), max(hi, float(span[1]))
        return lo, hi

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
            # a verified shard had every column's values checked when it was verified (its
            # files unchanged since): checking them again on every read cost a flux work item
            # as much as binning its events
            if self.validate and not self.verify_checksums:
                part = {name: out[name][lo - start : hi - start] for name in names}
                validate_values(part, store=self.path, shard=index, first_row=lo)
        return out

    def verify(self, shards: Sequence[int] | None = None) -> list[ShardCheck]:
        """Recompute the checksum of each shard (default: all) and compare to the recorded one;
        then check the values of each shard whose checksum matched.

        Every shard is checked, so the result lists every damaged one. Never raises for damaged
        data: a shard that cannot be read, whose checksum differs, or whose values break their
        column's rule (:mod:`farm.store.values`; a store written before farm checked values
        when writing) is a failed check whose ``error`` says why. The values of a shard whose
        checksum fails are never looked at.
        """
        indices = range(self.n_shards) if shards is None else shards
        checks = []
        for index in indices:
            self._shard_range(index)
            expected = self.shard_checksums[index]
            started = time.time_ns()
            try:
                signature = self._file_signature(index)
                data = self._read_shard_unvalidated(index, self.columns)
            except CorruptShardError as err:
                failed = ShardCheck(
                    index=index, ok=False, expected=expected, actual=None, error=_listed(err)
                )
                checks.append(failed)
                trust.forget(self.path, index, expected)
                continue
            actual = shard_checksum(data)
            mismatch = self._checksum_mismatch(index, actual)
            error = None if mismatch is None else _listed(mismatch)
            if error is None:
                try:
                    first_row = self._shard_range(index)[0]
                    validate_values(
                        data, store=self.path, shard=index, first_row=first_row, across=True
                    )
                except StoreError as err:
                    error = _listed(err)
            check = ShardCheck(
                index=index, ok=error is None, expected=expected, actual=actual, error=error
            )
            checks.append(check)
            if check.ok:  # its checksum matched and its values passed (checked here always)
                trust.record(
                    self.path, index, expected, signature, started_ns=started, values_checked=True
                )
            else:
                trust.forget(self.path, index, expected)
        return checks

    def trusted_shards(self) -> list[int]:
        """The shards a read would not verify again: verified on this machine before (with their
        values checked) and their files exactly as then (:mod:`farm.store.trust`)."""
        found = []
        for index, checksum in enumerate(self.shard_checksums):
            try:
                signature = self._file_signature(index)
            except (CorruptShardError, OSError):
                continue
            if trust.is_trusted(self.path, index, checksum, signature, values_checked=True):
                found.append(index)
        return found

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

    def _file_signature(self, index: int) -> tuple[trust.FileStamp, ...]:
        signature = []
        for name in self.columns:
            path = self._shard_files[name][index]
            try:
                signature.append(trust.stamp(path))
            except FileNotFoundError:
                msg = f"the shard file is missing ({path})"
                raise CorruptShardError(msg, store=self.path, shard=index, column=name) from None
        return tuple(signature)

    def _ensure_verified(self, index: int) -> None:
        """Recompute shard ``index``'s checksum unless its unchanged files were verified already;
        with ``validate``, check the values of every column of the shard too (read anyway).

        Columns are read one at a time as the checksum consumes them, so verifying holds one
        column of one shard in memory, not the whole shard. A checksum that differs is reported
        before any value: the values of a damaged shard are never judged. A shard that an
        earlier process verified, its files unchanged since, is trusted (:mod:`farm.store.trust`).
        """
        signature = self._file_signature(index)
        if self._verified.get(index) == signature:
            return
        checksum = self.shard_checksums[index]
        if trust.is_trusted(self.path, index, checksum, signature, values_checked=self.validate):
            self._verified[index] = signature
            return
        started = time.time_ns()
        lazy = _ColumnsOnDemand(self, index)
        failure: StoreError | None = self._checksum_mismatch(index, shard_checksum(lazy))
        if failure is None:
            failure = lazy.invalid  # judged only once the checksum matched
        if failure is not None:
            trust.forget(self.path, index, checksum)
            raise failure
        self._verified[index] = signature
        trust.record(
            self.path, index, checksum, signature, started_ns=started, values_checked=self.validate
        )

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
        self.invalid: StoreError | None = None
        """The first value that breaks its column's rule (with ``store.validate``)."""

    def __getitem__(self, name: str) -> np.ndarray:
        values = self._store._read_shard_unvalidated(self._index, (name,))[name]
        if self._store.validate and self.invalid is None:
            first_row = self._store._shard_range(self._index)[0]
            try:
                validate_values(
                    {name: values}, store=self._store.path, shard=self._index, first_row=first_row
                )
            except StoreError as err:
                self.invalid = err
        return values

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
