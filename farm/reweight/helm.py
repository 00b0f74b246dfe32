"""The Helm form-factor ratio of the neutron-radius knob, compiled: [j(q R₀')/j(q R₀)]² for
every event and shifted radius at once (farm.reweight.knobs), with a numpy fallback that gives the
same bits below ``HELM_SERIES_MAX_X``. The form factor itself is farm.physics.cevns's (Helm,
Phys. Rev. 104, 1466 (1956)); docs/physics.md.
"""

from __future__ import annotations

import math

import numpy as np

from farm.reweight.compiled import CACHE, HAVE_NUMBA, numba

if HAVE_NUMBA:
    from farm.reweight.compiled import interpolation_error_into

__all__ = ["HELM_SERIES_MAX_X", "helm_expansion_fill", "helm_ratio_table"]

HELM_SERIES_MAX_X = 4.0
"""Below this q·R₀ (every CEvNS event of a π-DAR or reactor sample: the first zero of j is at
4.493), j(x) = 3 j₁(x)/x is its power series; above, the closed form with sin and cos."""
_HELM_SERIES = tuple(
    3.0 * (-1.0) ** n / (2.0**n * math.factorial(n) * math.prod(range(2 * n + 3, 0, -2)))
    for n in range(18)
)
"""j(x) = Σₙ aₙ x²ⁿ, aₙ = 3(−1)ⁿ/(2ⁿ n! (2n+3)!!); 18 terms leave < 3e-21 at x = 4. Unlike the
closed form, which loses digits to the cancellation in sin x − x cos x at small x, the series is
accurate to rounding everywhere below 4, and needs no sin or cos: it vectorises."""


def _helm_j_numpy(x: np.ndarray) -> np.ndarray:
    y = x * x
    out = np.full_like(x, _HELM_SERIES[-1])
    for a in _HELM_SERIES[-2::-1]:
        out = out * y + a
    far = x > HELM_SERIES_MAX_X
    if far.any():
        xf = x[far]
        out[far] = 3.0 * (np.sin(xf) - xf * np.cos(xf)) / (xf * xf * xf)
    return out


def _helm_ratio_numpy(q_fm, group, r0_nominal, r0_values):
    nominal = _helm_j_numpy(q_fm * r0_nominal[group])
    out = np.empty((r0_values.shape[1], q_fm.size))
    for k in range(r0_values.shape[1]):
        ratio = np.divide(
            _helm_j_numpy(q_fm * r0_values[group, k]),
            nominal,
            out=np.ones_like(q_fm),
            where=nominal != 0.0,
        )
        out[k] = ratio * ratio
    return out


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE, inline="always")
    def _helm_series(x):
        y = x * x
        p = _HELM_SERIES[17]
        p = p * y + _HELM_SERIES[16]
        p = p * y + _HELM_SERIES[15]
        p = p * y + _HELM_SERIES[14]
        p = p * y + _HELM_SERIES[13]
        p = p * y + _HELM_SERIES[12]
        p = p * y + _HELM_SERIES[11]
        p = p * y + _HELM_SERIES[10]
        p = p * y + _HELM_SERIES[9]
        p = p * y + _HELM_SERIES[8]
        p = p * y + _HELM_SERIES[7]
        p = p * y + _HELM_SERIES[6]
        p = p * y + _HELM_SERIES[5]
        p = p * y + _HELM_SERIES[4]
        p = p * y + _HELM_SERIES[3]
        p = p * y + _HELM_SERIES[2]
        p = p * y + _HELM_SERIES[1]
        return p * y + _HELM_SERIES[0]

    @numba.njit(nogil=True, cache=CACHE)
    def _helm_j_far(x):
        return 3.0 * (np.sin(x) - x * np.cos(x)) / (x * x * x)

    @numba.njit(nogil=True, cache=CACHE)
    def _helm_ratio_numba(q_fm, group, r0_nominal, r0_values, may_be_far):
        # loops of one kind each (gather the radii, the series, the ratio) so that LLVM
        # vectorises the series; the closed form is a separate pass for the rare far events
        n = q_fm.size
        n_k = r0_values.shape[1]
        x = np.empty(n)
        for e in range(n):
            x[e] = q_fm[e] * r0_nominal[group[e]]
        nominal = np.empty(n)
        for e in range(n):
            nominal[e] = _helm_series(x[e])
        if may_be_far:
            for e in range(n):
                if x[e] > HELM_SERIES_MAX_X:
                    nominal[e] = _helm_j_far(x[e])
        out = np.empty((n_k, n))
        for k in range(n_k):
            for e in range(n):
                x[e] = q_fm[e] * r0_values[group[e], k]
            row = out[k]
            for e in range(n):
                row[e] = _helm_series(x[e])
            if may_be_far:
                for e in range(n):
                    if x[e] > HELM_SERIES_MAX_X:
                        row[e] = _helm_j_far(x[e])
            for e in range(n):
                ratio = row[e] / nominal[e]
                row[e] = ratio * ratio if nominal[e] != 0.0 else 1.0
        return out


def helm_ratio_table(
    q_fm: np.ndarray, group: np.ndarray, r0_nominal: np.ndarray, r0_values: np.ndarray
) -> np.ndarray:
    """[j(q R₀')/j(q R₀)]² per radius and event, shape (K, n); 1 where j(q R₀) = 0.

    Event e belongs to nucleus ``group[e]``, whose nominal box radius is ``r0_nominal[g]`` and
    whose K shifted radii are ``r0_values[g]``; an event with q = 0 gets exactly 1. The numba and
    numpy versions give the same bits for q·R₀ ≤ HELM_SERIES_MAX_X (the closed form beyond uses
    each one's own sin and cos).
    """
    q = np.ascontiguousarray(q_fm, dtype=np.float64)
    index = np.ascontiguousarray(group, dtype=np.int64)
    nominal = np.ascontiguousarray(r0_nominal, dtype=np.float64).reshape(-1)
    radii = np.ascontiguousarray(r0_values, dtype=np.float64).reshape(nominal.size, -1)
    if HAVE_NUMBA:
        top = float(q.max(initial=0.0)) * max(float(nominal.max()), float(radii.max()))
        return _helm_ratio_numba(q, index, nominal, radii, not top <= HELM_SERIES_MAX_X)
    return _helm_ratio_numpy(q, index, nominal, radii)


TILE = 256
"""Events per tile of :func:`helm_expansion_fill`: their (K + C) ratios stay in the L1 cache
between the series, the check and the fill (≈ 30 kB at K + C = 15)."""

if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE, inline="always")
    def _j_of_tile(q, radius, group, p, far, out):
        # out[i] = j(q[i] R₀), R₀ = radius[group[i]], for the first p events of a tile: the
        # series (vectorised), then the closed form past HELM_SERIES_MAX_X where ``far``
        for i in range(p):
            out[i] = q[i] * radius[group[i]]
        for i in range(p):
            out[i] = _helm_series(out[i])
        if far:
            for i in range(p):
                x = q[i] * radius[group[i]]
                if x > HELM_SERIES_MAX_X:
                    out[i] = _helm_j_far(x)

    @numba.njit(nogil=True, cache=CACHE)
    def _helm_expansion_numba(
        recoil, channel, target_a, w0, slot, slot_truth, n_slots, cevns_code, group_of_a,
        two_m, hbarc, r0_nominal, r0_values, unit, lagrange, tolerance,
    ):  # fmt: skip
        # helm_ratio_table, interpolation_error and slot_fill tile by tile of the active events,
        # each number computed by the same operations in the same order as those three (their
        # bits), without their (K + C, n) table. An event of group 0 (another channel, a nucleus
        # not in the sample) has every ratio exactly 1 there (q = 0: j(0) = 1): its check is
        # that of a row of ones, done once, and it is not evaluated.
        n = w0.size
        n_v = r0_values.shape[1]
        n_c = lagrange.shape[0]
        n_k = n_v - n_c
        out = np.zeros((n_slots, n_k))
        bad = np.empty(n, dtype=np.int64)
        n_bad = 0
        one_worst = np.empty(1)  # the check of a row of ones (group 0), once
        interpolation_error_into(np.ones((n_v, 1)), n_k, lagrange, 1, np.empty(1), one_worst)
        ones_fit = one_worst[0] <= tolerance
        index = np.empty(TILE, dtype=np.int64)  # active events of the tile, in order
        where = np.empty(TILE, dtype=np.int64)  # their place among the evaluated, −1: group 0
        group = np.empty(TILE, dtype=np.uint64)  # unsigned: no wrap-around of an index
        q = np.empty(TILE)
        nominal = np.empty(TILE)
        values = np.empty((n_v, TILE))
        approx_row = np.empty(TILE)
        worst = np.empty(TILE)
        r0_column = r0_values.T.copy()  # the R₀ of every group at one shift, contiguous
        r0_top = max(r0_values.max(), r0_nominal.max())
        for start in range(0, n, TILE):
            m = 0
            p = 0
            q_top = 0.0
            for e in range(start, min(start + TILE, n)):
                if slot[e] < 0 and slot_truth[e] < 0:
                    continue
                index[m] = e
                g = 0
                if channel[e] == cevns_code:
                    a = target_a[e]
                    if 0 <= a < group_of_a.size:
                        g = group_of_a[a]
                if g > 0:
                    t = np.float64(recoil[e])
                    q[p] = np.sqrt(two_m[g] * t + t * t) / hbarc
                    q_top = max(q_top, q[p])
                    group[p] = g
                    where[m] = p
                    p += 1
                else:
                    where[m] = -1
                m += 1
            far = not q_top * r0_top <= HELM_SERIES_MAX_X
            _j_of_tile(q, r0_nominal, group, p, far, nominal)
            for v in range(n_v):
                row = values[v]
                _j_of_tile(q, r0_column[v], group, p, far, row)
                if unit[v]:
                    for i in range(p):
                        row[i] = 1.0
                else:
                    for i in range(p):
                        ratio = row[i] / nominal[i]
                        row[i] = ratio * ratio if nominal[i] != 0.0 else 1.0
            interpolation_error_into(values, n_k, lagrange, p, approx_row, worst)
            for j in range(m):
                e = index[j]
                i = where[j]
                if not (ones_fit if i < 0 else worst[i] <= tolerance):
                    bad[n_bad] = e
                    n_bad += 1
                    continue
                w = w0[e]
                s = slot[e]
                st = slot_truth[e]
                if i < 0:
                    if s >= 0:
                        for k in range(n_k):
                            out[s, k] += w * 1.0
                    if st >= 0:
                        for k in range(n_k):
                            out[st, k] += w * 1.0
                    continue
                if s >= 0:
                    for k in range(n_k):
                        out[s, k] += w * values[k, i]
                if st >= 0:
                    for k in range(n_k):
                        out[st, k] += w * values[k, i]
        return out.T.copy(), bad[:n_bad].copy()


def helm_expansion_fill(
    columns: tuple[np.ndarray, np.ndarray, np.ndarray],
    w0: np.ndarray,
    slot: np.ndarray,
    slot_truth: np.ndarray,
    n_slots: int,
    nuclei: tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    unit: np.ndarray,
    lagrange: np.ndarray,
    tolerance: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The neutron-radius expansion of a block in one compiled pass; None without numba.

    ``columns`` are the events' (recoil_mev, channel, target_a); ``nuclei`` is (the CEvNS
    channel code, group of each mass number A (0: none), 2M per group, the nominal R₀ per group,
    the K + C shifted R₀ per group), group 0 being every other event (ratio exactly 1); ``unit``
    marks the shifts of zero (ratio exactly 1). Gives what :func:`helm_ratio_table`, then
    farm.reweight.compiled's ``interpolation_error`` on the last C = ``lagrange.shape[0]`` rows
    and ``slot_fill`` of the first K on the events within ``tolerance`` give, bit for bit: the
    (K, n_slots) node sums and the active events beyond the tolerance, in increasing order. No
    (K + C, n) table is stored: a tile of events is evaluated, checked and filled in the cache.
    """
    if not HAVE_NUMBA:
        return None
    from farm.physics.constants import HBARC_MEV_FM

    recoil, channel, target_a = columns
    code, group_of_a, two_m, r0_nominal, r0_values = nuclei
    return _helm_expansion_numba(
        np.ascontiguousarray(recoil, dtype=np.float64),
        np.ascontiguousarray(channel),
        np.ascontiguousarray(target_a),
        np.ascontiguousarray(w0, dtype=np.float64),
        np.ascontiguousarray(slot, dtype=np.int64),
        np.ascontiguousarray(slot_truth, dtype=np.int64),
        n_slots,
        code,
        np.ascontiguousarray(group_of_a, dtype=np.int64),
        np.ascontiguousarray(two_m, dtype=np.float64),
        HBARC_MEV_FM,
        np.ascontiguousarray(r0_nominal, dtype=np.float64),
        np.ascontiguousarray(r0_values, dtype=np.float64),
        np.ascontiguousarray(unit, dtype=np.bool_),
        np.ascontiguousarray(lagrange, dtype=np.float64),
        tolerance,
    )
