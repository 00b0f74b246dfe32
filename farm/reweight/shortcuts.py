"""Which shortcut fills the per-event universes of a chunk, and the shortcut run on one block.

A chunk of universes that varies one thing — one knob, or the bootstrap — has a fast path:
categories, the Chebyshev expansion with its per-event check (farm.reweight.fastpaths), the
photoelectron likelihood ratio by count class, the crossing steps of a readout that moves
(farm.reweight.transitions), lateral prefix sums of a rescaled readout, or the compiled bootstrap.
:func:`fast_histograms` picks it from the knob's kind and the block's events, and returns None
when none applies (weight clamping, a flux variation per event, several knobs at once), leaving
the generic per-universe path of farm.accumulate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from farm.physics.response import CevnsResponse, poisson_ratio
from farm.reweight.bootstrap import poisson_weights
from farm.reweight.compiled import bootstrap_fill, interpolation_error, ordered_matmul, slot_fill
from farm.reweight.fastpaths import (
    BlockLayout,
    bootstrap_histograms,
    categorical_histograms,
    chebyshev_interpolation_matrix,
    chebyshev_nodes,
    exact_histograms,
    expansion_histograms,
    lateral_histograms,
    split_slots,
)
from farm.reweight.knobs import (
    DETECTION_KNOBS,
    FUSED_EXPANSIONS,
    RESPONSE_KNOBS,
    categorical_columns,
    knob_weight,
    required_columns,
)
from farm.reweight.readout_shift import ScaledReadout, affected
from farm.reweight.slots import add_class_products, classes
from farm.reweight.transitions import transition_histograms

if TYPE_CHECKING:
    from farm.accumulate import AccumulationSpec

__all__ = ["EXPANSION_NODES", "EXPANSION_TOLERANCE", "expansion_nodes", "fast_histograms"]

Histograms = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(signal (U, I, J), background (U, I), truth (U, J)) of a block of universes."""

EXPANSION_NODES = 12
"""Chebyshev nodes for a weight knob's expansion (exact evaluations per event)."""
_NODES_OF = {"ccqe_ma_mev": 16}
"""Knobs that need more nodes. The axial mass over its thrown ±35 %: with 12 nodes the
interpolant of one CCQE event in six missed its exact weight by 1.0–2.1e-9 (just past the
tolerance), and each such event was filled exactly, in every universe; with 16, none misses
(worst 2.6e-12, nuSCOPE's sample)."""
EXPANSION_TOLERANCE = 1e-9
"""Largest relative difference between an event's interpolated and exact weight at the check
points (the ends and the median of the thrown values) for the expansion to fill that event; the
events beyond it are filled with exact per-universe weights."""


def span(spec: AccumulationSpec, parameter: str) -> tuple[float, float, float, int]:
    """(min, max, median, count) of the values of every universe of the systematic that owns the
    chunk (:attr:`AccumulationSpec.knob_span`), else of the chunk's own values: the range and
    path of a shortcut depend on the systematic, never on how its universes are chunked."""
    values = spec.knob_values[parameter]
    lo, hi = float(values.min()), float(values.max())
    if spec.knob_span is not None and parameter in spec.knob_span:
        own = spec.knob_span[parameter]
        if own[0] <= lo and hi <= own[1]:
            return own
    return lo, hi, float(np.median(values)), int(values.size)


def expansion_nodes(parameter: str) -> int:
    """The Chebyshev nodes of ``parameter``'s expansion (:data:`EXPANSION_NODES` unless the knob
    needs more)."""
    return _NODES_OF.get(parameter, EXPANSION_NODES)


def _expands(spec: AccumulationSpec, parameter: str) -> bool:
    lo, hi, _, count = span(spec, parameter)
    return count > expansion_nodes(parameter) + 3 and hi > lo


def _bootstrap_compiled(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
) -> Histograms | None:
    """The bootstrap in one compiled pass over the block's columns and bins (slot, hash,
    Poisson weight and sum per event and replica); None without numba."""
    table = bootstrap_fill(
        cols["w_nominal"],
        cols["event_id"],
        spec.bootstrap_key,
        spec.bootstrap_replica,
        reco_bin,
        truth_bin,
        signal,
        cols["selected"],
        spec.n_reco,
        spec.n_truth,
    )
    return None if table is None else split_slots(table, spec.n_reco, spec.n_truth)


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
    names = {"channel", "selected", "w_nominal", *required_columns(parameter, spec.knob_context)}
    sub = {name: cols[name][rows] for name in names}
    layout = BlockLayout.build(
        reco_bin[rows], truth_bin[rows], signal[rows], sub["selected"], spec.n_reco, spec.n_truth
    )
    parts = []
    for start in range(0, values.size, spec.universes_per_block):
        weights = knob_weight(
            parameter, values[start : start + spec.universes_per_block], sub, spec.knob_context
        )
        parts.append(
            exact_histograms(layout, sub["w_nominal"], weights, weights_truth=weights_truth)
        )
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


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
    # the columns the factor depends on: a worker's block reads no other (workers.tasks)
    names = {"channel", *required_columns(parameter, spec.knob_context)}
    representatives = {name: cols[name][rows[first]] for name in names}
    factors = knob_weight(
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
    lo, hi, middle, _ = span(spec, parameter)
    n_nodes = expansion_nodes(parameter)
    nodes = chebyshev_nodes(lo, hi, n_nodes)
    checks = np.array([lo, hi, middle])
    points = np.concatenate([nodes, checks])
    slot, slot_truth = layout.slots(w0.size, truth=weights_truth)
    lagrange = chebyshev_interpolation_matrix(checks, lo, hi, n_nodes)
    one_pass = FUSED_EXPANSIONS.get(parameter)
    fused = None
    if one_pass is not None:
        fill = (w0, slot, slot_truth, layout.n_slots)
        fused = one_pass(points, cols, spec.knob_context, fill, lagrange, EXPANSION_TOLERANCE)
    if fused is not None:
        filled, rest = fused
    else:
        table = knob_weight(parameter, points, cols, spec.knob_context)
        active = (slot >= 0) | (slot_truth >= 0)
        good = interpolation_error(table, n_nodes, lagrange, active) <= EXPANSION_TOLERANCE
        filled = slot_fill(
            table[:n_nodes],
            w0,
            np.where(good, slot, -1),
            np.where(good, slot_truth, -1),
            layout.n_slots,
        )
        rest = np.flatnonzero(active & ~good)
    sig, bkg, truth = expansion_histograms(
        layout, w0, filled, values, lo, hi, weights_truth=weights_truth
    )
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
    if not active and boot.all():
        compiled = _bootstrap_compiled(cols, spec, reco_bin, truth_bin, signal)
        if compiled is not None:
            return compiled
    w0 = cols["w_nominal"]
    layout = BlockLayout.build(
        reco_bin, truth_bin, signal, cols["selected"], spec.n_reco, spec.n_truth
    )
    if not active and boot.all():
        parts = []
        for start in range(0, boot.size, spec.universes_per_block):  # bounds the (U × n) matrices
            replicas = spec.bootstrap_replica[start : start + spec.universes_per_block]
            poisson = poisson_weights(cols["event_id"], replicas, spec.bootstrap_key)
            parts.append(bootstrap_histograms(layout, w0, poisson))
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]
    if len(active) != 1 or boot.any():
        return None
    parameter = active[0]
    if parameter in RESPONSE_KNOBS:
        return _response(cols, spec, parameter, layout, reco_bin, truth_bin, signal)
    weights_truth = parameter not in DETECTION_KNOBS
    bins = (reco_bin, truth_bin, signal)
    categorical = categorical_columns(parameter)
    if categorical is not None:
        key = np.zeros(w0.size, dtype=np.int64)
        for name in categorical:  # small integer columns (channel, A)
            key = key * 65536 + cols[name].astype(np.int64)
        first, category = classes(key)
        return _by_class(cols, spec, parameter, layout, np.arange(w0.size), first, category)
    if _expands(spec, parameter):
        return _expanded(cols, spec, parameter, layout, bins, weights_truth=weights_truth)
    rows = np.union1d(np.union1d(layout.sig_events, layout.bkg_events), layout.truth_events)
    return _exact(cols, spec, parameter, rows, bins, weights_truth=weights_truth)


def _response(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    parameter: str,
    layout: BlockLayout,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
) -> Histograms | None:
    """A knob that moves the readout: rescaled readouts by prefix sums, photoelectron means by
    the likelihood ratio per count class, every other move by its crossing steps."""
    readout = spec.knob_context.readout
    values = spec.knob_values[parameter]
    w0 = cols["w_nominal"]
    if isinstance(readout, ScaledReadout):
        scales = 1.0 + values
        if 1.0 + span(spec, parameter)[0] <= 0:
            return None
        reco = cols[spec.observable].astype(np.float64)
        moved = affected(parameter, cols)
        return lateral_histograms(
            layout, w0, reco, truth_bin, signal, cols["selected"], moved, scales, spec.reco_edges
        )
    if not isinstance(readout, CevnsResponse):
        return None
    if parameter != "threshold" and 1.0 + span(spec, parameter)[0] <= 0:  # a scale stays > 0
        return None
    if readout.readout == "pe" and parameter in ("quenching", "light_yield"):
        return _poisson_classes(cols, spec, parameter, layout, readout)
    lo, hi, _, _ = span(spec, parameter)
    return transition_histograms(
        cols, readout, parameter, values, layout, spec.reco_edges, truth_bin, signal, (lo, hi)
    )


def _poisson_classes(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    parameter: str,
    layout: BlockLayout,
    readout: CevnsResponse,
) -> Histograms:
    """Photoelectron mean λ → λ(1 + δ): each selected event's weight r(δ) = (1 + δ)^k e^{−λδ}
    factorises as g_k(δ) h(δ) with g_k = e^{k (ln(1 + δ) − δ)}, one function per count class k,
    and h = e^{−(λ − k) δ}, smooth over the thrown range. h is interpolated on Chebyshev nodes and
    filled into node histograms per (class, slot) in one pass; universe u is
    Σ_k g_k(δ_u) Σₙ Lₙ(δ_u) N[k, n]. Events whose interpolant misses h at the check points by more
    than :data:`EXPANSION_TOLERANCE` are filled with exact weights."""
    w0 = cols["w_nominal"]
    values = spec.knob_values[parameter]
    n_u, n_slots = values.size, layout.n_reco * layout.n_truth + layout.n_reco
    slot, _ = layout.slots(w0.size, truth=False)
    moved = affected(parameter, cols)
    rows = np.flatnonzero((slot >= 0) & moved)
    fixed = np.flatnonzero((slot >= 0) & ~moved)
    fixed_sums = np.bincount(slot[fixed], weights=w0[fixed], minlength=n_slots)
    table = np.repeat(fixed_sums.astype(np.float64)[None, :], n_u, axis=0)  # int64 when empty
    k = cols[readout.column][rows].astype(np.float64)
    lam = readout.mean_pe(cols["recoil_mev"][rows], cols["target_a"][rows])
    lo, hi, middle, _ = span(spec, parameter)
    if rows.size and _expands(spec, parameter):
        classes, inverse = np.unique(k, return_inverse=True)
        n_nodes = expansion_nodes(parameter)
        nodes = chebyshev_nodes(lo, hi, n_nodes)
        checks = np.array([lo, hi, middle])
        points = np.concatenate([nodes, checks])
        smooth = np.exp(-(lam - k)[None, :] * points[:, None])
        error = interpolation_error(
            smooth,
            n_nodes,
            chebyshev_interpolation_matrix(checks, lo, hi, n_nodes),
            np.ones(rows.size, dtype=bool),
        )
        good = error <= EXPANSION_TOLERANCE
        n_cls = classes.size
        filled = slot_fill(
            smooth[:n_nodes],
            w0[rows],
            np.where(good, inverse.ravel() * n_slots + slot[rows], -1),
            np.full(rows.size, -1, dtype=np.int64),
            n_cls * n_slots,
        )
        per_class = ordered_matmul(
            chebyshev_interpolation_matrix(values, lo, hi, n_nodes), filled
        ).reshape(n_u, n_cls, n_slots)
        g = np.exp(classes[None, :] * (np.log1p(values)[:, None] - values[:, None]))
        add_class_products(table, g, per_class)
        exact = np.flatnonzero(~good)
    else:
        exact = np.arange(rows.size)
    if exact.size:
        ratio = poisson_ratio(k[exact][None, :], lam[exact][None, :], 1.0 + values[:, None])
        for u in range(n_u):
            table[u] += np.bincount(
                slot[rows[exact]], weights=w0[rows[exact]] * ratio[u], minlength=n_slots
            )
    n_sig = layout.n_reco * layout.n_truth
    sig = table[:, :n_sig].reshape(n_u, layout.n_reco, layout.n_truth)
    truth = np.repeat(layout.truth_sums(w0)[None, :], n_u, axis=0)
    return sig, table[:, n_sig:], truth
