"""``farm export hepdata``: a HEPData submission of a result, valid for hepdata-validator.

Results come from real farm runs of the example samples (small event counts, 10 throws per
multisim systematic), sharing the stores of tests/test_compare.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import farm_cli, run_example
from numpy.testing import assert_allclose, assert_array_equal

from farm.publish import publish_dataset
from farm.release import validate_submission, write_hepdata
from farm.release.blocks import hepdata_lib
from farm.release.hepdata import data_file_name

EVENTS = 65_536
UNIVERSES = 10


def run_sample(
    tmp_path_factory: pytest.TempPathFactory, sample: str, **analysis: object
) -> xr.Dataset:
    return run_example(tmp_path_factory, sample, events=EVENTS, universes=UNIVERSES, **analysis)


def load(directory: Path, table: str) -> dict[str, Any]:
    with (directory / data_file_name(table)).open() as handle:
        return yaml.safe_load(handle)


def column(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in data["dependent_variables"] if v["header"]["name"] == name)


def values(variable: dict[str, Any]) -> np.ndarray:
    return np.array([v["value"] for v in variable["values"]])


@pytest.fixture(scope="module")
def csi(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    return run_sample(tmp_path_factory, "sns-csi")


def qualifiers(variable: dict[str, Any]) -> dict[str, Any]:
    return {q["name"]: q["value"] for q in variable.get("qualifiers", [])}


@pytest.fixture(scope="module")
def csi_release(csi: xr.Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every number written exactly (--digits 17)."""
    out = tmp_path_factory.mktemp("hepdata") / "sns-csi"
    write_hepdata(csi, out, digits=17)
    return out


@pytest.fixture(scope="module")
def csi_auto(csi: xr.Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default: numbers rounded to what their uncertainties justify."""
    out = tmp_path_factory.mktemp("hepdata") / "sns-csi-auto"
    write_hepdata(csi, out, archive=False)
    return out


@pytest.fixture(scope="module")
def wiener(tmp_path_factory: pytest.TempPathFactory) -> tuple[xr.Dataset, Path]:
    """nuscope-lar (12 E_ν bins) unfolded with Wiener-SVD, and its release."""
    ds = run_sample(tmp_path_factory, "nuscope-lar", method="wiener-svd")
    out = tmp_path_factory.mktemp("hepdata") / "nuscope"
    write_hepdata(ds, out, digits=17, archive=False)
    return ds, out


# --- valid HEPData -----------------------------------------------------------------------------


def test_the_submission_directory_and_its_archive_are_valid_hepdata(csi_release: Path) -> None:
    assert validate_submission(csi_release) == []
    archive = csi_release.with_name("sns-csi.tar.gz")
    assert archive.is_file()
    assert validate_submission(archive) == []


def test_every_data_file_is_valid_against_the_hepdata_data_schema(csi_release: Path) -> None:
    hepdata_lib()  # imports the validator with its deprecation warnings contained
    from hepdata_validator.data_file_validator import DataFileValidator

    with (csi_release / "submission.yaml").open() as handle:
        documents = [d for d in yaml.safe_load_all(handle) if d and "data_file" in d]
    assert len(documents) >= 13
    for document in documents:
        validator = DataFileValidator()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            ok = validator.validate(file_path=str(csi_release / document["data_file"]))
        assert ok, validator.get_messages()


def test_a_wiener_svd_release_is_valid_and_carries_its_additional_smearing(
    wiener: tuple[xr.Dataset, Path],
) -> None:
    ds, out = wiener
    assert validate_submission(out) == []
    measured = column(load(out, "flux_share-real"), "flux_share")
    assert qualifiers(measured)["smearing"] == "flux_share_additional_smearing-real:A_C"
    table = load(out, "flux_share_additional_smearing-real")
    a_c = values(column(table, "A_C"))
    assert_array_equal(a_c.reshape(12, 12), ds["additional_smearing_real"].values)
    # every universe's own A_C, as the joint covariance needs it
    last = ds.sizes["universe"] - 1
    assert_array_equal(
        values(column(table, f"A_C universe {last}")).reshape(12, 12),
        ds["additional_smearing_universes_real"].values[last],
    )


# --- the numbers are the dataset's -------------------------------------------------------------


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_measured_cross_section_and_errors_round_trip_exactly(
    csi: xr.Dataset, csi_release: Path, convention: str
) -> None:
    measured = column(load(csi_release, f"cross_section-{convention}"), "cross_section")
    assert measured["header"]["units"].startswith("cm^2 per CsI nucleus")
    # one flux-averaged total bin: <sigma> = S, the seed's flux share
    assert_array_equal(values(measured), csi[f"xsec_{convention}"].values[0])
    errors = {e["label"]: e["symerror"] for e in measured["values"][0]["errors"]}
    assert errors["stat"] == np.sqrt(csi[f"cov_stat_{convention}"].values[0, 0])
    # the per-group errors add up, in quadrature, to the total systematic covariance
    syst = sum(v**2 for k, v in errors.items() if k.startswith("sys,"))
    assert syst == pytest.approx(csi[f"cov_{convention}"].values[0, 0], rel=1e-12, abs=0)


def test_the_convention_and_the_nuisance_qualifiers_are_stated_with_the_measurement(
    csi_release: Path,
) -> None:
    for convention in ("real", "nominal"):
        table = load(csi_release, f"cross_section-{convention}")
        q = qualifiers(column(table, "cross_section"))
        assert q["convention"].startswith(f"{convention}-flux-averaged")
        assert q["variable_type"] == "cross_section_measurement"
        assert q["errors"] == f"covariance-{convention}:total"
        assert q["cross_section_units"] == "cm2|PerTarget"
        assert q["target"] == "1000551330,1000531270"  # Cs-133 and I-127, one each
        assert q["probe_flux"] == "flux-nue,flux-numu,flux-numubar"
        assert q["universes"] == f"universes-{convention}"
        assert q["selectfunc"].startswith("analysis.cxx:FARM_SnsCsi_XSec_")
        axis = table["independent_variables"][0]["header"]["name"]
        assert q[f"{axis}:projectfunc"].startswith("analysis.cxx:FARM_SnsCsi_XSec_")
        assert ("flux_universes" in q) == (convention == "real")


def test_covariances_total_stat_and_per_group_round_trip(
    wiener: tuple[xr.Dataset, Path],
) -> None:
    ds, out = wiener
    table = load(out, "flux_share_covariance-nominal")
    assert_array_equal(
        values(column(table, "total")).reshape(12, 12), ds["cov_total_nominal"].values
    )
    assert_array_equal(values(column(table, "stat")).reshape(12, 12), ds["cov_stat_nominal"].values)
    for k, group in enumerate(ds["group"].values):
        assert_array_equal(
            values(column(table, f"group {group}")).reshape(12, 12),
            ds["cov_group_nominal"].values[k],
        )
    i = values(table["independent_variables"][0])
    j = values(table["independent_variables"][1])
    assert (i[13], j[13]) == (1, 1)
    assert all(qualifiers(v)["error_type"] == "covariance" for v in table["dependent_variables"])


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_every_universe_is_an_error_table_variable_with_its_systematic(
    wiener: tuple[xr.Dataset, Path], convention: str
) -> None:
    ds, out = wiener
    table = load(out, f"flux_share_universes-{convention}")
    columns = table["dependent_variables"]
    assert len(columns) == ds.sizes["universe"]
    for u, variable in enumerate(columns):
        q = qualifiers(variable)
        assert (q["variable_type"], q["error_type"], q["universe"]) == (
            "error_table",
            "universes",
            u,
        )
        assert q["systematic"] == str(ds["universe_systematic"].values[u])
    per_bin = np.stack([values(v) for v in columns])
    assert_array_equal(per_bin, ds[f"xsec_{convention}"].values)
    sigma = np.stack(
        [values(v) for v in load(out, f"universes-{convention}")["dependent_variables"]]
    )
    assert_array_equal(sigma, ds[f"sigma_{convention}"].values)


def test_the_fine_nominal_flux_and_every_universe_flux_round_trip(
    csi: xr.Dataset, csi_release: Path
) -> None:
    nue = load(csi_release, "flux-nue")
    flux, node = nue["dependent_variables"]
    assert qualifiers(flux)["variable_type"] == "probe_flux"
    assert qualifiers(flux)["probe_particle"] == "nue"
    assert qualifiers(flux)["bin_content_type"] == "count"
    assert qualifiers(node)["variable_type"] == "probe_flux_node"
    pick = csi["flux_rule_flavor"].values == 12
    # the run's own 240 quadrature nodes, not its 5 systematic flux bins
    assert_array_equal(values(node), csi["flux_rule_enu"].values[pick])
    assert_array_equal(values(flux), csi["flux_rule_fluence"].values[pick])
    bins = nue["independent_variables"][0]["values"]
    assert all(b["low"] <= e < b["high"] for b, e in zip(bins, values(node), strict=True))
    ratios = load(csi_release, "flux_universes-nue")
    for variable in ratios["dependent_variables"]:
        q = qualifiers(variable)
        assert (q["error_type"], q["bin_content_type"]) == ("universes", "ratio")
        assert_array_equal(values(variable), csi["flux_ratio"].values[q["universe"], :5])


def test_response_matrix_and_chi_square_tables_round_trip(
    csi: xr.Dataset, csi_release: Path
) -> None:
    response = column(load(csi_release, "response-real"), "response")
    assert qualifiers(response)["variable_type"] == "smearing_table"
    assert_array_equal(values(response), csi["response"].values[0].ravel())
    chi2 = load(csi_release, "model_chi2")
    assert_array_equal(
        values(column(chi2, "chi2 real, with correlation")), csi["chi2_real_joint"].values
    )


def test_every_dependent_variable_of_every_table_is_typed(csi_release: Path) -> None:
    known = {
        "cross_section_measurement",
        "cross_section_prediction",
        "error_table",
        "smearing_table",
        "probe_flux",
        "probe_flux_node",
        "event_count",
        "statistic_at",
    }
    with (csi_release / "submission.yaml").open() as handle:
        documents = [d for d in yaml.safe_load_all(handle) if d and "data_file" in d]
    for document in documents:
        # a table's name is its data file's stem: NUISANCE resolves references that way
        assert document["data_file"] == f"{document['name']}.yaml"
        data = yaml.safe_load((csi_release / document["data_file"]).read_text())
        for variable in data["dependent_variables"]:
            assert qualifiers(variable).get("variable_type") in known, (document["name"], variable["header"])  # fmt: skip


def test_the_record_links_inspire_and_arxiv_and_ships_the_truth_definition(
    csi_release: Path,
) -> None:
    with (csi_release / "submission.yaml").open() as handle:
        header = next(yaml.safe_load_all(handle))
    ids = {r["type"]: r["id"] for r in header["record_ids"]}
    assert ids == {"inspire": "INSPIRE", "arXiv": "arXiv:YYMM.NNNNN"}  # placeholders
    locations = [r["location"] for r in header["additional_resources"]]
    assert "analysis.cxx" in locations and "farm_provenance.json" in locations
    measured = qualifiers(column(load(csi_release, "cross_section-real"), "cross_section"))
    function = measured["selectfunc"].partition(":")[2]
    assert (
        f"int {function}(HepMC3::GenEvent const &ev)" in (csi_release / "analysis.cxx").read_text()
    )


def test_keywords_name_the_reactions_and_the_observable(csi_release: Path) -> None:
    with (csi_release / "submission.yaml").open() as handle:
        documents = [d for d in yaml.safe_load_all(handle) if d and "data_file" in d]
    first = {k["name"]: k["values"] for k in documents[0]["keywords"]}
    assert "NUMU CSI --> NUMU CSI" in first["reactions"]
    assert first["observables"] == ["SIG"]


def test_fewer_digits_round_to_that_many_significant_figures(
    csi: xr.Dataset, tmp_path: Path
) -> None:
    write_hepdata(csi, tmp_path / "short", digits=4, archive=False)
    measured = values(column(load(tmp_path / "short", "cross_section-real"), "cross_section"))
    exact = csi["xsec_real"].values[0]
    assert_allclose(measured, exact, rtol=1e-3)
    assert not np.array_equal(measured, exact)


def test_by_default_values_keep_the_digits_their_uncertainty_justifies(
    csi: xr.Dataset, csi_auto: Path
) -> None:
    measured = column(load(csi_auto, "cross_section-real"), "cross_section")
    sigma = float(np.sqrt(csi["cov_total_real"].values[0, 0]))
    value = values(measured)[0]
    place = 10.0 ** (np.floor(np.log10(sigma)) - 2)  # the third significant digit of sigma
    assert abs(value - csi["xsec_real"].values[0, 0]) <= 0.5 * place
    assert value == pytest.approx(round(value / place) * place, rel=1e-12, abs=0)
    text = (csi_auto / "covariance-real.yaml").read_text()
    assert "e-5" not in text.replace("e-50", "")  # no 17-digit noise such as 2e-54 for a zero
    assert validate_submission(csi_auto) == []


# --- the command line --------------------------------------------------------------------------


def test_cli_writes_a_valid_submission_and_refuses_to_overwrite(
    csi: xr.Dataset, tmp_path: Path
) -> None:
    result_path = tmp_path / "r.zarr"
    publish_dataset(csi, result_path)
    out = tmp_path / "release"
    first = farm_cli(
        "export", "hepdata", result_path, "--out", out, "--no-archive", "--inspire", "1234567"
    )
    assert first.exit_code == 0, first.output
    assert "valid HEPData" in first.output
    assert validate_submission(out) == []
    assert "_Select_1234567(" in (out / "analysis.cxx").read_text()
    again = farm_cli("export", "hepdata", result_path, "--out", out)
    assert again.exit_code == 2
    assert "--overwrite" in again.output
    replaced = farm_cli("export", "hepdata", result_path, "--out", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert (tmp_path / "release.tar.gz").is_file()
