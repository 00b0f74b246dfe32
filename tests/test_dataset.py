"""The result dataset of ``farm run`` (docs/internals.md §2, issue 3 item 8): the names tools rely on,
covariances that follow their formulas and options, chi-square variables, provenance, bit-identical
reruns, and atomic publishing.

Most tests read one dataset published by ``farm run nuscope-lar`` (12 E_ν truth bins, so every
covariance is a real matrix); variants of its analysis reuse the same event store.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from click.testing import Result
from numpy.testing import assert_allclose, assert_array_equal
from typer.testing import CliRunner

import farm
from farm.analysis.pipeline import prepare
from farm.cli import app
from farm.config import FarmConfig, config_hash, examples_dir, load_config, parse_config, store_path
from farm.publish import PLAIN_BELOW_BYTES, open_published, publish_dataset, result_encoding
from farm.runner import run_inprocess
from farm.store.reader import EventStore
from farm.systematics.universes import ALL_KNOBS

SAMPLE = "nuscope-lar"
EVENTS = 60_000
UNIVERSES = 20
N_TRUTH = 12
N_RECO = 12
# 1 + 20 × (2 flux + 3 multisim knobs + bootstrap) + 2 (the ±1σ selection-efficiency unisim)
N_UNIVERSES = 1 + UNIVERSES * 6 + 2
SYSTEMATIC_GROUPS = {
    "monitored_normalization": "flux",
    "hadroproduction_shape": "flux",
    "axial_mass": "xsec",
    "non_qe_normalization": "xsec",
    "tagged_energy_scale": "detector",
    "selection_efficiency": "detector",
    "mc_statistics": "mcstat",
}


def farm_run(workdir: Path, out: Path) -> Result:
    args = ["run", SAMPLE, "--cluster", "inprocess", "--events", str(EVENTS)]
    args += ["--universes", str(UNIVERSES), "--out", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        return CliRunner(env={"COLUMNS": "200"}).invoke(app, args)


def config(**sections: dict[str, Any]) -> FarmConfig:
    data = tomllib.loads((examples_dir() / f"{SAMPLE}.toml").read_text())
    data["generation"]["events"] = EVENTS
    for section, value in sections.items():
        data.setdefault(section, {}).update(value)
    return parse_config(data, source=f"{SAMPLE} (test)")


def run(workdir: Path, cfg: FarmConfig, universes: int = UNIVERSES) -> xr.Dataset:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        return run_inprocess(cfg, universes=universes, log=lambda _: None)


def labels(ds: xr.Dataset, name: str) -> list[str]:
    """A string coordinate as str (zarr gives StringDType, memory gives object)."""
    return [str(v) for v in ds[name].values]


def rows_of(ds: xr.Dataset, systematic: str) -> np.ndarray:
    return np.flatnonzero(np.array(labels(ds, "universe_systematic")) == systematic)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dataset")


@pytest.fixture(scope="module")
def published(workdir: Path) -> Iterator[xr.Dataset]:
    out = workdir / "results" / "nuscope.zarr"
    result = farm_run(workdir, out)
    assert result.exit_code == 0, result.output
    with xr.open_zarr(out) as ds:
        yield ds.load()


# --- names and shapes --------------------------------------------------------------------------


def test_dims_are_universe_reco_bin_and_truth_bin_with_universe_0_the_central_value(
    published,
) -> None:
    ds = published
    assert ds.sizes["universe"] == N_UNIVERSES
    assert ds.sizes["reco_bin"] == N_RECO and ds.sizes["truth_bin"] == N_TRUTH
    assert_array_equal(ds["universe"].values, np.arange(N_UNIVERSES))
    systematic = labels(ds, "universe_systematic")
    assert systematic[0] == "cv" and systematic.count("cv") == 1
    assert_array_equal(ds["flux_ratio"].values[0], 1.0)
    assert_array_equal(ds["bootstrap_replica"].values[0], -1)
    for name in SYSTEMATIC_GROUPS:
        assert len(rows_of(ds, name)) == (2 if name == "selection_efficiency" else UNIVERSES)


@pytest.mark.parametrize("name", ["xsec_real", "xsec_nominal", "pred_real", "pred_nominal"])
def test_cross_sections_and_predictions_are_over_universe_and_truth_bin_in_cm2(
    published, name: str
) -> None:
    da = published[name]
    assert da.dims == ("universe", "truth_bin")
    assert da.attrs["units"] == "cm2 per target"
    # ν_μ CC on argon between 0.5 and 9 GeV: 10⁻³⁸–10⁻³⁶ cm² per nucleus and truth bin
    assert np.all((da.values > 1e-39) & (da.values < 1e-36))


@pytest.mark.parametrize("name", ["cov_real", "cov_nominal", "cov_stat_real", "cov_stat_nominal"])
def test_covariances_are_symmetric_square_over_truth_bins_with_a_positive_diagonal(
    published, name: str
) -> None:
    da = published[name]
    assert da.dims == ("truth_bin", "truth_bin_2")
    assert da.shape == (N_TRUTH, N_TRUTH)
    assert da.attrs["units"] == "cm4"
    assert_allclose(da.values, da.values.T, rtol=1e-12)
    assert np.all(np.diag(da.values) > 0)
    assert np.linalg.eigvalsh(da.values).min() > -1e-9 * np.abs(da.values).max()


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_total_covariance_adds_statistics_and_its_correlation_has_a_unit_diagonal(
    published, convention: str
) -> None:
    ds = published
    total = ds[f"cov_total_{convention}"].values
    assert_allclose(total, ds[f"cov_{convention}"].values + ds[f"cov_stat_{convention}"].values)
    sigma = np.sqrt(np.diag(total))
    assert_allclose(ds[f"corr_{convention}"].values, total / np.outer(sigma, sigma), rtol=1e-12)
    assert bool(ds[f"positive_definite_{convention}"]) is True
    assert_allclose(float(ds[f"condition_number_{convention}"]), np.linalg.cond(total), rtol=1e-6)


def test_groups_are_flux_xsec_detector_mcstat_and_each_sums_its_systematics(published) -> None:
    ds = published
    assert labels(ds, "group") == ["flux", "xsec", "detector", "mcstat"]
    assert labels(ds, "systematic") == list(SYSTEMATIC_GROUPS)
    assert ds["cov_group_real"].dims == ("group", "truth_bin", "truth_bin_2")
    for convention in ("real", "nominal"):
        per_syst = ds[f"cov_systematic_{convention}"]
        for group in ("flux", "xsec", "detector", "mcstat"):
            members = [s for s, g in SYSTEMATIC_GROUPS.items() if g == group]
            assert_allclose(
                ds[f"cov_group_{convention}"].sel(group=group).values,
                per_syst.sel(systematic=members).sum("systematic").values,
                rtol=1e-12,
            )


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_total_covariance_is_the_sum_of_the_group_covariances(published, convention: str) -> None:
    ds = published
    assert_allclose(
        ds[f"cov_{convention}"].values,
        ds[f"cov_group_{convention}"].sum("group").values,
        rtol=1e-12,
    )


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_default_covariance_is_about_the_central_value_over_n(published, convention: str) -> None:
    """V_s = (1/N_s) Σ_u (x_u − x_0)(x_u − x_0)ᵀ over the N_s universes of systematic s."""
    ds = published
    x = ds[f"xsec_{convention}"].values
    for name in SYSTEMATIC_GROUPS:
        dev = x[rows_of(ds, name)] - x[0]
        expected = dev.T @ dev / len(dev)
        got = ds[f"cov_systematic_{convention}"].sel(systematic=name).values
        assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_joint_covariance_blocks_are_the_measured_and_predicted_covariances(
    published, convention: str
) -> None:
    ds = published
    x = ds[f"xsec_{convention}"].values
    for model in labels(ds, "model"):
        joint = ds[f"joint_cov_{convention}"].sel(model=model).values
        p = ds[f"model_pred_{convention}"].sel(model=model).values
        assert_allclose(joint[:N_TRUTH, :N_TRUTH], ds[f"cov_{convention}"].values, rtol=1e-12)
        blocks = np.zeros((N_TRUTH, N_TRUTH, 2))
        for name in SYSTEMATIC_GROUPS:
            rows = rows_of(ds, name)
            dx, dp = x[rows] - x[0], p[rows] - p[0]
            blocks[..., 0] += dp.T @ dp / len(rows)
            blocks[..., 1] += dx.T @ dp / len(rows)
        scale = np.abs(joint).max()
        assert_allclose(joint[N_TRUTH:, N_TRUTH:], blocks[..., 0], rtol=1e-10, atol=1e-12 * scale)
        assert_allclose(joint[:N_TRUTH, N_TRUTH:], blocks[..., 1], rtol=1e-10, atol=1e-12 * scale)


def test_generator_prediction_is_the_first_model(published) -> None:
    ds = published
    assert labels(ds, "model") == ["generator", "llewellyn_smith_plus_noqe"]
    assert_array_equal(ds["model_pred_real"].sel(model="generator"), ds["pred_real"])
    assert_array_equal(ds["model_pred_nominal"].sel(model="generator"), ds["pred_nominal"])


@pytest.mark.parametrize("convention", ["real", "nominal"])
def test_chi2_with_and_without_the_correlation_are_the_hand_formulas(
    published, convention: str
) -> None:
    """χ² = Δᵀ (V_mm + V_pp − V_mp − V_pm + V_stat)⁻¹ Δ, or without the V_mp terms; p = P(χ²_12 ≥ χ²)."""
    ds = published
    n = N_TRUTH
    assert int(ds["chi2_dof"]) == n
    stat = ds[f"cov_stat_{convention}"].values
    delta_measured = ds[f"xsec_{convention}"].values[0]
    for model in labels(ds, "model"):
        v = ds[f"joint_cov_{convention}"].sel(model=model).values
        delta = delta_measured - ds[f"model_pred_{convention}"].sel(model=model).values[0]
        uncorrelated = v[:n, :n] + v[n:, n:] + stat
        joint = uncorrelated - v[:n, n:] - v[n:, :n]
        for kind, cov in (("joint", joint), ("uncorrelated", uncorrelated)):
            chi2 = delta @ np.linalg.solve(cov, delta)
            got = float(ds[f"chi2_{convention}_{kind}"].sel(model=model))
            assert_allclose(got, chi2, rtol=1e-8)
            pvalue = float(ds[f"pvalue_{convention}_{kind}"].sel(model=model))
            assert_allclose(pvalue, scipy.stats.chi2.sf(chi2, n), rtol=1e-6)


# --- provenance --------------------------------------------------------------------------------


def test_provenance_names_the_config_universe_set_inputs_and_software(
    published, workdir: Path
) -> None:
    ds = published
    cfg = load_config(SAMPLE, **{"generation.events": EVENTS})
    store = EventStore.open(workdir / store_path(cfg))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        universes = prepare(cfg, store, universes=UNIVERSES).universes
    assert ds.attrs["config_hash"] == config_hash(cfg)
    assert ds.attrs["universe_set_checksum"] == universes.checksum()
    assert ds.attrs["input_checksums"].split(",") == list(store.shard_checksums)
    assert ds.attrs["software_version"] == farm.__version__
    assert ds.attrs["covariance_center"] == "cv"
    assert ds.attrs["covariance_normalization"] == "n"
    assert ds.attrs["extraction_method"] == "dagostini" and ds.attrs["iterations"] == 4
    assert ds.attrs["n_events"] == EVENTS
    assert ds.attrs["universe_seed"] == 2027


# --- covariance options ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_run(workdir: Path, published) -> xr.Dataset:
    del published  # only for its store
    return run(workdir, config())


@pytest.mark.parametrize(
    ("center", "normalization"), [("mean", "n"), ("cv", "n-1"), ("mean", "n-1")]
)
def test_covariance_options_follow_their_formula_and_are_recorded(
    workdir: Path, default_run, center: str, normalization: str
) -> None:
    ds = run(
        workdir,
        config(analysis={"covariance_center": center, "covariance_normalization": normalization}),
    )
    assert ds.attrs["covariance_center"] == center
    assert ds.attrs["covariance_normalization"] == normalization
    for convention in ("real", "nominal"):
        x = ds[f"xsec_{convention}"].values
        assert_array_equal(x, default_run[f"xsec_{convention}"].values)  # same universes
        total = np.zeros((N_TRUTH, N_TRUTH))
        for name in SYSTEMATIC_GROUPS:
            values = x[rows_of(ds, name)]
            if center == "mean" and normalization == "n-1":
                expected = np.cov(values, rowvar=False)
            else:
                dev = values - (values.mean(axis=0) if center == "mean" else x[0])
                expected = dev.T @ dev / (len(values) - (normalization == "n-1"))
            got = ds[f"cov_systematic_{convention}"].sel(systematic=name).values
            assert_allclose(got, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())
            total += expected
        assert_allclose(ds[f"cov_{convention}"].values, total, rtol=1e-10)
        assert not np.allclose(
            ds[f"cov_{convention}"].values,
            default_run[f"cov_{convention}"].values,
            rtol=1e-3,
            atol=0,
        )


# --- the all-knob universe set -----------------------------------------------------------------


def test_all_knob_set_is_reported_per_systematic_but_not_added_into_the_total(
    workdir: Path, default_run
) -> None:
    ds = run(workdir, config(analysis={"all_knob_universes": 20}), universes=10)
    assert labels(ds, "systematic")[-1] == ALL_KNOBS
    assert ALL_KNOBS in labels(ds, "group")
    rows = rows_of(ds, ALL_KNOBS)
    assert len(rows) == 20 and rows[-1] == ds.sizes["universe"] - 1
    # every all-knob universe varies the flux and every knob at once
    assert np.all(np.abs(ds["flux_ratio"].values[rows, :-1] - 1).max(axis=1) > 0)
    for knob in ("ccqe_ma_mev", "noqe_norm", "energy_scale"):
        assert np.all(ds[f"knob_{knob}"].values[rows] != 0)
    for convention in ("real", "nominal"):
        per_syst = ds[f"cov_systematic_{convention}"]
        joint_set = per_syst.sel(systematic=ALL_KNOBS).values
        assert np.all(np.diag(joint_set) > 0)
        counted = per_syst.sel(systematic=list(SYSTEMATIC_GROUPS)).sum("systematic").values
        assert_allclose(ds[f"cov_{convention}"].values, counted, rtol=1e-12)
        groups = ds[f"cov_group_{convention}"]
        assert_allclose(groups.sel(group=ALL_KNOBS).values, joint_set, rtol=1e-12)
        without = groups.sel(group=[g for g in labels(ds, "group") if g != ALL_KNOBS]).sum("group")
        assert_allclose(ds[f"cov_{convention}"].values, without.values, rtol=1e-12)
        assert not np.allclose(
            ds[f"cov_{convention}"].values, groups.sum("group").values, rtol=1e-3, atol=0
        )
        joint = ds[f"joint_cov_{convention}"].sel(model="generator").values
        assert_allclose(joint[:N_TRUTH, :N_TRUTH], ds[f"cov_{convention}"].values, rtol=1e-12)
    # the all-knob set changes nothing of the per-knob universes (up to rounding: with fewer
    # throws a knob's chunk is weighted exactly per universe instead of by its expansion)
    first = rows_of(ds, "axial_mass")
    assert_allclose(
        ds["xsec_real"].values[first],
        default_run["xsec_real"].values[rows_of(default_run, "axial_mass")[:10]],
        rtol=1e-12,
    )


# --- determinism -------------------------------------------------------------------------------


def test_the_same_config_run_twice_from_scratch_publishes_bit_identical_datasets(
    published, tmp_path: Path
) -> None:
    """A second ``farm run`` in a fresh directory generates its own store and universes again."""
    result = farm_run(tmp_path, tmp_path / "again.zarr")
    assert result.exit_code == 0, result.output
    assert "generating" in result.output
    with xr.open_zarr(tmp_path / "again.zarr") as again:
        again = again.load()
    a, b = published, again
    assert set(a.data_vars) == set(b.data_vars) and len(a.data_vars) > 50
    for name in a.data_vars:
        assert a[name].dims == b[name].dims, name
        assert np.array_equal(a[name].values, b[name].values), name
    for name in a.coords:
        assert labels(a, name) == labels(b, name), name
    assert a.attrs == b.attrs


# --- atomic publishing -------------------------------------------------------------------------


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _half_written(monkeypatch: pytest.MonkeyPatch, written: list[Path]) -> None:
    """zarr's file writer runs out of space after the new version's first 20 files."""
    import zarr.storage._local as local

    put = local._put
    count = [0]

    def failing_put(path: Path, value: Any, exclusive: bool = False) -> int:
        count[0] += 1
        if count[0] > 20:  # part of the result has reached disk
            version = next(p for p in path.parents if p.name.startswith(".tmp-"))
            written.extend([version] if version not in written else [])
            raise OSError(28, "No space left on device")
        return put(path, value, exclusive=exclusive)

    monkeypatch.setattr(local, "_put", failing_put)


def test_a_failed_write_leaves_the_published_result_untouched_and_no_temporary_files(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "results" / "r.zarr"
    previous = published.isel(universe=slice(0, 3))
    publish_dataset(previous, out)
    before = _tree(tmp_path)

    written: list[Path] = []
    _half_written(monkeypatch, written)
    with pytest.raises(OSError, match="No space left"):
        publish_dataset(published, out)
    monkeypatch.undo()

    assert len(written) == 1 and not written[0].exists()  # the half-written copy is gone
    assert _tree(tmp_path) == before
    with xr.open_zarr(out) as current:
        assert current.sizes["universe"] == 3
        assert_array_equal(current["xsec_real"].values, previous["xsec_real"].values)


def test_a_failed_first_write_publishes_nothing(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "results" / "r.zarr"
    _half_written(monkeypatch, [])
    with pytest.raises(OSError, match="No space left"):
        publish_dataset(published.isel(universe=slice(0, 3)), out)
    assert not out.exists() and not out.is_symlink()
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []  # no partial copy anywhere


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_published_version_holds_the_same_files_byte_for_byte_as_to_zarr_writes(
    published, tmp_path: Path
) -> None:
    """publish encodes the store in memory and writes its files in one batch (farm.publish)."""
    ds = published.isel(universe=slice(0, 5)).copy()
    for variable in ds.variables.values():
        variable.encoding = {}  # as build_dataset makes it
    group = ds[["xsec_real", "cov_real"]]
    version = publish_dataset(ds, tmp_path / "r.zarr", groups={"samples/a": group})
    direct = tmp_path / "direct.zarr"
    ds.to_zarr(
        direct, mode="w-", consolidated=True, zarr_format=3, encoding=result_encoding(ds)
    )
    group.to_zarr(
        direct, group="samples/a", mode="w-", consolidated=True, zarr_format=3,
        encoding=result_encoding(group),
    )  # fmt: skip
    written, expected = _files(version), _files(direct)
    assert sorted(written) == sorted(expected) and len(written) > 200
    assert [k for k in expected if written[k] != expected[k]] == []


def test_small_result_arrays_are_stored_uncompressed_and_large_ones_compressed(
    published, tmp_path: Path
) -> None:
    ds = published.isel(universe=slice(0, 5)).copy()
    big = np.arange(PLAIN_BELOW_BYTES // 8 + 1, dtype=np.float64)
    ds["big"] = xr.DataArray(big, dims=["big_index"], attrs={"long_name": "a large array"})
    version = publish_dataset(ds, tmp_path / "r.zarr")

    def codecs(name: str) -> list[str]:
        meta = json.loads((version / name / "zarr.json").read_text())
        return [c["name"] for c in meta["codecs"]]

    assert codecs("cov_real") == ["bytes"]
    assert codecs("big") == ["bytes", "zstd"]
    back = open_published(tmp_path / "r.zarr")
    assert back["big"].values.tobytes() == big.tobytes()
    assert back["cov_real"].values.tobytes() == ds["cov_real"].values.tobytes()


def test_publishing_again_replaces_the_result_that_readers_open(published, tmp_path: Path) -> None:
    out = tmp_path / "r.zarr"
    publish_dataset(published.isel(universe=slice(0, 3)), out)
    publish_dataset(published.isel(universe=slice(0, 5)), out)
    with xr.open_zarr(out) as current:
        assert current.sizes["universe"] == 5
        assert_array_equal(current["xsec_real"].values, published["xsec_real"].values[:5])
    assert not [p for p in _tree(tmp_path) if "tmp" in p or ".old" in p]
