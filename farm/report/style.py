"""One look for every figure of the report: fonts, colours per group and model, axis scaling.

Colours follow the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies); a systematic group keeps its colour in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from farm.systematics.universes import ALL_KNOBS

__all__ = [
    "CONVENTION_TITLES",
    "CROSSCHECK_COLOR",
    "FIGURE_DPI",
    "GROUP_COLORS",
    "STAT_COLOR",
    "TOTAL_COLOR",
    "flavour_label",
    "group_colors",
    "model_colors",
    "model_lines",
    "new_figure",
    "power_of_ten",
    "report_style",
    "scale_label",
]

FIGURE_DPI = 110
"""Pixels per inch of the PNGs: an 11-inch figure is 1210 px wide, a page's width."""

STYLE: dict[str, Any] = {
    # matplotlib's bundled DejaVu Sans: the same glyphs, and so the same pixels, on every machine
    "font.family": "DejaVu Sans",
    "font.size": 11.0,
    "axes.titlesize": 12.0,
    "axes.titleweight": "bold",
    "axes.labelsize": 11.0,
    "legend.fontsize": 10.0,
    "legend.frameon": False,
    "xtick.labelsize": 10.0,
    "ytick.labelsize": 10.0,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    # fixed ids in SVG output and no timestamps: reruns give the same bytes
    "svg.hashsalt": "farm-report",
    "image.interpolation": "nearest",
}

GROUP_COLORS: dict[str, str] = {
    "flux": "#0072B2",
    "xsec": "#E69F00",
    "detector": "#009E73",
    "mcstat": "#CC79A7",
    "background": "#56B4E9",
}
"""The farm's default systematic groups (farm.config: flux, xsec, detector, background, mcstat)."""

STAT_COLOR = "#9a9a9a"
TOTAL_COLOR = "#000000"
CROSSCHECK_COLOR = "#8C564B"
"""The all-knob set: a cross-check of the total, drawn dashed, never added into it."""

_SPARE_COLORS = ("#D55E00", "#56B4E9", "#6A3D9A", "#B8860B", "#1B9E77", "#E7298A", "#66A61E")
_MODEL_COLORS = ("#D55E00", "#6A3D9A", "#B8860B", "#17BECF", "#2F4F4F", "#E7298A")
"""Models never share a colour with a systematic group (GROUP_COLORS)."""
_MODEL_LINES = ("-", "--", "-.", ":")

CONVENTION_TITLES: dict[str, str] = {
    "real": "real-flux-averaged",
    "nominal": "nominal-flux-averaged",
}

_FLAVOURS = {
    "nue": r"$\nu_e$",
    "numu": r"$\nu_\mu$",
    "nutau": r"$\nu_\tau$",
    "nuebar": r"$\bar{\nu}_e$",
    "numubar": r"$\bar{\nu}_\mu$",
    "nutaubar": r"$\bar{\nu}_\tau$",
}


@contextmanager
def report_style() -> Iterator[None]:
    """The report's matplotlib settings, on the Agg backend, for the duration of a block."""
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure drawn by Agg (no display, no pyplot state) with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width_in, height_in), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def group_colors(groups: Sequence[str]) -> dict[str, str]:
    """A colour per group: the fixed ones for the default groups, spares in order for others."""
    spare = iter(c for c in _SPARE_COLORS if c not in GROUP_COLORS.values())
    colors = {}
    for group in groups:
        if group == ALL_KNOBS:
            colors[group] = CROSSCHECK_COLOR
        else:
            colors[group] = GROUP_COLORS.get(group) or next(spare, "#444444")
    return colors


def model_colors(models: Sequence[str]) -> dict[str, str]:
    return {m: _MODEL_COLORS[k % len(_MODEL_COLORS)] for k, m in enumerate(models)}


def model_lines(models: Sequence[str]) -> dict[str, str]:
    """A line style per model, so that overlapping predictions stay distinguishable."""
    return {m: _MODEL_LINES[k % len(_MODEL_LINES)] for k, m in enumerate(models)}


def flavour_label(flavour: str) -> str:
    """``numubar`` → ν̄_μ in mathtext; unknown names are returned as they are."""
    return _FLAVOURS.get(flavour, flavour)


def power_of_ten(values: Any) -> int:
    """The exponent that brings the largest magnitude in ``values`` into [1, 10)."""
    import numpy as np

    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    return math.floor(math.log10(finite.max())) if finite.size else 0


def scale_label(quantity: str, exponent: int, unit: str) -> str:
    """``σ [10⁻³⁸ cm² / target]`` in mathtext for an axis whose values were divided by 10^exponent."""
    scale = rf"$10^{{{exponent}}}$ " if exponent else ""
    return f"{quantity} [{scale}{unit}]"
