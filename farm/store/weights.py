"""Weight sets: precomputed per-event universe weights stored beside an event store's columns.

A weight set is a 2-D column, events × universes (N × U, float32 or float64), kept under
``STORE/weights/NAME/`` as a zarr v3 array sharded along events exactly like the store's columns
(same shard and chunk rows, uncompressed), with a manifest ``weightset.json``: its name, mode
(multisim or unisim), universes, dtype, where it came from (file and checksum), a BLAKE2b-128
checksum per shard, the counts of unphysical weights it holds (negative, NaN, ±inf), and the
checksums of the store shards it was made for. Adding one (:func:`write_weight_set`) never
rewrites the store: it is built in a temporary sibling folder and renamed into place, and the
store's own checksums and binding are untouched. A weight set of another store (or of this
store before it was written again) is refused by its shard checksums.

Reading (:class:`WeightSet`) goes straight from the shard files into numpy, as for the columns
(:mod:`farm.store.reader`): the rows of a block are one ``readinto`` per chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from farm import __version__
from farm.store.errors import ChecksumError, CorruptShardError, StoreError
from farm.store.reader import (
    EventStore,
    _index_nbytes,
    _read_shard_index,
    _readinto_exact,
)

__all__ = [
    "WEIGHTS_DIR",
    "WeightSet",
    "WeightSetWriter",
    "weight_set_names",
    "weights_key",
    "with_weight_sets",
]

WEIGHTS_DIR = "weights"
_MANIFEST = "weightset.json"
_DTYPES = ("float32", "float64")


def weight_set_names(store: str | os.PathLike[str]) -> list[str]:
    """Names of the weight sets a store holds (sorted)."""
    folder = Path(store) / WEIGHTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / _MANIFEST).is_file())


def _shard_digest(values: np.ndarray) -> str:
    little = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    return hashlib.blake2b(little.reshape(-1).view(np.uint8), digest_size=16).hexdigest()


@dataclass(kw_only=True)
class WeightSetWriter:
    """Writes one weight set shard by shard into a temporary folder; :meth:`commit` publishes it.

    Use as a context manager (commit on success, discard on an exception)::

        with WeightSetWriter.create(store, "genie_multisim", universes=500) as writer:
            for index, (start, stop) in enumerate(store.shard_ranges):
                writer.write_shard(index, weights[start:stop])
    """

    store: EventStore
    name: str
    universes: int
    dtype: np.dtype
    path: Path
    tmp_path: Path
    manifest: dict[str, Any]
    overwrite: bool = False
    _checksums: dict[int, str] = field(default_factory=dict)
    _unphysical: dict[str, int] = field(default_factory=lambda: {"negative": 0, "nan": 0, "inf": 0})

    @classmethod
    def create(
        cls,
        store: EventStore,
        name: str,
        *,
        universes: int,
        dtype: str = "float32",
        mode: str = "multisim",
        source: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> WeightSetWriter:
        if dtype not in _DTYPES:
            msg = f"weight set {name!r}: dtype {dtype!r}; allowed: {', '.join(_DTYPES)}"
            raise StoreError(msg, store=store.path, hint="give float32 or float64 weights")
        if not name or not all(c.isalnum() or c in "_.-" for c in name) or name.startswith("."):
            msg = f"weight set name {name!r}: use letters, digits, _, . and - (not starting with .)"
            raise StoreError(msg, store=store.path, hint="choose another --name")
        if universes < 1:
            msg = f"weight set {name!r} holds no universes (U = {universes})"
            raise StoreError(
                msg, store=store.path, hint="give a weight array of shape (events, U >= 1)"
            )
        path = Path(store.path) / WEIGHTS_DIR / name
        if path.exists() and not overwrite:
            msg = f"the store already holds a weight set {name!r}"
            hint = "choose another --name, or pass --overwrite to replace it"
            raise StoreError(msg, store=store.path, hint=hint)
        from farm.stale import temp_token

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = path.with_name(f".{name}.tmp-{temp_token()}")
        zarr.create_array(
            store=str(tmp_path),
            shape=(store.n_events, universes),
            dtype=dtype,
            chunks=(store.chunk_rows, universes),
            shards=(store.shard_rows, universes),
            filters=None,
            compressors=None,
            fill_value=0.0,
            dimension_names=("event", "universe"),
            zarr_format=3,
        )
        manifest = {
            "name": name,
            "mode": mode,
            "universes": universes,
            "dtype": dtype,
            "n_events": store.n_events,
            "shard_rows": store.shard_rows,
            "chunk_rows": store.chunk_rows,
            "store_checksums": list(store.shard_checksums),
            "source": dict(source or {}),
            "farm_version": __version__,
        }
        return cls(
            store=store,
            name=name,
            universes=universes,
            dtype=np.dtype(dtype),
            path=path,
            tmp_path=tmp_path,
            manifest=manifest,
            overwrite=overwrite,
        )

    def write_shard(self, index: int, values: np.ndarray) -> None:
        """The weights of every event of store shard ``index``: (rows, U), any float dtype
        (converted to the set's dtype)."""
        start, stop = self.store.shard_ranges[index]
        values = np.asarray(values)
        if values.shape != (stop - start, self.universes):
            msg = f"weight set {self.name!r}: shard {index} needs ({stop - start}, {self.universes}) weights, got {values.shape}"
            raise StoreError(
                msg, store=self.store.path, shard=index, hint="give one row of U weights per event"
            )
        values = values.astype(self.dtype, copy=False)
        finite = np.isfinite(values)
        self._unphysical["nan"] += int(np.isnan(values).sum())
        self._unphysical["inf"] += int((~finite).sum() - np.isnan(values).sum())
        self._unphysical["negative"] += int((values < 0).sum())
        array = zarr.open_array(str(self.tmp_path), mode="r+", zarr_format=3)
        array = array.with_config({"write_empty_chunks": True})
        array[start:stop, :] = values
        self._checksums[index] = _shard_digest(values)

    def commit(self) -> Path:
        missing = [i for i in range(self.store.n_shards) if i not in self._checksums]
        if missing:
            msg = f"weight set {self.name!r}: shards {missing[:10]} were never written"
            raise StoreError(msg, store=self.store.path, hint="write every shard before commit")
        manifest = {
            **self.manifest,
            "shard_checksums": [self._checksums[i] for i in range(self.store.n_shards)],
            "unphysical": dict(self._unphysical),
        }
        (self.tmp_path / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        if self.path.exists():
            old = self.path.with_name(f".{self.name}.old-{os.getpid()}")
            os.rename(self.path, old)
            os.rename(self.tmp_path, self.path)
            shutil.rmtree(old)
        else:
            os.rename(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self.tmp_path, ignore_errors=True)

    def __enter__(self) -> WeightSetWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.commit()
        except BaseException:
            self.abort()
            raise


@dataclass(frozen=True, kw_only=True, eq=False)
class WeightSet:
    """A weight set opened for reading (its manifest checked against the store)."""

    store: Path
    name: str
    manifest: dict[str, Any]
    shard_files: tuple[Path, ...]

    @classmethod
    def open(cls, store: EventStore, name: str) -> WeightSet:
        """Open ``name``; a StoreError says it is missing or belongs to other events."""
        path = Path(store.path) / WEIGHTS_DIR / name
        if not (path / _MANIFEST).is_file():
            held = ", ".join(weight_set_names(store.path)) or "none"
            msg = f"no weight set {name!r} (the store holds: {held})"
            hint = f"attach it with `farm weights add {store.path} --name {name} FILE`"
            raise StoreError(msg, store=store.path, hint=hint)
        manifest = json.loads((path / _MANIFEST).read_text())
        if manifest.get("store_checksums") != list(store.shard_checksums):
            msg = f"weight set {name!r} was made for other events (the store's shard checksums differ from those it recorded)"
            hint = f"attach the weights again: `farm weights add {store.path} --name {name} --overwrite FILE`"
            raise StoreError(msg, store=store.path, hint=hint)
        array = zarr.open_array(str(path), mode="r", zarr_format=3)
        files = tuple(path / array.metadata.encode_chunk_key((i, 0)) for i in range(store.n_shards))
        return cls(store=Path(store.path), name=name, manifest=manifest, shard_files=files)

    @property
    def universes(self) -> int:
        return int(self.manifest["universes"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest["dtype"]).newbyteorder("<")

    @property
    def mode(self) -> str:
        return str(self.manifest["mode"])

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """(stop − start, U) weights of rows [start, stop) of the store."""
        shard_rows, chunk_rows = int(self.manifest["shard_rows"]), int(self.manifest["chunk_rows"])
        out = np.empty((stop - start, self.universes), dtype=self.dtype)
        for index in range(start // shard_rows, -(-stop // shard_rows)):
            lo, hi = max(start, index * shard_rows), min(stop, (index + 1) * shard_rows)
            if lo < hi:
                self._read_into(
                    index,
                    lo - index * shard_rows,
                    hi - index * shard_rows,
                    chunk_rows,
                    out[lo - start : hi - start],
                )
        return out

    def _read_into(self, index: int, lo: int, hi: int, chunk_rows: int, out: np.ndarray) -> None:
        path = self.shard_files[index]

        def corrupt(detail: str) -> CorruptShardError:
            return CorruptShardError(
                f"weight set {self.name!r}: {detail} ({path})", store=self.store, shard=index
            )

        try:
            file = open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise corrupt("the shard file is missing") from None
        with file:
            size = os.fstat(file.fileno()).st_size
            per_shard = int(self.manifest["shard_rows"]) // chunk_rows
            table = _read_shard_index(file, size, per_shard, corrupt)
            row_bytes = self.universes * out.itemsize
            data_end = size - _index_nbytes(len(table))
            for chunk in range(lo // chunk_rows, -(-hi // chunk_rows)):
                offset, nbytes = (int(v) for v in table[chunk])
                if nbytes != chunk_rows * row_bytes or offset + nbytes > data_end:
                    raise corrupt(f"the shard index has no valid entry for chunk {chunk}")
                first, last = max(lo, chunk * chunk_rows), min(hi, (chunk + 1) * chunk_rows)
                position = offset + (first - chunk * chunk_rows) * row_bytes
                # 1-D: a read returns bytes, and a 2-D memoryview would count rows
                _readinto_exact(file, position, out[first - lo : last - lo].reshape(-1), corrupt)

    def verify(self) -> list[tuple[int, bool, str | None]]:
        """(shard, ok, error) for every shard: its checksum recomputed from the file."""
        results = []
        shard_rows = int(self.manifest["shard_rows"])
        n = int(self.manifest["n_events"])
        for index, expected in enumerate(self.manifest["shard_checksums"]):
            start, stop = index * shard_rows, min((index + 1) * shard_rows, n)
            try:
                actual = _shard_digest(self.read_rows(start, stop))
            except CorruptShardError as err:
                results.append((index, False, str(err)))
                continue
            ok = actual == expected
            error = (
                None
                if ok
                else str(
                    ChecksumError(
                        f"weight set {self.name!r}: checksum {actual} differs from the recorded {expected}",
                        store=self.store,
                        shard=index,
                    )
                )
            )
            results.append((index, ok, error))
        return results


def weights_key(name: str) -> str:
    """The key under which a block's weights of set ``name`` travel with its columns."""
    return f"weights:{name}"


def with_weight_sets(
    blocks: Iterator[tuple[int, dict[str, np.ndarray]]],
    store: EventStore,
    names: Sequence[str],
    block_rows: int,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """The blocks of :func:`farm.store.blocks.iter_blocks`, each with the (rows, U) weights of
    the sets ``names`` added under :func:`weights_key` (nothing added when ``names`` is empty)."""
    sets = {name: WeightSet.open(store, name) for name in names}
    for block, cols in blocks:
        if sets:
            start = block * block_rows
            stop = start + next(iter(cols.values())).shape[0]
            for name, ws in sets.items():
                cols[weights_key(name)] = ws.read_rows(start, stop)
        yield block, cols
