"""Which shortcut fills the per-event universes of a chunk, and the shortcut run on one block.

A chunk of universes that varies one thing — one knob, or the bootstrap — has a fast path in
farm.reweight.fastpaths (design.md §5): categories, readout-value classes, the Chebyshev expansion
with its per-event check, lateral prefix sums, or the compiled bootstrap. :func:`fast_histograms`
picks it from the knob's kind and the block's events, and returns None when none applies (weight
clamping, a flux variation per event, several knobs at once), leaving the generic per-universe
path of farm.accumulate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from farm.reweight.bootstrap import event_hash, poisson_weights
from farm.reweight.compiled import bootstrap_fill, interpolation_error, slot_fill
from farm.reweight.fastpaths import (
    BlockLayout,
    bootstrap_histograms,
    categorical_histograms,
    chebyshev_interpolation_matrix,
    chebyshev_nodes,
    exact_histograms,
    expansion_histograms,
    lateral_histograms,
)
from farm.reweight.knobs import (
    CATEGORICAL_KNOBS,
    DETECTION_KNOBS,
    LATERAL_KNOBS,
    READOUT_VALUE_KNOBS,
    knob_effect,
    readout_value_affected,
)

if TYPE_CHECKING:
    from farm.accumulate import AccumulationSpec

__all__ = ["EXPANSION_NODES", "EXPANSION_TOLERANCE", "MAX_READOUT_VALUES", "fast_histograms"]

Histograms = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(signal (U, I, J), background (U, I), truth (U, J)) of a block of universes."""

EXPANSION_NODES = 12
"""Chebyshev nodes for a weight knob's expansion (exact evaluations per event)."""
EXPANSION_TOLERANCE = 1e-9
"""Largest relative difference between an event's interpolated and exact weight at the check
points (the ends and the median of the thrown values) for the expansion to fill that event; the
events beyond it are filled with exact per-universe weights."""
MAX_READOUT_VALUES = 1024
"""Most distinct readout values in a block for a readout-value knob to be filled by class."""


def _bootstrap_compiled(
    cols: Mapping[str, np.ndarray], spec: AccumulationSpec, layout: BlockLayout, w0: np.ndarray
) -> Histograms | None:
    """The bootstrap in one compiled pass (hash, Poisson weight and sum per event and replica)."""
    slot, slot_truth = layout.slots(w0.size)
    table = bootstrap_fill(
        w0,
        event_hash(cols["event_id"], spec.bootstrap_key),
        spec.bootstrap_replica.astype(np.uint64),
        slot,
        slot_truth,
        layout.n_slots,
    )
    return None if table is None else layout.split(table)


def _exact(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    parameter: str,
    rows: np.ndarray,
    bins: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    weights_truth: bool,
) -> Histograms:
    """Exact per-universe weights on the events ``rows`` (indices), a block of universes at a time."""
    reco_bin, truth_bin, signal = bins
    values = spec.knob_values[parameter]
    sub = {name: column[rows] for name, column in cols.items()}
    layout = BlockLayout.build(
        reco_bin[rows], truth_bin[rows], signal[rows], sub["selected"], spec.n_reco, spec.n_truth
    )
    parts = []
    for start in range(0, values.size, spec.universes_per_block):
        weights, _ = knob_effect(
            parameter, values[start : start + spec.universes_per_block], sub, spec.knob_context
        )
        parts.append(
            exact_histograms(layout, sub["w_nominal"], weights, weights_truth=weights_truth)
        )
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def _by_readout_value(
    cols: Mapping[str, np.ndarray], spec: AccumulationSpec, parameter: str, layout: BlockLayout
) -> Histograms | None:
    """A readout-value knob by class of readout value, when the block has few distinct values
    among the events it reweights (photoelectron counts): exact, one pass over the events."""
    w0 = cols["w_nominal"]
    slot, _ = layout.slots(w0.size, truth=False)  # a detection knob reweights reco slots only
    rows = np.flatnonzero((slot >= 0) & readout_value_affected(parameter, cols))
    distinct, first, inverse = np.unique(
        cols[spec.observable][rows], return_index=True, return_inverse=True
    )
    if distinct.size > MAX_READOUT_VALUES:
        return None
    return _by_class(cols, spec, parameter, layout, rows, first, inverse)


def _by_class(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    parameter: str,
    layout: BlockLayout,
    rows: np.ndarray,
    first: np.ndarray,
    inverse: np.ndarray,
) -> Histograms:
    """Every universe from the knob's exact factor on one event per class: ``rows`` are the
    classified events (the others keep factor 1), ``first`` the position among them of each
    class's first member, ``inverse`` the class of each."""
    w0 = cols["w_nominal"]
    representatives = {name: column[rows[first]] for name, column in cols.items()}
    factors, _ = knob_effect(
        parameter, spec.knob_values[parameter], representatives, spec.knob_context
    )
    category = np.full(w0.size, -1, dtype=np.int64)
    category[rows] = inverse.ravel()
    return categorical_histograms(
        layout, w0, category, factors, weights_truth=parameter not in DETECTION_KNOBS
    )


def _expanded(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    parameter: str,
    layout: BlockLayout,
    bins: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    weights_truth: bool,
) -> Histograms:
    """A weight knob through its Chebyshev expansion, event by event where it holds, with exact
    weights for the events where it does not (see farm.reweight.fastpaths)."""
    w0 = cols["w_nominal"]
    values = spec.knob_values[parameter]
    lo, hi = float(values.min()), float(values.max())
    nodes = chebyshev_nodes(lo, hi, EXPANSION_NODES)
    checks = np.array([lo, hi, float(np.median(values))])
    table, _ = knob_effect(parameter, np.concatenate([nodes, checks]), cols, spec.knob_context)
    slot, slot_truth = layout.slots(w0.size, truth=weights_truth)
    active = (slot >= 0) | (slot_truth >= 0)
    error = interpolation_error(
        table,
        EXPANSION_NODES,
        chebyshev_interpolation_matrix(checks, lo, hi, EXPANSION_NODES),
        active,
    )
    good = error <= EXPANSION_TOLERANCE
    filled = slot_fill(
        table[:EXPANSION_NODES],
        w0,
        np.where(good, slot, -1),
        np.where(good, slot_truth, -1),
        layout.n_slots,
    )
    sig, bkg, truth = expansion_histograms(
        layout, w0, filled, values, lo, hi, weights_truth=weights_truth
    )
    rest = np.flatnonzero(active & ~good)
    if rest.size:
        exact = _exact(cols, spec, parameter, rest, bins, weights_truth=weights_truth)
        sig, bkg = sig + exact[0], bkg + exact[1]
        if weights_truth:  # else the truth counts are nominal, already complete
            truth = truth + exact[2]
    return sig, bkg, truth


def fast_histograms(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
) -> Histograms | None:
    """A chunk of one kind of variation through a shortcut of farm.reweight.fastpaths, or None."""
    if spec.clamp is not None:
        return None
    if spec.event_flux_ratio is not None and (spec.event_flux_ratio != 1.0).any():
        return None
    active = [p for p, v in spec.knob_values.items() if v.any()]
    boot = spec.bootstrap_replica >= 0
    w0 = cols["w_nominal"]
    layout = BlockLayout.build(
        reco_bin, truth_bin, signal, cols["selected"], spec.n_reco, spec.n_truth
    )
    if not active and boot.all():
        compiled = _bootstrap_compiled(cols, spec, layout, w0)
        if compiled is not None:
            return compiled
        parts = []
        for start in range(0, boot.size, spec.universes_per_block):  # bounds the (U × n) matrices
            replicas = spec.bootstrap_replica[start : start + spec.universes_per_block]
            poisson = poisson_weights(cols["event_id"], replicas, spec.bootstrap_key)
            parts.append(bootstrap_histograms(layout, w0, poisson))
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]
    if len(active) != 1 or boot.any():
        return None
    parameter = active[0]
    values = spec.knob_values[parameter]
    if parameter in LATERAL_KNOBS:
        scales = 1.0 + values
        if (scales <= 0).any():
            return None
        _, unit = knob_effect(parameter, np.array([1.0]), cols, spec.knob_context)
        affected = unit[0] != 1.0
        reco = cols[spec.observable].astype(np.float64)
        return lateral_histograms(
            layout, w0, reco, truth_bin, signal, cols["selected"], affected, scales, spec.reco_edges
        )
    weights_truth = parameter not in DETECTION_KNOBS
    bins = (reco_bin, truth_bin, signal)
    if parameter in CATEGORICAL_KNOBS:
        key = np.zeros(w0.size, dtype=np.int64)
        for name in CATEGORICAL_KNOBS[parameter]:  # small integer columns (channel, A)
            key = key * 65536 + cols[name].astype(np.int64)
        _, first, category = np.unique(key, return_index=True, return_inverse=True)
        return _by_class(cols, spec, parameter, layout, np.arange(w0.size), first, category)
    if parameter in READOUT_VALUE_KNOBS:
        by_value = _by_readout_value(cols, spec, parameter, layout)
        if by_value is not None:
            return by_value
    if values.size > EXPANSION_NODES + 3 and values.max() > values.min():
        return _expanded(cols, spec, parameter, layout, bins, weights_truth=weights_truth)
    rows = np.union1d(np.union1d(layout.sig_events, layout.bkg_events), layout.truth_events)
    return _exact(cols, spec, parameter, rows, bins, weights_truth=weights_truth)
