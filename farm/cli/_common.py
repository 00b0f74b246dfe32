"""What every command shares: the consoles, the exit codes, clean error exits, counts, and
progress bars.

Results go to stdout (``out``), everything else (progress, stages, warnings, errors) to stderr
(``console``), so ``farm run … --json > result.json`` holds the JSON and nothing else. Neither
console wraps its lines when it is not a terminal (:func:`configure_output`).
"""

from __future__ import annotations

import contextlib
import decimal
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

__all__ = [
    "EXIT_BUSY",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "configure_output",
    "console",
    "count",
    "debug",
    "emit_json",
    "fail",
    "out",
    "parse_count",
    "progress_bar",
    "user_errors",
]

console = Console(stderr=True)
"""Diagnostics: progress, stages, warnings and errors (stderr)."""
out = Console(highlight=False)
"""Results: what a command was asked for (stdout)."""

EXIT_OK = 0
EXIT_FAILURE = 1
"""The analysis failed: a work item, a write, a damaged shard, a refused verification."""
EXIT_USAGE = 2
"""Usage or bad input: an unknown flag, a bad value, a missing or invalid file (click's own 2)."""
EXIT_BUSY = 75
"""Exit status when another process is publishing the same output (sysexits EX_TEMPFAIL: retry)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (the shell's 128 + SIGINT); SIGTERM gives 143 (:data:`farm.cli.EXIT_TERMINATED`)."""

_verbose = False
_UNWRAPPED_WIDTH = 1000


def configure_output(*, quiet: bool = False, verbose: bool = False) -> None:
    """Set the verbosity of this invocation, and let lines run on when not on a terminal.

    ``quiet``: only errors (and what was asked for on stdout); ``verbose``: also the time of each
    stage and details such as the worker addresses (:func:`debug`). A console that is not a
    terminal (a pipe, a file, a test's runner) never wraps: a log line stays one line.
    """
    global _verbose
    _verbose = verbose and not quiet
    console.quiet = quiet
    for c in (console, out):
        c.soft_wrap = not c.is_terminal
        # and tables are not cut at 80 columns in a pipe or a log (COLUMNS, if set, still rules)
        wide = not c.is_terminal and "COLUMNS" not in os.environ
        c._width = _UNWRAPPED_WIDTH if wide else None  # rich's own: None measures again


def _plain(value: object) -> object:
    """JSON's own types: numpy scalars and arrays as numbers and lists, NaN and ±inf as null."""
    import math

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return _plain(value.tolist())  # type: ignore[attr-defined]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def emit_json(doc: object) -> None:
    """``doc`` as one JSON document on stdout, strict JSON (no NaN), never wrapped or coloured."""
    import json

    typer.echo(json.dumps(_plain(doc), indent=2, allow_nan=False))


def debug(message: str) -> None:
    """A detail shown with ``-v`` only (printed literally)."""
    if _verbose:
        console.print(message, markup=False, highlight=False)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    # escaped: messages name config keys as [section.key], which rich would take for markup
    quiet, console.quiet = console.quiet, False  # an error is shown even with -q
    try:
        console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    finally:
        console.quiet = quiet
    return typer.Exit(code)


_LARGEST_COUNT = 10**15


def parse_count(text: str, what: str = "a count") -> int:
    """An exact whole number written as 200000, 200_000, 2e5 or 2.0E5; refused otherwise.

    2.5e0 or 1e-3 are not whole numbers and are refused rather than rounded, as are words,
    infinities and numbers above 10**15.
    """
    if isinstance(text, int):
        return text
    raw = str(text).strip()
    try:
        return int(raw)  # 200000, 200_000, -3 (the command checks the range)
    except ValueError:
        pass
    try:
        if "__" in raw:
            raise decimal.InvalidOperation
        number = decimal.Decimal(raw)  # 2e5, 2.0E5, 2_000e2 (underscores as in Python)
    except decimal.InvalidOperation:
        msg = f"{text!r} is not a number; give {what} such as 200000, 200_000 or 2e5"
        raise ValueError(msg) from None
    if not number.is_finite() or abs(number) > _LARGEST_COUNT:
        msg = f"{text!r} is not {what} this farm can use (a whole number up to 1e15)"
        raise ValueError(msg)
    if number != number.to_integral_value():
        msg = f"{text!r} is not a whole number ({number.normalize():f}); give {what} such as 200000 or 2e5"
        raise ValueError(msg)
    return int(number)


def count(value: object) -> int:
    """``parser=count`` of an option that takes a number of events, universes, …: 2e5, 200_000."""
    try:
        return parse_count(value)  # type: ignore[arg-type]
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


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
    except typer.Exit:  # a decided exit (typer's Exit is a RuntimeError): as it is
        raise
    except (FileNotFoundError, FileExistsError) as err:
        raise fail(describe_os_error(err, writing) if is_raw(err) else str(err)) from None
    except (ValueError, ConnectionError, ImportError) as err:
        raise fail(str(err)) from None
    except OutputLockedError as err:
        raise fail(str(err), code=EXIT_BUSY) from None
    except OSError as err:
        raise fail(
            describe_os_error(err, writing) if is_raw(err) else str(err), code=EXIT_FAILURE
        ) from None
    except RuntimeError as err:
        raise fail(str(err), code=EXIT_FAILURE) from None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=console.quiet,
    )
