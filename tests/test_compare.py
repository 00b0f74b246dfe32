"""``farm.compare`` and ``farm compare``: a model against a published result, without a cluster.

Results come from real farm runs of the example samples (small event counts, 10 throws per
multisim systematic); the stores live under the session's base temp directory so that
tests/test_hepdata.py reuses them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import farm_cli, run_example
from numpy.testing import assert_allclose

import farm
from farm.compare import ModelTable, compare, read_model_table
from farm.config import examples_dir, parse_config
from farm.models import cevns_csi_tree_helm, numu_cc_argon
from farm.physics import cevns
from farm.publish import publish_dataset
from farm.runner import run_inprocess

EVENTS = 65_536
UNIVERSES = 10
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "theorist_correlation.py"

# docs/physics.md: π-DAR gives one ν_μ (29.79 MeV line), one ν_e (mean 31.70 MeV) and one ν̄_μ
# (mean 36.98 MeV) per decay, so the flux-averaged energy of all three is their mean.
PIDAR_MEAN_ENU_MEV = (29.79 + 31.70 + 36.98) / 3


def run_sample(
    tmp_path_factory: pytest.TempPathFactory, sample: str, **analysis: object
) -> xr.Dataset:
    return run_example(tmp_path_factory, sample, events=EVENTS, universes=UNIVERSES, **analysis)


@pytest.fixture(scope="module")
def csi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sns-csi, published: the path a theorist is given."""
    out = tmp_path_factory.mktemp("compare") / "sns-csi.zarr"
    publish_dataset(run_sample(tmp_path_factory, "sns-csi"), out)
    return out


@pytest.fixture(scope="module")
def nuscope(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    """nuscope-lar unfolded with Wiener-SVD: 12 E_ν bins, flux shape throws, A_C per universe."""
    return run_sample(tmp_path_factory, "nuscope-lar", method="wiener-svd")


def csi_dxsec_dT(enu_mev: np.ndarray, t_mev: np.ndarray, flavor: str) -> np.ndarray:
    """dσ/dT per CsI nucleus: the mean over equal numbers of Cs and I nuclei."""
    del flavor
    return 0.5 * (cevns.dxsec_dT(enu_mev, t_mev, "Cs133") + cevns.dxsec_dT(enu_mev, t_mev, "I127"))


@pytest.fixture(scope="module")
def recoil(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    """sns-csi with truth binned in the nuclear recoil energy and a dσ/dT model attached."""
    data = tomllib.loads((examples_dir() / "sns-csi.toml").read_text())
    store = tmp_path_factory.getbasetemp() / "compare-stores" / f"sns-csi-{EVENTS}.zarr"
    data["sample"]["store"] = str(store)
    data["generation"]["events"] = EVENTS
    data["binning"] |= {"truth": "recoil_mev", "truth_edges": [0.0, 0.005, 0.01, 0.02, 0.05]}
    data["models"] = [{"name": "dT", "callable": f"{__name__}:csi_dxsec_dT", "kind": "dxsec"}]
    return run_inprocess(parse_config(data), universes=UNIVERSES, log=lambda _: None)


def _linear(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
    del flavor
    return 1e-40 * np.asarray(enu_mev, dtype=np.float64)


# --- the same numbers as farm run --------------------------------------------------------------


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_reproduces_what_farm_run_stored_for_the_attached_csi_model(
    csi: Path, convention: str
) -> None:
    ds = xr.open_zarr(csi)
    stored = ds.sel(model="tree_level_helm")
    part = compare(csi, "farm.models:cevns_csi_tree_helm").convention(convention)
    assert_allclose(part.predicted, stored[f"model_pred_{convention}"].values, rtol=1e-10)
    assert_allclose(part.joint_cov, stored[f"joint_cov_{convention}"].values, rtol=1e-10)
    for kind, result in (("joint", part.joint), ("uncorrelated", part.uncorrelated)):
        assert result.chi2 == pytest.approx(
            float(stored[f"chi2_{convention}_{kind}"]), rel=1e-10, abs=0
        )
        assert result.pvalue == pytest.approx(
            float(stored[f"pvalue_{convention}_{kind}"]), rel=1e-10, abs=0
        )


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_reproduces_farm_run_with_energy_bins_and_wiener_svd_smearing_per_universe(
    nuscope: xr.Dataset, convention: str
) -> None:
    stored = nuscope.sel(model="llewellyn_smith_plus_noqe")
    part = compare(nuscope, numu_cc_argon).convention(convention)
    assert_allclose(part.predicted, stored[f"model_pred_{convention}"].values, rtol=1e-10)
    assert part.joint.chi2 == pytest.approx(
        float(stored[f"chi2_{convention}_joint"]), rel=1e-10, abs=0
    )
    assert part.uncorrelated.chi2 == pytest.approx(
        float(stored[f"chi2_{convention}_uncorrelated"]), rel=1e-10, abs=0
    )


def test_reproduces_farm_run_for_a_dsigma_dT_model_on_recoil_bins(recoil: xr.Dataset) -> None:
    stored = recoil.sel(model="dT")
    result = compare(recoil, csi_dxsec_dT, kind="dxsec")
    for convention in ("real", "nominal"):
        part = result.convention(convention)
        assert part.predicted.shape == (recoil.sizes["universe"], 4)
        assert_allclose(part.predicted, stored[f"model_pred_{convention}"].values, rtol=1e-10)
        assert part.joint.chi2 == pytest.approx(
            float(stored[f"chi2_{convention}_joint"]), rel=1e-10, abs=0
        )


def test_a_sigma_of_enu_model_on_recoil_bins_asks_for_dxsec(recoil: xr.Dataset) -> None:
    with pytest.raises(ValueError, match="give a dσ/dX model"):
        compare(recoil, cevns_csi_tree_helm)


def test_farm_compare_is_the_one_line_call(csi: Path) -> None:
    assert farm.compare is compare
    by_name = farm.compare(csi, "farm.models:cevns_csi_tree_helm")
    by_callable = farm.compare(xr.open_zarr(csi), cevns_csi_tree_helm)
    assert by_name.name == "cevns_csi_tree_helm"
    assert by_name.real.joint.chi2 == by_callable.real.joint.chi2


# --- the physics of the prediction -------------------------------------------------------------


def test_sigma_proportional_to_energy_averages_to_the_mean_pidar_energy(csi: Path) -> None:
    part = compare(csi, _linear).nominal
    assert part.predicted[0, 0] == pytest.approx(1e-40 * PIDAR_MEAN_ENU_MEV, rel=1e-3, abs=0)


def test_a_pure_normalisation_flux_throw_leaves_the_real_flux_prediction_unchanged(
    csi: Path,
) -> None:
    # ∫(1+δ)F̄σ dE / ((1+δ)Φ̄) = ∫F̄σ dE / Φ̄: sns-csi throws only the flux normalisation
    part = compare(csi, _linear).real
    assert_allclose(
        part.predicted, np.broadcast_to(part.predicted[0], part.predicted.shape), rtol=1e-12
    )
    assert part.joint.chi2 == pytest.approx(part.uncorrelated.chi2, rel=1e-9, abs=0)


def test_joint_chi2_uses_the_covariance_over_shared_universes_per_systematic(
    nuscope: xr.Dataset,
) -> None:
    # docs/physics.md §1, docs/internals.md §2: V = Σ_s (1/N_s) Σ_{u∈s} (x_u − x_0)(x_u − x_0)ᵀ for x = (measured,
    # predicted); χ² = Δᵀ(V_mm + V_pp − V_mp − V_pm + V_stat)⁻¹Δ, and with V_mp = 0 ignored.
    part = compare(nuscope, numu_cc_argon).real
    x = np.concatenate([nuscope["xsec_real"].values, part.predicted], axis=1)
    labels = nuscope["universe_systematic"].values
    v = np.zeros((24, 24))
    for name in nuscope["systematic"].values:
        d = x[labels == name] - x[0]
        v += d.T @ d / len(d)
    n = 12
    delta = x[0, :n] - x[0, n:]
    stat = nuscope["cov_stat_real"].values
    joint = v[:n, :n] + v[n:, n:] - v[:n, n:] - v[n:, :n] + stat
    ignored = v[:n, :n] + v[n:, n:] + stat
    assert_allclose(part.joint_cov, v, rtol=1e-9, atol=1e-12 * np.abs(v).max())
    assert part.joint.chi2 == pytest.approx(delta @ np.linalg.solve(joint, delta), rel=1e-9, abs=0)
    assert part.uncorrelated.chi2 == pytest.approx(
        delta @ np.linalg.solve(ignored, delta), rel=1e-9, abs=0
    )
    assert part.joint.dof == n


# --- models as tables --------------------------------------------------------------------------


def test_a_table_of_a_linear_cross_section_gives_the_callable_result(csi: Path) -> None:
    energy = np.array([0.0, 20.0, 60.0])
    table = ModelTable.from_columns(energy, _linear(energy, "any"))
    assert_allclose(
        compare(csi, table).real.predicted, compare(csi, _linear).real.predicted, rtol=1e-12
    )


def test_a_csv_table_per_flavour_is_read_and_interpolated(csi: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.csv"
    rows = ["# sigma = 1e-40 E, and twice that for nu_e (PDG 12)", "enu_mev,xsec_cm2,flavor"]
    for flavor, scale in (("numu", 1.0), ("12", 2.0), ("numubar", 1.0)):
        rows += [f"{e},{scale * 1e-40 * e},{flavor}" for e in (0.0, 60.0)]
    path.write_text("\n".join(rows) + "\n")

    def two_for_nue(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
        return (2.0 if flavor == "nue" else 1.0) * _linear(enu_mev, flavor)

    table = read_model_table(path)
    assert sorted(table.curves) == ["nue", "numu", "numubar"]
    assert_allclose(
        compare(csi, path).nominal.predicted,
        compare(csi, two_for_nue).nominal.predicted,
        rtol=1e-12,
    )


def test_a_table_that_does_not_cover_the_flux_names_the_range_needed(csi: Path) -> None:
    table = {"enu_mev": [10.0, 40.0], "xsec_cm2": [1e-40, 4e-40]}
    with pytest.raises(ValueError, match=r"covers 10–40 MeV .* needs σ at .*extend the table"):
        compare(csi, table)


def test_a_table_with_unknown_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("energy,xsec_cm2\n1,2\n3,4\n")
    with pytest.raises(ValueError, match="columns must be enu_mev, xsec_cm2 and optionally flavor"):
        read_model_table(path)


def test_a_result_without_the_comparison_inputs_says_to_recompute(csi: Path) -> None:
    old = xr.open_zarr(csi).drop_vars(["flux_rule_enu", "flux_rule_fluence"])
    with pytest.raises(ValueError, match=r"lacks flux_rule_enu, flux_rule_fluence.*farm run"):
        compare(old, _linear)


# --- the command line --------------------------------------------------------------------------


def test_cli_prints_both_conventions_and_both_chi_squares(csi: Path) -> None:
    result = farm_cli("compare", csi, "--model", "farm.models:cevns_csi_tree_helm")
    assert result.exit_code == 0, result.output
    for text in (
        "real-flux-averaged",
        "nominal-flux-averaged",
        "χ² with correlation",
        "χ² ignoring it",
    ):
        assert text in result.output
    chi2 = compare(csi, cevns_csi_tree_helm).real.joint.chi2
    assert f"{chi2:.4g}" in result.output


def test_cli_json_carries_the_numbers_of_a_model_table(csi: Path, tmp_path: Path) -> None:
    path = tmp_path / "linear.csv"
    path.write_text("enu_mev,xsec_cm2\n0,0\n60,6e-39\n")
    result = farm_cli("compare", csi, "--model-table", path, "--json")
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.output)
    assert numbers["model"] == "linear"
    assert numbers["nominal"]["predicted"][0] == pytest.approx(
        1e-40 * PIDAR_MEAN_ENU_MEV, rel=1e-3, abs=0
    )


def test_cli_needs_exactly_one_model(csi: Path) -> None:
    result = farm_cli("compare", csi)
    assert result.exit_code == 2
    assert "exactly one of --model" in result.output


# --- the worked example ------------------------------------------------------------------------


def test_worked_example_flips_the_conclusion_and_the_profile_agrees_with_the_joint_chi2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("theorist_correlation", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, example)  # its dataclass looks itself up there
    spec.loader.exec_module(example)
    verdict = example.run_example(tmp_path, log=lambda _: None)
    assert verdict.pvalue_uncorrelated < 0.05 <= verdict.pvalue_correlated
    assert verdict.correlation < -0.9  # one tilt moves measurement and prediction apart
    # fitting the tilt as a nuisance parameter agrees with the joint covariance, not with the
    # chi-square that ignores the correlation
    assert abs(verdict.chi2_profile - verdict.chi2_correlated) < 0.1 * verdict.chi2_correlated
    assert "correlated chi-square is the right one" in example.report(verdict)
