"""No pickle is ever loaded from a data file (issue 7, security)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from farm.accumulate import PartialSums
from farm.checkpoint import CheckpointStore
from farm.reweight.flux import FluxTensors

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("farm/**/*.py"), *ROOT.glob("workers/**/*.py")])
FORBIDDEN = re.compile(
    r"\b(pickle\.loads?|cloudpickle\.loads?|joblib\.load|dill\.|shelve\.|marshal\.loads?|read_pickle)\b|allow_pickle\s*=\s*True"
)


def test_the_sources_call_no_unpickling_function() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN.search(line) and not line.lstrip().startswith("#")
    ]
    assert SOURCES and not offenders, offenders


def test_every_np_load_forbids_pickles() -> None:
    calls = [
        (path, line)
        for path in SOURCES
        for line in path.read_text().splitlines()
        if "np.load(" in line and not line.lstrip().startswith(("#", '"', "`"))
    ]
    assert calls, "expected np.load calls (checkpoints, covariance files)"
    assert all("allow_pickle=False" in line for _, line in calls), calls


def _sums() -> PartialSums:
    return PartialSums(
        flux=FluxTensors(
            signal=np.ones((2, 3, 1)), background=np.ones((2, 3)), truth=np.ones((2, 1))
        ),
        signal=np.ones((1, 3, 1)),
        background=np.ones((1, 3)),
        truth=np.ones((1, 1)),
        truth_nominal=np.ones((1, 1)),
        clamped=np.zeros(1, dtype=np.int64),
        n_events=5,
    )


def test_a_checkpoint_holding_a_pickled_object_array_is_not_loaded(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save("good", _sums())
    assert store.load("good") is not None
    with open(store.path("evil"), "wb") as f:
        np.savez(f, signal=np.array([object()], dtype=object), n_events=np.array(1))
    assert store.load("evil") is None  # refused (would need unpickling): the item is recomputed


def test_an_object_dtype_store_column_is_refused(tmp_path: Path) -> None:
    from farm.store import REQUIRED_COLUMNS, StoreError, StoreWriter
    from farm.store.schema import COLUMNS

    writer = StoreWriter.create(
        tmp_path / "s.zarr", n_events=2, columns=REQUIRED_COLUMNS, shard_rows=2, attrs={}
    )
    columns = {name: np.zeros(2, dtype=COLUMNS[name].dtype) for name in REQUIRED_COLUMNS}
    columns["event_id"] = np.arange(2, dtype=np.uint64)
    columns["w_nominal"] = np.array([object(), object()], dtype=object)
    with pytest.raises(StoreError, match="w_nominal"):
        writer.write_shard(0, columns)
    writer.abort()
