"""Test helpers that damage event stores the way the world does, past the writer's checks.

:class:`~farm.store.StoreWriter` refuses values a column may not hold, so a store holding them
must be made by hand: :func:`forge_values` writes values into a committed store's shard files
and then records the new checksums, as a store written by an earlier farm release (which did
not check values) or edited by hand would look: its checksums verify, its values do not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import zarr

from farm.store import EventStore, shard_checksum

__all__ = ["flip_byte", "forge_values", "swap_shard_files"]


def forge_values(store: Path, changes: Mapping[str, Mapping[int, object]]) -> set[int]:
    """Write ``{column: {row: value}}`` into ``store`` and re-record the touched shards'
    checksums and file sizes; return the touched shard indices."""
    touched: set[int] = set()
    meta = json.loads((store / "zarr.json").read_text())
    shard_rows = int(meta["attributes"]["shard_rows"])
    for column, rows in changes.items():
        array = zarr.open_array(store / column, mode="r+", zarr_format=3)
        array = array.with_config({"write_empty_chunks": True})
        values = array[:]
        raw_bytes = {}
        for row, value in rows.items():
            if values.dtype == np.bool_:
                raw_bytes[row] = int(value)  # any byte, as a damaged file holds: poked below
            else:
                values[row] = np.asarray(value).astype(values.dtype)
            touched.add(row // shard_rows)
        array[:] = values
        for row, byte in raw_bytes.items():
            _poke_byte(store, column, row, byte, shard_rows, int(meta["attributes"]["chunk_rows"]))
    rerecord(store, touched)
    return touched


def _poke_byte(
    store: Path, column: str, row: int, byte: int, shard_rows: int, chunk_rows: int
) -> None:
    """Write one raw byte of a 1-byte column (zarr would store any true value as 1)."""
    shard, local = divmod(row, shard_rows)
    path = store / column / "c" / str(shard)
    data = bytearray(path.read_bytes())
    chunks = shard_rows // chunk_rows
    index = np.frombuffer(bytes(data[-(16 * chunks + 4) : -4]), dtype="<u8").reshape(chunks, 2)
    chunk, within = divmod(local, chunk_rows)
    data[int(index[chunk, 0]) + within] = byte
    path.write_bytes(bytes(data))


def rerecord(store: Path, shards: set[int]) -> None:
    """Record the current checksum and file sizes of ``shards`` in the store's manifest."""
    meta_path = store / "zarr.json"
    meta = json.loads(meta_path.read_text())
    for index in sorted(shards):
        entry = meta["attributes"]["shards"][index]
        for name in entry["nbytes"]:
            entry["nbytes"][name] = (store / name / "c" / str(index)).stat().st_size
        meta_path.write_text(json.dumps(meta))
        raw = EventStore.open(store, validate=False)._read_shard_unvalidated(
            index, tuple(meta["attributes"]["columns"])
        )
        entry["checksum"] = shard_checksum(raw)
    meta_path.write_text(json.dumps(meta))


def swap_shard_files(store: Path, column: str, a: int, b: int) -> None:
    """Exchange the files of shards ``a`` and ``b`` of one column (same sizes: full shards)."""
    first, second = store / column / "c" / str(a), store / column / "c" / str(b)
    tmp = first.with_name("swap.tmp")
    first.rename(tmp)
    second.rename(first)
    tmp.rename(second)


def flip_byte(path: Path, offset: int) -> None:
    """Flip the lowest bit of the byte at ``offset`` of ``path``, in place (bit rot, a bad copy)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x01]))
