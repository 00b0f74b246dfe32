"""The cross section as physicists quote it (farm.analysis.quoted), beside the seed's flux share.

⟨σ⟩_j = ∫_j F σ dE / ∫_j F dE in E_ν bins (the true flux of each universe in the real-flux
convention, the nominal flux in the nominal one), dσ/dx = S_j / Δx_j in kinematic bins, the
flux-averaged total for one bin. Results come from real farm runs of the example samples
(small event counts, 10 throws per multisim systematic), sharing the stores of the other tests.
"""

from __future__ import annotations

import tomllib

import matplotlib
import numpy as np
import pytest
import xarray as xr
from conftest import run_example
from numpy.testing import assert_allclose

from farm.analysis.quoted import with_quoted
from farm.compare import compare
from farm.config import examples_dir, parse_config
from farm.models import numu_cc_argon
from farm.runner import run_inprocess

matplotlib.use("Agg")

EVENTS = 65_536
UNIVERSES = 10


@pytest.fixture(scope="module")
def nuscope(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    return run_example(tmp_path_factory, "nuscope-lar", events=EVENTS, universes=UNIVERSES)


@pytest.fixture(scope="module")
def csi(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    return run_example(tmp_path_factory, "sns-csi", events=EVENTS, universes=UNIVERSES)


@pytest.fixture(scope="module")
def recoil(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    data = tomllib.loads((examples_dir() / "sns-csi.toml").read_text())
    data["sample"]["store"] = str(
        tmp_path_factory.getbasetemp() / "compare-stores" / f"sns-csi-{EVENTS}.zarr"
    )
    data["generation"]["events"] = EVENTS
    data["binning"] |= {"truth": "recoil_mev", "truth_edges": [0.0, 0.005, 0.01, 0.02, 0.05]}
    data["models"] = []
    return run_inprocess(parse_config(data), universes=UNIVERSES, log=lambda _: None)


def _direct_mean_sigma(ds: xr.Dataset, ratio: np.ndarray | None = None) -> np.ndarray:
    """∫_j F σ / ∫_j F over the run's ν_μ nodes, each node weighted by its universe's ratio."""
    pick = ds["flux_rule_flavor"].values == 14
    e, w = ds["flux_rule_enu"].values[pick], ds["flux_rule_fluence"].values[pick]
    if ratio is not None:
        lo = ds["flux_bin_lo_mev"].values[:-1]
        numu = np.array([str(f) == "numu" for f in ds["flux_bin_flavor"].values[:-1]])
        edges = np.append(lo[numu], ds["flux_bin_hi_mev"].values[:-1][numu][-1])
        b = np.searchsorted(edges, e, side="right") - 1
        w = w * np.where(
            (b >= 0) & (b < numu.sum()),
            ratio[np.flatnonzero(numu)][np.clip(b, 0, numu.sum() - 1)],
            1.0,
        )
    edges = ds["truth_edges"].values
    j = np.searchsorted(edges, e, side="right") - 1
    inside = (j >= 0) & (j < edges.size - 1)
    sigma = numu_cc_argon(e[inside], "numu")
    n = edges.size - 1
    return np.bincount(j[inside], w[inside] * sigma, n) / np.bincount(j[inside], w[inside], n)


def test_mean_sigma_in_energy_bins_is_the_flux_weighted_average_of_sigma(
    nuscope: xr.Dataset,
) -> None:
    m = [str(x) for x in nuscope["model"].values].index("llewellyn_smith_plus_noqe")
    assert_allclose(
        nuscope["model_sigma_nominal"].values[m, 0], _direct_mean_sigma(nuscope), rtol=1e-12, atol=0
    )
    ratio = nuscope["flux_ratio"].values
    u = int(np.flatnonzero(np.any(ratio != 1.0, axis=1))[0])  # a universe that moves the flux
    assert_allclose(
        nuscope["model_sigma_real"].values[m, u],
        _direct_mean_sigma(nuscope, ratio[u]),
        rtol=1e-12,
        atol=0,
    )


def test_mean_sigma_rescales_the_flux_share_by_the_flux_outside_each_bin(
    nuscope: xr.Dataset,
) -> None:
    share, sigma = nuscope["xsec_real"].values, nuscope["sigma_real"].values
    assert np.all(sigma > share)  # Φ_j < Φ: ⟨σ⟩_j = S_j Φ / Φ_j
    assert_allclose(sigma / share, nuscope["sigma_factor_real"].values, rtol=1e-12, atol=0)
    # ν_μ CC on argon between 0.5 and 9 GeV: ⟨σ⟩/E_ν ≈ (0.3–0.8)e-38 cm² per nucleon per GeV
    per_nucleon_gev = sigma[0] / 40 / (nuscope["truth_bin"].values / 1000)
    assert np.all((per_nucleon_gev > 0.2e-38) & (per_nucleon_gev < 1.0e-38))


def test_kinematic_bins_carry_the_cross_section_per_unit_of_the_variable(
    recoil: xr.Dataset,
) -> None:
    width = np.diff(recoil["truth_edges"].values)
    assert_allclose(
        recoil["sigma_nominal"].values, recoil["xsec_nominal"].values / width, rtol=1e-12, atol=0
    )
    assert (
        recoil["sigma_real"].attrs["units"]
        == "cm2/MeV per CsI nucleus (averaged over the nuclei of CsI)"
    )
    assert "dsigma/dx" in recoil["sigma_real"].attrs["long_name"]


def test_one_total_bin_is_the_flux_averaged_total_itself(csi: xr.Dataset) -> None:
    assert_allclose(csi["sigma_real"].values, csi["xsec_real"].values, rtol=0, atol=0)
    assert "truth_lo" not in csi.coords  # no edges to carry


def test_every_cross_section_variable_has_a_long_name_and_units_naming_the_target(
    nuscope: xr.Dataset,
) -> None:
    for c in ("real", "nominal"):
        for name in (
            f"sigma_{c}",
            f"model_sigma_{c}",
            f"cov_sigma_{c}",
            f"cov_total_sigma_{c}",
            f"cov_stat_sigma_{c}",
            f"cov_group_sigma_{c}",
            f"xsec_{c}",
        ):
            attrs = nuscope[name].attrs
            assert attrs["long_name"] and attrs["units"], name
        assert nuscope[f"sigma_{c}"].attrs["units"] == "cm2 per Ar nucleus"
        assert "S_j, the seed's flux share" in nuscope[f"xsec_{c}"].attrs["long_name"]
        assert nuscope[f"xsec_{c}"].attrs["target"] == "cm2 per target (Ar nucleus)"


def test_truth_bins_carry_their_edges_and_plots_draw_against_energy(nuscope: xr.Dataset) -> None:
    edges = nuscope["truth_edges"].values
    assert_allclose(nuscope["truth_lo"].values, edges[:-1], rtol=0, atol=0)
    assert_allclose(nuscope["truth_hi"].values, edges[1:], rtol=0, atol=0)
    assert_allclose(nuscope["truth_bin"].values, 0.5 * (edges[:-1] + edges[1:]), rtol=0, atol=0)
    lines = nuscope["sigma_real"].isel(universe=0).plot()
    assert_allclose(lines[0].get_xdata(), 0.5 * (edges[:-1] + edges[1:]), rtol=0, atol=0)
    assert "MeV" in lines[0].axes.get_xlabel()


def test_nominal_chi2_is_the_same_in_sigma_and_in_the_flux_share(nuscope: xr.Dataset) -> None:
    share = compare(nuscope, numu_cc_argon)
    sigma = compare(nuscope, numu_cc_argon, quantity="sigma")
    assert sigma.quantity == "sigma"
    assert sigma.nominal.joint.chi2 == pytest.approx(share.nominal.joint.chi2, rel=1e-9, abs=0)
    # in the real-flux convention with E_ν bins they are two statistics: close, not equal
    assert sigma.real.joint.chi2 == pytest.approx(share.real.joint.chi2, rel=0.2, abs=0)


def test_a_result_published_before_sigma_existed_still_compares_and_gains_it(
    nuscope: xr.Dataset,
) -> None:
    added = [v for v in nuscope.data_vars if "sigma" in v]
    old = nuscope.drop_vars([*added, "truth_lo", "truth_hi"]).assign_coords(
        truth_bin=np.arange(12), truth_bin_2=np.arange(12)
    )
    assert compare(old, numu_cc_argon).real.joint.chi2 == pytest.approx(
        compare(nuscope, numu_cc_argon).real.joint.chi2, rel=1e-12, abs=0
    )
    assert_allclose(
        with_quoted(old)["sigma_real"].values, nuscope["sigma_real"].values, rtol=1e-12, atol=0
    )
