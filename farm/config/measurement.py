"""A multi-sample measurement: several samples planned into one run, their covariances joined.

A measurement file holds a ``[measurement]`` table and one ``[[samples]]`` entry per sample
(each an existing sample configuration, or a configuration of an ingested store); optional
``[[systematics]]`` are shared systematics defined once for every sample (docs/measurements.md).
A file of ``[[samples]]`` alone is a measurement named after the file, nothing shared::

    [measurement]
    name = "coherent-joint"
    universe_seed = 4242
    shared = ["flux_normalization"]

    [[samples]]
    config = "sns-csi.toml"

Validated like a sample configuration: strict types, unknown keys refused, errors name the key.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from farm.config._base import Section
from farm.config.analysis import SystematicSection

__all__ = [
    "MeasurementConfig",
    "MeasurementSection",
    "SampleEntry",
    "is_measurement_file",
    "read_measurement",
]


class MeasurementSection(Section):
    """What spans the samples: the name, the one universe seed, the shared systematics."""

    name: str = Field(min_length=1, pattern=r"^[\w.+-]+$")
    description: str = ""
    universe_seed: int | None = Field(default=None, ge=0)
    """The seed every sample's universes are thrown from (default: the first sample's
    ``[analysis] universe_seed``): a shared systematic's throws must come from one seed."""
    shared: list[str] = Field(default_factory=list)
    """Systematics thrown once for all the samples that declare them (same name, same throws).
    Every other systematic is independent: it is renamed ``SAMPLE/NAME`` (its own throws)."""
    flux_edges_mev: dict[str, list[float]] | None = None
    """Flux bins for every sample (replacing their ``[binning] flux_edges_mev``): a shared flux
    systematic throws a change per flux bin, so samples sharing one need the same bins."""


class SampleEntry(Section):
    """One sample of the measurement."""

    config: str = Field(min_length=1)
    """A sample configuration: a path (relative to the measurement file) or an example name."""


class MeasurementConfig(Section):
    measurement: MeasurementSection
    samples: list[SampleEntry] = Field(min_length=2)
    systematics: list[SystematicSection] = Field(default_factory=list)
    """Shared systematics defined here once: each replaces (or adds) the systematic of that
    name in every sample, and is shared."""

    @model_validator(mode="after")
    def _unique(self) -> MeasurementConfig:
        names = [s.name for s in self.systematics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"[[systematics]] names must be unique; repeated: {', '.join(dupes)}"
            raise ValueError(msg)
        shared = self.measurement.shared
        dupes = sorted({n for n in shared if shared.count(n) > 1})
        if dupes:
            msg = f"[measurement.shared] names a systematic twice: {', '.join(dupes)}"
            raise ValueError(msg)
        return self

    @property
    def shared_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.measurement.shared, *(s.name for s in self.systematics)]))


def is_measurement_file(path: str | Path) -> bool:
    """Whether ``path`` is a TOML file holding a ``[measurement]`` table (not a sample)."""
    path = Path(path)
    if path.suffix != ".toml" or not path.is_file():
        return False
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    if isinstance(data.get("measurement"), dict):
        return True
    # a file of [[samples]] alone is a measurement too (named after the file)
    return isinstance(data.get("samples"), list) and "sample" not in data


def read_measurement(path: str | Path) -> MeasurementConfig:
    """Validate a measurement file; a :class:`~farm.config.ConfigError` names the file and key."""
    from farm.config import ConfigError, _format_errors

    path = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        msg = f"{path}: not valid TOML: {err}"
        raise ConfigError(msg) from None
    if "measurement" not in data and isinstance(data.get("samples"), list):
        data["measurement"] = {"name": re.sub(r"[^\w.+-]+", "_", path.stem) or "measurement"}
    try:
        return MeasurementConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(str(path), err)) from None
