"""Universes of a detector knob that moves events between bins, from each event's crossing points.

A shift δ of one response parameter (quenching, energy scale, turn-on; farm.reweight.readout_shift)
moves an event's readout x'(δ) monotonically, and its state — the histogram slot it fills, or
none — changes only where x'(δ) crosses a bin edge or the event's own selection threshold. Each
event's state is therefore a step function of δ whose steps sit at crossing values δ* found in
closed form:

- energy scale: x' = E (1 + δ) g, so δ* = c / (E g) − 1 for a crossing value c;
- quenching: x' = E g(μ (1 + δ)), g(m) = max(m + z σ(m), 0), σ² = A m + B m² + C; g(m) = c/E is
  the quadratic (1 − z² B) m² − (2c/E + z² A) m + (c/E)² − z² C = 0, root on the thrown range;
- turn-on shift: the event is selected while x − (shift + δ) ≥ θ, so δ* = x − shift − θ.

Universe u then fills, for every event, the state of the steps below δ_u: per slot, a prefix sum
over the events' steps sorted by δ*, read at δ_u. Events whose state is the same at both ends of
the thrown range never move and are filled once. The result equals evaluating every universe
exactly: a step within 1e-9 of a universe's δ is re-evaluated exactly for that universe, and an
event whose readout is not provably monotone over the range is evaluated in every universe.
Cost O(N + S·U log N) instead of O(N·U). A universe's histogram depends only on its own δ and
the block, never on which other universes share the work item.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from farm.physics.response import CevnsResponse
from farm.reweight.fastpaths import BlockLayout
from farm.reweight.readout_shift import affected, readout_columns, shifted_readout

__all__ = ["MONOTONE_MARGIN", "STEP_TOLERANCE", "transition_histograms"]

Columns = Mapping[str, np.ndarray]
Histograms = tuple[np.ndarray, np.ndarray, np.ndarray]

STEP_TOLERANCE = 1e-9
"""A universe whose δ lies this close to an event's crossing (relative to max(1, |δ|)) takes the
exactly evaluated state of that event instead of the closed-form crossing's."""
MONOTONE_MARGIN = 0.01
"""Least slope dg/dm = 1 + z σ'(m) accepted as monotone for a quenching shift (else the event is
evaluated in every universe)."""


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    b = np.searchsorted(edges, values, side="right") - 1
    b[(b < 0) | (b >= edges.size - 1)] = -1
    return b


class _Events:
    """The candidate events of a block and their state at any shift (exact forward model)."""

    def __init__(
        self,
        cols: Columns,
        index: np.ndarray,
        readout: CevnsResponse,
        parameter: str,
        reco_edges: np.ndarray,
        truth_slot: np.ndarray,
        n_sig: int,
    ) -> None:
        names = (*readout_columns(parameter, readout), "selected")
        if parameter != "threshold":  # computed once: the quenched energy of every event
            names = (*names, "visible_kevee")
        self.cols = {name: cols[name][index] for name in names}
        self.readout = readout
        self.parameter = parameter
        self.edges = reco_edges
        self.truth_slot = truth_slot[index]
        """Signal: the truth bin; background: −1."""
        self.n_sig = n_sig

    def subset(self, rows: np.ndarray) -> _Events:
        out = object.__new__(_Events)
        out.cols = {name: column[rows] for name, column in self.cols.items()}
        out.readout, out.parameter, out.edges = self.readout, self.parameter, self.edges
        out.truth_slot, out.n_sig = self.truth_slot[rows], self.n_sig
        return out

    def states(self, shift: np.ndarray, n_truth: int) -> tuple[np.ndarray, np.ndarray]:
        """(readout value, slot or −1) at ``shift`` (P, m) or (P,), exactly as the generic path."""
        moved = shifted_readout({self.parameter: shift}, self.cols, self.readout)
        m = self.truth_slot.size
        p = shift.shape[0]
        value = (
            np.broadcast_to(moved.value, (p, m))
            if moved.value is not None
            else np.broadcast_to(self.cols[self.readout.column].astype(np.float64), (p, m))
        )
        selected = (
            np.broadcast_to(moved.selected, (p, m))
            if moved.selected is not None
            else np.broadcast_to(self.cols["selected"], (p, m))
        )
        b = _bin(value.ravel(), self.edges).reshape(p, m)
        signal = self.truth_slot >= 0
        slot = np.where(signal[None, :], b * n_truth + self.truth_slot[None, :], self.n_sig + b)
        return value, np.where(selected & (b >= 0), slot, -1)


def _quenching_crossing(
    r: CevnsResponse,
    mu: np.ndarray,
    z: np.ndarray,
    c: np.ndarray,
    m_lo: np.ndarray,
    m_hi: np.ndarray,
) -> np.ndarray:
    """δ* where E g(μ (1 + δ)) = c (all arrays per crossing); NaN if no root of the quadratic lies
    in [m_lo, m_hi] (to rounding) on the right branch."""
    target = c / r.energy_scale
    zz = z * z
    qa = 1.0 - zz * r.resolution_constant**2
    qb = -(2.0 * target + zz * r.resolution_stochastic**2)
    qc = target * target - zz * r.resolution_noise_kevee**2
    disc = np.sqrt(np.maximum(qb * qb - 4.0 * qa * qc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        big = -0.5 * (qb - disc)  # qb < 0 for c > 0: the stable pair of roots
        root1 = big / qa
        root2 = qc / big
        slack = 1e-12 * np.maximum(np.abs(m_hi), 1.0)
        lo, hi = m_lo - slack, m_hi + slack
        # squaring admits the roots of m − z σ(m) = c/E too: keep c/E − m = z σ(m), same sign as z
        ok1 = (root1 >= lo) & (root1 <= hi) & ((target - root1) * z >= -slack)
        ok2 = (root2 >= lo) & (root2 <= hi) & ((target - root2) * z >= -slack)
        m = np.where(ok1, root1, np.where(ok2, root2, np.nan))
        return m / mu - 1.0


def _crossings(
    events: _Events, x_lo: np.ndarray, x_hi: np.ndarray, v_lo: float, v_hi: float
) -> np.ndarray:
    """(m, C) closed-form crossing shifts of the moving events, sorted, NaN-padded: each bin edge
    and the event's own threshold that its readout passes between the ends of the range (with a
    1e-12 margin: a crossing too many only adds a step to the same state)."""
    r = events.readout
    theta = events.cols["selection_threshold"].astype(np.float64)
    m = theta.size
    if events.parameter == "threshold":
        x = events.cols[r.column].astype(np.float64)
        return ((x - r.efficiency_shift) - theta)[:, None]
    lo = x_lo - 1e-12 * np.maximum(np.abs(x_lo), 1.0)
    hi = x_hi + 1e-12 * np.maximum(np.abs(x_hi), 1.0)
    first = np.searchsorted(events.edges, lo, side="right")
    n_edges = np.searchsorted(events.edges, hi, side="right") - first
    c_sel = theta + r.efficiency_shift
    sel = (c_sel > lo) & (c_sel <= hi)
    per_event = n_edges + sel
    ev = np.repeat(np.arange(m), per_event)
    start = np.cumsum(per_event) - per_event
    k = np.arange(ev.size) - start[ev]
    is_edge = k < n_edges[ev]
    value = np.where(
        is_edge, events.edges[np.minimum(first[ev] + k, events.edges.size - 1)], c_sel[ev]
    )
    if events.parameter == "energy_scale":
        g = x_lo[ev] / (r.energy_scale * (1.0 + v_lo))
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = value / (r.energy_scale * g) - 1.0
    else:
        mu = events.cols["visible_kevee"][ev]
        z = events.cols["resolution_z"][ev].astype(np.float64)
        shift = _quenching_crossing(r, mu, z, value, mu * (1.0 + v_lo), mu * (1.0 + v_hi))
    out = np.full((m, max(int(per_event.max(initial=0)), 1)), np.nan)
    out[ev, k] = shift
    if out.shape[1] > 1:
        out.sort(axis=1)  # NaN last
    return out


def _below_range(
    cols: Columns, readout: CevnsResponse, parameter: str, edges: np.ndarray, v_hi: float
) -> np.ndarray:
    """Events whose readout stays out of the reco range for every shift up to ``v_hi``."""
    x = cols[readout.column]
    if parameter == "threshold":  # the readout does not move
        return (x < edges[0]) | (x >= edges[-1])
    if parameter == "energy_scale":  # x' = x (1 + δ) ≤ x (1 + v_hi)
        return x * (1.0 + max(v_hi, 0.0)) * (1.0 + 1e-9) < edges[0]
    # quenching: x' = E max(m + z σ(m), 0) ≤ E (m_hi + max(z, 0) σ(m_hi)), m_hi = μ (1 + v_hi)
    mu = cols["visible_kevee"]
    m_hi = np.maximum(mu * (1.0 + v_hi), 0.0)
    z = cols["resolution_z"].astype(np.float64)
    highest = readout.energy_scale * (m_hi + np.maximum(z, 0.0) * readout.sigma_kevee(m_hi))
    return highest * (1.0 + 1e-9) < edges[0]


def _monotone(events: _Events, v_lo: float, v_hi: float) -> np.ndarray:
    """Whether each event's readout provably rises (falls, for the turn-on) with the shift."""
    m = events.truth_slot.size
    if events.parameter == "threshold":
        return np.ones(m, dtype=bool)
    if events.parameter == "energy_scale":
        return np.full(m, 1.0 + v_lo > 0.0)
    r = events.readout
    z = events.cols["resolution_z"].astype(np.float64)
    mu = events.cols["visible_kevee"]
    m_lo, m_hi = mu * (1.0 + v_lo), mu * (1.0 + v_hi)
    sigma_lo = r.sigma_kevee(np.maximum(m_lo, 0.0))
    slope_bound = np.divide(
        r.resolution_stochastic**2 + 2.0 * r.resolution_constant**2 * m_hi,
        2.0 * sigma_lo,
        out=np.full(m, np.inf),
        where=sigma_lo > 0,
    )
    rising = (z >= 0) | (1.0 - np.abs(z) * slope_bound >= MONOTONE_MARGIN)
    # an event whose readout stays below every threshold over the range never changes state:
    # x' = E max(m + z σ(m), 0) ≤ E (m_hi + max(z, 0) σ(m_hi)) for m ≤ m_hi
    highest = r.energy_scale * (m_hi + np.maximum(z, 0.0) * r.sigma_kevee(np.maximum(m_hi, 0.0)))
    lowest = np.minimum(
        events.edges[0], events.cols["selection_threshold"].astype(np.float64) + r.efficiency_shift
    )
    return (1.0 + v_lo > 0.0) & (rising | (highest * (1.0 + 1e-9) < lowest))


def transition_histograms(
    cols: Columns,
    readout: CevnsResponse,
    parameter: str,
    values: np.ndarray,
    layout: BlockLayout,
    reco_edges: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
    thrown_range: tuple[float, float] | None = None,
) -> Histograms:
    """(signal (U, I, J), background (U, I), truth (U, J)) of the universes ``values`` of one
    response knob (module docstring); the truth counts are nominal (a detection knob).

    ``thrown_range`` (lo, hi) ⊇ ``values`` fixes which events count as moving and where their
    steps start: give the range of every universe of the systematic, and each universe's
    histogram is the same bits whichever chunk of universes it is computed with."""
    w0 = cols["w_nominal"]
    n = w0.size
    n_u, n_reco, n_truth = values.size, layout.n_reco, layout.n_truth
    n_sig = n_reco * n_truth
    n_slots = n_sig + n_reco
    v_lo, v_hi = thrown_range or (float(values.min()), float(values.max()))
    if values.size and (values.min() < v_lo or values.max() > v_hi):
        msg = f"universe values outside the thrown range [{v_lo}, {v_hi}]"
        raise ValueError(msg)
    truth_slot = np.where(signal, truth_bin, -1)

    theta = cols["selection_threshold"]
    moved = affected(parameter, cols)
    if parameter != "threshold":
        cols = {
            **cols,
            "visible_kevee": readout.quenching.visible_kevee(cols["recoil_mev"], cols["target_a"]),
        }
    initial, _ = layout.slots(n, truth=False)  # events nothing moves keep their nominal slot
    # events that can never fill a reco bin over the range stay out: never selected (θ = +∞),
    # a fixed readout outside the range (turn-on shift), or one that cannot reach the lowest edge
    never = moved & ((theta == np.inf) | _below_range(cols, readout, parameter, reco_edges, v_hi))
    initial[never] = -1
    cand = np.flatnonzero(moved & ~never)
    events = _Events(cols, cand, readout, parameter, reco_edges, truth_slot, n_sig)
    ends = np.broadcast_to(np.array([[v_lo], [v_hi]]), (2, cand.size))
    (x_lo, x_hi), (s_lo, s_hi) = events.states(ends, n_truth)
    monotone = _monotone(events, v_lo, v_hi)
    moving = np.flatnonzero(monotone & (s_lo != s_hi))
    crossing = np.zeros((0, 1))
    count = np.zeros(0, dtype=np.int64)
    if moving.size:
        crossing = _crossings(events.subset(moving), x_lo[moving], x_hi[moving], v_lo, v_hi)
        count = np.sum(~np.isnan(crossing), axis=1)
        lost = count == 0  # no closed-form crossing found: evaluate it in every universe
        if lost.any():
            monotone[moving[lost]] = False
            moving, crossing, count = moving[~lost], crossing[~lost], count[~lost]
    initial[cand] = np.where(monotone, s_lo, -1)

    table = np.zeros((n_u, n_slots))
    if moving.size:
        mov = events.subset(moving)
        steps = _steps(mov, crossing, count, s_lo[moving], s_hi[moving], n_truth)
        weight = w0[cand[moving]]
        ev, k = np.nonzero(np.arange(crossing.shape[1])[None, :] < count[:, None])
        order = np.argsort(crossing[ev, k])  # the steps by crossing (deterministic)
        sorted_steps = (crossing[ev, k][order], ev[order], k[order])
        table += _step_table(sorted_steps, steps, weight, values, n_slots)
        table += _near_step_corrections(
            mov, crossing, steps, count, sorted_steps, values, weight, n_truth, n_slots
        )

    has = initial >= 0
    base = np.bincount(initial[has], weights=w0[has], minlength=n_slots)
    table += base[None, :]

    rest = np.flatnonzero(~monotone)
    if rest.size:
        other = events.subset(rest)
        _, s_all = other.states(np.broadcast_to(values[:, None], (n_u, rest.size)), n_truth)
        w_rest = w0[cand[rest]]
        for u in range(n_u):
            ok = s_all[u] >= 0
            table[u] += np.bincount(s_all[u][ok], weights=w_rest[ok], minlength=n_slots)

    sig = table[:, :n_sig].reshape(n_u, n_reco, n_truth)
    bkg = table[:, n_sig:]
    truth = np.repeat(layout.truth_sums(w0)[None, :], n_u, axis=0)
    return sig, bkg, truth


def _steps(
    events: _Events,
    crossing: np.ndarray,
    count: np.ndarray,
    s_lo: np.ndarray,
    s_hi: np.ndarray,
    n_truth: int,
) -> np.ndarray:
    """(m, C + 1) states of each moving event: before its first crossing (at the low end of the
    range), between consecutive crossings (evaluated at the midpoint) and after the last (at the
    high end)."""
    m = count.size
    steps = np.full((m, crossing.shape[1] + 1), -1, dtype=np.int64)
    steps[:, 0] = s_lo
    multi = np.flatnonzero(count > 1)
    if multi.size:
        sub = events.subset(multi)
        mids = np.nan_to_num(0.5 * (crossing[multi, :-1] + crossing[multi, 1:]))
        for k in range(mids.shape[1]):
            rows = np.flatnonzero(k + 1 < count[multi])
            if rows.size == 0:
                break
            _, s_mid = sub.states(mids[None, :, k], n_truth)
            steps[multi[rows], k + 1] = s_mid[0, rows]
    steps[np.arange(m), count] = s_hi
    return steps


def _step_table(
    sorted_steps: tuple[np.ndarray, np.ndarray, np.ndarray],
    steps: np.ndarray,
    weight: np.ndarray,
    values: np.ndarray,
    n_slots: int,
) -> np.ndarray:
    """(U, slots) change from the moving events' initial states: the steps (−w leaving a slot,
    +w entering one) sorted by crossing, summed cumulatively per slot and read at each
    universe's shift. ``sorted_steps`` = (crossing, event, step index), sorted by crossing."""
    at, ev, k = sorted_steps
    # (leave, enter) pairs interleaved, so that each slot's entries stay sorted by crossing
    slot = np.stack([steps[ev, k], steps[ev, k + 1]], axis=1).ravel()
    where = np.repeat(at, 2)
    change = np.stack([-weight[ev], weight[ev]], axis=1).ravel()
    keep = slot >= 0
    slot, where, change = slot[keep], where[keep], change[keep]
    by_slot = np.argsort(slot, kind="stable")  # within a slot, still sorted by crossing
    slot, where, change = slot[by_slot], where[by_slot], change[by_slot]
    bounds = np.searchsorted(slot, np.arange(n_slots + 1))
    table = np.zeros((values.size, n_slots))
    for s in np.flatnonzero(np.diff(bounds)):
        a, b = bounds[s], bounds[s + 1]
        prefix = np.concatenate([[0.0], np.cumsum(change[a:b])])
        table[:, s] = prefix[np.searchsorted(where[a:b], values, side="right")]
    return table


def _near_step_corrections(
    events: _Events,
    crossing: np.ndarray,
    steps: np.ndarray,
    count: np.ndarray,
    sorted_steps: tuple[np.ndarray, np.ndarray, np.ndarray],
    values: np.ndarray,
    weight: np.ndarray,
    n_truth: int,
    n_slots: int,
) -> np.ndarray:
    """Exact states for the (universe, event) pairs whose δ lies within :data:`STEP_TOLERANCE`
    of one of the event's closed-form crossings: the correction to add to the table."""
    out = np.zeros((values.size, n_slots))
    v_sorted, e_sorted, _ = sorted_steps
    tol = STEP_TOLERANCE * np.maximum(1.0, np.abs(values))
    lo = np.searchsorted(v_sorted, values - tol, side="left")
    hi = np.searchsorted(v_sorted, values + tol, side="right")
    for u in np.flatnonzero(hi > lo):
        near = np.unique(e_sorted[lo[u] : hi[u]])
        _, exact = events.subset(near).states(np.full((1, near.size), values[u]), n_truth)
        passed = np.sum(crossing[near] <= values[u], axis=1)  # NaN compares False
        fast = steps[near, np.minimum(passed, count[near])]
        for j in np.flatnonzero(exact[0] != fast):
            if fast[j] >= 0:
                out[u, fast[j]] -= weight[near[j]]
            if exact[0, j] >= 0:
                out[u, exact[0, j]] += weight[near[j]]
    return out
