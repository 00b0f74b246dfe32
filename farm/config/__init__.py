"""Configuration: TOML files validated once at the boundary into frozen, typed objects.

Errors name the file, the key and what is allowed; unknown keys are rejected.

>>> cfg = load_config("sns-csi")            # doctest: +SKIP
>>> cfg.sample.generator
'sns-cevns'
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveFloat, ValidationError, model_validator

from farm.config._base import Section
from farm.config.analysis import (
    AnalysisSection,
    BinningSection,
    DataSection,
    ModelSection,
    SystematicSection,
)
from farm.config.flux import FluxSection
from farm.config.sample import (
    BeamSource,
    CevnsDetector,
    CevnsPhysics,
    GenerationSection,
    IbdDetector,
    IbdPhysics,
    NuscopeDetector,
    NuscopePhysics,
    ReactorSource,
    SampleSection,
    SnsBackgrounds,
    SnsSource,
    SteadyStateBackground,
)
from farm.usercache import farm_cache_dir

__all__ = [
    "GENERATOR_VERSION",
    "STORE_DIR_ENV",
    "ConfigError",
    "ExternalConfig",
    "FarmConfig",
    "NuscopeConfig",
    "ReactorCevnsConfig",
    "ReactorIbdConfig",
    "SnsCevnsConfig",
    "config_hash",
    "examples_dir",
    "generation_hash",
    "generation_hash_of",
    "load_config",
    "parse_config",
    "resolve_config_path",
    "store_dir",
    "store_path",
]


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid."""


class _Sample(Section):
    sample: SampleSection
    generation: GenerationSection = GenerationSection()
    flux: FluxSection | None = None
    """A flux file for the run (farm.config.flux); default: the source model of a generated
    sample, the recorded flux of an ingested one."""
    binning: BinningSection | None = None
    systematics: list[SystematicSection] = Field(default_factory=list)
    analysis: AnalysisSection = AnalysisSection()
    data: DataSection = DataSection()
    models: list[ModelSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> _Sample:
        for what, names in (
            ("systematics", [s.name for s in self.systematics]),
            ("models", [m.name for m in self.models]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                msg = f"[{what}] names must be unique; repeated: {', '.join(dupes)}"
                raise ValueError(msg)
        return self


class SnsCevnsConfig(_Sample):
    source: SnsSource
    detector: CevnsDetector
    physics: CevnsPhysics = CevnsPhysics()
    backgrounds: SnsBackgrounds = SnsBackgrounds()


class ReactorBackgrounds(Section):
    steady_state: SteadyStateBackground = SteadyStateBackground()


class ReactorCevnsConfig(_Sample):
    source: ReactorSource
    detector: CevnsDetector
    physics: CevnsPhysics = CevnsPhysics()
    backgrounds: ReactorBackgrounds = ReactorBackgrounds()


class ReactorIbdConfig(_Sample):
    source: ReactorSource
    detector: IbdDetector = IbdDetector()
    physics: IbdPhysics = IbdPhysics()


class NuscopeConfig(_Sample):
    source: BeamSource = BeamSource()
    detector: NuscopeDetector = NuscopeDetector()
    physics: NuscopePhysics = NuscopePhysics()


class ExternalPhysics(Section):
    """The nominal values the knobs of an ingested sample reweight about (the generator's)."""

    couplings: Literal["corrected", "tree"] = "corrected"
    """Weak-charge scheme of the CEvNS knobs (farm.physics.cevns.weak_charge)."""
    sin2w: float = Field(default=0.23857, gt=0.0, lt=1.0)
    """sin²θ_W at low Q² about which the sin2w knob reweights [1]."""
    neutron_radius_scale: PositiveFloat = 1.0
    """Factor on the Helm rms radius about which cevns_rms_radius reweights [factor]."""
    ccqe_ma_mev: PositiveFloat = 1000.0
    """CCQE axial mass about which ccqe_ma_mev reweights [MeV]."""


class ExternalConfig(_Sample):
    """A measurement on an ingested event store (``farm ingest``): the store brings its events,
    target, exposure and flux; this file the binning, systematics, extraction and models."""

    physics: ExternalPhysics = ExternalPhysics()

    @model_validator(mode="after")
    def _store(self) -> ExternalConfig:
        if not self.sample.store:
            msg = (
                "generator = 'external' runs on an ingested store: set [sample] store = PATH "
                "(written by `farm ingest`)"
            )
            raise ValueError(msg)
        return self


FarmConfig = SnsCevnsConfig | ReactorCevnsConfig | ReactorIbdConfig | NuscopeConfig | ExternalConfig

_BY_GENERATOR: dict[str, type[_Sample]] = {
    "sns-cevns": SnsCevnsConfig,
    "reactor-cevns": ReactorCevnsConfig,
    "reactor-ibd": ReactorIbdConfig,
    "nuscope-cc": NuscopeConfig,
    "external": ExternalConfig,
}


def examples_dir() -> Path:
    """The folder holding the named sample configurations (``examples/*.toml``).

    ``$FARM_EXAMPLES`` if set; else the repository's ``examples/`` (an editable install or a
    checkout); else the copy a regular install puts under ``<prefix>/share/farm/examples``.
    """
    import os
    import sys

    if os.environ.get("FARM_EXAMPLES"):
        return Path(os.environ["FARM_EXAMPLES"])
    repository = Path(__file__).resolve().parents[2] / "examples"
    if repository.is_dir():
        return repository
    return Path(sys.prefix) / "share" / "farm" / "examples"


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path to a TOML file, or the name of an example sample such as ``"sns-csi"``."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.is_file():  # a folder named like a sample is not a config
        if not path.is_file():
            msg = f"{path}: configuration file not found; give a TOML file or one of: {', '.join(example_names())}"
            raise ConfigError(msg)
        return path
    candidate = examples_dir() / f"{name_or_path}.toml"
    if candidate.is_file():
        return candidate
    msg = f"{name_or_path!r} is neither a TOML file nor a known sample; known samples: {', '.join(example_names())}"
    raise ConfigError(msg)


def example_names() -> list[str]:
    """Named samples: the example TOML files that describe a sample (not mapping files etc.)."""
    names = []
    for path in examples_dir().glob("*.toml"):
        try:
            sample = tomllib.loads(path.read_text()).get("sample", {})
            if isinstance(sample, dict) and "generator" in sample:
                names.append(path.stem)
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return sorted(names)


def _format_errors(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid configuration ({err.error_count()} problem(s)):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  [{key}] unknown key; remove it or check its spelling")
        elif e["type"] == "missing":
            lines.append(f"  [{key}] required key is missing; add it")
        else:
            given = e.get("input")
            shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
            hint = _TYPE_HINTS.get(e["type"], "")
            lines.append(f"  [{key}] {e['msg'].removeprefix('Value error, ')}{shown}{hint}")
    return "\n".join(lines)


_TYPE_HINTS = {
    "int_type": '; write a whole number without quotes, e.g. 100 (true, false and "100" are not counts)',
    "float_type": "; write a number without quotes, e.g. 19.3",
    "bool_type": "; write true or false, without quotes",
    "string_type": "; write text in quotes",
    "finite_number": "; give a finite number (nan and inf are not values)",
    "tuple_type": "; write an array, e.g. [0.0, 6.0]",
    "list_type": "; write an array, e.g. [5, 10, 20]",
}
"""What to write instead, per pydantic error type (the configuration is strict: farm.config._base)."""


def parse_config(data: dict[str, Any], *, source: str = "<config>") -> FarmConfig:
    """Validate a configuration mapping; ``source`` names the file in error messages."""
    generator = (
        data.get("sample", {}).get("generator") if isinstance(data.get("sample"), dict) else None
    )
    model = _BY_GENERATOR.get(str(generator))
    if model is None:
        msg = (
            f"{source}: [sample.generator] must be one of {', '.join(_BY_GENERATOR)} "
            f"(got {generator!r})"
        )
        raise ConfigError(msg)
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None


def load_config(name_or_path: str | Path, **overrides: Any) -> FarmConfig:
    """Read and validate a TOML configuration (a path or an example sample name)."""
    path = resolve_config_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        msg = f"{path}: not valid TOML: {err}"
        raise ConfigError(msg) from None
    if isinstance(data.get("measurement"), dict) or (
        isinstance(data.get("samples"), list) and "sample" not in data
    ):
        msg = (
            f"{path} is a multi-sample measurement ([measurement], [[samples]]; "
            "docs/measurements.md): `farm run` and `farm refresh` take it; give this command "
            "one of its samples' configurations"
        )
        raise ConfigError(msg)
    for dotted, value in overrides.items():
        section, key = dotted.split(".", 1)
        data.setdefault(section, {})[key] = value
    return parse_config(data, source=str(path))


_EVENT_SECTIONS = ("source", "detector", "physics", "backgrounds", "generation")

GENERATOR_VERSION = 3
"""Bump when a generator draws different events from the same configuration (a store made by
another version is then regenerated, never reused). 2: per-event selection thresholds and
resolution draws are stored, keVee readouts in float64. 3: untilted reactor ν̄_e energies are
drawn from the exact inverse CDF (the 8192-step table over-populated the tail above 8 MeV)."""


def generation_hash(cfg: FarmConfig) -> str:
    """Hash of the sections that define the events (not the analysis): a store's identity."""
    return generation_hash_of(cfg.model_dump(mode="json"), cfg.sample.generator)


def generation_hash_of(
    data: dict[str, Any], generator: str, version: int = GENERATOR_VERSION
) -> str:
    """:func:`generation_hash` of a configuration given as its JSON form (``model_dump(mode=
    "json")``, as a store records it under ``generator.config``), for one generator version."""
    blob = {k: data[k] for k in _EVENT_SECTIONS if k in data} | {
        "generator": generator,
        "generator_version": version,
    }
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


STORE_DIR_ENV = "FARM_STORE_DIR"
"""The environment variable naming the folder of generated event stores (:func:`store_dir`)."""


def store_dir() -> Path:
    """The folder of generated event stores: ``$FARM_STORE_DIR``, else the user's cache folder.

    The default, ``$XDG_CACHE_HOME/farm/stores`` (``~/.cache/farm/stores``), is the same from
    every working folder, so the same configuration finds its store wherever it is run from; a
    store is a cache (its name hashes everything that defines its events, and a missing one is
    regenerated), which is what that folder is for. A relative ``FARM_STORE_DIR`` is relative to
    the working folder (the farm's own tests set ``stores``); a cluster whose workers do not
    share the home folder sets it to shared storage (the image sets ``/data/stores``).
    """
    configured = os.environ.get(STORE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return farm_cache_dir() / "stores"


def store_path(cfg: FarmConfig) -> Path:
    """Where the sample's event store lives: ``[sample] store``, else ``store_dir()/<sample>-<hash
    of the event-defining sections>.zarr`` (``…-flux-<hash of [flux]>.zarr`` for a generated
    sample with a ``[flux]`` file, whose neutrinos are drawn from it)."""
    if cfg.sample.store:
        return Path(cfg.sample.store)
    name = f"{cfg.sample.name}-{generation_hash(cfg)[:10]}"
    if cfg.flux is not None and cfg.sample.generator != "external":  # drawn from the [flux] file
        name += f"-flux-{config_hash(cfg.flux)[:8]}"
    return store_dir() / f"{name}.zarr"


def config_hash(cfg: Section) -> str:
    """A stable hash of a validated configuration (canonical JSON, sorted keys)."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


__all__ += [
    "BeamSource",
    "CevnsDetector",
    "GenerationSection",
    "IbdDetector",
    "NuscopeDetector",
    "ReactorSource",
    "SnsBackgrounds",
    "SnsSource",
]
