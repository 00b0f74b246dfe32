"""The data-statistics covariance of the central-value extraction (issue 10 item 5).

Linear extractions — least squares, Wiener-SVD (response, whitening and A_C fixed in the CV
universe), D'Agostini with one truth bin (x = Σ_i (d − b)_i / ε over the bins the response
reaches) — propagate the Poisson variance of the data, V_d = diag(max(d, 0)), exactly: equal to
the propagation written out independently here to 1e-10, and to the limit of many toys. Only
D'Agostini with several truth bins uses seeded toys, ``[analysis] stat_toys`` of them, and
records the Monte-Carlo error of their variances. The dataset says which, and which
statistical covariance every chi-square uses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from farm.analysis import unfold
from farm.analysis.extract import (
    ExtractionSettings,
    is_linear,
    stat_covariance,
    unfold_universes,
)
from farm.config import load_config
from farm.runner import run_inprocess

SCALE = 3.0e38
"""Targets × flux: the counts-to-cross-section scale (cm² per target)."""


def _case(n_reco: int, n_truth: int, seed: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    response = rng.uniform(0.0, 1.0, (n_reco, n_truth)) + 2.0 * np.eye(n_reco, n_truth)
    response *= 0.8 / response.sum(axis=0)  # columns sum to ε = 0.8
    truth = rng.uniform(500.0, 2000.0, n_truth)
    background = rng.uniform(5.0, 50.0, n_reco)
    data = rng.poisson(response @ truth + background).astype(np.float64)
    return {"response": response, "truth": truth, "background": background, "data": data}


def _stat(case: dict[str, np.ndarray], settings: ExtractionSettings):
    return stat_covariance(
        case["data"], case["background"], case["response"], case["truth"], SCALE, settings
    )


@pytest.mark.parametrize(("n_reco", "n_truth"), [(5, 5), (8, 5)])
def test_least_squares_is_the_pseudo_inverse_propagation(n_reco: int, n_truth: int) -> None:
    case = _case(n_reco, n_truth)
    result = _stat(case, ExtractionSettings(method="lsq"))
    inverse = np.linalg.pinv(case["response"]) / SCALE
    expected = inverse @ np.diag(case["data"]) @ inverse.T
    assert result.toys == 0 and result.rel_error == 0.0
    assert_allclose(result.cov, expected, rtol=1e-10, atol=0)
    assert_array_equal(result.cov, result.cov.T)


def test_wiener_svd_is_its_own_transform_propagated() -> None:
    # every bin holds ≥ 1 count, so V_d is the cov_reco the unfolding whitens with, and the
    # covariance unfold_wiener_svd propagates itself (T C Tᵀ) is the exact answer
    case = _case(8, 6)
    assert case["data"].min() >= 1
    result = _stat(case, ExtractionSettings(method="wiener-svd", wiener_order=2))
    wiener = unfold.unfold_wiener_svd(
        case["data"] - case["background"],
        case["response"],
        np.diag(case["data"]),
        signal_model=case["truth"],
        order=2,
    )
    assert_allclose(result.cov, wiener.covariance / SCALE**2, rtol=1e-10, atol=0)


@pytest.mark.parametrize("iterations", [1, 4])
def test_dagostini_with_one_truth_bin_is_the_sum_of_the_data_over_the_efficiency(
    iterations: int,
) -> None:
    case = _case(6, 1)
    case["response"][2, 0] = 0.0  # a reco bin the signal never reaches does not count
    case["response"] *= 0.8 / case["response"].sum()
    settings = ExtractionSettings(method="dagostini", iterations=iterations)
    assert is_linear(settings, 1)
    result = _stat(case, settings)
    reached = case["response"][:, 0] > 0
    expected = case["data"][reached].sum() / 0.8**2 / SCALE**2
    assert result.toys == 0
    assert_allclose(result.cov, [[expected]], rtol=1e-10, atol=0)


def test_an_empty_bin_has_no_poisson_variance() -> None:
    case = _case(5, 5)
    case["data"][1] = 0.0
    result = _stat(case, ExtractionSettings(method="lsq"))
    inverse = np.linalg.pinv(case["response"]) / SCALE
    assert_allclose(result.cov, inverse @ np.diag(case["data"]) @ inverse.T, rtol=1e-10, atol=0)


def test_exact_propagation_is_the_limit_of_many_toys() -> None:
    case = _case(6, 4)
    settings = ExtractionSettings(method="lsq")
    exact = _stat(case, settings).cov
    n = 20_000
    toys = np.random.default_rng(9).poisson(case["data"], size=(n, case["data"].size))
    truth, _ = unfold_universes(
        toys - case["background"],
        np.broadcast_to(case["response"], (n, *case["response"].shape)),
        np.broadcast_to(case["truth"], (n, case["truth"].size)),
        np.diag(case["data"]),
        settings,
    )
    sampled = np.cov(truth / SCALE, rowvar=False)
    # the variances of 20 000 toys are known to √(2/20 000) = 1 %: 5σ
    ratio = np.diag(sampled) / np.diag(exact)
    assert np.all(np.abs(ratio - 1) < 0.05), ratio


def test_dagostini_with_several_truth_bins_uses_seeded_toys_with_their_error() -> None:
    case = _case(8, 5)
    settings = ExtractionSettings(method="dagostini", n_stat_toys=400, stat_seed=3)
    assert not is_linear(settings, 5)
    result = _stat(case, settings)
    again = _stat(case, settings)
    assert result.toys == 400
    assert_array_equal(result.cov, again.cov)  # seeded
    # the MC error of a variance from 400 toys about their mean: √(2/399) and its excess
    assert math.sqrt(2 / 399) <= result.rel_error < 1.5 * math.sqrt(2 / 399)
    assert "400 seeded Poisson toys" in result.describe()


@pytest.fixture(scope="module")
def csi(tmp_path_factory: pytest.TempPathFactory):
    store = tmp_path_factory.mktemp("stat-cov") / "sns-csi.zarr"
    cfg = load_config("sns-csi", **{"generation.events": 20_000, "sample.store": str(store)})
    return run_inprocess(cfg, universes=3, log=lambda _: None)


def test_a_published_one_bin_result_has_the_exact_statistical_covariance(csi) -> None:
    # sns-csi: D'Agostini, one flux-averaged truth bin; everything needed is in the dataset
    data = csi["data_counts"].values
    scale_real = float(csi.attrs["n_targets"]) * float(csi["integrated_flux"].values[0])
    for convention, matrix in (("real", "response"), ("nominal", "smearing_nominal")):
        column = csi[matrix].values[0][:, 0]
        exact = np.maximum(data, 0)[column > 0].sum() / column.sum() ** 2 / scale_real**2
        assert_allclose(csi[f"cov_stat_{convention}"].values, [[exact]], rtol=1e-10, atol=0)
        assert csi.attrs[f"stat_covariance_{convention}"].startswith("exact linear propagation")
    assert csi.attrs["stat_toys"] == 0 and csi.attrs["stat_covariance_rel_error"] == 0.0
    assert "cov_stat_real: exact linear propagation" in csi.attrs["chi2_covariance"]


def test_a_published_multi_bin_dagostini_result_records_its_toys(tmp_path) -> None:
    store = tmp_path / "nuscope.zarr"
    cfg = load_config(
        "nuscope-lar",
        **{"generation.events": 20_000, "sample.store": str(store), "analysis.stat_toys": 300},
    )
    ds = run_inprocess(cfg, universes=3, log=lambda _: None)
    assert ds.attrs["stat_toys"] == 300
    assert ds.attrs["stat_covariance_real"].startswith("300 seeded Poisson toys")
    assert 0.08 < ds.attrs["stat_covariance_rel_error"] < 0.2  # ≈ √(2/299) = 8.2 % and more
    assert "cov_stat_nominal: 300 seeded Poisson toys" in ds.attrs["chi2_covariance"]
