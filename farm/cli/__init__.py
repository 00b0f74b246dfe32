"""The ``farm`` command line: generate, inspect, plan, run, refresh, versions, cluster.

Each command lives in its own module; this one only assembles them.
"""

from __future__ import annotations

import typer

from farm.cli import (
    cluster,
    compare,
    config,
    export,
    generate,
    ingest,
    inspect,
    plan,
    report,
    run,
    validate,
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
app.command("report")(report.report)
app.command("compare")(compare.compare)
app.command("ingest")(ingest.ingest)
app.add_typer(cluster.app, name="cluster")
app.add_typer(config.app, name="config")
app.add_typer(export.app, name="export")
app.add_typer(validate.app, name="validate")


def main() -> None:
    app()
