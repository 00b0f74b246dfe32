"""Correlation matrices, and whether enough universes were thrown for each systematic."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from farm.report.quantities import (
    CONVENTIONS,
    UniverseCheck,
    truth_bins,
    universe_checks,
    universes_verdict,
)
from farm.report.style import CONVENTION_TITLES, group_colors, new_figure

__all__ = ["correlation_figure", "universe_check_figure"]

_ANNOTATE_MAX_BINS = 12
"""Print ρ in every cell up to this many bins; beyond, the numbers would not be legible."""


def correlation_figure(ds: xr.Dataset) -> Figure:
    """Heatmaps of the total correlation matrix (systematics ⊕ stat), one per convention.

    ρ_ab = V_ab / √(V_aa V_bb) with V = ``cov_total_*``, on a diverging scale from −1 to 1.
    """
    bins = truth_bins(ds)
    names = bins.bin_labels()
    n = bins.n_bins
    side = 4.6 if n > 1 else 2.6
    fig = new_figure(11.0, side + 1.6)
    axes = fig.subplots(1, 2)
    image = None
    for ax, c in zip(axes, CONVENTIONS, strict=True):
        rho = np.asarray(ds[f"corr_{c}"].values, dtype=np.float64)
        image = ax.imshow(rho, cmap="RdBu_r", vmin=-1.0, vmax=1.0, origin="lower")
        ax.set_xticks(range(n), names, rotation=45 if n > 1 else 0, ha="right" if n > 1 else "center")
        ax.set_yticks(range(n), names)
        ax.grid(False)
        if n > 1:
            ax.set_xlabel(r"true $E_\nu$ bin [MeV]")
            ax.set_ylabel(r"true $E_\nu$ bin [MeV]")
        ax.set_title(CONVENTION_TITLES[c])
        if n <= _ANNOTATE_MAX_BINS:
            for (i, j), value in np.ndenumerate(rho):
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8 if n > 6 else 11,
                    color="white" if abs(value) > 0.6 else "black",
                )
    assert image is not None
    fig.colorbar(image, ax=list(axes), shrink=0.85, label=r"correlation $\rho$")
    note = " (one bin: trivially 1)" if n == 1 else ""
    fig.suptitle(
        f"{ds.attrs.get('sample', 'result')}: total correlation matrix{note}",
        fontsize=13,
        fontweight="bold",
    )
    return fig


def _bar_label(check: UniverseCheck) -> str:
    if check.unisim:
        return " ±1σ unisim: exact"
    if not math.isfinite(check.worst):
        return " ∞ (one universe)"
    text = f" {100 * check.worst:.1f} %"
    if check.enough:
        return text + "  ✓"
    if not check.matters:
        return text + "  (negligible share of the variance)"
    return text + f"  ✗ → ≈{check.needed} universes"


def universe_check_figure(ds: xr.Dataset, threshold: float = 0.10) -> Figure:
    """Relative bootstrap error of each systematic's covariance against the threshold.

    Bars show the larger of the two conventions; the error of a variance from N Gaussian
    universes is ≈ √(2/N), so the universes needed for the threshold scale like its square.
    """
    checks = universe_checks(ds, threshold)
    colors = group_colors(list(dict.fromkeys(c.group for c in checks)))
    fig = new_figure(11.0, 1.9 + 0.42 * len(checks))
    ax = fig.subplots()
    y = np.arange(len(checks))[::-1]
    finite = [100 * c.worst for c in checks if math.isfinite(c.worst) and not c.unisim]
    x_max = max([*finite, 100 * threshold]) * 1.6
    values = [
        0.0 if c.unisim else min(100 * c.worst, x_max) if math.isfinite(c.worst) else x_max
        for c in checks
    ]
    ax.barh(y, values, color=[colors[c.group] for c in checks], height=0.65)
    for yy, v, check in zip(y, values, checks, strict=True):
        ax.text(v, yy, _bar_label(check), va="center", fontsize=10)
    ax.axvline(100 * threshold, color="#C00000", ls="--", lw=1.5)
    ax.text(
        100 * threshold, len(checks) - 0.35, f" threshold {100 * threshold:g} %", color="#C00000"
    )
    ax.set_yticks(y, [f"{c.systematic} ({c.n_universes})" for c in checks])
    ax.set_xlim(0, x_max * 1.25)
    ax.set_ylim(-0.6, len(checks) - 0.1)
    ax.set_xlabel("relative bootstrap error of the systematic's variance (worse convention) [%]")
    ax.grid(axis="y", visible=False)
    enough, _ = universes_verdict(checks)
    fig.suptitle(
        f"{ds.attrs.get('sample', 'result')}: enough universes? {'yes' if enough else 'no'}",
        fontsize=13,
        fontweight="bold",
    )
    return fig
