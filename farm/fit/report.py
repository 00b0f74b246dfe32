"""A fit's entry in the report: PNG plots and an HTML section, picked up by ``farm report``.

``farm fit --report DIR`` writes ``fit-<label>-*.png`` and ``fit-<label>.html`` into DIR (the
folder ``farm report --out DIR`` writes, or any other). ``fit-<label>.html`` is a page of its own;
``farm report`` also copies the section between its ``farm-fit`` markers into its index.html,
after its own sections (:func:`fit_sections`), whichever of the two commands runs first.
Files are written atomically and PNGs carry no date, so the same fit gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import xarray as xr

__all__ = ["BEGIN", "END", "fit_sections", "safe_label", "with_fit_sections", "write_fit_report"]

BEGIN = "<!-- farm-fit:begin -->"
END = "<!-- farm-fit:end -->"
_SRC = re.compile(r'src="(fit-[A-Za-z0-9_.-]+\.png)"')
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1180px;
margin: 0 auto; padding: 24px 32px; line-height: 1.45; }} table {{ border-collapse: collapse; }}
th, td {{ padding: 4px 10px; border-bottom: 1px solid #e6e6e6; text-align: right; }}
th {{ background: #eef2f6; }} td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; border: 1px solid #e3e3e3; }} .note {{ font-size: 13px; color: #555; }}
</style></head><body>
{body}
</body></html>
"""


def safe_label(text: str) -> str:
    """A file-name-safe label: letters, digits, ``_`` and ``-``."""
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    return label or "fit"


def _write_atomically(path: Path, data: bytes) -> None:
    from farm.stale import temp_token

    tmp = path.with_name(f".{path.name}.{temp_token()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _png(fig: object) -> bytes:
    import io

    from farm.report.style import FIGURE_DPI

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, metadata={"Software": None})  # type: ignore[attr-defined]
    return buffer.getvalue()


def _interval(lo: float, hi: float) -> str:
    return "–" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{lo:.4g}, {hi:.4g}]"


def _section(ds: xr.Dataset, label: str, figures: list[tuple[str, str]]) -> str:
    names = [str(n) for n in ds["parameter"].values]
    cls = ds["cl"].values
    head = ["parameter", "best fit ± Hesse"]
    for cl in cls:
        head += [f"Wilks {100 * cl:.4g} %", f"Feldman–Cousins {100 * cl:.4g} %"]
    rows = []
    for name in names:
        row = [
            name,
            f"{float(ds.best_fit.sel(parameter=name)):.5g} ± {float(ds.hesse_error.sel(parameter=name)):.3g}",
        ]
        for c in range(cls.size):
            wl, wu = (float(ds[v].sel(parameter=name)[c]) for v in ("wilks_lower", "wilks_upper"))
            fl, fu = (float(ds[v].sel(parameter=name)[c]) for v in ("fc_lower", "fc_upper"))
            row += [_interval(wl, wu), _interval(fl, fu)]
        rows.append("".join(f"<td>{html.escape(x)}</td>" for x in row))
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "\n".join(f"<tr>{r}</tr>" for r in rows)
    a = ds.attrs
    ndof = int(ds.ndof)
    gof = f"χ²<sub>min</sub> = {float(ds.chi2_min):.4g} for {ndof} degrees of freedom" + (
        f" (p = {float(ds.pvalue_gof):.3g})" if ndof > 0 else ""
    )
    toys = (
        f"{a.get('toys')} {a.get('toy_statistics')} pseudo-experiments at each of {a.get('fc_points')} points per parameter (seed {a.get('toy_seed')})"
        if int(a.get("toys", 0))
        else "no Feldman–Cousins toys (--toys 0)"
    )
    imgs = "\n".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt)}"><figcaption class="note">{html.escape(alt)}</figcaption></figure>'
        for src, alt in figures
    )
    return f"""{BEGIN}
<section id="fit-{label}" class="fit">
<h2>Fit: {html.escape(str(a.get("model", "")))} to {html.escape(str(a.get("sample", "")))}</h2>
<p class="lead">{gof}; {html.escape(str(a.get("convention", "")))}-flux-averaged, {a.get("n_bins")} bin(s), joint
measured–predicted covariance over {a.get("n_universes")} universes; fixed: <code>{html.escape(str(a.get("fixed", "{}")))}</code>.</p>
<table><thead><tr>{ths}</tr></thead><tbody>
{body}
</tbody></table>
<p class="note">Wilks: MINUIT Minos, Δχ² at the χ²₁ quantile. Feldman–Cousins: {html.escape(toys)}; the
interval is where the data's Δχ² stays below the toys' critical value (docs/fit.md).</p>
{imgs}
</section>
{END}"""


def write_fit_report(ds: xr.Dataset, out_dir: str | Path, label: str) -> list[Path]:
    """Write the fit's PNGs and ``fit-<label>.html`` into ``out_dir``; returns the paths."""
    from farm.fit.plots import grid_figure, profile_figure, toys_figure
    from farm.report.style import report_style

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        msg = f"{out} exists and is not a directory; choose another --report"
        raise FileExistsError(msg)
    out.mkdir(parents=True, exist_ok=True)
    label = safe_label(label)
    names = [str(n) for n in ds["parameter"].values]
    drawings = [
        (f"profile-{n}", f"Δχ² profile of {n}", lambda n=n: profile_figure(ds, n)) for n in names
    ]
    if "dchi2_grid" in ds:
        drawings.append(("grid", "Δχ² over both parameters", lambda: grid_figure(ds)))
    drawings += [
        (f"toys-{n}", f"toys' Δχ² of {n} near the best fit", lambda n=n: toys_figure(ds, n))
        for n in names
        if f"fc_toys_{n}" in ds
    ]
    written, figures = [], []
    with report_style():
        for stem, alt, draw in drawings:
            path = out / f"fit-{label}-{safe_label(stem)}.png"
            _write_atomically(path, _png(draw()))
            written.append(path)
            figures.append((path.name, alt))
    page = out / f"fit-{label}.html"
    section = _section(ds, label, figures)
    title = f"farm fit {label}"
    _write_atomically(page, _PAGE.format(title=html.escape(title), body=section).encode("utf-8"))
    return [*written, page]


def fit_sections(out_dir: str | Path, *, embed: bool = False) -> str:
    """The sections of every ``fit-*.html`` in ``out_dir`` (sorted), images inlined if ``embed``."""
    out = Path(out_dir)
    parts = []
    for page in sorted(out.glob("fit-*.html")):
        text = page.read_text(encoding="utf-8")
        start, stop = text.find(BEGIN), text.find(END)
        if start < 0 or stop < start:
            continue
        section = text[start : stop + len(END)]
        if embed:

            def inline(match: re.Match[str]) -> str:
                path = out / match.group(1)
                if not path.is_file():
                    return match.group(0)
                return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

            section = _SRC.sub(inline, section)
        parts.append(section)
    return "\n".join(parts)


def with_fit_sections(page: str, out_dir: str | Path, *, embed: bool = False) -> str:
    """``page`` (a report's index.html) with the fit sections of ``out_dir`` before ``</main>``."""
    sections = fit_sections(out_dir, embed=embed)
    if not sections or "</main>" not in page:
        return page
    head, _, tail = page.rpartition("</main>")
    return f"{head}{sections}\n</main>{tail}"
