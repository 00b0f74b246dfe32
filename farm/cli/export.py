"""``farm export``: a published result in the formats others read (HEPData)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import fail, user_errors
from farm.cli._common import out as out_console

__all__ = ["app", "hepdata"]

app = typer.Typer(
    name="export",
    help="Release a published result in formats others read: HEPData.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts are literal: [generation] stays [generation]
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
        str,
        typer.Option(
            "--digits",
            help="auto: round to what each uncertainty justifies (--error-digits of it); or N "
            "significant digits of every number (17 keeps every number exactly).",
        ),
    ] = "auto",
    error_digits: Annotated[
        int, typer.Option("--error-digits", help="With --digits auto: digits kept of each uncertainty.")
    ] = 3,
    inspire: Annotated[
        str | None, typer.Option("--inspire", help="INSPIRE id of the paper (else a placeholder).")
    ] = None,
    arxiv: Annotated[
        str | None, typer.Option("--arxiv", help="arXiv id of the paper (else a placeholder).")
    ] = None,
    archive: Annotated[
        bool,
        typer.Option("--archive/--no-archive", help="Also write OUT.tar.gz, ready for upload."),
    ] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing OUT.")
    ] = False,
) -> None:
    """Write a HEPData submission of a result, validated with hepdata-validator.

    Follows the NUISANCE HEPData conventions (docs/hepdata.md), so `farm compare RECORD` and
    NUISANCE read it. Tables, in both flux conventions: the cross section as quoted (<σ>_j in
    E_ν bins, dσ/dx in kinematic bins; and the flux share S_j for E_ν bins) with statistical and
    per-group errors and the attached models' predictions; total, statistical, systematic and
    per-group covariances; the measurement in every universe; the response (and A_C for
    Wiener-SVD). Shared: the nominal flux of every flavour at the run's quadrature nodes, the
    flux of every universe, event counts, the models' chi-square, and the truth definition as
    ProSelecta functions (analysis.cxx). Needs hepdata_lib and hepdata-validator (the farm
    extra named hepdata).

    A multi-sample measurement is released in the conventions' multi-table form: each sample's
    tables prefixed with its name, and per convention a composite measurement over them with
    the combined covariance (covariance-joint-<c>; docs/measurements.md).

    Example: farm export hepdata results/sns-csi.zarr --out hepdata/sns-csi
    """
    from farm.finite import require_finite
    from farm.publish import open_published
    from farm.release import write_hepdata

    if digits != "auto" and not digits.isdigit():
        raise fail(f"--digits {digits!r}: give auto or a number of significant digits (1-17)")
    with user_errors():
        ds = open_published(result)
        require_finite(ds, source=result, action="exported")
        options = {
            "digits": None if digits == "auto" else int(digits),
            "error_digits": error_digits,
            "inspire": inspire,
            "arxiv": arxiv,
            "overwrite": overwrite,
            "archive": archive,
        }
        if ds.attrs.get("kind") == "measurement":  # multi-sample (farm.release.joint)
            from farm.publish import open_sample
            from farm.release.joint import write_joint_hepdata

            samples = {str(s): open_sample(result, str(s)).load() for s in ds["sample"].values}
            release = write_joint_hepdata(ds.load(), samples, out, **options)
        else:
            release = write_hepdata(ds, out, **options)
    out_console.print(  # the result: stdout
        f"wrote {len(release.tables)} tables to {release.directory}"
        + (f" and {release.archive}" if release.archive else "")
        + " (valid HEPData)",
        markup=False,
    )
    for name in release.tables:
        out_console.print(f"  {name}", markup=False)
