"""``farm validate``: checks of the farm's own numbers against independent computations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import EXIT_FAILURE, console, count, fail, user_errors
from farm.cli._common import out as out_console

__all__ = ["app", "closure"]

app = typer.Typer(
    help="Check the farm's numbers against independent computations (closure of knobs).",
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts are literal: [generation] stays [generation]
)


@app.command("closure")
def closure(
    config: Annotated[str, typer.Argument(help="Sample name (e.g. sns-csi) or a TOML file.")],
    knob: Annotated[
        list[str] | None,
        typer.Option("--knob", "-k", help="Close only this knob systematic (repeatable)."),
    ] = None,
    sigma: Annotated[
        float, typer.Option("--sigma", help="Shift of each knob, in units of its sigma.")
    ] = 1.0,
    events: Annotated[
        int | None,
        typer.Option(
            "--events",
            "-n",
            parser=count,
            metavar="N",
            help="Events of the nominal and regenerated samples.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for closure.png and closure.json."),
    ] = None,
) -> None:
    """Close every knob against the sample regenerated with its parameter shifted (same seed).

    For each knob systematic, the sample is regenerated with that physical parameter moved by
    ±SIGMA σ, and compared per reco bin with the nominal sample's knob universes at the same
    shift (the path a run takes). Prints the ratios with their MC-statistics errors, a χ² and
    p-value per knob, writes a PNG, and exits 1 when a knob fails (p < 0.01, a total off by more
    than 3 standard errors, or the shortcut off exact weights).

    Example: farm validate closure sns-csi --events 200000 --out closure/sns-csi
    """
    from farm.closure import closure as run_closure
    from farm.config import load_config
    from farm.runner import ensure_store

    overrides = {"generation.events": events} if events is not None else {}
    with user_errors():
        cfg = load_config(config, **overrides)
        store = ensure_store(cfg, log=lambda m: console.print(m, highlight=False))
        results = run_closure(
            cfg,
            store,
            systematics=knob or None,
            n_sigma=sigma,
            log=lambda m: console.print(m, highlight=False),
        )
    if not results:
        out_console.print(f"{cfg.sample.name}: no knob systematics to close", markup=False)
        raise typer.Exit(0)
    _print_table(cfg.sample.name, results)
    if out is not None:
        from farm.report.plot_closure import plot_closure

        assert cfg.binning is not None
        png = plot_closure(
            results, cfg.binning.reco_edges, cfg.binning.observable, out / "closure.png"
        )
        (out / "closure.json").write_text(json.dumps(_summary(results), indent=2) + "\n")
        out_console.print(f"wrote {png} and {out / 'closure.json'}", markup=False)
    failed = [r for r in results if not r.passed]
    if failed:
        names = ", ".join(sorted({f"{r.systematic} ({r.n_sigma:+g}σ)" for r in failed}))
        raise fail(f"closure fails for {names}", code=EXIT_FAILURE)  # the analysis failed: 1
    out_console.print(f"closure passes for all {len({r.systematic for r in results})} knobs")


def _print_table(sample: str, results: list) -> None:
    from rich.table import Table

    table = Table(
        title=f"{sample}: knob universe / regenerated sample, totals (per-bin in closure.json)",
        caption="effect: how much the shift moves the regenerated sample; ratio ± MC error",
    )
    for name in (
        "systematic",
        "shift",
        "signal effect",
        "signal ratio",
        "bkg effect",
        "bkg ratio",
        "χ²/ndf",
        "p",
        "verdict",
    ):
        table.add_column(name, overflow="fold")
    for r in results:
        chi2, ndof = r.chi2
        cells = []
        for kind in ("signal", "background"):
            ratio, err = r.total_ratio(kind)
            cells += [f"{100 * r.effect(kind):+.2f} %", f"{ratio:.4f} ± {err:.4f}"]
        table.add_row(
            r.systematic,
            f"{r.n_sigma:+g}σ ({r.shift:+.4g})",
            *cells,
            f"{chi2:.1f}/{ndof}",
            f"{r.p_value:.3f}",
            "pass" if r.passed else "FAIL: " + "; ".join(r.failures),
        )
    out_console.print(table)  # the result: stdout


def _summary(results: list) -> list[dict]:
    out = []
    for r in results:
        chi2, ndof = r.chi2
        out.append(
            {
                "systematic": r.systematic,
                "parameter": r.parameter,
                "n_sigma": r.n_sigma,
                "shift": r.shift,
                "chi2": chi2,
                "ndof": ndof,
                "p_value": r.p_value,
                "pull_signal": r.pull("signal"),
                "pull_background": r.pull("background"),
                "fast_path_difference": r.fast_path_difference,
                "effect_signal": r.effect("signal"),
                "effect_background": r.effect("background"),
                "nominal_signal": r.nominal.signal.tolist(),
                "nominal_background": r.nominal.background.tolist(),
                "passed": r.passed,
                "failures": r.failures,
                "knob_signal": r.knob.signal.tolist(),
                "regenerated_signal": r.regenerated.signal.tolist(),
                "knob_background": r.knob.background.tolist(),
                "regenerated_background": r.regenerated.background.tolist(),
            }
        )
    return out
