"""Figures of a fit, drawn from its dataset (:func:`farm.fit.dataset.fit_dataset`). Pure.

- ``profile_<name>``: the data's Δχ² along each parameter, the Wilks thresholds (χ²₁ quantiles),
  the Feldman–Cousins critical values with their Monte-Carlo band, and both intervals.
- ``grid``: Δχ² over two parameters with the Wilks contours (χ²₂ quantiles).
- ``toys_<name>``: the toys' Δχ² at the point nearest the best fit against the χ²₁ law that
  Wilks' theorem assumes.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["grid_figure", "profile_figure", "toys_figure"]

_FC = "#D55E00"
_WILKS = "#0072B2"
_DATA = "#000000"
_LINES = ("-", "--", ":", "-.")


def _cl_label(cl: float) -> str:
    return f"{100 * cl:.4g} %"


def profile_figure(ds: xr.Dataset, name: str) -> Figure:
    """Δχ²(θ) of one parameter with the Wilks and Feldman–Cousins thresholds and intervals."""
    fig = Figure(figsize=(8.0, 4.8))
    ax = fig.add_subplot()
    theta = ds[f"grid_{name}"].values
    ax.plot(theta, ds[f"profile_{name}"].values, color=_DATA, lw=1.6, label="data Δχ² (profile)")
    cls = ds["cl"].values
    top = 0.0
    for c, cl in enumerate(cls):
        style = _LINES[c % len(_LINES)]
        threshold = scipy.stats.chi2.ppf(cl, 1)
        top = max(top, threshold)
        ax.axhline(threshold, color=_WILKS, ls=style, lw=1.0, label=f"Wilks {_cl_label(cl)}")
        if f"fc_crit_{name}" in ds:
            x = ds[f"fc_theta_{name}"].values
            crit = ds[f"fc_crit_{name}"].values[c]
            lo = ds[f"fc_crit_lower_{name}"].values[c]
            hi = ds[f"fc_crit_upper_{name}"].values[c]
            ax.fill_between(x, lo, hi, color=_FC, alpha=0.18, lw=0)
            ax.plot(
                x,
                crit,
                color=_FC,
                ls=style,
                lw=1.4,
                marker=".",
                label=f"Feldman–Cousins {_cl_label(cl)}",
            )
            top = max(top, float(np.nanmax(hi)))
            lower, upper = (
                ds["fc_lower"].sel(parameter=name).values[c],
                ds["fc_upper"].sel(parameter=name).values[c],
            )
            if np.isfinite(lower):
                ax.axvspan(lower, upper, color=_FC, alpha=0.06)
    if f"fc_data_{name}" in ds:
        ax.plot(
            ds[f"fc_theta_{name}"].values,
            ds[f"fc_data_{name}"].values,
            "o",
            color=_DATA,
            ms=3.5,
            label="data at the FC points",
        )
    best = float(ds["best_fit"].sel(parameter=name))
    ax.axvline(best, color="#777777", lw=0.8)
    ax.set_ylim(0.0, 2.2 * top)
    ax.set_xlim(theta[0], theta[-1])
    ax.set_xlabel(name)
    ax.set_ylabel("Δχ²")
    ax.set_title(f"{name}: profile Δχ² ({ds.attrs.get('convention', '')}-flux convention)")
    ax.legend(loc="upper center", ncols=2, fontsize=9)
    fig.tight_layout()
    return fig


def grid_figure(ds: xr.Dataset) -> Figure:
    """Δχ² over the grid of two parameters, with the Wilks contours (2 dof) and the best fit."""
    names = [str(n) for n in ds["parameter"].values]
    x, y = ds[f"grid_{names[0]}"].values, ds[f"grid_{names[1]}"].values
    fig = Figure(figsize=(7.0, 5.6))
    ax = fig.add_subplot()
    dchi2 = ds["dchi2_grid"].values
    mesh = ax.pcolormesh(x, y, np.clip(dchi2.T, 0, None), shading="nearest", cmap="viridis_r",
                         vmin=0, vmax=max(12.0, float(scipy.stats.chi2.ppf(max(ds["cl"].values), 2)) * 2))  # fmt: skip
    fig.colorbar(mesh, ax=ax, label="Δχ²")
    levels = sorted(scipy.stats.chi2.ppf(ds["cl"].values, 2))
    contours = ax.contour(x, y, dchi2.T, levels=levels, colors="white", linewidths=1.2)
    ax.clabel(
        contours,
        fmt={lv: _cl_label(cl) for lv, cl in zip(levels, sorted(ds["cl"].values), strict=True)},
        fontsize=8,
    )
    best = ds["best_fit"].values
    ax.plot(best[0], best[1], marker="*", color=_FC, ms=12, ls="none", label="best fit")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("Δχ² over two parameters (Wilks contours, 2 dof)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def toys_figure(ds: xr.Dataset, name: str) -> Figure:
    """The toys' Δχ² at the Feldman–Cousins point nearest the best fit against χ²₁."""
    theta = ds[f"fc_theta_{name}"].values
    best = float(ds["best_fit"].sel(parameter=name))
    i = int(np.argmin(np.abs(theta - best)))
    toys = ds[f"fc_toys_{name}"].values[i]
    fig = Figure(figsize=(7.0, 4.4))
    ax = fig.add_subplot()
    top = max(float(np.quantile(toys, 0.995)), 6.0)
    bins = np.linspace(0.0, top, 41)
    ax.hist(
        toys,
        bins=bins,
        density=True,
        color=_FC,
        alpha=0.55,
        label=f"{toys.size} toys at {name} = {theta[i]:.4g}",
    )
    x = np.linspace(bins[1] / 4, top, 300)
    ax.plot(x, scipy.stats.chi2.pdf(x, 1), color=_WILKS, lw=1.5, label="χ²₁ (Wilks)")
    data = float(ds[f"fc_data_{name}"].values[i])
    ax.axvline(data, color=_DATA, lw=1.2, label=f"data Δχ² = {data:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("Δχ²")
    ax.set_ylabel("density")
    ax.set_title(f"{name}: toys' Δχ² against Wilks' χ²₁")
    ax.legend()
    fig.tight_layout()
    return fig
