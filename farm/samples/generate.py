"""Generate a sample into an event store: blocks → shards → atomically published store.

Orchestration only: the physics lives in the per-family modules, the layout in
:mod:`farm.samples.blocks`, the storage in :mod:`farm.store`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import farm
from farm.config import (
    GENERATOR_VERSION,
    FarmConfig,
    NuscopeConfig,
    ReactorCevnsConfig,
    ReactorIbdConfig,
    SnsCevnsConfig,
    config_hash,
    generation_hash,
)
from farm.flux.model import Flux
from farm.samples.blocks import BLOCK_EVENTS, BlockLayout, block_rng
from farm.samples.component import Columns, SampleModel
from farm.store import StoreWriter
from farm.store.schema import COLUMNS

__all__ = [
    "check_room",
    "chunk_rows_for",
    "flux_generated_with",
    "generate_rows",
    "generate_store",
    "generation_flux",
    "sample_model",
]

DEFAULT_CHUNK_ROWS = 1 << 20


def sample_model(cfg: FarmConfig, flux: Flux | None = None) -> SampleModel:
    """The components and columns of the configured generator, its neutrinos drawn from ``flux``
    (default :func:`generation_flux`)."""
    if isinstance(cfg, SnsCevnsConfig):
        from farm.samples.sns import sns_model

        return sns_model(cfg, flux or generation_flux(cfg))
    if isinstance(cfg, ReactorCevnsConfig):
        from farm.samples.reactor import reactor_cevns_model

        return reactor_cevns_model(cfg, flux or generation_flux(cfg))
    if isinstance(cfg, ReactorIbdConfig):
        from farm.samples.reactor import reactor_ibd_model

        return reactor_ibd_model(cfg, flux or generation_flux(cfg))
    if isinstance(cfg, NuscopeConfig):
        from farm.samples.nuscope import nuscope_model

        if flux is None and cfg.flux is not None:
            msg = (
                f"[flux] file {cfg.flux.file}: the nuSCOPE generator draws each neutrino's "
                "energy together with where and in which direction it crosses the detector face "
                "(the beamline Monte Carlo of [source]); a flux file gives energies only. Remove "
                "[flux] to generate from the beamline model, or ingest events generated with "
                "your flux (`farm ingest`, docs/ingest.md)"
            )
            raise ValueError(msg)
        return nuscope_model(cfg, flux or generation_flux(cfg))
    if cfg.sample.generator == "external":
        msg = (
            f"{cfg.sample.name}: generator = 'external' has no generator of the farm's own; its "
            "events come from `farm ingest`"
        )
        raise ValueError(msg)
    msg = f"no generator for configuration of type {type(cfg).__name__}"
    raise TypeError(msg)


def generation_flux(cfg: FarmConfig) -> Flux:
    """The flux a generated sample's neutrinos are drawn from: the run's (a ``[flux]`` file,
    else the source model; :func:`farm.resolve.run_flux`)."""
    from farm.resolve import run_flux

    return run_flux(cfg, store_attrs={})


def flux_generated_with(cfg: FarmConfig) -> dict[str, str] | None:
    """What a generated store records of a ``[flux]`` file it was drawn from (None: the source
    model), so that a run under another flux is refused (:mod:`farm.binding`)."""
    if cfg.flux is None:
        return None
    flux = generation_flux(cfg)
    return {"source": flux.source, "checksum": flux.checksum()}


def _layout(cfg: FarmConfig, model: SampleModel) -> BlockLayout:
    return BlockLayout(
        n_events=cfg.generation.events,
        fractions=model.fractions(cfg.generation.component_fractions),
    )


def _generate_block(
    cfg: FarmConfig, model: SampleModel, layout: BlockLayout, block: int
) -> Columns:
    counts = layout.block_counts(block)
    totals = layout.totals()
    parts: list[Columns] = []
    for index, component in enumerate(model.components):
        n = counts[component.name]
        if n == 0:
            continue
        cols = component.draw(block_rng(cfg.generation.seed, block, index), n)
        cols["w_nominal"] = cols.pop("w_unit") / totals[component.name]
        parts.append(cols)
    names = [c for c in model.columns]
    out = {
        name: np.concatenate([p[name] for p in parts]).astype(COLUMNS[name].dtype, copy=False)
        for name in names
    }
    start, stop = layout.block_range(block)
    out["event_id"] = np.arange(start, stop, dtype=np.uint64)
    return out


def generate_rows(
    cfg: FarmConfig,
    start: int,
    stop: int,
    *,
    model: SampleModel | None = None,
    on_block: Callable[[int], None] | None = None,
) -> Columns:
    """The events in rows [start, stop) of the configured sample, identical whatever the sharding.

    ``on_block(rows)`` is called after each block is drawn, with the rows of [start, stop) drawn
    so far (for progress bars).
    """
    model = model or sample_model(cfg)
    layout = _layout(cfg, model)
    blocks = layout.blocks_overlapping(start, stop)
    parts = []
    for b in blocks:
        parts.append(_generate_block(cfg, model, layout, b))
        if on_block is not None:
            on_block(min(layout.block_range(b)[1], stop) - start)
    first = layout.block_range(blocks[0])[0]
    cols = {
        k: np.concatenate([p[k] for p in parts]) if len(parts) > 1 else parts[0][k]
        for k in parts[0]
    }
    return {k: v[start - first : stop - first] for k, v in cols.items()}


def chunk_rows_for(shard_rows: int, target: int = DEFAULT_CHUNK_ROWS) -> int:
    """The largest divisor of ``shard_rows`` not above ``target`` among shard_rows / m, m = 1, 2, …"""
    m = max(1, -(-shard_rows // target))
    while shard_rows % m:
        m += 1
    return shard_rows // m


def generate_store(
    cfg: FarmConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    on_shard: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Generate the configured sample into a new event store at ``out``; returns its attrs.

    ``on_shard(rows_done, n_events)`` is called as the events are drawn, after each block of
    65 536 (for progress bars; the name is from when it was called after each shard).
    """
    model = sample_model(cfg)
    drawn_from = flux_generated_with(cfg)
    n_events = cfg.generation.events
    shard_rows = min(cfg.generation.shard_size, max(n_events, 1))
    check_room(Path(out), n_events, shard_rows, ("event_id", *model.columns))
    layout = _layout(cfg, model)
    chunk_rows = chunk_rows_for(shard_rows)
    from farm.physics import nuclei

    attrs: dict[str, Any] = {
        **model.attrs,
        "sample": cfg.sample.name,
        "detector": cfg.detector.model_dump(mode="json"),
        "target": _target_attrs(cfg, nuclei),
        "generator": {
            "name": cfg.sample.generator,
            "config": cfg.model_dump(mode="json"),
            "config_hash": config_hash(cfg),
            "generation_hash": generation_hash(cfg),
            "generator_version": GENERATOR_VERSION,
            "seed": cfg.generation.seed,
            "block_events": BLOCK_EVENTS,
            "components": {
                name: {"fraction": f, "generated": layout.totals()[name]}
                for name, f in layout.fractions
            },
        },
        "software_version": farm.__version__,
    }
    if drawn_from is not None:
        attrs["generated_from_flux"] = drawn_from
    with StoreWriter.create(
        out,
        n_events=n_events,
        columns=("event_id", *model.columns),
        shard_rows=shard_rows,
        chunk_rows=chunk_rows,
        attrs=attrs,
        overwrite=overwrite,
    ) as writer:
        n_shards = -(-n_events // shard_rows)
        for shard in range(n_shards):
            start, stop = shard * shard_rows, min((shard + 1) * shard_rows, n_events)
            drawn = (
                None if on_shard is None else (lambda rows, s=start: on_shard(s + rows, n_events))
            )
            writer.write_shard(shard, generate_rows(cfg, start, stop, model=model, on_block=drawn))
            if on_shard is not None:
                on_shard(stop, n_events)
    return attrs


def check_room(out: Path, n_events: int, shard_rows: int, columns: tuple[str, ...]) -> None:
    """Refuse a store this machine cannot write: its size on disk, a shard's size in memory."""
    import shutil

    from farm.limits import format_bytes, machine_memory_bytes

    row = sum(COLUMNS[c].dtype.itemsize for c in columns)
    folder = out.parent.resolve()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if n_events * row > free:
        msg = (
            f"[generation.events] = {n_events:,} (or --events): the store would take about "
            f"{format_bytes(n_events * row)} ({row} bytes per event), and {folder} has "
            f"{format_bytes(free)} free; lower it, or write the store elsewhere"
        )
        raise ValueError(msg)
    memory = machine_memory_bytes()
    if 4 * shard_rows * row > memory:
        msg = (
            f"[generation.shard_size] = {shard_rows:,} (or --shard-size): generating one shard "
            f"holds about {format_bytes(4 * shard_rows * row)} in memory, more than this "
            f"machine's {format_bytes(memory)}; lower it (the default is 8,388,608)"
        )
        raise ValueError(msg)


def _target_attrs(cfg: FarmConfig, nuclei: Any) -> dict[str, Any]:
    """The target of the configured detector (farm.resolve.detector_target)."""
    del nuclei
    from farm.resolve import detector_target

    return detector_target(cfg)
