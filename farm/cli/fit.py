"""``farm fit``: parameters of a model from a result, with Wilks and Feldman–Cousins intervals."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from farm.cli._cluster_options import (
    ClusterFlag,
    SchedulerFileFlag,
    SchedulerFlag,
    SettingsFlag,
    ThreadsFlag,
    TlsFlag,
    WorkersFlag,
    cluster_options,
)
from farm.cli._common import console, progress_bar, user_errors
from farm.cli._common import out as shown

__all__ = ["fit"]


def _summary(ds: object) -> Table:
    import math

    table = Table(title="parameters", title_justify="left")
    cls = ds["cl"].values  # type: ignore[index]
    table.add_column("parameter")
    table.add_column("best fit ± Hesse", justify="right")
    for cl in cls:
        table.add_column(f"Wilks {100 * cl:.4g} %", justify="right")
        table.add_column(f"FC {100 * cl:.4g} %", justify="right")

    def interval(lo: float, hi: float) -> str:
        return "–" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{lo:.5g}, {hi:.5g}]"

    for name in ds["parameter"].values:  # type: ignore[index]
        s = ds.sel(parameter=name)  # type: ignore[attr-defined]
        row = [str(name), f"{float(s.best_fit):.6g} ± {float(s.hesse_error):.3g}"]
        for c in range(cls.size):
            row += [
                interval(float(s.wilks_lower[c]), float(s.wilks_upper[c])),
                interval(float(s.fc_lower[c]), float(s.fc_upper[c])),
            ]
        table.add_row(*row)
    return table


def _joint_lines(problem: object) -> list[str]:
    """What a joint fit combined: its samples, their own keywords, the shared systematics."""
    parts = getattr(problem, "parts", None)
    if parts is None:
        return []
    inputs = problem.inputs  # type: ignore[attr-defined]
    shared = ", ".join(n for n, _ in inputs.shared) or "none"
    out = [f"joint fit over {len(parts)} samples; shared: {shared} (the cross-sample blocks)"]
    for label, part in zip(inputs.labels, parts, strict=True):
        own = ", ".join(f"{k}={v}" for k, v in part.fixed.items())
        out.append(f"  {label}: {part.n_bins} bin(s){f', {own}' if own else ''}")
    return out


def _as_json(ds: object) -> str:
    out = {
        k: ds.attrs[k] for k in ("model", "sample", "convention", "fixed", "toys", "toy_statistics")
    }  # type: ignore[attr-defined]
    if "samples" in ds.attrs:  # type: ignore[attr-defined]
        out["samples"] = json.loads(ds.attrs["samples"])  # type: ignore[attr-defined]
    out |= {
        "chi2_min": float(ds["chi2_min"]),
        "ndof": int(ds["ndof"]),
        "cl": ds["cl"].values.tolist(),
    }  # type: ignore[index]
    out["parameters"] = {
        str(n): {
            v: ds[v].sel(parameter=n).values.tolist()  # type: ignore[index]
            for v in (
                "best_fit",
                "hesse_error",
                "wilks_lower",
                "wilks_upper",
                "fc_lower",
                "fc_upper",
            )
        }
        for n in ds["parameter"].values  # type: ignore[index]
    }
    return json.dumps(out, indent=2)


def fit(
    result: Annotated[
        Path, typer.Argument(help="A result published by `farm run` (its --out path).")
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="module:callable σ(enu_mev, flavor, **params), e.g. farm.models:cevns.",
        ),
    ],
    param: Annotated[
        list[str],
        typer.Option(
            "--param",
            "-p",
            help="A free parameter: NAME, NAME=START, NAME=LO:HI or NAME=START:LO:HI (one or two; repeat).",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the fit dataset (zarr).")
    ],
    fixed: Annotated[
        list[str] | None,
        typer.Option("--set", help="Fix a keyword of the model: KEY=VALUE (repeat)."),
    ] = None,
    convention: Annotated[
        str, typer.Option("--convention", help="real (default) or nominal flux convention.")
    ] = "real",
    kind: Annotated[
        str, typer.Option("--kind", help="xsec: σ(E_ν); dxsec: dσ/dX for truth binned in X.")
    ] = "xsec",
    cl: Annotated[
        list[float] | None,
        typer.Option("--cl", help="Confidence level (repeat; default 0.6827 and 0.90)."),
    ] = None,
    grid: Annotated[
        int | None,
        typer.Option("--grid", help="Grid nodes per parameter (default 201 for one, 41 for two)."),
    ] = None,
    toys: Annotated[
        int, typer.Option("--toys", help="Feldman–Cousins toys per point (0: Wilks only).")
    ] = 1000,
    fc_points: Annotated[
        int, typer.Option("--fc-points", help="Feldman–Cousins points per parameter.")
    ] = 21,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the toys.")] = 1,
    block: Annotated[
        int, typer.Option("--block", help="Toys per dask task (and per checkpoint).")
    ] = 100,
    stat: Annotated[
        str,
        typer.Option(
            "--stat", help="Toys' statistics: auto, poisson (counts re-extracted) or gaussian."
        ),
    ] = "auto",
    asimov: Annotated[
        bool,
        typer.Option(
            "--asimov", help="Fit the model's own prediction at the start values (Asimov data)."
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Write PNG plots and fit-LABEL.html here (farm report includes them)."
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Name of the fit in the report.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier fit at --out.")
    ] = False,
    checkpoints: Annotated[
        bool,
        typer.Option(
            "--checkpoints/--no-checkpoints", help="Checkpoint toy blocks beside --out (resume)."
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    sample: Annotated[
        str | None,
        typer.Option(
            "--sample",
            help="For a multi-sample measurement: fit this sample's own result alone "
            "(default: all its samples together, with the covariance across them).",
        ),
    ] = None,
    cluster: ClusterFlag = "local",
    workers: WorkersFlag = None,
    threads: ThreadsFlag = False,
    scheduler: SchedulerFlag = None,
    scheduler_file: SchedulerFileFlag = None,
    tls_dir: TlsFlag = None,
    cluster_settings: SettingsFlag = None,
) -> None:
    """Fit named parameters of a model to a result: χ²(θ) with the joint measured–predicted
    covariance, re-predicted in every flux universe at each θ; best fit, Δχ² profiles, Wilks
    (Minos) and Feldman–Cousins intervals. The toys run as dask tasks on the cluster flags of
    `farm run`, seeded per toy and checkpointed; workers get the tabulated predictions, never
    the model. The model runs as Python in this process: only load models you trust.

    A multi-sample measurement is fitted over all its samples at once: each sample re-predicted
    in its own universes, a shared systematic's throws lined up across the samples, so χ² uses
    the joint covariance with its cross-sample blocks (docs/measurements.md). `material` is
    each sample's detector's unless --set fixes it; --sample NAME fits one sample alone.

    Example: farm fit results/sns-csi.zarr --model farm.models:cevns --param sin2w --out fit.zarr --report results/sns-csi-report
    """
    from farm.compare_models import resolve_model
    from farm.fit.dataset import fit_dataset, write_fit
    from farm.fit.joint import open_problem
    from farm.fit.params import parse_fixed, parse_parameter
    from farm.fit.report import safe_label, write_fit_report
    from farm.fit.run import DEFAULT_CLS, FitSettings, run_fit

    t0 = time.perf_counter()
    with user_errors(writing=out):
        if out.exists() and not overwrite:
            msg = f"{out} exists; give another --out or add --overwrite"
            raise FileExistsError(msg)
        options = cluster_options(
            cluster, workers, threads, scheduler, scheduler_file, tls_dir, cluster_settings
        )
        function, name = resolve_model(model)
        params = [parse_parameter(p, function, name) for p in param]
        names = tuple(p.name for p in params)
        if len(set(names)) != len(names):
            msg = f"--param names a parameter twice: {', '.join(names)}"
            raise ValueError(msg)
        keywords = parse_fixed(fixed or [], function, name)
        if set(keywords) & set(names):
            msg = f"{', '.join(sorted(set(keywords) & set(names)))} is both free (--param) and fixed (--set)"
            raise ValueError(msg)
        settings = FitSettings(
            cls=tuple(cl) if cl else DEFAULT_CLS, grid=grid, toys=toys, fc_points=fc_points,
            seed=seed, block=block, stat=stat,
        )  # fmt: skip
        problem = open_problem(
            result,
            function,
            names,
            fixed=keywords,
            convention=convention,
            kind=kind,
            label=name,
            sample=sample,
        )
        if asimov:
            problem = problem.asimov([p.start for p in params])
        tag = label or f"{name}-{'-'.join(names)}"
        with progress_bar() as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(
                        "tabulating χ²(θ)" if stage == "grid" else "toys (blocks)", total=total
                    )
                bar.update(tasks[stage], completed=done, total=total)

            r = run_fit(
                problem,
                params,
                settings,
                options=options,
                checkpoint_dir=Path(f"{out}.checkpoints") if checkpoints and toys > 0 else None,
                progress=progress,
                log=lambda m: console.print(m, markup=False),
            )
        spec = f"{model}" + (" (Asimov data)" if asimov else "")
        ds = fit_dataset(r, result=str(result), model=spec)
        write_fit(ds, out, overwrite=overwrite)
        written = write_fit_report(ds, report, safe_label(tag)) if report is not None else []
    if as_json:
        shown.print_json(_as_json(ds))
        return
    shown.print(
        f"[bold]{name}[/] fitted to [bold]{problem.inputs.sample}[/] ({convention}-flux convention, "
        f"{problem.n_bins} bin(s), {problem.inputs.n_universes} universes{', Asimov data' if asimov else ''})"
    )
    for line in _joint_lines(problem):
        shown.print(line)
    shown.print(_summary(ds))
    gof = f", p = {r.best.pvalue:.3g}" if r.best.ndof > 0 else ""
    shown.print(
        f"χ²_min = {r.best.chi2:.4g} for {r.best.ndof} dof{gof}; Migrad {'valid' if r.best.valid else 'NOT valid'}, {r.best.calls} calls"
    )
    if r.toy_stats is not None:
        s = r.toy_stats
        shown.print(
            f"Feldman–Cousins: {settings.toys} {r.stat} toys × {r.fc[0].theta.size} points × {len(params)} parameter(s) "
            f"in {s.tasks} blocks ({s.from_checkpoint} from checkpoints)"
        )
        for f in r.fc:
            if not f.connected.all():
                console.print(  # a caveat: stderr
                    f"note: the accepted region of {f.name} is not one interval; the bounds shown span it"
                )
    shown.print(
        f"wrote {out}"
        + (f" and {len(written)} report files in {report}" if written else "")
        + f" in {time.perf_counter() - t0:.1f} s"
    )
