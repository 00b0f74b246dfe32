"""Covariance matrices from systematic universes, and checks of their quality.

A universe ensemble is an array ``values[universe, bin]`` of the varied universes only
(universe 0, the central value, is passed separately as ``central``). The default convention
is MicroBooNE's: deviations about the central value, normalised by ``1/N``

    V_ab = (1/N) Σ_u (x_ua − c_a)(x_ub − c_b);

deviations about the sample mean and ``1/(N − 1)`` are options, and the caller records the
choice in the dataset attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CENTERS",
    "NORMALIZATIONS",
    "CovarianceDiagnostics",
    "bootstrap_covariance_error",
    "correlation",
    "diagnostics",
    "joint_covariance",
    "relative_bootstrap_error",
    "universe_covariance",
]

FloatArray = NDArray[np.float64]
Center = Literal["cv", "mean"]
Normalization = Literal["n", "n-1"]

CENTERS: tuple[str, ...] = ("cv", "mean")
"""Allowed ``center`` options: about the central value, or about the universe mean."""

NORMALIZATIONS: tuple[str, ...] = ("n", "n-1")
"""Allowed ``normalization`` options: divide by N, or by N − 1."""

_BOOTSTRAP_WORKSPACE_ELEMENTS = 4_000_000
"""Bound on the temporary (replica × bin × universe) array of the bootstrap (≈32 MB)."""


def _as_universe_values(values: ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 1:
        msg = f"values must have shape (n_universe >= 1, n_bin); got shape {array.shape}"
        raise ValueError(msg)
    return array


def _check_options(center: str, normalization: str, n_universe: int) -> None:
    if center not in CENTERS:
        msg = f"center must be one of {CENTERS}; got {center!r}"
        raise ValueError(msg)
    if normalization not in NORMALIZATIONS:
        msg = f"normalization must be one of {NORMALIZATIONS}; got {normalization!r}"
        raise ValueError(msg)
    if normalization == "n-1" and n_universe < 2:
        msg = "normalization 'n-1' needs at least 2 universes; use 'n' or throw more universes"
        raise ValueError(msg)


def _reference(values: FloatArray, central: ArrayLike | None, center: str) -> FloatArray:
    """The vector deviations are taken about: the central value or the sample mean."""
    if center == "mean":
        return values.mean(axis=0)
    if central is None:
        msg = "center='cv' needs the central-value vector: pass central=, or use center='mean'"
        raise ValueError(msg)
    reference = np.asarray(central, dtype=np.float64)
    if reference.shape != values.shape[1:]:
        msg = (
            f"central must have shape ({values.shape[1]},) like one universe; got {reference.shape}"
        )
        raise ValueError(msg)
    return reference


def _denominator(n_universe: int, normalization: str) -> int:
    return n_universe if normalization == "n" else n_universe - 1


def universe_covariance(
    values: ArrayLike,
    *,
    central: ArrayLike | None = None,
    center: Center = "cv",
    normalization: Normalization = "n",
) -> FloatArray:
    """Covariance of a binned quantity over systematic universes.

        V_ab = 1/K · Σ_u (x_ua − r_a)(x_ub − r_b)

    with ``r`` the central value (``center="cv"``) or the universe mean (``"mean"``), and
    ``K = N`` (``normalization="n"``) or ``N − 1`` (``"n-1"``). The default (about the
    central value, ``1/N``) is the MicroBooNE convention for multisim universes.

    Parameters
    ----------
    values : array_like, shape (n_universe, n_bin)
        The varied universes (universe 0, the central value, excluded).
    central : array_like, shape (n_bin,), optional
        Central-value vector; required for ``center="cv"``, ignored for ``"mean"``.
    center : {"cv", "mean"}
    normalization : {"n", "n-1"}

    Returns
    -------
    numpy.ndarray, shape (n_bin, n_bin)

    Examples
    --------
    >>> universe_covariance([[1.0], [3.0]], central=[1.0])
    array([[2.]])
    """
    array = _as_universe_values(values)
    _check_options(center, normalization, array.shape[0])
    deviations = array - _reference(array, central, center)
    return deviations.T @ deviations / _denominator(array.shape[0], normalization)


def correlation(cov: ArrayLike) -> FloatArray:
    """Correlation matrix ``ρ_ab = V_ab / sqrt(V_aa V_bb)``, NaN-free.

    A bin with zero (or non-positive) variance has no defined correlation; it gets
    ``ρ_aa = 1`` on the diagonal and ``ρ_ab = 0`` against every other bin.

    Examples
    --------
    >>> correlation([[4.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    array([[1. , 0.5, 0. ],
           [0.5, 1. , 0. ],
           [0. , 0. , 1. ]])
    """
    matrix = np.asarray(cov, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        msg = f"cov must be a square (n_bin, n_bin) matrix; got shape {matrix.shape}"
        raise ValueError(msg)
    variance = np.diagonal(matrix)
    positive = variance > 0
    sigma = np.sqrt(np.where(positive, variance, 1.0))
    denominator = np.outer(sigma, sigma)
    defined = np.outer(positive, positive)
    result = np.divide(matrix, denominator, out=np.zeros_like(matrix), where=defined)
    np.fill_diagonal(result, 1.0)
    return result


def joint_covariance(
    measured: ArrayLike,
    predicted: ArrayLike,
    *,
    central_measured: ArrayLike | None = None,
    central_predicted: ArrayLike | None = None,
    center: Center = "cv",
    normalization: Normalization = "n",
) -> FloatArray:
    """Covariance of the concatenated vector ``(measured, predicted)`` over shared universes.

    Universe ``u`` of ``measured`` and of ``predicted`` must come from the same systematic
    throw (e.g. the same flux universe): the off-diagonal blocks are then the
    measured-predicted covariance that a chi-square must use (docs/guide-analysts.md §3).

    Parameters
    ----------
    measured : array_like, shape (n_universe, n_measured)
    predicted : array_like, shape (n_universe, n_predicted)
    central_measured, central_predicted : array_like, optional
        Central values; required for ``center="cv"``.
    center : {"cv", "mean"}
    normalization : {"n", "n-1"}

    Returns
    -------
    numpy.ndarray, shape (n_measured + n_predicted, n_measured + n_predicted)
        Blocks ``[[V_mm, V_mp], [V_pm, V_pp]]``.
    """
    measured_values = _as_universe_values(measured)
    predicted_values = _as_universe_values(predicted)
    if measured_values.shape[0] != predicted_values.shape[0]:
        msg = (
            "measured and predicted must hold the same universes: got "
            f"{measured_values.shape[0]} and {predicted_values.shape[0]} universes"
        )
        raise ValueError(msg)
    if center == "cv":
        if central_measured is None or central_predicted is None:
            msg = "center='cv' needs central_measured= and central_predicted=, or use center='mean'"
            raise ValueError(msg)
        central = np.concatenate(
            [
                _reference(measured_values, central_measured, center),
                _reference(predicted_values, central_predicted, center),
            ]
        )
    else:
        central = None
    return universe_covariance(
        np.concatenate([measured_values, predicted_values], axis=1),
        central=central,
        center=center,
        normalization=normalization,
    )


@dataclass(frozen=True, kw_only=True)
class CovarianceDiagnostics:
    """Numerical health of a covariance matrix.

    Attributes
    ----------
    is_positive_definite : bool
        A Cholesky factorisation succeeds (the matrix can be inverted in a chi-square).
    is_positive_semidefinite : bool
        Every eigenvalue is ``≥ −tolerance · max |eigenvalue|``.
    min_eigenvalue : float
    max_eigenvalue : float
    condition_number : float
        ``max |λ| / min |λ|``; ``inf`` when the matrix is singular (smallest ``|λ|`` at most
        ``n · machine-epsilon · max |λ|``).
    rank : int
        Eigenvalues above ``n · machine-epsilon · max |λ|``. Positive definiteness of a total
        covariance says nothing about the universes: the statistical covariance makes it
        definite even when the systematics, from N universes, have rank ≤ N below ``n``.
    """

    is_positive_definite: bool
    is_positive_semidefinite: bool
    min_eigenvalue: float
    max_eigenvalue: float
    condition_number: float
    rank: int = 0


def diagnostics(cov: ArrayLike, *, tolerance: float = 1e-10) -> CovarianceDiagnostics:
    """Positive-(semi)definiteness, eigenvalue range and condition number of ``cov``.

    A covariance built from ``N`` universes has rank at most ``N`` (``N − 1`` about the
    mean), so ``n_bin > N`` gives a singular matrix: add the statistical covariance or throw
    more universes before inverting it.

    Parameters
    ----------
    cov : array_like, shape (n_bin, n_bin)
        Symmetric matrix.
    tolerance : float, default 1e-10
        Relative tolerance for the semidefinite test.

    Examples
    --------
    >>> diagnostics([[2.0, 0.0], [0.0, 0.5]]).condition_number
    4.0
    """
    matrix = np.asarray(cov, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        msg = f"cov must be a non-empty square (n_bin, n_bin) matrix; got shape {matrix.shape}"
        raise ValueError(msg)
    try:
        np.linalg.cholesky(matrix)
        positive_definite = True
    except np.linalg.LinAlgError:
        positive_definite = False
    eigenvalues = np.linalg.eigvalsh(matrix)
    magnitudes = np.abs(eigenvalues)
    largest = float(magnitudes.max())
    smallest = float(magnitudes.min())
    # Below n·eps·|λ|max an eigenvalue is rounding noise: the matrix is numerically singular.
    cut = matrix.shape[0] * np.finfo(np.float64).eps * largest
    singular = smallest <= cut
    return CovarianceDiagnostics(
        is_positive_definite=positive_definite,
        is_positive_semidefinite=bool(eigenvalues.min() >= -tolerance * largest),
        min_eigenvalue=float(eigenvalues.min()),
        max_eigenvalue=float(eigenvalues.max()),
        condition_number=float("inf") if singular else largest / smallest,
        rank=int(np.sum(eigenvalues > cut)) if largest > 0 else 0,
    )


def bootstrap_covariance_error(
    values: ArrayLike,
    *,
    central: ArrayLike | None = None,
    center: Center = "cv",
    normalization: Normalization = "n",
    n_bootstrap: int = 200,
    seed: int = 0,
) -> FloatArray:
    """Standard error of each covariance element from resampling universes with replacement.

    Each replica draws ``N`` universes with replacement (``numpy.random.Generator`` seeded
    with ``seed``), recomputes :func:`universe_covariance` with the same options (for
    ``center="mean"`` the mean of the replica), and the error is the standard deviation of
    the replicas (``ddof=1``). It falls like ``1/sqrt(N)``, but it is biased low at small N
    (resampling N universes cannot show more spread than they have: at N = 2 it gives ≈ 0.45 of
    a variance where the truth for Gaussian throws is 1). To judge whether enough universes were
    thrown use :func:`farm.analysis.mc_error.covariance_mc_error`, exact for Gaussian throws at
    any N.

    Parameters
    ----------
    values : array_like, shape (n_universe, n_bin)
    central, center, normalization
        As for :func:`universe_covariance`.
    n_bootstrap : int, default 200
        Number of replicas, at least 2.
    seed : int, default 0

    Returns
    -------
    numpy.ndarray, shape (n_bin, n_bin)
    """
    array = _as_universe_values(values)
    n_universe, n_bin = array.shape
    _check_options(center, normalization, n_universe)
    if n_bootstrap < 2:
        msg = f"n_bootstrap must be >= 2 to estimate a spread; got {n_bootstrap}"
        raise ValueError(msg)
    # Deviations about a fixed vector; for center="mean" the replica's own mean m_b is
    # restored with Σ c (x − m_b)(x − m_b)ᵀ = Σ c (x − r)(x − r)ᵀ − N (m_b − r)(m_b − r)ᵀ.
    deviations = array - _reference(array, central, center)
    generator = np.random.default_rng(seed)
    replicas = np.empty((n_bootstrap, n_bin, n_bin))
    batch_size = max(1, _BOOTSTRAP_WORKSPACE_ELEMENTS // (n_bin * n_universe))
    for start in range(0, n_bootstrap, batch_size):
        n_batch = min(batch_size, n_bootstrap - start)
        draws = generator.integers(0, n_universe, size=(n_batch, n_universe))
        offsets = n_universe * np.arange(n_batch)[:, np.newaxis]
        counts = np.bincount((draws + offsets).ravel(), minlength=n_batch * n_universe)
        counts = counts.reshape(n_batch, n_universe).astype(np.float64)
        scatter = (deviations.T[np.newaxis] * counts[:, np.newaxis, :]) @ deviations
        if center == "mean":
            shift = counts @ deviations / n_universe
            scatter -= n_universe * shift[:, :, np.newaxis] * shift[:, np.newaxis, :]
        replicas[start : start + n_batch] = scatter / _denominator(n_universe, normalization)
    return replicas.std(axis=0, ddof=1)


def relative_bootstrap_error(cov: ArrayLike, cov_error: ArrayLike) -> float:
    """Largest relative bootstrap error on the diagonal, ``max_a err_aa / |V_aa|``.

    Diagonal elements with ``V_aa = 0`` and ``err_aa = 0`` count as 0 (an unaffected bin);
    ``V_aa = 0`` with a non-zero error gives ``inf``. A value of ≈0.1 means the variances are
    known to ≈10 %; four times the universes halves it.

    Examples
    --------
    >>> relative_bootstrap_error([[4.0, 0.0], [0.0, 1.0]], [[0.4, 0.0], [0.0, 0.2]])
    0.2
    """
    variance = np.abs(np.diagonal(np.asarray(cov, dtype=np.float64)))
    error = np.diagonal(np.asarray(cov_error, dtype=np.float64))
    if variance.shape != error.shape:
        msg = f"cov and cov_error must have the same shape; got {variance.shape} and {error.shape}"
        raise ValueError(msg)
    ratio = np.divide(error, variance, out=np.where(error == 0, 0.0, np.inf), where=variance > 0)
    return float(ratio.max())
