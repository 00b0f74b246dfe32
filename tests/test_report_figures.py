"""What the report's figures show (issue 15 item 7): a flux spanning decades on a log axis, one
colour per flux systematic, legend swatches that are the bands drawn, one panel when the two flux
conventions coincide (and a sentence saying so), and one count of universes everywhere.

Three small in-process results: sns-csi (one total bin) and nuscope-lar (E_ν bins aligned with
the flux bins), where the conventions coincide, and reactor-ibd (a Wiener-SVD unfolding whose
flux bins reach beyond its truth bins), where they do not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import xarray as xr
from conftest import run_example
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch

from farm.report.page import FIGURES, render_page
from farm.report.plot_diagnostics import correlation_figure
from farm.report.plot_flux import flux_figure, spans_decades
from farm.report.plot_xsec import cross_section_figure, uncertainty_figure
from farm.report.quantities import conventions_coincide, flux_bands, provenance
from farm.report.style import report_style

EVENTS = 40_000
UNIVERSES = 10


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, xr.Dataset]:
    return {
        sample: run_example(tmp_path_factory, sample, events=EVENTS, universes=UNIVERSES).load()
        for sample in ("sns-csi", "nuscope-lar", "reactor-ibd")
    }


def draw(build: Callable[[xr.Dataset], Figure], ds: xr.Dataset) -> Figure:
    with report_style():
        return build(ds)


def test_a_spectrum_spanning_decades_is_drawn_on_a_log_axis(results: dict[str, xr.Dataset]) -> None:
    assert spans_decades(np.array([5.0, 1.0, 1e-3])) and not spans_decades(np.array([3.0, 1.0]))
    reactor = draw(flux_figure, results["reactor-ibd"])
    # the reactor spectrum falls by five decades from 2 to 12 MeV
    (band,) = flux_bands(results["reactor-ibd"])
    assert spans_decades(band.central_per_mev)
    assert reactor.axes[0].get_yscale() == "log"
    lo = reactor.axes[0].get_ylim()[0]  # the lowest bin is on the axis
    assert lo < band.central_per_mev.min() / 10 ** np.floor(np.log10(band.central_per_mev.max()))
    pion = draw(flux_figure, results["sns-csi"])
    assert all(ax.get_yscale() == "linear" for ax in pion.axes)


def test_each_flux_systematic_has_its_own_colour(results: dict[str, xr.Dataset]) -> None:
    ds = results["reactor-ibd"]
    systematics = list(flux_bands(ds)[0].sigma_per_mev)
    assert len(systematics) == 3
    fig = draw(flux_figure, ds)
    lines = [p for p in fig.axes[1].patches if isinstance(p, StepPatch) and not p.get_fill()]
    colours = {to_rgba(p.get_edgecolor()) for p in lines}
    assert len(colours) == len(systematics)  # ± of each systematic, one colour each
    entries = {
        t.get_text(): h
        for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles, strict=True)
    }
    assert {to_rgba(entries[s].get_color()) for s in systematics} == colours


def test_a_predictions_legend_swatch_is_the_band_it_stands_for(
    results: dict[str, xr.Dataset],
) -> None:
    fig = draw(cross_section_figure, results["reactor-ibd"])
    legend = fig.legends[0]
    swatches = [
        to_rgba(h.get_facecolor())
        for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)
        if t.get_text().endswith("±1σ")
    ]
    bands = {
        to_rgba(p.get_facecolor())
        for p in fig.axes[0].patches
        if isinstance(p, StepPatch) and p.get_fill()
    }
    assert len(swatches) == results["reactor-ibd"].sizes["model"]
    assert set(swatches) == bands  # same colour, same opacity
    assert all(text.get_text() != "prediction ±1σ" for text in legend.get_texts())


@pytest.mark.parametrize(
    ("sample", "coincide"), [("sns-csi", True), ("nuscope-lar", True), ("reactor-ibd", False)]
)
def test_one_panel_when_the_two_conventions_coincide(
    results: dict[str, xr.Dataset], sample: str, coincide: bool
) -> None:
    ds = results[sample]
    assert conventions_coincide(ds) is coincide
    if coincide:  # the numbers are the same in both: one panel is all there is to see
        np.testing.assert_allclose(
            ds["cov_total_sigma_real"].values,
            ds["cov_total_sigma_nominal"].values,
            rtol=1e-12,
            atol=0,
        )
    binned = ds.sizes["truth_bin"] > 1
    panels = (1 if coincide else 2) * (2 if binned else 1)  # binned: a ratio panel under each
    fig = draw(cross_section_figure, ds)
    assert len(fig.axes) == panels
    assert ("coincide" in fig.axes[0].get_title()) is coincide
    assert len(draw(uncertainty_figure, ds).axes) == (1 if coincide else 2)
    html = render_page(ds, dict.fromkeys(FIGURES, "x.png"), result="r.zarr")
    assert ("coincide for this result" in html) is coincide


def test_the_correlation_figure_draws_one_panel_for_equal_matrices(
    results: dict[str, xr.Dataset],
) -> None:
    # one total bin: the measured-predicted correlation is the same in both conventions
    fig = draw(correlation_figure, results["sns-csi"])
    assert len([ax for ax in fig.axes if ax.get_images()]) == 1
    fig = draw(correlation_figure, results["reactor-ibd"])
    assert len([ax for ax in fig.axes if ax.get_images()]) == 2


def test_the_universes_are_counted_as_the_run_counts_them(results: dict[str, xr.Dataset]) -> None:
    ds = results["sns-csi"]
    n = ds.sizes["universe"]  # what `farm run` prints: universe 0 and every throw
    html = render_page(ds, dict.fromkeys(FIGURES, "x.png"), result="r.zarr")
    assert f"{n} universes (the central value and {n - 1} throws)" in html
    assert ("universes", f"{n} (the central value and {n - 1} throws)") in provenance(ds)
    assert f"{n - 1} universes" not in html
