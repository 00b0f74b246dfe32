"""The flux per flavour on its E_ν bins, with the ±1σ band of the flux universes."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from farm.report.quantities import flux_bands
from farm.report.style import (
    GROUP_COLORS,
    TOTAL_COLOR,
    flavour_label,
    new_figure,
    power_of_ten,
    scale_label,
)

__all__ = ["flux_figure", "spans_decades"]

FLUX_UNIT = "ν / cm² / MeV"
_BAND_COLOR = GROUP_COLORS["flux"]
_LINE_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
_SYSTEMATIC_COLORS = ("#D55E00", "#009E73", "#CC79A7", "#E69F00", "#6A3D9A", "#B8860B", "#000000")
"""One colour per flux systematic (Okabe–Ito first, never the band's blue), with its line style."""
LOG_DECADES = 2.0
"""A spectrum whose central value spans more than this many decades is drawn on a log axis."""


def _systematic_style(k: int) -> dict[str, object]:
    return {"color": _SYSTEMATIC_COLORS[k % len(_SYSTEMATIC_COLORS)], "ls": _LINE_STYLES[k % 4]}


def spans_decades(values: np.ndarray) -> bool:
    """Does the positive part of ``values`` span more than :data:`LOG_DECADES` decades?"""
    positive = np.asarray(values, dtype=np.float64)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    return positive.size > 1 and np.log10(positive.max() / positive.min()) > LOG_DECADES


def flux_figure(ds: xr.Dataset) -> Figure:
    """Top row: central-value flux per MeV and its ±1σ band, one panel per flavour.
    Bottom row: the fractional ±1σ of each flux systematic and of all together.

    The band is √(Σ_s σ_s²) over the flux systematics s (farm.report.quantities.flux_bands).
    """
    bands = flux_bands(ds)
    n = max(len(bands), 1)
    fig = new_figure(max(11.0, 3.7 * n), 6.4)
    grid = fig.subplots(2, n, sharex="col", height_ratios=[2.2, 1], squeeze=False)
    systematics = list(bands[0].sigma_per_mev) if bands else []
    for col, band in enumerate(bands):
        top, bottom = grid[0, col], grid[1, col]
        exponent = power_of_ten(band.central_per_mev)
        scale = 10.0**exponent
        total = band.total_sigma_per_mev
        edges = band.edges_mev
        top.stairs(
            (band.central_per_mev + total) / scale,
            edges,
            baseline=(band.central_per_mev - total) / scale,
            fill=True,
            color=_BAND_COLOR,
            alpha=0.3,
            lw=0,
        )
        top.stairs(band.central_per_mev / scale, edges, color=TOTAL_COLOR, lw=1.8, baseline=None)
        top.set_title(f"{flavour_label(band.flavour)} flux")
        top.set_ylabel(scale_label("flux", exponent, FLUX_UNIT))
        upper = np.nanmax((band.central_per_mev + total) / scale)
        if spans_decades(band.central_per_mev):
            # a reactor spectrum falls by decades above 6 MeV: linear would hide it
            top.set_yscale("log")
            lowest = np.min(band.central_per_mev[band.central_per_mev > 0]) / scale
            top.set_ylim(0.3 * lowest, 3 * upper)
        else:
            top.set_ylim(0, 1.15 * upper)
        central = np.where(band.central_per_mev > 0, band.central_per_mev, np.nan)
        frac = 100 * total / central
        bottom.stairs(frac, edges, baseline=-frac, fill=True, color=_BAND_COLOR, alpha=0.3, lw=0)
        # one systematic alone is the band itself: no separate line
        for k, name in enumerate(systematics if len(systematics) > 1 else []):
            s = 100 * band.sigma_per_mev[name] / central
            bottom.stairs(s, edges, lw=1.5, baseline=None, **_systematic_style(k))
            bottom.stairs(-s, edges, lw=1.5, baseline=None, **_systematic_style(k))
        bottom.axhline(0, color=TOTAL_COLOR, lw=0.8)
        reach = np.nanmax(frac) if np.any(np.isfinite(frac)) else 1.0
        bottom.set_ylim(-1.35 * reach, 1.35 * reach)
        bottom.set_xlabel(r"$E_\nu$ [MeV]")
        bottom.set_ylabel("±1σ [%]")
        bottom.set_xlim(edges[0], edges[-1])
    if not bands:
        grid[0, 0].text(0.5, 0.5, "no flux bins in this result", ha="center", va="center")
    handles: list[Line2D | Patch] = [
        Line2D([], [], color=TOTAL_COLOR, lw=1.8, label="central value"),
        Patch(color=_BAND_COLOR, alpha=0.3, label="±1σ, all flux systematics"),
    ]
    if len(systematics) == 1:
        handles[1] = Patch(color=_BAND_COLOR, alpha=0.3, label=f"±1σ, {systematics[0]}")
    else:
        handles += [
            Line2D([], [], lw=1.5, label=s, **_systematic_style(k))
            for k, s in enumerate(systematics)
        ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    n_universes = _flux_universe_count(ds, systematics)
    fig.suptitle(
        f"{ds.attrs.get('sample', 'result')}: flux over the exposure, "
        f"±1σ (68 %) from {n_universes} flux universes",
        fontsize=13,
        fontweight="bold",
    )
    return fig


def _flux_universe_count(ds: xr.Dataset, systematics: list[str]) -> int:
    per_universe = [str(v) for v in ds["universe_systematic"].values]
    return sum(per_universe.count(s) for s in systematics)
