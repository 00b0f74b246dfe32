"""``farm compare``: a cross-section model against a published result, without a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from farm.cli._common import fail, user_errors

if TYPE_CHECKING:
    from farm.compare import ComparisonResult

__all__ = ["compare"]

ALPHA = 0.05
"""Significance level at which the CLI says whether ignoring the correlation flips a verdict."""


def _bin_table(c: ComparisonResult, convention: str) -> Table:
    part = c.convention(convention)
    table = Table(title=f"{convention}-flux-averaged (cm² per target)", title_justify="left")
    for header in ("truth bin", "measured", "± stat+syst", "predicted", "± shared", "corr(m, p)"):
        table.add_column(header, justify="right")
    for j in range(part.n_bins):
        table.add_row(
            str(j),
            f"{part.measured[j]:.5g}",
            f"{part.measured_error[j]:.3g}",
            f"{part.predicted[0, j]:.5g}",
            f"{part.predicted_error[j]:.3g}",
            f"{part.correlation[j]:+.3f}",
        )
    return table


def _chi2_table(c: ComparisonResult) -> Table:
    dof = c.real.joint.dof
    table = Table(title=f"chi-square ({dof} dof)", title_justify="left")
    for header in (
        "convention",
        "χ² with correlation",
        "p-value",
        "χ² ignoring it",
        "p-value",
    ):
        table.add_column(header, justify="right")
    for convention in ("real", "nominal"):
        part = c.convention(convention)
        table.add_row(
            convention,
            f"{part.joint.chi2:.4g}",
            f"{part.joint.pvalue:.4g}",
            f"{part.uncorrelated.chi2:.4g}",
            f"{part.uncorrelated.pvalue:.4g}",
        )
    return table


def _verdicts(c: ComparisonResult) -> list[str]:
    lines = []
    for convention in ("real", "nominal"):
        part = c.convention(convention)
        right, wrong = part.joint.pvalue < ALPHA, part.uncorrelated.pvalue < ALPHA
        if right != wrong:
            lines.append(
                f"{convention}: ignoring the measured–predicted correlation would "
                f"{'exclude' if wrong else 'accept'} this model at p < {ALPHA}; with it, the model is "
                f"{'excluded' if right else 'not excluded'} (p = {part.joint.pvalue:.3g}). "
                "The chi-square with the correlation is the right one."
            )
    return lines


def _as_json(c: ComparisonResult) -> str:
    out = {"model": c.name, "kind": c.kind, "sample": c.sample, "n_universes": c.n_universes}
    for convention in ("real", "nominal"):
        part = c.convention(convention)
        out[convention] = {
            "measured": part.measured.tolist(),
            "predicted": part.predicted[0].tolist(),
            "chi2_joint": part.joint.chi2,
            "pvalue_joint": part.joint.pvalue,
            "chi2_uncorrelated": part.uncorrelated.chi2,
            "pvalue_uncorrelated": part.uncorrelated.pvalue,
            "dof": part.joint.dof,
        }
    return json.dumps(out, indent=2)


def compare(
    result: Annotated[
        Path, typer.Argument(help="A result published by `farm run` (its --out path).")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="module:callable giving σ(E_ν, flavor) in cm² per target."
        ),
    ] = None,
    model_table: Annotated[
        Path | None,
        typer.Option(
            "--model-table",
            "-t",
            help="CSV with columns enu_mev, xsec_cm2[, flavor], interpolated linearly.",
        ),
    ] = None,
    kind: Annotated[
        str,
        typer.Option("--kind", help="xsec: σ(E_ν); dxsec: dσ/dX(E_ν, X) for truth binned in X."),
    ] = "xsec",
    name: Annotated[str | None, typer.Option("--name", help="Label of the model.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the numbers as JSON instead of tables.")
    ] = False,
) -> None:
    """Compare a cross-section model with a result, universe by universe, without a cluster.

    Prints the model's prediction with the measurement in both flux conventions, and the
    chi-square with and without the measured–predicted correlation that the shared flux
    universes carry (docs/physics.md §1). Pure numpy on the result: no cluster, no event store.

    A model runs as Python in this process: only load models you trust.

    Example: farm compare results/sns-csi.zarr --model farm.models:cevns_csi_tree_helm
    """
    from farm.compare import compare as compare_model

    if (model is None) == (model_table is None):
        raise fail("give exactly one of --model module:callable or --model-table FILE")
    with user_errors():
        result_of = compare_model(
            result, model_table if model_table is not None else model, kind=kind, name=name
        )
    out = Console(highlight=False)
    if as_json:
        out.print_json(_as_json(result_of))
        return
    out.print(
        f"[bold]{result_of.name}[/] against [bold]{result_of.sample}[/] "
        f"({result_of.n_universes} universes, {result.name})"
    )
    for convention in ("real", "nominal"):
        out.print(_bin_table(result_of, convention))
    out.print(_chi2_table(result_of))
    for line in _verdicts(result_of):
        out.print(line)
