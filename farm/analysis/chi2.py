"""Chi-square between a measurement and a prediction that share systematic universes.

When the measured cross section and the prediction are both computed in every flux
universe, the covariance of their difference ``Δ = m − p`` is

    V = V_mm + V_pp − V_mp − V_pm,

with ``V_mp`` the measured-predicted block of the joint covariance
(:func:`farm.analysis.covariance.joint_covariance`). Dropping ``V_mp`` (treating the two as
independent) under-estimates the chi-square when the flux moves them in the same direction
(``V_mp > 0``) and over-estimates it when it moves them in opposite directions (docs/physics.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Chi2Result",
    "chi2",
    "chi2_joint",
    "chi2_uncorrelated",
    "difference_covariance",
    "pvalue",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Chi2Result:
    """A chi-square with its degrees of freedom and p-value ``P(χ²_dof ≥ chi2)``."""

    chi2: float
    dof: int
    pvalue: float


def chi2(delta: ArrayLike, cov: ArrayLike) -> float | FloatArray:
    """``χ² = Δᵀ V⁻¹ Δ``, via the Cholesky factor ``V = L Lᵀ`` (no explicit inverse).

    ``χ² = ‖L⁻¹ Δ‖²``. Batched: ``delta`` (..., n) and ``cov`` (..., n, n) broadcast over the
    leading axes; a single ``delta`` gives a float.

    Raises
    ------
    ValueError
        If ``cov`` is not positive definite (singular: e.g. built from fewer universes than
        bins, or a bin without uncertainty).

    Examples
    --------
    >>> chi2([2.0], [[4.0]])
    1.0
    """
    difference = np.asarray(delta, dtype=np.float64)
    matrix = np.asarray(cov, dtype=np.float64)
    n_bin = difference.shape[-1] if difference.ndim else 0
    if difference.ndim < 1 or matrix.ndim < 2 or matrix.shape[-2:] != (n_bin, n_bin):
        msg = (
            "delta must have shape (..., n_bin) and cov (..., n_bin, n_bin); "
            f"got {difference.shape} and {matrix.shape}"
        )
        raise ValueError(msg)
    try:
        cholesky = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        msg = (
            "covariance is singular or not positive definite, so chi-square is undefined: "
            "add the statistical covariance (stat_cov=), and check that there are more "
            "universes than bins and no bin without uncertainty "
            "(farm.analysis.covariance.diagnostics tells which)"
        )
        raise ValueError(msg) from None
    cholesky, column = np.broadcast_arrays(cholesky, difference[..., np.newaxis])
    whitened = np.linalg.solve(cholesky, column)[..., 0]
    value = np.einsum("...i,...i->...", whitened, whitened)
    return float(value) if value.ndim == 0 else value


def pvalue(chi2: ArrayLike, dof: int) -> float | FloatArray:
    """Probability of a chi-square at least this large: ``scipy.stats.chi2.sf(chi2, dof)``.

    Computed as scipy.stats computes it, the regularised upper incomplete gamma function
    ``scipy.special.chdtrc(dof, chi2)`` (1 below zero), with the same bits: importing
    scipy.stats would add about a second to every run for this one call.

    Examples
    --------
    >>> round(pvalue(3.84145882, 1), 6)
    0.05
    """
    from scipy.special import chdtrc

    x = np.asarray(chi2, dtype=np.float64)
    dof_ok = np.asarray(dof) > 0
    result = np.where(dof_ok, np.where(x < 0, 1.0, chdtrc(dof, x)), np.nan)
    return float(result) if np.ndim(result) == 0 else np.asarray(result, dtype=np.float64)


def difference_covariance(
    joint_cov: ArrayLike,
    n_measured: int,
    *,
    include_correlation: bool = True,
    stat_cov: ArrayLike | None = None,
) -> FloatArray:
    """Covariance of ``Δ = measured − predicted`` from the joint (measured, predicted) one.

        V = V_mm + V_pp − V_mp − V_pm   (include_correlation=True)
        V = V_mm + V_pp                 (include_correlation=False)

    with ``stat_cov`` (measurement statistics) added to ``V_mm``.

    Parameters
    ----------
    joint_cov : array_like, shape (2 n, 2 n)
        Blocks ``[[V_mm, V_mp], [V_pm, V_pp]]``.
    n_measured : int
        ``n``, the number of measured (and predicted) bins.
    include_correlation : bool, default True
    stat_cov : array_like, shape (n, n), optional
    """
    matrix = np.asarray(joint_cov, dtype=np.float64)
    n = n_measured
    if matrix.shape != (2 * n, 2 * n):
        msg = (
            f"joint_cov must have shape (2n, 2n) = ({2 * n}, {2 * n}) for {n} measured and "
            f"{n} predicted bins; got {matrix.shape}"
        )
        raise ValueError(msg)
    measured_block = matrix[:n, :n]
    predicted_block = matrix[n:, n:]
    result = measured_block + predicted_block
    if include_correlation:
        result = result - matrix[:n, n:] - matrix[n:, :n]
    if stat_cov is not None:
        stat = np.asarray(stat_cov, dtype=np.float64)
        if stat.shape != (n, n):
            msg = f"stat_cov must have shape ({n}, {n}); got {stat.shape}"
            raise ValueError(msg)
        result = result + stat
    return result


def _chi2_result(
    measured_cv: ArrayLike,
    predicted_cv: ArrayLike,
    joint_cov: ArrayLike,
    *,
    stat_cov: ArrayLike | None,
    include_correlation: bool,
) -> Chi2Result:
    measured = np.atleast_1d(np.asarray(measured_cv, dtype=np.float64))
    predicted = np.atleast_1d(np.asarray(predicted_cv, dtype=np.float64))
    if measured.ndim != 1 or measured.shape != predicted.shape:
        msg = (
            "measured_cv and predicted_cv must be 1-D vectors of equal length; got "
            f"{measured.shape} and {predicted.shape}"
        )
        raise ValueError(msg)
    cov = difference_covariance(
        joint_cov,
        measured.size,
        include_correlation=include_correlation,
        stat_cov=stat_cov,
    )
    value = float(chi2(measured - predicted, cov))
    dof = measured.size
    return Chi2Result(chi2=value, dof=dof, pvalue=float(pvalue(value, dof)))


def chi2_joint(
    measured_cv: ArrayLike,
    predicted_cv: ArrayLike,
    joint_cov: ArrayLike,
    *,
    stat_cov: ArrayLike | None = None,
) -> Chi2Result:
    """Chi-square of ``Δ = measured − predicted`` with the shared-universe correlation.

    ``χ² = Δᵀ (V_mm + V_pp − V_mp − V_pm + V_stat)⁻¹ Δ``, ``dof = n_bin``; the covariance
    blocks come from the joint covariance of (measured, predicted) over the same universes.

    Parameters
    ----------
    measured_cv, predicted_cv : array_like, shape (n_bin,)
        Central values of the measurement and of the prediction.
    joint_cov : array_like, shape (2 n_bin, 2 n_bin)
        From :func:`farm.analysis.covariance.joint_covariance`.
    stat_cov : array_like, shape (n_bin, n_bin), optional
        Statistical covariance of the measurement, added to ``V_mm``.

    Examples
    --------
    >>> round(chi2_joint([3.0], [1.0], [[2.0, 1.0], [1.0, 2.0]]).chi2, 12)
    2.0
    """
    return _chi2_result(
        measured_cv, predicted_cv, joint_cov, stat_cov=stat_cov, include_correlation=True
    )


def chi2_uncorrelated(
    measured_cv: ArrayLike,
    predicted_cv: ArrayLike,
    joint_cov: ArrayLike,
    *,
    stat_cov: ArrayLike | None = None,
) -> Chi2Result:
    """Chi-square with the measured-predicted correlation ignored, ``V = V_mm + V_pp (+ V_stat)``.

    Provided to show what ignoring the shared flux does; prefer :func:`chi2_joint`.

    Examples
    --------
    >>> chi2_uncorrelated([3.0], [1.0], [[2.0, 1.0], [1.0, 2.0]]).chi2
    1.0
    """
    return _chi2_result(
        measured_cv, predicted_cv, joint_cov, stat_cov=stat_cov, include_correlation=False
    )
