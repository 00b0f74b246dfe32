"""The ``farm`` command line: generate, inspect, plan, run, refresh, versions, clean, cluster, …

Each command lives in its own module; this one assembles them, and turns SIGTERM into an orderly
exit (:func:`main`).
"""

from __future__ import annotations

import atexit
import gc
import os
from typing import Annotated

import typer

from farm.cli import (
    clean,
    cluster,
    compare,
    config,
    export,
    fit,
    generate,
    ingest,
    inspect,
    plan,
    report,
    run,
    stores,
    validate,
    weights,
)

__all__ = ["app", "main"]

# a command's process ends when the command does: the collector's last passes over every object
# of xarray, zarr, numba and pandas would only add ≈ 0.5 s to it, and its passes while they are
# imported ≈ 0.2 s more (collected 70× less often: a command holds few cycles; docs/internals.md §5)
atexit.register(gc.freeze)
gc.set_threshold(50_000, 20, 100)
# and its kernels (and its local workers', which inherit this) need no numba extension of
# another package (farm.reweight.compiled)
os.environ.setdefault("FARM_NUMBA_EXTENSIONS", "0")

EXIT_CODES = (
    "Exit status: 0 ok; 1 the analysis failed (a work item, a write, a damaged shard); 2 usage "
    "or bad input (a flag, a value, a missing or invalid file); 75 the output is locked by "
    "another run (retry, or --wait); 130 interrupted by Ctrl-C (143 by SIGTERM): rerun the same "
    "command to resume."
)

app = typer.Typer(
    name="farm",
    help="Distributed Monte-Carlo systematics farm for neutrino cross-section measurements.\n\n"
    "Results go to stdout (--json where offered: machine-readable, and nothing else there); "
    "progress, stages and messages to stderr.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are literal: [generation] stays [generation]
    epilog="Example: farm run sns-csi --out results/sns-csi.zarr --events 200000\n\n" + EXIT_CODES,
)


def _version(value: bool) -> None:
    if value:
        from farm import __version__

        typer.echo(f"farm {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr (no progress, no stages).")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also each stage's time and more detail.")
    ] = False,
) -> None:
    """Distributed Monte-Carlo systematics farm for neutrino cross-section measurements."""
    from farm.cli._common import configure_output

    configure_output(quiet=quiet, verbose=verbose)


app.command("generate")(generate.generate)
app.command("inspect")(inspect.inspect)
app.command("plan")(plan.plan)
app.command("run")(run.run)
app.command("refresh")(run.refresh)
app.command("versions")(plan.versions)
app.command("clean")(clean.clean)
app.command("report")(report.report)
app.command("compare")(compare.compare)
app.command("fit")(fit.fit)
app.command("ingest")(ingest.ingest)
app.add_typer(cluster.app, name="cluster")
app.add_typer(config.app, name="config")
app.add_typer(export.app, name="export")
app.add_typer(stores.app, name="stores")
app.add_typer(validate.app, name="validate")
app.add_typer(weights.app, name="weights")


EXIT_TERMINATED = 128 + 15
"""Exit status after SIGTERM (the shell's convention for a process ended by signal 15)."""


class Terminated(SystemExit):
    """SIGTERM arrived: unwinds the command, so that what it was writing is removed."""


def _on_sigterm(signum: int, frame: object) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated(EXIT_TERMINATED)


def main() -> None:
    """The ``farm`` command. SIGTERM unwinds it like Ctrl-C: the store, version or checkpoint
    being written is removed and the lock released (a SIGKILL leaves them, and the next run or
    ``farm clean`` removes them: :mod:`farm.stale`)."""
    import signal

    from farm.cli._common import console

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()
    except Terminated:
        console.print(
            "[bold red]error:[/] stopped by SIGTERM: the temporary files it was writing were "
            "removed, and what it had not finished was not published (a result or store already "
            "there is unchanged); rerun the same command (`farm run` resumes from the work items "
            "it checkpointed)",
            highlight=False,
        )
        raise
