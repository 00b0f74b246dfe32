"""``farm report``: PNG plots and one HTML page of a published result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import console, user_errors

__all__ = ["report"]


def report(
    result: Annotated[
        Path, typer.Argument(help="A result published by `farm run` (its --out path).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for index.html and the PNG plots.")
    ],
    embed: Annotated[
        bool,
        typer.Option(
            "--embed/--no-embed",
            help="Carry the images inside index.html (base64) so the page stands alone.",
        ),
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Largest acceptable relative Monte-Carlo error of a systematic's variance "
            "(default: the run's analysis.universe_precision, 0.10 for older results).",
        ),
    ] = None,
) -> None:
    """Write plots and one HTML page: flux bands, cross section with its error budget in both
    conventions, correlations, uncertainty breakdown, chi-square table, diagnostics, provenance.

    Reads the current published version of RESULT (pinned while it reads).

    Example: farm report results/sns-csi.zarr --out results/sns-csi-report
    """
    from farm.finite import require_finite
    from farm.publish import open_published
    from farm.report import write_report

    with user_errors(writing=out):
        ds = open_published(result)
        require_finite(ds, source=result, action="reported")
        written = write_report(ds, out, result=str(result), embed=embed, threshold=threshold)
    page = written[-1]
    console.print(f"wrote {len(written) - 1} plots and [bold]{page}[/]")
