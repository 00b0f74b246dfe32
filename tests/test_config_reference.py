"""docs/config.md (issue 15 item 6): generated from the configuration schema, a description for
every key and units for every number, so that a knob's ``sigma`` says whether it is PE or a
fraction."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic import Field, ValidationError

from farm.config._base import Section, attribute_docstrings
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


class _Probe(Section):
    """A section of each kind of key, for the docstring reading below."""

    plain: float = 1.0
    """A plain default [MeV]."""
    bounded: float = Field(default=0.5, ge=0.0, le=1.0)
    """A bounded default [fraction]."""
    required: int
    """A required key [events]."""
    described: float = Field(default=2.0, description="Given by Field.")
    """Not this one: an explicit description wins, as in pydantic."""
    undocumented: int = 3


def test_a_keys_docstring_is_its_description_and_its_constraints_stay() -> None:
    schema = _Probe.model_json_schema()
    props = schema["properties"]
    assert props["plain"]["description"] == "A plain default [MeV]."
    assert props["plain"]["default"] == 1.0
    assert props["bounded"]["description"] == "A bounded default [fraction]."
    assert (props["bounded"]["minimum"], props["bounded"]["maximum"]) == (0.0, 1.0)
    assert props["required"]["description"] == "A required key [events]."
    assert props["described"]["description"] == "Given by Field."
    assert "description" not in props["undocumented"]
    assert schema["required"] == ["required"]
    assert _Probe(required=1).bounded == 0.5
    with pytest.raises(ValidationError, match="bounded"):
        _Probe(required=1, bounded=2.0)


def _sections() -> list[type[Section]]:
    import farm.config
    import farm.ingest.mapping  # the ingest sections

    found, todo = [], [Section]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("farm."):
                found.append(sub)
            todo.append(sub)
    assert len(found) > 30, (farm.config, farm.ingest.mapping)
    return found


def test_docstrings_are_read_as_pydantic_reads_them() -> None:
    # farm reads the attribute docstrings itself (each module parsed once: pydantic's own
    # reading costs ≈ 40 ms of every start-up before Python 3.13); it must find what pydantic's
    # use_attribute_docstrings finds, for every section
    docs = pytest.importorskip("pydantic._internal._docs_extraction")
    for cls in _sections():
        theirs = docs.extract_docstrings_from_cls(cls, use_inspect=True)
        assert attribute_docstrings(cls) == theirs, cls.__qualname__
        for name, field in cls.model_fields.items():
            if name in theirs and name in inspect.get_annotations(cls):
                assert field.description is not None, f"{cls.__qualname__}.{name}"
