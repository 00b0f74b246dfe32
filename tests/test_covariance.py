"""Specifications of farm.analysis.covariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from farm.analysis.covariance import (
    bootstrap_covariance_error,
    correlation,
    diagnostics,
    joint_covariance,
    relative_bootstrap_error,
    universe_covariance,
)

# Three universes, two bins, central value (1, 1), universe mean (2, 2).
# About the CV: deviations (0, 1), (2, −1), (1, 3) → Σ dev devᵀ = [[5, 1], [1, 11]].
# About the mean: deviations (−1, 0), (1, −2), (0, 2) → Σ dev devᵀ = [[2, −2], [−2, 8]].
VALUES = np.array([[1.0, 2.0], [3.0, 0.0], [2.0, 4.0]])
CENTRAL = np.array([1.0, 1.0])


def test_covariance_about_central_value_over_n_by_hand() -> None:
    expected = np.array([[5.0, 1.0], [1.0, 11.0]]) / 3.0
    assert_allclose(universe_covariance(VALUES, central=CENTRAL), expected, rtol=1e-15)


def test_covariance_about_central_value_over_n_minus_one_by_hand() -> None:
    expected = np.array([[5.0, 1.0], [1.0, 11.0]]) / 2.0
    result = universe_covariance(VALUES, central=CENTRAL, normalization="n-1")
    assert_allclose(result, expected, rtol=1e-15)


def test_covariance_about_mean_over_n_by_hand() -> None:
    expected = np.array([[2.0, -2.0], [-2.0, 8.0]]) / 3.0
    assert_allclose(universe_covariance(VALUES, center="mean"), expected, rtol=1e-15)


def test_covariance_about_mean_over_n_minus_one_is_the_sample_covariance() -> None:
    values = np.random.default_rng(1).normal(size=(50, 4))
    result = universe_covariance(values, center="mean", normalization="n-1")
    assert_allclose(result, np.cov(values, rowvar=False), rtol=1e-12)


def test_covariance_about_cv_exceeds_about_mean_by_the_bias_outer_product() -> None:
    # Σ (x − c)(x − c)ᵀ / N = Σ (x − m)(x − m)ᵀ / N + (m − c)(m − c)ᵀ.
    values = np.random.default_rng(2).normal(loc=0.3, size=(40, 3))
    central = np.array([0.0, 0.1, -0.2])
    bias = values.mean(axis=0) - central
    about_mean = universe_covariance(values, center="mean")
    assert_allclose(
        universe_covariance(values, central=central),
        about_mean + np.outer(bias, bias),
        rtol=1e-12,
    )


def test_covariance_is_symmetric_positive_semidefinite() -> None:
    values = np.random.default_rng(3).normal(size=(30, 6)) @ np.random.default_rng(4).normal(
        size=(6, 6)
    )
    cov = universe_covariance(values, central=np.zeros(6))
    assert_allclose(cov, cov.T, rtol=0, atol=0)
    assert np.linalg.eigvalsh(cov).min() >= -1e-12 * np.abs(cov).max()


def test_covariance_rejects_unknown_center_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"center must be one of \('cv', 'mean'\)"):
        universe_covariance(VALUES, central=CENTRAL, center="median")  # type: ignore[arg-type]


def test_covariance_rejects_unknown_normalization_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"normalization must be one of \('n', 'n-1'\)"):
        universe_covariance(VALUES, central=CENTRAL, normalization="N")  # type: ignore[arg-type]


def test_covariance_about_cv_requires_the_central_value() -> None:
    with pytest.raises(ValueError, match="needs the central-value vector"):
        universe_covariance(VALUES)


def test_covariance_rejects_a_central_value_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="central must have shape"):
        universe_covariance(VALUES, central=[1.0, 1.0, 1.0])


def test_correlation_by_hand() -> None:
    # ρ = 2 / (2 · 3) = 1/3.
    assert_allclose(correlation([[4.0, 2.0], [2.0, 9.0]]), [[1.0, 1 / 3], [1 / 3, 1.0]])


def test_correlation_of_a_zero_variance_bin_is_identity_row_without_nan() -> None:
    result = correlation([[4.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    assert_allclose(result, [[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.5, 0.0, 1.0]])


def test_joint_covariance_diagonal_blocks_equal_the_separate_covariances() -> None:
    rng = np.random.default_rng(5)
    measured = rng.normal(size=(25, 3))
    predicted = measured[:, :2] * 0.5 + rng.normal(size=(25, 2))
    central_m, central_p = np.zeros(3), np.full(2, 0.1)
    joint = joint_covariance(
        measured, predicted, central_measured=central_m, central_predicted=central_p
    )
    assert joint.shape == (5, 5)
    assert_allclose(joint[:3, :3], universe_covariance(measured, central=central_m), rtol=1e-14)
    assert_allclose(joint[3:, 3:], universe_covariance(predicted, central=central_p), rtol=1e-14)
    assert_allclose(joint[3:, :3], joint[:3, 3:].T, rtol=0, atol=0)


def test_joint_covariance_cross_block_by_hand() -> None:
    # Measured deviations (0, 2, 1) and predicted deviations (1, −1, 3) about their CVs:
    # V_mp = (0·1 + 2·(−1) + 1·3) / 3 = 1/3.
    joint = joint_covariance(
        VALUES[:, :1],
        VALUES[:, 1:],
        central_measured=[1.0],
        central_predicted=[1.0],
    )
    assert_allclose(joint, np.array([[5.0, 1.0], [1.0, 11.0]]) / 3.0, rtol=1e-15)


def test_joint_covariance_about_mean_matches_numpy_sample_covariance() -> None:
    rng = np.random.default_rng(6)
    measured, predicted = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    joint = joint_covariance(measured, predicted, center="mean", normalization="n-1")
    assert_allclose(joint, np.cov(np.hstack([measured, predicted]), rowvar=False), rtol=1e-12)


def test_joint_covariance_requires_the_same_universes() -> None:
    with pytest.raises(ValueError, match="same universes"):
        joint_covariance(
            np.ones((3, 2)),
            np.ones((4, 2)),
            central_measured=np.ones(2),
            central_predicted=np.ones(2),
        )


def test_diagnostics_of_a_diagonal_matrix() -> None:
    result = diagnostics(np.diag([2.0, 0.5]))
    assert result.is_positive_definite
    assert result.is_positive_semidefinite
    assert result.min_eigenvalue == 0.5
    assert result.max_eigenvalue == 2.0
    assert result.condition_number == 4.0


def test_diagnostics_flags_too_few_universes_as_singular_but_semidefinite() -> None:
    # Two universes span at most two directions of a four-bin space.
    values = np.random.default_rng(7).normal(size=(2, 4))
    result = diagnostics(universe_covariance(values, central=np.zeros(4)))
    assert not result.is_positive_definite
    assert result.is_positive_semidefinite
    assert result.condition_number == math.inf


def test_diagnostics_flags_an_indefinite_matrix() -> None:
    # Eigenvalues of [[1, 2], [2, 1]] are −1 and 3.
    result = diagnostics([[1.0, 2.0], [2.0, 1.0]])
    assert not result.is_positive_definite
    assert not result.is_positive_semidefinite
    assert result.min_eigenvalue == pytest.approx(-1.0, rel=1e-14, abs=0)
    assert result.condition_number == pytest.approx(3.0, rel=1e-14, abs=0)


def test_bootstrap_resamples_universes_with_replacement() -> None:
    # Reproduces the documented procedure explicitly: one integers() draw of
    # (n_bootstrap, N) universe indices from default_rng(seed) (small inputs fit one batch).
    values = np.random.default_rng(8).normal(size=(10, 2))
    draws = np.random.default_rng(42).integers(0, 10, size=(50, 10))
    replicas = np.stack(
        [universe_covariance(values[d], center="mean", normalization="n-1") for d in draws]
    )
    result = bootstrap_covariance_error(
        values, center="mean", normalization="n-1", n_bootstrap=50, seed=42
    )
    assert_allclose(result, replicas.std(axis=0, ddof=1), rtol=1e-10)


def test_bootstrap_error_of_a_gaussian_variance_is_sqrt_two_over_n() -> None:
    # For x ~ N(0, 1) and V = Σ x² / N about the true centre, sd(V) = sqrt(2 / N).
    # Averaged over 20 independent bins so the bootstrap's own noise is a few percent.
    n_universe = 3200
    values = np.random.default_rng(9).normal(size=(n_universe, 20))
    error = bootstrap_covariance_error(values, central=np.zeros(20), n_bootstrap=300, seed=1)
    assert np.diag(error).mean() == pytest.approx(math.sqrt(2.0 / n_universe), rel=0.08, abs=0)


def test_bootstrap_error_shrinks_like_one_over_sqrt_n() -> None:
    rng = np.random.default_rng(10)
    errors = [
        np.diag(
            bootstrap_covariance_error(
                rng.normal(size=(n, 20)), central=np.zeros(20), n_bootstrap=300, seed=2
            )
        ).mean()
        for n in (200, 3200)
    ]
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.12, abs=0)


def test_bootstrap_is_reproducible_from_its_seed() -> None:
    values = np.random.default_rng(11).normal(size=(30, 3))
    first = bootstrap_covariance_error(values, central=np.zeros(3), n_bootstrap=20, seed=5)
    again = bootstrap_covariance_error(values, central=np.zeros(3), n_bootstrap=20, seed=5)
    other = bootstrap_covariance_error(values, central=np.zeros(3), n_bootstrap=20, seed=6)
    assert_allclose(first, again, rtol=0, atol=0)
    assert not np.allclose(first, other, atol=0)


def test_relative_bootstrap_error_is_the_largest_diagonal_ratio() -> None:
    cov = np.diag([4.0, 1.0, 0.0])
    error = np.diag([0.4, 0.2, 0.0])
    assert relative_bootstrap_error(cov, error) == pytest.approx(0.2, rel=1e-15, abs=0)


def test_relative_bootstrap_error_is_infinite_for_an_uncertain_zero_variance() -> None:
    assert relative_bootstrap_error(np.diag([1.0, 0.0]), np.diag([0.1, 0.1])) == math.inf
