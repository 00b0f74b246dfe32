"""``farm ingest``: events from an outside generator (GENIE gst, NuHepMC/HepMC3) into a store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import console, progress_bar, user_errors
from farm.cli._common import out as out_console

__all__ = ["ingest"]


def ingest(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="GENIE gst ROOT files or HepMC3 files (one format); read in order."),
    ],
    mapping: Annotated[
        Path,
        typer.Option(
            "--mapping",
            "-m",
            help="Mapping file (TOML): branches, units, channel rules, signal, exposure. See examples/genie-mapping.toml.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the event store (a zarr directory).")
    ],
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="gst or hepmc3 (default: the mapping's ingest.format, else the file suffix).",
        ),
    ] = None,
    shard_size: Annotated[
        int | None, typer.Option("--shard-size", help="Events per shard (default 8388608).")
    ] = None,
    exposure: Annotated[
        float | None,
        typer.Option(
            "--exposure",
            help="Normalise to this exposure, in the mapping's exposure.unit (POT, fissions or seconds); "
            "weights scale by it over the mapping's value, and so does the running time.",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace an existing store (only once the new one is complete)."
        ),
    ] = False,
) -> None:
    """Ingest events from an outside generator into a farm event store.

    Reads the inputs a chunk at a time, maps their branches to the store's columns as the mapping
    file says (units converted to MeV; channels, signal and selection by its rules; w_nominal =
    expected events over the exposure) and writes the store atomically. Missing trees or branches
    are reported before anything is written.

    Example: farm ingest numu_Ar40.gst.root --mapping examples/genie-mapping.toml --out stores/genie-ar.zarr
    """
    from farm.ingest import ingest as ingest_events
    from farm.stale import clean_stale, temporaries_of
    from farm.store import DEFAULT_SHARD_ROWS

    with user_errors(writing=out):
        t0 = time.perf_counter()
        # what a killed `farm ingest --out OUT` left beside OUT (its writer no longer runs)
        clean_stale(temporaries_of(out), log=lambda m: console.print(m, markup=False))
        with progress_bar() as bar:
            task = bar.add_task(f"ingesting {len(inputs)} file(s)", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            attrs = ingest_events(
                inputs,
                mapping,
                out,
                format=format,
                shard_rows=DEFAULT_SHARD_ROWS if shard_size is None else shard_size,
                exposure=exposure,
                overwrite=overwrite,
                on_shard=advance,
            )
        dt = time.perf_counter() - t0
    n = sum(i["event_ids"][1] - i["event_ids"][0] for i in attrs["ingest"]["inputs"])
    dropped = sum(i["dropped"] for i in attrs["ingest"]["inputs"])
    kept = f" ({dropped:,} dropped by \\[ingest] keep)" if dropped else ""
    generator = attrs["generator"]
    out_console.print(  # the result: stdout
        f"wrote {n:,} events{kept} of {generator.get('name', 'an outside generator')} "
        f"{generator.get('version', '')} to {out} in {dt:.1f} s, exposure "
        f"{attrs['exposure']['value']:.4g} {attrs['exposure']['unit']}",
        highlight=False,
    )
