"""What every command shares: the console, clean error exits, and progress bars."""

from __future__ import annotations

import contextlib
import os
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
def user_errors(writing: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn the farm's input errors into a message and exit 2, and a failed work item into exit 1.

    Input errors: bad values (ValueError family), missing or existing files, a cluster that
    cannot be reached, a backend whose optional package is not installed. A work item that failed
    on a worker arrives as RuntimeError naming the item and its rows; a failed write (a full disk,
    a failing checkpoint or result store) as OSError: both exit 1. An output locked by another
    publisher exits 75 (try again later).

    An operating-system error that carries only Python's text (``[Errno 28] No space left on
    device``) is reworded to name its file, or else ``writing`` (what the command writes), with
    what to do (:func:`farm.oserrors.describe_os_error`).
    """
    from farm.lock import OutputLockedError
    from farm.oserrors import describe_os_error, is_raw

    try:
        yield
    except (FileNotFoundError, FileExistsError) as err:
        raise fail(describe_os_error(err, writing) if is_raw(err) else str(err)) from None
    except (ValueError, ConnectionError, ImportError) as err:
        raise fail(str(err)) from None
    except OutputLockedError as err:
        raise fail(str(err), code=EXIT_BUSY) from None
    except OSError as err:
        raise fail(describe_os_error(err, writing) if is_raw(err) else str(err), code=1) from None
    except RuntimeError as err:
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
