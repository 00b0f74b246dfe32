"""``farm fit`` from the command line: the dataset, the report entry, checkpoints, the example.

The report entry: ``farm fit --report DIR`` writes fit-LABEL.html and its PNGs, and
``farm report RESULT --out DIR`` carries the fit's section in its index.html (docs/fit.md).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import farm_cli, run_example

from farm.publish import publish_dataset

EVENTS = 65_536
UNIVERSES = 10
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "csi_sin2w.py"
QUICK = ("--toys", 40, "--fc-points", 5, "--grid", 51, "--block", 20, "--cluster", "inprocess")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "sns-csi.zarr"
    publish_dataset(
        run_example(tmp_path_factory, "sns-csi", events=EVENTS, universes=UNIVERSES), out
    )
    return out


def fit(result: Path, out: Path, *extra: object):
    return farm_cli(
        "fit",
        result,
        "--model",
        "farm.models:cevns",
        "--param",
        "sin2w",
        "--out",
        out,
        *QUICK,
        *extra,
    )


def test_farm_fit_writes_the_dataset_and_the_report_entry_farm_report_picks_up(
    result: Path, tmp_path: Path
) -> None:
    out, report = tmp_path / "fit.zarr", tmp_path / "report"
    run = fit(result, out, "--report", report)
    assert run.exit_code == 0, run.output
    assert "Feldman–Cousins" in run.output and "sin2w" in run.output
    ds = xr.open_zarr(out)
    assert ds["fc_toys_sin2w"].shape == (5, 40)
    assert ds.attrs["toy_statistics"] == "poisson" and ds.attrs["convention"] == "real"
    lo, best, hi = float(ds.fc_lower[0, 0]), float(ds.best_fit[0]), float(ds.fc_upper[0, 0])
    assert lo < best < hi
    names = sorted(p.name for p in report.iterdir())
    assert names == [
        "fit-cevns-sin2w-profile-sin2w.png",
        "fit-cevns-sin2w-toys-sin2w.png",
        "fit-cevns-sin2w.html",
    ]
    page = farm_cli("report", result, "--out", report)
    assert page.exit_code == 0, page.output
    index = (report / "index.html").read_text()
    assert 'id="fit-cevns-sin2w"' in index and 'src="fit-cevns-sin2w-profile-sin2w.png"' in index
    assert index.index('id="fit-cevns-sin2w"') < index.index("</main>")
    embedded = farm_cli("report", result, "--out", report, "--embed")
    assert embedded.exit_code == 0, embedded.output
    section = (report / "index.html").read_text().split('id="fit-cevns-sin2w"')[1]
    assert 'src="data:image/png;base64,' in section and 'src="fit-cevns' not in section


def test_farm_fit_resumes_from_its_checkpoints_and_refuses_to_overwrite(
    result: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fit.zarr"
    assert fit(result, out).exit_code == 0
    again = fit(result, out)
    assert again.exit_code == 2 and "exists" in again.output
    first = xr.open_zarr(out).load()
    resumed = fit(result, out, "--overwrite")
    assert resumed.exit_code == 0, resumed.output
    assert "(10 from checkpoints)" in resumed.output
    assert (
        xr.open_zarr(out).load()["fc_toys_sin2w"].values.tobytes()
        == first["fc_toys_sin2w"].values.tobytes()
    )


def test_farm_fit_asimov_returns_its_input_as_json(result: Path, tmp_path: Path) -> None:
    run = farm_cli(
        "fit", result, "--model", "farm.models:cevns", "--param", "sin2w=0.27", "--set", "couplings=tree",
        "--asimov", "--toys", 0, "--grid", 51, "--out", tmp_path / "a.zarr", "--json", "--cluster", "inprocess",
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    numbers = json.loads(run.stdout[run.stdout.index("{") :])
    assert abs(numbers["parameters"]["sin2w"]["best_fit"] - 0.27) < 1e-6
    assert numbers["fixed"] == '{"couplings": "tree"}' and numbers["toys"] == 0
    assert np.isnan(numbers["parameters"]["sin2w"]["fc_lower"][0])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--param", "sin2w", "--set", "sin2w=0.2"), "both free (--param) and fixed (--set)"),
        (("--param", "radius"), "no keyword parameter 'radius'"),
        (("--param", "sin2w", "--convention", "both"), "unknown convention"),
        (("--param", "sin2w", "--stat", "exact"), "--stat must be auto, poisson or gaussian"),
        (("--param", "sin2w", "--param", "rn", "--param", "rn_cs"), "one or two free parameters"),
    ],
)
def test_farm_fit_refuses_bad_requests_with_what_to_do(
    result: Path, tmp_path: Path, extra: tuple, message: str
) -> None:
    run = farm_cli(
        "fit",
        result,
        "--model",
        "farm.models:cevns",
        "--out",
        tmp_path / "f.zarr",
        "--toys",
        0,
        "--cluster",
        "inprocess",
        *extra,
    )
    assert run.exit_code == 2
    assert message in " ".join(run.output.split())


def test_the_csi_example_prints_its_interval_beside_coherent(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("csi_sin2w", EXAMPLE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    out = module.run(tmp_path, events=EVENTS, toys=40)
    text = module.report(out)
    assert "COHERENT CsI, PRL 129, 081801 (2022)" in text and "Feldman–Cousins" in text
    budget = out["budget"]
    full = budget["statistics and systematics"]
    assert sum(budget["statistics only"][1:]) < sum(full[1:])
    assert all(sum(v[1:]) <= sum(full[1:]) + 1e-9 for v in budget.values())
