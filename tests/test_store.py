"""Specification of farm.store: sharded zarr v3 event stores (docs/internals.md §2)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import pickle
import threading
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import zarr
from store_surgery import forge_values

from farm.store import (
    COLUMNS,
    REQUIRED_COLUMNS,
    SCHEMA_VERSION,
    ChecksumError,
    CorruptShardError,
    EventStore,
    SchemaError,
    StoreError,
    StoreWriter,
    shard_checksum,
    validate_values,
)
from farm.store.schema import default_chunk_rows, shard_ranges
from farm.store.values import VALUE_RULES

N_EVENTS = 1000
SHARD_ROWS = 256
CHUNK_ROWS = 64
# 1000 rows in 256-row shards: three full shards and a short last one (232 rows, last chunk partial)


def make_columns(n: int = N_EVENTS, seed: int = 7) -> dict[str, np.ndarray]:
    """Every schema column (so every dtype the schema uses), with values each column may hold
    (farm.store.values: codes from the enumerations, cosines in [-1, 1], efficiencies in [0, 1])."""
    rng = np.random.default_rng(seed)
    data = {}
    for name, spec in COLUMNS.items():
        rule = VALUE_RULES.get(name)
        if spec.dtype == np.bool_:
            data[name] = rng.random(n) < 0.5
        elif rule is not None and rule.codes is not None:
            data[name] = rng.choice(rule.codes, n).astype(spec.dtype)
        elif spec.dtype.kind in "iu":
            data[name] = rng.integers(0, 100, n).astype(spec.dtype)
        elif rule is not None and rule.hi <= 1.0:
            data[name] = rng.uniform(rule.lo, rule.hi, n).astype(spec.dtype)
        else:
            data[name] = rng.uniform(0.0, 50.0, n).astype(spec.dtype)
    data["event_id"] = np.arange(10, 10 + 3 * n, 3, dtype=np.uint64)
    return data


def shard_of(data: Mapping[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {name: values[start:stop] for name, values in data.items()}


def write_store(path: Path, data: Mapping[str, np.ndarray], **options: object) -> Path:
    n = len(data["event_id"])
    settings = {"shard_rows": SHARD_ROWS, "chunk_rows": CHUNK_ROWS, "attrs": {"seed": 5}}
    settings.update(options)
    with StoreWriter.create(path, n_events=n, columns=list(data), **settings) as writer:
        for index, (start, stop) in enumerate(writer.shard_ranges):
            writer.write_shard(index, shard_of(data, start, stop))
    return path


def shard_file(path: Path, column: str, index: int) -> Path:
    return path / column / "c" / str(index)


def assert_names(err: StoreError, store: Path, *, shard: int | None, column: str | None) -> None:
    assert err.store == str(store)
    assert err.shard == shard
    assert err.column == column
    message = str(err)
    assert str(store) in message
    if shard is not None:
        assert f"shard {shard}" in message
    if column is not None:
        assert repr(column) in message


def edit_group_attrs(path: Path, **changes: object) -> None:
    meta_path = path / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"].update(changes)
    meta_path.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return make_columns()


@pytest.fixture
def store_path(tmp_path: Path, data: dict[str, np.ndarray]) -> Path:
    return write_store(tmp_path / "sample.zarr", data)


# --- layout helpers ---------------------------------------------------------------------------


def test_shard_ranges_cover_all_rows_with_a_short_last_shard() -> None:
    assert shard_ranges(1000, 256) == [(0, 256), (256, 512), (512, 768), (768, 1000)]
    assert shard_ranges(0, 256) == []


def test_default_chunk_rows_is_the_largest_divisor_up_to_2_pow_20() -> None:
    assert default_chunk_rows(8_388_608) == 1_048_576
    assert default_chunk_rows(5_000_000) == 1_000_000
    assert default_chunk_rows(1000) == 1000


def test_default_chunk_rows_refuses_a_prime_shard_size() -> None:
    with pytest.raises(ValueError, match="pass chunk_rows explicitly"):
        default_chunk_rows(10_000_019)  # prime


# --- checksum ---------------------------------------------------------------------------------


def test_checksum_is_blake2b_128_of_little_endian_bytes_in_sorted_name_order() -> None:
    columns = {"w": np.array([0.5, 2.0]), "a": np.array([1, 2, 3], dtype=np.int8)}
    reference = hashlib.blake2b(
        columns["a"].tobytes() + columns["w"].astype("<f8").tobytes(), digest_size=16
    ).hexdigest()
    assert shard_checksum(columns) == reference


def test_checksum_does_not_depend_on_byte_order() -> None:
    values = np.array([1.5, -2.0, 3.25])
    assert shard_checksum({"x": values}) == shard_checksum({"x": values.astype(">f8")})


def test_checksum_changes_when_one_value_changes() -> None:
    values = np.arange(100, dtype=np.float64)
    changed = values.copy()
    changed[57] = np.nextafter(changed[57], np.inf)
    assert shard_checksum({"x": values}) != shard_checksum({"x": changed})


# --- round trip -------------------------------------------------------------------------------


def test_round_trip_returns_every_column_bit_for_bit(store_path: Path, data: dict) -> None:
    store = EventStore.open(store_path)
    assert store.n_shards == 4
    assert store.shard_ranges == [(0, 256), (256, 512), (512, 768), (768, 1000)]
    for index, (start, stop) in enumerate(store.shard_ranges):
        shard = store.read_shard(index)
        assert set(shard) == set(COLUMNS)
        for name, values in shard.items():
            assert values.dtype == COLUMNS[name].dtype
            np.testing.assert_array_equal(values, data[name][start:stop])


def test_read_columns_reads_row_ranges_that_cross_shard_and_chunk_edges(
    store_path: Path, data: dict
) -> None:
    store = EventStore.open(store_path)
    for start, stop in [(0, 0), (5, 300), (255, 257), (63, 65), (700, 1000), (0, 1000)]:
        got = store.read_columns(["event_id", "time_us"], start, stop)
        np.testing.assert_array_equal(got["event_id"], data["event_id"][start:stop])
        np.testing.assert_array_equal(got["time_us"], data["time_us"][start:stop])


def test_iter_shards_yields_the_default_columns_of_every_shard(store_path: Path, data) -> None:
    store = EventStore.open(store_path, columns=["w_nominal", "flavor"])
    seen = []
    for index, shard in store.iter_shards(verify=True):
        start, stop = store.shard_ranges[index]
        assert list(shard) == ["w_nominal", "flavor"]
        np.testing.assert_array_equal(shard["w_nominal"], data["w_nominal"][start:stop])
        seen.append(index)
    assert seen == [0, 1, 2, 3]


def test_store_reads_the_same_through_plain_zarr(store_path: Path, data: dict) -> None:
    group = zarr.open_group(store_path, mode="r")
    for name in ("event_id", "is_signal", "coslep", "channel"):
        np.testing.assert_array_equal(group[name][:], data[name])


def test_attrs_record_schema_layout_provenance_and_shard_checksums(
    store_path: Path, data: dict
) -> None:
    store = EventStore.open(store_path)
    attrs = store.attrs
    assert attrs["farm_schema_version"] == SCHEMA_VERSION
    assert (attrs["n_events"], attrs["shard_rows"], attrs["chunk_rows"]) == (1000, 256, 64)
    assert attrs["columns"]["enu_true"] == {
        "dtype": "float64",
        "unit": "MeV",
        "description": COLUMNS["enu_true"].description,
    }
    assert attrs["seed"] == 5
    assert store.shard_checksums[3] == shard_checksum(shard_of(data, 768, 1000))
    assert (
        attrs["shards"][3]["nbytes"]["event_id"]
        == (shard_file(store_path, "event_id", 3)).stat().st_size
    )


def test_store_of_zero_events_has_no_shards(tmp_path: Path) -> None:
    data = make_columns(0)
    store = EventStore.open(write_store(tmp_path / "empty.zarr", data))
    assert (store.n_events, store.n_shards) == (0, 0)
    assert store.read_columns(None, 0, 0)["w_nominal"].shape == (0,)
    assert store.verify() == []


def test_opened_store_pickles_to_workers(store_path: Path, data: dict) -> None:
    store = pickle.loads(pickle.dumps(EventStore.open(store_path)))
    np.testing.assert_array_equal(store.read_shard(1)["enu_true"], data["enu_true"][256:512])


def test_verify_passes_every_shard_of_a_clean_store(store_path: Path) -> None:
    checks = EventStore.open(store_path).verify()
    assert [c.index for c in checks] == [0, 1, 2, 3]
    assert all(c.ok and c.actual == c.expected and c.error is None for c in checks)


# --- atomic publish ---------------------------------------------------------------------------


def test_store_is_absent_until_commit(tmp_path: Path, data: dict) -> None:
    path = tmp_path / "sample.zarr"
    writer = StoreWriter.create(
        path, n_events=N_EVENTS, columns=list(data), shard_rows=SHARD_ROWS, chunk_rows=CHUNK_ROWS
    )
    assert writer.tmp_path.name.startswith(".sample.zarr.tmp-")
    for index, (start, stop) in enumerate(writer.shard_ranges):
        writer.write_shard(index, shard_of(data, start, stop))
    assert not path.exists()
    writer.commit()
    assert EventStore.open(path).n_events == N_EVENTS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.zarr"]
    assert not (path / "_farm").exists()


def test_exception_inside_the_writer_leaves_no_store_and_no_temp_dir(
    tmp_path: Path, data: dict
) -> None:
    path = tmp_path / "sample.zarr"
    with (
        pytest.raises(RuntimeError, match="generator died"),
        StoreWriter.create(
            path, n_events=N_EVENTS, columns=list(data), shard_rows=SHARD_ROWS, chunk_rows=64
        ) as writer,
    ):
        writer.write_shard(0, shard_of(data, 0, 256))
        raise RuntimeError("generator died")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_keeps_the_old_store_until_the_new_one_is_complete(
    tmp_path: Path, data: dict
) -> None:
    path = write_store(tmp_path / "sample.zarr", data)
    new = make_columns(seed=8)
    writer = StoreWriter.create(
        path,
        n_events=N_EVENTS,
        columns=list(new),
        shard_rows=SHARD_ROWS,
        chunk_rows=64,
        overwrite=True,
    )
    for index, (start, stop) in enumerate(writer.shard_ranges):
        writer.write_shard(index, shard_of(new, start, stop))
        old = EventStore.open(path).read_shard(0)["enu_true"]
        np.testing.assert_array_equal(old, data["enu_true"][:256])
    writer.commit()
    np.testing.assert_array_equal(
        EventStore.open(path).read_shard(0)["enu_true"], new["enu_true"][:256]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.zarr"]


def test_existing_path_is_refused_without_overwrite(store_path: Path, data: dict) -> None:
    with pytest.raises(StoreError, match="overwrite=True") as info:
        StoreWriter.create(store_path, n_events=N_EVENTS, columns=list(data), shard_rows=256)
    assert_names(info.value, store_path, shard=None, column=None)


def test_overwrite_refuses_a_directory_that_is_not_a_farm_store(tmp_path: Path, data) -> None:
    (tmp_path / "thesis").mkdir()
    with pytest.raises(StoreError, match="not a farm event store"):
        StoreWriter.create(tmp_path / "thesis", n_events=10, columns=list(data), overwrite=True)


def test_commit_names_the_shards_never_written(tmp_path: Path, data: dict) -> None:
    path = tmp_path / "sample.zarr"
    writer = StoreWriter.create(
        path, n_events=N_EVENTS, columns=list(data), shard_rows=SHARD_ROWS, chunk_rows=CHUNK_ROWS
    )
    writer.write_shard(0, shard_of(data, 0, 256))
    writer.write_shard(2, shard_of(data, 512, 768))
    with pytest.raises(StoreError, match=r"2 of 4 shards were never written \(1, 3\)") as info:
        writer.commit()
    assert_names(info.value, path, shard=1, column=None)
    assert not path.exists()
    writer.write_shard(1, shard_of(data, 256, 512))
    writer.write_shard(3, shard_of(data, 768, 1000))
    writer.commit()
    assert all(check.ok for check in EventStore.open(path).verify())


def test_reading_the_temporary_store_before_commit_is_refused(tmp_path: Path, data) -> None:
    writer = StoreWriter.create(tmp_path / "s.zarr", n_events=N_EVENTS, columns=list(data))
    with pytest.raises(StoreError, match="never committed"):
        EventStore.open(writer.tmp_path)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


# --- concurrent writers -----------------------------------------------------------------------


def serial_checksums(tmp_path: Path, data: dict) -> list[str]:
    return EventStore.open(write_store(tmp_path / "serial.zarr", data)).shard_checksums


def test_write_shard_from_two_threads_gives_the_serial_checksums(tmp_path: Path, data) -> None:
    writer = StoreWriter.create(
        tmp_path / "threads.zarr",
        n_events=N_EVENTS,
        columns=list(data),
        shard_rows=256,
        chunk_rows=CHUNK_ROWS,
    )
    barrier = threading.Barrier(2)

    def write(index: int) -> str:
        barrier.wait() if index < 2 else None
        start, stop = writer.shard_ranges[index]
        return writer.write_shard(index, shard_of(data, start, stop))

    with ThreadPoolExecutor(max_workers=2) as pool:
        returned = list(pool.map(write, [3, 1, 0, 2]))
    path = writer.commit()
    expected = serial_checksums(tmp_path, data)
    assert EventStore.open(path).shard_checksums == expected
    assert returned == [expected[i] for i in (3, 1, 0, 2)]


def test_write_shard_from_spawned_processes_gives_the_serial_checksums(
    tmp_path: Path, data: dict
) -> None:
    writer = StoreWriter.create(
        tmp_path / "procs.zarr",
        n_events=N_EVENTS,
        columns=list(data),
        shard_rows=256,
        chunk_rows=CHUNK_ROWS,
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [
            pool.submit(writer.write_shard, index, shard_of(data, start, stop))
            for index, (start, stop) in enumerate(writer.shard_ranges)
        ]
        returned = [f.result() for f in futures]
    path = writer.commit()
    assert EventStore.open(path).shard_checksums == serial_checksums(tmp_path, data) == returned


# --- errors name the store, shard and column --------------------------------------------------


def test_write_shard_refuses_a_missing_column(tmp_path: Path, data: dict) -> None:
    path = tmp_path / "s.zarr"
    writer = StoreWriter.create(path, n_events=N_EVENTS, columns=list(data), shard_rows=256)
    shard = shard_of(data, 256, 512)
    del shard["selected"]
    with pytest.raises(SchemaError, match="no values") as info:
        writer.write_shard(1, shard)
    writer.abort()
    assert_names(info.value, path, shard=1, column="selected")


def test_write_shard_refuses_a_dtype_other_than_the_schemas(tmp_path: Path, data) -> None:
    path = tmp_path / "s.zarr"
    writer = StoreWriter.create(path, n_events=N_EVENTS, columns=list(data), shard_rows=256)
    shard = shard_of(data, 0, 256)
    shard["w_nominal"] = shard["w_nominal"].astype(np.float32)
    with pytest.raises(SchemaError, match="dtype float32, the schema stores float64") as info:
        writer.write_shard(0, shard)
    assert_names(info.value, path, shard=0, column="w_nominal")
    writer.abort()


def test_write_shard_refuses_values_of_another_length(tmp_path: Path, data: dict) -> None:
    path = tmp_path / "s.zarr"
    writer = StoreWriter.create(path, n_events=N_EVENTS, columns=list(data), shard_rows=256)
    shard = shard_of(data, 768, 1000)
    shard["reco_pe"] = shard["reco_pe"][:-1]
    with pytest.raises(StoreError, match=r"shape \(231,\), the shard holds 232 rows") as info:
        writer.write_shard(3, shard)
    assert_names(info.value, path, shard=3, column="reco_pe")
    writer.abort()


def test_write_shard_refuses_event_ids_that_do_not_increase(tmp_path: Path, data) -> None:
    path = tmp_path / "s.zarr"
    writer = StoreWriter.create(path, n_events=N_EVENTS, columns=list(data), shard_rows=256)
    shard = shard_of(data, 256, 512)
    shard["event_id"] = shard["event_id"].copy()
    shard["event_id"][40] = shard["event_id"][39]  # a duplicate id at store row 296
    with pytest.raises(StoreError, match="row 296") as info:
        writer.write_shard(1, shard)
    assert_names(info.value, path, shard=1, column="event_id")
    writer.abort()


def test_create_refuses_a_store_without_a_required_column(tmp_path: Path) -> None:
    columns = [name for name in REQUIRED_COLUMNS if name != "w_nominal"]
    with pytest.raises(SchemaError, match="required column") as info:
        StoreWriter.create(tmp_path / "s.zarr", n_events=10, columns=columns)
    assert_names(info.value, tmp_path / "s.zarr", shard=None, column="w_nominal")
    assert list(tmp_path.iterdir()) == []


def test_create_refuses_an_unknown_column(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="unknown column") as info:
        StoreWriter.create(tmp_path / "s.zarr", n_events=10, columns=[*REQUIRED_COLUMNS, "pe"])
    assert info.value.column == "pe"


def test_create_refuses_attrs_that_are_not_json(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="'pot' is not JSON-serialisable"):
        StoreWriter.create(
            tmp_path / "s.zarr", n_events=10, columns=REQUIRED_COLUMNS, attrs={"pot": np.ones(2)}
        )


def test_open_refuses_another_schema_version(store_path: Path) -> None:
    edit_group_attrs(store_path, farm_schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(SchemaError) as info:
        EventStore.open(store_path)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(info.value)
    assert f"reads version {SCHEMA_VERSION}" in str(info.value)
    assert_names(info.value, store_path, shard=None, column=None)


def test_open_refuses_a_store_missing_a_required_column(store_path: Path) -> None:
    columns = json.loads((store_path / "zarr.json").read_text())["attributes"]["columns"]
    del columns["flavor"]
    edit_group_attrs(store_path, columns=columns)
    with pytest.raises(SchemaError, match="required column 'flavor' is missing") as info:
        EventStore.open(store_path)
    assert_names(info.value, store_path, shard=None, column="flavor")


def test_open_refuses_a_column_stored_with_another_dtype(store_path: Path) -> None:
    meta_path = store_path / "time_us" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["data_type"] = "float64"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SchemaError, match="dtype float64, the schema stores float32") as info:
        EventStore.open(store_path)
    assert_names(info.value, store_path, shard=None, column="time_us")


def test_open_refuses_a_manifest_with_a_gap(store_path: Path) -> None:
    shards = json.loads((store_path / "zarr.json").read_text())["attributes"]["shards"]
    shards[2]["start"] = 520
    edit_group_attrs(store_path, shards=shards)
    with pytest.raises(SchemaError, match=r"shards must cover \[0, 1000\) in order") as info:
        EventStore.open(store_path)
    assert_names(info.value, store_path, shard=2, column=None)


def test_open_refuses_a_path_that_is_not_a_farm_store(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    zarr.open_group(tmp_path / "other.zarr", mode="w", attributes={"made_by": "someone"})
    for name in ("plain", "other.zarr", "absent.zarr"):
        with pytest.raises(StoreError) as info:
            EventStore.open(tmp_path / name)
        assert_names(info.value, tmp_path / name, shard=None, column=None)
        assert "not a farm event store" in str(info.value) or "no event store" in str(info.value)


def test_truncated_shard_file_is_refused_on_open(store_path: Path) -> None:
    path = shard_file(store_path, "enu_true", 2)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptShardError, match="truncated") as info:
        EventStore.open(store_path)
    assert_names(info.value, store_path, shard=2, column="enu_true")
    assert "farm inspect --verify" in str(info.value)


def test_shard_file_truncated_after_open_fails_read_and_verify(store_path: Path) -> None:
    store = EventStore.open(store_path)
    path = shard_file(store_path, "enu_true", 2)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptShardError, match="truncated") as info:
        store.read_shard(2)
    assert_names(info.value, store_path, shard=2, column="enu_true")
    checks = store.verify()
    assert [c.ok for c in checks] == [True, True, False, True]
    assert checks[2].actual is None and "column 'enu_true'" in checks[2].error


def test_deleted_shard_file_raises_where_zarr_returns_fill_values(store_path: Path) -> None:
    store = EventStore.open(store_path)
    shard_file(store_path, "w_nominal", 1).unlink()
    # zarr itself silently returns the fill value for the missing shard
    assert not zarr.open_array(store_path / "w_nominal", mode="r")[256:512].any()
    with pytest.raises(CorruptShardError, match="missing") as info:
        store.read_columns(["w_nominal"], 200, 300)
    assert_names(info.value, store_path, shard=1, column="w_nominal")
    assert not store.verify([1])[0].ok
    with pytest.raises(CorruptShardError, match="missing") as info:
        EventStore.open(store_path)
    assert_names(info.value, store_path, shard=1, column="w_nominal")


def test_flipped_data_bytes_fail_verify_and_checked_iteration(store_path: Path) -> None:
    path = shard_file(store_path, "recoil_mev", 1)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF  # inside the data of chunk 0, same file size
    path.write_bytes(bytes(raw))
    store = EventStore.open(store_path)
    check = store.verify()[1]
    assert not check.ok and check.actual != check.expected
    assert "differs from the recorded" in check.error and "shard 1" in check.error
    with pytest.raises(ChecksumError) as info:
        list(store.iter_shards(["w_nominal"], verify=True))
    assert_names(info.value, store_path, shard=1, column=None)


def test_flipped_index_bytes_raise_on_read(store_path: Path) -> None:
    path = shard_file(store_path, "flavor", 0)
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0x01  # inside the shard index, guarded by its crc32c
    path.write_bytes(bytes(raw))
    store = EventStore.open(store_path)
    with pytest.raises(CorruptShardError, match="crc32c") as info:
        store.read_shard(0, ["flavor"])
    assert_names(info.value, store_path, shard=0, column="flavor")


def test_nan_weight_is_refused_by_the_writer_naming_its_shard_and_row(tmp_path: Path, data) -> None:
    bad = dict(data)
    bad["w_nominal"] = data["w_nominal"].copy()
    bad["w_nominal"][600] = np.nan
    path = tmp_path / "nan.zarr"
    with pytest.raises(StoreError, match="row 600 has w_nominal = nan; it must be finite") as info:
        write_store(path, bad)
    assert_names(info.value, path, shard=2, column="w_nominal")
    assert "nothing was written" in str(info.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_nan_weight_in_a_store_whose_checksums_verify_is_reported_when_reading(
    store_path: Path,
) -> None:
    """A store written before farm checked values: its checksums match, its values do not."""
    forge_values(store_path, {"w_nominal": {600: np.nan}})
    with pytest.raises(StoreError, match="row 600 has w_nominal = nan") as info:
        EventStore.open(store_path).read_shard(2)
    assert_names(info.value, store_path, shard=2, column="w_nominal")
    raw = EventStore.open(store_path, validate=False).read_shard(2)["w_nominal"]
    assert np.isnan(raw[600 - 512])
    checks = EventStore.open(store_path).verify()
    assert [c.ok for c in checks] == [True, True, False, True]
    assert "row 600 has w_nominal = nan" in str(checks[2].error)


@pytest.mark.parametrize("value", [-1e-30, np.inf, -np.inf])
def test_validate_values_rejects_negative_and_infinite_energies(value: float) -> None:
    enu = np.array([10.0, 20.0, value, 30.0])
    with pytest.raises(StoreError, match="row 12 has enu_true") as info:
        validate_values({"enu_true": enu}, store="s.zarr", shard=3, first_row=10)
    assert (info.value.shard, info.value.column) == (3, "enu_true")


def test_validate_values_accepts_zero_weights_and_energies() -> None:
    validate_values({"enu_true": np.zeros(5), "w_nominal": np.zeros(5)})


def test_reading_a_column_not_in_the_store_names_it(tmp_path: Path) -> None:
    data = {name: values for name, values in make_columns().items() if name in REQUIRED_COLUMNS}
    store = EventStore.open(write_store(tmp_path / "s.zarr", data))
    with pytest.raises(StoreError, match="not in this store") as info:
        store.read_shard(0, ["reco_pe"])
    assert info.value.column == "reco_pe"


def test_store_errors_pickle_with_their_fields() -> None:
    err = CorruptShardError(
        "the shard file is missing", store="/d/s.zarr", shard=4, column="flavor"
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is CorruptShardError
    assert (back.store, back.shard, back.column, str(back)) == ("/d/s.zarr", 4, "flavor", str(err))


def test_columns_equal_to_the_fill_value_are_still_written(tmp_path: Path, data: dict) -> None:
    # a background sample: no signal and channel code 0 everywhere; zarr would skip such chunks
    background = dict(data, is_signal=np.zeros(N_EVENTS, bool), channel=np.zeros(N_EVENTS, np.int8))
    path = write_store(tmp_path / "brn.zarr", background)
    assert shard_file(path, "is_signal", 3).stat().st_size > 232
    store = EventStore.open(path)
    assert not store.read_shard(3, ["is_signal"])["is_signal"].any()
    shard_file(path, "is_signal", 3).unlink()
    with pytest.raises(CorruptShardError, match="missing"):
        store.read_shard(3, ["is_signal"])


def test_reading_a_shard_past_the_last_names_the_valid_range(store_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no shard 4: the store has shards 0\.\.3") as info:
        EventStore.open(store_path).read_shard(4)
    assert_names(info.value, store_path, shard=4, column=None)
