"""``farm inspect``: what an event store holds, and whether its shards are intact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from farm.cli._common import console, fail, user_errors

__all__ = ["inspect"]


def inspect(
    path: Annotated[Path, typer.Argument(help="An event store written by `farm generate`.")],
    verify: Annotated[
        bool, typer.Option("--verify", help="Recompute every shard checksum (reads all data).")
    ] = False,
) -> None:
    """Print a store's exposure, expected events by channel and flavour, shards and checksums.

    Exits non-zero if the store cannot be opened or any shard fails verification.

    Example: farm inspect stores/sns-csi.zarr --verify
    """
    from farm.store import EventStore
    from farm.store.summary import summarize

    with user_errors():
        store = EventStore.open(path)
        attrs = store.attrs
        summary = summarize(store)

    exposure = attrs.get("exposure", {})
    console.print(
        f"[bold]{path}[/]  sample {attrs.get('sample', '?')} ({attrs.get('source_family', '?')}), schema v{attrs.get('farm_schema_version')}"
    )
    days = f" ({exposure['seconds'] / 86400:.4g} days)" if "seconds" in exposure else ""
    console.print(
        f"exposure {exposure.get('value', float('nan')):.4g} {exposure.get('unit', '')}{days}; "
        f"{store.n_events:,} events in {store.n_shards} shard(s); columns: {', '.join(store.columns)}"
    )
    console.print(
        f"expected events: {summary.total.expected:.6g} produced, {summary.total.expected_selected:.6g} selected"
    )
    for title, tallies in (("channel", summary.by_channel), ("flavor", summary.by_flavor)):
        table = Table(title=f"by {title}")
        table.add_column(title)
        table.add_column("generated", justify="right")
        table.add_column("expected", justify="right")
        table.add_column("expected selected", justify="right")
        for name, t in sorted(tallies.items()):
            table.add_row(
                name, f"{t.generated:,}", f"{t.expected:.6g}", f"{t.expected_selected:.6g}"
            )
        console.print(table)

    if not verify:
        console.print("checksums: not verified (use --verify)")
        return
    with user_errors():
        checks = store.verify()
    bad = [c for c in checks if not c.ok]
    for c in bad:
        console.print(
            f"[red]shard {c.index}: FAILED[/] {c.error or f'checksum {c.actual} != {c.expected}'}"
        )
    if bad:
        raise fail(
            f"{len(bad)} of {len(checks)} shard(s) failed verification; regenerate the store with `farm generate`",
            code=1,
        )
    console.print(f"checksums: all {len(checks)} shard(s) OK")
