"""What every command shares: the console, clean error exits, and progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["EXIT_BUSY", "console", "fail", "progress_bar", "user_errors"]

console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    # escaped: messages name config keys as [section.key], which rich would take for markup
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


EXIT_BUSY = 75
"""Exit status when another process is publishing the same output (sysexits EX_TEMPFAIL: retry)."""


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the farm's input errors into a message and exit 2, and a failed work item into exit 1.

    Input errors: bad values (ValueError family), missing or existing files, a cluster that
    cannot be reached, a backend whose optional package is not installed. A work item that failed
    on a worker arrives as RuntimeError naming the item and its rows; a failed write (a full disk,
    a failing checkpoint or result store) as OSError: both exit 1. An output locked by another
    publisher exits 75 (try again later).
    """
    from farm.lock import OutputLockedError

    try:
        yield
    except (ValueError, FileNotFoundError, FileExistsError, ConnectionError, ImportError) as err:
        raise fail(str(err)) from None
    except OutputLockedError as err:
        raise fail(str(err), code=EXIT_BUSY) from None
    except (RuntimeError, OSError) as err:
        raise fail(str(err), code=1) from None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
