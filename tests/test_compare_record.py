"""``farm compare RECORD``: a model against a HEPData record in the NUISANCE conventions.

Records are written with hepdata_lib (tests/nuisance_record.py): a ν_μ CC measurement on argon in
three E_ν bins, per nucleon in 1e-38 cm², with a ν_μ flux given as a density per GeV. The
chi-square is checked against an independent (x − A p)ᵀ C⁻¹ (x − A p) computed here from the
same numbers, for σ(E) = a·E, which four Gauss–Legendre points per flux bin integrate exactly.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import farm_cli
from nuisance_record import FluxSpec, MeasurementSpec, write_record
from numpy.testing import assert_allclose

from farm.compare_record import compare_record

EDGES = [0.5, 1.0, 2.0, 3.0]
FLUX_EDGES = [0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0]
DENSITY = [4.0, 6.0, 5.0, 3.0, 1.5, 0.5]  # ν / cm² / GeV
SLOPE = 0.7  # σ / E per nucleon, 1e-38 cm² / GeV
ARGON = 40
COV = np.array([[0.010, 0.004, 0.001], [0.004, 0.030, 0.006], [0.001, 0.006, 0.050]])
A_C = np.array([[0.9, 0.2, 0.0], [0.1, 0.7, 0.1], [0.0, 0.1, 0.9]])  # not symmetric
MEASURED = [0.95, 1.12, 1.70]


def linear(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
    """σ per Ar nucleus: SLOPE × 1e-38 cm²/GeV per nucleon × 40 nucleons."""
    del flavor
    return SLOPE * 1e-38 * ARGON * np.asarray(enu_mev) / 1000.0


def _flux_integrals() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per flux bin: ∫ F dE and ∫ F E dE (GeV), and its measurement bin."""
    lo, hi, d = np.array(FLUX_EDGES[:-1]), np.array(FLUX_EDGES[1:]), np.array(DENSITY)
    bins = np.searchsorted(EDGES, lo, side="right") - 1
    return d * (hi - lo), d * (hi**2 - lo**2) / 2, bins


def expected_mean_sigma() -> np.ndarray:
    """⟨σ⟩_j = ∫_j F σ / ∫_j F per nucleon in 1e-38 cm²: SLOPE × the flux-averaged E in bin j."""
    flux, moment, bins = _flux_integrals()
    return SLOPE * np.bincount(bins, moment) / np.bincount(bins, flux)


def expected_flux_share_density() -> np.ndarray:
    """(∫_j F σ / Φ) / ΔE_j, per nucleon in 1e-38 cm² / GeV."""
    flux, moment, bins = _flux_integrals()
    return SLOPE * np.bincount(bins, moment) / flux.sum() / np.diff(EDGES)


def chi2(x: np.ndarray, p: np.ndarray, cov: np.ndarray) -> float:
    d = np.asarray(x) - p
    return float(d @ np.linalg.solve(cov, d))


FLUX = FluxSpec(edges_gev=FLUX_EDGES, density_per_gev=DENSITY)


@pytest.fixture
def record(tmp_path: Path) -> Path:
    spec = MeasurementSpec(
        name="enu", edges_gev=EDGES, values=MEASURED, covariance=COV, smearing=A_C
    )
    return write_record(tmp_path / "record", [spec], FLUX)


# --- the chi-square is (x − A p)ᵀ C⁻¹ (x − A p) -----------------------------------------------


def test_the_chi2_is_the_independent_one_with_the_additional_smearing_applied(record: Path) -> None:
    result = compare_record(record, linear).table("cross_section-enu")
    p = A_C @ expected_mean_sigma()
    assert_allclose(result.predicted, p, rtol=1e-12, atol=0)
    assert result.chi2.chi2 == pytest.approx(chi2(MEASURED, p, COV), rel=1e-12, abs=0)
    assert result.chi2.dof == 3
    assert 0 < result.chi2.pvalue < 1
    assert result.joint is None  # no universes published


def test_the_smearing_is_applied_as_published_not_transposed(tmp_path: Path) -> None:
    spec = MeasurementSpec(
        name="enu", edges_gev=EDGES, values=MEASURED, covariance=COV, smearing=A_C.T
    )
    transposed = compare_record(write_record(tmp_path / "t", [spec], FLUX), linear).measurements[0]
    assert_allclose(transposed.predicted, A_C.T @ expected_mean_sigma(), rtol=1e-12, atol=0)
    assert not np.allclose(transposed.predicted, A_C @ expected_mean_sigma(), rtol=1e-3, atol=0)


@pytest.mark.parametrize("form", ["directory", "submission.yaml", "zip", "tar.gz"])
def test_a_record_is_read_from_its_directory_its_submission_yaml_or_an_archive(
    record: Path, tmp_path: Path, form: str
) -> None:
    if form == "submission.yaml":
        path = record / "submission.yaml"
    elif form == "zip":
        path = tmp_path / "record.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for f in record.iterdir():
                archive.write(f, f"HEPData-ins0-v1/{f.name}")
    elif form == "tar.gz":
        path = tmp_path / "record.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            for f in record.iterdir():
                archive.add(f, arcname=f.name)
    else:
        path = record
    p = A_C @ expected_mean_sigma()
    assert compare_record(path, linear).measurements[0].chi2.chi2 == pytest.approx(
        chi2(MEASURED, p, COV), rel=1e-12, abs=0
    )


def test_a_flux_averaged_density_in_e_nu_is_the_flux_share_per_unit_energy(tmp_path: Path) -> None:
    spec = MeasurementSpec(
        name="density",
        edges_gev=EDGES,
        values=[0.5, 0.6, 0.2],
        covariance=COV,
        measurement_type="flux_averaged_differential_cross_section",
        units="1e-38 cm2|PerTargetNucleon|per_bin_width",
        header_units="10^{-38} cm^2 / GeV / nucleon",
    )
    result = compare_record(write_record(tmp_path / "d", [spec], FLUX), linear).measurements[0]
    assert_allclose(result.predicted, expected_flux_share_density(), rtol=1e-12, atol=0)


def test_without_cross_section_units_the_header_units_are_read(tmp_path: Path) -> None:
    spec = MeasurementSpec(
        name="header",
        edges_gev=EDGES,
        values=[0.5, 0.6, 0.2],
        covariance=COV,
        measurement_type="flux_averaged_differential_cross_section",
        units=None,
        header_units="10^{-38} cm^2 / GeV / nucleon",
    )
    result = compare_record(write_record(tmp_path / "h", [spec], FLUX), linear).measurements[0]
    assert result.measurement.units.scaling == "pertargetnucleon"
    assert_allclose(result.predicted, expected_flux_share_density(), rtol=1e-12, atol=0)


def test_per_bin_errors_make_a_diagonal_covariance(tmp_path: Path) -> None:
    errors = [
        {"label": "stat", "values": [0.1, 0.2, 0.1]},
        {"label": "syst", "values": [(-0.05, 0.15), (-0.1, 0.1), (-0.2, 0.2)], "symmetric": False},
    ]
    spec = MeasurementSpec(name="diag", edges_gev=EDGES, values=MEASURED, errors=errors)
    result = compare_record(write_record(tmp_path / "e", [spec], FLUX), linear).measurements[0]
    variance = np.array([0.1**2 + 0.1**2, 0.2**2 + 0.1**2, 0.1**2 + 0.2**2])
    assert result.chi2.chi2 == pytest.approx(
        chi2(MEASURED, expected_mean_sigma(), np.diag(variance)), rel=1e-12, abs=0
    )


@pytest.mark.parametrize(
    "error_type", ["fractional_covariance", "correlation", "inverse_covariance"]
)
def test_every_error_type_gives_the_covariance_back(tmp_path: Path, error_type: str) -> None:
    x = np.array(MEASURED)
    sigma = np.sqrt(np.diag(COV))
    matrix = {
        "fractional_covariance": COV / np.outer(x, x),
        "correlation": COV / np.outer(sigma, sigma),
        "inverse_covariance": np.linalg.inv(COV),
    }[error_type]
    errors = [{"label": "total", "values": sigma.tolist()}]
    spec = MeasurementSpec(
        name="t",
        edges_gev=EDGES,
        values=MEASURED,
        covariance=matrix,
        error_type=error_type,
        errors=errors,
    )
    result = compare_record(write_record(tmp_path / "r", [spec], FLUX), linear).measurements[0]
    assert_allclose(result.measurement.covariance, COV, rtol=1e-9, atol=0)


# --- universes: the joint measured–predicted chi-square -----------------------------------------


def test_with_universes_the_joint_chi2_uses_the_prediction_in_every_flux_universe(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    n_universes = 40
    ratios = np.ones((n_universes, len(DENSITY)))
    tilt = np.linspace(-1, 1, len(DENSITY))
    ratios[1:] = 1 + 0.1 * rng.normal(size=(n_universes - 1, 1)) * tilt  # harder or softer
    # the measured ⟨σ⟩ moves against the flux in its bin: N_j / Φ_j,u
    flux, _, bins = _flux_integrals()
    per_bin = np.stack([np.bincount(bins, flux * r) for r in ratios])
    universes = np.array(MEASURED) * per_bin[0] / per_bin
    systematic = ["cv"] + ["flux"] * (n_universes - 1)
    syst = (universes[1:] - universes[0]).T @ (universes[1:] - universes[0]) / (n_universes - 1)
    total = syst + np.diag([0.004, 0.01, 0.02])
    spec = MeasurementSpec(
        name="joint",
        edges_gev=EDGES,
        values=MEASURED,
        covariance=total,
        universes=universes,
        universe_systematic=systematic,
        flux_universes=ratios,
        measurement_type="flux_averaged_differential_cross_section",
        units="1e-38 cm2|PerTargetNucleon",
        header_units="10^{-38} cm^2 / nucleon",
    )
    result = compare_record(write_record(tmp_path / "j", [spec], FLUX), linear).measurements[0]
    # independent: the flux share in every universe, S_j,u = ∫_j F_u σ / Φ_u
    _, moment, _ = _flux_integrals()
    p = np.stack([SLOPE * np.bincount(bins, moment * r) / (flux * r).sum() for r in ratios])
    d_m, d_p = universes[1:] - universes[0], p[1:] - p[0]
    vpp, vmp = d_p.T @ d_p / (n_universes - 1), d_m.T @ d_p / (n_universes - 1)
    assert_allclose(result.predicted_universes, p, rtol=1e-12, atol=0)
    delta = np.array(MEASURED) - p[0]
    assert result.joint is not None and result.uncorrelated is not None
    assert result.joint.chi2 == pytest.approx(
        chi2(delta, 0, total + vpp - vmp - vmp.T), rel=1e-10, abs=0
    )
    assert result.uncorrelated.chi2 == pytest.approx(chi2(delta, 0, total + vpp), rel=1e-10, abs=0)
    assert result.chi2.chi2 == pytest.approx(chi2(delta, 0, total), rel=1e-10, abs=0)


# --- prediction files ----------------------------------------------------------------------------


def test_a_prediction_file_in_csv_or_yaml_is_compared_after_a_c(
    record: Path, tmp_path: Path
) -> None:
    p = expected_mean_sigma()
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(
        "# units: 1e-38 cm2|PerTargetNucleon\nbin,value\n"
        + "".join(f"{j},{float(v)!r}\n" for j, v in enumerate(p))
    )
    yaml_path = tmp_path / "p.yaml"
    yaml_path.write_text(f"units: 1e-38 cm2|PerTargetNucleon\nvalues: {json.dumps(p.tolist())}\n")
    expected = chi2(MEASURED, A_C @ p, COV)
    for path in (csv_path, yaml_path):
        result = compare_record(record, prediction=path).measurements[0]
        assert result.chi2.chi2 == pytest.approx(expected, rel=1e-12, abs=0)


# --- refusals ------------------------------------------------------------------------------------


def test_a_record_without_a_covariance_is_refused(tmp_path: Path) -> None:
    spec = MeasurementSpec(name="none", edges_gev=EDGES, values=MEASURED)
    with pytest.raises(ValueError, match=r"has no covariance .* no per-bin errors"):
        compare_record(write_record(tmp_path / "n", [spec], FLUX), linear)


def test_a_covariance_of_another_size_is_refused(tmp_path: Path) -> None:
    spec = MeasurementSpec(name="size", edges_gev=EDGES, values=MEASURED, covariance=np.eye(2))
    with pytest.raises(
        ValueError, match=r"4 entries for a 3-bin measurement .*bin counts do not match"
    ):
        compare_record(write_record(tmp_path / "s", [spec], FLUX), linear)


def test_a_prediction_with_another_number_of_bins_is_refused(record: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.yaml"
    path.write_text("values: [1.0, 2.0]\n")
    with pytest.raises(ValueError, match="has 2 values but cross_section-enu has 3 bins"):
        compare_record(record, prediction=path)


def test_a_prediction_in_other_units_is_refused(record: Path, tmp_path: Path) -> None:
    path = tmp_path / "pb.yaml"
    path.write_text("units: pb|PerTarget\nvalues: [1.0, 2.0, 3.0]\n")
    with pytest.raises(ValueError, match="the units do not match"):
        compare_record(record, prediction=path)


def test_header_units_that_contradict_the_cross_section_units_are_refused(tmp_path: Path) -> None:
    spec = MeasurementSpec(
        name="u", edges_gev=EDGES, values=MEASURED, covariance=COV, header_units="pb / nucleon"
    )
    with pytest.raises(
        ValueError, match=r"header units 'pb / nucleon' and cross_section_units .* do not match"
    ):
        compare_record(write_record(tmp_path / "u", [spec], FLUX), linear)


def test_an_unknown_units_flag_is_refused(tmp_path: Path) -> None:
    spec = MeasurementSpec(
        name="f",
        edges_gev=EDGES,
        values=MEASURED,
        covariance=COV,
        units="1e-38 cm2|PerMolecule",
        header_units="",
    )
    with pytest.raises(ValueError, match="unknown flag 'PerMolecule'"):
        compare_record(write_record(tmp_path / "f", [spec], FLUX), linear)


def test_a_differential_model_on_energy_bins_asks_for_sigma_of_e(record: Path) -> None:
    def dsigma(enu_mev: np.ndarray, x: np.ndarray, flavor: str) -> np.ndarray:
        return np.ones(np.broadcast_shapes(np.shape(enu_mev), np.shape(x)))

    with pytest.raises(ValueError, match="use --kind xsec"):
        compare_record(record, dsigma, kind="dxsec")


# --- the command line ----------------------------------------------------------------------------


def test_cli_compares_a_record_and_prints_json(record: Path) -> None:
    result = farm_cli("compare", record, "--model", f"{__name__}:linear", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    table = out["tables"][0]
    assert table["table"] == "cross_section-enu"
    assert table["chi2"] == pytest.approx(
        chi2(MEASURED, A_C @ expected_mean_sigma(), COV), rel=1e-12, abs=0
    )
    assert table["dof"] == 3 and table["smearing"] is True


def test_cli_prints_the_chi2_table_of_a_record(record: Path) -> None:
    result = farm_cli("compare", record, "--model", f"{__name__}:linear")
    assert result.exit_code == 0, result.output
    assert "cross_section-enu" in result.output and "χ² (record covariance)" in result.output


def test_cli_refuses_a_record_without_covariance_with_a_message(tmp_path: Path) -> None:
    spec = MeasurementSpec(name="none", edges_gev=EDGES, values=MEASURED)
    path = write_record(tmp_path / "n", [spec], FLUX)
    result = farm_cli("compare", path, "--model", f"{__name__}:linear")
    assert result.exit_code == 2
    assert "no covariance" in result.output and "Traceback" not in result.output


def test_a_directory_that_is_neither_a_result_nor_a_record_is_refused_clearly(
    tmp_path: Path,
) -> None:
    shutil.rmtree(tmp_path / "empty", ignore_errors=True)
    (tmp_path / "empty").mkdir()
    result = farm_cli("compare", tmp_path / "empty", "--model", f"{__name__}:linear")
    assert result.exit_code == 2
    assert "No group found" not in result.output


def test_a_record_comparison_prints_one_line_per_measurement(record: Path) -> None:
    result = compare_record(record, linear)
    text = repr(result)
    m = result.measurements[0]
    assert len(text.splitlines()) == 1 + len(result.measurements)
    assert f"{m.chi2.chi2:.4g} / {m.chi2.dof}" in text and "cross_section-enu" in text
    assert "array(" not in text and len(text) < 400
