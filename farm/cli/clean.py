"""``farm clean``: remove the temporary files and folders that killed runs left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import console, fail, out, user_errors

__all__ = ["clean"]


def _show(line: str) -> None:
    """What was (or would be) removed is the result (stdout); one that failed, stderr."""
    shown = console if line.startswith("failed") else out
    shown.print(line, markup=False, highlight=False)


def clean(
    path: Annotated[
        Path,
        typer.Argument(
            help="A result (--out of farm run), an event store, or a folder holding them."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            help="Hours after which a temporary of another host (or of an earlier farm) is "
            "stale; one whose writer runs on this host is never removed.",
        ),
    ] = 24.0,
) -> None:
    """Remove stale temporaries: partial stores, versions, link swaps and checkpoints.

    A temporary is stale when its writer ran on this host and no longer runs, or when it was
    written elsewhere and nothing in it changed for --older-than hours. An overwritten store
    renamed aside whose replacement never arrived is put back instead. `farm run`,
    `farm refresh` and `farm generate` do the same for their own output before they write.

    Example: farm clean results/ --dry-run
    """
    from farm.outputs import is_farm_result, is_farm_store
    from farm.stale import clean_stale, temporaries_in, temporaries_of

    with user_errors():
        if not older_than > 0:
            msg = f"--older-than must be a positive number of hours (got {older_than:g})"
            raise ValueError(msg)
        if path.is_dir() and not (is_farm_result(path) or is_farm_store(path)):
            found = temporaries_in(path)
        elif path.exists() or path.is_symlink() or path.parent.is_dir():
            found = temporaries_of(path)
        else:
            raise fail(f"{path}: no such file or folder; give a result, a store or a folder")
        done = clean_stale(
            found,
            max_age_s=older_than * 3600.0,
            dry_run=dry_run,
            log=_show,
        )
    kept = len(found) - len(done)
    if not done:
        out.print(f"{path}: nothing stale to remove", markup=False, highlight=False)
    else:
        size = sum(d.bytes for d in done)
        verb = "would free" if dry_run else "freed"
        out.print(
            f"{path}: {len(done)} stale temporary(ies), {verb} {size:,} bytes",
            markup=False,
            highlight=False,
        )
    if kept:
        console.print(
            f"kept {kept} temporary(ies) still in use (their writer runs) or too recent to tell",
            highlight=False,
        )
    if any(d.action.startswith("failed") for d in done):
        raise fail("some stale temporaries could not be removed (see above)", code=1)
