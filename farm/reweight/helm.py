"""The Helm form-factor ratio of the neutron-radius knob, compiled: [j(q R₀')/j(q R₀)]² for
every event and shifted radius at once (farm.reweight.knobs), with a numpy fallback that gives the
same bits below ``HELM_SERIES_MAX_X``. The form factor itself is farm.physics.cevns's (Helm,
Phys. Rev. 104, 1466 (1956)); docs/physics.md.
"""

from __future__ import annotations

import math

import numpy as np

from farm.reweight.compiled import CACHE, HAVE_NUMBA, numba

__all__ = ["HELM_SERIES_MAX_X", "helm_ratio_table"]

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
