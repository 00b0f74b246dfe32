"""From a chunk of an input's fields to the event-store columns, as the mapping says (pure).

:func:`plan_columns` resolves every mapped column once per input format (source fields, unit
factor); :func:`map_chunk` then applies the plan, the channel rules, the signal and selection
definitions and the normalisation to one chunk of events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from farm.config import ConfigError
from farm.ingest.kernels import (
    NEUTRINO_PDG,
    assign_channels,
    cosine_to_direction,
    momentum_magnitude,
    signal_mask,
    when_mask,
)
from farm.ingest.mapping import (
    DERIVED_COLUMNS,
    BranchSource,
    ConstantSource,
    CosineSource,
    IngestMapping,
    MagnitudeSource,
)
from farm.ingest.units import UNITS, unit_factor
from farm.store.schema import COLUMNS, FLAVOR_PDG

__all__ = ["ColumnPlan", "evaluate_column", "map_chunk", "plan_columns", "store_columns"]


@dataclass(frozen=True, kw_only=True)
class ColumnPlan:
    """How one store column is computed from the fields of an input."""

    name: str
    kind: str
    """``branch``, ``magnitude``, ``cosine`` or ``value``."""
    fields: tuple[str, ...]
    factor: float = 1.0
    """Multiplies the field values into the column's farm unit."""
    value: float = 0.0
    """The constant of a ``value`` column."""


def store_columns(mapping: IngestMapping) -> tuple[str, ...]:
    """The store's columns, in schema order: the derived ones and every mapped one."""
    wanted = set(DERIVED_COLUMNS) | set(mapping.columns)
    return tuple(name for name in COLUMNS if name in wanted)


def plan_columns(
    mapping: IngestMapping, field_units: Mapping[str, str], *, source: str
) -> dict[str, ColumnPlan]:
    """Resolve each mapped column's unit factor against the units the input declares.

    A dimensioned column fed by a gst branch needs ``unit`` in the mapping (GENIE writes GeV);
    where the input declares its units (HepMC3) the mapping may leave ``unit`` out, and must not
    contradict it. ``source`` names the mapping file in errors.
    """
    plans = {}
    for name, src in mapping.columns.items():
        key = f"{source}: [columns.{name}]"
        if isinstance(src, ConstantSource):
            plans[name] = ColumnPlan(name=name, kind="value", fields=(), value=src.value)
            continue
        if isinstance(src, CosineSource):
            plans[name] = ColumnPlan(name=name, kind="cosine", fields=src.fields)
            continue
        assert isinstance(src, BranchSource | MagnitudeSource)
        factor = _factor(key, name, src, field_units)
        kind = "branch" if isinstance(src, BranchSource) else "magnitude"
        plans[name] = ColumnPlan(name=name, kind=kind, fields=src.fields, factor=factor)
    return plans


def _factor(
    key: str, name: str, src: BranchSource | MagnitudeSource, field_units: Mapping[str, str]
) -> float:
    farm_unit = COLUMNS[name].unit
    declared = {field_units[f] for f in src.fields if f in field_units}
    if len(declared) > 1:
        msg = f"{key} the input gives {', '.join(src.fields)} in different units {sorted(declared)}"
        raise ConfigError(msg)
    file_unit = declared.pop() if declared else None
    if not farm_unit:
        if file_unit:
            msg = f"{key} the column is dimensionless but the input gives {src.fields[0]!r} in {file_unit}; map a dimensionless field"
            raise ConfigError(msg)
        return 1.0
    if file_unit == "":
        msg = f"{key} the column is in {farm_unit} but the input's {src.fields[0]!r} is dimensionless; map a field in {' or '.join(UNITS[farm_unit])}"
        raise ConfigError(msg)
    if src.unit is not None and file_unit is not None and src.unit != file_unit:
        msg = f"{key} unit = {src.unit!r}, but the input gives {src.fields[0]!r} in {file_unit} (converted from the unit each event declares); remove `unit`"
        raise ConfigError(msg)
    unit = src.unit or file_unit
    if unit is None:
        msg = f"{key} give the unit of {', '.join(src.fields)}: the column is in {farm_unit}; allowed: {', '.join(UNITS[farm_unit])} (GENIE gst writes GeV)"
        raise ConfigError(msg)
    try:
        return unit_factor(unit, farm_unit)
    except ValueError as err:
        raise ConfigError(f"{key} {err}") from None


def map_chunk(
    mapping: IngestMapping,
    plans: Mapping[str, ColumnPlan],
    fields: Mapping[str, np.ndarray],
    n: int,
    *,
    first_event_id: int,
    events_per_weight: float | np.ndarray,
    source_file: int = 0,
    source_entries: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The store columns of ``n`` events from their fields, each of the schema's dtype.

    ``event_id`` numbers the events from ``first_event_id``; ``source_file`` and
    ``source_entries`` (default 0 … n − 1) say where each came from; ``w_nominal`` is
    ``events_per_weight`` (one factor, or one per event) times the generator weight (1 without
    a weight field).

    Raises
    ------
    ValueError
        A value that does not fit its column, a non-neutrino flavour, or events that no channel
        rule matches; the message names the column and the first offending event in the chunk.
    """
    entries = np.arange(n) if source_entries is None else source_entries
    out: dict[str, np.ndarray] = {
        "event_id": np.arange(first_event_id, first_event_id + n, dtype=np.uint64),
        "source_file": np.full(n, source_file, dtype=np.uint16),
        "source_entry": np.asarray(entries, dtype=np.uint64),
    }
    for name, plan in plans.items():
        out[name] = _cast(name, evaluate_column(plan, fields, n, mapping.ingest.beam_direction))
    _check_flavor(out["flavor"])

    codes = mapping.channel.codes()
    all_rules = mapping.channel.all_rules()
    rules = [(codes[r.channel], r.when) for r in all_rules]
    default = None if mapping.channel.default is None else codes[mapping.channel.default]
    channel, unmatched = assign_channels(fields, rules, default, n)
    if unmatched.any():
        row = int(np.argmax(unmatched))
        used = sorted({f for r in all_rules for f in r.when})
        values = ", ".join(f"{f} = {fields[f][row]}" for f in used)
        msg = (
            f"{int(unmatched.sum())} event(s) match no [[channel.rules]] (the first: event "
            f"{row} of the chunk, {values}); add a rule for them or set [channel] default"
        )
        raise ValueError(msg)
    out["channel"] = channel

    signal = mapping.signal
    flavors = None if signal.flavors is None else [FLAVOR_PDG[f] for f in signal.flavors]
    out["is_signal"] = signal_mask(
        channel,
        out["flavor"],
        [codes[c] for c in signal.channels],
        flavors,
        when_mask(fields, signal.when, n),
    )
    out["selected"] = when_mask(fields, mapping.selection.when, n)

    weight = mapping.normalization.weight
    generator_weight = np.ones(n) if weight is None else np.asarray(fields[weight], np.float64)
    out["w_nominal"] = events_per_weight * generator_weight
    return out


def evaluate_column(
    plan: ColumnPlan, fields: Mapping[str, np.ndarray], n: int, direction: tuple[float, ...]
) -> np.ndarray:
    """One column's values from the fields, in its farm unit (before the cast to its dtype)."""
    if plan.kind == "value":
        return np.full(n, plan.value)
    values = [fields[f] for f in plan.fields]
    if plan.kind == "cosine":
        return cosine_to_direction(*values, direction)
    raw = values[0] if plan.kind == "branch" else momentum_magnitude(*values)
    if plan.factor == 1.0:
        return np.asarray(raw)
    return np.asarray(raw, dtype=np.float64) * plan.factor


def _cast(name: str, values: np.ndarray) -> np.ndarray:
    dtype = COLUMNS[name].dtype
    if dtype.kind == "b":
        return values != 0
    if dtype.kind in "iu":
        return _as_integers(name, values, dtype)
    return values.astype(dtype)


def _as_integers(name: str, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    if values.size == 0:
        return values.astype(dtype)
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            row = int(np.argmin(whole))
            msg = f"column {name!r} holds whole numbers; event {row} of the chunk has {values[row]}"
            raise ValueError(msg)
    if values.min() < info.min or values.max() > info.max:
        row = int(np.argmax((values < info.min) | (values > info.max)))
        msg = f"column {name!r} ({dtype}) cannot hold {values[row]} (event {row} of the chunk)"
        raise ValueError(msg)
    return values.astype(dtype)


def _check_flavor(flavor: np.ndarray) -> None:
    bad = ~np.isin(flavor, NEUTRINO_PDG)
    if bad.any():
        row = int(np.argmax(bad))
        msg = (
            f"column 'flavor' holds the neutrino's PDG code (±12, ±14, ±16); event {row} of the "
            f"chunk has {flavor[row]}: does [columns.flavor] name the incoming neutrino's branch?"
        )
        raise ValueError(msg)
