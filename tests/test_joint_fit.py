"""`farm fit` and `farm compare` on a multi-sample measurement (issue 14, item 3).

The measurement of tests/test_joint.py (SNS CsI and Ar, 20 000 events each, the 5 % flux
normalisation shared, quenching and bootstrap per sample), published as `farm run` publishes it.
The joint χ²(θ) is checked against an independent numpy (x − p)ᵀ C⁻¹ (x − p) over the concatenated
truth bins: each sample's diagonal block from `farm.compare` (V_mm + V_pp − V_mp − V_pm + V_stat),
the cross-sample block from the shared normalisation's universes of equal throw index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import farm_cli, toml_text
from test_joint import _quiet, _sample

from farm.cluster import ClusterOptions
from farm.compare import compare
from farm.fit import fit
from farm.fit.joint import JointFitProblem, open_problem
from farm.fit.params import BoundModel
from farm.fit.problem import FitProblem, read_inputs
from farm.fit.run import FitSettings, run_fit
from farm.measurement import load_measurement, run_measurement
from farm.models import cevns
from farm.publish import publish_dataset

SIN2W = 0.2457
MATERIAL = {"sns-csi": "CsI", "sns-lar": "Ar"}
NO_TOYS = FitSettings(toys=0, grid=11)


ATTACHED = [{"name": "cevns", "callable": "farm.models:cevns"}]
"""A model both samples attach (CsI nuclei for both: a model, not the physics of argon)."""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/test_joint.py's measurement, with one model attached to both samples."""
    root = tmp_path_factory.mktemp("joint-fit")
    configs = [_sample(k, root, root / "stores", models=ATTACHED).name for k in MATERIAL]
    project = root / "joint.toml"
    project.write_text(
        toml_text(
            {
                "measurement": {"name": "csi-ar", "shared": ["flux_normalization"]},
                "samples": [{"config": c} for c in configs],
            }
        )
    )
    ds, samples, _ = run_measurement(
        load_measurement(project),
        ClusterOptions(kind="inprocess"),
        log=_quiet,
    )
    out = root / "joint.zarr"
    publish_dataset(ds, out, groups={f"samples/{k}": v for k, v in samples.items()})
    return out


@pytest.fixture(scope="module")
def samples(published: Path) -> dict[str, xr.Dataset]:
    from farm.publish import open_sample

    return {label: open_sample(published, label).load() for label in MATERIAL}


def _problem(published: Path, names: tuple[str, ...] = ("sin2w",)) -> JointFitProblem:
    problem = open_problem(published, cevns, names, label="cevns")
    assert isinstance(problem, JointFitProblem)
    return problem


def _numpy_chi2(
    samples: dict[str, xr.Dataset], models: dict[str, object], *, cross: bool = True
) -> float:
    """(x − p)ᵀ C⁻¹ (x − p) over the concatenated bins, C built here from farm.compare's
    per-sample joint covariance and, across samples, the shared systematics' universes."""
    deltas, blocks = [], []
    for label, ds in samples.items():
        assert ds.attrs["covariance_center"] == "cv"
        assert ds.attrs["covariance_normalization"] == "n"
        c = compare(ds, models[label]).real
        n = c.n_bins
        v = c.joint_cov
        blocks.append(v[:n, :n] + v[n:, n:] - v[:n, n:] - v[n:, :n] + c.stat_cov)
        deltas.append(ds["xsec_real"].values - c.predicted)  # (U, J): every universe
    sizes = [b.shape[0] for b in blocks]
    edges = np.concatenate([[0], np.cumsum(sizes)])
    cov = np.zeros((edges[-1], edges[-1]))
    for k, b in enumerate(blocks):
        cov[edges[k] : edges[k + 1], edges[k] : edges[k + 1]] = b
    labels = list(samples)
    if cross:
        for a in range(len(labels)):
            for b in range(a + 1, len(labels)):
                sa, sb = samples[labels[a]], samples[labels[b]]
                common = set(map(str, sa["systematic"].values)) & set(
                    map(str, sb["systematic"].values)
                )
                for name in common:
                    ra = np.flatnonzero(sa["universe_systematic"].values == name)
                    rb = np.flatnonzero(sb["universe_systematic"].values == name)
                    assert np.array_equal(
                        sa["throw_index"].values[ra], sb["throw_index"].values[rb]
                    )
                    da = deltas[a][ra] - deltas[a][0]
                    db = deltas[b][rb] - deltas[b][0]
                    block = da.T @ db / ra.size
                    cov[edges[a] : edges[a + 1], edges[b] : edges[b + 1]] += block
                    cov[edges[b] : edges[b + 1], edges[a] : edges[a + 1]] += block.T
    delta = np.concatenate([d[0] for d in deltas])
    return float(delta @ np.linalg.solve(cov, delta))


def _fitted(label: str, ds: xr.Dataset, sin2w: float) -> float:
    """χ² of one sample's own fit problem at sin2w (its detector's material)."""
    problem = FitProblem(
        inputs=read_inputs(ds, "real"),
        model=cevns,
        names=("sin2w",),
        fixed={"material": MATERIAL[label]},
    )
    return problem.chi2([sin2w])


def test_the_joint_chi2_is_the_numpy_chi2_with_the_cross_sample_blocks(
    published: Path, samples: dict[str, xr.Dataset]
) -> None:
    problem = _problem(published)
    assert [dict(p.fixed) for p in problem.parts] == [{"material": m} for m in MATERIAL.values()]
    assert [n for n, _ in problem.inputs.shared] == ["flux_normalization"]
    models = {k: BoundModel(cevns, {"material": m, "sin2w": SIN2W}) for k, m in MATERIAL.items()}
    joint = problem.chi2([SIN2W])
    expected = _numpy_chi2(samples, models)
    assert joint == pytest.approx(expected, rel=1e-9, abs=0)
    # the sum of the samples' own fits is the numpy χ² without the cross-sample blocks ...
    separate = sum(_fitted(label, ds, SIN2W) for label, ds in samples.items())
    assert separate == pytest.approx(_numpy_chi2(samples, models, cross=False), rel=1e-9, abs=0)
    # ... and the joint one differs from it by the cross-sample terms, which are not negligible
    assert abs(joint - separate) > 1e-3 * separate
    cross = problem.inputs.shared[0]
    assert len(cross[1]) == 2  # both samples' universes of the shared normalisation


def test_an_asimov_joint_fit_returns_its_sin2w(published: Path) -> None:
    r = fit(published, "farm.models:cevns", ["sin2w=0.2457:0.1:0.4"], asimov=True, settings=NO_TOYS)
    assert r.best.values[0] == pytest.approx(SIN2W, abs=1e-6)
    assert r.best.chi2 == pytest.approx(0.0, abs=1e-10)
    assert r.problem.n_bins == 2 and r.best.ndof == 1


def test_a_parameter_one_target_lacks_moves_only_the_other_sample(published: Path) -> None:
    problem = _problem(published, ("sin2w", "rn_ar"))
    csi, ar = problem.parts
    a, b = [SIN2W, 3.2], [SIN2W, 3.8]
    assert np.array_equal(csi.raw(a), csi.raw(b))  # no argon in CsI: rn_ar does nothing
    assert not np.allclose(ar.raw(a), ar.raw(b), rtol=1e-6, atol=0)


def test_the_joint_interval_is_no_wider_than_either_samples(published: Path) -> None:
    joint = fit(published, "farm.models:cevns", ["sin2w"], settings=NO_TOYS)
    widths = {}
    for label, material in MATERIAL.items():
        alone = fit(
            published,
            "farm.models:cevns",
            ["sin2w"],
            fixed={"material": material},
            settings=NO_TOYS,
            sample=label,
        )
        lo, hi = alone.wilks[0, 0]
        assert lo <= joint.best.values[0] <= hi  # the samples agree with the combination
        widths[label] = hi - lo
    lo, hi = joint.wilks[0, 0]
    assert hi - lo <= min(widths.values())
    assert hi - lo < 0.99 * max(widths.values())


def test_the_joint_counts_re_extract_every_sample(published: Path) -> None:
    problem = _problem(published)
    counts = problem.inputs.counts
    assert counts is not None and counts.linear
    again = counts.extract(counts.data[None, :])[0]
    assert np.allclose(again, problem.measured_cv, rtol=1e-9, atol=0)
    stat = counts.stat_cov(counts.data[None, :])[0]
    assert stat[0, 1] == 0.0 and stat[1, 0] == 0.0  # independent data
    for k, part in enumerate(problem.inputs.parts):
        assert part.counts is not None
        own = part.counts.stat_cov(part.counts.data[None, :])[0]
        assert np.array_equal(stat[k : k + 1, k : k + 1], own)


def test_farm_fit_and_compare_take_the_measurement_itself(
    published: Path, samples: dict[str, xr.Dataset], tmp_path: Path
) -> None:
    args = ["--model", "farm.models:cevns", "--param", "sin2w", "--grid", 11]
    run = farm_cli("fit", published, *args, "--out", tmp_path / "f.zarr", "--toys", 0)
    assert run.exit_code == 0, run.output
    assert "joint fit over 2 samples" in run.output and "flux_normalization" in run.output
    ds = xr.open_zarr(tmp_path / "f.zarr")
    assert json.loads(ds.attrs["samples"]) == list(MATERIAL)
    direct = fit(published, "farm.models:cevns", ["sin2w"], settings=NO_TOYS)
    assert float(ds["chi2_min"]) == direct.best.chi2
    assert int(ds["ndof"]) == 1
    # Feldman–Cousins: Poisson counts in every sample, one correlated systematic throw
    toys = ["--toys", 40, "--fc-points", 3, "--cluster", "inprocess", "--no-checkpoints"]
    run = farm_cli("fit", published, *args, "--out", tmp_path / "fc.zarr", *toys)
    assert run.exit_code == 0, run.output
    fc = xr.open_zarr(tmp_path / "fc.zarr")
    assert fc.attrs["toy_statistics"] == "poisson"
    assert np.isfinite(fc["fc_toys_sin2w"].values).all()
    one = farm_cli("fit", published, *args, "--out", tmp_path / "one.zarr", "--toys", 0,
                   "--sample", "sns-lar", "--set", "material=Ar")  # fmt: skip
    assert one.exit_code == 0 and "fitted to sns-lar" in one.output, one.output
    assert "joint fit" not in one.output
    # compare: per sample, as if independent (their sum) and combined with the joint covariance
    shown = farm_cli("compare", published, "--model", "farm.models:cevns", "--json")
    assert shown.exit_code == 0, shown.output
    out = json.loads(shown.output)["real"]
    csi_only = BoundModel(cevns, {})  # farm compare folds the model as given: CsI for both
    assert out["combined"]["chi2"] == pytest.approx(
        _numpy_chi2(samples, dict.fromkeys(MATERIAL, csi_only)),
        rel=1e-9,
        abs=0,
    )
    assert out["combined"]["dof"] == 2
    per = [out["per_sample"][k]["chi2"] for k in MATERIAL]
    assert out["samples_as_independent"]["chi2"] == pytest.approx(sum(per), rel=1e-9, abs=0)
    refused = farm_cli("compare", published, "--model", "farm.models:cevns", "--quantity", "sigma")
    assert refused.exit_code == 2 and "--sample NAME" in refused.output, refused.output


def test_the_combined_chi2_of_an_attached_model_is_the_one_farm_run_stored(
    published: Path,
) -> None:
    from farm.compare_joint import compare_joint
    from farm.publish import open_published

    stored = open_published(published).sel(model="cevns")
    c = compare_joint(published, "farm.models:cevns")
    for convention in ("real", "nominal"):
        combined = float(stored[f"chi2_{convention}_joint"])
        assert c.combined[convention].chi2 == pytest.approx(combined, rel=1e-9, abs=0)
        assert c.combined[convention].dof == int(stored["chi2_dof"])
        assert c.combined[convention].pvalue == pytest.approx(
            float(stored[f"pvalue_{convention}_joint"]), rel=1e-9, abs=0
        )
        separate = float(stored[f"chi2_{convention}_separate_sum"])
        assert c.separate[convention].chi2 == pytest.approx(separate, rel=1e-9, abs=0)
        per = [s.convention(convention).joint.chi2 for s in c.per_sample]
        expected = stored[f"chi2_{convention}_per_sample"].values
        assert np.allclose(per, expected, rtol=1e-9, atol=0)


def test_fitting_one_sample_of_a_measurement_is_that_samples_fit(
    published: Path, samples: dict[str, xr.Dataset]
) -> None:
    alone = run_fit(
        FitProblem(
            inputs=read_inputs(samples["sns-csi"], "real"),
            model=cevns,
            names=("sin2w",),
            label="cevns",
        ),
        [p for p in fit(published, cevns, ["sin2w"], settings=NO_TOYS, sample="sns-csi").params],
        NO_TOYS,
    )
    again = fit(published, cevns, ["sin2w"], settings=NO_TOYS, sample="sns-csi")
    assert isinstance(again.problem, FitProblem)
    assert again.best.chi2 == alone.best.chi2
    assert np.array_equal(again.data_chi2, alone.data_chi2)
