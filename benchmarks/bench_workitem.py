"""Real work items on stored events against the read-bandwidth bound, the kernels alone and the
`hist` library, measured interleaved in one process (issue 16).

    python3 benchmarks/bench_workitem.py --events 10000000 --universes 1000 --rounds 5

Generates an sns-csi store (not timed; ``--store`` reuses one), then, round after round, times
on one core:

- the read bandwidth of this run: ``numpy.sum`` over a 512 MiB array (a streaming read, the
  bound), and a page-cache read of the flux columns, item by item, through the store reader (a copy);
- the real work items as a worker runs them (``workers.tasks.compute_item``: read, verify once,
  bin, fill), for the flux chunk, a knob chunk (neutron radius) and a bootstrap chunk (these two
  after the flux chunk, as in a run: they reuse its bins and read only the columns they fill with);
- the kernels alone on arrays already in memory and already binned (what BENCHMARKS.md quoted
  before): the flux fill, and the bootstrap's hash-and-count floor (each (event, replica) hashed
  and its Poisson count summed, nothing filled);
- the best outside baseline: the factorisation written with the ``hist`` library (one weighted
  3-D fill per flavour and quantity from the same stored columns, then R @ C with numpy).

Each path's "fraction of bound" is its event rate over (read bandwidth / bytes per event it
reads). Each figure is the best of the rounds; ratios are taken within a round (median).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from farm.accumulate import columns_needed, columns_once_binned
from farm.config import load_config
from farm.reweight.bincache import BIN_CACHE
from farm.reweight.binning import reference_bins
from farm.reweight.bootstrap import event_hash
from farm.reweight.compiled import HAVE_NUMBA, flux_fill
from farm.reweight.flux import apply_flux_universes, tensors_from_table
from farm.runner import ensure_store, plan_for
from farm.store import trust
from farm.store.reader import EventStore
from farm.store.schema import COLUMNS, FLAVOR_PDG
from workers import tasks
from workers.warmup import warm_up_kernels

if HAVE_NUMBA:
    import numba

    from farm.reweight.compiled import _T0, _T1, _T2, _T3, CACHE

    @numba.njit(nogil=True, cache=CACHE)
    def _hash_floor(base, replicas):
        # the bootstrap's irreducible work, written as its kernel is (replicas innermost,
        # thresholds as constants): hash every (event, replica) and count its Poisson draw
        # against the four thresholds that decide 99.6 % of draws; the counts are summed per
        # replica so that nothing is optimised away, and no histogram is filled
        golden = np.uint64(0x9E3779B97F4A7C15)
        m1 = np.uint64(0xBF58476D1CE4E5B9)
        m2 = np.uint64(0x94D049BB133111EB)
        n_rep = replicas.size
        offsets = np.empty(n_rep, dtype=np.uint64)
        for u in range(n_rep):
            offsets[u] = (replicas[u] + np.uint64(1)) * golden
        total = np.zeros(n_rep, dtype=np.uint32)
        for e in range(base.size):
            b = base[e]
            for u in range(n_rep):
                z = b + offsets[u]
                z = (z ^ (z >> np.uint64(30))) * m1
                z = (z ^ (z >> np.uint64(27))) * m2
                z = z ^ (z >> np.uint64(31))
                t = np.uint32(z >> np.uint64(32))
                total[u] += (
                    np.uint32(t >= _T0)
                    + np.uint32(t >= _T1)
                    + np.uint32(t >= _T2)
                    + np.uint32(t >= _T3)
                )
        return total


def _best(f, repeat: int = 1) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def _first_items_on_a_machine_that_verified(store, first_items) -> float:
    """Seconds of ``first_items`` in a fresh process whose machine verified every shard before:
    the checksums are trusted (farm.store.trust), not recomputed."""
    newest = max(
        max(st.st_mtime_ns, st.st_ctime_ns)
        for st in (f.stat() for f in Path(store.path).rglob("*") if f.is_file())
    )
    settle = (newest + trust.SETTLE_NS - time.time_ns()) / 1e9
    time.sleep(max(0.0, settle + 0.1))  # files that just changed are not recorded
    with tempfile.TemporaryDirectory(prefix="farm-bench-verified-") as records:
        os.environ["FARM_VERIFIED_DIR"] = records
        whole = EventStore.open(store.path, verify_checksums=True)
        whole.read_columns(["event_id"], 0, store.n_events)  # verifies and records every shard
        assert EventStore.open(store.path).trusted_shards() == list(range(store.n_shards))
        tasks._open_store_version.cache_clear()  # a fresh process
        BIN_CACHE.clear()
        return _best(first_items)


def _bytes_per_event(names) -> int:
    return int(sum(COLUMNS[n].dtype.itemsize for n in names))


def _hist_tensors(cols, spec, hist):
    """The flux tensors by the `hist` library: per flavour a weighted fill of (E_ν, reco) for the
    selected signal and background and of (E_ν,) for all signal (truth "total": one truth bin);
    E_ν outside the edges and the other flavours go to the last (untouched) flux bin."""
    bins = spec.flux_bins
    last = bins.untouched
    signal, background = np.zeros((bins.n_bins, spec.n_reco)), np.zeros((bins.n_bins, spec.n_reco))
    truth = np.zeros((bins.n_bins, 1))
    reco_axis = hist.axis.Variable(spec.reco_edges)  # flow bins: the upper edge is outside
    sel, sig = cols["selected"], cols["is_signal"]
    other = np.ones(sel.size, dtype=bool)
    for k, name in enumerate(bins.flavors):
        enu_axis = hist.axis.Variable(bins.edges[k])
        mine = cols["flavor"] == FLAVOR_PDG[name]
        other &= ~mine
        for target, rows in ((signal, mine & sel & sig), (background, mine & sel & ~sig)):
            h = hist.Hist(enu_axis, reco_axis, storage=hist.storage.Double())
            h.fill(
                cols["enu_true"][rows], cols[spec.observable][rows], weight=cols["w_nominal"][rows]
            )
            v = h.values(flow=True)[:, 1:-1]
            target[bins.flavor_slice(name)] = v[1:-1]
            target[last] += v[0] + v[-1]
        h = hist.Hist(enu_axis, storage=hist.storage.Double())
        rows = mine & sig
        h.fill(cols["enu_true"][rows], weight=cols["w_nominal"][rows])
        v = h.values(flow=True)
        truth[bins.flavor_slice(name), 0] = v[1:-1]
        truth[last, 0] += v[0] + v[-1]
    for target, rows in ((signal, other & sel & sig), (background, other & sel & ~sig)):
        h = hist.Hist(reco_axis, storage=hist.storage.Double())
        h.fill(cols[spec.observable][rows], weight=cols["w_nominal"][rows])
        target[last] += h.values()
    truth[last, 0] += cols["w_nominal"][other & sig].sum()
    return signal[:, :, None], background, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--universes", type=int, default=1000, help="flux universes (R @ C)")
    parser.add_argument("--knob-universes", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=100, help="bootstrap replicas")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None, help="reuse (or create) this store")
    args = parser.parse_args()
    import hist  # the benchmark extra: pip install 'farm[bench]'

    with tempfile.TemporaryDirectory() as tmp:
        path = args.store or Path(tmp) / "sns-csi.zarr"
        cfg = load_config(
            "sns-csi", **{"generation.events": args.events, "sample.store": str(path)}
        )
        cfg = cfg.model_copy(
            update={
                "analysis": cfg.analysis.model_copy(update={"universes_per_task": args.replicas})
            }
        )
        store = ensure_store(cfg, log=lambda m: None)
        _run(args, cfg, store, hist)


def _run(args, cfg, store, hist) -> None:
    n = store.n_events
    warm_up_kernels()
    # one plan per universe count: flux universes, knob universes, bootstrap replicas
    prep, plan = plan_for(cfg, store, universes=args.knob_universes)
    names = prep.universes.names
    owner = prep.universes.systematic_index[prep.spec.event_universes]

    def chunk_of(name: str) -> int:
        for c, (lo, hi) in enumerate(plan.chunks[1:], start=1):
            if hi > lo and names[owner[lo]] == name:
                return c
        raise SystemExit(f"no chunk of {name}")

    boot_prep, boot_plan = plan_for(cfg, store, universes=args.replicas)
    boot_owner = boot_prep.universes.systematic_index[boot_prep.spec.event_universes]
    boot_chunk = next(
        c
        for c, (lo, hi) in enumerate(boot_plan.chunks[1:], start=1)
        if hi > lo and boot_prep.universes.names[boot_owner[lo]] == "mc_statistics"
    )
    knob_chunk = chunk_of("neutron_radius")
    flux_spec = prep.spec.for_chunk(0, 0, with_flux=True)
    flux_names = columns_needed(flux_spec)
    knob_lo, knob_hi = plan.chunks[knob_chunk]
    boot_lo, boot_hi = boot_plan.chunks[boot_chunk]
    # what the knob and bootstrap items read: their blocks were binned by the flux chunk
    knob_names = columns_once_binned(prep.spec.for_chunk(knob_lo, knob_hi, with_flux=False))
    boot_names = columns_once_binned(boot_prep.spec.for_chunk(boot_lo, boot_hi, with_flux=False))
    rng = np.random.default_rng(1)
    ratio = 1.0 + 0.1 * rng.standard_normal((args.universes, prep.spec.flux_bins.n_bins))

    def run_items(p, pl, chunk) -> None:
        for item in pl.items_of_chunk(chunk):
            tasks.compute_item(str(p.store_path), p.spec, item, p.block_rows)

    # cold: a fresh process's first flux items, verifying every shard they read, as the first
    # process on a machine does (later ones trust a shard verified before: farm.store.trust)
    os.environ["FARM_VERIFIED_DIR"] = "off"
    tasks._open_store_version.cache_clear()
    BIN_CACHE.clear()
    t_cold = _best(lambda: run_items(prep, plan, 0))
    t_trusted = _first_items_on_a_machine_that_verified(store, lambda: run_items(prep, plan, 0))
    os.environ["FARM_VERIFIED_DIR"] = "off"

    # in memory, binned once (not timed): the kernels' inputs
    plain = EventStore.open(store.path, validate=False)
    cols = plain.read_columns(sorted({*flux_names, "event_id"}), 0, n)
    bins = reference_bins(cols, flux_spec.binning)
    keep = (bins.signal | (cols["selected"] & (bins.reco >= 0))).copy()
    base = event_hash(cols["event_id"][keep], boot_prep.spec.bootstrap_key)
    replicas = np.arange(boot_hi - boot_lo, dtype=np.uint64)
    big = np.ones(2**26)  # 512 MiB

    spec = prep.spec

    def kernel_flux() -> None:
        table = flux_fill(
            cols["w_nominal"],
            bins.flux,
            bins.reco,
            bins.truth,
            bins.signal,
            cols["selected"],
            spec.flux_bins.n_bins,
            spec.n_reco,
            spec.n_truth,
        )
        apply_flux_universes(ratio, tensors_from_table(table, n_reco=spec.n_reco, n_truth=1))

    def hist_path() -> None:
        for item in plan.items_of_chunk(0):
            part = plain.read_columns(flux_names, item.start, item.stop)
            _hist_tensors(part, spec, hist)

    def apply_once() -> None:
        table = np.zeros((spec.flux_bins.n_bins, spec.n_reco + spec.n_reco + 1))
        apply_flux_universes(ratio, tensors_from_table(table, n_reco=spec.n_reco, n_truth=1))

    paths = {
        "sum": lambda: big.sum(),
        "read": lambda: [
            plain.read_columns(flux_names, item.start, item.stop) for item in plan.items_of_chunk(0)
        ],
        "flux item": lambda: BIN_CACHE.clear() or run_items(prep, plan, 0),  # as a run: first
        "flux kernel": kernel_flux,
        "hist": hist_path,
        "apply": apply_once,
        "knob item": lambda: run_items(prep, plan, knob_chunk),
        "bootstrap item": lambda: run_items(boot_prep, boot_plan, boot_chunk),
    }
    if HAVE_NUMBA:
        paths["hash floor"] = lambda: _hash_floor(base, replicas)
        _hash_floor(base[:10], replicas)
    for f in paths.values():  # warm-up: kernels, page cache, the bins of every block
        f()
    # sanity: the hist factorisation gives farm's tensors
    first = plan.items_of_chunk(0)[0]
    ours = tasks.compute_item(str(prep.store_path), spec, first, prep.block_rows).flux
    theirs = _hist_tensors(plain.read_columns(flux_names, first.start, first.stop), spec, hist)
    for a, b in zip((ours.signal, ours.background, ours.truth), theirs, strict=True):
        assert np.allclose(a, b, rtol=1e-12, atol=0.0), "hist disagrees with farm's tensors"

    times: dict[str, list[float]] = {k: [] for k in paths}
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for key, f in paths.items():
            times[key].append(_best(f))
    best = {k: min(v) for k, v in times.items()}
    BIN_CACHE.clear()  # a run's order: the flux chunk bins each block, the other chunks reuse
    run_items(prep, plan, 0)
    run_items(prep, plan, knob_chunk)
    run_items(boot_prep, boot_plan, boot_chunk)

    def ratio_of(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    bandwidth = big.nbytes / best["sum"]
    u_flux, u_knob, u_boot = args.universes, knob_hi - knob_lo, boot_hi - boot_lo

    def row(label, key, nbytes, universes, *, extra=0.0) -> None:
        t = best[key] + extra
        rate = n / t
        bound = bandwidth / nbytes
        print(
            f"| {label} | {nbytes} | {universes} | {t:.3f} | {rate / 1e6:.1f} | "
            f"{n * max(universes, 1) / t / 1e9:.2f} | {rate / bound:.1%} |"
        )

    print(
        f"{n:,} sns-csi events, {args.rounds} interleaved rounds, best of each; load average "
        f"{min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores; read bandwidth "
        f"(numpy sum, 512 MiB) {bandwidth / 1e9:.1f} GB/s; page-cache read of the flux columns, item by item, "
        f"{n * _bytes_per_event(flux_names) / best['read'] / 1e9:.1f} GB/s\n"
    )
    print(
        "| path | bytes/event read | universes | time (s) | M events/s | G event-universes/s "
        "| fraction of read bound |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    fb = _bytes_per_event(flux_names)
    row("flux kernel alone (in memory, pre-binned) + R @ C", "flux kernel", fb, u_flux)
    row(
        "flux work item from the store (read, bin, fill) + R @ C",
        "flux item",
        fb,
        u_flux,
        extra=best["apply"],
    )
    row("  the same, first in a process (verifies every shard)", "flux item", fb, u_flux,
        extra=t_cold - best["flux item"] + best["apply"])  # fmt: skip
    row("  the same, first in a process, shards verified on this machine before", "flux item",
        fb, u_flux, extra=t_trusted - best["flux item"] + best["apply"])  # fmt: skip
    row("hist factorisation from the store + R @ C", "hist", fb, u_flux, extra=best["apply"])
    row("knob work item (neutron radius) from the store", "knob item",
        _bytes_per_event(knob_names), u_knob)  # fmt: skip
    row("bootstrap work item from the store", "bootstrap item",
        _bytes_per_event(boot_names), u_boot)  # fmt: skip
    if HAVE_NUMBA:
        row("bootstrap hash floor (in memory, hash and count only)", "hash floor", 8, u_boot)
    print(
        f"\nratios within a round (median): flux item / flux kernel "
        f"{ratio_of('flux item', 'flux kernel'):.2f}; hist / flux item "
        f"{ratio_of('hist', 'flux item'):.2f}×"
        + (
            f"; bootstrap item / hash floor {ratio_of('bootstrap item', 'hash floor'):.2f}"
            if HAVE_NUMBA
            else ""
        )
        + f"; bin cache: {BIN_CACHE.hits} hits, {BIN_CACHE.misses} misses, "
        f"{BIN_CACHE.nbytes / 2**20:.0f} MiB of {BIN_CACHE.budget_bytes / 2**20:.0f}"
    )


if __name__ == "__main__":
    main()
