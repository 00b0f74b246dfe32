"""Every exported HEPData record, read back through ``farm compare RECORD``, gives the chi-square
``farm compare RESULT`` gives for the same model (to 1e-6).

One record per layout: a flux-averaged total (sns-csi), E_ν bins (nuscope-lar, D'Agostini:
⟨σ⟩ and the flux share S_j), E_ν bins with Wiener-SVD's A_C in every universe, and a kinematic
truth binning with a dσ/dT model (sns-csi in recoil energy). Results come from real farm runs of
the example samples (small event counts, 10 throws per multisim systematic), sharing the stores
of tests/test_compare.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import run_example

from farm.compare import compare
from farm.compare_record import compare_record
from farm.config import examples_dir, parse_config
from farm.physics import cevns
from farm.release import write_hepdata
from farm.runner import run_inprocess

EVENTS = 65_536
UNIVERSES = 10
ROUND_TRIP = 1e-6


def csi_dxsec_dT(enu_mev: np.ndarray, t_mev: np.ndarray, flavor: str) -> np.ndarray:
    """dσ/dT per CsI nucleus: the mean over equal numbers of Cs and I nuclei."""
    del flavor
    return 0.5 * (cevns.dxsec_dT(enu_mev, t_mev, "Cs133") + cevns.dxsec_dT(enu_mev, t_mev, "I127"))


def _recoil(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    data = tomllib.loads((examples_dir() / "sns-csi.toml").read_text())
    data["sample"]["store"] = str(
        tmp_path_factory.getbasetemp() / "compare-stores" / f"sns-csi-{EVENTS}.zarr"
    )
    data["generation"]["events"] = EVENTS
    data["binning"] |= {"truth": "recoil_mev", "truth_edges": [0.0, 0.005, 0.01, 0.02, 0.05]}
    data["models"] = [{"name": "dT", "callable": f"{__name__}:csi_dxsec_dT", "kind": "dxsec"}]
    return run_inprocess(parse_config(data), universes=UNIVERSES, log=lambda _: None)


CASES = {
    "sns-csi": ("farm.models:cevns_csi_tree_helm", "xsec"),
    "nuscope-lar": ("farm.models:numu_cc_argon", "xsec"),
    "nuscope-wiener": ("farm.models:numu_cc_argon", "xsec"),
    "recoil": (f"{__name__}:csi_dxsec_dT", "dxsec"),
}


@pytest.fixture(scope="module", params=list(CASES))
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, xr.Dataset, Path]:
    case = request.param
    if case == "recoil":
        ds = _recoil(tmp_path_factory)
    elif case == "nuscope-wiener":
        ds = run_example(
            tmp_path_factory, "nuscope-lar", events=EVENTS, universes=UNIVERSES, method="wiener-svd"
        )
    else:
        ds = run_example(tmp_path_factory, case, events=EVENTS, universes=UNIVERSES)
    out = tmp_path_factory.mktemp("roundtrip") / case
    write_hepdata(ds, out, digits=17)
    return case, ds, out


def _expected(ds: xr.Dataset, model: str, kind: str, table: str) -> tuple[float, float]:
    quantity = "share" if table.startswith("flux_share") else "sigma"
    convention = table.rpartition("-")[2]
    part = compare(ds, model, kind=kind, quantity=quantity).convention(convention)
    return part.joint.chi2, part.uncorrelated.chi2


def test_every_measurement_of_the_record_reproduces_farm_compare_on_the_result(
    exported: tuple[str, xr.Dataset, Path],
) -> None:
    case, ds, out = exported
    model, kind = CASES[case]
    record = compare_record(out.with_name(f"{out.name}.tar.gz"), model, kind=kind)
    tables = {m.table for m in record.measurements}
    expected_tables = {"cross_section-real", "cross_section-nominal"}
    if case.startswith("nuscope"):
        expected_tables |= {"flux_share-real", "flux_share-nominal"}
    assert tables == expected_tables
    for m in record.measurements:
        joint, uncorrelated = _expected(ds, model, kind, m.table)
        assert m.joint is not None and m.uncorrelated is not None
        assert m.joint.chi2 == pytest.approx(joint, rel=ROUND_TRIP, abs=0), m.table
        assert m.uncorrelated.chi2 == pytest.approx(uncorrelated, rel=ROUND_TRIP, abs=0), m.table
        assert m.chi2.dof == ds.sizes["truth_bin"]


def test_the_record_holds_the_stored_chi2_of_the_flux_share_and_the_sigma_one(
    exported: tuple[str, xr.Dataset, Path],
) -> None:
    case, ds, out = exported
    if not case.startswith("nuscope"):
        pytest.skip("one quantity: sigma is S up to a constant per bin")
    model, kind = CASES[case]
    record = compare_record(out, model, kind=kind)
    share = record.table("flux_share-real")
    sigma = record.table("cross_section-real")
    stored = float(ds["chi2_real_joint"].sel(model="llewellyn_smith_plus_noqe"))
    assert share.joint is not None and sigma.joint is not None
    assert share.joint.chi2 == pytest.approx(stored, rel=ROUND_TRIP, abs=0)
    if case == "nuscope-lar":
        # ⟨σ⟩ in E_ν bins that the flux bins subdivide: a flux-bin throw cancels in the
        # prediction (Wiener-SVD's A_C of each universe still moves it)
        assert np.all(sigma.predicted_error <= 1e-12 * sigma.predicted.max())
        assert np.all(share.predicted_error > 1e-3 * share.predicted)


def test_the_default_rounding_moves_a_chi2_by_less_than_the_rounding_allows(
    exported: tuple[str, xr.Dataset, Path], tmp_path: Path
) -> None:
    case, ds, _ = exported
    model, kind = CASES[case]
    out = tmp_path / "auto"
    write_hepdata(ds, out, archive=False)
    for m in compare_record(out, model, kind=kind).measurements:
        joint, _ = _expected(ds, model, kind, m.table)
        # each value moves by at most 0.5 % of its σ (three digits of σ): a pull by ≤ 0.005
        bound = 2 * 0.005 * np.sqrt(joint * m.chi2.dof) + 0.005**2 * m.chi2.dof
        assert m.joint is not None
        assert abs(m.joint.chi2 - joint) <= bound, (m.table, m.joint.chi2, joint)
        assert np.linalg.eigvalsh(m.measurement.covariance).min() > 0  # still a covariance


def test_cli_compares_the_published_result_in_sigma_and_its_release_alike(
    exported: tuple[str, xr.Dataset, Path], tmp_path: Path
) -> None:
    case, ds, out = exported
    if case != "nuscope-lar":
        pytest.skip("one case is enough for the command line")
    import json

    from conftest import farm_cli

    from farm.publish import publish_dataset

    result = tmp_path / "r.zarr"
    publish_dataset(ds, result)
    model, _ = CASES[case]
    on_result = farm_cli("compare", result, "--model", model, "--quantity", "sigma", "--json")
    assert on_result.exit_code == 0, on_result.output
    on_record = farm_cli(
        "compare", out, "--model", model, "--table", "cross_section-real", "--json"
    )
    assert on_record.exit_code == 0, on_record.output
    sigma = json.loads(on_result.output)
    record = json.loads(on_record.output)["tables"][0]
    assert sigma["quantity"] == "sigma"
    assert record["joint"]["chi2"] == pytest.approx(
        sigma["real"]["chi2_joint"], rel=ROUND_TRIP, abs=0
    )
    refused = farm_cli("compare", result, "--prediction", out / "submission.yaml")
    assert refused.exit_code == 2 and "is not a HEPData record" in refused.output
