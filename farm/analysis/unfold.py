"""Extraction of truth-level signal counts from reconstructed counts (unfolding).

Three methods, all pure numpy and batched over leading axes (``universe``, ...):

- least squares / matrix inversion (:func:`unfold_least_squares`),
- D'Agostini iterative Bayesian unfolding (:func:`unfold_dagostini`),
- Wiener-SVD unfolding (:func:`unfold_wiener_svd`).

Convention for every function here: ``response[..., i, j]`` (reco bin ``i``, truth bin ``j``)
is the probability that an event from truth bin ``j`` is selected and reconstructed in reco
bin ``i``. Its columns sum to the efficiency ``ε_j ≤ 1`` and the expected signal counts in
reco bins are ``response @ truth_counts``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "SECOND_DERIVATIVE_EPSILON",
    "WienerSVDResult",
    "least_squares_unfolding_matrix",
    "unfold_dagostini",
    "unfold_least_squares",
    "unfold_least_squares_cov",
    "unfold_wiener_svd",
    "wiener_svd_regularisation_matrix",
]

FloatArray = NDArray[np.float64]

SECOND_DERIVATIVE_EPSILON = 1e-6
"""Diagonal shift that makes the second-derivative matrix invertible (Tang et al. 2017,
as in the authors' reference implementation BNLIF/Wiener-SVD-Unfolding)."""


def _as_response(response: ArrayLike) -> FloatArray:
    matrix = np.asarray(response, dtype=np.float64)
    if matrix.ndim < 2:
        msg = f"response must have shape (..., n_reco, n_truth); got shape {matrix.shape}"
        raise ValueError(msg)
    return matrix


def _as_reco_vector(signal_reco: ArrayLike, response: FloatArray) -> FloatArray:
    vector = np.asarray(signal_reco, dtype=np.float64)
    if vector.ndim < 1 or vector.shape[-1] != response.shape[-2]:
        msg = (
            f"signal_reco must have shape (..., n_reco) with n_reco = {response.shape[-2]} "
            f"(rows of response); got shape {vector.shape}"
        )
        raise ValueError(msg)
    return vector


def _matvec(matrix: FloatArray, vector: FloatArray) -> FloatArray:
    """Batched ``matrix @ vector`` with numpy broadcasting of the leading axes."""
    return np.matmul(matrix, vector[..., np.newaxis])[..., 0]


def _safe_reciprocal(values: FloatArray) -> FloatArray:
    """``1 / values`` with 0 where ``values == 0`` (no division warning)."""
    return np.divide(1.0, values, out=np.zeros_like(values), where=values != 0)


def least_squares_unfolding_matrix(response: ArrayLike) -> FloatArray:
    """Unfolding matrix ``U`` of the least-squares method, shape ``(..., n_truth, n_reco)``.

    ``U = R⁻¹`` when the response is square and invertible, else the Moore-Penrose
    pseudo-inverse ``U = R⁺`` (least-squares, minimum-norm solution; via SVD).

    Parameters
    ----------
    response : array_like, shape (..., n_reco, n_truth)
        Response matrix ``R[reco, truth]``.

    Returns
    -------
    numpy.ndarray, shape (..., n_truth, n_reco)

    Examples
    --------
    >>> least_squares_unfolding_matrix([[0.5, 0.0], [0.0, 0.25]])
    array([[2., 0.],
           [0., 4.]])
    """
    matrix = _as_response(response)
    if matrix.shape[-1] == matrix.shape[-2]:
        try:
            return np.linalg.inv(matrix)
        except np.linalg.LinAlgError:
            pass  # singular in at least one universe: fall back to the pseudo-inverse
    return np.linalg.pinv(matrix)


def unfold_least_squares(signal_reco: ArrayLike, response: ArrayLike) -> FloatArray:
    """Truth counts ``t`` minimising ``‖d − R t‖²`` (exact inverse when ``R`` is square).

    For a square invertible response this solves ``R t = d`` exactly (LU solve, no explicit
    inverse); otherwise ``t = R⁺ d`` with ``R⁺`` the pseudo-inverse, which is the
    least-squares solution for ``n_reco > n_truth`` and the minimum-norm one when ``R`` is
    rank deficient.

    Parameters
    ----------
    signal_reco : array_like, shape (..., n_reco)
        Background-subtracted reconstructed counts ``d``.
    response : array_like, shape (..., n_reco, n_truth)
        Response matrix ``R[reco, truth]``; leading axes broadcast against ``signal_reco``.

    Returns
    -------
    numpy.ndarray, shape (..., n_truth)

    Examples
    --------
    >>> unfold_least_squares([10.0, 5.0], [[0.5, 0.0], [0.0, 0.25]])
    array([20., 20.])
    """
    matrix = _as_response(response)
    data = _as_reco_vector(signal_reco, matrix)
    if matrix.shape[-1] == matrix.shape[-2]:
        try:
            return np.linalg.solve(matrix, data[..., np.newaxis])[..., 0]
        except np.linalg.LinAlgError:
            pass  # singular in at least one universe: fall back to the pseudo-inverse
    return _matvec(np.linalg.pinv(matrix), data)


def unfold_least_squares_cov(cov_reco: ArrayLike, response: ArrayLike) -> FloatArray:
    """Covariance of :func:`unfold_least_squares` by linear propagation, ``U C Uᵀ``.

    Parameters
    ----------
    cov_reco : array_like, shape (..., n_reco, n_reco)
        Covariance ``C`` of the reconstructed counts.
    response : array_like, shape (..., n_reco, n_truth)
        Response matrix; ``U`` is :func:`least_squares_unfolding_matrix` of it.

    Returns
    -------
    numpy.ndarray, shape (..., n_truth, n_truth)
    """
    matrix = _as_response(response)
    cov = np.asarray(cov_reco, dtype=np.float64)
    n_reco = matrix.shape[-2]
    if cov.ndim < 2 or cov.shape[-2:] != (n_reco, n_reco):
        msg = f"cov_reco must have shape (..., {n_reco}, {n_reco}); got shape {cov.shape}"
        raise ValueError(msg)
    unfolding = least_squares_unfolding_matrix(matrix)
    return unfolding @ cov @ np.swapaxes(unfolding, -1, -2)


def unfold_dagostini(
    signal_reco: ArrayLike,
    response: ArrayLike,
    *,
    prior: ArrayLike | None = None,
    n_iterations: int = 4,
) -> FloatArray:
    """D'Agostini iterative Bayesian unfolding with a fixed number of iterations.

    With efficiency ``ε_j = Σ_i R_ij`` and the current truth estimate ``p``, one iteration is

        P(j|i) = R_ij p_j / Σ_k R_ik p_k,
        n_j    = (1/ε_j) Σ_i P(j|i) d_i,

    and ``p ← n`` for the next one (G. D'Agostini, Nucl. Instrum. Meth. A362 (1995) 487).
    ``P(j|i)`` does not depend on the normalisation of ``p``, so the prior is carried as
    counts rather than renormalised to unit sum; the result is the same.

    Guards, without warnings: a truth bin with ``ε_j = 0`` unfolds to 0; a reco bin whose
    folded expectation ``Σ_k R_ik p_k`` is 0 contributes nothing (the PyUnfold convention).

    Parameters
    ----------
    signal_reco : array_like, shape (..., n_reco)
        Background-subtracted reconstructed counts ``d``.
    response : array_like, shape (..., n_reco, n_truth)
        Response matrix ``R[reco, truth]``; leading axes broadcast against ``signal_reco``.
    prior : array_like, shape (..., n_truth), optional
        Starting truth distribution (e.g. the truth-level MC), any normalisation, non-negative.
        Default: uniform.
    n_iterations : int, default 4
        Number of iterations, at least 1.

    Returns
    -------
    numpy.ndarray, shape (..., n_truth)
        Unfolded truth counts.

    Examples
    --------
    >>> unfold_dagostini([100.0, 150.0], [[0.9, 0.1], [0.1, 0.9]], n_iterations=1)
    array([105., 145.])
    """
    matrix = _as_response(response)
    data = _as_reco_vector(signal_reco, matrix)
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, int | np.integer):
        msg = f"n_iterations must be an integer >= 1; got {n_iterations!r}"
        raise TypeError(msg)
    if n_iterations < 1:
        msg = f"n_iterations must be >= 1; got {n_iterations}"
        raise ValueError(msg)
    n_truth = matrix.shape[-1]
    inverse_efficiency = _safe_reciprocal(matrix.sum(axis=-2))

    if prior is None:
        truth = np.repeat(data.sum(axis=-1, keepdims=True) / n_truth, n_truth, axis=-1)
    else:
        truth = np.asarray(prior, dtype=np.float64)
        if truth.ndim < 1 or truth.shape[-1] != n_truth:
            msg = (
                f"prior must have shape (..., n_truth) with n_truth = {n_truth}; got {truth.shape}"
            )
            raise ValueError(msg)
        if np.any(truth < 0):
            msg = "prior must be non-negative (it is a distribution over truth bins)"
            raise ValueError(msg)

    for _ in range(n_iterations):
        folded = _matvec(matrix, truth)
        data_over_folded = data * _safe_reciprocal(folded)
        back_projected = np.matmul(data_over_folded[..., np.newaxis, :], matrix)[..., 0, :]
        truth = truth * inverse_efficiency * back_projected
    return truth


def wiener_svd_regularisation_matrix(n_bins: int, order: int) -> FloatArray:
    """Derivative matrix ``C`` used as the smoothness regularisation of Wiener-SVD.

    - order 0: identity;
    - order 1: first derivative, ``C_ii = −1``, ``C_i,i+1 = 1`` (upper bidiagonal, invertible);
    - order 2: second derivative, ``C_ii = −2 + ε`` (``−1 + ε`` in the first and last rows),
      ``C_i,i±1 = 1``, with ``ε =`` :data:`SECOND_DERIVATIVE_EPSILON` making it invertible.

    Source: W. Tang et al., JINST 12 (2017) P10002 (arXiv:1705.03568), and the authors'
    implementation (``Matrix_C`` in BNLIF/Wiener-SVD-Unfolding).

    Examples
    --------
    >>> wiener_svd_regularisation_matrix(3, 1)
    array([[-1.,  1.,  0.],
           [ 0., -1.,  1.],
           [ 0.,  0., -1.]])
    """
    if n_bins < 1:
        msg = f"n_bins must be >= 1; got {n_bins}"
        raise ValueError(msg)
    if order == 0:
        return np.eye(n_bins)
    if order == 1:
        return -np.eye(n_bins) + np.eye(n_bins, k=1)
    if order == 2:
        diagonal = np.full(n_bins, -2.0)
        diagonal[[0, -1]] = -1.0
        return (
            np.diag(diagonal + SECOND_DERIVATIVE_EPSILON)
            + np.eye(n_bins, k=1)
            + np.eye(n_bins, k=-1)
        )
    msg = (
        f"order must be 0 (identity), 1 (first derivative) or 2 (second derivative); got {order!r}"
    )
    raise ValueError(msg)


@dataclass(frozen=True, kw_only=True, eq=False)
class WienerSVDResult:
    """Output of :func:`unfold_wiener_svd` (all arrays batched over the leading axes).

    Attributes
    ----------
    unfolded : numpy.ndarray, shape (..., n_truth)
        Unfolded truth counts; equals ``additional_smearing @ truth`` for noiseless input.
    additional_smearing : numpy.ndarray, shape (..., n_truth, n_truth)
        ``A_C``: apply it to any prediction before comparing with ``unfolded``.
    covariance : numpy.ndarray, shape (..., n_truth, n_truth)
        Covariance of ``unfolded`` propagated from ``cov_reco``.
    wiener_filter : numpy.ndarray, shape (..., min(n_reco, n_truth))
        Filter factors ``σ_i² S_i² / (σ_i² S_i² + 1)`` in the SVD basis (1 keeps a mode).
    """

    unfolded: FloatArray
    additional_smearing: FloatArray
    covariance: FloatArray
    wiener_filter: FloatArray


def unfold_wiener_svd(
    signal_reco: ArrayLike,
    response: ArrayLike,
    cov_reco: ArrayLike,
    *,
    signal_model: ArrayLike,
    order: int = 2,
    signal_norm_power: float = 0.0,
) -> WienerSVDResult:
    """Wiener-SVD unfolding (W. Tang et al., JINST 12 (2017) P10002, arXiv:1705.03568).

    With ``Q`` such that ``Qᵀ Q = C⁻¹`` (here ``Q = L⁻¹`` for the Cholesky factor ``C = L Lᵀ``,
    so ``Q d`` has unit covariance), ``C_reg`` the derivative matrix of the given ``order``
    (:func:`wiener_svd_regularisation_matrix`) and ``s`` the signal model:

        Q R C_reg⁻¹ = U Σ Vᵀ,          S = Vᵀ C_reg s,
        W_ii = σ_i² S_i² / (σ_i² S_i² + 1),
        unfolded = C_reg⁻¹ V W Σ⁻¹ Uᵀ Q d,
        A_C      = C_reg⁻¹ V W Vᵀ C_reg,
        cov      = T C Tᵀ  with  T = C_reg⁻¹ V W Σ⁻¹ Uᵀ Q.

    ``W Σ⁻¹`` is evaluated as ``S² σ / (σ² S² + 1)``, finite for ``σ = 0``. With
    ``signal_norm_power = p ≠ 0`` the columns of ``C_reg`` are divided by ``s_j^p`` (the
    ``Norm_type`` option of the authors' implementation; needs ``s > 0``).

    The SVD is the thin one (``k = min(n_reco, n_truth)`` modes). When ``n_reco ≥ n_truth`` and
    ``R`` has full column rank, ``unfolded = A_C @ t`` holds exactly for ``d = R t``.

    Parameters
    ----------
    signal_reco : array_like, shape (..., n_reco)
        Background-subtracted reconstructed counts ``d``.
    response : array_like, shape (..., n_reco, n_truth)
        Response matrix ``R[reco, truth]``.
    cov_reco : array_like, shape (..., n_reco, n_reco)
        Covariance ``C`` of ``d``; must be positive definite.
    signal_model : array_like, shape (..., n_truth)
        Expected truth counts ``s`` that set the Wiener filter.
    order : {0, 1, 2}, default 2
        Derivative order of the regularisation matrix.
    signal_norm_power : float, default 0.0
        Optional normalisation of ``C_reg`` by ``s^p``.

    Returns
    -------
    WienerSVDResult
        Each output carries the broadcast leading axes of the inputs it depends on (e.g.
        ``additional_smearing`` stays unbatched for a shared response, covariance and model).
    """
    matrix = _as_response(response)
    data = _as_reco_vector(signal_reco, matrix)
    n_reco, n_truth = matrix.shape[-2:]
    cov = np.asarray(cov_reco, dtype=np.float64)
    if cov.ndim < 2 or cov.shape[-2:] != (n_reco, n_reco):
        msg = f"cov_reco must have shape (..., {n_reco}, {n_reco}); got shape {cov.shape}"
        raise ValueError(msg)
    signal = np.asarray(signal_model, dtype=np.float64)
    if signal.ndim < 1 or signal.shape[-1] != n_truth:
        msg = f"signal_model must have shape (..., {n_truth}); got shape {signal.shape}"
        raise ValueError(msg)

    try:
        cholesky = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        msg = (
            "cov_reco is not positive definite, so it cannot whiten the data: add the "
            "statistical covariance of the measurement or check for bins with zero uncertainty"
        )
        raise ValueError(msg) from None
    whitening = np.linalg.solve(cholesky, np.eye(n_reco))

    regularisation = wiener_svd_regularisation_matrix(n_truth, order)
    if signal_norm_power != 0.0:
        if np.any(signal <= 0):
            msg = "signal_norm_power != 0 needs a strictly positive signal_model"
            raise ValueError(msg)
        regularisation = regularisation * signal[..., np.newaxis, :] ** (-signal_norm_power)
    regularisation_inverse = np.linalg.inv(regularisation)

    left, singular, right_t = np.linalg.svd(
        whitening @ matrix @ regularisation_inverse, full_matrices=False
    )
    right = np.swapaxes(right_t, -1, -2)
    signal_modes_sq = _matvec(right_t, _matvec(regularisation, signal)) ** 2
    denominator = singular**2 * signal_modes_sq + 1.0
    wiener_filter = singular**2 * signal_modes_sq / denominator
    filter_over_singular = singular * signal_modes_sq / denominator

    transform = (
        regularisation_inverse
        @ right
        @ (filter_over_singular[..., np.newaxis] * (np.swapaxes(left, -1, -2) @ whitening))
    )
    smearing = regularisation_inverse @ (right * wiener_filter[..., np.newaxis, :]) @ right_t
    smearing = smearing @ regularisation
    return WienerSVDResult(
        unfolded=_matvec(transform, data),
        additional_smearing=smearing,
        covariance=transform @ cov @ np.swapaxes(transform, -1, -2),
        wiener_filter=wiener_filter,
    )
