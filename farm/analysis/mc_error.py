"""Monte-Carlo error of covariances and chi-squares estimated from a finite number of universes.

A covariance over N universes, ``V̂ = (1/K) Σ_u δ_u δ_uᵀ`` (:func:`universe_covariance`), is a
mean of N products ``g_u = δ_ua δ_ub``; its standard error is ``√(N Var(g)) / K``. For a variance
(``a = b``) the relative error is

    SE(V̂_aa) / V_aa = √((κ − 1) / N)                  about the central value,
                    = √(2/(N − 1) + (κ − 3)/N)         about the universe mean,

with ``κ = E δ⁴ / (E δ²)²`` the kurtosis of the deviations: ``√(2/N)`` for Gaussian throws
(E. L. Lehmann and G. Casella, *Theory of Point Estimation*, 2nd ed., Springer 1998, §2.2; the
mean-centred form is the textbook variance of the sample variance).

The estimator used here is the Gaussian value with a non-negative excess from the universes,

    rel² = 2/ν + max(0, s²(g)/ḡ² − 2) / N,             ν = N (about the CV), N − 1 (about the mean),

where ``s²(g)/ḡ² − 2`` estimates ``κ − 3`` (``s²`` with ``1/(N − 1)``). Why not the sample alone
(or a bootstrap, or a jackknife of the variance): with N universes the sample kurtosis is at most
N, so at small N it is biased low without bound (at N = 2 the bootstrap gives ≈ 0.45 where the
truth for Gaussian throws is 1). The Gaussian term is exact for Gaussian throws at every N, so
the estimate never claims less than Gaussian precision; heavier tails (knob responses that are
not linear in the throw) add to it as soon as the universes show them. Deviations with lighter
tails than Gaussian are reported conservatively. Element by element the Gaussian term is
``(V̂_aa V̂_bb + V̂_ab²)/ν`` (Isserlis' theorem).

The chi-square of a model test depends on the covariance non-linearly (through its inverse); its
Monte-Carlo error is a delete-one-universe jackknife stratified by systematic, which also
estimates the bias ``(N − 1)(χ̄²₍ᵤ₎ − χ̂²)`` that a covariance from few universes gives the
chi-square (B. Efron and C. Stein, Ann. Statist. 9 (1981) 586: the jackknife variance is
conservative in expectation), with the Gaussian delta-method error as its floor, as for the
covariance. Deleting one universe changes the difference covariance by a rank-one (rank-two
without the measured–predicted correlation) term, so every deletion is a Woodbury update of one
Cholesky factor per systematic. When a systematic's covariance has the rank its N universes allow
below the number of bins, the chi-square depends on directions no universe reached and its error
is reported as unknown (infinite). Unisim systematics (fixed ±1σ pairs) are exact and have no
Monte-Carlo error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from farm.analysis.covariance import (
    Center,
    Normalization,
    _as_universe_values,
    _check_options,
    _denominator,
    _reference,
)

__all__ = [
    "UNMOVED",
    "Chi2MCError",
    "chi2_mc_error",
    "covariance_mc_error",
    "covariance_rank",
    "rank_limit",
    "relative_mc_error",
    "universes_needed",
    "variance_relative_errors",
]

FloatArray = NDArray[np.float64]

UNMOVED = 1e-9
"""A bin whose ±1σ over the universes is below this fraction of its reference value is not moved
by the systematic (rounding noise): its variance has no relative error."""


@dataclass(frozen=True, kw_only=True)
class _Moments:
    deviations: FloatArray
    reference: FloatArray
    n: int
    k: int
    """Normalisation of the covariance (N or N − 1)."""
    dof: int
    """Independent deviations: N about the central value, N − 1 about the mean."""


def _moments(
    values: ArrayLike, central: ArrayLike | None, center: str, normalization: str
) -> _Moments:
    array = _as_universe_values(values)
    n = array.shape[0]
    _check_options(center, normalization, n)
    reference = _reference(array, central, center)
    return _Moments(
        deviations=array - reference,
        reference=reference,
        n=n,
        k=_denominator(n, normalization),
        dof=n if center == "cv" else n - 1,
    )


def _excess_variance(m: _Moments) -> FloatArray:
    """``N · max(0, s²(g) − (ḡ_aa ḡ_bb + ḡ_ab²))``: the non-Gaussian part of ``N Var(g_ab)``."""
    if m.n < 2:
        return np.zeros((m.deviations.shape[1],) * 2)
    mean = m.deviations.T @ m.deviations / m.n
    squares = m.deviations**2
    spread = (squares.T @ squares / m.n - mean**2) * (m.n / (m.n - 1))
    gaussian = np.outer(np.diagonal(mean), np.diagonal(mean)) + mean**2
    return m.n * np.maximum(spread - gaussian, 0.0)


def covariance_mc_error(
    values: ArrayLike,
    *,
    central: ArrayLike | None = None,
    center: Center = "cv",
    normalization: Normalization = "n",
) -> FloatArray:
    """Standard error of every element of :func:`universe_covariance` from the finite universes.

        SE(V̂_ab)² = (V̂_aa V̂_bb + V̂_ab²)/ν + N · max(0, s²(g_ab) − (ḡ_aa ḡ_bb + ḡ_ab²)) / K²

    with ``g_u = δ_ua δ_ub``, ``ν`` = N about the central value and N − 1 about the mean, and
    ``K`` the normalisation. The first term is exact for Gaussian throws at any N; the second adds
    the excess kurtosis that the universes show (module docstring).

    Parameters
    ----------
    values : array_like, shape (n_universe, n_bin)
    central, center, normalization
        As for :func:`farm.analysis.covariance.universe_covariance`.

    Returns
    -------
    numpy.ndarray, shape (n_bin, n_bin)
        ``inf`` everywhere when no deviation is independent (one universe about its own mean).

    Examples
    --------
    >>> covariance_mc_error([[1.0], [-1.0]], central=[0.0])  # V = 1 from 2 Gaussian-like throws
    array([[1.]])
    """
    m = _moments(values, central, center, normalization)
    n_bin = m.deviations.shape[1]
    if m.dof < 1:
        return np.full((n_bin, n_bin), np.inf)
    cov = m.deviations.T @ m.deviations / m.k
    variance = np.outer(np.diagonal(cov), np.diagonal(cov)) + cov**2
    return np.sqrt(variance / m.dof + _excess_variance(m) / m.k**2)


def variance_relative_errors(
    values: ArrayLike,
    *,
    central: ArrayLike | None = None,
    center: Center = "cv",
    normalization: Normalization = "n",
) -> FloatArray:
    """Relative standard error of each variance ``V̂_aa`` (the diagonal of the covariance).

        rel_a² = 2/ν + max(0, s²(g_a)/ḡ_a² − 2) / N,    g_ua = δ_ua²

    ``√(2/N)`` for Gaussian throws about the central value (1.0 at N = 2), ``√(2/(N − 1))``
    about the mean; larger when the deviations have heavier tails than a Gaussian. A bin that
    the universes do not move (±1σ below :data:`UNMOVED` of its reference value) gets 0.

    Examples
    --------
    >>> variance_relative_errors([[1.0], [-1.0]], central=[0.0])
    array([1.])
    """
    m = _moments(values, central, center, normalization)
    sum_sq = np.sum(m.deviations**2, axis=0)
    scale = np.abs(m.reference)
    moved = np.where(scale > 0, sum_sq > (UNMOVED * scale) ** 2 * m.k, sum_sq > 0)
    if m.dof < 1:
        return np.where(moved, np.inf, 0.0)
    excess = np.zeros_like(sum_sq)
    if m.n >= 2:
        g = m.deviations**2
        mean = g.mean(axis=0)
        spread = g.var(axis=0, ddof=1)
        ratio = np.divide(spread, mean**2, out=np.zeros_like(mean), where=mean > 0)
        excess = np.maximum(ratio - 2.0, 0.0) / m.n
    return np.where(moved, np.sqrt(2.0 / m.dof + excess), 0.0)


def relative_mc_error(
    values: ArrayLike,
    *,
    central: ArrayLike | None = None,
    center: Center = "cv",
    normalization: Normalization = "n",
) -> float:
    """Largest relative standard error of a variance over the bins the universes move (0: none).

    The single number that says whether a systematic's covariance is known well enough:
    ``√(2/N)`` for N Gaussian throws about the central value, so 10 % needs 200 universes.

    Examples
    --------
    >>> relative_mc_error([[1.0, 0.0], [-1.0, 0.0]], central=[0.0, 0.0])
    1.0
    """
    errors = variance_relative_errors(
        values, central=central, center=center, normalization=normalization
    )
    return float(errors.max(initial=0.0))


def universes_needed(n_universes: int, relative_error: float, target: float, center: str) -> int:
    """Universes that bring a relative error to ``target``: ``ν' = ν (rel / target)²`` independent
    deviations (ν = N about the central value, N − 1 about the mean), at least the Gaussian
    minimum ``ν' = 2/target²``.

    Examples
    --------
    >>> universes_needed(2, 1.0, 0.10, "cv")
    200
    >>> universes_needed(300, 0.05, 0.10, "cv")
    300
    """
    if not 0 < target:
        msg = f"the precision target must be > 0 (a fraction such as 0.10); got {target}"
        raise ValueError(msg)
    offset = 0 if center == "cv" else 1
    # the 1e-9 absorbs rounding: 2 / 0.1² is 200.00000000000003, and needs 200 universes
    minimum = math.ceil(2.0 / target**2 - 1e-9) + offset
    if relative_error <= target:
        return n_universes
    if not math.isfinite(relative_error):
        return max(minimum, n_universes + 1)
    dof = n_universes - offset
    return max(minimum, math.ceil(dof * (relative_error / target) ** 2 - 1e-9) + offset)


def covariance_rank(cov: ArrayLike) -> int:
    """Numerical rank: eigenvalues above ``n · machine-epsilon · max |λ|`` (as in diagnostics).

    Examples
    --------
    >>> covariance_rank([[1.0, 1.0], [1.0, 1.0]])
    1
    """
    matrix = np.asarray(cov, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(matrix)
    largest = float(np.abs(eigenvalues).max(initial=0.0))
    if largest == 0.0:
        return 0
    return int(np.sum(eigenvalues > matrix.shape[0] * np.finfo(np.float64).eps * largest))


def rank_limit(n_universes: int, n_bin: int, center: str) -> int:
    """Largest rank a covariance from ``n_universes`` can have: N (N − 1 about the mean), ≤ n_bin.

    A covariance whose rank reaches this limit below ``n_bin`` is limited by the universes, not
    by the physics: more universes would add directions it does not yet have.
    """
    return max(0, min(n_universes if center == "cv" else n_universes - 1, n_bin))


@dataclass(frozen=True, kw_only=True)
class Chi2MCError:
    """Monte-Carlo error of a chi-square from the finite universes (delete-one jackknife).

    Attributes
    ----------
    error : float
        Root-mean-square error ``√(σ²_J + b_J²)``: jackknife variance and squared bias.
    bias : float
        ``Σ_s (N_s − 1)(χ̄²₍ᵤ₎ − χ̂²)``: how much the finite universes shift the chi-square
        (positive when too few universes leave directions of the covariance unfilled).
    """

    error: float
    bias: float


def _deviation_sets(
    measured: FloatArray,
    predicted: FloatArray,
    rows: np.ndarray,
    center: str,
    include_correlation: bool,
) -> list[FloatArray]:
    """The deviation arrays whose outer products sum to the systematic's difference covariance."""
    if include_correlation:
        difference = measured - predicted
        sets = [difference[rows]]
        central = [difference[0]]
    else:
        sets = [measured[rows], predicted[rows]]
        central = [measured[0], predicted[0]]
    return [
        s - (s.mean(axis=0) if center == "mean" else c) for s, c in zip(sets, central, strict=True)
    ]


def _stratum(
    delta: FloatArray, total: FloatArray, deviations: list[FloatArray], center: str, k: int, kk: int
) -> tuple[float, FloatArray]:
    """(Δᵀ A⁻¹ Δ, the Woodbury corrections t_u) with χ²₍ᵤ₎ = Δᵀ A⁻¹ Δ + t_u."""
    n = deviations[0].shape[0]
    own = sum(d.T @ d for d in deviations) / k
    a = total + (k / kk - 1.0) * own
    cholesky = np.linalg.cholesky(a)
    whitened_delta = np.linalg.solve(cholesky, delta)
    base = float(whitened_delta @ whitened_delta)
    # W_u = [d_u of each set], V₍ᵤ₎ = A − c W_u W_uᵀ
    c = (1.0 if center == "cv" else n / (n - 1)) / kk
    w = np.stack(deviations, axis=2)  # (N, J, r)
    z = np.linalg.solve(cholesky, w.transpose(1, 0, 2).reshape(delta.size, -1))
    z = z.reshape(delta.size, n, -1).transpose(1, 0, 2)  # (N, J, r): L⁻¹ W_u
    b = np.einsum("j,ujr->ur", whitened_delta, z)
    g = np.einsum("ujr,ujs->urs", z, z)
    system = np.eye(g.shape[1]) - c * g
    corrections = c * np.einsum("ur,ur->u", b, np.linalg.solve(system, b[..., None])[..., 0])
    return base, corrections


def _gaussian_variance(solved: FloatArray, deviations: list[FloatArray], k: int, dof: int) -> float:
    """``(2/ν) ‖M‖²_F`` with ``M_kl = Σ_u q_ku q_lu / K``, ``q_k = D_k V⁻¹Δ``: the variance of the
    stratum's share ``(V⁻¹Δ)ᵀ V_s (V⁻¹Δ)`` of the chi-square for Gaussian throws (Isserlis)."""
    q = np.stack([d @ solved for d in deviations], axis=1)  # (N, r)
    m = q.T @ q / k
    return 2.0 * float(np.sum(m**2)) / dof


def chi2_mc_error(
    measured: ArrayLike,
    predicted: ArrayLike,
    covariance: ArrayLike,
    strata: Sequence[np.ndarray],
    *,
    center: Center = "cv",
    normalization: Normalization = "n",
    include_correlation: bool = True,
) -> Chi2MCError:
    """Jackknife MC error of ``χ² = Δᵀ V⁻¹ Δ`` (``Δ`` = measured − predicted of universe 0).

    For each systematic ``s`` with random throws (a stratum: its universe rows) and each of its
    universes ``u``, ``χ²₍ᵤ₎`` is the chi-square with ``V_s`` recomputed without ``u``; then

        σ²_J = Σ_s (N_s − 1)/N_s Σ_u (χ²₍ᵤ₎ − χ̄²_s)²,   b_J = Σ_s (N_s − 1)(χ̄²_s − χ̂²),

    and the error is ``√(σ²_J + b_J²)``.

    Parameters
    ----------
    measured, predicted : array_like, shape (n_universe, n_bin)
        Every universe; row 0 is the central value.
    covariance : array_like, shape (n_bin, n_bin)
        The covariance of ``Δ`` the chi-square uses (``V_mm + V_pp − V_mp − V_pm + V_stat``, or
        without the ``V_mp`` blocks when ``include_correlation=False``), built from these
        universes with the same ``center`` and ``normalization``.
    strata : sequence of integer arrays
        Rows of each systematic with random throws (multisim, added into the total).
    center, normalization
        The covariance convention.
    include_correlation : bool, default True
        The joint chi-square (``V_mp`` kept) or the uncorrelated one.

    Returns
    -------
    Chi2MCError
        The jackknife RMS error, never below the Gaussian delta-method error
        ``√(Σ_s (2/ν_s) ‖M_s‖²)`` (for one deviation set ``M_s = c_s``, the stratum's share of
        the chi-square, known to ``√(2/ν_s)`` like a variance). ``inf`` (and a NaN bias) when a
        stratum has too few universes to delete one, or when its difference covariance has the
        rank its universes allow below ``n_bin``: the chi-square then depends on directions no
        universe reached, which nothing computed from the universes can bound.
    """
    m = np.asarray(measured, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    total = np.asarray(covariance, dtype=np.float64)
    delta = m[0] - p[0]
    solved = np.linalg.solve(total, delta)
    chi2 = float(delta @ solved)
    unknown = Chi2MCError(error=math.inf, bias=math.nan)
    variance = bias = gaussian = 0.0
    for rows in strata:
        n = int(np.asarray(rows).size)
        if n == 0:
            continue
        _check_options(center, normalization, n)
        kk = _denominator(n - 1, normalization)
        if n < 2 or kk < 1 or (center == "mean" and n < 3):
            return unknown
        k = _denominator(n, normalization)
        deviations = _deviation_sets(m, p, np.asarray(rows), center, include_correlation)
        limit = rank_limit(n, delta.size, center)
        if limit < delta.size and covariance_rank(sum(d.T @ d for d in deviations)) >= limit:
            return unknown
        base, corrections = _stratum(delta, total, deviations, center, k, kk)
        variance += (n - 1) / n * float(np.sum((corrections - corrections.mean()) ** 2))
        bias += (n - 1) * (base + float(corrections.mean()) - chi2)
        gaussian += _gaussian_variance(solved, deviations, k, n if center == "cv" else n - 1)
    return Chi2MCError(error=max(math.sqrt(variance + bias**2), math.sqrt(gaussian)), bias=bias)
