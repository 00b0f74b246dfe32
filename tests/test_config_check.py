"""``farm config check`` and ``farm config schema``; every command's ``--help`` shows an example."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from conftest import example, farm_cli, toml_text

from farm.cli import app
from farm.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ["sns-csi", "sns-lar", "reactor-ge", "reactor-ibd", "nuscope-lar"]
GENERATORS = {
    "sns-csi": "sns-cevns",
    "sns-lar": "sns-cevns",
    "reactor-ge": "reactor-cevns",
    "reactor-ibd": "reactor-ibd",
    "nuscope-lar": "nuscope-cc",
}


def write(tmp_path: Path, data: dict, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(toml_text(data))
    return path


# --- check -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES)
def test_check_accepts_every_example_and_names_its_generator(sample: str) -> None:
    result = farm_cli("config", "check", ROOT / "examples" / f"{sample}.toml")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK ")
    assert f"{sample} (generator {GENERATORS[sample]})" in result.stdout


def test_check_counts_the_systematics_and_their_universes() -> None:
    result = farm_cli("config", "check", "sns-csi")
    # examples/sns-csi.toml: flux 200, radius 100, four knobs of 50, three unisims of 2, bootstrap 100
    assert "10 (flux 1, knob 8, bootstrap 1): 3506 universes + the central value" in result.stdout
    assert "200,000 generated, seed 20261121" in result.stdout


def test_check_names_the_file_the_key_and_what_is_allowed(tmp_path: Path) -> None:
    data = example(detector={"material": "Xe"}, source={"distance": 19.3})
    path = write(tmp_path, data)
    result = farm_cli("config", "check", path)
    assert result.exit_code == 2  # bad input, the same as farm run
    output = " ".join(result.output.split())
    assert f"{path}: invalid configuration" in output
    assert "[detector.material] Input should be 'CsI', 'Ar', 'Ge' or 'NaI' (got 'Xe')" in output
    assert "[source.distance] unknown key" in output
    assert "allowed in [source]: beam_power_mw, proton_kinetic_gev, distance_m" in output


@pytest.mark.parametrize(
    "change",
    [
        {"generation": {"events": 0}},
        {"sample": {"generator": "sns-cevns-v2"}},
        {"analysis": {"method": "svd"}},
        {"generation": {"events": 1000}},
        {"analysis": {"iterations": 8}},
    ],
    ids=["zero-events", "unknown-generator", "unknown-method", "fewer-events", "more-iterations"],
)
def test_check_fails_exactly_when_load_config_does(tmp_path: Path, change: dict) -> None:
    path = write(tmp_path, example(**change))
    try:
        load_config(path)
        loads = True
    except ConfigError:
        loads = False
    result = farm_cli("config", "check", path)
    assert (result.exit_code == 0) is loads, result.output


def test_check_reports_a_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[sample\nname = 1\n")
    result = farm_cli("config", "check", path)
    assert result.exit_code == 2  # bad input, the same as farm run
    assert f"{path}: not valid TOML" in result.output


def test_check_reports_a_missing_file(tmp_path: Path) -> None:
    result = farm_cli("config", "check", tmp_path / "absent.toml")
    assert result.exit_code == 2
    assert "configuration file not found" in result.output


def test_check_validates_an_ingest_mapping() -> None:
    result = farm_cli("config", "check", ROOT / "examples" / "genie-mapping.toml")
    assert result.exit_code == 0, result.output
    assert "(ingest mapping)" in result.stdout
    assert "genie-numu-ar40: format gst, tree gst" in result.stdout
    assert "GENIE 3.04.02" in result.stdout


def test_check_names_an_unknown_mapping_key_and_the_keys_allowed(tmp_path: Path) -> None:
    data = tomllib.loads((ROOT / "examples" / "genie-mapping.toml").read_text())
    data["exposure"]["pot"] = 1e20
    path = tmp_path / "mapping.toml"
    path.write_text(toml_text(data))
    result = farm_cli("config", "check", path)
    assert result.exit_code == 2  # bad input, the same as farm run
    assert "[exposure.pot] unknown key; allowed here: value, unit, seconds" in result.output


# --- schema ----------------------------------------------------------------------------------------


def schema_of(*name: str) -> dict:
    result = farm_cli("config", "schema", *name)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_schema_of_a_generator_accepts_its_example(sample: str) -> None:
    schema = schema_of(GENERATORS[sample])
    jsonschema.validate(tomllib.loads((ROOT / "examples" / f"{sample}.toml").read_text()), schema)


def test_the_schema_rejects_an_unknown_key() -> None:
    schema = schema_of("sns-cevns")
    data = tomllib.loads((ROOT / "examples" / "sns-csi.toml").read_text())
    data["detector"]["colour"] = "blue"
    with pytest.raises(jsonschema.ValidationError, match="colour"):
        jsonschema.validate(data, schema)


def test_the_schema_of_any_configuration_accepts_every_example() -> None:
    schema = schema_of()
    for sample in SAMPLES:
        jsonschema.validate(
            tomllib.loads((ROOT / "examples" / f"{sample}.toml").read_text()), schema
        )


def test_the_ingest_mapping_schema_accepts_the_genie_example() -> None:
    schema = schema_of("ingest-mapping")
    data = tomllib.loads((ROOT / "examples" / "genie-mapping.toml").read_text())
    jsonschema.validate(data, schema)


def test_an_unknown_schema_name_lists_the_known_ones() -> None:
    result = farm_cli("config", "schema", "sns")
    assert result.exit_code == 2
    assert (
        "known: sns-cevns, reactor-cevns, reactor-ibd, nuscope-cc, external, ingest-mapping"
        in " ".join(result.output.split())
    )


# --- help ------------------------------------------------------------------------------------------


def leaf_commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under a (typer) click group, as the words that invoke it."""
    found = []
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):  # a group (typer vendors its own click classes)
            found += leaf_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMANDS = leaf_commands(typer.main.get_command(app))


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_help_shows_an_example(command: tuple[str, ...]) -> None:
    result = farm_cli(*command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Example: farm {' '.join(command)}" in result.output


def test_the_config_group_help_shows_an_example() -> None:
    result = farm_cli("config", "--help")
    assert "Example: farm config check examples/sns-csi.toml" in result.output
