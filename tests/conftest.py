"""Shared fixtures of the distributed tests: a small SNS CsI sample, its in-process reference
result, a real two-process LocalCluster on loopback, and helpers to write configurations and
compare datasets bit for bit.

The sample has 540 000 events: 9 blocks of 65 536 rows (8 full and a partial tail), so with the
default plan (8 blocks per work item) every universe chunk has one complete tree node and a tail,
and with ``blocks_per_task = 1`` it has 9 items. ``--universes 10`` gives 77 universes.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from click.testing import Result
from typer.testing import CliRunner

from farm.cli import app
from farm.cluster import ClusterOptions
from farm.config import FarmConfig, examples_dir, load_config
from farm.runner import ensure_store, run

# Generated event stores go to ./stores of the working folder, never to the user's cache folder
# (farm.config.store_dir): the tests that share a store chdir into one temporary folder and run
# there, and subprocesses inherit the setting. A user's own FARM_STORE_DIR is not used.
os.environ["FARM_STORE_DIR"] = "stores"
# The cost model's measured rates (farm.costmodel) go to this session's own file, never to the
# user's cache folder: measured once per session, by the first plan or default run that needs them.
os.environ["FARM_RATES_FILE"] = os.path.join(
    tempfile.mkdtemp(prefix="farm-test-rates-"), "rates.json"
)
# Records of verified shards (farm.store.trust) go to this session's own folder, never to the
# user's cache folder.
os.environ["FARM_VERIFIED_DIR"] = tempfile.mkdtemp(prefix="farm-test-verified-")

SAMPLE = "sns-csi"
EVENTS = 540_000
UNIVERSES = 10
N_BLOCKS = 9
N_CHUNKS = 10
"""The flux chunk, five knobs of 10 throws, three unisims of 2, the bootstrap of 10."""

PROVENANCE_ATTRS = frozenset(
    {
        "config",
        "config_hash",
        "input_store",
        "input_checksums",
        "store_generation_hash",
        "run_overrides",  # the command line's --events/--universes (farm refresh keeps them)
    }
)
"""Dataset attributes that record how a result was produced rather than what it is."""


# --- helpers -----------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    msg = f"no TOML form for {value!r}"
    raise TypeError(msg)


def toml_text(data: dict[str, Any]) -> str:
    """A TOML document of tables (nested tables inline) and arrays of tables."""
    lines: list[str] = []
    for section, body in data.items():
        tables = body if isinstance(body, list) else [body]
        header = f"[[{section}]]" if isinstance(body, list) else f"[{section}]"
        for table in tables:
            lines.append(header)
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)
            lines.append("")
    return "\n".join(lines)


def example(**sections: dict[str, Any]) -> dict[str, Any]:
    """The sns-csi example as a mapping, with keys of ``sections`` set table by table."""
    data = tomllib.loads((examples_dir() / f"{SAMPLE}.toml").read_text())
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return data


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(toml_text(data))
    return path


def farm_cli(*args: object) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


def two_config_project(root: Path, events: int, shard_rows: object) -> Path:
    """In ``root``: a generated store, and configurations a.toml and b.toml over it that differ
    only in the fake-data seed (two analyses that publish different results)."""
    store = root / "store.zarr"
    data = example(sample={"store": str(store)}, generation={"events": events})
    (root / "a.toml").write_text(toml_text(data))
    data["data"]["seed"] = 99
    (root / "b.toml").write_text(toml_text(data))
    result = farm_cli("generate", root / "a.toml", "--out", store, "--shard-size", shard_rows)
    assert result.exit_code == 0, result.output
    return root


def run_example(
    tmp_path_factory: pytest.TempPathFactory,
    sample: str,
    *,
    events: int,
    universes: int,
    **analysis: object,
) -> xr.Dataset:
    """An example sample run in-process, its store shared by every test that asks for the same
    sample and size."""
    from farm.runner import run_inprocess

    store = tmp_path_factory.getbasetemp() / "compare-stores" / f"{sample}-{events}.zarr"
    overrides = {"generation.events": events, "sample.store": str(store)}
    overrides |= {f"analysis.{k}": v for k, v in analysis.items()}
    return run_inprocess(load_config(sample, **overrides), universes=universes, log=lambda _: None)


def assert_bit_identical(
    a: xr.Dataset, b: xr.Dataset, *, provenance: frozenset[str] = frozenset()
) -> None:
    """Every variable and coordinate equal byte for byte, and the datasets ``identical``; the
    attributes named in ``provenance`` (and only those) may differ."""
    assert sorted(a.variables) == sorted(b.variables)
    for name in a.variables:
        x, y = a[name].values, b[name].values
        assert (x.dtype, x.shape) == (y.dtype, y.shape), name
        if x.dtype.kind in "biufc":
            assert x.tobytes() == y.tobytes(), f"{name} differs"
        else:
            assert np.array_equal(x, y), f"{name} differs"
    differing = {k for k in a.attrs.keys() | b.attrs.keys() if a.attrs.get(k) != b.attrs.get(k)}
    assert differing <= provenance, f"attributes differ: {sorted(differing - provenance)}"
    assert _without(a, provenance).identical(_without(b, provenance))


def _without(ds: xr.Dataset, attrs: frozenset[str]) -> xr.Dataset:
    kept = {k: v for k, v in ds.attrs.items() if k not in attrs}
    return ds.drop_attrs(deep=False).assign_attrs(kept)


def dist_config(store: Path, **analysis: Any) -> FarmConfig:
    """The sns-csi example over the shared sample at ``store``, with ``[analysis]`` overrides."""
    overrides = {"generation.events": EVENTS, "sample.store": str(store)}
    overrides |= {f"analysis.{k}": v for k, v in analysis.items()}
    return load_config(SAMPLE, **overrides)


def run_quietly(cfg: FarmConfig, options: ClusterOptions, **kwargs: Any) -> Any:
    return run(cfg, options, universes=UNIVERSES, log=lambda _: None, **kwargs)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _dask_scheduler_config_restored() -> Iterator[None]:
    """Each test starts with the dask scheduler setting it found.

    A ``distributed.Client`` sets the global ``scheduler`` to "dask.distributed" and unsets it
    when it closes; one that dies without closing (its scheduler killed, a failed handshake) can
    leave it set, and then every later ``.load()`` of a dask-backed dataset in this process
    fails with "no Client active" (seen once in CI, in tests/test_write_failures.py, which run
    last). Tests must not depend on what an earlier test's client left behind.
    """
    import dask
    from distributed import client as dclient

    before = dask.config.get("scheduler", None)
    clients_before = set(dclient._global_clients.values())
    yield
    if dask.config.get("scheduler", None) != before:
        if before is None:
            dask.config.config.pop("scheduler", None)
        else:
            dask.config.set(scheduler=before)
    # A client whose start failed stays registered as the process's default (distributed
    # 2026.8 registers it before connecting and never closes it); every later dask computation
    # in this process is then sent to it and waits forever (CI once hung 11 tests for 600 s
    # each). Drop it, and fail the test that left it: it must pass set_as_default=False.
    leaked = [
        c
        for c in list(dclient._global_clients.values())
        if c not in clients_before and c.status != "closed"
    ]
    for c in leaked:
        dclient._del_global_client(c)
    assert not leaked, (
        f"the test left {len(leaked)} unclosed default dask client(s) {leaked}; close it, or "
        "create it with set_as_default=False where its connection is expected to fail"
    )


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared sample, generated once (one shard: the default shard size is 8 Mi rows)."""
    path = tmp_path_factory.mktemp("stores") / "sns-csi-540k.zarr"
    ensure_store(dist_config(path), log=lambda _: None)
    return path


@pytest.fixture(scope="session")
def reference(sample_store: Path) -> xr.Dataset:
    """The in-process result of the default plan: what every other way of running must give."""
    ds, stats = run_quietly(dist_config(sample_store), ClusterOptions(kind="inprocess"))
    assert stats.items == N_CHUNKS * 2  # per chunk: one node of 8 blocks and the 1-block tail
    return ds


@pytest.fixture(scope="session")
def process_cluster() -> Iterator[Any]:
    """A LocalCluster of two single-threaded worker processes (spawned, behind nannies)."""
    from farm.cluster.local import local_cluster

    with local_cluster(ClusterOptions(kind="local", workers=2, dashboard=False)) as cluster:
        yield cluster


@pytest.fixture
def client(process_cluster: Any) -> Iterator[Any]:
    """A client of the shared cluster, once it has both workers (a test may have killed one)."""
    from distributed import Client

    with Client(process_cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture
def on_cluster(process_cluster: Any, client: Any) -> ClusterOptions:
    """Options that join the shared cluster, as ``farm run --scheduler ADDRESS`` does."""
    return ClusterOptions(scheduler_address=process_cluster.scheduler_address)
