"""Multi-sample measurements (issue 14, items 1-2): several samples in one plan, one dataset.

Two small samples (SNS CsI and Ar, 20 000 events each, no neutrino-induced neutrons so that the
flux normalisation moves nothing but Φ) share the flux normalisation (5 %, 400 throws) and keep
their quenching knob and bootstrap to themselves. In the real-flux convention a pure
normalisation throw δ_u gives x_u = x_0 / (1 + δ_u) in every sample (the response and the
background do not move), so the cross-sample covariance it makes is, exactly,

    V_ab = x_a x_b · (1/N) Σ_u g_u²,   g_u = 1/(1 + δ_u) − 1,

with correlation 1, and V_ab / (x_a x_b σ²) → 1 as N grows (to O(σ²)).
"""

from __future__ import annotations

import json
import shutil
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from conftest import assert_bit_identical, farm_cli, toml_text

from farm.cluster import ClusterOptions
from farm.config import ConfigError, examples_dir
from farm.measurement import load_measurement, run_measurement

EVENTS = 20_000
SIGMA = 0.05
THROWS = 400


def _sample(name: str, root: Path, stores: Path, **changes: Any) -> Path:
    data = tomllib.loads((examples_dir() / f"{name}.toml").read_text())
    data["sample"]["store"] = str(stores / f"{name}.zarr")
    data["generation"]["events"] = EVENTS
    data["backgrounds"]["lead_mass_kg"] = 0.0  # no NIN: the flux moves no background
    data["systematics"] = [
        {"name": "flux_normalization", "kind": "flux", "normalization": SIGMA, "throws": THROWS},
        {
            "name": "quenching",
            "kind": "knob",
            "parameter": "quenching",
            "sigma": 0.05,
            "throws": 20,
        },
        {"name": "mc_statistics", "kind": "bootstrap", "throws": 20},
    ]
    for key, value in changes.items():
        data[key] = value
    path = root / f"{name}.toml"
    path.write_text(toml_text(data))
    return path


def _measurement(root: Path, stores: Path, **measurement: Any) -> Path:
    a = _sample("sns-csi", root, stores)
    b = _sample("sns-lar", root, stores)
    table = {"name": "csi-ar", "shared": ["flux_normalization"]} | measurement
    path = root / "joint.toml"
    path.write_text(
        toml_text({"measurement": table, "samples": [{"config": a.name}, {"config": b.name}]})
    )
    return path


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("joint")
    return _measurement(root, root / "stores")


@pytest.fixture(scope="module")
def joint(project: Path) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    ds, samples, stats = run_measurement(
        load_measurement(project), ClusterOptions(kind="inprocess"), log=_quiet
    )
    assert stats.computed == stats.items > 0
    return ds, samples


def _rows(ds: xr.Dataset, name: str) -> np.ndarray:
    return np.flatnonzero(ds["universe_systematic"].values == name)


def test_shared_names_see_the_same_throws_and_the_others_their_own(joint) -> None:
    ds, samples = joint
    csi, ar = samples["sns-csi"], samples["sns-lar"]
    rows = _rows(csi, "flux_normalization")
    assert rows.size == THROWS
    assert np.array_equal(csi["flux_ratio"].values[rows], ar["flux_ratio"].values[rows])
    # independent: each sample's knob is thrown under its own name, so its values differ
    knob_csi = csi["knob_quenching"].values[_rows(csi, "sns-csi/quenching")]
    knob_ar = ar["knob_quenching"].values[_rows(ar, "sns-lar/quenching")]
    assert knob_csi.size == knob_ar.size == 20
    assert not np.any(knob_csi == knob_ar)
    names = [str(s) for s in ds["systematic"].values]
    shared = dict(zip(names, ds["systematic_shared"].values, strict=True))
    assert shared == {
        "flux_normalization": True,
        "sns-csi/quenching": False,
        "sns-csi/mc_statistics": False,
        "sns-lar/quenching": False,
        "sns-lar/mc_statistics": False,
    }
    for name in names:
        if not shared[name]:  # no cross-sample block: exactly zero
            cov = ds["cov_systematic_real"].sel(systematic=name).values
            assert not cov[0, 1] and not cov[1, 0]


def test_cross_sample_correlation_of_the_shared_normalisation_is_analytic(joint) -> None:
    ds, samples = joint
    csi = samples["sns-csi"]
    delta = csi["flux_ratio"].values[_rows(csi, "flux_normalization"), 0] - 1.0
    x = ds["xsec_real"].values
    cov = ds["cov_systematic_real"].sel(systematic="flux_normalization").values
    expected = x[0] * x[1] * np.mean((1.0 / (1.0 + delta) - 1.0) ** 2)
    assert cov[0, 1] == pytest.approx(expected, rel=1e-10, abs=0)
    assert cov[1, 0] == cov[0, 1]
    rho = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert rho == pytest.approx(1.0, abs=1e-12)
    # and against the declared σ: V_ab / (x_a x_b σ²) = 1 + O(σ²) within the MC error of N throws
    ratio = cov[0, 1] / (x[0] * x[1] * SIGMA**2)
    assert abs(ratio - 1.0) < 4 * np.sqrt(2.0 / THROWS) + 4 * SIGMA**2
    # it is the correlation the dataset's correlation matrices show
    assert ds["cov_cross_sample_real"].values[0, 1] == pytest.approx(cov[0, 1], rel=1e-12, abs=0)


def test_diagonal_blocks_are_the_samples_own_results_bit_for_bit(joint) -> None:
    ds, samples = joint
    first = 0
    for label in ds["sample"].values:
        own = samples[str(label)]
        n = own.sizes["truth_bin"]
        block = slice(first, first + n)
        for c in ("real", "nominal"):
            assert ds[f"cov_{c}"].values[block, block].tobytes() == own[f"cov_{c}"].values.tobytes()
            assert (
                ds[f"cov_stat_{c}"].values[block, block].tobytes()
                == own[f"cov_stat_{c}"].values.tobytes()
            )
            assert ds[f"xsec_{c}"].values[block].tobytes() == own[f"xsec_{c}"].values[0].tobytes()
        first += n


def _independent_joint_chi2(samples: dict[str, xr.Dataset]) -> tuple[float, float]:
    """χ² of the generator over both samples, from the universes alone: (with the cross-sample
    blocks, without them)."""
    labels = list(samples)
    x = [samples[k]["xsec_real"].values for k in labels]
    p = [samples[k]["model_pred_real"].sel(model="generator").values for k in labels]
    n = [v.shape[1] for v in x]
    offsets = np.concatenate([[0], np.cumsum(n)])
    total_bins = int(offsets[-1])
    names = list(dict.fromkeys(str(s) for k in labels for s in samples[k]["systematic"].values))
    cov = np.zeros((2 * total_bins, 2 * total_bins))
    cov_diag = np.zeros_like(cov)
    for name in names:
        holders = [k for k, lab in enumerate(labels) if name in samples[lab]["systematic"].values]
        rows = {k: _rows(samples[labels[k]], name) for k in holders}
        count = len(next(iter(rows.values())))
        dev = np.zeros((count, 2 * total_bins))
        for k in holders:
            m = slice(offsets[k], offsets[k + 1])
            q = slice(total_bins + offsets[k], total_bins + offsets[k + 1])
            dev[:, m] = x[k][rows[k]] - x[k][0]
            dev[:, q] = p[k][rows[k]] - p[k][0]
        full = dev.T @ dev / count  # about the central value, 1/N (the samples' convention)
        cov += full  # a systematic of one sample has nothing outside that sample's rows
        for k in holders:  # the samples' own blocks only
            idx = np.r_[
                offsets[k] : offsets[k + 1], total_bins + offsets[k] : total_bins + offsets[k + 1]
            ]
            cov_diag[np.ix_(idx, idx)] += full[np.ix_(idx, idx)]
    stat = np.zeros((total_bins, total_bins))
    for k, lab in enumerate(labels):
        stat[offsets[k] : offsets[k + 1], offsets[k] : offsets[k + 1]] = samples[lab][
            "cov_stat_real"
        ].values
    d = np.concatenate([xk[0] for xk in x]) - np.concatenate([pk[0] for pk in p])

    def chi2(c: np.ndarray) -> float:
        t = total_bins
        v = c[:t, :t] + c[t:, t:] - c[:t, t:] - c[t:, :t] + stat
        return float(d @ np.linalg.solve(v, d))

    return chi2(cov), chi2(cov_diag)


def test_joint_chi2_differs_from_the_separate_sum_exactly_by_the_cross_sample_terms(joint) -> None:
    ds, samples = joint
    joint_chi2 = float(ds["chi2_real_joint"].sel(model="generator"))
    separate = [float(samples[k]["chi2_real_joint"].sel(model="generator")) for k in samples]
    assert float(ds["chi2_real_separate_sum"].sel(model="generator")) == pytest.approx(
        sum(separate), rel=1e-12, abs=0
    )
    with_cross, without_cross = _independent_joint_chi2(samples)
    # the combined χ² is that of the full block covariance; without the cross-sample blocks it
    # is the sum of the samples' own χ²; the difference is the cross-sample terms, and not zero
    assert joint_chi2 == pytest.approx(with_cross, rel=1e-9, abs=0)
    assert without_cross == pytest.approx(sum(separate), rel=1e-9, abs=0)
    assert abs(joint_chi2 - sum(separate)) > 1e-3 * sum(separate)
    # the same through the dataset's own joint covariance with its cross blocks removed
    from farm.analysis.chi2 import chi2_joint

    v = ds["joint_cov_real"].sel(model="generator").values.copy()
    n = ds.sizes["truth_bin"]
    mask = np.zeros((2 * n, 2 * n), dtype=bool)
    for k in range(n):  # one bin per sample here: keep (m_k, p_k) × (m_k, p_k)
        idx = [k, n + k]
        mask[np.ix_(idx, idx)] = True
    v[~mask] = 0.0
    alone = chi2_joint(
        ds["xsec_real"].values,
        ds["model_pred_real"].sel(model="generator").values,
        v,
        stat_cov=ds["cov_stat_real"].values,
    ).chi2
    assert alone == pytest.approx(sum(separate), rel=1e-9, abs=0)


def test_a_member_sample_is_its_single_sample_run(project: Path, joint) -> None:
    from farm.runner import run_inprocess

    _, samples = joint
    meas = load_measurement(project)
    alone = run_inprocess(meas.samples[1], log=_quiet)
    assert_bit_identical(alone, samples["sns-lar"])


def test_a_dask_cluster_gives_the_in_process_bits(project: Path, joint, on_cluster) -> None:
    ds, samples = joint
    d2, s2, stats = run_measurement(load_measurement(project), on_cluster, log=_quiet)
    assert stats.items > 0
    assert_bit_identical(ds, d2)
    for label in samples:
        assert_bit_identical(samples[label], s2[label])


def test_a_changed_shard_of_one_sample_recomputes_only_its_items(tmp_path: Path) -> None:
    from store_surgery import forge_values

    path = _measurement(tmp_path, tmp_path / "stores")
    meas = load_measurement(path)
    checkpoints = tmp_path / "checkpoints"
    inprocess = ClusterOptions(kind="inprocess")
    _, before, first = run_measurement(meas, inprocess, checkpoint_dir=checkpoints, log=_quiet)
    _, _, again = run_measurement(meas, inprocess, checkpoint_dir=checkpoints, log=_quiet)
    assert again.computed == 0 and again.from_checkpoint == first.items
    from farm.runner import ensure_store, plan_for

    csi = meas.samples[0]
    n_csi = len(plan_for(csi, ensure_store(csi, log=_quiet))[1].items)
    store = Path(str(csi.sample.store))
    from farm.store.reader import EventStore

    shard = EventStore.open(store).read_shard(0, ["w_nominal", "is_signal", "selected"])
    row = int(np.flatnonzero(shard["is_signal"] & shard["selected"])[0])
    forge_values(store, {"w_nominal": {row: float(shard["w_nominal"][row]) * 1.5}})
    _, after, refreshed = run_measurement(meas, inprocess, checkpoint_dir=checkpoints, log=_quiet)
    assert refreshed.computed == n_csi < refreshed.items
    assert refreshed.from_checkpoint == refreshed.items - n_csi
    assert_bit_identical(after["sns-lar"], before["sns-lar"])
    assert not after["sns-csi"]["truth_counts"].identical(before["sns-csi"]["truth_counts"])


def test_a_shared_systematic_needs_two_samples_and_one_definition(tmp_path: Path) -> None:
    stores = tmp_path / "stores"
    path = _measurement(tmp_path, stores, shared=["flux_normalization", "quenching_typo"])
    with pytest.raises(ConfigError, match="'quenching_typo': no sample declares it"):
        load_measurement(path)
    path = _measurement(tmp_path, stores)
    data = tomllib.loads((tmp_path / "sns-lar.toml").read_text())
    data["systematics"][0]["normalization"] = 0.07
    (tmp_path / "sns-lar.toml").write_text(toml_text(data))
    with pytest.raises(
        ConfigError, match="defined differently in sns-csi and sns-lar \\(normalization\\)"
    ):
        load_measurement(path)
    data["systematics"][0]["normalization"] = SIGMA
    data["binning"]["flux_edges_mev"] = {
        "numu": [29.0, 30.5],
        "nue": [0, 20, 53],
        "numubar": [0, 53],
    }
    (tmp_path / "sns-lar.toml").write_text(toml_text(data))
    with pytest.raises(ConfigError, match="throws different changes in sns-csi and sns-lar"):
        run_measurement(load_measurement(path), ClusterOptions(kind="inprocess"), log=_quiet)


def test_the_coherent_example_publishes_one_dataset_reported_and_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`farm run examples/coherent-joint.toml` (small): one dataset, the flux normalisation's
    cross-sample correlation 1 in every pair (a pure normalisation moves every sample's real-flux
    measurement by one function of δ); the report
    and the HEPData release show the cross-sample covariance; fit and compare take all the
    samples together (tests/test_joint_fit.py) or one."""
    monkeypatch.chdir(tmp_path)
    example = examples_dir() / "coherent-joint.toml"
    args = ["--events", 10_000, "--universes", 10, "--cluster", "inprocess"]
    result = farm_cli("run", example, "--out", "joint.zarr", *args)
    assert result.exit_code == 0, result.output
    assert "measurement coherent-joint of 3 samples" in result.output
    from farm.publish import open_published, open_sample

    ds = open_published("joint.zarr")
    assert [str(s) for s in ds["sample"].values] == ["sns-csi", "sns-lar", "sns-ge"]
    cov = ds["cov_systematic_real"].sel(systematic="flux_normalization").values
    rho = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.abs(rho - 1.0).max() < 1e-9
    assert open_sample("joint.zarr", "sns-ge").sizes["truth_bin"] == 1
    refresh = farm_cli("refresh", example, "--out", "joint.zarr", *args)
    assert refresh.exit_code == 0 and "up to date" in refresh.output, refresh.output
    report = farm_cli("report", "joint.zarr", "--out", "report")
    assert report.exit_code == 0, report.output
    assert (tmp_path / "report" / "cross_sample_correlation.png").stat().st_size > 0
    assert "Cross-sample correlation" in (tmp_path / "report" / "index.html").read_text()
    assert (tmp_path / "report" / "samples" / "sns-lar" / "index.html").is_file()
    fit = farm_cli(
        "fit", "joint.zarr", "--model", "farm.models:cevns", "--param", "sin2w", "--out", "f.zarr",
        "--toys", 0, "--grid", 11, "--cluster", "inprocess",
    )  # fmt: skip
    assert fit.exit_code == 0 and "joint fit over 3 samples" in fit.output, fit.output
    fit = farm_cli(
        "fit", "joint.zarr", "--model", "farm.models:cevns", "--param", "sin2w", "--out", "f.zarr",
        "--toys", 0, "--grid", 11, "--cluster", "inprocess", "--sample", "sns-csi", "--overwrite",
    )  # fmt: skip
    assert fit.exit_code == 0 and "fitted to sns-csi" in fit.output, fit.output
    model = ("--model", "farm.models:cevns_ar_corrected_helm")
    alone = farm_cli("compare", "joint.zarr", *model, "--sample", "sns-lar", "--json")
    assert alone.exit_code == 0, alone.output
    joint = farm_cli("compare", "joint.zarr", *model, "--json")
    assert joint.exit_code == 0, joint.output
    assert json.loads(joint.output)["real"]["combined"]["dof"] == 3
    released = farm_cli("export", "hepdata", "joint.zarr", "--out", "record", "--no-archive")
    assert released.exit_code == 0, released.output
    import yaml

    table = yaml.safe_load((tmp_path / "record" / "covariance-joint-real.yaml").read_text())
    total = {
        v["header"]["name"]: [x["value"] for x in v["values"]] for v in table["dependent_variables"]
    }
    n = ds.sizes["truth_bin"]
    cross = np.array(total["cross_sample"]).reshape(n, n)
    expected = ds["cov_sigma_real"].values.copy()
    np.fill_diagonal(expected, 0.0)  # one bin per sample: the off-diagonal is cross-sample
    assert np.allclose(cross, expected, rtol=1e-4, atol=0)
    # each sample's renamed tables still read as one NUISANCE measurement
    read = farm_cli(
        "compare", "record", "--model", "farm.models:cevns_ar_corrected_helm",
        "--table", "sns-lar-cross_section-real",
    )  # fmt: skip
    assert read.exit_code == 0 and "sns-lar-covariance-real:total" in read.output, read.output
    shutil.rmtree(tmp_path / "record")


def test_a_refresh_keeps_the_published_universes_and_says_what_changed_per_sample(
    project: Path, tmp_path: Path
) -> None:
    """`farm refresh` of a measurement run with --universes N keeps N, as a single-sample refresh
    does (the joint dataset's run_overrides), and names what changed in each sample."""
    from farm.publish import current_version, open_published, open_sample

    path = _measurement(tmp_path, project.parent / "stores")  # the module's stores, own files
    out = ["--out", tmp_path / "u.zarr", "--cluster", "inprocess"]
    run = farm_cli("run", path, *out, "--universes", 6)
    assert run.exit_code == 0, run.output
    assert run.stdout.startswith("published ") and "published" not in run.stderr

    def throws() -> dict[str, set[int]]:
        """Each sample's throws per systematic, as published."""
        published = {s: open_sample(tmp_path / "u.zarr", s) for s in ("sns-csi", "sns-lar")}
        labels = {s: ds["universe_systematic"].values for s, ds in published.items()}
        return {s: {n for k, n in Counter(v).items() if k != "cv"} for s, v in labels.items()}

    assert throws() == {"sns-csi": {6}, "sns-lar": {6}}  # not the configured 400 and 20
    again = farm_cli("refresh", path, *out)
    assert again.exit_code == 0, again.output
    assert "keeping the 6 universes per systematic of v0001" in again.stderr
    assert "up to date" in again.stdout  # the same 6 universes: nothing to publish
    data = tomllib.loads((tmp_path / "sns-lar.toml").read_text())
    data["systematics"][1]["sigma"] = 0.07  # the argon quenching knob
    (tmp_path / "sns-lar.toml").write_text(toml_text(data))
    changed = farm_cli("refresh", path, *out)
    assert changed.exit_code == 0, changed.output
    lines = changed.stderr.splitlines()
    assert "sns-csi: nothing changed in the configuration or the event store since v0001" in lines
    assert "sns-lar: changed since v0001: systematics ~sns-lar/quenching (sigma)" in lines
    assert changed.stdout.startswith("published ") and "(v0002" in changed.stdout
    assert throws() == {"sns-csi": {6}, "sns-lar": {6}}
    recorded = open_published(tmp_path / "u.zarr").attrs["run_overrides"]
    assert json.loads(recorded) == {"universes": 6}
    # published before run_overrides was recorded: every sample's own throws say N
    meta = current_version(tmp_path / "u.zarr") / "zarr.json"
    doc = json.loads(meta.read_text())
    del doc["attributes"]["run_overrides"]
    meta.write_text(json.dumps(doc))
    legacy = farm_cli("refresh", path, *out)
    assert legacy.exit_code == 0, legacy.output
    assert "keeping the 6 universes per systematic of v0002" in legacy.stderr
    assert throws() == {"sns-csi": {6}, "sns-lar": {6}}


def test_until_converged_is_refused_for_a_measurement(project: Path, tmp_path: Path) -> None:
    result = farm_cli(
        "run", project, "--out", tmp_path / "o.zarr", "--cluster", "inprocess", "--until-converged"
    )
    assert result.exit_code != 0
    assert "not offered for a multi-sample measurement" in result.output


def test_the_reactor_example_shares_the_spectrum_and_keeps_the_fission_fractions_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    meas = load_measurement(examples_dir() / "reactor-joint.toml", events=10_000)
    ds, samples, _ = run_measurement(
        meas, ClusterOptions(kind="inprocess"), universes=20, log=_quiet
    )
    shared = {
        str(n)
        for n, s in zip(ds["systematic"].values, ds["systematic_shared"].values, strict=True)
        if s
    }
    assert shared == {"reactor_flux", "thermal_power"}
    assert {"reactor-ge/fission_fractions", "reactor-ibd/fission_fractions"} <= {
        str(n) for n in ds["systematic"].values
    }
    ge = int(ds["sample_bins"].values[0])
    assert ge == 1 and ds.sizes["truth_bin"] == 1 + samples["reactor-ibd"].sizes["truth_bin"]
    cov = ds["cov_systematic_real"].sel(systematic="thermal_power").values
    rho = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    # a pure normalisation: one function of δ in every bin (up to ~1e-8 from the Wiener filter,
    # which IBD's unfolding builds from each universe's expected signal)
    assert np.abs(rho - 1.0).max() < 1e-6
    fission = ds["cov_systematic_real"].sel(systematic="reactor-ge/fission_fractions").values
    assert not fission[:ge, ge:].any()  # independent: no cross-sample block


def test_a_file_of_samples_alone_shares_nothing_and_its_chi2_is_the_sum(project: Path) -> None:
    path = project.with_name("samples-only.toml")
    path.write_text(
        toml_text({"samples": [{"config": "sns-csi.toml"}, {"config": "sns-lar.toml"}]})
    )
    meas = load_measurement(path)
    assert meas.name == "samples-only" and not meas.shared
    ds, samples, _ = run_measurement(meas, ClusterOptions(kind="inprocess"), log=_quiet)
    assert not ds["systematic_shared"].values.any()
    assert not ds["cov_cross_sample_real"].values.any()
    separate = sum(float(s["chi2_real_joint"].sel(model="generator")) for s in samples.values())
    joint = float(ds["chi2_real_joint"].sel(model="generator"))
    assert joint == pytest.approx(separate, rel=1e-10, abs=0)


def test_every_variable_of_the_joint_dataset_describes_itself(joint) -> None:
    ds, _ = joint
    undescribed = [
        str(name)
        for name in ds.variables
        if not all(ds[name].attrs.get(key) for key in ("long_name", "units", "description"))
    ]
    assert undescribed == []
    assert ds["cov_cross_sample_real"].attrs["units"] == "cm4"
    assert ds["xsec_nominal"].attrs["units"] == "cm2 per target"
