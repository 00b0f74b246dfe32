"""Attach precomputed universe weights to an event store (``farm weights add``, ``[[weights]]``).

Sources:

- a **friend file** keyed by event_id: ``.npz`` with ``event_id`` (n,) and ``weights`` (n, U),
  or ``.parquet`` with an ``event_id`` column and a ``weights`` column of fixed-size lists
  (pyarrow; a list per event, as reweighting tools write them). Every event of the store must
  appear exactly once, in any order; several files are concatenated (e.g. one per input file);
- or keyed by **input entry** (``key = "entry"``): ``entry`` (n,), the event's 0-based entry in
  its input file, and ``input`` (n,), that file's index in the order given to ingest (optional
  for a single input) — the numbering a reweighting tool run on the input files uses; rows for
  entries ``[ingest] keep`` dropped are skipped and counted;
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
    path: str | os.PathLike[str], *, column: str = "weights", key: str = "event_id"
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(keys (n,), weights (n, U), input-file index (n,) or None) of one friend file (npz or
    parquet). ``key`` is ``event_id`` (the store's) or ``entry`` (the event's entry in its input
    file, with an optional ``input`` array: its input file's index, in the order given to
    ingest)."""
    path = Path(path)
    if key not in _KEYS:
        msg = f"key {key!r}: weights are keyed by {' or '.join(_KEYS)}"
        raise ValueError(msg)
    if not path.is_file():
        msg = f"{path}: weight file not found; give an .npz ({key}, {column}) or a .parquet file"
        raise FileNotFoundError(msg)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (key, column) if k not in data.files]
            if missing:
                msg = f"{path}: no array(s) {', '.join(missing)}; it holds {', '.join(data.files)}"
                raise ValueError(msg)
            files = np.asarray(data["input"]) if key == "entry" and "input" in data.files else None
            return np.asarray(data[key]), np.asarray(data[column]), files
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            msg = "reading parquet weight files needs pyarrow: pip install pyarrow"
            raise ImportError(msg) from None
        names = pq.read_schema(path).names
        missing = [k for k in (key, column) if k not in names]
        if missing:
            msg = f"{path}: no column(s) {', '.join(missing)}; it holds {', '.join(names)}"
            raise ValueError(msg)
        with_file = key == "entry" and "input" in names
        table = pq.read_table(path, columns=[key, column, *(["input"] if with_file else [])])
        ids = table.column(key).to_numpy()
        files = table.column("input").to_numpy() if with_file else None
        lists = table.column(column).combine_chunks()
        flat = np.asarray(lists.flatten().to_numpy(zero_copy_only=False))
        if len(ids) and flat.size % len(ids):
            msg = f"{path}: the rows of {column!r} do not all hold the same number of weights"
            raise ValueError(msg)
        return ids, flat.reshape(len(ids), -1) if len(ids) else flat.reshape(0, 0), files
    msg = f"{path}: a weight file is .npz or .parquet (got {path.suffix or 'no suffix'})"
    raise ValueError(msg)


_KEYS = ("event_id", "entry")
_ENTRY_BITS = 48
"""A (file, entry) key is file · 2⁴⁸ + entry: 281 trillion entries per input file."""


def add_weight_set(
    store_path: str | os.PathLike[str],
    name: str,
    files: Sequence[str | os.PathLike[str]],
    *,
    mode: str = "multisim",
    dtype: str | None = None,
    column: str = "weights",
    overwrite: bool = False,
    key: str = "event_id",
) -> dict[str, Any]:
    """Attach the weights of friend ``files`` to the store as weight set ``name``; return its
    manifest.

    ``key = "entry"`` finds each event by its entry in its input file (an ingested store records
    ``source_file`` and ``source_entry``), as a reweighting tool run on the input files numbers
    them: rows for entries the store does not hold (events ``[ingest] keep`` dropped) are
    skipped and counted (``source.rows_not_in_store``).

    Raises
    ------
    StoreError
        An event of the store without weights, a key the store does not have (event_id only) or
        listed twice, weights of another number of universes across files, entries for a store
        that records none, or an existing set of that name without ``overwrite``.
    """
    store = EventStore.open(store_path)
    parts = [read_friend(f, column=column, key=key) for f in files]
    if not parts:
        raise StoreError(
            "give at least one weight file",
            store=store.path,
            hint="farm weights add STORE --name NAME FILE",
        )
    widths = {w.shape[1] if w.ndim == 2 else -1 for _, w, _ in parts}
    if len(widths) != 1 or -1 in widths:
        msg = f"the weight files hold (events, U) arrays of different widths {sorted(widths)}"
        raise StoreError(msg, store=store.path, hint="give every file the same universes")
    weights = np.concatenate([w for _, w, _ in parts])
    source: dict[str, Any] = {
        "files": [{"path": str(Path(f).resolve()), "checksum": _checksum(Path(f))} for f in files],
        "keyed_by": key,
    }
    if key == "entry":
        ids, ids_store = _entry_keys(parts, files, store)
        rows, found = _rows_of(ids, ids_store, store, what="input entry", skip_unknown=True)
        weights = weights[found]
        source["rows_not_in_store"] = int(found.size - np.count_nonzero(found))
    else:
        ids = np.concatenate([np.asarray(i, dtype=np.uint64) for i, _, _ in parts])
        ids_store = store.read_columns(["event_id"], 0, store.n_events)["event_id"]
        rows, _ = _rows_of(ids, ids_store, store, what="event_id")
    dtype = dtype or ("float64" if weights.dtype == np.float64 else "float32")
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


def _entry_keys(
    parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    files: Sequence[str | os.PathLike[str]],
    store: EventStore,
) -> tuple[np.ndarray, np.ndarray]:
    """(file · 2⁴⁸ + entry) of every friend row and of every store event."""
    if "source_entry" not in store.columns or "source_file" not in store.columns:
        msg = (
            "the store records no input entries (it was generated, or ingested by an earlier "
            "farm, which did not record source_file and source_entry)"
        )
        hint = "key the weights by event_id (--key event_id), or ingest the inputs again"
        raise StoreError(msg, store=store.path, hint=hint)
    cols = store.read_columns(["source_file", "source_entry"], 0, store.n_events)
    store_keys = (cols["source_file"].astype(np.uint64) << np.uint64(_ENTRY_BITS)) | cols[
        "source_entry"
    ].astype(np.uint64)
    inputs = int(cols["source_file"].max()) + 1 if store.n_events else 1
    keys = []
    for (entries, _, file_index), path in zip(parts, files, strict=True):
        entries = np.asarray(entries)
        if entries.size and (entries.min() < 0 or entries.max() >= 1 << _ENTRY_BITS):
            msg = f"{path}: entries must be whole numbers in [0, 2^48)"
            raise StoreError(msg, store=store.path, hint="give each event's 0-based entry number")
        if file_index is None:
            if inputs > 1:
                msg = (
                    f"{path}: the store was ingested from {inputs} input files, and the weight "
                    "file says only the entry"
                )
                hint = "add an `input` array: each row's input file, 0-based, in ingest order"
                raise StoreError(msg, store=store.path, hint=hint)
            file_index = np.zeros(entries.size, dtype=np.uint64)
        file_index = np.asarray(file_index)
        if file_index.size and (file_index.min() < 0 or file_index.max() >= inputs):
            msg = (
                f"{path}: file indices must be in [0, {inputs}) for this store's {inputs} input(s)"
            )
            raise StoreError(msg, store=store.path, hint="number the inputs in ingest order")
        keys.append(
            (file_index.astype(np.uint64) << np.uint64(_ENTRY_BITS)) | entries.astype(np.uint64)
        )
    return np.concatenate(keys), store_keys


def _key_text(value: int, what: str) -> str:
    if what == "input entry":
        return f"input {value >> _ENTRY_BITS} entry {value & ((1 << _ENTRY_BITS) - 1)}"
    return f"event_id {value}"


def _rows_of(
    ids: np.ndarray,
    store_ids: np.ndarray,
    store: EventStore,
    *,
    what: str,
    skip_unknown: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The store row of each friend key, and which friend rows the store holds; refuses
    missing and repeated keys, and unknown ones unless ``skip_unknown`` (then dropped)."""
    order = np.argsort(store_ids, kind="stable")
    position = np.searchsorted(store_ids, ids, sorter=order)
    position = np.clip(position, 0, store_ids.size - 1)
    rows = order[position]
    unknown = store_ids[rows] != ids
    if unknown.any() and not skip_unknown:
        msg = f"{int(unknown.sum())} weight row(s) have {what}s the store does not hold (the first: {ids[np.argmax(unknown)]})"
        raise StoreError(
            msg,
            store=store.path,
            hint=f"key the weights by the store's {what} (farm inspect shows the range)",
        )
    rows = rows[~unknown]
    counts = np.bincount(rows, minlength=store_ids.size)
    if (counts > 1).any():
        first = _key_text(int(store_ids[np.argmax(counts > 1)]), what)
        msg = f"{first} has weights more than once"
        raise StoreError(msg, store=store.path, hint="give each event's weights once")
    if (counts == 0).any():
        first = _key_text(int(store_ids[np.argmax(counts == 0)]), what)
        msg = (
            f"{int((counts == 0).sum())} event(s) of the store have no weights (the first: {first})"
        )
        raise StoreError(msg, store=store.path, hint="give weights for every event of the store")
    return rows, ~unknown


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
            store_path,
            section.name,
            [section.file],
            mode=section.mode,
            dtype=section.dtype,
            key=section.key,
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
