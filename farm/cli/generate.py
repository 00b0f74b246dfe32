"""``farm generate``: write an event store for a sample."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import console, count, progress_bar, user_errors
from farm.cli._common import out as out_console

__all__ = ["generate"]


def generate(
    sample: Annotated[
        str,
        typer.Argument(
            help="Sample name (sns-csi, sns-lar, sns-ge, reactor-ge, reactor-ibd, nuscope-lar) or a TOML file."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the event store (a zarr directory).")
    ],
    events: Annotated[
        int | None,
        typer.Option(
            "--events",
            "-n",
            parser=count,
            metavar="N",
            help="Number of events (overrides [generation] events; 2e5, 200_000).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Base seed (overrides [generation] seed).")
    ] = None,
    shard_size: Annotated[
        int | None,
        typer.Option(
            "--shard-size",
            parser=count,
            metavar="N",
            help="Rows per shard (overrides [generation] shard_size).",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace an existing store (only once the new one is complete)."
        ),
    ] = False,
) -> None:
    """Generate a sample's events into a sharded zarr event store.

    Example: farm generate sns-csi --events 1000000 --out stores/sns-csi.zarr
    """
    from farm.config import load_config
    from farm.samples.generate import generate_store
    from farm.stale import clean_stale, temporaries_of

    overrides = {
        f"generation.{k}": v
        for k, v in {"events": events, "seed": seed, "shard_size": shard_size}.items()
        if v is not None
    }
    with user_errors(writing=out):
        cfg = load_config(sample, **overrides)
        # what a killed `farm generate --out OUT` left beside OUT (its writer no longer runs)
        clean_stale(temporaries_of(out), log=lambda m: console.print(m, markup=False))
        n = cfg.generation.events
        t0 = time.perf_counter()
        with progress_bar() as bar:
            task = bar.add_task(f"generating {cfg.sample.name}", total=n)
            attrs = generate_store(
                cfg,
                out,
                overwrite=overwrite,
                on_shard=lambda done, _: bar.update(task, completed=done),
            )
        dt = time.perf_counter() - t0
    out_console.print(  # the result: stdout
        f"wrote {n:,} events of {cfg.sample.name} to {out} in {dt:.1f} s ({n / dt / 1e6:.2f} M events/s), "
        f"exposure {attrs['exposure']['value']:.4g} {attrs['exposure']['unit']}"
    )
