"""docs/config.md (issue 15 item 6): generated from the configuration schema, a description for
every key and units for every number, so that a knob's ``sigma`` says whether it is PE or a
fraction."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.config.analysis import KNOBS
from farm.config.reference import _by_table, keys, knob_units, main, markdown, split_units

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def every_key() -> list:
    return [k for (table, cls) in _by_table() for k in keys(cls, table)]


def test_the_committed_reference_is_the_generated_one() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(), (
        "docs/config.md is stale: run `python3 -m farm.config.reference --write docs/config.md`"
    )


def test_every_key_has_a_description_and_every_number_its_units() -> None:
    found = every_key()
    assert len(found) > 100  # every table of every generator
    assert [f"{k.table} {k.name}" for k in found if not k.description] == []
    assert [f"{k.table} {k.name}" for k in found if k.numeric and not k.units] == []


@pytest.mark.parametrize(
    ("table", "name", "units"),
    [
        ("[source]", "beam_power_mw", "MW"),
        ("[detector]", "roi_max", "readout units: PE or keVee"),
        ("[detector.efficiency]", "threshold", "readout units: PE or keVee"),
        ("[[systematics]]", "normalization", "fraction"),
        ("[binning]", "flux_edges_mev", "MeV"),
        ("[analysis]", "universe_precision", "fraction"),
    ],
)
def test_units_are_those_the_code_uses(table: str, name: str, units: str) -> None:
    assert any(k.table == table and k.name == name and k.units == units for k in every_key())


def test_a_knobs_sigma_is_in_the_units_of_its_parameter() -> None:
    assert knob_units(KNOBS["threshold"]).startswith("readout units")
    assert knob_units(KNOBS["ccqe_ma_mev"]) == "MeV"
    assert knob_units(KNOBS["quenching"]).startswith("fraction")
    text = markdown()
    for name in KNOBS:
        assert f"| `{name}` | {knob_units(KNOBS[name])} |" in text


def test_units_are_read_from_the_end_of_a_description() -> None:
    assert split_units("Beam power on target [MW].") == ("Beam power on target.", "MW")
    assert split_units("A window [start, stop) in µs, then more.") == (
        "A window [start, stop) in µs, then more.",
        "",
    )


def test_the_writer_writes_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "config.md"
    assert main(["--write", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == markdown()
