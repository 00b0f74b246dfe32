"""The ``farm`` command line: generate every sample, inspect and verify it, and fail clearly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from farm.cli import app
from farm.config import load_config
from farm.samples.generate import generate_rows
from farm.store import EventStore

SAMPLES = ["sns-csi", "sns-lar", "reactor-ge", "reactor-ibd", "nuscope-lar"]
EVENTS = 5_000
SHARD_SIZE = 2_048  # three shards, the last one short

needs_nuscope = pytest.mark.skipif(
    importlib.util.find_spec("farm.samples.nuscope") is None,
    reason="the nuSCOPE generator (farm.samples.nuscope) is not written yet",
)


def farm(*args: str) -> Result:
    # wide console: rich would otherwise wrap messages at 80 columns
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


def one_line(result: Result) -> str:
    return " ".join(result.output.split())


def generate(name: str, out: Path, *extra: str) -> Result:
    return farm(
        "generate",
        name,
        "--events",
        str(EVENTS),
        "--shard-size",
        str(SHARD_SIZE),
        "--out",
        str(out),
        *extra,
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each sample generated once by ``farm generate`` (nuSCOPE only if its generator exists)."""
    tmp = tmp_path_factory.mktemp("cli")
    out = {}
    for name in SAMPLES:
        if name == "nuscope-lar" and importlib.util.find_spec("farm.samples.nuscope") is None:
            continue
        result = generate(name, tmp / f"{name}.zarr")
        assert result.exit_code == 0, result.output
        out[name] = tmp / f"{name}.zarr"
    return out


@pytest.mark.parametrize(
    "name", [pytest.param(s, marks=needs_nuscope) if s == "nuscope-lar" else s for s in SAMPLES]
)
def test_generate_writes_the_sample_and_inspect_verify_reads_it_back_clean(
    name: str, stores
) -> None:
    path = stores[name]
    store = EventStore.open(path)
    assert store.n_events == EVENTS
    assert store.n_shards == 3
    assert store.attrs["sample"] == name

    result = farm("inspect", str(path), "--verify")

    assert result.exit_code == 0, result.output
    text = one_line(result)
    produced = sum(float(cols["w_nominal"].sum()) for _, cols in store.iter_shards(["w_nominal"]))
    selected = sum(
        float(cols["w_nominal"][cols["selected"]].sum())
        for _, cols in store.iter_shards(["w_nominal", "selected"])
    )
    assert f"expected events: {produced:.6g} produced, {selected:.6g} selected" in text
    assert f"{EVENTS:,} events in 3 shard(s)" in text
    assert "checksums: all 3 shard(s) OK" in text


def test_generated_store_holds_the_events_of_the_configuration(stores) -> None:
    # the CLI's --events/--seed overrides reach the generator: the store equals generate_rows
    cfg = load_config("sns-csi", **{"generation.events": EVENTS})
    rows = generate_rows(cfg, 0, EVENTS)
    store = EventStore.open(stores["sns-csi"])
    stored = store.read_columns(None, 0, EVENTS)
    for name, values in rows.items():
        assert np.array_equal(stored[name], values), name
    assert store.attrs["generator"]["seed"] == cfg.generation.seed


def test_generate_with_the_same_seed_gives_the_same_shard_checksums(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        seed = "8" if name == "c" else "7"
        assert generate("reactor-ge", tmp_path / f"{name}.zarr", "--seed", seed).exit_code == 0
    a, b, c = (EventStore.open(tmp_path / f"{n}.zarr").shard_checksums for n in ("a", "b", "c"))
    assert a == b
    assert set(a).isdisjoint(c)


def test_inspect_verify_fails_on_a_flipped_byte_in_a_shard_file(tmp_path: Path) -> None:
    path = tmp_path / "flipped.zarr"
    assert generate("sns-csi", path).exit_code == 0
    shard_file = path / "w_nominal" / "c" / "1"
    data = bytearray(shard_file.read_bytes())
    data[80] ^= 0x01  # lowest mantissa byte of row 2048 + 10: still a valid, positive weight
    shard_file.write_bytes(bytes(data))

    result = farm("inspect", str(path), "--verify")

    assert result.exit_code == 1
    text = one_line(result)
    assert "shard 1: FAILED" in text
    assert "1 of 3 shard(s) failed verification" in text


def test_inspect_of_a_path_that_is_not_a_store_exits_2_naming_it(tmp_path: Path) -> None:
    result = farm("inspect", str(tmp_path / "missing.zarr"))
    assert result.exit_code == 2
    assert "missing.zarr: no event store at this path" in one_line(result)


def test_generate_of_an_unknown_sample_exits_2_listing_the_known_samples(tmp_path: Path) -> None:
    result = farm("generate", "sns-xenon", "--out", str(tmp_path / "x.zarr"))
    assert result.exit_code == 2
    text = one_line(result)
    assert "'sns-xenon' is neither a TOML file nor a known sample" in text
    assert "known samples: nuscope-lar, reactor-ge, reactor-ibd, sns-csi, sns-ge, sns-lar" in text
    assert not (tmp_path / "x.zarr").exists()


def test_generate_with_an_invalid_override_names_the_file_and_key(tmp_path: Path) -> None:
    result = farm("generate", "sns-lar", "--events", "0", "--out", str(tmp_path / "x.zarr"))
    assert result.exit_code == 2
    text = one_line(result)
    assert "sns-lar.toml: invalid configuration" in text
    assert "[generation.events] Input should be greater than 0" in text


def test_generate_refuses_an_existing_store_unless_told_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    assert generate("reactor-ge", path, "--seed", "1").exit_code == 0
    first = EventStore.open(path).shard_checksums

    refused = generate("reactor-ge", path, "--seed", "2")
    assert refused.exit_code == 2
    assert "already exists" in one_line(refused)
    assert EventStore.open(path).shard_checksums == first

    assert generate("reactor-ge", path, "--seed", "2", "--overwrite").exit_code == 0
    assert EventStore.open(path).shard_checksums != first


def test_generate_takes_a_toml_file(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "examples" / "sns-lar.toml").read_text()
    config = tmp_path / "my-lar.toml"
    config.write_text(text.replace('name = "sns-lar"', 'name = "my-lar"'))
    assert generate(str(config), tmp_path / "mine.zarr").exit_code == 0
    attrs = json.loads((tmp_path / "mine.zarr" / "zarr.json").read_text())["attributes"]
    assert attrs["sample"] == "my-lar"


@pytest.mark.parametrize("command", ["generate", "inspect", "run"])
def test_help_of_every_command_works(command: str) -> None:
    result = farm(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: farm {command}" in one_line(result)
    assert "Example: farm " + command in one_line(result)


def test_top_level_help_lists_every_command() -> None:
    result = farm("--help")
    assert result.exit_code == 0, result.output
    for command in ("generate", "inspect", "run"):
        assert command in result.output
