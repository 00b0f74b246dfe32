"""A shard verified once on a machine is trusted by later processes while its files are
unchanged (farm.store.trust), and never when a byte of it may have changed."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import farm_cli
from store_surgery import flip_byte
from test_store import make_columns, shard_file, write_store

from farm.store import ChecksumError, EventStore, reader, trust


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of records of its own, and no settling delay (the stores here are just written)."""
    folder = tmp_path / "verified"
    monkeypatch.setenv(trust.VERIFIED_DIR_ENV, str(folder))
    monkeypatch.setattr(trust, "SETTLE_NS", 0)
    return folder


@pytest.fixture
def checksums(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per checksum a read recomputes."""
    computed: list[int] = []
    original = reader.shard_checksum
    monkeypatch.setattr(reader, "shard_checksum", lambda data: computed.append(1) or original(data))
    return computed


def _store(tmp_path: Path, name: str = "store.zarr") -> Path:
    return write_store(tmp_path / name, make_columns())


def _read_all(path: Path) -> dict[str, np.ndarray]:
    """What a new worker process does: open the store and read every row of two columns."""
    store = EventStore.open(path, verify_checksums=True)
    return store.read_columns(["w_nominal", "enu_true"], 0, store.n_events)


def test_a_shard_verified_by_one_process_is_trusted_by_the_next(
    tmp_path: Path, records: Path, checksums: list[int]
) -> None:
    path = _store(tmp_path)
    first = _read_all(path)
    assert len(checksums) == 4  # every shard verified once
    assert len(list(records.glob("*.json"))) == 4
    again = _read_all(path)  # a new EventStore: nothing kept in memory
    assert len(checksums) == 4  # none recomputed
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


def test_a_flipped_byte_after_the_record_is_caught_by_the_next_process(
    tmp_path: Path, records: Path, checksums: list[int]
) -> None:
    path = _store(tmp_path)
    _read_all(path)
    time.sleep(0.05)  # past the file system's timestamp granularity
    flip_byte(shard_file(path, "time_us", 2), 4 * 7)  # a column the read does not ask for
    with pytest.raises(ChecksumError, match=r"shard 2: checksum [0-9a-f]{32} differs"):
        _read_all(path)
    assert len(checksums) == 4 + 1  # shards 0 and 1 trusted, 2 recomputed; 3 never reached


def test_a_flipped_byte_with_its_modification_time_put_back_is_still_caught(
    tmp_path: Path, records: Path
) -> None:
    """``touch -d`` can set the modification time back; the status-change time it cannot."""
    path = _store(tmp_path)
    _read_all(path)
    time.sleep(0.05)
    target = shard_file(path, "w_nominal", 1)
    before = target.stat()
    flip_byte(target, 8 * 3)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert target.stat().st_size == before.st_size
    with pytest.raises(ChecksumError, match=r"shard 1: checksum"):
        _read_all(path)


def test_a_failed_verification_removes_the_record(tmp_path: Path, records: Path) -> None:
    path = _store(tmp_path)
    _read_all(path)
    time.sleep(0.05)
    flip_byte(shard_file(path, "w_nominal", 0), 8 * 3)
    with pytest.raises(ChecksumError):
        _read_all(path)
    assert len(list(records.glob("*.json"))) == 3


def test_a_copy_of_a_verified_store_is_verified_again(
    tmp_path: Path, records: Path, checksums: list[int]
) -> None:
    path = _store(tmp_path)
    _read_all(path)
    copy = tmp_path / "copy.zarr"
    shutil.copytree(path, copy)
    _read_all(copy)
    assert len(checksums) == 8


def test_files_changed_just_before_the_verification_are_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checksums: list[int]
) -> None:
    """A file written within the timestamp granularity of its verification could be written
    again without its times moving: such a shard is verified again by the next process."""
    monkeypatch.setenv(trust.VERIFIED_DIR_ENV, str(tmp_path / "verified"))
    assert trust.SETTLE_NS == 2_000_000_000
    path = _store(tmp_path)  # written just now
    _read_all(path)
    _read_all(path)
    assert len(checksums) == 8
    assert not list((tmp_path / "verified").glob("*.json"))


def test_records_off_verify_in_every_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checksums: list[int]
) -> None:
    monkeypatch.setattr(trust, "SETTLE_NS", 0)
    monkeypatch.setenv(trust.VERIFIED_DIR_ENV, "off")
    path = _store(tmp_path)
    _read_all(path)
    _read_all(path)
    assert len(checksums) == 8


def test_a_record_made_without_value_checks_does_not_spare_a_validating_read(
    tmp_path: Path, records: Path, checksums: list[int]
) -> None:
    path = _store(tmp_path)
    EventStore.open(path, verify_checksums=True, validate=False).read_columns(["w_nominal"], 0, 10)
    assert len(checksums) == 1
    EventStore.open(path, verify_checksums=True).read_columns(["w_nominal"], 0, 10)
    assert len(checksums) == 2  # values were never checked: verified again, values with it
    EventStore.open(path, verify_checksums=True, validate=False).read_columns(["w_nominal"], 0, 10)
    assert len(checksums) == 2  # the stronger record serves the weaker read


def test_farm_inspect_verify_always_recomputes_and_records(
    tmp_path: Path, records: Path, checksums: list[int]
) -> None:
    path = _store(tmp_path)
    _read_all(path)
    checks = EventStore.open(path).verify()
    assert all(c.ok for c in checks)
    assert len(checksums) == 4 + 4  # an explicit verification recomputes every shard
    for entry in records.glob("*.json"):
        entry.unlink()
    assert EventStore.open(path, validate=False).verify()[0].ok  # values are checked anyway
    assert EventStore.open(path).trusted_shards() == [0, 1, 2, 3]  # ... and recorded


def test_an_unwritable_records_folder_only_costs_the_next_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checksums: list[int]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(trust, "SETTLE_NS", 0)
    monkeypatch.setenv(trust.VERIFIED_DIR_ENV, str(blocker / "verified"))
    path = _store(tmp_path)
    first = _read_all(path)
    second = _read_all(path)
    assert len(checksums) == 8
    np.testing.assert_array_equal(first["w_nominal"], second["w_nominal"])


def test_a_damaged_record_is_ignored(tmp_path: Path, records: Path, checksums: list[int]) -> None:
    path = _store(tmp_path)
    _read_all(path)
    for entry in records.glob("*.json"):
        entry.write_text("{not json")
    _read_all(path)
    assert len(checksums) == 8


def test_farm_inspect_says_which_shards_this_machine_verified(
    tmp_path: Path, records: Path
) -> None:
    path = _store(tmp_path)
    before = farm_cli("inspect", str(path))
    assert "checksums: not verified (use --verify)" in before.stdout
    EventStore.open(path, verify_checksums=True).read_columns(["w_nominal"], 0, 300)  # shards 0, 1
    assert EventStore.open(path).trusted_shards() == [0, 1]
    after = farm_cli("inspect", str(path))
    assert "checksums: 2 of 4 shard(s) verified on this machine before" in after.stdout
    record = json.loads(farm_cli("inspect", str(path), "--json").stdout)
    assert record["shards_trusted"] == 2
    assert record["checksums_verified"] is False


def test_records_of_removed_stores_are_pruned(tmp_path: Path, records: Path) -> None:
    kept, gone = _store(tmp_path, "kept.zarr"), _store(tmp_path, "gone.zarr")
    _read_all(kept)
    _read_all(gone)
    (records / "damaged.json").write_text("{not json")
    assert len(list(records.glob("*.json"))) == 9
    shutil.rmtree(gone)
    assert trust.prune() == 5  # the four of the removed store, and the damaged one
    assert len(list(records.glob("*.json"))) == 4
    assert EventStore.open(kept).trusted_shards() == [0, 1, 2, 3]


def test_records_live_in_the_users_cache_folder_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(trust.VERIFIED_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert trust.records_dir() == tmp_path / "cache" / "farm" / "verified"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored (XDG rule)
    assert trust.records_dir() == Path.home() / ".cache" / "farm" / "verified"
