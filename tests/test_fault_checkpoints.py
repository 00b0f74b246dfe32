"""Issue 11, item 5: a checkpoint is used only if its content is authentic.

Before, a checkpoint overwritten by a same-shaped sibling was loaded (wrong numbers, exit 0): a
checkpoint's content was not tied to its key. Each checkpoint now records its key and a digest of
its arrays (BLAKE2b; HMAC-SHA256 under ``FARM_CHECKPOINT_KEY`` when that is set). Each case
here damages one checkpoint of a finished run in one way, reruns, and asserts that exactly that
work item is recomputed, that a warning names the file and why, and that the result equals the
first run's bit for bit. The sample is 65 536 SNS CsI events (one block), ``-u 2``: 10 work items.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from conftest import assert_bit_identical, example, farm_cli, write_config

from farm.checkpoint import KEY_ENV, CheckpointStore, content_digest
from farm.cluster import ClusterOptions
from farm.config import FarmConfig, parse_config
from farm.runner import ensure_store, run

pytestmark = pytest.mark.faults

EVENTS = 65_536
UNIVERSES = 2
ITEMS = 10
SECRET = "0123456789abcdef0123456789abcdef"


def _config(store: Path) -> FarmConfig:
    data = example(sample={"store": str(store)}, generation={"events": EVENTS})
    return parse_config(data, source="test_fault_checkpoints")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("checkpoints") / "store.zarr"
    ensure_store(_config(path), log=lambda _: None)
    return path


def _run(store: Path, checkpoints: Path, log: list[str] | None = None) -> tuple[xr.Dataset, Any]:
    messages = [] if log is None else log
    return run(
        _config(store),
        ClusterOptions(kind="inprocess"),
        universes=UNIVERSES,
        checkpoint_dir=checkpoints,
        log=messages.append,
    )


@pytest.fixture(scope="module")
def first(store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[xr.Dataset, Path]:
    """The result of a first run, and the checkpoints it left (kept pristine)."""
    folder = tmp_path_factory.mktemp("first") / "checkpoints"
    ds, stats = _run(store, folder)
    assert stats.computed == stats.items == ITEMS
    return ds, folder


@pytest.fixture
def checkpoints(first: tuple[xr.Dataset, Path], tmp_path: Path) -> CheckpointStore:
    copy = tmp_path / "checkpoints"
    shutil.copytree(first[1], copy)
    return CheckpointStore(copy)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _record(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return json.loads(arrays["farm_checkpoint"].tobytes())


def _with_record(arrays: dict[str, np.ndarray], record: dict[str, Any]) -> dict[str, np.ndarray]:
    return arrays | {"farm_checkpoint": np.frombuffer(json.dumps(record).encode(), np.uint8)}


# each damages the checkpoint of ``keys[3]`` (``keys[4]`` is its same-shaped sibling)


def _keys_with_a_pair_at_3(c: CheckpointStore) -> list[str]:
    """Every key, sorted, but with the first two checkpoints of per-event universes of the same
    shapes at places 3 and 4 (the keys' order follows their digests, which change with
    farm.plan.KERNEL_VERSION)."""
    keys = sorted(c.keys())
    shapes = {}
    for key in keys:
        arrays = _arrays(c.path(key))
        if arrays["signal"].size:
            shapes.setdefault(tuple((n, a.shape) for n, a in sorted(arrays.items())), []).append(key)
    pair = next(group[:2] for group in shapes.values() if len(group) >= 2)
    rest = [k for k in keys if k not in pair]
    return [*rest[:3], *pair, *rest[3:]]


def _sibling_copied_over(c: CheckpointStore, keys: list[str]) -> str:
    shutil.copyfile(c.path(keys[4]), c.path(keys[3]))
    return "it holds the checkpoint of another work item [0-9a-f-]+, not of this one"


def _renamed(c: CheckpointStore, keys: list[str]) -> str:
    c.path(keys[4]).rename(c.path(keys[3]))
    return "it holds the checkpoint of another work item"


def _flipped_bit(c: CheckpointStore, keys: list[str]) -> str:
    arrays = _arrays(c.path(keys[3]))
    arrays["signal"].reshape(-1).view(np.uint8)[5] ^= 1  # one bit of one partial sum
    _save(c.path(keys[3]), arrays)
    return "its arrays do not match its digest: they changed after it was written"


def _array_swapped(c: CheckpointStore, keys: list[str]) -> str:
    arrays = _arrays(c.path(keys[3]))
    arrays["signal"] = _arrays(c.path(keys[4]))["signal"]
    _save(c.path(keys[3]), arrays)
    return "its arrays do not match its digest"


def _no_digest(c: CheckpointStore, keys: list[str]) -> str:
    arrays = _arrays(c.path(keys[3]))
    del arrays["farm_checkpoint"]
    _save(c.path(keys[3]), arrays)  # what farm wrote before checkpoints carried a digest
    return r"it has no content digest \(written by an earlier farm\), so it is not trusted"


def _record_not_json(c: CheckpointStore, keys: list[str]) -> str:
    arrays = _arrays(c.path(keys[3]))
    arrays["farm_checkpoint"] = np.frombuffer(b"\xff{not json", np.uint8)
    _save(c.path(keys[3]), arrays)
    return r"its record \(farm_checkpoint\) cannot be read"


def _truncated(c: CheckpointStore, keys: list[str]) -> str:
    path = c.path(keys[3])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return r"it cannot be read as a .npz of numbers"


def _array_missing(c: CheckpointStore, keys: list[str]) -> str:
    arrays = _arrays(c.path(keys[3]))
    del arrays["clamped"]
    _save(c.path(keys[3]), arrays)
    return "it lacks the arrays clamped"


def _forged_digest(c: CheckpointStore, keys: list[str]) -> str:
    """Edited, and its digest recomputed: accepted without a key (BLAKE2b catches accidents,
    not forgers), which is why a shared folder needs FARM_CHECKPOINT_KEY (below)."""
    arrays = _arrays(c.path(keys[3]))
    arrays["signal"] = arrays["signal"] * 2
    record = _record(arrays)
    record["digest"] = content_digest(keys[3], {k: v for k, v in arrays.items() if k != "farm_checkpoint"}, None)[1]  # fmt: skip
    _save(c.path(keys[3]), _with_record(arrays, record))
    return ""


def _an_npy(c: CheckpointStore, keys: list[str]) -> str:
    signal = _arrays(c.path(keys[3]))["signal"]
    with open(c.path(keys[3]), "wb") as f:
        np.save(f, signal)
    return r"it is a single .npy array, not a checkpoint"


def _empty(c: CheckpointStore, keys: list[str]) -> str:
    c.path(keys[3]).write_bytes(b"")
    return r"it cannot be read as a .npz of numbers"


DAMAGES: dict[str, Callable[[CheckpointStore, list[str]], str]] = {
    "a same-shaped sibling copied over it": _sibling_copied_over,
    "a sibling renamed over it": _renamed,
    "one bit flipped": _flipped_bit,
    "an array swapped for the sibling's": _array_swapped,
    "no digest (an earlier farm)": _no_digest,
    "a record that is not JSON": _record_not_json,
    "truncated": _truncated,
    "an array missing": _array_missing,
    "a .npy array": _an_npy,
    "empty": _empty,
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_checkpoint_is_recomputed_with_a_warning_naming_it(
    store: Path, first: tuple[xr.Dataset, Path], checkpoints: CheckpointStore, damage: str
) -> None:
    keys = _keys_with_a_pair_at_3(checkpoints)
    before = {k: checkpoints.path(k).read_bytes() for k in keys if k != keys[3]}
    reason = DAMAGES[damage](checkpoints, keys)
    log: list[str] = []
    ds, stats = _run(store, checkpoints.root, log)

    computed = 2 if damage == "a sibling renamed over it" else 1  # the sibling's file is gone
    assert (stats.computed, stats.from_checkpoint) == (computed, ITEMS - computed)
    assert_bit_identical(ds, first[0])
    [warning] = [m for m in log if m.startswith("warning:")]
    path = checkpoints.path(keys[3])
    assert warning.startswith(
        f"warning: {path}: checkpoint not used, work item {keys[3]} is recomputed: "
    )
    assert re.search(reason, warning), warning
    # rewritten authentic, the others untouched
    assert checkpoints.load(keys[3]) is not None
    assert all(checkpoints.path(k).read_bytes() == b for k, b in before.items() if k != keys[4])


def test_without_a_key_a_forged_digest_is_accepted_which_is_why_shared_folders_need_one(
    store: Path, checkpoints: CheckpointStore
) -> None:
    keys = _keys_with_a_pair_at_3(checkpoints)
    _forged_digest(checkpoints, keys)
    assert checkpoints.load(keys[3]) is not None  # the documented limit of an unkeyed digest


# --- FARM_CHECKPOINT_KEY ---------------------------------------------------------------------------


@pytest.fixture
def keyed(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CheckpointStore, xr.Dataset]]:
    monkeypatch.setenv(KEY_ENV, SECRET)
    folder = tmp_path / "keyed"
    ds, stats = _run(store, folder)
    assert stats.computed == ITEMS
    yield CheckpointStore(folder), ds


def test_with_a_key_every_checkpoint_is_signed_and_loads(
    store: Path, keyed: tuple[CheckpointStore, xr.Dataset]
) -> None:
    checkpoints, ds = keyed
    for key in checkpoints.keys():
        assert _record(_arrays(checkpoints.path(key)))["algorithm"] == "hmac-sha256"
    again, stats = _run(store, checkpoints.root)
    assert (stats.computed, stats.from_checkpoint) == (0, ITEMS)
    assert_bit_identical(again, ds)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("forged without the key", "its arrays do not match its digest under FARM_CHECKPOINT_KEY"),
        ("unsigned", r"it is not signed with FARM_CHECKPOINT_KEY"),
        ("another key", "its arrays do not match its digest under FARM_CHECKPOINT_KEY"),
        ("no key to check it", r"it is signed with a FARM_CHECKPOINT_KEY, which this process"),
    ],
)
def test_with_a_key_a_shared_folder_is_tamper_evident(
    store: Path,
    keyed: tuple[CheckpointStore, xr.Dataset],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    reason: str,
) -> None:
    checkpoints, ds = keyed
    keys = _keys_with_a_pair_at_3(checkpoints)
    if case == "forged without the key":
        _forged_digest(checkpoints, keys)  # a correct BLAKE2b digest, as a forger can make
        record = _record(_arrays(checkpoints.path(keys[3])))
        arrays = _arrays(checkpoints.path(keys[3]))
        _save(
            checkpoints.path(keys[3]), _with_record(arrays, record | {"algorithm": "hmac-sha256"})
        )
    elif case == "unsigned":
        monkeypatch.delenv(KEY_ENV)
        CheckpointStore(checkpoints.root).save(keys[3], checkpoints.load(keys[4]))  # type: ignore[arg-type]
        monkeypatch.setenv(KEY_ENV, SECRET)
    elif case == "another key":
        monkeypatch.setenv(KEY_ENV, "another-key-of-32-characters-abc")
    else:
        monkeypatch.delenv(KEY_ENV)
    log: list[str] = []
    again, stats = _run(store, checkpoints.root, log)
    warnings = [m for m in log if m.startswith("warning:")]
    assert warnings and all(re.search(reason, w) for w in warnings), warnings
    assert stats.computed == (ITEMS if case in ("another key", "no key to check it") else 1)
    assert_bit_identical(again, ds)


def test_a_short_key_is_refused_without_showing_it(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        tmp_path / "a.toml",
        example(sample={"store": str(store)}, generation={"events": EVENTS}),
    )
    monkeypatch.setenv(KEY_ENV, "hunter2")
    result = farm_cli("run", config, "--out", tmp_path / "r.zarr", "--cluster", "inprocess")
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "FARM_CHECKPOINT_KEY holds 7 characters, too few for an HMAC key" in text
    assert "hunter2" not in text


def test_the_farm_run_command_prints_the_warning_and_exits_0(tmp_path: Path, store: Path) -> None:
    config = write_config(
        tmp_path / "a.toml",
        example(sample={"store": str(store)}, generation={"events": EVENTS}),
    )
    out = tmp_path / "r.zarr"
    args = ("run", config, "--out", out, "--cluster", "inprocess", "-u", UNIVERSES)
    assert farm_cli(*args).exit_code == 0
    checkpoints = CheckpointStore(out.with_name("r.zarr.checkpoints"))
    keys = _keys_with_a_pair_at_3(checkpoints)
    _sibling_copied_over(checkpoints, keys)
    result = farm_cli(*args)
    text = " ".join(result.output.split())
    assert result.exit_code == 0, text
    assert f"warning: {checkpoints.path(keys[3])}: checkpoint not used, work item {keys[3]}" in text
    assert f"computed 1 of {ITEMS} work items ({ITEMS - 1} from checkpoints)" in text
    assert zipfile.is_zipfile(checkpoints.path(keys[3]))
