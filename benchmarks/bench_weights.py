"""Weight-set universes (``kind = "weights"``): the one-pass fill against the machine's read
bandwidth and against a per-universe loop, same data, same run.

    python3 benchmarks/bench_weights.py --events 1048576 --universes 1000

The weights are an (events × universes) float32 block, as a weight set stores them; the fill
reads each event's row once and adds w0 · r_eu into its reco and truth slots
(farm.reweight.weightsets). References, all single-core: a streaming sum over the same bytes
(the core's read bandwidth: nothing can fill faster than it reads), ``numpy.copyto`` of the block
(read + write), and the per-universe loop (one weighted ``bincount`` per universe, which reads a
strided column of the block each time). The benchmark checks the fill and the loop agree bit for
bit before it reports, and reads the same weights back from a weight set on disk (page cache).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from farm.reweight.fastpaths import BlockLayout
from farm.reweight.weightsets import HAVE_NUMBA, weight_set_fill, weight_set_loop


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _stream_sum(weights: np.ndarray) -> float:
    """A vectorised sum over every weight: the bytes are read once, nothing is written."""
    return float(np.add.reduce(weights, axis=None))


def _store_read(weights: np.ndarray, repeat: int) -> float:
    """Seconds to read the weights back from a weight set of a minimal store (page cache)."""
    from farm.store import StoreWriter
    from farm.store.reader import EventStore
    from farm.store.weights import WeightSet, WeightSetWriter

    n = weights.shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.zarr"
        shard = 1 << 20
        with StoreWriter.create(
            path,
            n_events=n,
            columns=(
                "event_id",
                "enu_true",
                "flavor",
                "channel",
                "is_signal",
                "selected",
                "w_nominal",
            ),
            shard_rows=min(shard, n),
            attrs={},
        ) as writer:
            for index, (lo, hi) in enumerate(writer.shard_ranges):
                m = hi - lo
                writer.write_shard(
                    index,
                    {
                        "event_id": np.arange(lo, hi, dtype=np.uint64),
                        "enu_true": np.ones(m),
                        "flavor": np.full(m, 14, dtype=np.int32),
                        "channel": np.full(m, 2, dtype=np.int8),
                        "is_signal": np.ones(m, dtype=bool),
                        "selected": np.ones(m, dtype=bool),
                        "w_nominal": np.ones(m),
                    },
                )
        store = EventStore.open(path)
        with WeightSetWriter.create(store, "w", universes=weights.shape[1]) as ws:
            for index, (lo, hi) in enumerate(store.shard_ranges):
                ws.write_shard(index, weights[lo:hi])
        opened = WeightSet.open(store, "w")
        assert np.array_equal(opened.read_rows(0, n), weights)
        return _best(lambda: opened.read_rows(0, n), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_048_576)
    parser.add_argument("--universes", type=int, default=1000)
    parser.add_argument("--reco-bins", type=int, default=20)
    parser.add_argument("--truth-bins", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    n, u = args.events, args.universes
    weights = (1.0 + 0.1 * rng.standard_normal((n, u), dtype=np.float32)).clip(0.0)
    w0 = rng.random(n)
    reco = rng.integers(-1, args.reco_bins, n)
    truth = rng.integers(0, args.truth_bins, n)
    layout = BlockLayout.build(
        reco, truth, rng.random(n) < 0.8, rng.random(n) < 0.9, args.reco_bins, args.truth_bins
    )
    slot, slot_truth = layout.slots(n)
    nbytes = weights.nbytes

    for physical in (True, False):  # compile outside the timing
        weight_set_fill(
            weights[:100], w0[:100], slot[:100], slot_truth[:100], layout.n_slots, physical=physical
        )
    t_fill = _best(
        lambda: weight_set_fill(weights, w0, slot, slot_truth, layout.n_slots, physical=True),
        args.repeat,
    )
    t_checked = _best(
        lambda: weight_set_fill(weights, w0, slot, slot_truth, layout.n_slots), args.repeat
    )
    t_sum = _best(lambda: _stream_sum(weights), args.repeat)
    target = np.empty_like(weights)
    t_copy = _best(lambda: np.copyto(target, weights), args.repeat)
    t_loop = _best(lambda: weight_set_loop(weights, w0, slot, slot_truth, layout.n_slots), 1)
    fill, _ = weight_set_fill(weights, w0, slot, slot_truth, layout.n_slots)
    loop = weight_set_loop(weights, w0, slot, slot_truth, layout.n_slots)
    if not np.array_equal(fill, loop):
        raise SystemExit("the one-pass fill and the per-universe loop disagree")
    t_store = _store_read(weights, args.repeat)

    gb = nbytes / 1e9
    print(f"\n{n:,} events × {u} universes float32 = {gb:.2f} GB; numba {HAVE_NUMBA}\n")
    print("| path (one core) | time (s) | GB/s of weights | G event-universes/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, t in (
        ("streaming sum (the core's read bandwidth)", t_sum),
        ("numpy.copyto (read + write)", t_copy),
        ("weight set read from the store (page cache)", t_store),
        ("one-pass fill, the weights known physical (no check)", t_fill),
        ("one-pass fill, every weight checked (the run's path)", t_checked),
        ("per-universe loop (a bincount per universe)", t_loop),
    ):
        print(f"| {name} | {t:.3f} | {gb / t:.2f} | {n * u / t / 1e9:.2f} |")
    print(
        f"\nchecked fill at {t_sum / t_checked:.2f} of the read bandwidth, {t_loop / t_checked:.1f}× "
        "the per-universe loop; unchecked fill at"
        f" {t_sum / t_fill:.2f} of the read bandwidth, {t_loop / t_fill:.1f}× the "
        "per-universe loop; fill and loop agree bit for bit"
    )


if __name__ == "__main__":
    main()
