"""What each event-store column may hold: finiteness, ranges and enumerations, per column.

Every value a run reads is checked once, at the boundary: :class:`~farm.store.StoreWriter`
refuses to write a shard that breaks a rule (generation and ingest alike), naming the store, the
column, the shard, the first bad row and its value; and :class:`~farm.store.EventStore` checks
the columns it reads again (``validate=True``, the default), because a store written by an
earlier farm release, or edited by hand with its checksums recomputed, was never checked. A
check costs one or two vectorised reductions per column (a lookup table for the code columns);
the offending row is searched for only on failure.

The legitimate exceptions are part of the rules: ``etag_mev`` is NaN for an untagged event,
``selection_threshold`` is +inf for an event that is never selected and −inf for one measured
off-beam (always selected), and ``coslep`` is NaN for a lepton at rest (``plep_mev`` = 0).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from farm.store.errors import StoreError
from farm.store.schema import COLUMNS, FLAVOR_PDG, USER_CHANNELS, Channel

__all__ = [
    "VALUE_RULES",
    "Invalid",
    "ValueRule",
    "column_ranges",
    "first_invalid",
    "validate_values",
]


@dataclass(frozen=True, kw_only=True)
class ValueRule:
    """The values one column may hold.

    A float column holds values in ``[lo, hi]``, finite unless ``infinite`` allows ±inf, and not
    NaN unless ``nan`` allows it. An integer column holds values in ``[lo, hi]`` or, with
    ``codes``, one of those codes (or, with ``code_range``, a code in that inclusive range). A
    boolean column holds the bytes 0 and 1 only.
    """

    allowed: str
    """The rule in words, for messages: ``finite and >= 0``."""
    lo: float = -math.inf
    hi: float = math.inf
    infinite: bool = False
    nan: bool = False
    codes: tuple[int, ...] | None = None
    code_range: tuple[int, int] | None = None
    """With ``codes``: a further inclusive range of allowed codes (user-declared channels)."""

    def valid(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the values that follow the rule (the slow, exact path)."""
        if values.dtype == np.bool_:
            return values.view(np.uint8) <= 1
        if self.codes is not None:
            ok = np.isin(values, self.codes)
            if self.code_range is not None:
                ok |= (values >= self.code_range[0]) & (values <= self.code_range[1])
            return ok
        ok = (values >= self.lo) & (values <= self.hi)  # False for NaN
        if values.dtype.kind == "f":
            if not self.infinite:
                ok &= np.isfinite(values)
            if self.nan:
                ok |= np.isnan(values)
        return ok

    def holds(self, values: np.ndarray) -> bool:
        """Whether every value follows the rule (fast: one or two reductions)."""
        if values.size == 0:
            return True
        if values.dtype == np.bool_:
            return int(values.view(np.uint8).max()) <= 1
        if self.codes is not None and values.dtype.itemsize == 1:  # one counting pass
            counts = np.bincount(values.view(np.uint8), minlength=256)
            return int(counts[~self._byte_table(values.dtype)].sum()) == 0
        if self.codes is not None:  # a few codes: one comparison each beats any lookup
            found = sum(int(np.count_nonzero(values == code)) for code in self.codes)
            return found == values.size
        if values.dtype.kind != "f":
            return bool(self.lo <= values.min() and values.max() <= self.hi)
        if self.nan:
            lo, hi = np.fmin.reduce(values), np.fmax.reduce(values)  # NaN ignored
            if math.isnan(lo):
                return True  # all NaN
        else:
            lo, hi = values.min(), values.max()  # NaN propagates
            if math.isnan(lo):
                return False
        if not self.infinite and not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        return bool(self.lo <= lo and hi <= self.hi)

    def _byte_table(self, dtype: np.dtype) -> np.ndarray:
        """For a one-byte column: which of the 256 byte values are allowed."""
        byte = np.arange(256, dtype=np.uint8).view(dtype)
        return self.valid(byte)


_NON_NEGATIVE = ValueRule(allowed="finite and >= 0", lo=0.0)
_FINITE = ValueRule(allowed="finite")
_BOOLEAN = ValueRule(allowed="a boolean (byte 0 or 1)")

VALUE_RULES: dict[str, ValueRule] = {
    "source_file": _NON_NEGATIVE,
    "source_entry": ValueRule(allowed="an entry number in [0, 2^48)", lo=0.0, hi=2.0**48 - 1),
    "enu_true": _NON_NEGATIVE,
    "flavor": ValueRule(
        allowed="a neutrino PDG code of farm.store.schema.FLAVOR_PDG: "
        + ", ".join(f"{code} ({name})" for name, code in FLAVOR_PDG.items()),
        codes=tuple(sorted(FLAVOR_PDG.values())),
    ),
    "channel": ValueRule(
        allowed="a farm.store.schema.Channel code: "
        + ", ".join(f"{int(c)} ({c.name})" for c in Channel)
        + f", or a declared channel's code in {USER_CHANNELS[0]}..{USER_CHANNELS[1]}",
        codes=tuple(int(c) for c in Channel),
        code_range=USER_CHANNELS,
    ),
    "is_signal": _BOOLEAN,
    "selected": _BOOLEAN,
    "w_nominal": _NON_NEGATIVE,
    "eff_nominal": ValueRule(allowed="finite and in [0, 1]", lo=0.0, hi=1.0),
    "target_a": ValueRule(
        allowed="a mass number in [0, 300] (0: free nucleon or none)", lo=0, hi=300
    ),
    "recoil_mev": _NON_NEGATIVE,
    "q2_mev2": _FINITE,
    "plep_mev": _NON_NEGATIVE,
    "coslep": ValueRule(
        allowed="in [-1, 1], or NaN for a lepton at rest (plep_mev = 0)", lo=-1.0, hi=1.0, nan=True
    ),
    "elep_mev": _NON_NEGATIVE,
    "time_us": _FINITE,
    "reco_pe": _NON_NEGATIVE,
    "reco_kevee": _FINITE,
    "selection_threshold": ValueRule(
        allowed="a number or ±inf, not NaN (+inf: never selected, -inf: always selected)",
        infinite=True,
    ),
    "resolution_z": _FINITE,
    "reco_energy_mev": _FINITE,
    "etag_mev": ValueRule(allowed="finite and >= 0, or NaN when untagged", lo=0.0, nan=True),
    "tagged": _BOOLEAN,
    "vertex_r_cm": _NON_NEGATIVE,
}
"""The rule of every column that has one (``event_id`` has none: the writer checks that it
increases strictly within a shard)."""

missing = sorted(set(COLUMNS) - set(VALUE_RULES) - {"event_id"})
if missing:  # pragma: no cover - a schema column added without its rule
    msg = f"farm.store.values has no VALUE_RULES entry for {missing}; add one"
    raise RuntimeError(msg)
del missing


@dataclass(frozen=True, kw_only=True)
class Invalid:
    """The first value of a shard that breaks its column's rule (or a rule across columns)."""

    column: str
    position: int
    """Row within the arrays that were checked."""
    value: object
    allowed: str


def first_invalid(columns: Mapping[str, np.ndarray], *, across: bool = False) -> Invalid | None:
    """The first value (column by column, in schema order) that breaks its rule, or None.

    With ``across`` also the rules between columns, which need both columns present: ``coslep``
    is NaN only where ``plep_mev`` is 0, and ``etag_mev`` is NaN only where ``tagged`` is false.
    """
    for name in COLUMNS:
        values = columns.get(name)
        rule = VALUE_RULES.get(name)
        if values is None or rule is None or rule.holds(values):
            continue
        position = int(np.argmin(rule.valid(values)))
        raw = values.view(np.uint8) if values.dtype == np.bool_ else values  # the byte as stored
        shown = raw[position]
        return Invalid(column=name, position=position, value=shown, allowed=rule.allowed)
    if not across:
        return None
    for name, other, bad, allowed in (
        (
            "coslep",
            "plep_mev",
            lambda cos, p: np.isnan(cos) & (p != 0),
            "in [-1, 1]; NaN only for a lepton at rest, and this lepton has plep_mev > 0",
        ),
        (
            "etag_mev",
            "tagged",
            lambda e, tagged: np.isnan(e) & tagged,
            "finite and >= 0 for a tagged event (NaN only when untagged)",
        ),
    ):
        if name in columns and other in columns:
            mask = bad(columns[name], columns[other])
            if mask.any():
                position = int(np.argmax(mask))
                value = columns[name][position]
                return Invalid(column=name, position=position, value=value, allowed=allowed)
    return None


def validate_values(
    columns: Mapping[str, np.ndarray],
    *,
    store: str | os.PathLike[str] = "<in memory>",
    shard: int | None = None,
    first_row: int = 0,
    across: bool = False,
    hint: str | None = None,
) -> None:
    """Raise :class:`~farm.store.StoreError` at the first value that breaks its column's rule.

    The message names the store, the shard, the column, the row (``first_row`` + position in
    the arrays) and the value, says what the column may hold and what to do.
    """
    found = first_invalid(columns, across=across)
    if found is None:
        return
    msg = (
        f"row {first_row + found.position} has {found.column} = {found.value}; "
        f"it must be {found.allowed}"
    )
    hint = hint or (
        "fix the generator or ingestion that wrote it, then regenerate the store with "
        "`farm generate` (or re-ingest it with `farm ingest`)"
    )
    raise StoreError(msg, store=store, shard=shard, column=found.column, hint=hint)


def column_ranges(values: Mapping[str, np.ndarray]) -> dict[str, dict[str, list[float] | None]]:
    """Per float column, ``[min, max]`` of its finite values over all rows and over the
    ``selected`` rows (None where there are none); the shard manifest records it, so a run can
    tell without reading any data whether its binning holds events
    (:meth:`farm.store.EventStore.column_range`)."""
    selected = values.get("selected")
    out: dict[str, dict[str, list[float] | None]] = {}
    for name, array in values.items():
        if array.dtype.kind != "f":
            continue
        finite = np.isfinite(array)
        out[name] = {
            "all": _span(array[finite]),
            "selected": None if selected is None else _span(array[finite & selected]),
        }
    return out


def _span(values: np.ndarray) -> list[float] | None:
    return [float(values.min()), float(values.max())] if values.size else None
