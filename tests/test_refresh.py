"""Issue 4, item 6: ``farm refresh`` recomputes only the work items whose inputs changed, and
publishes each result as a new, complete version beside the earlier ones.

The baseline is a published ``farm run`` of 400 000 SNS CsI events in four shards of 100 000
rows, with one-block work items and ``--universes 10``: 10 chunks (the flux chunk, five knobs,
three unisims, the bootstrap) × 7 blocks (the last one, rows 393 216–400 000, partial) = 70 items.
Each test refreshes a copy of it after one change and counts what was recomputed.
"""

from __future__ import annotations

import copy
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from conftest import assert_bit_identical, example, farm_cli, write_config

from farm.config import generation_hash_of
from farm.publish import list_versions, open_published, publish_dataset, versions_dir
from farm.store import StoreWriter
from farm.store.reader import EventStore
from farm.store.writer import LAYOUT_ATTRS

SHARD_ROWS = 100_000
EVENTS = 400_000
CHUNKS = 10
BLOCKS = 7  # ⌈400 000 / 65 536⌉
ITEMS = CHUNKS * BLOCKS
CONFIG = "sns-csi.toml"
OUT = "result.zarr"


def write_store(
    path: Path,
    columns: dict[str, np.ndarray],
    attrs: dict[str, Any],
    n_events: int,
    *,
    scale_shard: tuple[int, float] | None = None,
    overwrite: bool = False,
) -> None:
    """The first ``n_events`` rows in shards of 100 000 rows; ``scale_shard=(i, f)`` multiplies
    w_nominal in shard i by f. With ``overwrite`` the store is replaced in place.

    The recorded generation configuration says ``n_events`` (a run refuses a store whose event
    count contradicts it, farm.binding), so a run's configuration must say so too."""
    attrs = copy.deepcopy(attrs)
    generator = attrs["generator"]
    generator["config"]["generation"]["events"] = n_events
    generator["generation_hash"] = generation_hash_of(
        generator["config"], generator["config"]["sample"]["generator"]
    )
    with StoreWriter.create(
        path,
        n_events=n_events,
        columns=list(columns),
        shard_rows=SHARD_ROWS,
        attrs=attrs,
        overwrite=overwrite,
    ) as writer:
        for index, (start, stop) in enumerate(writer.shard_ranges):
            shard = {name: values[start:stop] for name, values in columns.items()}
            if scale_shard is not None and scale_shard[0] == index:
                shard["w_nominal"] = shard["w_nominal"] * scale_shard[1]
            writer.write_shard(index, shard)


def configure(project: Path, **changes: Any) -> None:
    """The sns-csi example over ``store.zarr``, one-block items, then ``changes`` applied."""
    data = example(
        sample={"store": "store.zarr"},
        generation={"events": EVENTS},
        analysis={"blocks_per_task": 1},
    )
    for section, values in changes.items():
        if section == "systematics":
            for s in data["systematics"]:
                s.update(values.get(s["name"], {}))
        else:
            data[section].update(values)
    write_config(project / CONFIG, data)


def farm(command: str, *args: str) -> tuple[int, int, str]:
    """Run ``farm COMMAND sns-csi.toml --out result.zarr``; (computed, items, output)."""
    result = farm_cli(command, CONFIG, "-u", "10", "--out", OUT, *args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    computed, items = re.search(r"computed (\d+) of (\d+) work items", text).groups()  # type: ignore[union-attr]
    return int(computed), int(items), text


def versions() -> list[int]:
    return [v.number for v in list_versions(OUT)]


def published(out: str = OUT) -> xr.Dataset:
    with open_published(out) as ds:
        return ds.load()


@pytest.fixture(scope="module")
def sample(sample_store: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """500 000 rows of the shared sample and its provenance attributes."""
    store = EventStore.open(sample_store)
    attrs = {k: v for k, v in store.attrs.items() if k not in LAYOUT_ATTRS}
    return store.read_columns(None, 0, 500_000), attrs


@pytest.fixture(scope="module")
def baseline(
    tmp_path_factory: pytest.TempPathFactory, sample: tuple[dict[str, np.ndarray], dict[str, Any]]
) -> Path:
    base = tmp_path_factory.mktemp("refresh") / "base"
    base.mkdir()
    write_store(base / "store.zarr", *sample, EVENTS)
    configure(base)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        assert farm("run", "--cluster", "inprocess")[:2] == (ITEMS, ITEMS)
    return base


@pytest.fixture
def project(baseline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the baseline (store, config, published result, checkpoints) as the cwd."""
    copy = tmp_path / "project"
    shutil.copytree(baseline, copy, symlinks=True)
    monkeypatch.chdir(copy)
    yield copy


# --- what changed → what is recomputed ---------------------------------------------------------


def test_nothing_changed_recomputes_nothing_and_publishes_no_version(project: Path) -> None:
    computed, items, text = farm("refresh", "--cluster", "inprocess")
    assert (computed, items) == (0, ITEMS)
    assert "is up to date" in text
    assert versions() == [1]


def test_a_changed_shard_recomputes_exactly_the_items_over_its_rows(
    project: Path, sample: tuple[dict[str, np.ndarray], dict[str, Any]]
) -> None:
    # shard 1 = rows 100 000–200 000: blocks 1 (65 536–131 072), 2 and 3 (196 608–262 144)
    write_store(project / "store.zarr", *sample, EVENTS, scale_shard=(1, 1.01), overwrite=True)
    computed, items, _ = farm("refresh", "--cluster", "inprocess")
    assert (computed, items) == (3 * CHUNKS, ITEMS)
    assert versions() == [1, 2]
    farm("run", "--cluster", "inprocess", "--no-checkpoints", "--out", "fresh.zarr")
    assert_bit_identical(published(), published("fresh.zarr"))


def test_a_new_shard_recomputes_its_items_and_the_old_partial_tail_on_dask_workers(
    project: Path, sample: tuple[dict[str, np.ndarray], dict[str, Any]], process_cluster: Any
) -> None:
    on_cluster = ("--scheduler", process_cluster.scheduler_address)
    # the workers open the 400 000-row store (and keep it open) ...
    farm("run", *on_cluster, "--no-checkpoints", "--out", "warm.zarr")
    # ... which then gains shard 4, rows 400 000–500 000, in place
    write_store(project / "store.zarr", *sample, 500_000, overwrite=True)
    configure(project, generation={"events": 500_000})
    computed, items, text = farm("refresh", *on_cluster)
    # 8 blocks now; block 6 was the partial tail (393 216–400 000), block 7 is new
    assert (computed, items) == (2 * CHUNKS, 8 * CHUNKS)
    assert f"({6 * CHUNKS} from checkpoints)" in text
    farm("run", "--cluster", "inprocess", "--no-checkpoints", "--out", "fresh.zarr")
    assert_bit_identical(published(), published("fresh.zarr"))
    assert int(published().attrs["n_events"]) == 500_000


def test_a_changed_knob_recomputes_only_its_own_chunk(project: Path) -> None:
    before = published()
    configure(project, systematics={"weak_mixing_angle": {"sigma": 0.004}})
    computed, items, _ = farm("refresh", "--cluster", "inprocess")
    # its 10 throws fill one chunk: 7 items; the flux chunk and the other 8 chunks are loaded
    assert (computed, items) == (BLOCKS, ITEMS)
    after = published()
    np.testing.assert_allclose(after.knob_sin2w, 2 * before.knob_sin2w, rtol=1e-12)
    assert np.any(after.knob_sin2w != 0)


def test_a_changed_flux_systematic_recomputes_no_item_but_changes_the_result(
    project: Path,
) -> None:
    before = published()
    configure(project, systematics={"flux_normalization": {"normalization": 0.12}})
    computed, items, _ = farm("refresh", "--cluster", "inprocess")
    assert (computed, items) == (0, ITEMS)  # flux universes are R @ C of the flux chunk
    assert versions() == [1, 2]
    # a normalisation-only flux throw: ratio − 1 = σ z, so it scales with σ (0.12 / 0.10)
    flux = np.asarray(before.universe_systematic == "flux_normalization")
    shift_before = before.flux_ratio.values[flux] - 1
    shift_after = published().flux_ratio.values[flux] - 1
    np.testing.assert_allclose(shift_after, 1.2 * shift_before, rtol=1e-12)
    assert np.abs(shift_after).max() > 0.01


def test_a_changed_binning_recomputes_every_item(project: Path) -> None:
    configure(project, binning={"reco_edges": [5, 10, 15, 20, 30, 40, 60]})
    computed, items, _ = farm("refresh", "--cluster", "inprocess")
    assert (computed, items) == (ITEMS, ITEMS)
    assert published().sizes["reco_bin"] == 6


# --- versions and atomic publishing ------------------------------------------------------------


def test_farm_versions_lists_every_version_and_marks_the_current_one(project: Path) -> None:
    first = published()
    configure(project, systematics={"flux_normalization": {"normalization": 0.12}})
    farm("refresh", "--cluster", "inprocess")
    result = farm_cli("versions", OUT)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if re.search(r"v000\d", line)]
    assert [re.search(r"v000\d", r).group() for r in rows] == ["v0001", "v0002"]  # type: ignore[union-attr]
    assert ["*" in r for r in rows] == [False, True]
    # the earlier version is kept as it was
    with xr.open_zarr(versions_dir(OUT) / "v0001.zarr") as kept:
        assert_bit_identical(kept.load(), first)


def test_a_reader_keeps_the_version_it_opened_while_a_new_one_is_published(
    project: Path,
) -> None:
    old = published()
    with open_published(OUT) as reader:
        publish_dataset(old.assign(xsec_real=old.xsec_real * 2), OUT)
        assert_bit_identical(reader.load(), old)
    assert published().xsec_real.equals(2 * old.xsec_real)


def test_reading_a_result_does_not_go_through_the_default_dask_scheduler(project: Path) -> None:
    """A default client left by a failed connection once hung `farm report` in CI; a published
    result is read without dask, so no default scheduler can take the read."""
    import dask

    old = published()
    with dask.config.set(scheduler="dask.distributed"), open_published(OUT) as ds:
        # with dask-backed arrays this raises "No clients found" (or waits on a stale client)
        assert_bit_identical(ds.load(), old)


def test_readers_during_publishing_always_see_one_complete_version(project: Path) -> None:
    old = published()
    new = old.assign(xsec_real=old.xsec_real * 2, cov_real=old.cov_real * 4)
    seen: list[xr.Dataset] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with open_published(OUT) as ds:
                seen.append(ds[["xsec_real", "cov_real"]].load())

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for ds in (new, old, new):
            publish_dataset(ds, OUT)
    finally:
        stop.set()
        thread.join()
    assert versions() == [1, 2, 3, 4]
    assert len(seen) >= 3
    for ds in seen:
        factor = float(ds.xsec_real[0, 0] / old.xsec_real[0, 0])
        assert factor in (1.0, 2.0)
        assert ds.xsec_real.equals(factor * old.xsec_real)
        assert ds.cov_real.equals(factor**2 * old.cov_real)
    assert not [p for p in versions_dir(OUT).iterdir() if p.name.startswith(".")]
    with xr.open_zarr(OUT) as latest:  # the plain path, after publishing: the newest version
        assert latest.xsec_real.equals(new.xsec_real)
