"""The extracted cross section with its error budget, and the fractional-uncertainty breakdown.

The cross section as quoted (farm.analysis.quoted): ⟨σ⟩_j = ∫_j F σ dE / ∫_j F dE in true-E_ν
bins, dσ/dx per unit of a kinematic truth variable, the flux-averaged total for one bin; not the
seed's flux share S_j, which follows the bin widths and the flux shape. Both conventions side by
side. The error bars are boxes nested in quadrature: the innermost is
the data statistics, each next box adds one systematic group, the outermost is the total
(√diag of ``cov_total_*``), so the visible part of each colour is that group's contribution.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from farm.report.quantities import (
    CONVENTIONS,
    Breakdown,
    TruthBins,
    breakdown,
    conventions_coincide,
    labels,
    prediction_sigma,
    quadrature_layers,
    truth_bins,
)
from farm.report.style import (
    CONVENTION_TITLES,
    CROSSCHECK_COLOR,
    STAT_COLOR,
    TOTAL_COLOR,
    group_colors,
    model_colors,
    model_lines,
    new_figure,
    power_of_ten,
    scale_label,
)

__all__ = ["cross_section_figure", "panel_conventions", "uncertainty_figure"]

ENU_LABEL = r"true $E_\nu$ [MeV]"
_DEFINITION = {
    "enu": {
        "real": r"$\langle\sigma\rangle_j = \int_j F\sigma\,dE / \int_j F\,dE$",
        "nominal": r"$\int_j \bar{F}\sigma\,dE / \int_j \bar{F}\,dE$",
    },
    "kinematic": {
        "real": r"$d\sigma/dx = \int F\!\int_j \frac{d\sigma}{dx}dx\,dE\;/\;(\Phi\,\Delta x_j)$",
        "nominal": r"$\int \bar{F}\!\int_j \frac{d\sigma}{dx}dx\,dE\;/\;(\bar\Phi\,\Delta x_j)$",
    },
    "total": {
        "real": r"$\int F\,\sigma\,dE\;/\;\Phi$",
        "nominal": r"$\int \bar{F}\,\sigma\,dE\;/\;\bar\Phi$",
    },
}


def _kind(ds: xr.Dataset) -> str:
    truth = str(ds.attrs.get("truth_variable", "total"))
    return "total" if truth == "total" else "enu" if truth == "enu_true" else "kinematic"


def _axis_label(ds: xr.Dataset) -> str:
    if _kind(ds) == "enu":
        return ENU_LABEL
    truth = str(ds.attrs.get("truth_variable", "x"))
    units = str(ds["truth_lo"].attrs.get("units", "")) if "truth_lo" in ds.coords else ""
    return f"true {truth} [{units}]" if units else f"true {truth}"


def _units(ds: xr.Dataset) -> str:
    """σ's units for an axis label: cm² (per unit of x) per target, the target named."""
    units = str(ds["sigma_real"].attrs.get("units", "cm2 per target"))
    return units.replace("cm2", "cm²")


def _layer_colors(b: Breakdown) -> dict[str, str]:
    return {"stat": STAT_COLOR, **group_colors(b.groups)}


def _layer_label(name: str, first: bool) -> str:
    return "data statistics" if name == "stat" else f"{'' if first else '⊕ '}{name}"


def _boxes(ax: Axes, x: np.ndarray, width: np.ndarray, b: Breakdown, scale: float) -> None:
    """Nested ±1σ boxes, widest first so each inner box is drawn on top of the outer ones."""
    colors = _layer_colors(b)
    for name, sigma in reversed(quadrature_layers(b)):
        ax.bar(
            x,
            2 * sigma / scale,
            bottom=(b.central_cm2 - sigma) / scale,
            width=width,
            color=colors[name],
            edgecolor="none",
            zorder=2,
        )


_BAND_ALPHA = 0.18
"""Opacity of a model's ±1σ band, in the plot and in its legend swatch alike."""

Handle = Line2D | Patch | tuple[Patch, Line2D, str]


def _legend_handles(b: Breakdown, models: list[str], *, points: bool) -> list[Handle]:
    colors = _layer_colors(b)
    handles: list[Handle] = [
        Line2D([], [], color="black", marker="o", ls="none", label="measured (central value)")
    ]
    handles += [
        Patch(color=colors[name], label=_layer_label(name, k == 0))
        for k, (name, _) in enumerate(quadrature_layers(b))
    ]
    lines = model_lines(models)
    for model, color in model_colors(models).items():
        if points:
            handles.append(
                Line2D([], [], color=color, marker="D", ms=8, ls="none", label=f"{model} ±1σ")
            )
        else:
            # the swatch is the model's own line over its own band, as drawn
            band = Patch(color=color, alpha=_BAND_ALPHA, lw=0)
            line = Line2D([], [], color=color, lw=2, ls=lines[model])
            handles.append((band, line, f"{model} ±1σ"))
    return handles


def _predictions(ds: xr.Dataset, convention: str) -> np.ndarray:
    """(M, J) every model's central-value prediction of σ (the generator first)."""
    return np.asarray(ds[f"model_sigma_{convention}"].values[:, 0, :], dtype=np.float64)


def _draw_total(ax: Axes, ds: xr.Dataset, b: Breakdown, models: list[str], scale: float) -> None:
    """One flux-averaged bin: the measurement at x = 0, each model at x = 1, 2, …"""
    _boxes(ax, np.zeros(1), np.array([0.45]), b, scale)
    ax.plot([0], b.central_cm2 / scale, "o", color="black", ms=7, zorder=4)
    cv, total = float(b.central_cm2[0]), float(b.total_sigma_cm2[0])
    ax.axhspan((cv - total) / scale, (cv + total) / scale, color="black", alpha=0.06, zorder=0)
    ax.axhline(cv / scale, color="black", lw=0.8, ls=":", zorder=1)
    colors = model_colors(models)
    predictions = _predictions(ds, b.convention)[:, 0]
    spreads = prediction_sigma(ds, b.convention)[:, 0]
    for k, model in enumerate(models):
        ax.errorbar(
            [k + 1],
            [predictions[k] / scale],
            yerr=[spreads[k] / scale],
            fmt="D",
            color=colors[model],
            ms=9,
            capsize=6,
            lw=2,
            zorder=4,
        )
    ax.set_xticks(range(len(models) + 1), ["measured", *models], rotation=15, ha="right")
    ax.set_xlim(-0.6, len(models) + 0.6)
    values = [cv - total, cv + total, *(predictions - spreads), *(predictions + spreads)]
    lo, hi = min(values) / scale, max(values) / scale
    ax.set_ylim(lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo))
    ax.grid(axis="x", visible=False)


def _draw_binned(
    ax: Axes,
    ratio: Axes,
    ds: xr.Dataset,
    b: Breakdown,
    bins: TruthBins,
    models: list[str],
    scale: float,
) -> None:
    edges = bins.edges_mev
    assert edges is not None
    centers = 0.5 * (edges[1:] + edges[:-1])
    widths = np.diff(edges)
    _boxes(ax, centers, 0.7 * widths, b, scale)
    ax.errorbar(
        centers, b.central_cm2 / scale, xerr=widths / 2, fmt="o", color="black", ms=4.5, zorder=4
    )
    cv = np.where(b.central_cm2 != 0, b.central_cm2, np.nan)
    relative = Breakdown(
        convention=b.convention,
        central_cm2=np.ones_like(cv),
        groups=b.groups,
        group_sigma_cm2=b.group_sigma_cm2 / np.abs(cv),
        stat_sigma_cm2=b.stat_sigma_cm2 / np.abs(cv),
        total_sigma_cm2=b.total_sigma_cm2 / np.abs(cv),
        crosscheck_sigma_cm2={},
    )
    _boxes(ratio, centers, 0.7 * widths, relative, 1.0)
    ratio.axhline(1.0, color="black", lw=0.8, zorder=3)
    colors, lines = model_colors(models), model_lines(models)
    predictions = _predictions(ds, b.convention)
    spreads = prediction_sigma(ds, b.convention)
    extent = [np.nanmax(relative.total_sigma_cm2)]
    for model, pred, spread in zip(models, predictions, spreads, strict=True):
        style = {"color": colors[model], "lw": 2, "ls": lines[model], "zorder": 3}
        band = {"fill": True, "color": colors[model], "alpha": _BAND_ALPHA, "lw": 0, "zorder": 1}
        ax.stairs(pred / scale, edges, baseline=None, **style)
        ax.stairs((pred + spread) / scale, edges, baseline=(pred - spread) / scale, **band)
        ratio.stairs(pred / cv, edges, baseline=None, **style)
        ratio.stairs((pred + spread) / cv, edges, baseline=(pred - spread) / cv, **band)
        extent.append(np.nanmax(np.abs(pred / cv - 1) + spread / np.abs(cv)))
    half = 1.15 * max(extent)
    ratio.set_ylim(1 - half, 1 + half)
    ratio.set_xlabel(_axis_label(ds))
    ratio.set_xlim(edges[0], edges[-1])
    ax.set_ylim(bottom=0)


def panel_conventions(ds: xr.Dataset) -> tuple[str, ...]:
    """The conventions that get a panel: both, or only ``real`` when the two hold the same
    numbers (farm.report.quantities.conventions_coincide), which the title then says."""
    return ("real",) if conventions_coincide(ds) else CONVENTIONS


def _panel_title(convention: str, kind: str, n_panels: int) -> str:
    if n_panels == 1:
        return f"real- and nominal-flux-averaged coincide: {_DEFINITION[kind]['real']}"
    return f"{CONVENTION_TITLES[convention]}: {_DEFINITION[kind][convention]}"


def _legend(fig: Figure, handles: list[Handle]) -> None:
    """The figure's legend below the panels; a (band, line, label) entry draws both at once."""
    artists = [h[:2] if isinstance(h, tuple) else h for h in handles]
    names = [h[2] if isinstance(h, tuple) else h.get_label() for h in handles]
    fig.legend(artists, names, loc="outside lower center", ncols=min(len(handles), 4))


def cross_section_figure(ds: xr.Dataset) -> Figure:
    """The extracted cross section in both conventions, with every model's prediction.

    Error boxes nest stat ⊕ each systematic group in quadrature (see the module docstring).
    """
    from farm.analysis.quoted import with_quoted

    ds = with_quoted(ds)
    bins = truth_bins(ds)
    models = labels(ds, "model")
    budgets = {c: breakdown(ds, c) for c in CONVENTIONS}
    everything = [budgets[c].central_cm2 for c in CONVENTIONS]
    everything += [_predictions(ds, c) for c in CONVENTIONS]
    exponent = power_of_ten(np.concatenate([np.ravel(v) for v in everything]))
    scale = 10.0**exponent
    kind = _kind(ds)
    symbol = {"enu": r"$\langle\sigma\rangle$", "kinematic": r"$d\sigma/dx$", "total": r"$\sigma$"}
    ylabel = scale_label(symbol[kind], exponent, _units(ds))
    shown = panel_conventions(ds)
    if bins.is_total:
        fig = new_figure(11.0, 5.6)
        axes = fig.subplots(1, len(shown), sharey=True, squeeze=False)[0]
        for ax, c in zip(axes, shown, strict=True):
            _draw_total(ax, ds, budgets[c], models, scale)
            ax.set_title(_panel_title(c, kind, len(shown)))
        axes[0].set_ylabel(f"flux-averaged total {ylabel}")
    else:
        fig = new_figure(11.0, 7.2)
        grid = fig.subplots(
            2, len(shown), sharex=True, sharey="row", height_ratios=[3, 1.3], squeeze=False
        )
        for col, c in enumerate(shown):
            _draw_binned(grid[0, col], grid[1, col], ds, budgets[c], bins, models, scale)
            grid[0, col].set_title(_panel_title(c, kind, len(shown)))
        grid[0, 0].set_ylabel(ylabel)
        grid[1, 0].set_ylabel("ratio to measured")
    _legend(fig, _legend_handles(budgets["real"], models, points=bins.is_total))
    fig.suptitle(
        f"{ds.attrs.get('sample', 'result')}: extracted cross section, ±1σ by group in quadrature",
        fontsize=13,
        fontweight="bold",
    )
    return fig


# --- fractional uncertainties ------------------------------------------------------------------


def _fractional_rows(b: Breakdown) -> list[tuple[str, np.ndarray, str, str]]:
    """(label, fractional σ per bin, colour, line style), total first."""
    colors = group_colors(b.groups)
    rows = [("total", b.fractional(b.total_sigma_cm2), TOTAL_COLOR, "-")]
    rows.append(("data statistics", b.fractional(b.stat_sigma_cm2), STAT_COLOR, "-"))
    rows += [
        (g, b.fractional(s), colors[g], "-")
        for g, s in zip(b.groups, b.group_sigma_cm2, strict=True)
    ]
    rows += [
        (f"{g} (cross-check, not in total)", b.fractional(s), CROSSCHECK_COLOR, "--")
        for g, s in b.crosscheck_sigma_cm2.items()
    ]
    return rows


def _bars(ax: Axes, b: Breakdown) -> None:
    rows = _fractional_rows(b)
    y = np.arange(len(rows))[::-1]
    values = np.array([100 * r[1][0] for r in rows])
    ax.barh(
        y,
        values,
        color=[r[2] for r in rows],
        hatch=[("//" if r[3] == "--" else "") for r in rows],
        edgecolor="white",
        height=0.7,
    )
    for yy, v in zip(y, values, strict=True):
        ax.text(v, yy, f" {v:.2f} %", va="center", fontsize=10)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.set_xlabel("fractional uncertainty (±1σ) [%]")
    ax.set_xlim(0, 1.25 * max(values.max(), 1e-9))
    ax.grid(axis="y", visible=False)


def _steps(ax: Axes, b: Breakdown, edges: np.ndarray, xlabel: str = ENU_LABEL) -> None:
    for label, frac, color, ls in _fractional_rows(b):
        lw = 2.8 if label == "total" else 1.8
        ax.stairs(100 * frac, edges, color=color, ls=ls, lw=lw, label=label, baseline=None)
    ax.set_xlabel(xlabel)
    ax.set_xlim(edges[0], edges[-1])


def uncertainty_figure(ds: xr.Dataset) -> Figure:
    """Fractional ±1σ per systematic group, data statistics and in total, per convention."""
    from farm.analysis.quoted import with_quoted

    ds = with_quoted(ds)
    bins = truth_bins(ds)
    budgets = {c: breakdown(ds, c) for c in CONVENTIONS}
    n_rows = len(_fractional_rows(budgets["real"]))
    shown = panel_conventions(ds)
    if bins.is_total:
        fig = new_figure(11.0, 1.6 + 0.42 * n_rows)
        axes = fig.subplots(1, len(shown), sharex=True, sharey=True, squeeze=False)[0]
        for ax, c in zip(axes, shown, strict=True):
            _bars(ax, budgets[c])
    else:
        assert bins.edges_mev is not None
        fig = new_figure(11.0, 5.4)
        axes = fig.subplots(1, len(shown), sharey=True, squeeze=False)[0]
        for ax, c in zip(axes, shown, strict=True):
            _steps(ax, budgets[c], bins.edges_mev, _axis_label(ds))
        top = max(100 * np.nanmax(r[1]) for c in shown for r in _fractional_rows(budgets[c]))
        axes[0].set_ylim(0, 1.12 * top)
        axes[0].set_ylabel("fractional uncertainty (±1σ) [%]")
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 4))
    for ax, c in zip(axes, shown, strict=True):
        ax.set_title(
            CONVENTION_TITLES[c] if len(shown) > 1 else "real- and nominal-flux-averaged coincide"
        )
    fig.suptitle(
        f"{ds.attrs.get('sample', 'result')}: uncertainty breakdown by systematic group",
        fontsize=13,
        fontweight="bold",
    )
    return fig
