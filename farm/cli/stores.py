"""``farm stores list|clean``: the event stores ``farm run`` generated, and removing them."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from farm.cli._common import EXIT_FAILURE, console, emit_json, fail, out, user_errors

__all__ = ["app", "clean", "list_stores"]

app = typer.Typer(
    name="stores",
    help="The event stores farm run generates (in FARM_STORE_DIR, else ~/.cache/farm/stores): "
    "list them, remove them.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts are literal
    pretty_exceptions_enable=False,
    epilog="Example: farm stores list; farm stores clean --older-than 30 --dry-run",
)

DirFlag = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="The folder of stores (default: FARM_STORE_DIR, else ~/.cache/farm/stores).",
    ),
]


def _folder(folder: Path | None) -> Path:
    from farm.config import store_dir

    return store_dir() if folder is None else folder


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _date(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M")


@app.command("list")
def list_stores(
    folder: DirFlag = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stores as JSON (stdout) instead of a table.")
    ] = False,
) -> None:
    """List the event stores in the store folder: sample, events, size, when generated.

    A store marked "kept" is one `farm stores clean` never removes (ingested, or with weight
    sets attached). Temporaries of killed runs are `farm clean`'s business.

    Example: farm stores list --json
    """
    from farm.store.catalog import find_stores

    where = _folder(folder)
    with user_errors():
        found = find_stores(where)
    if as_json:
        doc = {"folder": str(where), "stores": [e.as_json() for e in found]}
        emit_json(doc)
        return
    if not found:
        out.print(f"{where}: no event stores", highlight=False, markup=False)
        return
    table = Table(box=box.SIMPLE, pad_edge=False)
    for name in ("store", "sample", "events", "size", "generated (UTC)", "clean"):
        table.add_column(
            name, no_wrap=True, justify="right" if name in ("events", "size") else "left"
        )
    for e in found:
        table.add_row(
            e.path.name,
            e.sample,
            f"{e.events:,}" if e.events is not None else "?",
            _size(e.bytes),
            _date(e.created),
            "removable" if e.kept is None else f"kept: {e.kept}",
        )
    out.print(table)
    total = sum(e.bytes for e in found)
    out.print(f"{len(found)} store(s), {_size(total)} in {where}", highlight=False, markup=False)


@app.command("clean")
def clean(
    folder: DirFlag = None,
    sample: Annotated[
        list[str] | None,
        typer.Option("--sample", help="Only the stores of this sample (repeat for more)."),
    ] = None,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than", metavar="DAYS", help="Only stores generated this many days ago or more."
        ),
    ] = None,
    all_stores: Annotated[
        bool, typer.Option("--all", help="Every generated store in the folder.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
) -> None:
    """Remove generated event stores (the next farm run of their configuration regenerates them).

    Say which: --sample NAME, --older-than DAYS (both: stores matching both), or --all. Only
    stores the farm generated are removed: an ingested store, a store with weight sets attached,
    a result, a link or any other file is never touched. Do not clean stores a running job reads.

    Example: farm stores clean --older-than 30 --dry-run
    """
    from farm.store.catalog import age_days, find_stores, remove_store

    if not (sample or older_than is not None or all_stores):
        raise fail(
            "say which stores to remove: --sample NAME, --older-than DAYS or --all "
            "(add --dry-run to list them first; `farm stores list` shows them all)"
        )
    if all_stores and (sample or older_than is not None):
        raise fail("--all removes every generated store; drop it, or drop --sample/--older-than")
    if older_than is not None and not older_than >= 0:
        raise fail(f"--older-than must be a number of days >= 0 (got {older_than:g})")
    where = _folder(folder)
    with user_errors():
        found = find_stores(where)
    chosen = [
        e
        for e in found
        if (not sample or e.sample in sample) and (older_than is None or age_days(e) >= older_than)
    ]
    failed = 0
    freed = 0
    removed = 0
    for e in chosen:
        if e.kept is not None:
            console.print(f"kept {e.path}: {e.kept}", highlight=False, markup=False)
            continue
        if not dry_run:
            try:
                remove_store(e)
            except (OSError, ValueError) as err:
                failed += 1
                console.print(f"failed {e.path}: {err}", highlight=False, markup=False, style="red")
                continue
        removed += 1
        freed += e.bytes
        verb = "would remove" if dry_run else "removed"
        out.print(f"{verb} {e.path} ({e.sample}, {_size(e.bytes)})", highlight=False, markup=False)
    if not dry_run:  # the records of verified shards (farm.store.trust) of stores now gone
        from farm.store.trust import prune

        prune()
    verb = "would free" if dry_run else "freed"
    out.print(  # the summary is the result, as `farm clean`'s; kept and failed are diagnostics
        f"{where}: {removed} store(s) {'to remove' if dry_run else 'removed'}, {verb} {_size(freed)}",
        highlight=False,
        markup=False,
    )
    if failed:
        raise fail(f"{failed} store(s) could not be removed (see above)", code=EXIT_FAILURE)
