"""Open-time validation of an event store: metadata, layout, column dtypes, manifest, file sizes.

Cheap checks only (no data is read); :class:`farm.store.reader.EventStore` calls them on open so
that anything farm did not write, or cannot read, is refused with the store, shard and column named.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ShardingCodecIndexLocation
from zarr.errors import BaseZarrError

from farm.store.errors import CorruptShardError, SchemaError, StoreError
from farm.store.schema import COLUMNS, REQUIRED_COLUMNS, SCHEMA_VERSION, shard_ranges

__all__ = ["check_column", "check_file_sizes", "check_layout_attrs", "check_manifest", "open_group"]


def open_group(path: Path) -> tuple[zarr.Group, dict[str, Any]]:
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


def check_layout_attrs(path: Path, attrs: Mapping[str, Any]) -> tuple[int, int, int]:
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


def check_column(
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


def check_manifest(
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


def check_file_sizes(
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
