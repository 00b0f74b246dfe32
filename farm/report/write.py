"""Write a report directory: one PNG per figure and index.html, each file written atomically.

The only module of the package that touches files. PNGs carry no software or date metadata,
so rerunning the report on the same result gives the same bytes.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import xarray as xr
from matplotlib.figure import Figure

from farm.fit.report import with_fit_sections
from farm.report.page import FIGURES, render_page
from farm.report.plot_diagnostics import correlation_figure, universe_check_figure
from farm.report.plot_flux import flux_figure
from farm.report.plot_xsec import cross_section_figure, uncertainty_figure
from farm.report.style import FIGURE_DPI, report_style

__all__ = ["PAGE", "figure_builders", "write_report"]

PAGE = "index.html"


def figure_builders(
    threshold: float | None = None,
) -> dict[str, Callable[[xr.Dataset], Figure]]:
    """Figure name (as in farm.report.page.FIGURES) → the pure function that draws it."""
    return {
        "cross_section": cross_section_figure,
        "uncertainty": uncertainty_figure,
        "correlation": correlation_figure,
        "flux": flux_figure,
        "universes": lambda ds: universe_check_figure(ds, threshold),
    }


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _png_bytes(fig: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    # no "Software" tag (matplotlib's version) and no timestamp: same result, same bytes
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, metadata={"Software": None})
    return buffer.getvalue()


def write_report(
    ds: xr.Dataset,
    out_dir: str | Path,
    *,
    result: str,
    embed: bool = False,
    threshold: float | None = None,
) -> list[Path]:
    """Draw every figure of ``ds``, write NAME.png for each and index.html; returns the paths.

    ``result`` is how the page names the result (its path). With ``embed`` the page carries the
    images as base64 ``data:`` URIs and stands alone; otherwise it refers to the PNGs beside it.
    ``threshold`` (the largest acceptable relative MC error of a systematic's covariance)
    defaults to the run's ``[analysis] universe_precision``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        msg = f"{out} exists and is not a directory; choose another --out"
        raise FileExistsError(msg)
    out.mkdir(parents=True, exist_ok=True)
    ds = ds.load()
    written = []
    images = {}
    with report_style():
        for name, build in figure_builders(threshold).items():
            png = _png_bytes(build(ds))
            path = out / f"{name}.png"
            _write_atomically(path, png)
            written.append(path)
            images[name] = (
                f"data:image/png;base64,{base64.b64encode(png).decode()}" if embed else path.name
            )
    assert set(images) == set(FIGURES)
    page = out / PAGE
    html = render_page(ds, images, result=result, threshold=threshold)
    html = with_fit_sections(html, out, embed=embed)  # `farm fit --report` entries (docs/fit.md)
    _write_atomically(page, html.encode("utf-8"))
    written.append(page)
    return written
