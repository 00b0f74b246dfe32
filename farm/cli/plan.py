"""``farm plan`` and ``farm versions``: what a run would do, and what has been published."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from farm.cli._common import console, count, emit_json, fail, out, user_errors

__all__ = ["plan", "versions"]


def plan(
    config: Annotated[str, typer.Argument(help="Sample name or TOML configuration.")],
    events: Annotated[
        int | None,
        typer.Option(
            "--events", "-n", parser=count, metavar="N", help="Override [generation] events."
        ),
    ] = None,
    universes: Annotated[
        int | None,
        typer.Option(
            "--universes", "-u", parser=count, metavar="N", help="Override multisim throws."
        ),
    ] = None,
    show_items: Annotated[bool, typer.Option("--items", help="List every work item.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan as one JSON document on stdout.")
    ] = False,
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="Plan on the shard layout the store would have, without generating its events "
            "(the default when the store does not exist).",
        ),
    ] = False,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Measure this machine's rates and start-up again, replacing the cached ones "
            "(after an upgrade of the machine, or a first measurement taken while it was busy).",
        ),
    ] = False,
) -> None:
    """Print the work items of a run, their estimated time on this machine and the memory per task.

    The estimate comes from rates measured on this machine (one block through each kind of work
    item, and a fresh process's start-up), cached per machine in ~/.cache/farm/rates.json. Without
    an event store the plan uses the layout the store would have (--synthetic), so a plan of 10¹⁰
    events takes seconds. The plan goes to stdout (--json: one JSON document), messages to stderr.

    Example: farm plan sns-csi --events 1000000
    Example: farm plan sns-csi --events 1e10 --universes 10000 --synthetic
    """
    from types import SimpleNamespace

    from farm.config import load_config, store_path
    from farm.costmodel import estimate, measure_rates, measure_startup
    from farm.runner import ensure_store, plan_for, synthetic_plan_for

    overrides = {"generation.events": events} if events is not None else {}
    with user_errors():
        cfg = load_config(config, **overrides)
        path = store_path(cfg)
        if synthetic or (not path.exists() and cfg.sample.generator != "external"):
            prep, p, ranges = synthetic_plan_for(
                cfg, universes=universes, log=lambda m: console.print(m)
            )
            store = SimpleNamespace(n_events=prep.n_events, n_shards=len(ranges))  # type: ignore[attr-defined]
            console.print(
                f"planned on a synthetic layout: the store {path} "
                + ("is not read" if path.exists() else "does not exist (`farm run` generates it)"),
                markup=False,
            )
        else:
            store = ensure_store(cfg, log=lambda m: console.print(m))
            prep, p = plan_for(cfg, store, universes=universes)
        log = lambda m: console.print(m)  # noqa: E731
        rates = measure_rates(prep, p, use_cache=not calibrate, log=log)  # type: ignore[arg-type]
        startup = measure_startup(use_cache=not calibrate)
        est = estimate(prep, p, rates, startup)  # type: ignore[arg-type]
    per_block = cfg.analysis.universes_per_block
    if as_json:
        emit_json(_plan_record(cfg, store, prep, p, show_items) | _estimate_record(est, cfg))
        return
    out.print(
        f"{cfg.sample.name}: {store.n_events:,} events in {store.n_shards} shard(s), {p.n_blocks} blocks of "
        f"{p.block_rows:,}; {prep.universes.n_universes} universes ({len(p.chunks) - 1} per-event chunk(s) + the flux chunk)"  # type: ignore[attr-defined]
    )
    out.print(
        f"{len(p.items)} work items of up to {p.blocks_per_item} blocks ({p.blocks_per_item * p.block_rows:,} events); "
        f"estimated cost {p.cost_event_universes() / 1e9:.3g} G event-universes; "
        f"memory per task ≈ {p.memory_per_task_bytes(per_block) / 2**20:.0f} MiB"
    )
    out.print(_estimate_line(est, cfg))
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
        out.print(table)


def _workers(cfg: object) -> int:
    import os

    del cfg
    return os.cpu_count() or 1


def _estimate_line(est: object, cfg: object) -> str:
    """The plan's time on this machine: its work, in-process, and on a local cluster."""
    n = _workers(cfg)
    item_s = est.item_s  # type: ignore[attr-defined]
    measured = "" if est.startup.measured else " (start-up not measured yet: typical figures)"  # type: ignore[attr-defined]
    return (
        f"estimated on this machine: {est.work_s:.3g} core-seconds of work items "  # type: ignore[attr-defined]
        f"(each {item_s.min():.2g}–{item_s.max():.2g} s); the run ≈ {est.inprocess_s():.3g} s "  # type: ignore[attr-defined]
        f"in-process, ≈ {est.local_s(n):.3g} s on a local cluster of {n} workers, "  # type: ignore[attr-defined]
        f"start-up and dataset included{measured}"
    )


def _estimate_record(est: object, cfg: object) -> dict:
    n = _workers(cfg)
    return {
        "estimate": {
            "work_core_seconds": est.work_s,  # type: ignore[attr-defined]
            "item_seconds": [float(est.item_s.min()), float(est.item_s.max())],  # type: ignore[attr-defined]
            "inprocess_seconds": est.inprocess_s(),  # type: ignore[attr-defined]
            "local_seconds": est.local_s(n),  # type: ignore[attr-defined]
            "local_workers": n,
            "startup_measured": est.startup.measured,  # type: ignore[attr-defined]
        }
    }


def _plan_record(cfg: object, store: object, prep: object, p: object, items: bool) -> dict:
    """``farm plan --json``: the plan's sizes, and every work item with --items."""
    record = {
        "sample": cfg.sample.name,  # type: ignore[attr-defined]
        "events": store.n_events,  # type: ignore[attr-defined]
        "shards": store.n_shards,  # type: ignore[attr-defined]
        "blocks": p.n_blocks,  # type: ignore[attr-defined]
        "block_rows": p.block_rows,  # type: ignore[attr-defined]
        "universes": prep.universes.n_universes,  # type: ignore[attr-defined]
        "chunks": len(p.chunks),  # type: ignore[attr-defined]
        "work_items": len(p.items),  # type: ignore[attr-defined]
        "blocks_per_item": p.blocks_per_item,  # type: ignore[attr-defined]
        "cost_event_universes": p.cost_event_universes(),  # type: ignore[attr-defined]
        "memory_per_task_bytes": p.memory_per_task_bytes(cfg.analysis.universes_per_block),  # type: ignore[attr-defined]
    }
    if items:
        record["items"] = [
            {
                "index": i.index,
                "chunk": i.chunk,
                "rows": [i.start, i.stop],
                "universes": list(i.universes),
                "key": i.key,
            }
            for i in p.items  # type: ignore[attr-defined]
        ]
    return record


def versions(
    path: Annotated[Path, typer.Argument(help="A published result (the --out of farm run).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the versions as one JSON document on stdout.")
    ] = False,
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
    if as_json:
        emit_json([_version_record(v, version_summary(v.path)) for v in found])
        return
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
    out.print(table)
    console.print(f"* current; the versions are in {found[0].path.parent}", highlight=False)


def _version_record(v: object, s: object) -> dict:
    """One version in ``farm versions --json`` (null where its metadata does not say)."""
    return {
        "version": v.number,  # type: ignore[attr-defined]
        "current": v.current,  # type: ignore[attr-defined]
        "path": str(v.path),  # type: ignore[attr-defined]
        "created": v.created,  # type: ignore[attr-defined]
        "sample": s.sample if s else None,  # type: ignore[attr-defined]
        "config_hash": s.config_hash if s else None,  # type: ignore[attr-defined]
        "events": s.n_events if s else None,  # type: ignore[attr-defined]
        "universes": s.n_universes if s else None,  # type: ignore[attr-defined]
    }
