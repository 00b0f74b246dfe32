"""Attach precomputed universe weights to an event store (``farm weights add``, ``[[weights]]``).

Sources:

- a **friend file** keyed by event_id: ``.npz`` with ``event_id`` (n,) and ``weights`` (n, U),
  or ``.parquet`` with an ``event_id`` column and a ``weights`` column of fixed-size lists
  (pyarrow; a list per event, as reweighting tools write them). Every event of the store must
  appear exactly once, in any order; several files are concatenated (e.g. one per input file);
- at ingest, a **branch** of the gst/ROOT input holding an array per event (MicroBooNE's
  ``weightsGenie``/``weightsFlux`` ``std::vector``), or the named **event weights** of a
  NuHepMC file whose names start with a prefix (``GenRunInfo.weight_names``: ``CV``,
  ``genie_0``, ``genie_1``, …), read for the events ``[ingest] keep`` kept.

The weights are written into the store as a 2-D sharded column with its own checksums
(:mod:`farm.store.weights`); the store itself is not rewritten.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from farm.store.errors import StoreError
from farm.store.reader import EventStore
from farm.store.weights import WeightSetWriter

__all__ = ["add_weight_set", "attach_from_mapping", "read_friend"]


def _checksum(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        while block := file.read(1 << 23):
            digest.update(block)
    return digest.hexdigest()


def read_friend(
    path: str | os.PathLike[str], *, column: str = "weights"
) -> tuple[np.ndarray, np.ndarray]:
    """(event_id (n,), weights (n, U)) of one friend file (npz or parquet)."""
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: weight file not found; give an .npz (event_id, {column}) or a .parquet file"
        raise FileNotFoundError(msg)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("event_id", column) if k not in data.files]
            if missing:
                msg = f"{path}: no array(s) {', '.join(missing)}; it holds {', '.join(data.files)}"
                raise ValueError(msg)
            return np.asarray(data["event_id"]), np.asarray(data[column])
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            msg = "reading parquet weight files needs pyarrow: pip install pyarrow"
            raise ImportError(msg) from None
        table = pq.read_table(path, columns=["event_id", column])
        ids = table.column("event_id").to_numpy()
        lists = table.column(column).combine_chunks()
        flat = np.asarray(lists.flatten().to_numpy(zero_copy_only=False))
        if len(ids) and flat.size % len(ids):
            msg = f"{path}: the rows of {column!r} do not all hold the same number of weights"
            raise ValueError(msg)
        return ids, flat.reshape(len(ids), -1) if len(ids) else flat.reshape(0, 0)
    msg = f"{path}: a weight file is .npz or .parquet (got {path.suffix or 'no suffix'})"
    raise ValueError(msg)


def add_weight_set(
    store_path: str | os.PathLike[str],
    name: str,
    files: Sequence[str | os.PathLike[str]],
    *,
    mode: str = "multisim",
    dtype: str | None = None,
    column: str = "weights",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Attach the weights of friend ``files`` to the store as weight set ``name``; return its
    manifest.

    Raises
    ------
    StoreError
        An event of the store without weights, an event_id the store does not have or listed
        twice, weights of another number of universes across files, or an existing set of that
        name without ``overwrite``.
    """
    store = EventStore.open(store_path)
    ids_store = store.read_columns(["event_id"], 0, store.n_events)["event_id"]
    parts = [read_friend(f, column=column) for f in files]
    if not parts:
        raise StoreError(
            "give at least one weight file",
            store=store.path,
            hint="farm weights add STORE --name NAME FILE",
        )
    widths = {w.shape[1] if w.ndim == 2 else -1 for _, w in parts}
    if len(widths) != 1 or -1 in widths:
        msg = f"the weight files hold (events, U) arrays of different widths {sorted(widths)}"
        raise StoreError(msg, store=store.path, hint="give every file the same universes")
    ids = np.concatenate([np.asarray(i, dtype=np.uint64) for i, _ in parts])
    weights = np.concatenate([w for _, w in parts])
    rows = _rows_of(ids, ids_store, store)
    dtype = dtype or ("float64" if weights.dtype == np.float64 else "float32")
    source = {
        "files": [{"path": str(Path(f).resolve()), "checksum": _checksum(Path(f))} for f in files],
        "keyed_by": "event_id",
    }
    ordered = np.empty_like(weights)
    ordered[rows] = weights
    with WeightSetWriter.create(
        store,
        name,
        universes=weights.shape[1],
        dtype=dtype,
        mode=mode,
        source=source,
        overwrite=overwrite,
    ) as writer:
        for index, (start, stop) in enumerate(store.shard_ranges):
            writer.write_shard(index, ordered[start:stop])
    return writer.manifest | {"unphysical": dict(writer._unphysical)}


def _rows_of(ids: np.ndarray, store_ids: np.ndarray, store: EventStore) -> np.ndarray:
    """The store row of each friend event_id; refuses missing, unknown and repeated ids."""
    order = np.argsort(store_ids, kind="stable")
    position = np.searchsorted(store_ids, ids, sorter=order)
    position = np.clip(position, 0, store_ids.size - 1)
    rows = order[position]
    unknown = store_ids[rows] != ids
    if unknown.any():
        msg = f"{int(unknown.sum())} weight row(s) have event_ids the store does not hold (the first: {ids[np.argmax(unknown)]})"
        raise StoreError(
            msg,
            store=store.path,
            hint="key the weights by the store's event_id (farm inspect shows the range)",
        )
    counts = np.bincount(rows, minlength=store_ids.size)
    if (counts > 1).any():
        first = int(store_ids[np.argmax(counts > 1)])
        msg = f"event_id {first} has weights more than once"
        raise StoreError(msg, store=store.path, hint="give each event's weights once")
    if (counts == 0).any():
        first = int(store_ids[np.argmax(counts == 0)])
        msg = f"{int((counts == 0).sum())} event(s) of the store have no weights (the first: event_id {first})"
        raise StoreError(msg, store=store.path, hint="give weights for every event of the store")
    return rows


def attach_from_mapping(
    store_path: str | os.PathLike[str],
    section: Any,
    inputs: Sequence[Path],
    fmt: str,
    mapping: Any,
) -> dict[str, Any]:
    """The ``[[weights]]`` of an ingest mapping: from a gst branch or NuHepMC named event weights
    of the inputs (the events ``[ingest] keep`` kept, in the store's order), or a friend file."""
    if section.file is not None:
        return add_weight_set(
            store_path, section.name, [section.file], mode=section.mode, dtype=section.dtype
        )
    name = section.branch if fmt == "gst" else section.hepmc3_prefix
    if name is None:
        how = "branch = NAME" if fmt == "gst" else "hepmc3_prefix = NAME"
        msg = f"[[weights]] {section.name!r}: a {fmt} input gives its weights by {how}"
        raise StoreError(msg, store=store_path, hint="or give file = PATH (a friend file)")
    from farm.ingest.gst import GstFile
    from farm.ingest.hepmc3 import HepMC3File
    from farm.ingest.kernels import when_mask

    store = EventStore.open(store_path)
    keep = mapping.ingest.keep
    blocks = []
    for path in inputs:
        opened = GstFile.open(path, mapping.ingest.tree) if fmt == "gst" else HepMC3File.open(path)
        with opened as f:
            n, rows = f.info.n_events, mapping.ingest.read_rows
            for start in range(0, n, rows):
                stop = min(start + rows, n)
                values = f.read_array(name, start, stop)
                if keep:
                    values = values[
                        when_mask(f.read(sorted(keep), start, stop), keep, stop - start)
                    ]
                blocks.append(values)
    weights = np.concatenate(blocks)
    if weights.shape[0] != store.n_events:
        msg = f"[[weights]] {section.name!r}: {weights.shape[0]} rows of weights for {store.n_events} events"
        raise StoreError(msg, store=store.path, hint="the branch must hold one array per event")
    if section.universes is not None and weights.shape[1] != section.universes:
        msg = f"[[weights]] {section.name!r}: the branch holds {weights.shape[1]} weights per event, the mapping says {section.universes}"
        raise StoreError(msg, store=store.path, hint="fix [[weights]] universes")
    key = "branch" if fmt == "gst" else "hepmc3_prefix"
    source = {"files": [{"path": str(p.resolve())} for p in inputs], key: name}
    with WeightSetWriter.create(
        store,
        section.name,
        universes=weights.shape[1],
        dtype=section.dtype,
        mode=section.mode,
        source=source,
    ) as writer:
        for index, (start, stop) in enumerate(store.shard_ranges):
            writer.write_shard(index, weights[start:stop])
    return writer.manifest
