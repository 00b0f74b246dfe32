"""``farm weights``: attach precomputed universe weights to an event store, list and verify them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from farm.cli._common import console, fail, out, user_errors

__all__ = ["app"]

app = typer.Typer(
    help="Precomputed per-event universe weights (weight sets) of an event store.",
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts are literal: [generation] stays [generation]
)


@app.command("add")
def add(
    store: Annotated[Path, typer.Argument(help="The event store (farm generate or farm ingest).")],
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Weight files keyed by event_id (or entry, --key): .npz (event_id, weights) "
            "or .parquet."
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the weight set.")],
    mode: Annotated[
        str, typer.Option("--mode", help="multisim (one universe per column) or unisim (+1σ, −1σ).")
    ] = "multisim",
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="float32 or float64 (default: the files').")
    ] = None,
    column: Annotated[
        str, typer.Option("--column", help="The weights' array or column in the files.")
    ] = "weights",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a weight set of the same name.")
    ] = False,
    key: Annotated[
        str,
        typer.Option(
            "--key",
            help="How rows find their events: event_id (the store's), or entry (each event's "
            "0-based entry in its input file, plus an `input` array, that file's index in ingest "
            "order, when the store was ingested from several files).",
        ),
    ] = "event_id",
) -> None:
    """Attach a weight set to a store without rewriting it (its own checksums are recorded).

    Every event of the store needs one row of U weights, found by its event_id (or, with
    --key entry, by its entry in the input file an ingested store came from: rows for events
    [ingest] keep dropped are skipped and counted), in any order and across any number of
    files. Use it in a configuration as [[systematics]] kind = "weights", weight_set = NAME.

    Example: farm weights add stores/genie.zarr --name genie_multisim weights.parquet
    """
    from farm.weights import add_weight_set

    if mode not in ("multisim", "unisim"):
        raise fail(f"--mode {mode!r}: give multisim or unisim")
    if key not in ("event_id", "entry"):
        raise fail(f"--key {key!r}: give event_id or entry")
    with user_errors(writing=store):
        manifest = add_weight_set(
            store, name, files, mode=mode, dtype=dtype, column=column, overwrite=overwrite, key=key
        )
    bad = manifest["unphysical"]
    out.print(  # the result: stdout
        f"added weight set {name!r} to {store}: {manifest['n_events']:,} events × "
        f"{manifest['universes']} universes ({manifest['dtype']}, {mode}); unphysical weights: "
        f"{bad['negative']} negative, {bad['nan']} NaN, {bad['inf']} infinite"
        + (
            f"; {skipped:,} row(s) for entries the store does not hold skipped"
            if (skipped := manifest["source"].get("rows_not_in_store", 0))
            else ""
        ),
        highlight=False,
    )


@app.command("list")
def list_sets(
    store: Annotated[Path, typer.Argument(help="The event store.")],
    verify: Annotated[
        bool, typer.Option("--verify", help="Recompute every shard checksum of every set.")
    ] = False,
) -> None:
    """The weight sets of a store: universes, dtype, mode, source and unphysical weights.

    Example: farm weights list stores/genie.zarr --verify
    """
    from farm.store.reader import EventStore
    from farm.store.weights import WeightSet, weight_set_names

    with user_errors():
        opened = EventStore.open(store)
        sets = [WeightSet.open(opened, name) for name in weight_set_names(store)]
    table = Table("name", "universes", "dtype", "mode", "negative", "NaN", "inf", "checksums")
    damaged = 0
    for ws in sets:
        bad = ws.manifest.get("unphysical", {})
        checked = "not verified"
        if verify:
            results = ws.verify()
            failed = [r for r in results if not r[1]]
            damaged += len(failed)
            checked = "OK" if not failed else f"{len(failed)} damaged"
        table.add_row(
            escape(ws.name),
            str(ws.universes),
            ws.manifest["dtype"],
            ws.mode,
            str(bad.get("negative", "?")),
            str(bad.get("nan", "?")),
            str(bad.get("inf", "?")),
            checked,
        )
    if sets:
        out.print(table)  # the result: stdout
    else:  # as `farm stores list` says it finds none
        console.print(f"{store} holds no weight sets", markup=False, highlight=False)
    if damaged:
        raise typer.Exit(1)
