"""Small HTML pieces of the report page: number formats, table cells and tables."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["cell", "difference", "format_chi2", "percent", "pvalue", "sci", "table"]

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def sci(value: float, digits: int = 4) -> str:
    """``1.986 × 10⁻³⁸`` (plain text, so it can be searched and copied)."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = value / 10.0**exponent
    return f"{mantissa:.{digits - 1}f} × 10{str(exponent).translate(_SUPERSCRIPT)}"


def format_chi2(value: float) -> str:
    """How the page prints a chi-square: four significant figures."""
    return f"{value:.4g}"


def pvalue(value: float) -> str:
    if value > 0.999:
        return "&gt; 0.999"
    if value < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3f}"


def difference(value: float) -> str:
    return "0" if abs(value) < 5e-7 else f"{value:+.3g}"


def percent(fraction: float) -> str:
    return "∞" if not math.isfinite(fraction) else f"{100 * fraction:.1f} %"


def cell(text: str, *, value: float | None = None, cls: str = "num") -> str:
    data = f' data-value="{value!r}"' if value is not None else ""
    return f'<td class="{cls}"{data}>{text}</td>'


def table(
    head: Sequence[str], rows: Sequence[Sequence[str]], *, text_cols: Sequence[int] = (0,)
) -> str:
    """An HTML table; the columns in ``text_cols`` are left-aligned text, the others numbers."""
    ths = "".join(
        f'<th class="{"text" if k in text_cols else ""}">{h}</th>' for k, h in enumerate(head)
    )
    body = "\n".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f"<table>\n<thead><tr>{ths}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
