"""Per-event reweighting speed for continuous parameters (issue 6 target 2: ≥ 1 G event-universes/s per core).

    python3 benchmarks/bench_knobs.py --events 10000000 --universes 200

Generates an sns-csi store and an sns-lar store (not timed), then for each kind of per-event
variation fills the histograms of ``--universes`` universes of that one systematic over every
event, in one process, through the same code a worker runs (``block_partial_sums`` on 65 536-event
blocks), against the exact per-universe path on the first block to show the agreement. sns-csi
reads photoelectrons (its quenching and light yield reweight each count by its Poisson likelihood
ratio), sns-lar reads keVee (its quenching moves every event through its own resolution draw and
selection threshold).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import farm.accumulate as acc
from farm.config import load_config
from farm.runner import ensure_store, plan_for
from farm.store.blocks import iter_blocks

KNOBS = {
    (
        "sns-csi",
        "neutron_radius",
    ): "Helm ratio at 12 Chebyshev nodes + 3 checks (compiled series), node histograms",
    ("sns-csi", "weak_mixing_angle"): "category factor (weak charge per nucleus), one pass",
    ("sns-csi", "quenching"): "photoelectron likelihood ratio: class per count × 12-node expansion",
    (
        "sns-csi",
        "light_yield",
    ): "photoelectron likelihood ratio: class per count × 12-node expansion",
    (
        "sns-csi",
        "efficiency_threshold",
    ): "own-threshold crossing per event, prefix sums over universes",
    (
        "sns-csi",
        "mc_statistics",
    ): "Poisson bootstrap, compiled (hash, count, add over contiguous replicas)",
    (
        "sns-lar",
        "quenching",
    ): "keVee readout re-run per event: edge and threshold crossings in closed form",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--universes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(
            "| sample | systematic | path | time (s) | G event-universes/s | largest rel. difference to exact (first block) |"
        )
        print("| --- | --- | --- | ---: | ---: | ---: |")
        for sample in dict.fromkeys(s for s, _ in KNOBS):
            _bench_sample(sample, args.events, args.universes, Path(tmp))


def _bench_sample(sample: str, events: int, universes: int, tmp: Path) -> None:
    cfg = load_config(
        sample, **{"generation.events": events, "sample.store": str(tmp / f"{sample}.zarr")}
    )
    cfg = cfg.model_copy(
        update={"analysis": cfg.analysis.model_copy(update={"universes_per_task": universes})}
    )
    store = ensure_store(cfg, log=lambda m: None)
    prep, plan = plan_for(cfg, store, universes=universes)
    spec = prep.spec
    names = acc.columns_needed(spec)
    blocks = [cols for _, cols in iter_blocks(store, names, prep.block_rows)]
    for lo, hi in plan.chunks[1:]:
        owner = prep.universes.names[prep.universes.systematic_index[spec.event_universes[lo]]]
        if (sample, owner) not in KNOBS:
            continue
        chunk = spec.for_chunk(lo, hi, with_flux=False)
        acc.block_partial_sums(blocks[0], chunk)  # warm-up
        t0 = time.perf_counter()
        for cols in blocks:
            acc.block_partial_sums(cols, chunk)
        dt = time.perf_counter() - t0
        fast = acc.block_partial_sums(blocks[0], chunk)
        saved, acc._fast_histograms = acc._fast_histograms, lambda *a, **k: None
        exact = acc.block_partial_sums(blocks[0], chunk)
        acc._fast_histograms = saved
        diff = max(
            float(
                np.max(
                    np.abs(getattr(fast, f) - getattr(exact, f))
                    / np.maximum(np.abs(getattr(exact, f)), 1e-300)
                )
            )
            for f in ("signal", "background", "truth")
        )
        rate = events * (hi - lo) / dt / 1e9
        print(
            f"| {sample} | {owner} | {KNOBS[sample, owner]} | {dt:.2f} | {rate:.2f} | {diff:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
