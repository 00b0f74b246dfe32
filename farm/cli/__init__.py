"""The ``farm`` command line: generate, inspect, plan, run, refresh, versions, clean, cluster, …

Each command lives in its own module; this one assembles them, and turns SIGTERM into an orderly
exit (:func:`main`).
"""

from __future__ import annotations

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
    validate,
    weights,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="farm",
    help="Distributed Monte-Carlo systematics farm for neutrino cross-section measurements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Example: farm run sns-csi --out results/sns-csi.zarr --events 200000",
)
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
