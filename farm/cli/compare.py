"""``farm compare``: a cross-section model against a published result or a HEPData record.

TARGET is a result of ``farm run`` (its --out path), or a HEPData record following the NUISANCE
HEPData conventions (a directory with submission.yaml, the submission.yaml itself, or a .zip /
.tar.gz archive; docs/hepdata.md), such as ``farm export hepdata`` writes or hepdata.net serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from farm.cli._common import fail, user_errors
from farm.cli._common import out as stdout

if TYPE_CHECKING:
    from farm.compare import ComparisonResult
    from farm.compare_joint import JointComparison
    from farm.compare_record import RecordComparison

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
    out = {
        "model": c.name,
        "kind": c.kind,
        "sample": c.sample,
        "n_universes": c.n_universes,
        "quantity": c.quantity,
    }
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


def _joint_json(c: JointComparison) -> str:
    def result(r: object) -> dict[str, float]:
        return {"chi2": r.chi2, "dof": r.dof, "pvalue": r.pvalue}  # type: ignore[attr-defined]

    out: dict[str, object] = {
        "model": c.name,
        "measurement": c.measurement,
        "samples": list(c.samples),
        "shared_systematics": list(c.shared),
    }
    for convention in ("real", "nominal"):
        out[convention] = {
            "combined": result(c.combined[convention]),
            "samples_as_independent": result(c.separate[convention]),
            "per_sample": {
                label: result(s.convention(convention).joint)
                for label, s in zip(c.samples, c.per_sample, strict=True)
            },
        }
    return json.dumps(out, indent=2)


def _joint_table(c: JointComparison) -> Table:
    table = Table(
        title=f"chi-square of {c.name}, with the measured–predicted correlation",
        title_justify="left",
    )
    for header in ("", "dof", "real χ²", "p-value", "nominal χ²", "p-value"):
        table.add_column(header, justify="right")

    def row(label: str, real: object, nominal: object) -> None:
        table.add_row(
            label,
            str(real.dof),  # type: ignore[attr-defined]
            f"{real.chi2:.4g}",  # type: ignore[attr-defined]
            f"{real.pvalue:.4g}",  # type: ignore[attr-defined]
            f"{nominal.chi2:.4g}",  # type: ignore[attr-defined]
            f"{nominal.pvalue:.4g}",  # type: ignore[attr-defined]
        )

    for label, s in zip(c.samples, c.per_sample, strict=True):
        row(label, s.real.joint, s.nominal.joint)
    row("samples as independent", c.separate["real"], c.separate["nominal"])
    row("combined (joint covariance)", c.combined["real"], c.combined["nominal"])
    return table


def _compare_joint(
    result: Path, model: object, *, kind: str, name: str | None, quantity: str, as_json: bool
) -> None:
    from farm.compare_joint import compare_joint

    if quantity != "share":
        raise fail(
            f"{result} is a multi-sample measurement: its combined chi-square compares the flux "
            "share S_j (--quantity share); give --sample NAME to compare one sample's --quantity "
            f"{quantity}"
        )
    with user_errors():
        c = compare_joint(result, model, kind=kind, name=name)
    out = stdout
    if as_json:
        out.print_json(_joint_json(c))
        return
    out.print(
        f"[bold]{c.name}[/] against the measurement [bold]{c.measurement}[/] "
        f"({', '.join(c.samples)}; shared systematics: {', '.join(c.shared) or 'none'}; "
        "the flux share S_j)"
    )
    out.print(_joint_table(c))
    out.print(
        "The combined chi-square covers every sample's bins with the joint covariance; "
        "'samples as independent' drops its cross-sample blocks (the sum of the samples' own)."
    )


def _record_tables(c: RecordComparison) -> list[Table]:
    out = []
    for m in c.measurements:
        meas = m.measurement
        title = f"{m.table}: {meas.name} [{meas.units.text}], covariance {meas.covariance_source}"
        table = Table(title=title, title_justify="left")
        for header in ("bin", "measured", "± error", "predicted", "± shared"):
            table.add_column(header, justify="right")
        for j in range(meas.n_bins):
            table.add_row(
                str(j),
                f"{meas.values[j]:.5g}",
                f"{m.measured_error[j]:.3g}",
                f"{m.predicted[j]:.5g}",
                f"{m.predicted_error[j]:.3g}",
            )
        out.append(table)
    summary = Table(title=f"chi-square of {c.name}", title_justify="left")
    for header in (
        "table",
        "dof",
        "χ² (record covariance)",
        "p-value",
        "χ² with correlation",
        "p-value",
        "χ² ignoring it",
        "p-value",
    ):
        summary.add_column(header, justify="right")
    for m in c.measurements:
        joint = (f"{m.joint.chi2:.4g}", f"{m.joint.pvalue:.4g}") if m.joint else ("–", "–")
        plain = (
            (f"{m.uncorrelated.chi2:.4g}", f"{m.uncorrelated.pvalue:.4g}")
            if m.uncorrelated
            else ("–", "–")
        )
        summary.add_row(
            m.table, str(m.chi2.dof), f"{m.chi2.chi2:.4g}", f"{m.chi2.pvalue:.4g}", *joint, *plain
        )
    return [*out, summary]


def _record_json(c: RecordComparison) -> str:
    def result(r: object) -> dict[str, float] | None:
        if r is None:
            return None
        return {"chi2": r.chi2, "dof": r.dof, "pvalue": r.pvalue}  # type: ignore[attr-defined]

    tables = []
    for m in c.measurements:
        meas = m.measurement
        tables.append(
            {
                "table": m.table,
                "variable": meas.name,
                "measurement_type": meas.measurement_type,
                "units": meas.units.text,
                "covariance": meas.covariance_source,
                "smearing": meas.smearing is not None,
                "n_universes": 0 if meas.universes is None else int(meas.universes.shape[0]),
                "measured": meas.values.tolist(),
                "predicted": m.predicted.tolist(),
                "chi2": m.chi2.chi2,
                "dof": m.chi2.dof,
                "pvalue": m.chi2.pvalue,
                "joint": result(m.joint),
                "uncorrelated": result(m.uncorrelated),
            }
        )
    return json.dumps({"record": c.record, "model": c.name, "tables": tables}, indent=2)


def compare(
    result: Annotated[
        Path,
        typer.Argument(
            help="A result published by `farm run` (its --out path), or a HEPData record "
            "(directory, submission.yaml, .zip or .tar.gz) in the NUISANCE conventions."
        ),
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
    prediction: Annotated[
        Path | None,
        typer.Option(
            "--prediction",
            "-p",
            help="A record's bins predicted: CSV (column value) or YAML (values: [...]), in the "
            "record's units.",
        ),
    ] = None,
    kind: Annotated[
        str,
        typer.Option("--kind", help="xsec: σ(E_ν); dxsec: dσ/dX(E_ν, X) for truth binned in X."),
    ] = "xsec",
    table: Annotated[
        str | None,
        typer.Option("--table", help="A record's measurement table (default: every one)."),
    ] = None,
    quantity: Annotated[
        str,
        typer.Option(
            "--quantity",
            help="A result's quantity: share (the flux share S_j, as farm run stores its "
            "chi-squares) or sigma (the cross section as quoted: <σ>_j, dσ/dx).",
        ),
    ] = "share",
    name: Annotated[str | None, typer.Option("--name", help="Label of the model.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the numbers as JSON instead of tables.")
    ] = False,
    sample: Annotated[
        str | None,
        typer.Option(
            "--sample",
            help="For a multi-sample measurement: compare with this sample's result alone "
            "(default: every sample and all together, with the covariance across them).",
        ),
    ] = None,
) -> None:
    """Compare a cross-section model with a result or a HEPData record, without a cluster.

    For a farm result: the model's prediction with the measurement in both flux conventions,
    and the chi-square with and without the measured–predicted correlation that the shared flux
    universes carry. For a HEPData record (NUISANCE conventions, docs/hepdata.md): per
    measurement, the chi-square with the record's covariance (A_C applied where the record has
    one) and, where the record publishes its universes, the joint and uncorrelated ones.

    For a multi-sample measurement: each sample's chi-square and the combined one over all
    samples with the joint covariance, including the cross-sample blocks of the shared
    systematics (docs/measurements.md); --sample NAME compares one sample alone.

    A model runs as Python in this process: only load models you trust.

    Example: farm compare results/sns-csi.zarr --model farm.models:cevns_csi_tree_helm

    Example: farm compare hepdata/sns-csi.tar.gz --model farm.models:cevns_csi_tree_helm --json
    """
    from farm.compare import compare as compare_model
    from farm.compare_record import compare_record, is_record

    given = [x for x in (model, model_table, prediction) if x is not None]
    if len(given) != 1:
        raise fail(
            "give exactly one of --model module:callable, --model-table FILE or --prediction FILE"
        )
    if is_record(result):
        if sample is not None:
            raise fail(
                f"{result} is a HEPData record: --sample names a sample of a farm measurement's "
                "result; give a record's table with --table SAMPLE-cross_section-real instead"
            )
        with user_errors():
            record = compare_record(
                result,
                model_table if model_table is not None else model,
                prediction=prediction,
                kind=kind,
                table=table,
                name=name,
            )
        out = stdout
        if as_json:
            out.print_json(_record_json(record))
            return
        out.print(f"[bold]{record.name}[/] against the HEPData record [bold]{result}[/]")
        for item in _record_tables(record):
            out.print(item)
        return
    if prediction is not None:
        raise fail(
            f"{result} is not a HEPData record: --prediction compares bin values with a record's measurement; give a model for a farm result"
        )
    if sample is None:
        from farm.fit.joint import is_measurement

        with user_errors():
            joint = is_measurement(result)
        if joint:
            _compare_joint(
                result,
                model_table if model_table is not None else model,
                kind=kind,
                name=name,
                quantity=quantity,
                as_json=as_json,
            )
            return
    with user_errors():
        from farm.compare import open_result

        source = result if sample is None else open_result(result, sample=sample).load()
        result_of = compare_model(
            source,
            model_table if model_table is not None else model,
            kind=kind,
            name=name,
            quantity=quantity,
        )
    out = stdout
    if as_json:
        out.print_json(_as_json(result_of))
        return
    out.print(
        f"[bold]{result_of.name}[/] against [bold]{result_of.sample}[/] "
        f"({result_of.n_universes} universes, {result.name}; "
        f"{'the flux share S_j' if quantity == 'share' else 'the cross section as quoted'})"
    )
    for convention in ("real", "nominal"):
        out.print(_bin_table(result_of, convention))
    out.print(_chi2_table(result_of))
    for line in _verdicts(result_of):
        out.print(line)
