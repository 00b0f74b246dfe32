"""Correlation matrices, and whether enough universes were thrown for each systematic."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from farm.report.quantities import (
    CONVENTIONS,
    UniverseCheck,
    measured_predicted_correlation,
    truth_bins,
    universe_checks,
    universes_verdict,
)
from farm.report.style import CONVENTION_TITLES, group_colors, new_figure
from farm.report.universes import default_threshold

__all__ = ["correlation_figure", "universe_check_figure"]

_ANNOTATE_MAX_BINS = 12
"""Print ρ in every cell up to this many bins; beyond, the numbers would not be legible."""


def _heatmap(ax: Axes, rho: np.ndarray, names: list[str]) -> AxesImage:
    n = rho.shape[0]
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#e4e4e4")
    image = ax.imshow(np.ma.masked_invalid(rho), cmap=cmap, vmin=-1.0, vmax=1.0, origin="lower")
    ax.set_xticks(range(n), names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), names)
    ax.grid(False)
    if n <= _ANNOTATE_MAX_BINS:
        for (i, j), value in np.ndenumerate(rho):
            ax.text(
                j,
                i,
                "—" if np.isnan(value) else f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=8 if n > 6 else 11,
                color="white" if abs(value) > 0.6 else "black",
            )
    return image


def correlation_figure(ds: xr.Dataset) -> Figure:
    """Heatmaps of correlation matrices, one per convention, on a diverging scale from −1 to 1.

    Several bins: the total correlation ρ_ab = V_ab / √(V_aa V_bb), V = ``cov_total_*``
    (systematics ⊕ stat). One flux-averaged bin, whose own correlation is trivially 1: the
    correlation of the measurement with every model's prediction over the shared universes
    (farm.report.quantities.measured_predicted_correlation), which decides how the chi-square
    with and without that correlation differ.
    """
    bins = truth_bins(ds)
    sample = ds.attrs.get("sample", "result")
    fig = new_figure(11.0, 5.6 if bins.n_bins > 1 else 4.6)
    matrices = {}
    for c in CONVENTIONS:
        if bins.is_total:
            matrices[c] = measured_predicted_correlation(ds, c)
        else:
            matrices[c] = bins.bin_labels(), np.asarray(ds[f"corr_{c}"].values, dtype=np.float64)
    real, nominal = matrices["real"][1], matrices["nominal"][1]
    # one panel when the two conventions give the same matrix (its title says so)
    same = real.shape == nominal.shape and np.allclose(
        real, nominal, rtol=0, atol=1e-12, equal_nan=True
    )
    shown = ("real",) if same else CONVENTIONS
    axes = fig.subplots(1, len(shown), squeeze=False)[0]
    image = None
    for ax, c in zip(axes, shown, strict=True):
        names, rho = matrices[c]
        if not bins.is_total:
            ax.set_xlabel(r"true $E_\nu$ bin [MeV]")
            ax.set_ylabel(r"true $E_\nu$ bin [MeV]")
        image = _heatmap(ax, rho, names)
        ax.set_title(
            CONVENTION_TITLES[c] if not same else "real- and nominal-flux-averaged coincide"
        )
    assert image is not None
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=r"correlation $\rho$")
    what = (
        "correlation of the measurement (⊕ stat) and the predictions"
        if bins.is_total
        else "total correlation matrix (systematics ⊕ stat)"
    )
    fig.suptitle(f"{sample}: {what}", fontsize=13, fontweight="bold")
    return fig


def _bar_label(check: UniverseCheck) -> str:
    if check.unisim:
        return " ±1σ unisim: exact"
    if not math.isfinite(check.worst):
        return " ∞ (one universe)"
    text = f" {100 * check.worst:.1f} %"
    if check.rank_limited:
        text += f", rank {check.rank}/{check.n_bins}"
    if check.enough:
        return text + "  ✓"
    if check.crosscheck:
        return text + f"  cross-check → ≈{check.needed or '?'} universes"
    if not check.matters:
        return text + "  (negligible share of the variance)"
    return text + f"  ✗ → ≈{check.needed} universes"


def universe_check_figure(ds: xr.Dataset, threshold: float | None = None) -> Figure:
    """Relative Monte-Carlo error of each systematic's covariance against the threshold.

    Bars show the larger of the two conventions; the error of a variance from N Gaussian
    universes is √(2/N), so the universes needed for the threshold scale like its square.
    ``threshold`` defaults to the run's ``[analysis] universe_precision``.
    """
    checks = universe_checks(ds, threshold)
    threshold = checks[0].threshold if checks else default_threshold(ds)
    colors = group_colors(list(dict.fromkeys(c.group for c in checks)))
    fig = new_figure(11.0, 1.9 + 0.42 * len(checks))
    ax = fig.subplots()
    y = np.arange(len(checks))[::-1]
    finite = [100 * c.worst for c in checks if math.isfinite(c.worst) and not c.unisim]
    x_max = max([*finite, 100 * threshold]) * 1.15
    values = [
        0.0 if c.unisim else min(100 * c.worst, x_max) if math.isfinite(c.worst) else x_max
        for c in checks
    ]
    ax.barh(y, values, color=[colors[c.group] for c in checks], height=0.65)
    for yy, v, check in zip(y, values, checks, strict=True):
        ax.text(
            v,
            yy,
            _bar_label(check),
            va="center",
            fontsize=10,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
            zorder=5,  # above the threshold line
        )
    ax.axvline(100 * threshold, color="#C00000", ls="--", lw=1.5)
    ax.text(
        100 * threshold, len(checks) - 0.35, f" threshold {100 * threshold:g} %", color="#C00000"
    )
    ax.set_yticks(y, [f"{c.systematic} ({c.n_universes})" for c in checks])
    ax.set_xlim(0, x_max * 1.45)  # room for the labels right of the bars
    ax.set_ylim(-0.6, len(checks) - 0.1)
    ax.set_xlabel("relative Monte-Carlo error of the systematic's variance (worse convention) [%]")
    ax.grid(axis="y", visible=False)
    enough, _ = universes_verdict(checks)
    short = sum(not c.enough and c.matters for c in checks)
    verdict = (
        "yes" if enough else f"no, {short} systematic{'s' * (short > 1)} that matter need more"
    )
    fig.suptitle(
        f"{ds.attrs.get('sample', 'result')}: enough universes? {verdict}",
        fontsize=13,
        fontweight="bold",
    )
    return fig
