"""``farm run``: the whole measurement, from config to the result dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import console, fail, progress_bar, user_errors

__all__ = ["run"]


def run(
    config: Annotated[
        str, typer.Argument(help="Sample name (e.g. sns-csi) or a TOML configuration.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to publish the result dataset (zarr).")
    ],
    cluster: Annotated[
        str, typer.Option("--cluster", help="Where to run: inprocess (no dask).")
    ] = "inprocess",
    events: Annotated[
        int | None,
        typer.Option("--events", "-n", help="Override [generation] events (quick runs)."),
    ] = None,
    universes: Annotated[
        int | None,
        typer.Option("--universes", "-u", help="Override the throws of every multisim systematic."),
    ] = None,
) -> None:
    """Generate the sample if needed, throw the universes, extract, and publish the covariance dataset.

    Example: farm run sns-csi --out results/sns-csi.zarr --cluster inprocess --events 200000
    """
    from farm.config import load_config
    from farm.publish import publish_dataset
    from farm.runner import run_inprocess

    if cluster != "inprocess":
        raise fail(f"--cluster {cluster!r} is not available; use --cluster inprocess")
    overrides = {"generation.events": events} if events is not None else {}
    t0 = time.perf_counter()
    with user_errors():
        cfg = load_config(config, **overrides)
        with progress_bar() as bar:
            task = bar.add_task("reweighting blocks", total=None)
            ds = run_inprocess(
                cfg,
                universes=universes,
                log=lambda m: console.print(m),
                on_block=lambda done, total: bar.update(task, completed=done, total=total),
            )
        publish_dataset(ds, out)
    dt = time.perf_counter() - t0
    console.print(
        f"published {out}: {ds.sizes['universe']} universes, {len(ds.systematic)} systematics, "
        f"{ds.sizes['truth_bin']} truth bin(s), in {dt:.1f} s"
    )
    for model in ds.model.values:
        sel = ds.sel(model=model)
        console.print(
            f"  {model}: chi2/dof real {float(sel.chi2_real_joint):.2f}/{int(ds.chi2_dof)} "
            f"(uncorrelated {float(sel.chi2_real_uncorrelated):.2f}), nominal {float(sel.chi2_nominal_joint):.2f}"
        )
