"""The report of a multi-sample measurement: the cross-sample correlation, χ² per sample and
combined, which systematics are shared; and every sample's own report beside it."""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from farm.analysis.covariance import correlation
from farm.report._html import cell, format_chi2, pvalue, table
from farm.report.plot_diagnostics import _heatmap
from farm.report.style import report_style

__all__ = ["CROSS_SAMPLE_FIGURE", "cross_sample_figure", "shared_correlation", "write_joint_report"]

CROSS_SAMPLE_FIGURE = "cross_sample_correlation"


def _labels(ds: xr.Dataset) -> list[str]:
    sizes = dict(zip(ds["sample"].values, ds["sample_bins"].values, strict=True))
    return [
        str(s) if sizes[s] == 1 else f"{s}[{int(k)}]"
        for s, k in zip(ds["bin_sample"].values, ds["bin_in_sample"].values, strict=True)
    ]


def shared_correlation(ds: xr.Dataset, convention: str = "real") -> np.ndarray:
    """Correlation of the covariance of the shared systematics alone (the cross-sample part)."""
    shared = ds["systematic_shared"].values
    cov = ds[f"cov_systematic_{convention}"].values[shared].sum(axis=0)
    return correlation(cov)


def cross_sample_figure(ds: xr.Dataset) -> Figure:
    """Two heatmaps over the concatenated truth bins, lines between the samples: the total
    correlation (systematics ⊕ stat, real-flux convention) and that of the shared systematics."""
    from farm.report.style import new_figure

    names = _labels(ds)
    fig = new_figure(12.0, 5.8)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    shared = [
        str(n)
        for n, s in zip(ds["systematic"].values, ds["systematic_shared"].values, strict=True)
        if s
    ]
    panels = (
        ("total correlation (systematics ⊕ stat)", np.asarray(ds["corr_real"].values)),
        (f"shared systematics ({', '.join(shared) or 'none'})", shared_correlation(ds)),
    )
    image = None
    for ax, (title, rho) in zip(axes, panels, strict=True):
        image = _heatmap(ax, rho, names)
        for first in ds["sample_first_bin"].values[1:]:
            ax.axhline(first - 0.5, color="black", linewidth=1.2)
            ax.axvline(first - 0.5, color="black", linewidth=1.2)
        ax.set_title(title)
    assert image is not None
    fig.colorbar(image, ax=list(axes), shrink=0.8, label=r"correlation $\rho$")
    fig.suptitle(
        f"{ds.attrs.get('measurement', 'measurement')}: cross-sample correlation "
        "(real-flux convention)",
        fontsize=13,
        fontweight="bold",
    )
    return fig


def _page(ds: xr.Dataset, image: str, result: str, samples: list[str]) -> str:
    name = escape(str(ds.attrs.get("measurement", "measurement")))
    chi2_rows = []
    for c in ("real", "nominal"):
        for m, model in enumerate(ds["model"].values):
            per = ds[f"chi2_{c}_per_sample"].values[m]
            chi2_rows.append(
                [
                    cell(escape(f"{model} ({c})"), cls="text"),
                    *(cell(format_chi2(float(v)), value=float(v)) for v in per),
                    cell(format_chi2(float(ds[f"chi2_{c}_separate_sum"].values[m]))),
                    cell(format_chi2(float(ds[f"chi2_{c}_joint"].values[m]))),
                    cell(pvalue(float(ds[f"pvalue_{c}_joint"].values[m]))),
                ]
            )
    chi2_table = table(
        ["model", *(escape(s) for s in samples), "sum", f"joint ({int(ds['chi2_dof'])} bins)", "p"],
        chi2_rows,
    )
    syst_rows = [
        [
            cell(escape(str(n)), cls="text"),
            cell(escape(str(k)), cls="text"),
            cell("shared" if s else "independent", cls="text"),
            cell(escape(str(w)), cls="text"),
        ]
        for n, k, s, w in zip(
            ds["systematic"].values,
            ds["systematic_kind"].values,
            ds["systematic_shared"].values,
            ds["systematic_samples"].values,
            strict=True,
        )
    ]
    syst_table = table(
        ["systematic", "kind", "thrown", "samples"], syst_rows, text_cols=(0, 1, 2, 3)
    )
    links = " ".join(f'<a href="samples/{escape(s)}/index.html">{escape(s)}</a>' for s in samples)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>farm report: {name}</title></head>
<body>
<h1>{name}</h1>
<p>{escape(str(ds.attrs.get("description", "")))}</p>
<p>Result: <code>{escape(result)}</code>; samples: {links} (each sample's own report).</p>
<h2 id="cross-sample">Cross-sample correlation</h2>
<img src="{image}" alt="cross-sample correlation matrix">
<h2 id="chi2">χ² per sample and combined</h2>
<p>The joint χ² uses the full block covariance, cross-sample blocks included; without them it
would equal the sum of the samples' χ².</p>
{chi2_table}
<h2 id="systematics">Systematics</h2>
<p>{escape(str(ds.attrs.get("systematic_names", "")))}.</p>
{syst_table}
<h2 id="provenance">Provenance</h2>
<p>farm {escape(str(ds.attrs.get("software_version", "?")))}, universe seed
{escape(str(ds.attrs.get("universe_seed", "?")))}, configuration
{escape(str(ds.attrs.get("config_hash", "?")))[:12]}.</p>
</body></html>
"""


def write_joint_report(
    ds: xr.Dataset,
    samples: dict[str, xr.Dataset],
    out_dir: str | Path,
    *,
    result: str,
    embed: bool = False,
    threshold: float | None = None,
) -> list[Path]:
    """index.html and the cross-sample figure in ``out_dir``; each sample's own report in
    ``out_dir/samples/NAME`` (:func:`farm.report.write_report`)."""
    from farm.report.write import PAGE, _png_bytes, _write_atomically, write_report

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        msg = f"{out} exists and is not a directory; choose another --out"
        raise FileExistsError(msg)
    out.mkdir(parents=True, exist_ok=True)
    ds = ds.load()
    written = []
    for name, sample in samples.items():
        written += write_report(
            sample,
            out / "samples" / name,
            result=f"{result} (sample {name})",
            embed=embed,
            threshold=threshold,
        )
    with report_style():
        png = _png_bytes(cross_sample_figure(ds))
    path = out / f"{CROSS_SAMPLE_FIGURE}.png"
    _write_atomically(path, png)
    written.append(path)
    src = f"data:image/png;base64,{base64.b64encode(png).decode()}" if embed else path.name
    page = out / PAGE
    _write_atomically(page, _page(ds, src, result, json.loads(ds.attrs["samples"])).encode())
    written.append(page)
    return written
