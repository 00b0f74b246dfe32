"""The report's diagnostics: is the total covariance usable, and were enough universes thrown."""

from __future__ import annotations

from html import escape

import xarray as xr

from farm.report._dataset import CONVENTIONS
from farm.report._html import cell as _cell
from farm.report._html import percent as _percent
from farm.report._html import table as _table
from farm.report.quantities import covariance_checks
from farm.report.style import CONVENTION_TITLES
from farm.report.universes import UniverseCheck, universe_checks, universes_verdict

__all__ = ["diagnostics_section", "universes_banner"]


def _share(check: UniverseCheck) -> str:
    if check.crosscheck:
        return "— (not in the total)"
    return "&lt; 0.01 %" if check.share < 1e-4 else f"{100 * check.share:.2g} %"


def diagnostics_section(ds: xr.Dataset, threshold: float, figure: str) -> str:
    checks = universe_checks(ds, threshold)
    limited = [c.systematic for c in checks if c.rank_limited]
    rows = [
        [
            f'<td class="text">{CONVENTION_TITLES[c.convention]}</td>',
            f'<td class="{"bad" if limited else "ok" if c.positive_definite else "bad"}">'
            f"{('yes, thanks to stat' if limited else 'yes') if c.positive_definite else 'NO'}"
            "</td>",
            _cell(f"{c.condition_number:.4g}", value=c.condition_number),
        ]
        for c in covariance_checks(ds)
    ]
    n_bins = ds.sizes["truth_bin"]
    rank_note = (
        f" <b>Rank limited by the universes</b> ({n_bins} bins): "
        + ", ".join(
            f"{escape(c.systematic)} (rank {c.rank} from {c.n_universes})"
            for c in checks
            if c.rank_limited
        )
        + ". A covariance from N universes has rank ≤ N; the statistical covariance makes the "
        "total definite, but the directions those universes never reached are missing."
        if limited
        else ""
    )
    parts = [
        "<h3>Total covariance (systematics ⊕ stat)</h3>",
        _table(["convention", "positive definite", "condition number"], rows),
        '<p class="note">The condition number is λ<sub>max</sub> / λ<sub>min</sub>; above '
        f"≈10¹⁰ a chi-square inverts numerical noise.{rank_note}</p>",
        "<h3>Enough universes?</h3>",
    ]
    enough, sentence = universes_verdict(checks)
    parts.append(f'<div class="verdict {"ok" if enough else "bad"}">{escape(sentence)}</div>')
    parts.append(figure)
    head = ["systematic", "group", "universes", "MC error real", "nominal"]
    head += ["share of a bin's variance", "verdict"]
    table_rows = []
    for c in checks:
        if c.unisim:
            verdict = '<td class="ok text">exact (±1σ unisim)</td>'
        elif c.enough:
            verdict = '<td class="ok text">enough</td>'
        elif c.crosscheck:
            more = f"≈{c.needed} universes" if c.needed else "more universes"
            verdict = f'<td class="minor text">cross-check: {more}</td>'
        elif not c.matters:
            verdict = '<td class="minor text">above threshold, negligible</td>'
        else:
            limit = f", rank {c.rank} of {c.n_bins}" if c.rank_limited else ""
            verdict = f'<td class="bad text">more: ≈{c.needed} universes{limit}</td>'
        table_rows.append(
            [
                f'<td class="text">{escape(c.systematic)}</td>',
                f'<td class="text">{escape(c.group)}</td>',
                _cell(str(c.n_universes)),
                *[
                    _cell("—" if c.unisim else _percent(c.rel_error[k]), value=c.rel_error[k])
                    for k in CONVENTIONS
                ],
                _cell(_share(c)),
                verdict,
            ]
        )
    parts.append(_table(head, table_rows, text_cols=(0, 1, len(head) - 1)))
    parts.append(
        '<p class="note">Bootstrap error: the spread of the systematic’s variance when its '
        "universes are resampled with replacement, relative to the variance (largest over bins). "
        f"Threshold {100 * threshold:g} %; for N Gaussian universes it is ≈ √(2/N), and the "
        "universes needed grow with its square. “Share” is the largest fraction of one bin’s "
        "total variance that the systematic contributes.</p>"
    )
    return "\n".join(parts)


def universes_banner(ds: xr.Dataset, threshold: float) -> str:
    """A warning under the headline when a systematic that matters has too few universes."""
    enough, sentence = universes_verdict(universe_checks(ds, threshold))
    if enough:
        return ""
    return (
        f'<div class="verdict bad">Too few universes. {escape(sentence)} '
        'See <a href="#diagnostics">diagnostics</a>.</div>'
    )
