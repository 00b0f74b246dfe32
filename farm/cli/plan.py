"""``farm plan`` and ``farm versions``: what a run would do, and what has been published."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from farm.cli._common import console, fail, user_errors

__all__ = ["plan", "versions"]


def plan(
    config: Annotated[str, typer.Argument(help="Sample name or TOML configuration.")],
    events: Annotated[
        int | None, typer.Option("--events", "-n", help="Override [generation] events.")
    ] = None,
    universes: Annotated[
        int | None, typer.Option("--universes", "-u", help="Override multisim throws.")
    ] = None,
    show_items: Annotated[bool, typer.Option("--items", help="List every work item.")] = False,
) -> None:
    """Print the work items of a run, their estimated cost and the memory per task.

    The event store is generated first if it is missing (the plan depends on its shards).

    Example: farm plan sns-csi --events 1000000
    """
    from farm.config import load_config
    from farm.runner import ensure_store, plan_for

    overrides = {"generation.events": events} if events is not None else {}
    with user_errors():
        cfg = load_config(config, **overrides)
        store = ensure_store(cfg, log=lambda m: console.print(m))
        prep, p = plan_for(cfg, store, universes=universes)
    per_block = cfg.analysis.universes_per_block
    console.print(
        f"{cfg.sample.name}: {store.n_events:,} events in {store.n_shards} shard(s), {p.n_blocks} blocks of "
        f"{p.block_rows:,}; {prep.universes.n_universes} universes ({len(p.chunks) - 1} per-event chunk(s) + the flux chunk)"  # type: ignore[attr-defined]
    )
    console.print(
        f"{len(p.items)} work items of up to {p.blocks_per_item} blocks ({p.blocks_per_item * p.block_rows:,} events); "
        f"estimated cost {p.cost_event_universes() / 1e9:.3g} G event-universes "
        f"(≈ {p.cost_event_universes() / 2e7:.2g} core-seconds at the ~0.02 G/s of the slowest per-event knobs); "
        f"memory per task ≈ {p.memory_per_task_bytes(per_block) / 2**20:.0f} MiB"
    )
    if show_items:
        table = Table("item", "chunk", "rows", "universes", "key")
        for item in p.items:
            table.add_row(
                str(item.index),
                str(item.chunk),
                f"{item.start:,}–{item.stop:,}",
                f"{item.universes[0]}–{item.universes[1]}",
                # a bootstrap item's key ends with its throw range (prefix-stable, farm.plan)
                f"{item.key[:12]}…-{item.throws[0]}-{item.throws[1]}"
                if item.prefix_family
                else item.key[:12],
            )
        console.print(table)


def versions(
    path: Annotated[Path, typer.Argument(help="A published result (the --out of farm run).")],
) -> None:
    """List the published versions of a result, oldest first; the current one is marked.

    Each version shows its sample, the hash of its configuration, its events and universes.

    Example: farm versions results/sns-csi.zarr
    """
    from farm.outputs import version_summary
    from farm.publish import list_versions

    with user_errors():
        found = list_versions(path)
    if not found:
        raise fail(f"{path}: no published versions (publish with `farm run CONFIG --out {path}`)")
    table = Table(box=box.SIMPLE, pad_edge=False)
    for name in ("version", "created (UTC)", "sample", "config"):
        table.add_column(name, no_wrap=True)
    table.add_column("events", no_wrap=True, justify="right")
    table.add_column("universes", no_wrap=True, justify="right")
    for v in found:
        created = datetime.datetime.fromtimestamp(v.created, tz=datetime.UTC).strftime(
            "%Y-%m-%d %H:%M"
        )
        s = version_summary(v.path)
        table.add_row(
            f"v{v.number:04d}" + (" *" if v.current else ""),
            created,
            s.sample if s else "?",
            s.config_hash[:12] if s else "?",
            f"{s.n_events:,}" if s and s.n_events is not None else "?",
            f"{s.n_universes:,}" if s and s.n_universes is not None else "?",
        )
    console.print(table)
    console.print(f"* current; the versions are in {found[0].path.parent}", highlight=False)
