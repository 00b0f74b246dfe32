"""The mapping file of ``farm ingest``: from an outside generator's fields to store columns.

A mapping is TOML, validated once into frozen objects (unknown keys are errors naming the file,
the key and what is allowed). It says which field feeds each column and in which unit, how events
are classified into channels, which of them are signal and selected, and how generator weights
become expected events for an exposure. ``examples/genie-mapping.toml`` is a worked example.

Conditions (``when`` tables) compare fields to a value: ``cc = true``, ``neu = [14, -14]``
(any of), ``process_id = { min = 200, max = 249 }`` (inclusive). All conditions of one table
must hold.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from farm.config import ConfigError
from farm.config._base import AsTuple, Section
from farm.config.flux import FluxSection
from farm.ingest.channels import BUILTIN_CHANNELS, declared_codes, preset_rules
from farm.ingest.sections import (
    ExposureSection,
    GeneratorSection,
    NormalizationSection,
    Nucleus,
    StoreSection,
    TargetSection,
    WeightsSection,
)
from farm.ingest.units import UNITS
from farm.ingest.validation_errors import format_validation_error
from farm.store.schema import COLUMNS, Channel

__all__ = [
    "DERIVED_COLUMNS",
    "MAPPABLE_COLUMNS",
    "BranchSource",
    "ChannelName",
    "ChannelRule",
    "ConstantSource",
    "CosineSource",
    "IngestMapping",
    "MagnitudeSource",
    "NormalizationSection",
    "Nucleus",
    "Range",
    "TargetSection",
    "load_mapping",
    "parse_mapping",
]

ChannelName = str
"""A name of ``farm.store.schema.Channel`` or one the mapping declares (``[channel] declare``)."""
FlavorName = Literal["nue", "nuebar", "numu", "numubar"]

DERIVED_COLUMNS = (
    "event_id",
    "source_file",
    "source_entry",
    "channel",
    "is_signal",
    "selected",
    "w_nominal",
)
"""Columns ingest computes itself (row number, input file and entry, rules, exposure
normalisation)."""
MAPPABLE_COLUMNS = tuple(name for name in COLUMNS if name not in DERIVED_COLUMNS)
_REQUIRED_MAPPED = ("enu_true", "flavor")


# --- column sources ----------------------------------------------------------------------------


class BranchSource(Section):
    """Copy a field, converting from ``unit`` (required for dimensioned columns of gst trees)."""

    branch: str = Field(min_length=1)
    unit: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.branch,)


class MagnitudeSource(Section):
    """|p| = √(px² + py² + pz²) of three momentum-component fields."""

    magnitude: Annotated[tuple[str, str, str], AsTuple]
    unit: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return self.magnitude


class CosineSource(Section):
    """cos θ = p·n̂ / |p| of three momentum-component fields to ``[ingest] beam_direction`` n̂."""

    cosine: Annotated[tuple[str, str, str], AsTuple]

    @property
    def fields(self) -> tuple[str, ...]:
        return self.cosine


class ConstantSource(Section):
    """One value for every event, in the column's farm unit."""

    value: float

    @property
    def fields(self) -> tuple[str, ...]:
        return ()


_SOURCE_KEYS = ("branch", "magnitude", "cosine", "value")


def _source_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in _SOURCE_KEYS if key in value), None)
    kinds = {
        BranchSource: "branch",
        MagnitudeSource: "magnitude",
        CosineSource: "cosine",
        ConstantSource: "value",
    }
    return kinds.get(type(value))


ColumnSource = Annotated[
    Annotated[BranchSource, Tag("branch")]
    | Annotated[MagnitudeSource, Tag("magnitude")]
    | Annotated[CosineSource, Tag("cosine")]
    | Annotated[ConstantSource, Tag("value")],
    Discriminator(
        _source_kind,
        custom_error_type="column_source",
        custom_error_message=(
            "a column is one of {branch = NAME, unit = U}, {magnitude = [PX, PY, PZ], unit = U}, "
            "{cosine = [PX, PY, PZ]} or {value = NUMBER}"
        ),
    ),
]


# --- conditions and rules ----------------------------------------------------------------------


class Range(Section):
    """``min <= field <= max`` (either bound may be left out)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Range:
        if self.min is None and self.max is None:
            msg = "a range needs min, max or both"
            raise ValueError(msg)
        if self.min is not None and self.max is not None and self.max < self.min:
            msg = f"a range needs min <= max, got min = {self.min}, max = {self.max}"
            raise ValueError(msg)
        return self


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict | Range):
        return "range"
    return None


Condition = Annotated[
    Annotated[bool, Tag("bool")]
    | Annotated[int | float, Tag("number")]
    | Annotated[list[int | float], Tag("list")]
    | Annotated[Range, Tag("range")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message=(
            "a condition is true or false, a number, a list of numbers (any of) or "
            "{min = A, max = B} (inclusive; either may be left out)"
        ),
    ),
]
"""A field equals the value, is one of the list, or lies in the range."""


class ChannelRule(Section):
    """Events for which every condition of ``when`` holds get ``channel`` (first rule wins)."""

    channel: ChannelName
    when: dict[str, Condition] = Field(min_length=1)


class ChannelSection(Section):
    """How events are classified: the mapping's ``rules``, then a ``preset``'s, then ``default``."""

    rules: list[ChannelRule] = Field(default_factory=list)
    preset: Literal["genie", "nuhepmc"] | None = None
    """Rules from GENIE's flags or NuHepMC's process IDs (farm.ingest.channels), after ``rules``."""
    declare: list[str] = Field(default_factory=list)
    """Channels of the mapping's own (codes 64, 65, … in this order), for rules and signal."""
    default: ChannelName | None = None
    """Channel of events no rule matches; without it such events are an error."""

    @model_validator(mode="after")
    def _something(self) -> ChannelSection:
        if not self.rules and self.preset is None and self.default is None:
            msg = "give [[channel.rules]], a preset, a default channel, or several"
            raise ValueError(msg)
        codes = self.codes()
        names = [r.channel for r in self.rules] + ([self.default] if self.default else [])
        unknown = sorted({n for n in names if n not in codes})
        if unknown:
            msg = (
                f"unknown channel(s) {', '.join(unknown)}; built in: {', '.join(BUILTIN_CHANNELS)}"
                f"{'; declared: ' + ', '.join(self.declare) if self.declare else ''} "
                "(declare your own with [channel] declare = [NAME, …])"
            )
            raise ValueError(msg)
        return self

    def codes(self) -> dict[str, int]:
        """Every channel name this mapping may use → its code."""
        return {c.name: int(c) for c in Channel} | declared_codes(self.declare)

    def all_rules(self) -> list[ChannelRule]:
        """The mapping's rules, then the preset's, in the order they are tried."""
        return [*self.rules, *(ChannelRule.model_validate(r) for r in preset_rules(self.preset))]


class SignalSection(Section):
    """Signal: channel in ``channels``, flavour in ``flavors`` (default any) and ``when`` holds."""

    channels: list[ChannelName] = Field(min_length=1)
    """Built-in or declared channel names."""
    flavors: list[FlavorName] | None = None
    when: dict[str, Condition] = Field(default_factory=dict)


class SelectionSection(Section):
    """Selected: ``when`` holds (default: every event is selected)."""

    when: dict[str, Condition] = Field(default_factory=dict)


class IngestSection(Section):
    format: Literal["gst", "hepmc3"] | None = None
    """Input format; ``farm ingest --format`` or the file suffix when left out."""
    tree: str = "gst"
    """Tree read from gst ROOT files."""
    beam_direction: Annotated[tuple[float, float, float], AsTuple] = (0.0, 0.0, 1.0)
    """Beam direction n̂ for ``cosine`` columns (normalised here)."""
    read_rows: PositiveInt = 1_000_000
    """Events read per chunk: bounds memory, whatever the input's size."""
    keep: dict[str, Condition] = Field(default_factory=dict)
    """Ingest only events for which these conditions hold (default: all). Dropped events still
    count in the normalisation's Σ wght, so kept ones carry their share of the expected count;
    the store records how many were dropped."""

    @field_validator("beam_direction")
    @classmethod
    def _nonzero(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not any(v):
            msg = "beam_direction must not be the zero vector"
            raise ValueError(msg)
        return v


class IngestMapping(Section):
    """A validated mapping file."""

    ingest: IngestSection = IngestSection()
    store: StoreSection
    generator: GeneratorSection = GeneratorSection()
    exposure: ExposureSection
    target: TargetSection | None = None
    flux: FluxSection | None = None
    """The sample's flux (a file); recorded in the store, which a run then takes it from."""
    normalization: NormalizationSection
    columns: dict[str, ColumnSource]
    channel: ChannelSection
    signal: SignalSection
    selection: SelectionSection = SelectionSection()
    weights: list[WeightsSection] = Field(default_factory=list)
    """Precomputed universe weights written into the store (``[[weights]]``)."""

    @model_validator(mode="after")
    def _consistent(self) -> IngestMapping:
        codes = self.channel.codes()
        unknown = sorted(set(self.signal.channels) - set(codes))
        if unknown:
            msg = f"[signal] channels {', '.join(unknown)} are neither built in nor declared in [channel] declare"
            raise ValueError(msg)
        norm = self.normalization
        per_target = self.target is not None and self.target.per_target_xsec
        ways = [norm.events_per_weight, norm.expected_events, norm.flux_averaged_xsec_cm2]
        if all(w is None for w in ways) and not per_target:
            msg = (
                "[normalization] give one of: events_per_weight; expected_events; "
                "flux_averaged_xsec_cm2 (with xsec_target_scale, and fluence_per_cm2 or [flux]); "
                "or a flux_averaged_xsec_cm2 for every [target] nucleus"
            )
            raise ValueError(msg)
        if per_target and norm.xsec_target_scale is None:
            msg = "[target] nuclei give σ̄ per nucleus: set [normalization] xsec_target_scale (what σ̄ is per)"
            raise ValueError(msg)
        names = [w.name for w in self.weights]
        if len(set(names)) != len(names):
            msg = "[[weights]] names must be distinct"
            raise ValueError(msg)
        return self

    @field_validator("columns")
    @classmethod
    def _columns(cls, columns: dict[str, Any]) -> dict[str, Any]:
        for name, source in columns.items():
            if name not in MAPPABLE_COLUMNS:
                derived = " (ingest computes it)" if name in DERIVED_COLUMNS else ""
                msg = f"column {name!r} cannot be mapped{derived}; mappable columns: {', '.join(MAPPABLE_COLUMNS)}"
                raise ValueError(msg)
            _check_unit(name, source)
        missing = [name for name in _REQUIRED_MAPPED if name not in columns]
        if missing:
            msg = f"columns {', '.join(missing)} are required (every store holds them)"
            raise ValueError(msg)
        return columns

    def fields_used(self) -> dict[str, list[str]]:
        """Every field the mapping reads → the mapping keys that read it."""
        uses: dict[str, list[str]] = defaultdict(list)
        for f in self.ingest.keep:
            uses[f].append("ingest.keep")
        for name, source in self.columns.items():
            for f in source.fields:
                uses[f].append(f"columns.{name}")
        for i, rule in enumerate(self.channel.rules):
            for f in rule.when:
                uses[f].append(f"channel.rules[{i}].when")
        if self.channel.preset is not None:
            for rule in self.channel.all_rules()[len(self.channel.rules) :]:
                for f in rule.when:
                    if f"channel.preset ({self.channel.preset})" not in uses[f]:
                        uses[f].append(f"channel.preset ({self.channel.preset})")
        for f in self.signal.when:
            uses[f].append("signal.when")
        for f in self.selection.when:
            uses[f].append("selection.when")
        if self.normalization.weight is not None:
            uses[self.normalization.weight].append("normalization.weight")
        return dict(uses)


def _check_unit(name: str, source: Any) -> None:
    farm_unit = COLUMNS[name].unit
    unit = getattr(source, "unit", None)
    if not farm_unit and isinstance(source, MagnitudeSource):
        msg = f"column {name!r} is dimensionless; a magnitude cannot feed it"
        raise ValueError(msg)
    if unit is None:
        return
    if not farm_unit:
        msg = f"column {name!r} is dimensionless: remove unit = {unit!r}"
        raise ValueError(msg)
    if unit not in UNITS[farm_unit]:
        msg = f"column {name!r} is in {farm_unit}: unit {unit!r} is not one of {', '.join(UNITS[farm_unit])}"
        raise ValueError(msg)


# --- reading and errors ------------------------------------------------------------------------


def load_mapping(path: str | Path) -> IngestMapping:
    """Read and validate a mapping file; errors are :class:`~farm.config.ConfigError`."""
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: mapping file not found; see examples/genie-mapping.toml for one"
        raise ConfigError(msg)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        msg = f"{path}: not valid TOML: {err}"
        raise ConfigError(msg) from None
    return parse_mapping(data, source=str(path))


def parse_mapping(data: dict[str, Any], *, source: str = "<mapping>") -> IngestMapping:
    """Validate a mapping; ``source`` names the file in error messages."""
    try:
        return IngestMapping.model_validate(data)
    except ValidationError as err:
        message = format_validation_error(source, err, IngestMapping, what="ingest mapping")
        raise ConfigError(message) from None
