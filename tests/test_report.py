"""``farm report`` (issue 5 item 1): PNG plots and one HTML page that an analyst can look at.

Two results are reported: the sns-csi example (one flux-averaged total bin) and nuscope-lar with
the all-knob cross-check set (12 E_ν bins, a systematic ``all_knobs`` not added into the total).
Each is produced once by ``farm run`` on a small sample and reported once by ``farm report``.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
import subprocess
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import Result
from conftest import toml_text
from numpy.testing import assert_allclose
from PIL import Image
from typer.testing import CliRunner

from farm.analysis.covariance import correlation
from farm.cli import app
from farm.config import examples_dir
from farm.publish import open_published
from farm.report import FIGURES, PAGE
from farm.report.quantities import (
    breakdown,
    flux_bands,
    labels,
    measured_predicted_correlation,
    quadrature_layers,
    universe_checks,
)
from farm.systematics.universes import ALL_KNOBS

EVENTS = 60_000
UNIVERSES = 20
ALL_KNOB_UNIVERSES = 20
SAMPLES = ("sns-csi", "nuscope-lar")
CHROMIUM = "/usr/bin/chromium"


def farm(*args: str | Path, cwd: Path | None = None) -> Result:
    with pytest.MonkeyPatch.context() as mp:
        if cwd is not None:
            mp.chdir(cwd)
        return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sns-csi as shipped, and nuscope-lar with an all-knob set, each published by farm run."""
    work = tmp_path_factory.mktemp("report-runs")
    nuscope = tomllib.loads((examples_dir() / "nuscope-lar.toml").read_text())
    nuscope["analysis"]["all_knob_universes"] = ALL_KNOB_UNIVERSES
    (work / "nuscope-all-knobs.toml").write_text(toml_text(nuscope))
    configs = {"sns-csi": "sns-csi", "nuscope-lar": work / "nuscope-all-knobs.toml"}
    out = {}
    for sample, config in configs.items():
        target = work / f"{sample}.zarr"
        args = ["run", config, "--cluster", "inprocess", "--events", str(EVENTS)]
        result = farm(*args, "--universes", str(UNIVERSES), "--out", target, cwd=work)
        assert result.exit_code == 0, result.output
        out[sample] = target
    return out


@pytest.fixture(scope="module")
def reports(results: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for sample, result in results.items():
        target = tmp_path_factory.mktemp("reports") / sample
        written = farm("report", result, "--out", target)
        assert written.exit_code == 0, written.output
        out[sample] = target
    return out


@pytest.fixture(scope="module")
def datasets(results: dict[str, Path]) -> dict[str, xr.Dataset]:
    return {sample: open_published(path).load() for sample, path in results.items()}


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources += [v for k, v in attrs if k == "src" and v is not None]


def image_sources(page: Path) -> list[str]:
    parser = _Images()
    parser.feed(page.read_text())
    return parser.sources


def non_white_fraction(pixels: np.ndarray) -> float:
    return float(np.mean(np.any(pixels[..., :3] < 245, axis=-1)))


# --- what the command writes -------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES)
def test_report_writes_one_page_and_a_png_per_figure(reports: dict[str, Path], sample: str) -> None:
    written = {p.name for p in reports[sample].iterdir()}
    assert written == {PAGE, *(f"{name}.png" for name in FIGURES)}


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_png_is_a_readable_image_of_page_width_that_is_not_blank(
    reports: dict[str, Path], sample: str
) -> None:
    for name in FIGURES:
        path = reports[sample] / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
            pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
        # 11 inches at 110 dpi: a page's width, and taller than a strip
        assert 1000 <= width <= 2500 and 300 <= height <= 2500, (name, image.size)
        assert pixels.std() > 20, f"{name}.png is (nearly) one colour"
        assert 0.03 < non_white_fraction(pixels) < 0.9, name


@pytest.mark.parametrize("sample", SAMPLES)
def test_page_references_every_figure_by_a_relative_path_beside_it(
    reports: dict[str, Path], sample: str
) -> None:
    sources = image_sources(reports[sample] / PAGE)
    assert sorted(sources) == sorted(f"{name}.png" for name in FIGURES)
    assert all((reports[sample] / src).is_file() for src in sources)


@pytest.mark.parametrize("sample", SAMPLES)
def test_page_shows_every_chi_square_and_p_value_of_the_dataset(
    reports: dict[str, Path], datasets: dict[str, xr.Dataset], sample: str
) -> None:
    html = (reports[sample] / PAGE).read_text()
    ds = datasets[sample]
    assert f">{int(ds['chi2_dof'].values)}</td>" in html
    for convention in ("real", "nominal"):
        for test in ("joint", "uncorrelated"):
            for k in range(ds.sizes["model"]):
                chi2 = float(ds[f"chi2_{convention}_{test}"].values[k])
                pvalue = float(ds[f"pvalue_{convention}_{test}"].values[k])
                # printed to four significant figures, the full value kept in data-value
                assert f'data-value="{chi2!r}">{chi2:.4g}</td>' in html
                assert f'data-value="{pvalue!r}"' in html
    for model in labels(ds, "model"):
        assert f">{model}</td>" in html


@pytest.mark.parametrize("sample", SAMPLES)
def test_page_states_diagnostics_verdict_and_provenance(
    reports: dict[str, Path], datasets: dict[str, xr.Dataset], sample: str
) -> None:
    html = (reports[sample] / PAGE).read_text()
    ds = datasets[sample]
    for convention in ("real", "nominal"):
        condition = float(ds[f"condition_number_{convention}"].values)
        assert f'data-value="{condition!r}"' in html
    assert "positive definite" in html
    # 20 universes give a Monte-Carlo error of a variance of at least √(2/20) ≈ 32 %, above 10 %
    pattern = r'<div class="verdict bad">No: the Monte-Carlo error of the covariance exceeds 10 %'
    assert re.search(pattern, html)
    # and the page says so at the top, under the headline
    assert html.index('<div class="verdict bad">Too few universes.') < html.index("<nav>")
    for key in ("config_hash", "input_checksums", "software_version", "universe_set_checksum"):
        assert str(ds.attrs[key]) in html
    assert "about the central value (universe 0), normalised 1/N" in html


# --- what the figures show ---------------------------------------------------------------------


def test_error_boxes_add_groups_in_quadrature_up_to_the_total_without_the_all_knob_set(
    datasets: dict[str, xr.Dataset],
) -> None:
    ds = datasets["nuscope-lar"]
    assert ALL_KNOBS in labels(ds, "group")
    for convention in ("real", "nominal"):
        b = breakdown(ds, convention)
        assert ALL_KNOBS not in b.groups and ALL_KNOBS in b.crosscheck_sigma_cm2
        outermost = quadrature_layers(b)[-1][1]
        # cov_total = Σ_groups in total + stat, so its diagonal is the quadrature sum
        assert_allclose(outermost, b.total_sigma_cm2, rtol=1e-10)


def test_page_lists_the_all_knob_set_as_a_cross_check(reports: dict[str, Path]) -> None:
    html = (reports["nuscope-lar"] / PAGE).read_text()
    assert f"{ALL_KNOBS} (cross-check)" in html


def test_flux_band_is_the_rms_of_the_flux_universes_about_the_central_value(
    datasets: dict[str, xr.Dataset],
) -> None:
    # sns-csi: one flux systematic, a 10 % normalisation; 1/N about the central value (default)
    ds = datasets["sns-csi"]
    rows = np.flatnonzero(np.array(labels(ds, "universe_systematic")) == "flux_normalization")
    flux = ds["flux"].values
    rms = np.sqrt(np.mean((flux[rows] - flux[0]) ** 2, axis=0))
    bands = {b.flavour: b for b in flux_bands(ds)}
    assert set(bands) == {"nue", "numu", "numubar"}
    prompt = list(labels(ds, "flux_bin")).index("numu:29-30.5")
    assert_allclose(bands["numu"].total_sigma_per_mev, rms[prompt] / 1.5, rtol=1e-12)
    assert_allclose(bands["numu"].central_per_mev, flux[0, prompt] / 1.5, rtol=1e-12)
    # a normalisation moves every bin by the same fraction, near the configured 10 %
    fraction = np.concatenate([b.total_sigma_per_mev / b.central_per_mev for b in bands.values()])
    assert np.ptp(fraction) < 1e-9 and 0.05 < fraction[0] < 0.15


def test_measured_predicted_correlation_reproduces_the_joint_covariance(
    datasets: dict[str, xr.Dataset],
) -> None:
    ds = datasets["nuscope-lar"]
    n = ds.sizes["truth_bin"]
    for convention in ("real", "nominal"):
        _, rho = measured_predicted_correlation(ds, convention)
        joint = ds[f"joint_cov_{convention}"].sel(model="generator").values.copy()
        joint[:n, :n] += ds[f"cov_stat_{convention}"].values
        generator = slice(n, 2 * n)  # the generator's prediction follows the measured bins
        block = np.block(
            [[rho[:n, :n], rho[:n, generator]], [rho[generator, :n], rho[generator, generator]]]
        )
        assert_allclose(block, correlation(joint), atol=1e-10)


def test_universe_verdict_flags_errors_above_the_threshold_and_asks_for_enough_universes(
    datasets: dict[str, xr.Dataset],
) -> None:
    ds = datasets["sns-csi"]
    checks = {c.systematic: c for c in universe_checks(ds, threshold=0.10)}
    flux = checks["flux_normalization"]
    assert flux.n_universes == UNIVERSES and flux.worst > 0.10 and not flux.enough
    # the error falls like 1/√N: N (err / 10 %)² universes bring it to the threshold
    assert flux.needed == math.ceil(UNIVERSES * (flux.worst / 0.10) ** 2)
    assert checks["brn_normalization"].unisim and checks["brn_normalization"].enough
    assert all(c.enough for c in universe_checks(ds, threshold=0.99))


# --- determinism, embedding, errors ------------------------------------------------------------


def test_rerunning_the_report_gives_the_same_bytes(
    results: dict[str, Path], reports: dict[str, Path], tmp_path: Path
) -> None:
    again = farm("report", results["sns-csi"], "--out", tmp_path / "again")
    assert again.exit_code == 0, again.output
    for path in reports["sns-csi"].iterdir():
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name


def test_embedded_page_carries_every_png_and_stands_alone(
    results: dict[str, Path], reports: dict[str, Path], tmp_path: Path
) -> None:
    result = farm("report", results["sns-csi"], "--out", tmp_path / "embedded", "--embed")
    assert result.exit_code == 0, result.output
    sources = image_sources(tmp_path / "embedded" / PAGE)
    assert len(sources) == len(FIGURES)
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in sources)
    pngs = {base64.b64decode(src.removeprefix(prefix)) for src in sources}
    assert pngs == {(reports["sns-csi"] / f"{name}.png").read_bytes() for name in FIGURES}


def test_report_of_nothing_published_fails_naming_how_to_publish(tmp_path: Path) -> None:
    result = farm("report", tmp_path / "missing.zarr", "--out", tmp_path / "report")
    assert result.exit_code == 2
    assert "nothing published yet" in " ".join(result.output.split())


# --- the page in a browser ---------------------------------------------------------------------


WIDTHS = {"desktop": 1280, "phone": 390}
"""Viewport widths the page must render at (px): a laptop window and a phone."""


def artifacts_dir() -> Path:
    """Where CI keeps what a person looks at after a run: ``$FARM_CI_ARTIFACTS``, else the
    repository's ``.ci/artifacts/`` (gitignored)."""
    configured = os.environ.get("FARM_CI_ARTIFACTS", "").strip()
    folder = (
        Path(configured) if configured else Path(__file__).resolve().parents[1] / ".ci/artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("FARM_REQUIRE_CHROMIUM"):
            pytest.fail(f"FARM_REQUIRE_CHROMIUM is set but {CHROMIUM} is missing")
        pytest.skip(
            f"{CHROMIUM} not installed (apt-get install chromium); set FARM_REQUIRE_CHROMIUM=1 to fail instead"
        )
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    finally:
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


@pytest.mark.parametrize("device", list(WIDTHS))
def test_headless_chromium_renders_the_page_and_the_screenshot_is_not_blank(
    reports: dict[str, Path], tmp_path: Path, device: str
) -> None:
    width = WIDTHS[device]
    shot = artifacts_dir() / f"report-sns-csi-{device}.png"
    shot.unlink(missing_ok=True)
    page = (reports["sns-csi"] / PAGE).resolve()
    done = chromium(tmp_path, f"--screenshot={shot}", f"--window-size={width},2000", page.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (width, 2000)
        pixels = np.asarray(image.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 100, "the screenshot is (nearly) a single colour"
    # heading, text, the cross-section and uncertainty plots fill a good part of the first screen
    assert non_white_fraction(pixels) > 0.10


@pytest.mark.parametrize("device", list(WIDTHS))
def test_the_page_fits_the_width_of_a_desktop_and_a_phone(
    reports: dict[str, Path], tmp_path: Path, device: str
) -> None:
    """No sideways scrolling: the page is as wide as the window (wide tables scroll in their own
    box). Measured by a wrapper page that loads the report in a frame of that width."""
    page = (reports["nuscope-lar"] / PAGE).resolve()
    wrapper = tmp_path / "wrapper.html"
    wrapper.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<iframe id="f" src="{page.as_uri()}" style="width:{WIDTHS[device]}px;height:2000px;border:0">'
        "</iframe><script>document.getElementById('f').onload = function () {"
        "var d = this.contentDocument.documentElement;"
        "document.body.setAttribute('data-overflow', d.scrollWidth - d.clientWidth); };"
        "</script></body></html>"
    )
    done = chromium(
        tmp_path,
        "--allow-file-access-from-files",
        "--virtual-time-budget=10000",
        f"--window-size={WIDTHS[device]},2000",
        "--dump-dom",
        wrapper.as_uri(),
    )
    found = re.search(r'data-overflow="(-?\d+)"', done.stdout)
    assert done.returncode == 0 and found, done.stderr[-2000:]
    assert int(found[1]) <= 0, f"the page is {found[1]} px wider than a {device}'s window"
