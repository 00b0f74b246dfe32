"""The ``farm`` command line: generate, inspect, run.

Each command lives in its own module; this one only assembles them.
"""

from __future__ import annotations

import typer

from farm.cli import generate, inspect, run

__all__ = ["app", "main"]

app = typer.Typer(
    name="farm",
    help="Distributed Monte-Carlo systematics farm for neutrino cross-section measurements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("generate")(generate.generate)
app.command("inspect")(inspect.inspect)
app.command("run")(run.run)


def main() -> None:
    app()
