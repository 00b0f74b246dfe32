"""The report's one HTML page: tables from farm.report.quantities, figures by reference.

Pure: takes the dataset and where each figure is (a relative file name or a ``data:`` URI) and
returns the page as a string. No scripts, no external fonts or styles: it renders offline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from html import escape

import numpy as np
import xarray as xr

import farm
from farm.report._html import cell as _cell
from farm.report._html import difference as _difference
from farm.report._html import format_chi2
from farm.report._html import pvalue as _pvalue
from farm.report._html import sci as _sci
from farm.report._html import table as _table
from farm.report.page_diagnostics import diagnostics_section, universes_banner
from farm.report.quantities import (
    CONVENTIONS,
    Breakdown,
    breakdown,
    chi2_rows,
    config_of,
    conventions_coincide,
    provenance,
    truth_bins,
)
from farm.report.style import CONVENTION_TITLES
from farm.report.universes import default_threshold

__all__ = ["FIGURES", "format_chi2", "render_page"]

FIGURES: dict[str, str] = {
    "cross_section": "Extracted cross section",
    "uncertainty": "Uncertainty breakdown",
    "correlation": "Correlation matrices",
    "flux": "Flux universes",
    "universes": "Enough universes?",
}
"""Figure name (the PNG is NAME.png) → its heading, in page order."""

_CSS = """
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f;
       background: #f4f5f7; margin: 0; line-height: 1.45; font-size: 15px; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: white; }
header { border-bottom: 3px solid #0072B2; padding-bottom: 10px; margin-bottom: 8px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 34px 0 8px; padding-top: 6px; border-top: 1px solid #e3e3e3; }
h3 { font-size: 16px; margin: 18px 0 6px; }
.lead { font-size: 16px; color: #444; margin: 2px 0; }
.meta { color: #666; font-size: 13px; margin: 2px 0; }
nav { font-size: 14px; margin: 10px 0 0; }
nav a { margin-right: 14px; color: #0072B2; text-decoration: none; }
figure { margin: 10px 0 6px; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid #e3e3e3; }
figcaption { font-size: 13px; color: #555; margin-top: 4px; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e6e6; text-align: right; }
th { background: #eef2f6; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
td.text, th.text { text-align: left; }
tr:nth-child(even) td { background: #fafbfc; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.ok { color: #0a7d32; font-weight: 600; }
.bad { color: #b00020; font-weight: 600; }
.minor { color: #8a6d00; }
.verdict { padding: 10px 14px; border-radius: 6px; margin: 10px 0; font-size: 15px; }
.verdict.ok { background: #e7f6ec; border: 1px solid #9fd8b1; }
.verdict.bad { background: #fdecee; border: 1px solid #f1a7b1; }
code, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 12.5px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; max-height: 420px; }
.note { font-size: 13px; color: #555; }
/* a phone (390 px): narrower margins, and wide tables scroll inside their own box */
@media (max-width: 700px) {
  main { padding: 12px 14px 32px; }
  h1 { font-size: 22px; }
  h2 { font-size: 18px; }
  table { display: block; max-width: 100%; overflow-x: auto; }
  th, td { padding: 3px 6px; }
}
"""


def _collapsed(body: str, summary: str, *, open_: bool) -> str:
    """A long table behind a disclosure triangle (left open when it is short)."""
    return f"<details{' open' if open_ else ''}><summary>{summary}</summary>{body}</details>"


def _figure(name: str, src: str, caption: str) -> str:
    alt = escape(FIGURES[name])
    return (
        f'<figure id="fig-{name}"><img src="{escape(src, quote=True)}" alt="{alt}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


# --- sections ----------------------------------------------------------------------------------


def _measurement_table(ds: xr.Dataset) -> str:
    from farm.analysis.quoted import with_quoted

    ds = with_quoted(ds)
    bins = truth_bins(ds)
    budgets: dict[str, Breakdown] = {c: breakdown(ds, c) for c in CONVENTIONS}
    truth = str(ds.attrs.get("truth_variable", "total"))
    units = escape(str(ds["sigma_real"].attrs.get("units", "cm2 per target")).replace("cm2", "cm²"))
    symbol = {"enu_true": "⟨σ⟩", "total": "σ"}.get(truth, "dσ/dx")
    axis = "true E<sub>ν</sub> bin [MeV]" if truth == "enu_true" else f"true {escape(truth)} bin"
    head = [axis if not bins.is_total else "bin"]
    for c in CONVENTIONS:
        head += [f"{symbol} {CONVENTION_TITLES[c]} [{units}]", "total", "stat"]
    rows = []
    for j, label in enumerate(bins.bin_labels()):
        row = [f'<td class="text">{escape(label)}</td>']
        for c in CONVENTIONS:
            b = budgets[c]
            row.append(_cell(_sci(float(b.central_cm2[j])), value=float(b.central_cm2[j])))
            row.append(_cell(f"± {100 * b.fractional(b.total_sigma_cm2)[j]:.1f} %"))
            row.append(_cell(f"± {100 * b.fractional(b.stat_sigma_cm2)[j]:.1f} %"))
        rows.append(row)
    return _table(head, rows)


def _coincide_note(ds: xr.Dataset) -> str:
    """One sentence when the two flux conventions hold the same numbers (one panel is drawn)."""
    if not conventions_coincide(ds):
        return ""
    return (
        '<p class="note">The real- and nominal-flux-averaged cross sections, their uncertainties '
        "and the predictions coincide for this result (every flux systematic moves the flux of "
        "a truth bin and the flux that normalises it alike), so each figure shows one panel for "
        "both; the tables keep both columns.</p>"
    )


def _uncertainty_table(ds: xr.Dataset) -> str:
    """Fractional ±1σ per group, stat and total: rows are bins (both conventions if they differ)."""
    bins = truth_bins(ds)
    rows = []
    for c in CONVENTIONS:
        b = breakdown(ds, c)
        columns = [("total", b.total_sigma_cm2), ("stat", b.stat_sigma_cm2)]
        columns += list(zip(b.groups, b.group_sigma_cm2, strict=True))
        columns += [(f"{g} (cross-check)", s) for g, s in b.crosscheck_sigma_cm2.items()]
        head = ["convention", "bin", *[escape(name) for name, _ in columns]]
        for j, label in enumerate(bins.bin_labels()):
            row = [
                f'<td class="text">{CONVENTION_TITLES[c]}</td>',
                f'<td class="text">{label}</td>',
            ]
            row += [_cell(f"{100 * b.fractional(s)[j]:.2f} %") for _, s in columns]
            rows.append(row)
    return _table(head, rows, text_cols=(0, 1))


def _mc_error(ds: xr.Dataset, model: str, convention: str) -> str:
    """± the Monte-Carlo error of the joint chi-square from the finite universes ("—" if none)."""
    name = f"chi2_{convention}_joint_mc_error"
    if name not in ds:
        return _cell("—")
    k = [str(v) for v in ds["model"].values].index(model)
    error = float(ds[name].values[k])
    text = f"± {error:.2g}" if math.isfinite(error) else "± ∞"
    chi2 = float(ds[f"chi2_{convention}_joint"].values[k])
    big = not math.isfinite(error) or error > max(1.0, 0.1 * abs(chi2))
    return f'<td class="{"bad" if big else "ok"}" data-value="{error!r}">{text}</td>'


def _chi2_section(ds: xr.Dataset) -> str:
    head = [
        "model",
        "convention",
        "χ² with correlation",
        "MC error",
        "p-value",
        "χ² ignoring it",
        "p-value",
        "Δχ²",
        "dof",
    ]
    rows = []
    for r in chi2_rows(ds):
        rows.append(
            [
                f'<td class="text">{escape(r.model)}</td>',
                f'<td class="text">{CONVENTION_TITLES[r.convention]}</td>',
                _cell(format_chi2(r.chi2_joint), value=r.chi2_joint),
                _mc_error(ds, r.model, r.convention),
                _cell(_pvalue(r.pvalue_joint), value=r.pvalue_joint),
                _cell(format_chi2(r.chi2_uncorrelated), value=r.chi2_uncorrelated),
                _cell(_pvalue(r.pvalue_uncorrelated), value=r.pvalue_uncorrelated),
                _cell(_difference(r.chi2_joint - r.chi2_uncorrelated)),
                _cell(str(r.dof)),
            ]
        )
    return (
        _table(head, rows, text_cols=(0, 1))
        + '<p class="note">χ² = Δᵀ V⁻¹ Δ with Δ = measured − predicted and '
        "V = V<sub>mm</sub> + V<sub>pp</sub> − V<sub>mp</sub> − V<sub>pm</sub> + V<sub>stat</sub> "
        "over the shared universes; “ignoring it” sets V<sub>mp</sub> = 0. Δχ² is the first minus "
        "the second. The generator is the model the events were produced with. MC error: how far "
        "the finite universes may move the χ² (delete-one-universe jackknife, its variance and "
        "bias; red when above 1 and 10 % of the χ²). V<sub>stat</sub>: "
        f"{escape(str(ds.attrs.get('stat_covariance_real', 'data statistics')))}.</p>"
    )


def _provenance_section(ds: xr.Dataset, result: str) -> str:
    rows = [("result", result), *provenance(ds), ("report written by", f"farm {farm.__version__}")]
    table = _table(
        ["item", "value"],
        [
            [
                f'<td class="text">{escape(k)}</td>',
                f'<td class="text"><code>{escape(v)}</code></td>',
            ]
            for k, v in rows
        ],
        text_cols=(0, 1),
    )
    config = json.dumps(config_of(ds), indent=2, sort_keys=True, ensure_ascii=False)
    return (
        table
        + "<details><summary>full configuration (as validated)</summary>"
        + f"<pre>{escape(config)}</pre></details>"
    )


def _headline(ds: xr.Dataset) -> str:
    bins = truth_bins(ds)
    b = breakdown(ds, "real")
    if bins.is_total:
        cv = float(b.central_cm2[0])
        total = float(b.fractional(b.total_sigma_cm2)[0])
        stat = float(b.fractional(b.stat_sigma_cm2)[0])
        return (
            f'<p class="lead">Flux-averaged cross section (real flux): <b>{_sci(cv)} cm² per '
            f"{escape(str(ds.attrs.get('cross_section_target', 'target')))}</b> ± {100 * total:.1f} % "
            f"(stat ± {100 * stat:.1f} %).</p>"
        )
    frac = 100 * b.fractional(b.total_sigma_cm2)
    edges = bins.edges_mev if bins.edges_mev is not None else np.array([np.nan, np.nan])
    return (
        f'<p class="lead">Cross section in {bins.n_bins} true-E<sub>ν</sub> bins from '
        f"{edges[0]:g} to {edges[-1]:g} MeV; total uncertainty "
        f"{np.min(frac):.1f}–{np.max(frac):.1f} % per bin.</p>"
    )


def render_page(
    ds: xr.Dataset,
    images: Mapping[str, str],
    *,
    result: str,
    threshold: float | None = None,
) -> str:
    """The whole report page; ``images`` maps each name in :data:`FIGURES` to its ``src``.

    ``threshold`` defaults to the run's ``[analysis] universe_precision``."""
    threshold = default_threshold(ds) if threshold is None else threshold
    missing = [name for name in FIGURES if name not in images]
    if missing:
        msg = f"images for every figure are needed; missing {missing} (names: {list(FIGURES)})"
        raise ValueError(msg)
    sample = escape(str(ds.attrs.get("sample", "result")))
    description = escape(str(config_of(ds).get("sample", {}).get("description", "")))
    method = escape(str(ds.attrs.get("extraction_method", "?")))
    # counted as `farm run` counts them: universe 0 (the central value) and every throw
    n_universes = ds.sizes["universe"]
    nav = " ".join(
        f'<a href="#{anchor}">{title}</a>'
        for anchor, title in (
            ("cross-section", "cross section"),
            ("uncertainties", "uncertainties"),
            ("correlations", "correlations"),
            ("flux", "flux"),
            ("model-tests", "χ² tests"),
            ("diagnostics", "diagnostics"),
            ("provenance", "provenance"),
        )
    )
    caption = {
        "cross_section": "Boxes nest ±1σ in quadrature: data statistics innermost, then each "
        "systematic group added in turn; the outermost box is the total. Real-flux-averaged: "
        "flux uncertainty enters through Φ, B and ε, and the prediction carries it too; "
        "nominal-flux-averaged: all flux uncertainty is in the measurement.",
        "uncertainty": "±1σ of each group relative to the central value; the total is "
        "√diag of the total covariance (systematics ⊕ stat). A cross-check set (all knobs "
        "thrown together) is shown dashed/hatched and is not added into the total.",
        "correlation": (
            "One bin, whose own correlation is trivially 1: ρ between the measurement (with data "
            "statistics) and each model's prediction over the shared universes; “—” marks a "
            "prediction that no universe moves. It is what separates the two χ² columns below."
            if truth_bins(ds).is_total
            else "ρ = V<sub>ab</sub> / √(V<sub>aa</sub> V<sub>bb</sub>) of the total covariance "
            "(systematics ⊕ stat)."
        ),
        "flux": "Flux per MeV over the exposure on the flux-systematic E<sub>ν</sub> bins (on a "
        "log axis where the spectrum spans more than two decades); the band is ±1σ of all flux "
        "systematics (variances added), lower panels each systematic in its own colour.",
        "universes": "Bars: the larger of the two conventions; the number of universes thrown "
        "is in brackets.",
    }
    fig = {name: _figure(name, images[name], caption[name]) for name in FIGURES}
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>farm report — {sample}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>farm report — {sample}</h1>
<p class="lead">{description}</p>
{_headline(ds)}
{universes_banner(ds, threshold)}
<p class="meta">{n_universes} universes (the central value and {n_universes - 1} throws) · extraction {method} · result <code>{escape(result)}</code></p>
<nav>{nav}</nav>
</header>

<section id="cross-section">
<h2>{FIGURES["cross_section"]}</h2>
{_coincide_note(ds)}
{fig["cross_section"]}
{_measurement_table(ds)}
</section>

<section id="uncertainties">
<h2>{FIGURES["uncertainty"]}</h2>
{fig["uncertainty"]}
{_collapsed(_uncertainty_table(ds), "fractional ±1σ per bin", open_=truth_bins(ds).is_total)}
</section>

<section id="correlations">
<h2>{FIGURES["correlation"]}</h2>
{fig["correlation"]}
</section>

<section id="flux">
<h2>{FIGURES["flux"]}</h2>
{fig["flux"]}
</section>

<section id="model-tests">
<h2>Model tests (χ²)</h2>
{_chi2_section(ds)}
</section>

<section id="diagnostics">
<h2>Diagnostics</h2>
{diagnostics_section(ds, threshold, fig["universes"])}
</section>

<section id="provenance">
<h2>Provenance</h2>
{_provenance_section(ds, result)}
</section>
</main>
</body>
</html>
"""
