"""Best fit, Hesse errors, Wilks intervals and Δχ² profiles with MINUIT (iminuit).

MINUIT's Migrad (F. James & M. Roos, Comput. Phys. Commun. 10, 343 (1975)) through iminuit
(H. Dembinski et al., doi:10.5281/zenodo.3949207), the field's standard minimiser, rather than a
home-made one. The error definition is that of a least-squares χ² (Δχ² = 1 for 1σ). Wilks
intervals are Minos intervals at the requested confidence levels: the θ where the profile
Δχ²(θ) = min_η χ²(θ, η) − χ²_min crosses the χ²₁ quantile (S. S. Wilks, Ann. Math. Statist. 9, 60
(1938)), stopped at the parameter's range. Pure compute on a :class:`~farm.fit.problem.FitProblem`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats

from farm.fit.params import Parameter

__all__ = ["BestFit", "best_fit", "minimise", "profile_1d", "profile_2d", "wilks_threshold"]

TOLERANCE = 1e-7
"""Migrad's tolerance: it stops at an estimated distance to the minimum below 2e-3·tol in χ²,
polished further by its last Newton step (Asimov fits return their input to < 1e-6)."""


def wilks_threshold(cl: float, dof: int = 1) -> float:
    """Δχ² at confidence level ``cl`` by Wilks' theorem: the χ²_dof quantile (2.706 for 90 %, 1 dof)."""
    return float(scipy.stats.chi2.ppf(cl, dof))


@dataclass(frozen=True, kw_only=True)
class BestFit:
    """The minimum of χ²(θ) and what MINUIT says about it."""

    names: tuple[str, ...]
    values: np.ndarray
    errors: np.ndarray
    """Hesse (parabolic) errors, Δχ² = 1."""
    covariance: np.ndarray
    chi2: float
    ndof: int
    """Bins − free parameters."""
    valid: bool
    calls: int
    at_limit: tuple[bool, ...]

    def __repr__(self) -> str:
        values = ", ".join(
            f"{n} = {v:.6g} ± {e:.3g}"
            for n, v, e in zip(self.names, self.values, self.errors, strict=True)
        )
        state = "valid" if self.valid else "NOT valid"
        return f"BestFit({values}; χ²_min {self.chi2:.4g} / {self.ndof} dof, {state}, {self.calls} calls)"

    @property
    def pvalue(self) -> float:
        """Goodness of fit, P(χ²_ndof ≥ χ²_min); NaN without degrees of freedom."""
        if self.ndof <= 0:
            return float("nan")
        return float(scipy.stats.chi2.sf(self.chi2, self.ndof))


def _minuit(
    fcn: Callable[[np.ndarray], float], params: Sequence[Parameter], start: Sequence[float]
):
    from iminuit import Minuit

    m = Minuit(fcn, np.asarray(start, dtype=np.float64), name=[p.name for p in params])
    m.errordef = Minuit.LEAST_SQUARES
    m.limits = [(p.lower, p.upper) for p in params]
    m.errors = [0.05 * (p.upper - p.lower) for p in params]
    m.strategy = 2
    m.tol = TOLERANCE
    m.print_level = 0
    return m


def minimise(
    chi2: Callable[[Sequence[float]], float],
    params: Sequence[Parameter],
    *,
    start: Sequence[float] | None = None,
    fixed: dict[int, float] | None = None,
):
    """Run Migrad on ``chi2`` within the parameters' ranges; ``fixed`` holds index → value.

    Returns the ``iminuit.Minuit`` object after Migrad (and Hesse where something is free).
    """
    values = [p.start for p in params] if start is None else list(start)
    for index, value in (fixed or {}).items():
        values[index] = value
    m = _minuit(lambda x: chi2(x), params, values)
    for index in fixed or {}:
        m.fixed[index] = True
    if all(m.fixed):
        return m
    m.migrad(ncall=10_000, iterate=10)
    if m.valid:
        m.migrad(ncall=10_000)  # a second Migrad from the minimum polishes its last step
    m.hesse()
    return m


def _external_hesse(
    chi2: Callable[[Sequence[float]], float],
    params: Sequence[Parameter],
    values: np.ndarray,
    fitted: object,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Hesse errors at the minimum in the parameters themselves (no limits).

    Migrad works in MINUIT's internal coordinates for a bounded parameter (a sine transform), and
    the errors it maps back are only as good as the transform is linear over ±1σ; away from the
    limits the Hessian of χ² itself is what Δχ² = 1 means.
    """
    from iminuit import Minuit

    m = Minuit(lambda x: chi2(x), values.copy(), name=[p.name for p in params])
    m.errordef = Minuit.LEAST_SQUARES
    m.errors = np.array(fitted.errors, dtype=np.float64)  # type: ignore[attr-defined]
    m.strategy = 2
    try:
        m.hesse()
    except ValueError:  # a step left the model's domain (near a limit): keep Migrad's errors
        return None, None
    if m.covariance is None or not m.accurate:
        return None, None
    return np.array(m.errors, dtype=np.float64), np.array(m.covariance, dtype=np.float64)


def best_fit(
    chi2: Callable[[Sequence[float]], float], params: Sequence[Parameter], n_bins: int
) -> BestFit:
    """The global minimum of χ²(θ) over the parameters' ranges, with Hesse errors."""
    m = minimise(chi2, params)
    values = np.array(m.values, dtype=np.float64)
    at_limit = tuple(
        bool(np.isclose(v, p.lower, rtol=0, atol=1e-9 * (p.upper - p.lower))
             or np.isclose(v, p.upper, rtol=0, atol=1e-9 * (p.upper - p.lower)))
        for v, p in zip(values, params, strict=True)
    )  # fmt: skip
    errors, covariance = (
        _external_hesse(chi2, params, values, m) if not any(at_limit) else (None, None)
    )
    if covariance is None:
        errors = np.array(m.errors, dtype=np.float64)
        covariance = (
            np.array(m.covariance, dtype=np.float64)
            if m.covariance is not None
            else np.full((len(params), len(params)), np.nan)
        )
    return BestFit(
        names=tuple(p.name for p in params),
        values=values,
        errors=errors,
        covariance=covariance,
        chi2=float(m.fval),
        ndof=n_bins - len(params),
        valid=bool(m.valid),
        calls=int(m.nfcn),
        at_limit=at_limit,
    )


def wilks_intervals(
    chi2: Callable[[Sequence[float]], float],
    params: Sequence[Parameter],
    best: BestFit,
    cls: Sequence[float],
) -> np.ndarray:
    """(P, C, 2) Minos intervals of each parameter at each confidence level (Δχ² = χ²₁ quantile).

    Where Δχ² stays below the threshold up to an end of the parameter's range, that end is the
    interval's bound (the physical region ends there).
    """
    out = np.zeros((len(params), len(cls), 2))
    m = minimise(chi2, params, start=best.values)
    for c, cl in enumerate(cls):
        for k, p in enumerate(params):
            try:
                m.minos(p.name, cl=cl)
            except RuntimeError:  # MINUIT refuses Minos from an invalid minimum
                out[k, c] = np.nan
                continue
            e = m.merrors[p.name]
            lo = p.lower if e.at_lower_limit else best.values[k] + e.lower
            hi = p.upper if e.at_upper_limit else best.values[k] + e.upper
            out[k, c] = (max(lo, p.lower), min(hi, p.upper))
    return out


def profile_1d(
    chi2: Callable[[Sequence[float]], float],
    params: Sequence[Parameter],
    best: BestFit,
    index: int,
    points: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(Δχ², nuisance values) along ``points`` of parameter ``index``, the others minimised.

    Δχ²(θ) = min_η χ²(θ, η) − χ²_min; returns also the conditional best η (points, P).
    """
    nuisances = np.tile(best.values, (points.size, 1))
    dchi2 = np.empty(points.size)
    if len(params) == 1:
        for k, value in enumerate(points):
            dchi2[k] = chi2([value]) - best.chi2
        nuisances[:, 0] = points
        return dchi2, nuisances
    # walk out from the best fit in both directions, each fit starting from its neighbour's
    centre = int(np.argmin(np.abs(points - best.values[index])))
    for order in (range(centre, points.size), range(centre - 1, -1, -1)):
        start = best.values.copy()
        for k in order:
            m = minimise(chi2, params, start=start, fixed={index: float(points[k])})
            dchi2[k] = m.fval - best.chi2
            nuisances[k] = np.array(m.values)
            start = nuisances[k]
    return dchi2, nuisances


def profile_2d(
    chi2: Callable[[Sequence[float]], float],
    params: Sequence[Parameter],
    best: BestFit,
    indices: tuple[int, int],
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """Δχ² on the grid x × y of two parameters (the others, if any, minimised)."""
    out = np.empty((x.size, y.size))
    i, j = indices
    for a, xv in enumerate(x):
        for b, yv in enumerate(y):
            if len(params) == 2:
                theta = np.empty(2)
                theta[i], theta[j] = xv, yv
                out[a, b] = chi2(theta) - best.chi2
            else:
                m = minimise(chi2, params, start=best.values, fixed={i: float(xv), j: float(yv)})
                out[a, b] = m.fval - best.chi2
    return out
