"""The generic per-event path: every event's weight, reco bin and selection in every universe.

Used when no shortcut of farm.reweight.shortcuts applies (weight clamping, a flux variation per
event, several knobs at once), by the tests that check the shortcuts, and by `farm validate
closure`, which needs each event's weight (for the MC-statistics error) as well as the sums.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from farm.reweight.bootstrap import poisson_weights
from farm.reweight.knobs import DETECTION_KNOBS, RESPONSE_KNOBS, knob_weight
from farm.reweight.readout_shift import shifted_readout

if TYPE_CHECKING:
    from farm.accumulate import AccumulationSpec

__all__ = ["EventUniverses", "bin_values", "event_universes"]


def bin_values(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index per value, −1 outside [edges[0], edges[-1])."""
    b = np.searchsorted(edges, values, side="right") - 1
    b[(b < 0) | (b >= edges.size - 1)] = -1
    return b.astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class EventUniverses:
    """(U, n) per universe and event of a block."""

    weight: np.ndarray
    """Expected events the event contributes to the selected (reco) histograms."""
    truth_weight: np.ndarray
    """... to the truth counts (no detection factors)."""
    truth_nominal_weight: np.ndarray
    """... to the truth counts at the nominal flux (the denominator of M)."""
    reco: np.ndarray
    """Reco bin (−1 outside the reco range)."""
    selected: np.ndarray
    """Selected and inside the reco range."""
    clamped: np.ndarray
    """(U,) events whose weight the clamping policy changed."""


def event_universes(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    rows: slice,
    reco_bin: np.ndarray,
    flux_bin: np.ndarray,
) -> EventUniverses:
    """Weights, reco bins and selection of every event in the per-event universes ``rows``."""
    n_u = rows.stop - rows.start
    n = reco_bin.size
    weight = np.ones((n_u, n))
    detection: np.ndarray | None = None  # selection-only factors: never applied to the truth counts
    response_shifts: dict[str, np.ndarray] = {}
    for parameter, values in spec.knob_values.items():
        block_values = values[rows]
        if not block_values.any():
            continue
        if parameter in RESPONSE_KNOBS:
            response_shifts[parameter] = block_values
            continue
        w = knob_weight(parameter, block_values, cols, spec.knob_context)
        if parameter in DETECTION_KNOBS:
            detection = w if detection is None else detection * w
        else:
            weight *= w
    moved_value: np.ndarray | None = None
    moved_selected: np.ndarray | None = None
    if response_shifts:
        readout = spec.knob_context.readout
        if readout is None:
            msg = "detector knobs need the sample's readout (KnobContext.readout)"
            raise ValueError(msg)
        shifted = shifted_readout(response_shifts, cols, readout)
        moved_value, moved_selected = shifted.value, shifted.selected
        if shifted.weight is not None:
            detection = shifted.weight if detection is None else detection * shifted.weight
    replicas = spec.bootstrap_replica[rows]
    boot = replicas >= 0
    if boot.any():
        weight[boot] *= poisson_weights(cols["event_id"], replicas[boot], spec.bootstrap_key)
    truth_weight = weight
    if detection is not None:
        weight = weight * detection
    clamped = np.zeros(n_u, dtype=np.int64)
    if spec.clamp is not None:
        lo, hi = spec.clamp
        outside = (weight < lo) | (weight > hi)
        if truth_weight is not weight:
            outside |= (truth_weight < lo) | (truth_weight > hi)
            np.clip(truth_weight, lo, hi, out=truth_weight)
        clamped = outside.sum(axis=1)
        np.clip(weight, lo, hi, out=weight)
    weight *= cols["w_nominal"][None, :]
    if truth_weight is not weight:
        truth_weight *= cols["w_nominal"][None, :]
    truth_nominal_weight = truth_weight  # the denominator of M keeps the nominal flux
    ratio = spec.event_flux_ratio[rows] if spec.event_flux_ratio is not None else None
    if ratio is not None and (ratio != 1.0).any():
        flux_factor = ratio[:, flux_bin]
        weight = weight * flux_factor
        truth_weight = truth_weight * flux_factor
    if moved_value is None:
        reco = np.broadcast_to(reco_bin, (n_u, n))
    else:
        reco = bin_values(np.broadcast_to(moved_value, (n_u, n)).ravel(), spec.reco_edges).reshape(
            n_u, n
        )
    passed = cols["selected"][None, :] if moved_selected is None else moved_selected
    return EventUniverses(
        weight=weight,
        truth_weight=truth_weight,
        truth_nominal_weight=truth_nominal_weight,
        reco=reco,
        selected=passed & (reco >= 0),
        clamped=clamped,
    )
