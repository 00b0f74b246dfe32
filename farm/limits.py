"""What a run can hold: counts bounded by memory and disk, and flux bins that cover the source.

Checked before any event is generated or read (``check_before_running``, and again by
``prepare``), so a count the machine cannot hold is refused with an estimate instead of an
``ArrayMemoryError`` traceback, and a flux binning that would leave part of the source's flux out
of every flux systematic is refused naming the part it misses.

Memory of a run: every universe carries its histograms, its extraction and the inputs of the
covariances. With I reco bins, J truth bins, B flux bins (the untouched one included), M models
and K knob parameters, one universe holds about

    n = 8·I·J + 4·J² + 4·B + 4·I + (8 + 4·M)·J + K + 8   float64 values,

and the run needs 2 · 8 · n bytes per universe (a factor 2 for the copies made while the dataset
is assembled and written). A work item also holds (universe × event) weight matrices of one
block: 4 · universes_per_block · 65 536 · 8 bytes. Both must fit in this machine's memory.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from farm.config import FarmConfig, NuscopeConfig, ReactorCevnsConfig, ReactorIbdConfig
from farm.config.analysis import BinningSection

__all__ = [
    "check_flux_coverage",
    "check_memory",
    "check_run_limits",
    "format_bytes",
    "machine_memory_bytes",
    "run_memory_bytes",
    "universe_count",
]

_BLOCK_EVENTS = 65_536


def machine_memory_bytes() -> int:
    """Physical memory of this machine (``FARM_MEMORY_BYTES`` overrides it, e.g. in tests)."""
    if os.environ.get("FARM_MEMORY_BYTES"):
        return int(os.environ["FARM_MEMORY_BYTES"])
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        import psutil

        return int(psutil.virtual_memory().total)


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style sizes.

    >>> format_bytes(3 * 2**30), format_bytes(2.5e15)
    ('3 GiB', '2.2 PiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def universe_count(cfg: FarmConfig, universes: int | None) -> tuple[int, list[tuple[str, int]]]:
    """Universes of the run (the central value included), and what each key contributes."""
    parts: list[tuple[str, int]] = []
    for index, s in enumerate(cfg.systematics):
        if s.mode == "unisim":
            parts.append((f"[systematics.{index}] '{s.name}' (unisim)", 2))
        elif universes is not None:
            parts.append((f"--universes (for '{s.name}')", universes))
        else:
            parts.append((f"[systematics.{index}.throws] ('{s.name}')", s.throws))
    if cfg.analysis.all_knob_universes:
        parts.append(("[analysis.all_knob_universes]", cfg.analysis.all_knob_universes))
    return 1 + sum(n for _, n in parts), parts


def _values_per_universe(cfg: FarmConfig, binning: BinningSection) -> int:
    i, j = binning.n_reco, binning.n_truth
    b = sum(len(e) - 1 for e in binning.flux_edges_mev.values()) + 1
    m = 1 + len(cfg.models)
    k = len({s.parameter for s in cfg.systematics if s.kind == "knob"})
    return 8 * i * j + 4 * j * j + 4 * b + 4 * i + (8 + 4 * m) * j + k + 8


def run_memory_bytes(cfg: FarmConfig, binning: BinningSection, universes: int | None) -> int:
    """Estimated memory of the run's universes (see the module docstring)."""
    n_universes, _ = universe_count(cfg, universes)
    return 2 * 8 * _values_per_universe(cfg, binning) * n_universes


def check_memory(cfg: FarmConfig, binning: BinningSection, universes: int | None) -> None:
    """Refuse universe counts and block widths this machine cannot hold, with the estimate.

    Raises
    ------
    ValueError
        Naming the key (``[systematics.N.throws]``, ``--universes``,
        ``[analysis.all_knob_universes]``, ``[analysis.universes_per_block]``), the estimate and
        this machine's memory.
    """
    memory = machine_memory_bytes()
    need = run_memory_bytes(cfg, binning, universes)
    if need > memory:
        n_universes, parts = universe_count(cfg, universes)
        key, count = max(parts, key=lambda p: p[1])
        per = 2 * 8 * _values_per_universe(cfg, binning)
        if universes is not None:  # every multisim systematic takes --universes
            key = "--universes"
            sharing = sum(1 for k, _ in parts if k.startswith("--universes"))
            rest = n_universes - sharing * universes
            most = (memory // per - rest) // max(sharing, 1)
        else:
            most = memory // per - (n_universes - count)
        msg = (
            f"{key} = {count:,}: the run would hold about {format_bytes(need)} in memory "
            f"({n_universes:,} universes × {format_bytes(per)} each: histograms, extraction and "
            f"covariance inputs), more than this machine's {format_bytes(memory)}; lower it "
            f"(to at most about {max(most, 1):,})"
        )
        raise ValueError(msg)
    per_block = cfg.analysis.universes_per_block
    matrices = 4 * per_block * _BLOCK_EVENTS * 8
    if matrices > memory:
        msg = (
            f"[analysis.universes_per_block] = {per_block:,}: a work item would hold about "
            f"{format_bytes(matrices)} of (universe × event) weight matrices ({per_block:,} × "
            f"{_BLOCK_EVENTS:,} events × 32 bytes), more than this machine's "
            f"{format_bytes(memory)}; lower it (the default is 64)"
        )
        raise ValueError(msg)


def _spectrum(cfg: FarmConfig, flavor: str, e: np.ndarray) -> str:
    """The part of the source's spectrum a flavour's flux edges must cover, in words."""
    from farm.physics import flux

    if cfg.flux is not None or cfg.sample.generator == "external":
        return f"the run's {flavor} flux, from {e.min():.4g} to {e.max():.4g} MeV"
    if isinstance(cfg, ReactorCevnsConfig | ReactorIbdConfig):
        src = cfg.source
        return (
            f"the reactor ν̄_e spectrum from {src.enu_min_mev:g} to {src.enu_max_mev:g} MeV "
            "([source] enu_min_mev, enu_max_mev)"
        )
    if isinstance(cfg, NuscopeConfig):
        return f"the nuSCOPE beam {flavor} spectrum, from {e.min():.4g} to {e.max():.4g} MeV"
    if flavor == "numu":
        return f"the π-DAR ν_μ line at {flux.PIDAR_NUMU_LINE_MEV:.2f} MeV (monoenergetic)"
    return f"the π-DAR {flavor} spectrum, from 0 to {flux.MICHEL_ENDPOINT_MEV:.2f} MeV"


def check_flux_coverage(cfg: FarmConfig, binning: BinningSection, rule: Any) -> None:
    """Refuse flux edges that leave part of a flavour's nominal flux outside every flux bin.

    Flux outside the edges falls in the untouched bin, which no flux systematic moves: its
    uncertainty would be dropped silently. A flavour left out of ``flux_edges_mev`` altogether is
    untouched on purpose, and allowed. A bin holds ``lo <= E < hi``.

    Raises
    ------
    ValueError
        Naming ``[binning.flux_edges_mev.FLAVOUR]``, the share of the flux it misses and the
        spectrum it must cover (the π-DAR line, the reactor range, the beam range).
    """
    for flavor, edges in sorted(binning.flux_edges_mev.items()):
        if flavor not in rule:
            continue
        e, w = (np.asarray(a, dtype=np.float64) for a in rule[flavor])
        total = float(w.sum())
        if not total > 0:
            continue
        outside = (e < edges[0]) | (e >= edges[-1])
        missed = float(w[outside].sum()) / total
        if missed > 0:
            msg = (
                f"[binning.flux_edges_mev.{flavor}] edges from {edges[0]:g} to {edges[-1]:g} MeV "
                f"leave {100 * missed:.3g} % of the nominal {flavor} flux outside every flux bin, "
                "where no flux systematic moves it; they must cover "
                f"{_spectrum(cfg, flavor, e[w > 0])}: extend them"
            )
            raise ValueError(msg)


def check_run_limits(
    cfg: FarmConfig, binning: BinningSection, rule: Any, universes: int | None
) -> None:
    """:func:`check_memory` and :func:`check_flux_coverage`, before the universes are thrown."""
    check_memory(cfg, binning, universes)
    check_flux_coverage(cfg, binning, rule)
