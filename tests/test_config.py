"""Configuration files are validated once, at the boundary, with errors naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from farm.config import (
    ConfigError,
    NuscopeConfig,
    ReactorCevnsConfig,
    ReactorIbdConfig,
    SnsCevnsConfig,
    examples_dir,
    generation_hash,
    load_config,
)

TINY_GE = """\
[sample]
name = "tiny-ge"
generator = "reactor-cevns"

[source]
distance_m = 17.0

[detector]
material = "Ge"
mass_kg = 3.0
quenching = "lindhard"
readout = "kevee"
"""

KNOB = """
[[systematics]]
name = "{name}"
kind = "knob"
parameter = "quenching"
{sigma}
"""


def write(tmp_path: Path, text: str, name: str = "tiny-ge.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path, **overrides: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, **overrides)
    return str(info.value)


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        ("sns-csi", SnsCevnsConfig),
        ("sns-lar", SnsCevnsConfig),
        ("reactor-ge", ReactorCevnsConfig),
        ("reactor-ibd", ReactorIbdConfig),
        ("nuscope-lar", NuscopeConfig),
    ],
)
def test_every_example_loads_into_its_generators_configuration(sample: str, kind: type) -> None:
    cfg = load_config(sample)
    assert isinstance(cfg, kind)
    assert cfg.sample.name == sample
    assert load_config(examples_dir() / f"{sample}.toml") == cfg


def test_a_minimal_file_gets_the_documented_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, TINY_GE))
    # docs/physics.md: 3.9 GW, typical fractions 0.564 / 0.076 / 0.304 / 0.056, one year
    assert cfg.source.thermal_power_mw == 3900.0
    assert cfg.source.fission_fractions == {
        "U235": 0.564,
        "U238": 0.076,
        "Pu239": 0.304,
        "Pu241": 0.056,
    }
    assert cfg.source.seconds == 365 * 86400.0
    assert cfg.generation.events == 1_000_000


def test_unknown_key_is_rejected_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_GE.replace("mass_kg = 3.0", "mass_kg = 3.0\nmas_kg = 3.0"))
    message = error_of(path)
    assert str(path) in message
    assert "[detector.mas_kg] unknown key" in message


def test_unknown_table_is_rejected_naming_file_and_table(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_GE + "\n[detectr]\nmass_kg = 1.0\n")
    message = error_of(path)
    assert str(path) in message
    assert "[detectr] unknown key" in message


def test_value_of_the_wrong_type_is_rejected_naming_file_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_GE.replace("mass_kg = 3.0", 'mass_kg = "three"'))
    message = error_of(path)
    assert str(path) in message
    assert "[detector.mass_kg]" in message
    assert "'three'" in message


def test_value_outside_its_range_is_rejected_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_GE.replace("mass_kg = 3.0", "mass_kg = -3.0"))
    message = error_of(path)
    assert str(path) in message
    assert "[detector.mass_kg] Input should be greater than 0" in message


def test_missing_required_key_is_named_with_its_file(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_GE.replace("distance_m = 17.0\n", ""))
    message = error_of(path)
    assert str(path) in message
    assert "[source.distance_m] required key is missing" in message


def test_fission_fractions_not_summing_to_one_are_rejected(tmp_path: Path) -> None:
    fractions = "fission_fractions = { U235 = 0.6, U238 = 0.076, Pu239 = 0.304, Pu241 = 0.056 }\n"
    path = write(
        tmp_path, TINY_GE.replace("distance_m = 17.0\n", "distance_m = 17.0\n" + fractions)
    )
    message = error_of(path)
    assert str(path) in message
    assert "[source]" in message
    assert "fission_fractions must sum to 1 (they sum to 1.036)" in message


def test_unknown_generator_is_rejected_listing_the_generators(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_GE.replace('"reactor-cevns"', '"reactor-cevnz"'))
    message = error_of(path)
    assert str(path) in message
    assert (
        "[sample.generator] must be one of sns-cevns, reactor-cevns, reactor-ibd, nuscope-cc"
        in message
    )
    assert "'reactor-cevnz'" in message


def test_duplicate_systematic_names_are_rejected_naming_the_name(tmp_path: Path) -> None:
    knobs = KNOB.format(name="qf", sigma="sigma = 0.05") * 2
    message = error_of(write(tmp_path, TINY_GE + knobs))
    assert str(tmp_path / "tiny-ge.toml") in message
    assert "[systematics] names must be unique; repeated: qf" in message


def test_knob_without_sigma_is_rejected_naming_the_systematic(tmp_path: Path) -> None:
    knobs = KNOB.format(name="ok", sigma="sigma = 0.05") + KNOB.format(name="qf", sigma="")
    message = error_of(write(tmp_path, TINY_GE + knobs))
    assert str(tmp_path / "tiny-ge.toml") in message
    assert "[systematics.1]" in message
    assert "systematic 'qf': a knob needs sigma > 0" in message


def test_knob_of_an_unknown_parameter_is_rejected_listing_the_knobs(tmp_path: Path) -> None:
    knob = KNOB.format(name="x", sigma="sigma = 0.1").replace('"quenching"', '"quenchng"')
    message = error_of(write(tmp_path, TINY_GE + knob))
    assert str(tmp_path / "tiny-ge.toml") in message
    assert "[systematics.0]" in message
    assert "parameter must be one of cevns_rms_radius, sin2w" in message
    assert "'quenchng'" in message


def test_file_that_is_not_toml_is_rejected_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_GE + "\nevents = = 3\n")
    message = error_of(path)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 14" in message  # the 12 lines of TINY_GE, a blank one, then the bad one


def test_missing_file_is_rejected_listing_the_known_samples(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    message = error_of(path)
    assert f"{path}: configuration file not found" in message
    assert "sns-csi" in message


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_GE)
    message = error_of(path, **{"generation.events": -5})
    assert str(path) in message
    assert "[generation.events] Input should be greater than 0" in message
    assert load_config(path, **{"generation.events": 5}).generation.events == 5


def test_validated_configuration_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, TINY_GE))
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.detector.mass_kg = 4.0  # type: ignore[misc]


def test_generation_hash_follows_the_events_not_the_analysis(tmp_path: Path) -> None:
    base = load_config(write(tmp_path, TINY_GE))
    reanalysed = load_config(
        write(tmp_path, TINY_GE + "\n[analysis]\nuniverse_seed = 99\n", "b.toml")
    )
    reseeded = load_config(write(tmp_path, TINY_GE + "\n[generation]\nseed = 99\n", "c.toml"))
    assert generation_hash(reanalysed) == generation_hash(base)
    assert generation_hash(reseeded) != generation_hash(base)
