"""``farm inspect``: what an event store holds, and whether its shards are intact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from farm.cli._common import console, emit_json, fail, out, user_errors

__all__ = ["inspect"]


def inspect(
    path: Annotated[Path, typer.Argument(help="An event store written by `farm generate`.")],
    verify: Annotated[
        bool, typer.Option("--verify", help="Recompute every shard checksum (reads all data).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON document on stdout.")
    ] = False,
) -> None:
    """Print a store's exposure, expected events by channel and flavour, shards and checksums.

    With --verify every shard's checksum is recomputed first, then the values of each shard
    that matched are checked; every damaged shard is listed, and nothing is summarised from a
    store with one (exit 1). Exits 2 if the store cannot be opened or holds a value its column
    may not hold.

    Example: farm inspect stores/sns-csi.zarr --verify
    """
    from farm.store import EventStore
    from farm.store.summary import summarize

    with user_errors():
        # with --verify a missing or truncated shard file is one of the shards verify lists
        store = EventStore.open(path, check_files=not verify)
        attrs = store.attrs
    if verify:
        _verify(store)  # before any value is read: a damaged shard is never decoded
    with user_errors():
        summary = summarize(store)

    exposure = attrs.get("exposure", {})
    if as_json:
        emit_json(_record(path, store, summary, verified=verify))
        return
    out.print(
        f"[bold]{path}[/]  sample {attrs.get('sample', '?')} ({attrs.get('source_family', '?')}), schema v{attrs.get('farm_schema_version')}"
    )
    days = f" ({exposure['seconds'] / 86400:.4g} days)" if "seconds" in exposure else ""
    out.print(
        f"exposure {exposure.get('value', float('nan')):.4g} {exposure.get('unit', '')}{days}; "
        f"{store.n_events:,} events in {store.n_shards} shard(s); columns: {', '.join(store.columns)}"
    )
    out.print(
        f"expected events: {summary.total.expected:.6g} produced, {summary.total.expected_selected:.6g} selected"
    )
    _flux_and_weights(store)
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
        out.print(table)

    if not verify:
        trusted = len(store.trusted_shards())
        if trusted:
            out.print(
                f"checksums: {trusted} of {store.n_shards} shard(s) verified on this machine before, "
                "their files unchanged since (--verify recomputes them all)"
            )
        else:
            out.print("checksums: not verified (use --verify)")
        return
    out.print(f"checksums: all {store.n_shards} shard(s) OK, and their values")


def _record(path: Path, store: object, summary: object, *, verified: bool) -> dict:
    """``farm inspect --json``: what the tables show, as numbers."""
    from farm.store.weights import weight_set_names

    attrs = store.attrs  # type: ignore[attr-defined]

    def tallies(by: dict) -> dict:
        return {
            name: {
                "generated": t.generated,
                "expected": t.expected,
                "expected_selected": t.expected_selected,
            }
            for name, t in sorted(by.items())
        }

    flux = attrs.get("flux")
    return {
        "path": str(path),
        "sample": attrs.get("sample"),
        "source_family": attrs.get("source_family"),
        "schema_version": attrs.get("farm_schema_version"),
        "exposure": attrs.get("exposure", {}),
        "events": store.n_events,  # type: ignore[attr-defined]
        "shards": store.n_shards,  # type: ignore[attr-defined]
        "columns": list(store.columns),  # type: ignore[attr-defined]
        "expected": summary.total.expected,  # type: ignore[attr-defined]
        "expected_selected": summary.total.expected_selected,  # type: ignore[attr-defined]
        "by_channel": tallies(summary.by_channel),  # type: ignore[attr-defined]
        "by_flavor": tallies(summary.by_flavor),  # type: ignore[attr-defined]
        "flux_source": flux.get("source") if isinstance(flux, dict) else None,
        "weight_sets": weight_set_names(store.path),  # type: ignore[attr-defined]
        "checksums_verified": verified,
        # shards verified by an earlier process on this machine, files unchanged (farm.store.trust)
        "shards_trusted": len(store.trusted_shards()),  # type: ignore[attr-defined]
    }


def _flux_and_weights(store: object) -> None:
    """An ingested store's flux and the weight sets attached to any store (docs/ingest.md)."""
    from farm.store.weights import weight_set_names

    attrs = store.attrs  # type: ignore[attr-defined]
    flux = attrs.get("flux")
    if isinstance(flux, dict):
        universes = flux.get("universes") or {}
        extra = f", universes: {universes['kind']}" if universes else ""
        out.print(f"flux: {escape(str(flux.get('source', '?')))}{extra}", highlight=False)
    names = weight_set_names(store.path)  # type: ignore[attr-defined]
    if names:
        out.print(f"weight sets: {', '.join(names)} (farm weights list)", highlight=False)


def _verify(store: object) -> None:
    """Checksums of every shard, then the values of those that match; exit 1 listing all failures."""
    with user_errors():
        checks = store.verify()  # type: ignore[attr-defined]
    bad = [c for c in checks if not c.ok]
    for c in bad:
        error = escape(c.error or f"checksum {c.actual} != {c.expected}")
        console.print(f"[red]shard {c.index}: FAILED[/] {error}", highlight=False)
    if bad:
        shards = ", ".join(str(c.index) for c in bad)
        raise fail(
            f"{len(bad)} of {len(checks)} shard(s) failed verification (shard(s) {shards}); "
            "regenerate the store with `farm generate` (or re-ingest it with `farm ingest`)",
            code=1,
        )
