"""A store is bound to the run that uses it: its recorded origin must match the configuration.

A run takes its events, weights and targets from the event store, and its flux, binning and
published configuration from the configuration file. Both must describe the same sample, or
the result mixes them (a CsI store generated at 30 m and 5 kg, run under a configuration that
says 19.3 m and 14.6 kg, gives σ × 0.445 and publishes 19.3 m). So every run (``prepare``)
compares, before it reads an event:

- a **generated** store: the configuration it recorded (``generator.config``, the fields behind
  its ``generator.generation_hash``) with the run's: ``sample.name``, ``sample.generator`` and
  every key of ``[source]``, ``[detector]``, ``[physics]``, ``[backgrounds]`` and
  ``[generation]`` except ``generation.shard_size`` (a layout: the events are the same for any
  shard size). Every differing key is named with both values. Equal fields under another
  generator version (the hash then differs) are refused too: that generator drew other events.
- an **ingested** store (``farm ingest``): what applies of the configuration: the target (its
  material and number of targets, to 0.1 %: mapping files carry rounded numbers), the exposure
  in the store's unit (POT, fissions or seconds, to 0.1 %), and ``[generation] events`` where
  the configuration or ``--events`` sets it. A ``generator = "external"`` configuration takes
  target, exposure and flux from the store, so only the events are compared; the flux a run
  uses is the store's own (:func:`farm.resolve.run_flux`).

``[generation] events`` (``--events``) is compared like any other key: a run uses all of a
store's events. A subset is not offered, because it would not be the sample the smaller
configuration generates (weights are normalised per component over all generated events, and
the components are interleaved block by block).
"""

from __future__ import annotations

import math
from typing import Any

from farm.config import (
    GENERATOR_VERSION,
    ExternalConfig,
    FarmConfig,
    NuscopeConfig,
    generation_hash_of,
)
from farm.resolve import detector_target, source_flux
from farm.store.errors import StoreError
from farm.store.reader import EventStore
from farm.store.schema import COLUMNS

__all__ = [
    "INGEST_TOLERANCE",
    "LAYOUT_KEYS",
    "check_reco_range",
    "check_store_binding",
    "config_exposure",
]

_SECTIONS = ("source", "detector", "physics", "backgrounds", "generation")
LAYOUT_KEYS = frozenset({"generation.shard_size"})
"""Keys that change how a store is cut into shards, not its events."""
INGEST_TOLERANCE = 1e-3
"""Relative tolerance on an ingested store's target count and exposure."""


def check_store_binding(cfg: FarmConfig, store: EventStore) -> None:
    """Refuse a store that does not belong to ``cfg``, naming every differing key and both values.

    Raises
    ------
    StoreError
        Naming the store, the dotted keys with the store's and the configuration's values, and
        what to do: regenerate the store, point ``[sample] store`` elsewhere, or fix the
        configuration.
    """
    attrs = store.attrs
    generator = attrs.get("generator")
    if "ingest" in attrs:
        _check_ingested(cfg, store)
    elif isinstance(cfg, ExternalConfig):
        msg = "generator = 'external' runs on a store written by `farm ingest`; this one was generated"
        hint = "point [sample] store at an ingested store, or run the configuration it was generated from"
        raise StoreError(msg, store=store.path, hint=hint)
    elif isinstance(generator, dict) and isinstance(generator.get("config"), dict):
        _check_generated(cfg, store, generator)
    else:
        msg = (
            "the store records neither the configuration it was generated from "
            "(generator.config) nor what it was ingested from (ingest), so a run cannot tell "
            "whether it belongs to this configuration"
        )
        hint = f"regenerate it with `farm generate CONFIG --out {store.path}`, or ingest it with `farm ingest`"
        raise StoreError(msg, store=store.path, hint=hint)
    if not isinstance(attrs.get("target"), dict):
        msg = "the store records no target (attribute 'target'): a run divides by its number of targets"
        hint = "regenerate it with `farm generate`, or add [target] to the ingest mapping and ingest again"
        raise StoreError(msg, store=store.path, hint=hint)
    if cfg.binning is not None:
        check_reco_range(cfg.binning.observable, cfg.binning.reco_edges, store)


def check_reco_range(observable: str, edges: list[float], store: EventStore) -> None:
    """Refuse reco edges that hold no selected event of the store, naming the observable's range.

    Uses the ranges the writer recorded per shard (no data is read); a store that recorded none
    (written before farm did) is not checked here, and an empty binning then stops the run when
    the histograms are assembled.
    """
    if observable not in store.columns:
        return  # prepare() names the columns the store has
    span = store.column_range(observable, selected=True)
    if span is None:
        return
    lo, hi = span
    if lo <= hi and hi >= edges[0] and lo < edges[-1]:
        return
    unit = COLUMNS[observable].unit if observable in COLUMNS else ""
    held = (
        "it holds no selected event with a finite value"
        if lo > hi
        else f"its selected events have {observable} from {lo:.6g} to {hi:.6g} {unit}".rstrip()
    )
    msg = f"[binning.reco_edges] {_edges(edges)} hold no selected event of this store: {held}"
    hint = "set reco_edges within that range, or [binning] observable to another column"
    raise StoreError(msg, store=store.path, column=observable, hint=hint)


def _edges(edges: list[float]) -> str:
    return "[" + ", ".join(f"{e:g}" for e in edges) + "]"


def _what_to_do(store: EventStore) -> str:
    return (
        f"regenerate the store from this configuration (`farm generate CONFIG --out "
        f"{store.path} --overwrite`), point [sample] store at a store generated from it (or "
        "remove [sample] store to use <sample>-<hash>.zarr in FARM_STORE_DIR), or fix the configuration"
    )


def _check_generated(cfg: FarmConfig, store: EventStore, generator: dict[str, Any]) -> None:
    recorded = generator["config"]
    current = cfg.model_dump(mode="json")
    differences = [
        (key, theirs, ours)
        for key, theirs, ours in _differences(_event_fields(recorded), _event_fields(current))
        if key not in LAYOUT_KEYS
    ]
    if differences:
        shown = "; ".join(_difference(key, theirs, ours) for key, theirs, ours in differences[:10])
        more = f"; and {len(differences) - 10} more" if len(differences) > 10 else ""
        msg = (
            "it was generated from another configuration "
            f"({len(differences)} key(s) differ): {shown}{more}"
        )
        raise StoreError(msg, store=store.path, hint=_what_to_do(store))
    name = str(recorded.get("sample", {}).get("generator", cfg.sample.generator))
    if generation_hash_of(recorded, name) != generator.get("generation_hash"):
        msg = (
            "the store was generated by another version of the generator (its generation_hash "
            f"{generator.get('generation_hash')} is not that of its recorded configuration under "
            f"generator version {GENERATOR_VERSION}), which draws other events"
        )
        raise StoreError(msg, store=store.path, hint=_what_to_do(store))
    if recorded.get("generation", {}).get("events") != store.n_events:
        msg = (
            f"the store holds {store.n_events} events, but its recorded configuration says "
            f"generation.events = {recorded.get('generation', {}).get('events')}: it was altered"
        )
        raise StoreError(msg, store=store.path, hint=_what_to_do(store))
    _check_generated_flux(cfg, store)


def _check_generated_flux(cfg: FarmConfig, store: EventStore) -> None:
    """A store's neutrinos were drawn from one flux (``generated_from_flux``: a ``[flux]`` file;
    absent: the source model); a run under another would mix them."""
    if isinstance(cfg, ExternalConfig):  # an ingested store carries its own flux
        return
    from farm.samples.generate import flux_generated_with

    theirs = store.attrs.get("generated_from_flux")
    ours = flux_generated_with(cfg)
    if (theirs or {}).get("checksum") == (ours or {}).get("checksum"):
        return
    drawn = "the source model ([source])" if theirs is None else str(theirs.get("source"))
    run = "the source model ([source])" if ours is None else f"[flux] file {cfg.flux.file}"  # type: ignore[union-attr]
    msg = f"its neutrinos were drawn from {drawn}, this configuration's flux is {run}"
    raise StoreError(msg, store=store.path, hint=_what_to_do(store))


def _event_fields(config: dict[str, Any]) -> dict[str, Any]:
    sample = config.get("sample", {}) if isinstance(config.get("sample"), dict) else {}
    fields = {"sample.name": sample.get("name"), "sample.generator": sample.get("generator")}
    for section in _SECTIONS:
        if section in config:
            fields.update(_flatten(config[section], section))
    return fields


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}"))
        return out
    return {prefix: value}


_ABSENT = object()


def _differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    order = ("sample", *_SECTIONS)  # what a sample is first, how it was generated last
    keys = sorted(recorded.keys() | current.keys(), key=lambda k: (order.index(k.split(".")[0]), k))
    out = []
    for key in keys:
        theirs, ours = recorded.get(key, _ABSENT), current.get(key, _ABSENT)
        if theirs != ours:
            out.append((key, theirs, ours))
    return out


def _difference(key: str, theirs: Any, ours: Any) -> str:
    if key == "generation.events":
        return (
            f"it holds {theirs} events, this configuration asks for {ours} (generation.events, "
            "or --events): a run uses all of a store's events, never a subset"
        )
    return f"{key} = {_shown(theirs)} in the store, {_shown(ours)} in this configuration"


def _shown(value: Any) -> str:
    return "(not set)" if value is _ABSENT else repr(value)


# --- ingested stores ---------------------------------------------------------------------------


def config_exposure(cfg: FarmConfig) -> dict[str, float]:
    """The exposure ``cfg`` describes, per unit: ``POT``, ``fissions``, ``seconds``."""
    exposure = source_flux(cfg).exposure
    out = {str(exposure["unit"]): float(exposure["value"])}
    if "seconds" in exposure:
        out["seconds"] = float(exposure["seconds"])
    return out


def _check_ingested(cfg: FarmConfig, store: EventStore) -> None:
    problems = []
    if "events" in cfg.generation.model_fields_set and cfg.generation.events != store.n_events:
        problems.append(
            f"it holds {store.n_events} events, this configuration (generation.events, or "
            f"--events) asks for {cfg.generation.events}: a run uses all of a store's events"
        )
    if isinstance(cfg, ExternalConfig):  # target and exposure are the store's own
        _refuse_ingested(store, problems)
        return
    target = store.attrs.get("target")
    ours = detector_target(cfg)
    if isinstance(target, dict):
        theirs_count, ours_count = _targets(target), _targets(ours)
        material = str(target.get("material", ""))
        if material.lower() != str(ours["material"]).lower():
            problems.append(
                f"its target is {material!r} (the mapping's [target] material), this "
                f"configuration's detector is {ours['material']!r}"
            )
        elif not _close(theirs_count, ours_count):
            problems.append(
                f"its target holds {theirs_count:.6g} targets (the mapping's [target]), this "
                f"configuration's detector holds {ours_count:.6g} ({_detector_mass(cfg)})"
            )
    exposure = store.attrs.get("exposure")
    if isinstance(exposure, dict):
        unit, value = exposure.get("unit"), exposure.get("value")
        expected = config_exposure(cfg)
        if unit == "seconds" and "seconds" in expected:
            value = exposure.get("seconds", value)
        if (
            unit in expected
            and isinstance(value, int | float)
            and not _close(value, expected[unit])
        ):
            problems.append(
                f"its exposure is {value:.6g} {unit} (the mapping's [exposure], or farm ingest "
                f"--exposure), this configuration's source gives {expected[unit]:.6g} {unit}"
            )
        elif unit not in expected:
            problems.append(
                f"its exposure is in {unit!r}, which this configuration's source cannot give "
                f"(it gives {', '.join(expected)})"
            )
    _refuse_ingested(store, problems)


def _refuse_ingested(store: EventStore, problems: list[str]) -> None:
    if problems:
        msg = f"the ingested store does not match this configuration: {'; '.join(problems)}"
        hint = (
            "ingest it again for this configuration's target and exposure (`farm ingest "
            "--exposure`), point [sample] store at another store, or fix the configuration's "
            "[source] and [detector]"
        )
        raise StoreError(msg, store=store.path, hint=hint)


def _targets(target: dict[str, Any]) -> float:
    if "free_protons" in target:
        return float(target["free_protons"])
    return float(sum(float(n.get("count", 0.0)) for n in target.get("nuclei", {}).values()))


def _detector_mass(cfg: FarmConfig) -> str:
    if isinstance(cfg, NuscopeConfig):
        return f"detector.mass_t = {cfg.detector.mass_t:g}"
    return f"detector.mass_kg = {cfg.detector.mass_kg:g}"


def _close(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=INGEST_TOLERANCE)
