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


@pytest.fixture(scope="module")
def csi_release(csi: xr.Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hepdata") / "sns-csi"
    write_hepdata(csi, out)
    return out


@pytest.fixture(scope="module")
def wiener(tmp_path_factory: pytest.TempPathFactory) -> tuple[xr.Dataset, Path]:
    """nuscope-lar (12 E_ν bins) unfolded with Wiener-SVD, and its release."""
    ds = run_sample(tmp_path_factory, "nuscope-lar", method="wiener-svd")
    out = tmp_path_factory.mktemp("hepdata") / "nuscope"
    write_hepdata(ds, out, archive=False)
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
    measured = column(load(out, "Real-flux cross section"), "SIG")
    qualifiers = {q["name"]: q["value"] for q in measured["qualifiers"]}
    assert qualifiers["smearing"] == "Real-flux additional smearing A_C"
    a_c = values(column(load(out, "Real-flux additional smearing A_C"), "A_C"))
    assert_array_equal(a_c.reshape(12, 12), ds["additional_smearing_real"].values)


# --- the numbers are the dataset's -------------------------------------------------------------


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_measured_cross_section_and_errors_round_trip_exactly(
    csi: xr.Dataset, csi_release: Path, convention: str
) -> None:
    short = convention.capitalize()
    measured = column(load(csi_release, f"{short}-flux cross section"), "SIG")
    assert measured["header"]["units"] == "cm^2 per target"
    assert_array_equal(values(measured), csi[f"xsec_{convention}"].values[0])
    errors = {e["label"]: e["symerror"] for e in measured["values"][0]["errors"]}
    assert errors["stat"] == np.sqrt(csi[f"cov_stat_{convention}"].values[0, 0])
    # the per-group errors add up, in quadrature, to the total systematic covariance
    syst = sum(v**2 for k, v in errors.items() if k.startswith("sys,"))
    assert syst == pytest.approx(csi[f"cov_{convention}"].values[0, 0], rel=1e-12, abs=0)


def test_the_convention_is_stated_with_the_measurement(csi_release: Path) -> None:
    for convention in ("Real", "Nominal"):
        measured = column(load(csi_release, f"{convention}-flux cross section"), "SIG")
        qualifiers = {q["name"]: q["value"] for q in measured["qualifiers"]}
        assert qualifiers["convention"].startswith(f"{convention.lower()}-flux-averaged")
        assert qualifiers["errors"] == f"{convention}-flux covariance"
        assert qualifiers["cross_section_units"] == "cm2|PerTarget"
        assert qualifiers["target"] == "CsI"


def test_covariances_total_stat_and_per_group_round_trip(
    wiener: tuple[xr.Dataset, Path],
) -> None:
    ds, out = wiener
    table = load(out, "Nominal-flux covariance")
    assert_array_equal(
        values(column(table, "Covariance total")).reshape(12, 12), ds["cov_total_nominal"].values
    )
    assert_array_equal(
        values(column(table, "Covariance stat")).reshape(12, 12), ds["cov_stat_nominal"].values
    )
    for k, group in enumerate(ds["group"].values):
        assert_array_equal(
            values(column(table, f"Covariance group {group}")).reshape(12, 12),
            ds["cov_group_nominal"].values[k],
        )
    i = values(table["independent_variables"][0])
    j = values(table["independent_variables"][1])
    assert (i[13], j[13]) == (1, 1)


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_every_universe_is_a_row_with_its_systematic_and_its_cross_section(
    wiener: tuple[xr.Dataset, Path], convention: str
) -> None:
    ds, out = wiener
    table = load(out, f"{convention.capitalize()}-flux universes")
    universe, systematic = table["independent_variables"]
    assert_array_equal(values(universe), np.arange(ds.sizes["universe"]))
    assert list(values(systematic)) == [str(s) for s in ds["universe_systematic"].values]
    per_bin = np.stack([values(column(table, f"SIG bin {j}")) for j in range(12)], axis=1)
    assert_array_equal(per_bin, ds[f"xsec_{convention}"].values)


def test_the_nominal_flux_per_flavour_and_every_universe_flux_round_trip(
    csi: xr.Dataset, csi_release: Path
) -> None:
    nue = load(csi_release, "Flux nue")
    edges = [(v["low"], v["high"]) for v in nue["independent_variables"][0]["values"]]
    assert edges == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 40.0), (40.0, 53.0)]
    flux = column(nue, "Flux nue")
    assert {q["name"]: q["value"] for q in flux["qualifiers"]}["probe_particle"] == "nue"
    assert_array_equal(values(flux), csi["flux"].values[0, :5])
    universes = load(csi_release, "Flux universes")
    assert_array_equal(
        values(column(universes, "Integrated flux Phi")), csi["integrated_flux"].values
    )
    assert_array_equal(
        values(column(universes, "Flux ratio nue:0-10")), csi["flux_ratio"].values[:, 0]
    )


def test_smearing_matrix_and_chi_square_tables_round_trip(
    csi: xr.Dataset, csi_release: Path
) -> None:
    smearing = values(column(load(csi_release, "Real-flux smearing"), "Smearing"))
    assert_array_equal(smearing, csi["response"].values[0].ravel())
    chi2 = load(csi_release, "Model chi-square")
    assert_array_equal(
        values(column(chi2, "chi2 real, with correlation")), csi["chi2_real_joint"].values
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
    measured = values(column(load(tmp_path / "short", "Real-flux cross section"), "SIG"))
    exact = csi["xsec_real"].values[0]
    assert_allclose(measured, exact, rtol=1e-3)
    assert not np.array_equal(measured, exact)


# --- the command line --------------------------------------------------------------------------


def test_cli_writes_a_valid_submission_and_refuses_to_overwrite(
    csi: xr.Dataset, tmp_path: Path
) -> None:
    result_path = tmp_path / "r.zarr"
    publish_dataset(csi, result_path)
    out = tmp_path / "release"
    first = farm_cli("export", "hepdata", result_path, "--out", out, "--no-archive")
    assert first.exit_code == 0, first.output
    assert "valid HEPData" in first.output
    assert validate_submission(out) == []
    again = farm_cli("export", "hepdata", result_path, "--out", out)
    assert again.exit_code == 2
    assert "--overwrite" in again.output
    replaced = farm_cli("export", "hepdata", result_path, "--out", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert (tmp_path / "release.tar.gz").is_file()
