"""Specifications of farm.analysis.chi2."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose

from farm.analysis.chi2 import (
    Chi2Result,
    chi2,
    chi2_joint,
    chi2_uncorrelated,
    difference_covariance,
    pvalue,
)
from farm.analysis.covariance import joint_covariance


def test_chi2_one_bin_is_delta_squared_over_variance() -> None:
    assert chi2([3.0], [[2.0]]) == pytest.approx(4.5, rel=1e-15, abs=0)


def test_chi2_two_bins_against_a_hand_inverted_matrix() -> None:
    # V = [[2, 1], [1, 3]], V⁻¹ = [[3, −1], [−1, 2]] / 5, Δ = (1, 2): χ² = 7/5.
    assert chi2([1.0, 2.0], [[2.0, 1.0], [1.0, 3.0]]) == pytest.approx(1.4, rel=1e-14, abs=0)


def test_chi2_is_batched_over_leading_axes() -> None:
    cov = np.array([[2.0, 1.0], [1.0, 3.0]])
    deltas = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    expected = [d @ np.linalg.solve(cov, d) for d in deltas]
    assert_allclose(chi2(deltas, cov), expected, rtol=1e-14)


def test_chi2_of_a_singular_covariance_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"add the statistical covariance \(stat_cov=\)"):
        chi2([1.0, 2.0], [[1.0, 1.0], [1.0, 1.0]])


def test_pvalue_at_the_tabulated_95_percent_points() -> None:
    # Upper 5% points of the χ² distribution for 1 and 10 dof (standard χ² tables: 3.841, 18.307).
    assert pvalue(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-12, abs=0)
    assert pvalue(18.307038053275146, 10) == pytest.approx(0.05, rel=1e-12, abs=0)


def test_pvalue_has_the_bits_of_scipy_stats_chi2_sf_without_importing_it() -> None:
    # the p-values of every published result: the same function scipy.stats calls, edges included
    import scipy.stats

    x = np.concatenate([np.linspace(-2.0, 300.0, 20_001), [0.0, -0.0, np.inf, np.nan, 5e-324]])
    for dof in (0, 1, 2, 7, 40, 1000):
        expected = scipy.stats.chi2.sf(x, dof)
        np.testing.assert_array_equal(pvalue(x, dof), expected)
        scalar = pvalue(float(x[1234]), dof)
        assert isinstance(scalar, float)
        np.testing.assert_array_equal(scalar, expected[1234])


def test_chi2_result_is_frozen() -> None:
    result = Chi2Result(chi2=1.0, dof=1, pvalue=0.3173105078629141)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.chi2 = 2.0  # type: ignore[misc]


def test_difference_covariance_subtracts_both_cross_blocks() -> None:
    v_mm = np.array([[1.0, 0.5], [0.5, 1.0]])
    v_pp = np.array([[1.0, 0.0], [0.0, 1.5]])
    v_mp = np.array([[0.5, 0.2], [0.0, 0.25]])
    joint = np.block([[v_mm, v_mp], [v_mp.T, v_pp]])
    expected = np.array([[1.0, 0.3], [0.3, 2.0]])
    assert_allclose(difference_covariance(joint, 2), expected, rtol=1e-15)
    assert_allclose(
        difference_covariance(joint, 2, include_correlation=False), v_mm + v_pp, rtol=1e-15
    )


def test_chi2_joint_two_bins_with_stat_cov_by_hand() -> None:
    # V = V_mm + V_pp − V_mp − V_pm + V_stat = [[1.5, 0.3], [0.3, 3]], det = 4.41;
    # Δ = (1, 2): V⁻¹Δ = (2.4, 2.7) / 4.41, χ² = 7.8 / 4.41 = 260/147.
    v_mm = np.array([[1.0, 0.5], [0.5, 1.0]])
    v_pp = np.array([[1.0, 0.0], [0.0, 1.5]])
    v_mp = np.array([[0.5, 0.2], [0.0, 0.25]])
    joint = np.block([[v_mm, v_mp], [v_mp.T, v_pp]])
    result = chi2_joint([5.0, 7.0], [4.0, 5.0], joint, stat_cov=np.diag([0.5, 1.0]))
    assert result.chi2 == pytest.approx(260.0 / 147.0, rel=1e-14, abs=0)
    assert result.dof == 2
    assert result.pvalue == pytest.approx(
        np.exp(-130.0 / 147.0), rel=1e-12, abs=0
    )  # sf of χ²₂ = e^(−χ²/2)


def test_chi2_uncorrelated_one_bin_adds_variances_in_quadrature() -> None:
    joint = np.array([[2.0, 1.5], [1.5, 3.0]])
    result = chi2_uncorrelated([4.0], [1.0], joint, stat_cov=[[1.0]])
    assert result.chi2 == pytest.approx(9.0 / 6.0, rel=1e-15, abs=0)
    assert result.dof == 1


def test_chi2_joint_rejects_a_joint_covariance_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match=r"joint_cov must have shape \(2n, 2n\)"):
        chi2_joint([1.0, 2.0], [1.0, 2.0], np.eye(3))


# --- the two cases of docs/guide-analysts.md §3, as pure statistics ------------------------------------


def _flux_ensemble(measured_slope: float, predicted_slope: float) -> tuple[np.ndarray, ...]:
    """One bin; each universe shifts the flux by f_u and both quantities respond linearly.

    Independent extra scatter keeps |ρ| < 1 so both covariances are invertible.
    """
    rng = np.random.default_rng(2024)
    flux_pull = rng.normal(size=1000)
    measured_cv, predicted_cv = np.array([10.0]), np.array([7.0])
    measured = measured_cv + measured_slope * flux_pull + rng.normal(0.0, 0.5, size=1000)
    predicted = predicted_cv + predicted_slope * flux_pull + rng.normal(0.0, 0.4, size=1000)
    return measured_cv, predicted_cv, measured[:, np.newaxis], predicted[:, np.newaxis]


def _closed_form(
    measured_cv: np.ndarray,
    predicted_cv: np.ndarray,
    measured: np.ndarray,
    predicted: np.ndarray,
) -> tuple[float, float, float]:
    """(χ²_joint, χ²_uncorrelated, ρ) from Δ² / (σ_m² + σ_p² − 2ρ σ_m σ_p), sums written out."""
    dev_m = measured[:, 0] - measured_cv[0]
    dev_p = predicted[:, 0] - predicted_cv[0]
    sigma_m = np.sqrt(np.sum(dev_m**2) / dev_m.size)
    sigma_p = np.sqrt(np.sum(dev_p**2) / dev_p.size)
    rho = np.sum(dev_m * dev_p) / dev_m.size / (sigma_m * sigma_p)
    delta_sq = (measured_cv[0] - predicted_cv[0]) ** 2
    joint = delta_sq / (sigma_m**2 + sigma_p**2 - 2.0 * rho * sigma_m * sigma_p)
    uncorrelated = delta_sq / (sigma_m**2 + sigma_p**2)
    return float(joint), float(uncorrelated), float(rho)


def test_same_direction_flux_response_ignoring_correlation_underestimates_chi2() -> None:
    # docs/guide-analysts.md §3, σ ∝ E with B ∝ 1/E: closing the gap needs opposite flux pulls for the
    # measurement and the prediction, so ρ > 0 and the joint variance is the smaller one.
    measured_cv, predicted_cv, measured, predicted = _flux_ensemble(2.0, 1.5)
    joint = joint_covariance(
        measured, predicted, central_measured=measured_cv, central_predicted=predicted_cv
    )
    expected_joint, expected_uncorrelated, rho = _closed_form(
        measured_cv, predicted_cv, measured, predicted
    )
    with_correlation = chi2_joint(measured_cv, predicted_cv, joint)
    without_correlation = chi2_uncorrelated(measured_cv, predicted_cv, joint)
    assert rho > 0.8
    assert with_correlation.chi2 == pytest.approx(expected_joint, rel=1e-12, abs=0)
    assert without_correlation.chi2 == pytest.approx(expected_uncorrelated, rel=1e-12, abs=0)
    assert without_correlation.chi2 < with_correlation.chi2


def test_opposite_direction_flux_response_ignoring_correlation_overestimates_chi2() -> None:
    # docs/guide-analysts.md §3, σ ∝ E with B ∝ E: one flux pull moves both towards each other, so ρ < 0
    # and the uncertainties add linearly rather than in quadrature.
    measured_cv, predicted_cv, measured, predicted = _flux_ensemble(2.0, -1.5)
    joint = joint_covariance(
        measured, predicted, central_measured=measured_cv, central_predicted=predicted_cv
    )
    expected_joint, expected_uncorrelated, rho = _closed_form(
        measured_cv, predicted_cv, measured, predicted
    )
    with_correlation = chi2_joint(measured_cv, predicted_cv, joint)
    without_correlation = chi2_uncorrelated(measured_cv, predicted_cv, joint)
    assert rho < -0.8
    assert with_correlation.chi2 == pytest.approx(expected_joint, rel=1e-12, abs=0)
    assert without_correlation.chi2 == pytest.approx(expected_uncorrelated, rel=1e-12, abs=0)
    assert without_correlation.chi2 > with_correlation.chi2
