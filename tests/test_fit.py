"""χ²(θ) with the joint covariance, the MINUIT fit and its physics validation (issue 14 item 4).

Results come from real farm runs of the sns-csi example (65 536 events, 10 throws per multisim
systematic; the store is shared with tests/test_compare.py). Validation: χ²(θ) at a model's
parameters is the χ² ``farm run`` stored for it; an Asimov dataset returns its parameters to
1e-6; where the model is linear (and its flux spread does not depend on θ) Δχ² = 1 at ±1 Hesse σ.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from conftest import run_example
from numpy.testing import assert_allclose

from farm import models
from farm.analysis.chi2 import difference_covariance
from farm.analysis.covariances import joint_covariances
from farm.compare import _universe_set
from farm.config import load_config
from farm.fit.minimize import best_fit, wilks_intervals
from farm.fit.params import Parameter, parse_parameter
from farm.fit.problem import FitProblem, read_inputs, stratified_covariance
from farm.fit.run import FitSettings, data_statistic, run_fit, tabulate
from farm.runner import run_inprocess

EVENTS = 65_536
UNIVERSES = 10
SIN2W = parse_parameter("sin2w", models.cevns)


@pytest.fixture(scope="module")
def csi(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    """sns-csi: one flux-averaged total bin, D'Agostini (linear for one bin)."""
    return run_example(tmp_path_factory, "sns-csi", events=EVENTS, universes=UNIVERSES).load()


@pytest.fixture(scope="module")
def csi_enu(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    """sns-csi over the same events, truth in three E_ν bins, least squares."""
    store = tmp_path_factory.getbasetemp() / "compare-stores" / f"sns-csi-{EVENTS}.zarr"
    cfg = load_config(
        "sns-csi",
        **{
            "generation.events": EVENTS,
            "sample.store": str(store),
            "binning.truth": "enu_true",
            "binning.truth_edges": [10.0, 30.5, 40.0, 53.0],
            "analysis.method": "dagostini",
        },
    )
    return run_inprocess(cfg, universes=UNIVERSES, log=lambda _: None).load()


def offset(enu_mev: np.ndarray, flavor: str, *, a: float = 0.0) -> np.ndarray:
    """CEvNS on CsI plus a constant a × 10⁻⁴⁰ cm²: linear in a, and a constant σ has the same
    flux share in every flux universe, so V_syst does not depend on a."""
    return models.cevns(enu_mev, flavor) + a * 1e-40


def problem(
    ds: xr.Dataset, names: tuple[str, ...] = ("sin2w",), convention: str = "real", **fixed: object
) -> FitProblem:
    return FitProblem(
        inputs=read_inputs(ds, convention), model=models.cevns, names=names, fixed=fixed
    )


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_chi2_at_a_models_parameters_is_the_chi2_farm_run_stored(
    csi: xr.Dataset, convention: str
) -> None:
    """farm.models:cevns_csi_tree_helm is attached to sns-csi as tree_level_helm."""
    p = problem(csi, convention=convention, couplings="tree")
    stored = float(csi[f"chi2_{convention}_joint"].sel(model="tree_level_helm"))
    assert p.chi2([0.23857]) == pytest.approx(stored, rel=1e-10, abs=0)


@pytest.mark.parametrize(("center", "normalization"), [("cv", "n"), ("mean", "n-1")])
def test_the_covariance_of_the_difference_is_the_joint_covariance_folded(
    csi_enu: xr.Dataset, center: str, normalization: str
) -> None:
    """Cov(m − p) over the universes = V_mm + V_pp − V_mp − V_pm (farm.analysis.chi2)."""
    p = problem(csi_enu)
    m, pred = p.inputs.measured, p.predicted([0.27])
    universes = _universe_set(csi_enu)
    joint = joint_covariances(m, pred, universes, center=center, normalization=normalization)
    expected = difference_covariance(joint, m.shape[1])
    got = stratified_covariance(
        m - pred, p.inputs.strata, center=center, normalization=normalization
    )
    assert_allclose(got, expected, rtol=1e-10, atol=0)


def test_the_counts_model_reproduces_the_extraction_and_its_statistics(csi: xr.Dataset) -> None:
    counts = read_inputs(csi, "real").counts
    assert counts is not None and counts.linear
    assert_allclose(counts.extract(counts.data), csi.xsec_real.values[:1], rtol=1e-12, atol=0)
    assert_allclose(counts.stat_cov(counts.data)[0], csi.cov_stat_real.values, rtol=1e-12, atol=0)
    # the generator's own truth counts reproduce its expected reco signal
    raw = csi.pred_real.values[0]
    assert_allclose(
        counts.expected(raw) - counts.background, csi.signal_reco.values[0], rtol=1e-12, atol=0
    )


@pytest.mark.parametrize("convention", ["real", "nominal"])
@pytest.mark.parametrize("truth", [0.18, 0.23857, 0.31])
def test_an_asimov_dataset_returns_its_sin2w(
    csi: xr.Dataset, convention: str, truth: float
) -> None:
    asimov = problem(csi, convention=convention).asimov([truth])
    fit = best_fit(asimov.chi2, [SIN2W], asimov.n_bins)
    assert fit.valid
    assert abs(fit.values[0] - truth) < 1e-6
    assert fit.chi2 < 1e-10


def test_an_asimov_dataset_returns_both_parameters_of_a_two_parameter_fit(
    csi_enu: xr.Dataset,
) -> None:
    params = [SIN2W, parse_parameter("rn=4.8:3:8", models.cevns)]
    truth = [0.25, 5.6]
    asimov = problem(csi_enu, names=("sin2w", "rn")).asimov(truth)
    fit = best_fit(asimov.chi2, params, asimov.n_bins)
    assert fit.valid and fit.ndof == 1
    assert_allclose(fit.values, truth, rtol=0, atol=1e-6)


def test_where_the_model_is_linear_delta_chi2_is_one_at_one_sigma(csi: xr.Dataset) -> None:
    p = FitProblem(inputs=read_inputs(csi, "real"), model=offset, names=("a",))
    param = Parameter(name="a", start=0.0, lower=-300.0, upper=300.0)
    fit = best_fit(p.chi2, [param], p.n_bins)
    a, sigma = fit.values[0], fit.errors[0]
    for side in (-1.0, 1.0):
        assert p.chi2([a + side * sigma]) - fit.chi2 == pytest.approx(1.0, abs=1e-6)
    one_sigma = float(scipy.stats.chi2.cdf(1.0, 1))
    interval = wilks_intervals(p.chi2, [param], fit, [one_sigma])[0, 0]
    assert_allclose(interval, [a - sigma, a + sigma], rtol=0, atol=1e-6 * sigma)
    # the prediction's own flux spread does not move with a: V_syst is the same at every a
    assert_allclose(p.evaluate([-50.0]).v_syst, p.evaluate([80.0]).v_syst, rtol=1e-9, atol=0)


def test_the_tabulated_grid_gives_the_direct_chi2(csi_enu: xr.Dataset) -> None:
    p = problem(csi_enu)
    grid = tabulate(p, [SIN2W], 7)
    chi2 = data_statistic(grid, p)
    direct = [p.chi2([x]) for x in grid.axes[0]]
    assert_allclose(chi2, direct, rtol=1e-10, atol=0)


def test_a_whole_fit_without_toys_gives_minos_and_the_profile(csi: xr.Dataset) -> None:
    p = problem(csi)
    r = run_fit(p, [SIN2W], FitSettings(toys=0, grid=101))
    assert r.fc == () and r.toy_stats is None
    lo68, hi68 = r.wilks[0, 0]
    assert lo68 < r.best.values[0] < hi68
    # Minos bounds are where the profile crosses the χ²₁ quantile
    axis, profile = r.grid.axes[0], r.profiles[0]
    threshold = scipy.stats.chi2.ppf(0.6827, 1)
    for bound in (lo68, hi68):
        assert p.chi2([bound]) - r.best.chi2 == pytest.approx(threshold, abs=1e-4)
    assert profile.min() >= -1e-9
    inside = (axis > lo68) & (axis < hi68)
    assert np.all(profile[inside] <= threshold + 1e-9)


def test_the_python_entry_point_fits_a_dataset_or_an_asimov_copy(csi: xr.Dataset) -> None:
    from farm.fit import fit

    r = fit(
        csi, "farm.models:cevns", ["sin2w=0.3"], settings=FitSettings(toys=0, grid=21), asimov=True
    )
    assert abs(r.best.values[0] - 0.3) < 1e-6
    data = fit(
        csi,
        models.cevns,
        ["sin2w"],
        fixed={"couplings": "tree"},
        settings=FitSettings(toys=0, grid=21),
    )
    assert data.problem.fixed == {"couplings": "tree"} and data.best.valid
