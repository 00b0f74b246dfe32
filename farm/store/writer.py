"""Write an event store shard by shard, then publish it atomically (docs/internals.md §2).

A store is built in a temporary sibling directory ``.{name}.tmp-<host>-<pid>-<random>`` (named
after its writer, so :mod:`farm.stale` can tell one a killed writer left) and renamed into place
by :meth:`StoreWriter.commit`, so a reader finds a complete store or none. Each shard is written
by exactly one call to :meth:`StoreWriter.write_shard`, which covers exactly the shard's rows:
zarr rewrites a whole shard on any partial write, so two writers of one shard would race.
Shards are independent: ``write_shard`` may run for different indices in different threads or
processes (a ``StoreWriter`` pickles), each leaving a small JSON sidecar with its checksum that
``commit`` gathers into the group attributes.

Columns are stored uncompressed (a ``bytes`` codec inside ``sharding_indexed``): reading from
page cache is then one ``readinto`` per chunk, as fast as ``np.load``. Blosc lz4 or zstd would
save 35–40% of the bytes of a CEvNS sample, but decompressing alone takes as long as that read
(``benchmarks/bench_store_read.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import zarr

from farm import __version__
from farm.store.checksum import CHECKSUM_ALGORITHM, shard_checksum
from farm.store.errors import SchemaError, StoreError
from farm.store.schema import (
    COLUMNS,
    DEFAULT_SHARD_ROWS,
    REQUIRED_COLUMNS,
    SCHEMA_VERSION,
    default_chunk_rows,
    shard_ranges,
)
from farm.store.values import column_ranges, validate_values

__all__ = ["LAYOUT_ATTRS", "StoreWriteError", "StoreWriter", "is_farm_store"]


class StoreWriteError(OSError):
    """The file system refused a write of the store (full, read-only, …); nothing was published."""


def _write_error(path: Path, err: OSError, step: str) -> StoreWriteError:
    from farm.oserrors import describe_os_error

    detail = describe_os_error(err, path, action=step)
    failure = StoreWriteError(
        f"{detail}; nothing was published at {path} (its temporary folder is removed)"
    )
    failure.errno = err.errno
    return failure

LAYOUT_ATTRS = (
    "farm_schema_version",
    "farm_version",
    "n_events",
    "shard_rows",
    "chunk_rows",
    "columns",
    "checksum_algorithm",
    "shards",
)
"""Group attributes that farm owns; callers' ``attrs`` may not use these keys."""

_SIDECAR_DIR = "_farm"


def is_farm_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a zarr group whose attributes mark it as written by farm."""
    try:
        meta = json.loads((Path(path) / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "farm_schema_version" in meta.get("attributes", {})


@dataclass(frozen=True, kw_only=True)
class StoreWriter:
    """A store being written. Build it with :meth:`create`; it pickles to other processes.

    Use as a context manager to commit on success and abort on an exception::

        with StoreWriter.create(path, n_events=n, columns=cols, attrs=attrs) as writer:
            for index, (start, stop) in enumerate(writer.shard_ranges):
                writer.write_shard(index, generate(start, stop))
    """

    path: Path
    """Where the store is published."""
    tmp_path: Path
    """The temporary store that shards are written into."""
    n_events: int
    columns: tuple[str, ...]
    shard_rows: int
    chunk_rows: int
    overwrite: bool = False

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        n_events: int,
        columns: Sequence[str],
        shard_rows: int = DEFAULT_SHARD_ROWS,
        chunk_rows: int | None = None,
        attrs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> StoreWriter:
        """Create the temporary store: group attributes and empty column arrays.

        Parameters
        ----------
        path
            Final location of the store (a directory, conventionally ``*.zarr``).
        n_events
            Number of rows of every column.
        columns
            Column names from ``farm.store.schema.COLUMNS``; must include every required one.
        shard_rows, chunk_rows
            Rows per shard and per chunk; ``shard_rows`` must be a multiple of ``chunk_rows``
            (default: the largest divisor of ``shard_rows`` up to 2**20).
        attrs
            JSON-serialisable provenance: source family, detector, target, exposure, generator
            configuration and seed, nominal flux, … Stored as group attributes.
        overwrite
            Replace an existing farm store at ``path`` at commit (only once the new one is
            complete). Without it an existing ``path`` is refused.
        """
        path = Path(path)
        names = _check_columns(path, columns)
        chunk_rows = default_chunk_rows(shard_rows) if chunk_rows is None else chunk_rows
        _check_layout(path, n_events, shard_rows, chunk_rows)
        _check_target(path, overwrite=overwrite)
        group_attrs = _group_attrs(path, names, n_events, shard_rows, chunk_rows, attrs or {})

        from farm.stale import temp_token

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _write_error(path, err, "create the folder of the event store") from err
        tmp_path = path.with_name(f".{path.name}.tmp-{temp_token()}")
        writer = cls(
            path=path,
            tmp_path=tmp_path,
            n_events=n_events,
            columns=names,
            shard_rows=shard_rows,
            chunk_rows=chunk_rows,
            overwrite=overwrite,
        )
        try:
            group = zarr.open_group(tmp_path, mode="w-", zarr_format=3, attributes=group_attrs)
            for name in names:
                group.create_array(
                    name,
                    shape=(n_events,),
                    dtype=COLUMNS[name].dtype,
                    chunks=(chunk_rows,),
                    shards=(shard_rows,),
                    filters=None,
                    compressors=None,
                    fill_value=COLUMNS[name].dtype.type(0),
                    dimension_names=("event",),
                )
            (tmp_path / _SIDECAR_DIR).mkdir()
        except OSError as err:
            writer.abort()
            raise _write_error(path, err, "create the event store") from err
        except BaseException:
            writer.abort()
            raise
        return writer

    @property
    def n_shards(self) -> int:
        return len(self.shard_ranges)

    @property
    def shard_ranges(self) -> list[tuple[int, int]]:
        """Row range ``[start, stop)`` of every shard, in order."""
        return shard_ranges(self.n_events, self.shard_rows)

    def shard_range(self, index: int) -> tuple[int, int]:
        """Row range ``[start, stop)`` of shard ``index``."""
        n_shards = -(-self.n_events // self.shard_rows)
        if not 0 <= index < n_shards:
            msg = f"no shard {index}: the store has shards 0..{n_shards - 1}"
            raise StoreError(msg, store=self.path, shard=index)
        start = index * self.shard_rows
        return start, min(start + self.shard_rows, self.n_events)

    def write_shard(self, index: int, columns: Mapping[str, np.ndarray]) -> str:
        """Validate and write all columns of one shard; return its checksum.

        ``columns`` must hold exactly the store's columns, each 1-D, of the schema's exact dtype
        and of the shard's length; ``event_id`` must increase strictly. Writing a shard again
        (e.g. after a lost worker) replaces it.
        """
        start, stop = self.shard_range(index)
        self._require_open()
        values = self._checked_values(index, columns, stop - start)
        checksum = shard_checksum(values)
        nbytes = {}
        try:
            for name in self.columns:
                array = zarr.open_array(self.tmp_path / name, mode="r+", zarr_format=3)
                array = array.with_config({"write_empty_chunks": True})
                array[start:stop] = values[name]
                shard_file = self.tmp_path / name / array.metadata.encode_chunk_key((index,))
                nbytes[name] = shard_file.stat().st_size
            record = {"index": index, "start": start, "stop": stop, "checksum": checksum}
            ranges = column_ranges(values)
            sidecar = {**record, "nbytes": nbytes, "ranges": ranges}
            _write_json_atomic(self._sidecar(index), sidecar)
        except OSError as err:
            raise _write_error(self.path, err, f"write shard {index} of the event store") from err
        return checksum

    def commit(self) -> Path:
        """Record the shard manifest and publish the store at ``path``; return ``path``.

        Fails, leaving the temporary store in place, if a shard was not written. With
        ``overwrite`` the old store is renamed aside, the new one renamed in, then the old one
        deleted: a reader finds the old or the new store (or, for the instant between the two
        renames, none), never a mixture.
        """
        self._require_open()
        _check_target(self.path, overwrite=self.overwrite)
        manifest = self._gather_manifest()
        try:
            group = zarr.open_group(self.tmp_path, mode="r+", zarr_format=3)
            group.update_attributes({"shards": manifest})
            shutil.rmtree(self.tmp_path / _SIDECAR_DIR)
            self._publish()
        except OSError as err:
            raise _write_error(self.path, err, "commit the event store") from err
        return self.path

    def abort(self) -> None:
        """Discard the temporary store (a no-op once committed or aborted)."""
        shutil.rmtree(self.tmp_path, ignore_errors=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
            return
        if not self.tmp_path.exists():
            return  # committed or aborted explicitly inside the block
        try:
            self.commit()
        except BaseException:
            self.abort()
            raise

    # --- internals -----------------------------------------------------------------------

    def _checked_values(
        self, index: int, columns: Mapping[str, np.ndarray], rows: int
    ) -> dict[str, np.ndarray]:
        for name in self.columns:
            if name not in columns:
                msg = f"write_shard got no values for column {name!r}; every column of the store is written together"
                raise SchemaError(
                    msg,
                    store=self.path,
                    shard=index,
                    column=name,
                    hint=f"pass all of {list(self.columns)}",
                )
        for name in columns:
            if name not in self.columns:
                msg = f"column {name!r} is not in this store, which holds {list(self.columns)}"
                raise SchemaError(
                    msg,
                    store=self.path,
                    shard=index,
                    column=name,
                    hint="declare it in StoreWriter.create(columns=...)",
                )
        values = {name: np.asarray(columns[name]) for name in self.columns}
        for name, array in values.items():
            _check_column_values(self.path, index, name, array, rows)
        start = self.shard_range(index)[0]
        _check_increasing(self.path, index, values["event_id"], start)
        hint = (
            "nothing was written: fix the generator or ingestion that produced this value "
            "(farm.store.values says what each column may hold), then write the store again"
        )
        validate_values(
            values, store=self.path, shard=index, first_row=start, across=True, hint=hint
        )
        return values

    def _require_open(self) -> None:
        if not self.tmp_path.is_dir():
            msg = f"the temporary store {self.tmp_path} is gone"
            raise StoreError(msg, store=self.path, hint="it was committed or aborted already")

    def _sidecar(self, index: int) -> Path:
        return self.tmp_path / _SIDECAR_DIR / f"shard-{index:05d}.json"

    def _gather_manifest(self) -> list[dict[str, Any]]:
        missing = [i for i in range(self.n_shards) if not self._sidecar(i).is_file()]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", …" if len(missing) > 10 else "")
            msg = f"{len(missing)} of {self.n_shards} shards were never written ({shown})"
            hint = "call write_shard for them before commit(), or abort()"
            raise StoreError(msg, store=self.path, shard=missing[0], hint=hint)
        return [json.loads(self._sidecar(i).read_text()) for i in range(self.n_shards)]

    def _publish(self) -> None:
        if not (self.path.exists() or self.path.is_symlink()):
            os.rename(self.tmp_path, self.path)
            return
        from farm.stale import temp_token

        old = self.path.with_name(f".{self.path.name}.old-{temp_token()}")
        os.rename(self.path, old)
        try:
            os.rename(self.tmp_path, self.path)
        except BaseException:
            os.rename(old, self.path)
            raise
        shutil.rmtree(old)


def _check_columns(path: Path, columns: Sequence[str]) -> tuple[str, ...]:
    if isinstance(columns, str):
        msg = f"columns must be a sequence of names, got the string {columns!r}"
        raise StoreError(msg, store=path)
    for name in columns:
        if name not in COLUMNS:
            msg = f"unknown column {name!r}; known columns: {', '.join(COLUMNS)}"
            raise SchemaError(
                msg, store=path, column=name, hint="add it to farm.store.schema first"
            )
    if len(set(columns)) != len(columns):
        duplicated = sorted({n for n in columns if list(columns).count(n) > 1})
        msg = f"columns are listed more than once: {duplicated}"
        raise SchemaError(msg, store=path, column=duplicated[0], hint="list each column once")
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            msg = f"required column {name!r} is missing; every store holds {list(REQUIRED_COLUMNS)}"
            raise SchemaError(msg, store=path, column=name, hint="add it to columns")
    return tuple(columns)


def _check_layout(path: Path, n_events: int, shard_rows: int, chunk_rows: int) -> None:
    layout = {"n_events": n_events, "shard_rows": shard_rows, "chunk_rows": chunk_rows}
    for key, value in layout.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            msg = f"{key} must be an integer, got {value!r}"
            raise StoreError(msg, store=path)
    if n_events < 0 or shard_rows < 1 or chunk_rows < 1 or shard_rows % chunk_rows:
        msg = (
            f"need n_events >= 0 and shard_rows a positive multiple of chunk_rows, got "
            f"n_events={n_events}, shard_rows={shard_rows}, chunk_rows={chunk_rows}"
        )
        raise StoreError(msg, store=path)


def _check_target(path: Path, *, overwrite: bool) -> None:
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        msg = "the path already exists"
        hint = "pass overwrite=True (`farm generate --overwrite`) to replace it once the new store is complete, or choose another path"
        raise StoreError(msg, store=path, hint=hint)
    if not is_farm_store(path):
        msg = "refusing to overwrite: the path exists and is not a farm event store"
        raise StoreError(msg, store=path, hint="remove it yourself or choose another path")


def _group_attrs(
    path: Path,
    names: tuple[str, ...],
    n_events: int,
    shard_rows: int,
    chunk_rows: int,
    attrs: Mapping[str, Any],
) -> dict[str, Any]:
    reserved = sorted(set(attrs) & set(LAYOUT_ATTRS))
    if reserved:
        msg = f"attrs may not set {reserved}: farm writes these itself"
        raise StoreError(msg, store=path, hint="rename those keys")
    for key, value in attrs.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as err:
            msg = f"attribute {key!r} is not JSON-serialisable ({err})"
            raise StoreError(
                msg, store=path, hint="convert numpy scalars and arrays with .tolist()"
            ) from None
    return {
        "farm_schema_version": SCHEMA_VERSION,
        "farm_version": __version__,
        "n_events": int(n_events),
        "shard_rows": int(shard_rows),
        "chunk_rows": int(chunk_rows),
        "checksum_algorithm": CHECKSUM_ALGORITHM,
        "columns": {
            name: {
                "dtype": COLUMNS[name].dtype.name,
                "unit": COLUMNS[name].unit,
                "description": COLUMNS[name].description,
            }
            for name in names
        },
        **attrs,
    }


def _check_column_values(path: Path, index: int, name: str, array: np.ndarray, rows: int) -> None:
    expected = COLUMNS[name].dtype
    if array.dtype != expected:
        msg = f"values have dtype {array.dtype}, the schema stores {expected}"
        hint = (
            f"convert explicitly (values.astype({expected.name!r})) if that conversion is intended"
        )
        raise SchemaError(msg, store=path, shard=index, column=name, hint=hint)
    if array.ndim != 1 or array.shape[0] != rows:
        msg = f"values have shape {array.shape}, the shard holds {rows} rows"
        hint = "write exactly the rows of StoreWriter.shard_range(index)"
        raise StoreError(msg, store=path, shard=index, column=name, hint=hint)


def _check_increasing(path: Path, index: int, event_id: np.ndarray, start: int) -> None:
    not_increasing = event_id[1:] <= event_id[:-1]
    if not_increasing.any():
        row = start + 1 + int(np.argmax(not_increasing))
        local = row - start
        msg = (
            f"event_id must increase strictly within a shard, but row {row} has "
            f"{event_id[local]} after {event_id[local - 1]}"
        )
        raise StoreError(
            msg,
            store=path,
            shard=index,
            column="event_id",
            hint="sort the shard by event_id and make ids unique",
        )


def _write_json_atomic(path: Path, record: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
