"""Specifications of the unfolding kernels in farm.analysis.unfold."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from farm.analysis.unfold import (
    SECOND_DERIVATIVE_EPSILON,
    least_squares_unfolding_matrix,
    unfold_dagostini,
    unfold_least_squares,
    unfold_least_squares_cov,
    unfold_wiener_svd,
    wiener_svd_regularisation_matrix,
)


def _smearing_response(n_reco: int, n_truth: int, seed: int) -> np.ndarray:
    """A diagonal-dominant response with efficiencies between 0.5 and 0.9."""
    rng = np.random.default_rng(seed)
    migration = rng.uniform(0.0, 0.3, size=(n_reco, n_truth))
    migration[np.arange(min(n_reco, n_truth)), np.arange(min(n_reco, n_truth))] += 2.0
    efficiency = rng.uniform(0.5, 0.9, size=n_truth)
    return migration / migration.sum(axis=0) * efficiency


# --- least squares ----------------------------------------------------------------------


def test_least_squares_inverts_a_square_response_exactly() -> None:
    response = _smearing_response(5, 5, seed=1)
    truth = np.array([100.0, 250.0, 400.0, 150.0, 50.0])
    assert_allclose(unfold_least_squares(response @ truth, response), truth, rtol=1e-12)


def test_least_squares_recovers_truth_from_consistent_overdetermined_data() -> None:
    response = _smearing_response(8, 4, seed=2)
    truth = np.array([10.0, 20.0, 30.0, 40.0])
    assert_allclose(unfold_least_squares(response @ truth, response), truth, rtol=1e-12)


def test_least_squares_solves_the_normal_equations_for_inconsistent_data() -> None:
    response = _smearing_response(7, 3, seed=3)
    data = np.random.default_rng(3).uniform(5.0, 50.0, size=7)
    normal_solution = np.linalg.solve(response.T @ response, response.T @ data)
    assert_allclose(unfold_least_squares(data, response), normal_solution, rtol=1e-10)


def test_least_squares_falls_back_to_minimum_norm_for_a_singular_response() -> None:
    # Two identical columns: truth bins 0 and 1 cannot be told apart.
    response = np.array([[0.4, 0.4, 0.0], [0.1, 0.1, 0.2], [0.0, 0.0, 0.6]])
    data = np.array([8.0, 5.0, 6.0])
    expected = np.linalg.lstsq(response, data, rcond=None)[0]
    result = unfold_least_squares(data, response)
    assert_allclose(result, expected, rtol=1e-12)
    assert_allclose(result[0], result[1], rtol=1e-12)


def test_least_squares_is_batched_over_universes() -> None:
    responses = np.stack([_smearing_response(4, 4, seed=s) for s in range(6)])
    data = np.random.default_rng(4).uniform(10.0, 100.0, size=(6, 4))
    looped = np.stack([np.linalg.solve(r, d) for r, d in zip(responses, data, strict=True)])
    assert_allclose(unfold_least_squares(data, responses), looped, rtol=1e-12)


def test_least_squares_broadcasts_one_response_over_many_universes() -> None:
    response = _smearing_response(6, 4, seed=5)
    data = np.random.default_rng(5).uniform(10.0, 100.0, size=(3, 6))
    looped = np.stack([np.linalg.lstsq(response, d, rcond=None)[0] for d in data])
    assert_allclose(unfold_least_squares(data, response), looped, rtol=1e-10)


def test_least_squares_covariance_of_a_diagonal_response_scales_by_inverse_efficiency_squared() -> (
    None
):
    # t_j = d_j / ε_j, so var(t_j) = var(d_j) / ε_j² and covariances follow.
    response = np.diag([0.5, 0.25])
    cov_reco = np.array([[4.0, 1.0], [1.0, 9.0]])
    expected = np.array([[16.0, 8.0], [8.0, 144.0]])
    assert_allclose(unfold_least_squares_cov(cov_reco, response), expected, rtol=1e-14)


def test_least_squares_covariance_matches_the_spread_of_unfolded_gaussian_throws() -> None:
    response = _smearing_response(5, 3, seed=6)
    cov_reco = np.diag([30.0, 20.0, 25.0, 10.0, 15.0])
    throws = np.random.default_rng(6).multivariate_normal(np.zeros(5), cov_reco, size=200_000)
    unfolded = unfold_least_squares(throws, response)
    sample_cov = unfolded.T @ unfolded / len(unfolded)
    expected = unfold_least_squares_cov(cov_reco, response)
    # Standard error of a Gaussian sample covariance element ≤ sqrt(2 V_ii V_jj / N); allow 4σ.
    sigma = np.sqrt(np.diag(expected))
    tolerance = 4.0 * np.sqrt(2.0 * np.outer(sigma, sigma) ** 2 / len(unfolded))
    assert np.all(np.abs(sample_cov - expected) < tolerance)


def test_least_squares_unfolding_matrix_is_the_pseudo_inverse() -> None:
    response = _smearing_response(6, 4, seed=7)
    unfolding = least_squares_unfolding_matrix(response)
    assert_allclose(unfolding @ response, np.eye(4), atol=1e-12)


def test_least_squares_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="n_reco = 3"):
        unfold_least_squares(np.ones(4), np.eye(3))


# --- D'Agostini -------------------------------------------------------------------------


def _pyunfold_result(
    data: np.ndarray, response: np.ndarray, prior: np.ndarray | None, n_iterations: int
) -> np.ndarray:
    from pyunfold import iterative_unfold

    efficiencies = response.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy/pandas deprecations inside pyunfold 0.5.0
        result = iterative_unfold(
            data=data,
            data_err=np.sqrt(data),
            response=response,
            response_err=0.01 * response,
            efficiencies=efficiencies,
            efficiencies_err=0.01 * efficiencies,
            prior=None if prior is None else prior / prior.sum(),
            # ts_stopping=0 never passes (the KS statistic is >= 0), so exactly max_iter run.
            ts="ks",
            ts_stopping=0.0,
            max_iter=n_iterations,
        )
    assert result["num_iterations"] == n_iterations
    return np.asarray(result["unfolded"])


@pytest.mark.parametrize("n_iterations", [1, 4, 25])
def test_dagostini_matches_pyunfold_with_a_uniform_prior(n_iterations: int) -> None:
    # PyUnfold 0.5.0 (Bourbeau & Hampel, JOSS 3 (2018) 741) implements the same update,
    # starting from sum(data) * prior; only the floating-point order of operations differs.
    response = _smearing_response(6, 4, seed=11)
    data = np.random.default_rng(11).uniform(50.0, 500.0, size=6)
    ours = unfold_dagostini(data, response, n_iterations=n_iterations)
    assert_allclose(ours, _pyunfold_result(data, response, None, n_iterations), rtol=1e-12)


@pytest.mark.parametrize("n_iterations", [1, 4, 25])
def test_dagostini_matches_pyunfold_with_a_truth_mc_prior(n_iterations: int) -> None:
    response = _smearing_response(5, 5, seed=12)
    data = np.random.default_rng(12).uniform(50.0, 500.0, size=5)
    prior_counts = np.array([300.0, 500.0, 400.0, 200.0, 100.0])  # any normalisation
    ours = unfold_dagostini(data, response, prior=prior_counts, n_iterations=n_iterations)
    theirs = _pyunfold_result(data, response, prior_counts, n_iterations)
    assert_allclose(ours, theirs, rtol=1e-12)


def test_dagostini_one_iteration_by_hand() -> None:
    # Uniform prior 125/bin folds to (125, 125); d/folded = (0.8, 1.2);
    # n = 125 · (0.8·0.9 + 1.2·0.1, 0.8·0.1 + 1.2·0.9) = (105, 145).
    result = unfold_dagostini([100.0, 150.0], [[0.9, 0.1], [0.1, 0.9]], n_iterations=1)
    assert_allclose(result, [105.0, 145.0], rtol=1e-14)


def test_dagostini_converges_to_the_truth_for_noiseless_data() -> None:
    response = _smearing_response(4, 4, seed=13)
    truth = np.array([200.0, 400.0, 300.0, 100.0])
    result = unfold_dagostini(response @ truth, response, n_iterations=2000)
    assert_allclose(result, truth, rtol=1e-6)


def test_dagostini_is_batched_over_universes() -> None:
    responses = np.stack([_smearing_response(5, 3, seed=s) for s in range(4)])
    data = np.random.default_rng(14).uniform(50.0, 500.0, size=(4, 5))
    priors = np.random.default_rng(15).uniform(1.0, 2.0, size=(4, 3))
    batched = unfold_dagostini(data, responses, prior=priors, n_iterations=5)
    looped = [
        unfold_dagostini(d, r, prior=p, n_iterations=5)
        for d, r, p in zip(data, responses, priors, strict=True)
    ]
    assert_allclose(batched, np.stack(looped), rtol=1e-14)


def test_dagostini_zero_efficiency_and_empty_reco_bins_give_zero_without_warnings() -> None:
    # Truth bin 2 is never selected; reco bin 2 is unreachable but holds data.
    response = np.array([[0.6, 0.1, 0.0], [0.1, 0.7, 0.0], [0.0, 0.0, 0.0]])
    result = unfold_dagostini([60.0, 80.0, 5.0], response, n_iterations=4)
    assert np.all(np.isfinite(result))
    assert result[2] == 0.0


def test_dagostini_rejects_zero_iterations() -> None:
    with pytest.raises(ValueError, match="n_iterations must be >= 1"):
        unfold_dagostini([1.0], [[1.0]], n_iterations=0)


# --- Wiener-SVD -------------------------------------------------------------------------


def test_second_derivative_regularisation_matches_the_reference_implementation() -> None:
    # Matrix_C(n, 2) of BNLIF/Wiener-SVD-Unfolding: -1+ε at the ends, -2+ε inside, 1 off-diagonal.
    eps = SECOND_DERIVATIVE_EPSILON
    expected = np.array(
        [
            [-1 + eps, 1.0, 0.0, 0.0],
            [1.0, -2 + eps, 1.0, 0.0],
            [0.0, 1.0, -2 + eps, 1.0],
            [0.0, 0.0, 1.0, -1 + eps],
        ]
    )
    assert_allclose(wiener_svd_regularisation_matrix(4, 2), expected, rtol=0, atol=0)


def test_wiener_svd_two_by_two_by_hand() -> None:
    # Diagonal R = diag(0.5, 0.8), σ_d = (2, 4), order 0 (C_reg = I), s = (10, 20), d = (6, 15):
    # Q R = diag(0.25, 0.2); S = s; W = (6.25/7.25, 16/17);
    # unfolded = W d / R = (300/29, 300/17); A_C = diag(W); cov = W² σ_d² / R².
    result = unfold_wiener_svd(
        [6.0, 15.0],
        np.diag([0.5, 0.8]),
        np.diag([4.0, 16.0]),
        signal_model=[10.0, 20.0],
        order=0,
    )
    assert_allclose(result.unfolded, [300.0 / 29.0, 300.0 / 17.0], rtol=1e-14)
    assert_allclose(result.additional_smearing, np.diag([25.0 / 29.0, 16.0 / 17.0]), atol=1e-15)
    expected_cov = np.diag([(25.0 / 29.0) ** 2 * 16.0, (16.0 / 17.0) ** 2 * 25.0])
    assert_allclose(result.covariance, expected_cov, rtol=1e-14, atol=1e-14)
    assert_allclose(np.sort(result.wiener_filter), [25.0 / 29.0, 16.0 / 17.0], rtol=1e-14)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_wiener_svd_unfolded_equals_additional_smearing_times_truth(order: int) -> None:
    # The defining property (Tang et al. 2017): for d = R t, unfolded = A_C t, whatever t.
    response = _smearing_response(8, 6, seed=21)
    signal_model = np.array([500.0, 800.0, 900.0, 700.0, 400.0, 200.0])
    truth = signal_model * np.linspace(0.8, 1.3, 6)
    cov_reco = np.diag(response @ signal_model)
    result = unfold_wiener_svd(
        response @ truth, response, cov_reco, signal_model=signal_model, order=order
    )
    assert_allclose(result.unfolded, result.additional_smearing @ truth, rtol=1e-8)


def test_wiener_svd_gives_additional_smearing_times_model_for_precise_model_data() -> None:
    response = _smearing_response(6, 6, seed=22)
    signal_model = np.array([100.0, 300.0, 500.0, 400.0, 250.0, 100.0])
    cov_reco = 1e-6 * np.diag(response @ signal_model)
    result = unfold_wiener_svd(
        response @ signal_model, response, cov_reco, signal_model=signal_model
    )
    assert_allclose(result.unfolded, result.additional_smearing @ signal_model, rtol=1e-8)
    assert_allclose(result.unfolded, signal_model, rtol=1e-4)


def test_wiener_svd_additional_smearing_tends_to_identity_as_data_get_precise() -> None:
    response = _smearing_response(6, 6, seed=23)
    signal_model = np.array([100.0, 300.0, 500.0, 400.0, 250.0, 100.0])
    stat_cov = np.diag(response @ signal_model)
    distances = [
        np.abs(
            unfold_wiener_svd(
                response @ signal_model, response, scale * stat_cov, signal_model=signal_model
            ).additional_smearing
            - np.eye(6)
        ).max()
        for scale in (1.0, 1e-3, 1e-6, 1e-9)
    ]
    assert all(later < earlier for earlier, later in itertools.pairwise(distances))
    assert distances[-1] < 1e-7


def test_wiener_svd_covariance_is_symmetric_positive_semidefinite() -> None:
    response = _smearing_response(7, 5, seed=24)
    signal_model = np.array([100.0, 300.0, 500.0, 400.0, 250.0])
    cov_reco = np.diag(response @ signal_model) + 20.0
    result = unfold_wiener_svd(
        response @ signal_model, response, cov_reco, signal_model=signal_model
    )
    assert_allclose(result.covariance, result.covariance.T, rtol=1e-10)
    eigenvalues = np.linalg.eigvalsh(result.covariance)
    assert eigenvalues.min() >= -1e-9 * eigenvalues.max()


def test_wiener_svd_is_batched_over_universes_with_a_shared_response() -> None:
    response = _smearing_response(6, 4, seed=25)
    signal_model = np.array([100.0, 300.0, 500.0, 400.0])
    rng = np.random.default_rng(25)
    data = response @ signal_model + rng.normal(0.0, 5.0, size=(5, 6))
    covs = np.stack([np.diag(response @ signal_model * f) for f in (0.5, 1.0, 1.5, 2.0, 2.5)])
    batched = unfold_wiener_svd(data, response, covs, signal_model=signal_model)
    for u in range(5):
        single = unfold_wiener_svd(data[u], response, covs[u], signal_model=signal_model)
        assert_allclose(batched.unfolded[u], single.unfolded, rtol=1e-10)
        assert_allclose(batched.additional_smearing[u], single.additional_smearing, atol=1e-10)
        assert_allclose(batched.covariance[u], single.covariance, rtol=1e-10)


def test_wiener_svd_rejects_a_singular_covariance_and_says_what_to_add() -> None:
    with pytest.raises(ValueError, match="add the statistical covariance"):
        unfold_wiener_svd([1.0, 2.0], np.eye(2), np.diag([1.0, 0.0]), signal_model=[1.0, 2.0])


def test_wiener_svd_rejects_unknown_regularisation_order() -> None:
    with pytest.raises(ValueError, match="order must be 0"):
        unfold_wiener_svd([1.0, 2.0], np.eye(2), np.eye(2), signal_model=[1.0, 2.0], order=3)
