"""A dataset that explains itself (issue 15 item 5): every variable and coordinate of a published
result carries ``long_name``, ``units`` and ``description`` from one registry
(farm.analysis.metadata), bins carry lo/hi edges, the README's dataset table is the registry's,
and the public result objects print in a few lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import run_example

import farm
from farm.analysis import dataset_table
from farm.analysis.dataset_table import README_BEGIN, README_END, dimensions_of, markdown_table
from farm.analysis.metadata import describe, lookup
from farm.analysis.variables import VARIABLES
from farm.fit import FitResult, FitSettings, fit
from farm.fit.dataset import fit_dataset
from farm.fit.metadata import describe_fit

README = Path(__file__).resolve().parents[1] / "README.md"
EVENTS = 40_000
UNIVERSES = 10


@pytest.fixture(scope="module")
def nuscope(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    """12 E_ν truth bins, knobs in MeV and fractions."""
    return run_example(tmp_path_factory, "nuscope-lar", events=EVENTS, universes=UNIVERSES)


@pytest.fixture(scope="module")
def csi(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    """One flux-averaged total bin, readout in photoelectrons."""
    return run_example(tmp_path_factory, "sns-csi", events=EVENTS, universes=UNIVERSES)


@pytest.fixture(params=["nuscope", "csi"])
def result(request: pytest.FixtureRequest) -> xr.Dataset:
    return request.getfixturevalue(request.param)


def test_every_variable_and_coordinate_has_a_long_name_units_and_a_description(
    result: xr.Dataset,
) -> None:
    missing = [
        (str(name), key)
        for name in result.variables
        for key in ("long_name", "units", "description")
        if not str(result[name].attrs.get(key, "")).strip()
    ]
    assert not missing
    # and they are the registry's, with the result's own units filled in
    for name in result.variables:
        assert lookup(str(name)) is not None, name
        assert "{" not in result[name].attrs["units"] + result[name].attrs["long_name"], name


def test_units_follow_the_result_target_and_axes(nuscope: xr.Dataset, csi: xr.Dataset) -> None:
    for c in ("real", "nominal"):
        assert nuscope[f"sigma_{c}"].attrs["units"] == "cm2 per Ar nucleus"
        for name in (f"cov_total_sigma_{c}", f"cov_sigma_{c}", f"cov_group_sigma_{c}"):
            assert nuscope[name].attrs["units"] == "(cm2 per Ar nucleus)^2"
        for name in (f"cov_total_{c}", f"cov_group_{c}", f"cov_systematic_{c}", f"joint_cov_{c}"):
            assert nuscope[name].attrs["units"] == "cm4"
        assert nuscope[f"model_pred_{c}"].attrs["units"] == "cm2 per target"
    assert nuscope["knob_ccqe_ma_mev"].attrs["units"] == "MeV"  # an absolute shift in MeV
    assert nuscope["knob_noqe_norm"].attrs["units"] == "1"  # a fractional one
    assert csi["knob_threshold"].attrs["units"] == "PE"  # in readout units: photoelectrons
    assert nuscope["truth_lo"].attrs["units"] == "MeV" and csi["reco_lo"].attrs["units"] == "PE"
    assert csi["truth_bin"].attrs["units"] == "1"  # one total bin is an index


def test_reco_and_truth_bins_carry_their_edges(result: xr.Dataset) -> None:
    reco = result["reco_edges"].values
    np.testing.assert_array_equal(result["reco_lo"].values, reco[:-1])
    np.testing.assert_array_equal(result["reco_hi"].values, reco[1:])
    assert result["reco_lo"].dims == ("reco_bin",)
    if "truth_lo" in result.coords:
        truth = result["truth_edges"].values
        np.testing.assert_array_equal(result["truth_lo"].values, truth[:-1])
        np.testing.assert_array_equal(result["truth_hi"].values, truth[1:])


def test_the_dimensions_the_readme_states_are_those_of_the_dataset(result: xr.Dataset) -> None:
    for name in result.variables:
        found = lookup(str(name))
        assert found is not None
        key = next(k for k, m in VARIABLES.items() if m is found[0])
        assert dimensions_of(key) == result[name].dims, name


def test_a_variable_without_metadata_is_refused(nuscope: xr.Dataset) -> None:
    ds = nuscope.assign(mystery=(("truth_bin",), np.zeros(nuscope.sizes["truth_bin"])))
    with pytest.raises(KeyError, match="mystery"):
        describe(ds)


def test_the_readme_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert README_BEGIN in text and README_END in text
    start = text.index(README_BEGIN) + len(README_BEGIN)
    committed = text[start : text.index(README_END)].strip()
    assert committed == markdown_table().strip(), (
        "README.md's dataset table is stale: run `python3 -m farm.analysis.dataset_table --write README.md`"
    )
    # what a user wants is in it
    for name in ("`cov_total_sigma_‹c›`", "`sigma_‹c›`", "`reco_lo`", "`joint_cov_‹c›`"):
        assert name in committed


def test_the_table_writer_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "README.md"
    page.write_text(f"before\n{README_BEGIN}\nstale rows\n{README_END}\nafter\n", encoding="utf-8")
    assert dataset_table.main(["--write", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith(f"{README_END}\nafter\n")
    assert "stale rows" not in text and markdown_table() in text


# --- short representations ---------------------------------------------------------------------


def test_a_comparison_prints_in_three_lines_with_its_chi_squares(nuscope: xr.Dataset) -> None:
    c = farm.compare(nuscope, "farm.models:numu_cc_argon")
    text = repr(c)
    assert len(text.splitlines()) == 3 and len(text) < 400
    assert f"{c.real.joint.chi2:.4g} / {c.real.joint.dof}" in text
    assert f"{c.nominal.uncorrelated.chi2:.4g}" in text
    assert "nuscope-lar" in text and f"{c.n_universes} universes" in text
    assert len(repr(c.real)) < 300


@pytest.fixture(scope="module")
def sin2w_fit(csi: xr.Dataset) -> FitResult:
    """A small fit with Feldman–Cousins toys, so that every variable of a fit dataset exists."""
    settings = FitSettings(toys=20, grid=21, fc_points=3, block=20)
    return fit(csi, "farm.models:cevns", ["sin2w"], settings=settings)


def test_every_variable_of_a_fit_dataset_has_metadata(sin2w_fit: FitResult) -> None:
    ds = fit_dataset(sin2w_fit, result="r.zarr", model="farm.models:cevns")
    assert {"fc_toys_sin2w", "profile_sin2w", "grid_sin2w", "best_fit"} <= set(ds.variables)
    missing = [
        str(name)
        for name in ds.variables
        if not all(ds[name].attrs.get(k) for k in ("long_name", "units", "description"))
    ]
    assert missing == []
    assert ds["grid_sin2w"].attrs["long_name"] == "grid of sin2w"
    with pytest.raises(KeyError, match="mystery"):
        describe_fit(ds.assign(mystery=((), 1.0)), ("sin2w",))


def test_a_fit_prints_its_best_fit_and_intervals_without_arrays(sin2w_fit: FitResult) -> None:
    r = sin2w_fit
    text = repr(r)
    assert len(text.splitlines()) <= 2 + len(r.settings.cls) and len(text) < 800
    assert f"sin2w = {r.best.values[0]:.6g}" in text
    lo, hi = r.wilks[0, 0]
    assert f"[{lo:.4g}, {hi:.4g}]" in text
    lo, hi = r.fc[0].intervals[0]
    assert f"Feldman–Cousins [{lo:.4g}, {hi:.4g}]" in text
    assert "array(" not in text and "array(" not in repr(r.problem)
