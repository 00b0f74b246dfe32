"""What ``farm refresh`` keeps from the published version, and what it says changed.

A refresh recomputes the published result with the configuration as it is now. What the command
line chose for the published run is kept unless given again: its events (``--events``), its
universes per systematic (``--universes``, or the throws ``--until-converged`` reached). The
command line records them in the result's ``run_overrides`` attribute (:func:`record`); for a
result published before it did, the universes are inferred from the dataset. Then it
names what differs from the published version (systematics added, removed or changed, other
sections such as the binning, changed shards of the event store), before any work item runs;
the stage line then says how many work items that costs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "OVERRIDES_ATTR",
    "Published",
    "describe_changes",
    "describe_sample_changes",
    "keep_events",
    "keep_measurement_universes",
    "keep_universes",
    "published",
    "published_samples",
    "record",
]

OVERRIDES_ATTR = "run_overrides"
"""The result attribute with the ``--events`` and ``--universes`` of the run that published it."""


def record(ds: Any, events: int | None, universes: int | None) -> None:
    """Note in ``ds`` the --events and --universes it was run with (nothing when neither was
    given: the configuration alone decided, and the result equals the library's bit for bit)."""
    given = {k: v for k, v in (("events", events), ("universes", universes)) if v is not None}
    if given:
        ds.attrs[OVERRIDES_ATTR] = json.dumps(given, sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class Published:
    """The published version's configuration and inputs, read from its metadata."""

    version: str
    config: dict[str, Any]
    input_store: str
    input_checksums: list[str]
    throws: dict[str, int]
    """Universes per systematic in the published dataset."""
    until_converged: dict[str, Any] | None
    overrides: dict[str, int] | None
    """``--events``/``--universes`` of the published run; None: neither given, or published
    before they were recorded."""


def published(out: Path) -> Published | None:
    """The current version of ``out``, or None if no result is published there (the caller then
    refuses ``out`` with its own words: an event store, a file, a foreign folder, nothing yet)."""
    from farm.outputs import is_farm_result
    from farm.publish import current_version

    current = current_version(out) if is_farm_result(out) else None
    if current is None or not is_farm_result(current):
        return None
    return _read(Path(current))


def published_samples(out: Path) -> dict[str, Published]:
    """Each sample's own result in the current version of a multi-sample measurement at ``out``
    (its ``samples/NAME`` group; {} for a single-sample result or nothing published)."""
    from farm.publish import current_version, sample_groups

    current = current_version(out)
    if current is None:
        return {}
    return {name: _read(Path(current), f"samples/{name}") for name in sample_groups(current)}


def _read(current: Path, group: str | None = None) -> Published:
    import xarray as xr

    from farm.outputs import group_attrs

    attrs = group_attrs(current / group if group else current) or {}
    try:
        config = json.loads(str(attrs.get("config", "{}")))
    except ValueError:
        config = {}
    with xr.open_zarr(current, group=group, chunks=None) as ds:
        labels = (
            [str(v) for v in ds["universe_systematic"].values]
            if "universe_systematic" in ds
            else []
        )
    converged = attrs.get("until_converged")
    checksums = str(attrs.get("input_checksums", ""))
    overrides = attrs.get(OVERRIDES_ATTR)
    return Published(
        version=current.name.removesuffix(".zarr"),
        config=config if isinstance(config, dict) else {},
        input_store=str(attrs.get("input_store", "")),
        input_checksums=checksums.split(",") if checksums else [],
        throws=dict(Counter(labels)),
        until_converged=json.loads(converged) if isinstance(converged, str) else None,
        overrides=json.loads(overrides) if isinstance(overrides, str) else None,
    )


def keep_events(pub: Published | None, events: int | None, log: Any) -> int | None:
    """``--events`` of the refresh: as given, else the published run's --events (if any)."""
    if pub is None or events is not None or not pub.overrides:
        return events
    kept = pub.overrides.get("events")
    if isinstance(kept, int):
        log(f"keeping the {kept:,} events of {pub.version} (pass --events to change them)")
        return kept
    return None


def _throwable(cfg: Any) -> dict[str, int]:
    """Multisim systematics whose throws --universes sets, with their configured throws."""
    return {
        s.name: s.throws
        for s in cfg.systematics
        if s.mode == "multisim" and s.kind != "weights" and not s.from_flux
    }


def keep_universes(
    pub: Published | None, cfg: Any, universes: int | None, log: Any
) -> tuple[Any, int | None]:
    """``cfg`` and ``--universes`` of the refresh: as given, else the published version's throws.

    A published ``--until-converged`` run keeps the throws it reached; a published
    ``--universes N`` (every throwable systematic thrown N times where the published configuration
    said otherwise) keeps N. A systematic whose throws changed in the configuration since then is
    not overridden: the file was edited on purpose.
    """
    if pub is None or universes is not None:
        return cfg, universes
    from farm.runner import with_throws

    throwable = _throwable(cfg)
    if pub.until_converged:
        reached = {k: int(v) for k, v in (pub.until_converged.get("throws") or {}).items()}
        keep = {k: v for k, v in reached.items() if k in throwable}
        if keep and keep != {k: throwable[k] for k in keep}:
            precision = float(pub.until_converged.get("precision", cfg.analysis.universe_precision))
            text = ", ".join(f"{k} {v}" for k, v in sorted(keep.items()))
            log(f"keeping the universes --until-converged reached in {pub.version}: {text}")
            return with_throws(cfg, keep, precision), None
        return cfg, None
    if pub.overrides is not None and isinstance(pub.overrides.get("universes"), int):
        kept = int(pub.overrides["universes"])
        log(
            f"keeping the {kept} universes per systematic of {pub.version} (pass --universes to change them)"
        )
        return cfg, kept
    if pub.overrides is not None:  # recorded: the published run had no --universes
        return cfg, None
    # nothing recorded (none given, or published before they were): every throwable systematic
    # thrown the same number of times, other than its configuration then and now says, was
    # --universes; a run without it threw what the configuration said, and matches nothing here
    configured = {
        s.get("name"): s.get("throws")
        for s in pub.config.get("systematics") or []
        if isinstance(s, dict)
    }
    counts = {
        name: pub.throws[name]
        for name, throws in throwable.items()
        if name in pub.throws and configured.get(name) == throws
    }
    values = set(counts.values())
    if len(values) == 1 and any(counts[n] != throwable[n] for n in counts):
        (kept,) = values
        log(
            f"keeping the {kept} universes per systematic of {pub.version} (pass --universes to change them)"
        )
        return cfg, kept
    return cfg, None


def keep_measurement_universes(
    pub: Published | None,
    samples: dict[str, Published],
    meas: Any,
    universes: int | None,
    log: Any,
) -> int | None:
    """``--universes`` of a multi-sample measurement's refresh: as given, else the published
    run's (``run_overrides`` of the joint dataset), else, for a measurement published before it
    was recorded, the N that :func:`keep_universes` finds in every sample's own result alike."""
    if pub is None or universes is not None:
        return universes
    kept: int | None = None
    if pub.overrides is not None:  # recorded: N, or no --universes at all
        value = pub.overrides.get("universes")
        kept = int(value) if isinstance(value, int) else None
    else:
        found = {
            keep_universes(samples.get(label), cfg, None, lambda _: None)[1]
            for label, cfg in zip(meas.labels, meas.samples, strict=True)
        }
        kept = found.pop() if len(found) == 1 else None
    if kept is not None:
        log(
            f"keeping the {kept} universes per systematic of {pub.version} (pass --universes to change them)"
        )
    return kept


def describe_sample_changes(samples: dict[str, Published], meas: Any, version: str) -> list[str]:
    """One line per sample of the measurement ``meas``: what differs from its published result."""
    from farm.config import store_path

    lines = []
    for label, cfg in zip(meas.labels, meas.samples, strict=True):
        then = samples.get(label)
        if then is None:
            lines.append(f"{label}: added since {version}")
        else:
            lines.append(f"{label}: {describe_changes(then, cfg, store_path(cfg))}")
    lines += [f"{label}: removed since {version}" for label in samples if label not in meas.labels]
    return lines


def _changed_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def describe_changes(pub: Published, cfg: Any, store: Path | None) -> str:
    """One line: what differs between the published version and this refresh."""
    now = json.loads(cfg.model_dump_json())
    then = pub.config
    parts = []
    old = {s.get("name"): s for s in then.get("systematics") or [] if isinstance(s, dict)}
    new = {s.get("name"): s for s in now.get("systematics") or [] if isinstance(s, dict)}
    systematics = [f"+{n}" for n in new if n not in old]
    systematics += [f"-{n}" for n in old if n not in new]
    systematics += [
        f"~{n} ({', '.join(_changed_keys(old[n], new[n]))})"
        for n in new
        if n in old and old[n] != new[n]
    ]
    if systematics:
        parts.append("systematics " + ", ".join(systematics))
    for section in sorted(now.keys() | then.keys()):
        if section != "systematics" and now.get(section) != then.get(section):
            keys = (
                _changed_keys(now.get(section) or {}, then.get(section) or {})
                if isinstance(now.get(section), dict) and isinstance(then.get(section), dict)
                else []
            )
            parts.append(f"{section}" + (f" ({', '.join(keys)})" if keys else ""))
    parts.extend(_shard_changes(pub, store))
    if not parts:
        return f"nothing changed in the configuration or the event store since {pub.version}"
    return f"changed since {pub.version}: " + "; ".join(parts)


def _shard_changes(pub: Published, store: Path | None) -> list[str]:
    from farm.outputs import is_farm_store
    from farm.store import EventStore

    if store is None or not is_farm_store(store):
        return ["event store (to be generated)"] if pub.input_checksums else []
    now = EventStore.open(store).shard_checksums
    then = pub.input_checksums
    if now == then:
        return []
    differing = sum(a != b for a, b in zip(now, then, strict=False)) + abs(len(now) - len(then))
    return [f"shards ({differing} of {len(now)} differ)"]


def unchanged(out: Path, ds: object, groups: dict[str, object] | None = None) -> bool:
    """Whether ``ds`` (and each named group) is identical to the current version of ``out``."""
    import xarray as xr

    from farm.publish import current_version

    with xr.open_zarr(current_version(out), chunks=None) as previous:
        if not previous.load().identical(ds):
            return False
    for name, group in (groups or {}).items():
        try:
            with xr.open_zarr(current_version(out), group=name, chunks=None) as previous:
                if not previous.load().identical(group):
                    return False
        except (FileNotFoundError, KeyError, OSError):
            return False
    return True
