"""``farm report``: PNG plots and one HTML page of a published result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import out as out_console
from farm.cli._common import user_errors

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

    Reads the current published version of RESULT (pinned while it reads). For a multi-sample
    measurement: the cross-sample correlation matrix, χ² per sample and combined, and each
    sample's own report under OUT/samples/NAME.

    Example: farm report results/sns-csi.zarr --out results/sns-csi-report
    """
    from farm.finite import require_finite
    from farm.publish import open_published
    from farm.report import write_report

    with user_errors(writing=out):
        ds = open_published(result)
        require_finite(ds, source=result, action="reported")
        if ds.attrs.get("kind") == "measurement":  # a multi-sample measurement (farm.measurement)
            from farm.publish import open_sample
            from farm.report.joint import write_joint_report

            samples = {str(s): open_sample(result, str(s)) for s in ds["sample"].values}
            written = write_joint_report(
                ds, samples, out, result=str(result), embed=embed, threshold=threshold
            )
        else:
            written = write_report(ds, out, result=str(result), embed=embed, threshold=threshold)
    page = written[-1]
    out_console.print(f"wrote {len(written) - 1} plots and {page}", markup=False)  # the result
