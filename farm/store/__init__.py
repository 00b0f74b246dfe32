"""Event stores: one sharded zarr v3 group per sample (docs/internals.md §2).

Write with :class:`StoreWriter` (shard by shard, published atomically), read with
:class:`EventStore` (validated on open, shard files read straight into numpy).
"""

from __future__ import annotations

from farm.store.checksum import shard_checksum
from farm.store.errors import ChecksumError, CorruptShardError, SchemaError, StoreError
from farm.store.reader import EventStore, ShardCheck, validate_values
from farm.store.schema import (
    COLUMNS,
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SHARD_ROWS,
    REQUIRED_COLUMNS,
    SCHEMA_VERSION,
    Channel,
    ColumnSpec,
)
from farm.store.writer import StoreWriter, is_farm_store

__all__ = [
    "COLUMNS",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_SHARD_ROWS",
    "REQUIRED_COLUMNS",
    "SCHEMA_VERSION",
    "Channel",
    "ChecksumError",
    "ColumnSpec",
    "CorruptShardError",
    "EventStore",
    "SchemaError",
    "ShardCheck",
    "StoreError",
    "StoreWriter",
    "is_farm_store",
    "shard_checksum",
    "validate_values",
]
