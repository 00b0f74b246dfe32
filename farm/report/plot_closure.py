"""The closure figure: knob universe over regenerated sample, per reco bin, at each shift."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from farm.closure import KnobClosure
from farm.report.style import new_figure, report_style

__all__ = ["plot_closure"]

_SHIFT_COLORS = {-1: "#0072B2", 1: "#D55E00"}


def plot_closure(
    results: Sequence[KnobClosure], reco_edges: Sequence[float], observable: str, out: Path
) -> Path:
    """One row per knob, signal and background side by side: the ratio a/b of the knob universe
    to the regenerated sample with its MC-statistics error √(σ²_a + σ²_b)/b, for −Kσ and +Kσ."""
    edges = np.asarray(reco_edges, dtype=np.float64)
    centers = 0.5 * (edges[1:] + edges[:-1])
    width = np.diff(edges)
    names = list(dict.fromkeys(r.systematic for r in results))
    with report_style():
        fig = new_figure(11.0, 2.4 * max(len(names), 1) + 0.6)
        axes = fig.subplots(max(len(names), 1), 2, squeeze=False, sharex=True)
        for row, name in enumerate(names):
            for col, kind in enumerate(("signal", "background")):
                ax = axes[row, col]
                ax.axhline(1.0, color="#000000", linewidth=0.8)
                for r in (r for r in results if r.systematic == name):
                    a, b = getattr(r.knob, kind), getattr(r.regenerated, kind)
                    var = getattr(r.knob, f"{kind}_var") + getattr(r.regenerated, f"{kind}_var")
                    ratio = r.ratio(kind)
                    err = np.divide(np.sqrt(var), b, out=np.full(b.shape, np.nan), where=b > 0)
                    sign = 1 if r.shift > 0 else -1
                    offset = 0.12 * sign * width
                    ax.errorbar(
                        centers + offset,
                        ratio,
                        yerr=err,
                        fmt="o",
                        markersize=4,
                        color=_SHIFT_COLORS[sign],
                        label=f"{r.n_sigma:+g}σ ({r.parameter} {r.shift:+.3g}): "
                        f"p = {r.p_value:.2f}" + ("" if r.passed else "  FAILS"),
                    )
                    del a
                ax.set_title(f"{name}: {kind}", loc="left")
                ax.set_ylabel("knob / regenerated")
                ax.legend(loc="best", fontsize=8)
        for ax in axes[-1]:
            ax.set_xlabel(observable)
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return path
