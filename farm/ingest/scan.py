"""The first pass over an input, before anything is written: what the events are, and on what.

For every event (dropped by ``[ingest] keep`` or not: they were all generated) the scan adds
its generator weight to Σ wght (overall and per target nucleus), notes its neutrino flavour, and
checks its target against ``[target] nuclei``: the target's PDG code (10LZZZAAAI, 2212 for
hydrogen), else its Z and A fields, must be a declared nucleus. Events on an undeclared nucleus
are counted, and the ingest refuses with the counts before writing anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from farm.ingest.columns import ColumnPlan, evaluate_column
from farm.ingest.kernels import nucleus_of_pdg, when_mask
from farm.ingest.mapping import IngestMapping
from farm.ingest.source import EventFile, IngestError
from farm.store.schema import FLAVOR_PDG

__all__ = ["Scan", "check_targets", "scan", "target_fields"]

_FLAVOR_NAME = {code: name for name, code in FLAVOR_PDG.items()}


@dataclass(frozen=True, kw_only=True)
class Scan:
    """One input's events: how many ``keep`` keeps, Σ wght, and per target and flavour."""

    kept: int
    sum_weights: float
    sum_weights_by_target: Mapping[tuple[int, int], float]
    events_by_target: Mapping[tuple[int, int], int]
    flavors: frozenset[int]


def target_fields(mapping: IngestMapping, fields: tuple[str, ...], path: str) -> tuple[str, ...]:
    """The fields that identify each event's target: the PDG code, else Z and A; () when the
    target is not checked and not needed. Refuses a checked target the file cannot tell."""
    target = mapping.target
    if target is None or not (target.check or target.per_target_xsec):
        return ()
    if target.pdg_field in fields:
        return (target.pdg_field,)
    if target.z_field in fields and target.a_field in fields:
        return (target.z_field, target.a_field)
    msg = (
        f"[target] is checked against every event, but the input has neither a target PDG field "
        f"({target.pdg_field!r}) nor Z and A fields ({target.z_field!r}, {target.a_field!r}); "
        "name them with [target] pdg_field / z_field / a_field, or set [target] check = false "
        "(the store records that the target was not checked)"
    )
    raise IngestError(msg, path=path)


def nuclei_of(
    raw: Mapping[str, np.ndarray], names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(Z, A) of each event from the ``target_fields``."""
    if len(names) == 1:
        return nucleus_of_pdg(raw[names[0]])
    return np.asarray(raw[names[0]], np.int64), np.asarray(raw[names[1]], np.int64)


def scan(
    f: EventFile, mapping: IngestMapping, plans: Mapping[str, ColumnPlan], targets: tuple[str, ...]
) -> Scan:
    """Read the fields the first pass needs, a chunk at a time."""
    weight, keep = mapping.normalization.weight, mapping.ingest.keep
    flavor_plan = plans["flavor"]
    names = sorted({*keep, *([weight] if weight else []), *targets, *flavor_plan.fields})
    n, rows = f.info.n_events, mapping.ingest.read_rows
    kept, total = 0, 0.0
    by_target: Counter[tuple[int, int]] = Counter()
    weight_by_target: dict[tuple[int, int], float] = {}
    flavors: set[int] = set()
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        raw = f.read(names, start, stop) if names else {}
        size = stop - start
        kept += int(when_mask(raw, keep, size).sum())
        w = np.asarray(raw[weight], np.float64) if weight else np.ones(size)
        total += float(np.sum(w, dtype=np.float64))
        codes = evaluate_column(flavor_plan, raw, size, mapping.ingest.beam_direction)
        flavors.update(int(c) for c in np.unique(np.asarray(codes)))
        if targets:
            z, a = nuclei_of(raw, targets)
            keys, inverse = np.unique(np.stack([z, a], axis=1), axis=0, return_inverse=True)
            sums = np.bincount(inverse.ravel(), weights=w, minlength=len(keys))
            counts = np.bincount(inverse.ravel(), minlength=len(keys))
            for (zz, aa), s, c in zip(keys.tolist(), sums, counts, strict=True):
                by_target[(zz, aa)] += int(c)
                weight_by_target[(zz, aa)] = weight_by_target.get((zz, aa), 0.0) + float(s)
    return Scan(
        kept=kept,
        sum_weights=total,
        sum_weights_by_target=weight_by_target,
        events_by_target=dict(by_target),
        flavors=frozenset(flavors),
    )


def check_targets(mapping: IngestMapping, scans: list[Scan], paths: list[str]) -> dict[str, int]:
    """Refuse events on nuclei ``[target]`` does not declare, with the counts; return the events
    per declared nucleus."""
    target = mapping.target
    if target is None or not scans or not any(s.events_by_target for s in scans):
        return {}
    declared = {(n.z, n.a): name for name, n in target.nuclei.items()}
    found: Counter[tuple[int, int]] = Counter()
    for s in scans:
        found.update(s.events_by_target)
    undeclared = {key: count for key, count in found.items() if key not in declared}
    if undeclared:
        total = sum(found.values())
        shown = "; ".join(
            f"{count} on {_nucleus(key)}"
            for key, count in sorted(undeclared.items(), key=lambda x: -x[1])
        )
        listed = (
            ", ".join(f"{name} (Z = {z}, A = {a})" for (z, a), name in declared.items()) or "none"
        )
        msg = (
            f"{sum(undeclared.values())} of {total} events are on nuclei [target] does not "
            f"declare: {shown}. [target] declares {listed}. Fix [target] nuclei (one entry per "
            "nucleus of the file), or ingest the file made for this target"
        )
        raise IngestError(msg, path=paths[0])
    return {declared[key]: int(count) for key, count in found.items()}


def _nucleus(key: tuple[int, int]) -> str:
    z, a = key
    if z < 0:
        return "a target that is no nucleus (PDG code not 10LZZZAAAI, 2212 or 2112)"
    if a == 1:
        return f"free {'proton' if z == 1 else 'neutron'} (Z = {z}, A = 1)"
    return f"Z = {z}, A = {a} (tgt {1_000_000_000 + z * 10_000 + a * 10})"


def flavor_names(scans: list[Scan]) -> tuple[str, ...]:
    """The flavours of the events, by name (those the farm's flux knows)."""
    codes = set().union(*(s.flavors for s in scans))
    return tuple(sorted(_FLAVOR_NAME[c] for c in codes if c in _FLAVOR_NAME and c != 0))
