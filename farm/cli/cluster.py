"""``farm cluster``: what a cluster needs before the farm runs on it (TLS certificates)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from farm.cli._common import fail, out, user_errors

__all__ = ["app", "certs"]

app = typer.Typer(
    name="cluster",
    help="Prepare a dask cluster for the farm: TLS certificates.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts are literal: [generation] stays [generation]
    pretty_exceptions_enable=False,
    epilog="Example: farm cluster certs tls/ --host 127.0.0.1",
)


@app.command("certs")
def certs(
    outdir: Annotated[
        Path, typer.Argument(help="Directory for ca.pem, ca-key.pem, cert.pem, key.pem.")
    ],
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="IP address or DNS name of the scheduler or a worker; repeat for each "
            "(default: 127.0.0.1 and localhost).",
        ),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, help="How many days the certificates stay valid.")
    ] = 365,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace certificates already in OUTDIR.")
    ] = False,
) -> None:
    """Create a private CA and one certificate, signed by it, for scheduler, workers and client.

    OUTDIR is the cluster's TLS directory (ClusterOptions.tls_dir): every node needs ca.pem, cert.pem and key.pem there; keep ca-key.pem off the cluster (it only issues new certificates).

    Example: farm cluster certs ~/.farm/tls --host 10.0.0.5 --host node07.cluster --days 90
    """
    from farm.cluster.security import DEFAULT_HOSTS, TlsPaths, generate_certs

    hosts = tuple(host) if host else DEFAULT_HOSTS
    existing = [p.name for p in TlsPaths.in_dir(outdir).all() if p.exists()]
    if existing and not overwrite:  # said in the command line's words, not the library's
        raise fail(
            f"{outdir} already holds {', '.join(existing)}; refusing to replace them. Pass "
            "--overwrite to issue a new CA and certificate (every node then needs the new "
            "ca.pem, cert.pem and key.pem)"
        )
    with user_errors():
        paths = generate_certs(outdir, hosts=hosts, days=days, overwrite=overwrite)
    out.print(  # the result: stdout
        f"wrote {paths.ca_cert.name}, {paths.ca_key.name} (0600), {paths.cert.name}, "
        f"{paths.key.name} (0600) to {outdir}, valid {days} days for {', '.join(hosts)}",
        markup=False,
    )
