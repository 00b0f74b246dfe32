"""Issue 7, item 5: no pickle is ever loaded from a data file.

Unpickling runs code chosen by whoever wrote the bytes, so nothing the farm reads — an event
store, a checkpoint, an input covariance or counts file, a published result — may be unpickled.

* Statically: no module of ``farm/`` or ``workers/`` calls (or names) an unpickling function —
  ``pickle.load(s)``, ``pickle.Unpickler``, ``cloudpickle``/``dill``/``marshal`` loads,
  ``joblib.load``, ``pandas.read_pickle``, ``shelve``, numcodecs' ``Pickle`` codec — and every
  ``np.load`` passes ``allow_pickle=False`` literally. The scan reads the syntax tree and follows
  import aliases (``from pickle import loads as l``), so a rename does not hide a call.
* Dynamically: files that carry a pickle whose unpickling would create a marker directory
  (``os.mkdir``) are refused or ignored, and the marker never appears, not even in a whole run
  over them. A guard records every unpickling in the test's thread while the farm reads such a
  file: calls of ``pickle.load``/``pickle.loads`` (refused) and the ``pickle.find_class`` audit
  event, raised by any unpickler when a pickle names a global.
* A published result holds numbers and UTF-8 strings only, reads back (with xarray) without
  unpickling, and one whose array claims a pickle codec cannot be read at all.

The guard watches reads, not whole runs: a run also unpickles objects the process itself made a
moment before (numba's globals of a compiled kernel, dask's tokenizer round trips, and on a
cluster the tasks and results dask sends between its processes) — none of it from a file.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import pickle
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr
from conftest import assert_bit_identical, example

from farm.accumulate import PartialSums
from farm.analysis.pipeline import check_before_running
from farm.checkpoint import CheckpointStore
from farm.cluster import ClusterOptions
from farm.config import FarmConfig, parse_config
from farm.publish import open_published, publish_dataset, versions_dir
from farm.runner import ensure_store, run
from farm.store import REQUIRED_COLUMNS, StoreError, StoreWriter
from farm.store.errors import SchemaError
from farm.store.reader import EventStore
from farm.store.schema import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("farm", "workers")
EVENTS = 65_536
UNIVERSES = 2

# --- the static scan ---------------------------------------------------------------------------

UNPICKLING = frozenset(
    {
        "pickle.load",
        "pickle.loads",
        "pickle.Unpickler",
        "_pickle.load",
        "_pickle.loads",
        "_pickle.Unpickler",
        "cloudpickle.load",
        "cloudpickle.loads",
        "dill.load",
        "dill.loads",
        "joblib.load",
        "marshal.load",
        "marshal.loads",
        "pandas.read_pickle",
        "shelve.open",
        "numcodecs.Pickle",
        "numcodecs.pickles.Pickle",
        "torch.load",
    }
)
"""Functions and classes that unpickle (or, for ``marshal``, load code objects)."""
FORBIDDEN_IMPORTS = frozenset({"dill", "shelve"})
NUMPY_LOAD = "numpy.load"


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → the module or object it was imported as, from every import in the module."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _resolve(dotted: str, aliases: dict[str, str]) -> str:
    head, _, rest = dotted.partition(".")
    full = aliases.get(head, head)
    return f"{full}.{rest}" if rest else full


def _passes_allow_pickle_false(call: ast.Call) -> bool:
    return any(
        k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False
        for k in call.keywords
    )


def unpickling_findings(source: str, name: str = "<source>") -> tuple[list[str], int]:
    """Every unpickling call, reference or import in ``source``, and the number of compliant
    ``np.load(..., allow_pickle=False)`` calls."""
    tree = ast.parse(source, filename=name)
    aliases = _aliases(tree)
    findings: list[str] = []
    safe_loads = 0
    checked_calls: set[int] = set()

    def report(node: ast.AST, what: str) -> None:
        findings.append(f"{name}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
            for module in modules:
                if module and module.split(".")[0] in FORBIDDEN_IMPORTS:
                    report(node, f"imports {module}")
        if isinstance(node, ast.Call):
            dotted = _dotted(node.func)
            if dotted is not None and _resolve(dotted, aliases) == NUMPY_LOAD:
                checked_calls.add(id(node.func))
                if _passes_allow_pickle_false(node):
                    safe_loads += 1
                else:
                    report(node, f"{dotted}(...) without allow_pickle=False")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute | ast.Name) or id(node) in checked_calls:
            continue
        dotted = _dotted(node)
        if dotted is None:
            continue
        target = _resolve(dotted, aliases)
        if target in UNPICKLING or target.endswith(".read_pickle"):
            report(node, f"{dotted} ({target})")
        elif target == NUMPY_LOAD:
            report(node, f"{dotted} used other than as a call with allow_pickle=False")
    # an attribute chain is visited once per prefix: report each place once
    return sorted(set(findings)), safe_loads


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize(
    "source",
    [
        "import pickle\npickle.loads(blob)",
        "import pickle\nreader = pickle.Unpickler(file)",
        "from pickle import loads as decode\ndecode(blob)",
        "import _pickle\n_pickle.load(file)",
        "import numpy as np\nnp.load(path)",
        "import numpy as np\nnp.load(path, allow_pickle=True)",
        "import numpy\nnumpy.load(path, **options)",
        "from numpy import load\nload(path, allow_pickle=flag)",
        "import numpy as np\nreader = np.load",
        "import pandas as pd\npd.read_pickle(path)",
        "import joblib\njoblib.load(path)",
        "import cloudpickle\ncloudpickle.loads(blob)",
        "import marshal\nmarshal.loads(blob)",
        "import numcodecs\ncodec = numcodecs.Pickle()",
        "def f():\n    import dill",
        "import shelve",
    ],
)
def test_the_scan_finds_an_unpickling_call_written_in_any_of_these_ways(source: str) -> None:
    findings, _ = unpickling_findings(source)
    assert len(findings) == 1, findings


@pytest.mark.parametrize(
    ("source", "safe_loads"),
    [
        ("import numpy as np\nnp.load(path, allow_pickle=False)", 1),
        ("import numpy as np\nwith np.load(p, allow_pickle=False) as f:\n    f['a']", 1),
        ("import pickle\nblob = pickle.dumps(value)", 0),  # writing is not reading
        ("import numpy as np\nnp.loadtxt(path, ndmin=1)", 0),
    ],
)
def test_the_scan_accepts_reading_without_unpickling(source: str, safe_loads: int) -> None:
    assert unpickling_findings(source) == ([], safe_loads)


def test_farm_and_workers_never_unpickle_and_every_np_load_refuses_pickles() -> None:
    sources = _sources()
    findings: list[str] = []
    safe_loads = 0
    for path in sources:
        found, safe = unpickling_findings(path.read_text(), str(path.relative_to(ROOT)))
        findings += found
        safe_loads += safe
    assert len(sources) > 50  # the whole of both packages was read
    assert findings == []
    # checkpoints, the flux covariance file, the observed counts file
    assert safe_loads >= 3


# --- the guard ---------------------------------------------------------------------------------

_ARMED: dict[int, list[str]] = {}
"""Threads being watched → what they unpickled."""
_HOOKED: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "pickle.find_class":
        seen = _ARMED.get(threading.get_ident())
        if seen is not None:
            seen.append(f"find_class {args[0]}.{args[1]}")


def _refusing(name: str, original: Any) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        seen = _ARMED.get(threading.get_ident())
        if seen is None:  # another thread (a dask scheduler in this process): not ours to judge
            return original(*args, **kwargs)
        seen.append(name)
        msg = f"{name} called while the farm read a data file"
        raise pickle.UnpicklingError(msg)

    return refuse


@contextlib.contextmanager
def _watching(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What this thread unpickles within: ``pickle.load``/``loads`` calls (refused) and every
    global a pickle names (the ``pickle.find_class`` audit event, from any unpickler)."""
    if not _HOOKED:
        sys.addaudithook(_audit)  # permanent, idle while no thread is armed
        _HOOKED.append(True)
    monkeypatch.setattr(pickle, "load", _refusing("pickle.load", pickle.load))
    monkeypatch.setattr(pickle, "loads", _refusing("pickle.loads", pickle.loads))
    seen: list[str] = []
    _ARMED[threading.get_ident()] = seen
    try:
        yield seen
    finally:
        del _ARMED[threading.get_ident()]
        monkeypatch.undo()


@pytest.fixture
def unpickled(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What this test's thread unpickles (see :func:`_watching`)."""
    with _watching(monkeypatch) as seen:
        yield seen


class Payload:
    """Unpickling this creates the directory ``marker``: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def _evil_npy(path: Path, marker: Path, shape: tuple[int, ...] = (2,)) -> Path:
    values = np.empty(shape, dtype=object)
    values.flat[0] = Payload(marker)
    np.save(path, values, allow_pickle=True)
    return path


def test_the_guard_sees_np_load_with_allow_pickle(unpickled: list[str], tmp_path: Path) -> None:
    path = _evil_npy(tmp_path / "evil.npy", tmp_path / "ran")
    with pytest.raises(pickle.UnpicklingError):
        np.load(path, allow_pickle=True)
    assert unpickled == ["pickle.load"]
    assert not (tmp_path / "ran").exists()


def test_the_guard_sees_any_unpickler_that_meets_a_global(
    unpickled: list[str], tmp_path: Path
) -> None:
    blob = pickle.dumps(Payload(tmp_path / "ran"))
    pickle.Unpickler(io.BytesIO(blob)).load()  # not patched: seen by the audit hook
    assert unpickled == ["find_class posix.mkdir"]
    assert (tmp_path / "ran").is_dir()  # what every test below proves does not happen


# --- files the farm reads ----------------------------------------------------------------------


def _config(store: Path, **sections: dict[str, Any]) -> FarmConfig:
    data = example(
        sample={"store": str(store)},
        generation={"events": EVENTS},
        analysis={"blocks_per_task": 1},
        **sections,
    )
    return parse_config(data, source="test_no_pickle")


def _run(cfg: FarmConfig, checkpoints: Path | None = None) -> tuple[xr.Dataset, Any]:
    return run(
        cfg,
        ClusterOptions(kind="inprocess"),
        universes=UNIVERSES,
        checkpoint_dir=checkpoints,
        log=lambda _: None,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("no-pickle") / "store.zarr"
    ensure_store(_config(path), log=lambda _: None)
    return path


def test_a_checkpoint_holding_a_pickle_is_recomputed_not_loaded(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(store)
    checkpoints = CheckpointStore(tmp_path / "checkpoints")
    first, stats = _run(cfg, checkpoints.root)
    assert stats.computed == stats.items == 10  # the flux chunk, 5 knobs, 3 unisims, bootstrap
    key = sorted(checkpoints.keys())[3]
    with np.load(checkpoints.path(key), allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    marker = tmp_path / "ran"
    arrays["signal"] = np.array([Payload(marker)], dtype=object)
    with open(checkpoints.path(key), "wb") as f:
        np.savez(f, **arrays)  # a well-formed checkpoint but for one pickled array

    with _watching(monkeypatch) as unpickled:
        assert checkpoints.load(key) is None
    assert unpickled == []
    again, stats = _run(cfg, checkpoints.root)

    assert (stats.computed, stats.from_checkpoint) == (1, 9)
    assert_bit_identical(again, first)
    assert isinstance(checkpoints.load(key), PartialSums)  # rewritten, without objects
    assert not marker.exists()


def _object_column(store: Path) -> None:
    """``w_nominal`` rewritten as variable-length strings, zarr v3's object-dtype column."""
    n = EventStore.open(store).n_events
    column = zarr.create_array(store / "w_nominal", shape=(n,), dtype=str, overwrite=True)
    column[:] = np.array(["1.0"] * n, dtype=object)


def _object_data_type(store: Path) -> None:
    """``w_nominal`` declared with numpy's object dtype in its metadata."""
    meta = store / "w_nominal" / "zarr.json"
    meta.write_text(json.dumps(json.loads(meta.read_text()) | {"data_type": "object"}))


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (_object_column, "has dtype StringDType(), the schema stores float64"),
        (_object_data_type, "the column's zarr metadata cannot be read"),
    ],
)
def test_a_store_column_of_objects_is_refused_naming_it(
    store: Path, tmp_path: Path, unpickled: list[str], damage: Any, detail: str
) -> None:
    copy = tmp_path / "store.zarr"
    shutil.copytree(store, copy)
    damage(copy)
    with pytest.raises(SchemaError) as refused:
        EventStore.open(copy)
    message = str(refused.value)
    assert message.startswith(f"{copy}, column 'w_nominal': ")
    assert detail in message
    assert "regenerate the store with `farm generate`" in message
    assert unpickled == []


def test_a_zarr_v2_store_of_pickled_objects_is_refused_unread(
    store: Path, tmp_path: Path, unpickled: list[str]
) -> None:
    # zarr v2 could store object columns through numcodecs' Pickle codec; farm reads v3 only
    copy, marker = tmp_path / "v2.zarr", tmp_path / "ran"
    (copy / "w_nominal").mkdir(parents=True)
    (copy / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (copy / ".zattrs").write_text(json.dumps(EventStore.open(store).attrs))
    array = {
        "zarr_format": 2,
        "shape": [1],
        "chunks": [1],
        "dtype": "|O",
        "compressor": None,
        "fill_value": None,
        "filters": [{"id": "pickle", "protocol": 5}],
        "order": "C",
    }
    (copy / "w_nominal" / ".zarray").write_text(json.dumps(array))
    values = np.array([Payload(marker)], dtype=object)
    (copy / "w_nominal" / "0").write_bytes(numcodecs.Pickle().encode(values))
    with pytest.raises(StoreError, match="not a farm event store: not a zarr v3 group"):
        EventStore.open(copy)
    assert not marker.exists()
    assert unpickled == []


def test_the_store_writer_refuses_a_column_of_objects(tmp_path: Path) -> None:
    writer = StoreWriter.create(
        tmp_path / "s.zarr", n_events=2, columns=REQUIRED_COLUMNS, shard_rows=2, attrs={}
    )
    columns = {name: np.zeros(2, dtype=COLUMNS[name].dtype) for name in REQUIRED_COLUMNS}
    columns["w_nominal"] = np.array([1.0, 2.0], dtype=object)
    with pytest.raises(StoreError, match="w_nominal"):
        writer.write_shard(0, columns)
    writer.abort()


@pytest.mark.parametrize("kind", ["counts", "covariance"])
def test_an_input_npy_holding_a_pickle_is_refused_naming_the_file(
    store: Path, tmp_path: Path, unpickled: list[str], kind: str
) -> None:
    marker = tmp_path / "ran"
    if kind == "counts":
        path = _evil_npy(tmp_path / "counts.npy", marker, shape=(7,))
        cfg = _config(store, data={"kind": "file", "file": str(path)})
        expected = f"[data.file] {path}: cannot read counts"
    else:
        path = _evil_npy(tmp_path / "flux-covariance.npy", marker, shape=(11, 11))
        data = example(sample={"store": str(store)}, generation={"events": EVENTS})
        data["systematics"][0]["covariance_file"] = str(path)
        cfg = parse_config(data, source="test_no_pickle")
        expected = "'flux_normalization': covariance_file"
    with pytest.raises(ValueError, match="holds Python objects \\(a pickle\\)") as refused:
        check_before_running(cfg, universes=UNIVERSES)
    assert expected in str(refused.value) and str(path) in str(refused.value)
    assert not marker.exists()
    assert unpickled == []


# --- what the farm writes ----------------------------------------------------------------------

NUMERIC_DATA_TYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    | {"float32", "float64"}
)
SAFE_CODECS = frozenset({"bytes", "vlen-utf8", "zstd", "blosc", "gzip", "crc32c", "transpose"})


def test_a_published_result_holds_numbers_and_utf8_strings_and_reads_without_unpickling(
    store: Path, tmp_path: Path, unpickled: list[str]
) -> None:
    ds, _ = _run(_config(store))
    out = tmp_path / "result.zarr"
    version = publish_dataset(ds, out)
    assert version.parent == versions_dir(out)
    metadata = [json.loads(p.read_text()) for p in version.rglob("zarr.json")]
    arrays = [m for m in metadata if m["node_type"] == "array"]
    assert len(arrays) == len(ds.variables)
    strings = 0
    for meta in arrays:
        codecs = {c["name"] for c in meta["codecs"]}
        assert codecs <= SAFE_CODECS, meta
        if meta["data_type"] == "string":
            assert "vlen-utf8" in codecs
            strings += 1
        else:
            assert meta["data_type"] in NUMERIC_DATA_TYPES, meta
    assert strings > 0  # labels: systematics, models, flux bins

    with xr.open_zarr(version, chunks=None) as published:  # xarray and zarr, no dask
        loaded = published.load()
    for name, variable in loaded.variables.items():
        if variable.dtype.kind == "O":
            assert all(type(v) is str for v in variable.values.ravel()), name
        else:
            assert variable.dtype.kind in "biufUT", name  # T: numpy's variable-width strings
    assert unpickled == []


def test_a_published_version_whose_array_claims_a_pickle_codec_cannot_be_read(
    store: Path, tmp_path: Path
) -> None:
    ds, _ = _run(_config(store))
    out, marker = tmp_path / "result.zarr", tmp_path / "ran"
    version = publish_dataset(ds, out)
    pickled = [{"name": "numcodecs.pickle", "configuration": {"protocol": 5}}]
    meta_path = version / "systematic_kind" / "zarr.json"
    meta_path.write_text(json.dumps(json.loads(meta_path.read_text()) | {"codecs": pickled}))
    group = json.loads((version / "zarr.json").read_text())
    group["consolidated_metadata"]["metadata"]["systematic_kind"]["codecs"] = pickled
    (version / "zarr.json").write_text(json.dumps(group))
    values = np.array([Payload(marker)] * ds.sizes["systematic"], dtype=object)
    (version / "systematic_kind" / "c" / "0").write_bytes(pickle.dumps(values, protocol=5))

    with pytest.raises(ValueError, match=r"numcodecs\.pickle"), open_published(out) as tampered:
        tampered.load()
    assert not marker.exists()
