"""What an ingested store records about where its events come from (its group attributes).

The mapping (and its hash), every input with its checksum, tree and range of event ids, the
generator, the exposure, the target and how it was checked, the declared channels, the
normalisation with its cross-check, and the sample's flux (:mod:`farm.flux.record`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import farm
from farm.config import config_hash
from farm.ingest.mapping import IngestMapping
from farm.ingest.normalise import Normalisation
from farm.ingest.scan import Scan
from farm.ingest.source import CHECKSUM_ALGORITHM, EventFile, file_checksum
from farm.store.schema import USER_CHANNELS

__all__ = ["exposure_record", "store_attrs"]


def store_attrs(
    mapping: IngestMapping,
    source: str,
    fmt: str,
    files: Sequence[EventFile],
    scans: Sequence[Scan],
    norm: Normalisation,
    *,
    exposure_scale: float,
    exposure: Mapping[str, Any],
    events_by_target: Mapping[str, int],
    flux: dict[str, Any] | None,
) -> dict[str, Any]:
    """The store's attributes (JSON), given what the ingest found and computed."""
    from_file = dict(files[0].info.generator)
    given = mapping.generator.model_dump(exclude_none=True)
    inputs, first = [], 0
    for f, scan in zip(files, scans, strict=True):
        inputs.append(
            {
                "path": str(f.info.path.resolve()),
                "format": fmt,
                "tree": f.info.container,
                "n_events": f.info.n_events,
                "dropped": f.info.n_events - scan.kept,
                "event_ids": [first, first + scan.kept],
                "checksum": file_checksum(f.info.path),
            }
        )
        first += scan.kept
    normalization = {
        "expected_events_per_weight": norm.events_per_weight * exposure_scale,
        "per_target_events_per_weight": {
            f"{z},{a}": k * exposure_scale for (z, a), k in norm.per_target.items()
        },
        "exposure_scale": exposure_scale,
        **norm.record,
    }
    attrs: dict[str, Any] = {
        "source_family": "external",
        "sample": mapping.store.sample,
        "description": mapping.store.description,
        "exposure": dict(exposure),
        "generator": {**from_file, **given, "format": fmt},
        "ingest": {
            "mapping": mapping.model_dump(mode="json"),
            "mapping_file": None if source == "<mapping>" else str(Path(source).resolve()),
            "mapping_hash": config_hash(mapping),
            "checksum_algorithm": CHECKSUM_ALGORITHM,
            "inputs": inputs,
            "normalization": normalization,
            "target_check": _target_check(mapping, events_by_target),
        },
        "channels": {
            name: code for name, code in mapping.channel.codes().items() if code >= USER_CHANNELS[0]
        },
        "software_version": farm.__version__,
    }
    if mapping.target is not None:
        attrs["target"] = mapping.target.model_dump(
            mode="json", exclude_none=True, include={"material", "mass_kg", "nuclei", "molecules"}
        )
    if flux is not None:
        attrs["flux"] = flux
    return attrs


def _target_check(mapping: IngestMapping, events_by_target: Mapping[str, int]) -> dict[str, Any]:
    if mapping.target is None:
        return {"done": False, "reason": "the mapping declares no [target]"}
    if not mapping.target.check:
        return {"done": False, "reason": "[target] check = false"}
    return {"done": True, "events_by_nucleus": dict(events_by_target)}


def exposure_record(mapping: IngestMapping, exposure: float | None) -> dict[str, Any]:
    """The store's exposure; with ``--exposure`` the running time scales along (same power)."""
    given = mapping.exposure
    value = given.value if exposure is None else exposure
    out: dict[str, Any] = {"value": value, "unit": given.unit}
    if given.unit == "seconds":
        out["seconds"] = value
    elif given.seconds is not None:
        out["seconds"] = given.seconds * (value / given.value)
    return out
