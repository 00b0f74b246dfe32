"""``farm export``: a published result in the formats others read (HEPData)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import console, user_errors

__all__ = ["app", "hepdata"]

app = typer.Typer(
    name="export",
    help="Release a published result in formats others read: HEPData.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Example: farm export hepdata results/sns-csi.zarr --out hepdata/sns-csi",
)


@app.command("hepdata")
def hepdata(
    result: Annotated[
        Path, typer.Argument(help="A result published by `farm run` (its --out path).")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Directory for submission.yaml and the table files."),
    ],
    digits: Annotated[
        int,
        typer.Option(
            "--digits", help="Significant digits written (17 keeps every number exactly)."
        ),
    ] = 17,
    archive: Annotated[
        bool,
        typer.Option("--archive/--no-archive", help="Also write OUT.tar.gz, ready for upload."),
    ] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing OUT.")
    ] = False,
) -> None:
    """Write a HEPData submission of a result, validated with hepdata-validator.

    Tables, in both flux conventions: the measured cross section per truth bin with statistical
    and per-group systematic errors and the attached models' predictions; total, statistical,
    systematic and per-group covariances; the cross section in every universe; the smearing
    matrix (and A_C for Wiener-SVD). Shared: the nominal flux per flavour, the flux of every
    universe, event counts, and the models' chi-square. Needs hepdata_lib and
    hepdata-validator (the farm extra named hepdata).

    Example: farm export hepdata results/sns-csi.zarr --out hepdata/sns-csi
    """
    from farm.finite import require_finite
    from farm.publish import open_published
    from farm.release import write_hepdata

    with user_errors():
        ds = open_published(result)
        require_finite(ds, source=result, action="exported")
        release = write_hepdata(ds, out, digits=digits, overwrite=overwrite, archive=archive)
    console.print(
        f"wrote {len(release.tables)} tables to [bold]{release.directory}[/]"
        + (f" and {release.archive}" if release.archive else "")
        + " (valid HEPData)"
    )
    for name in release.tables:
        console.print(f"  {name}", highlight=False)
