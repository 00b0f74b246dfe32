"""A block's bins (farm.reweight.binning): the compiled kernels give exactly the indices of
``np.searchsorted``/``np.digitize``, the fused flux pass gives the tensors' bits, and a worker bins
each block once for all its chunks, verifies each shard once, within the cache's budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import farm.reweight.binning as binning
import farm.store.reader as reader
from farm.accumulate import block_partial_sums, columns_needed
from farm.config import load_config
from farm.reweight.bincache import BIN_CACHE, BinCache
from farm.reweight.binning import Binning, BlockBins
from farm.reweight.compiled import flux_fill
from farm.runner import ensure_store, plan_for
from farm.store.blocks import iter_blocks
from farm.systematics.fluxbins import FluxBins
from workers import tasks

FLUX = FluxBins.from_mapping(
    {"numu": [29.0, 30.5], "nue": [0.0, 10, 20, 30, 40, 53], "numubar": [0.0, 10, 20, 30, 40, 53]}
)
CODES = np.array([0, 12, -12, 14, -14, 16, 99], dtype=np.int32)
"""Binned flavours, a flavour the binning lacks (ν̄_e), ν_τ and a code no table holds."""


def _digitize(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The reference, written independently: numpy's digitize (bins closed on the left), −1
    outside [edges[0], edges[-1]) and for NaN."""
    b = np.digitize(values.astype(np.float64), edges, right=False) - 1
    b[(b < 0) | (b >= edges.size - 1) | np.isnan(values)] = -1
    return b


def _flux_reference(flavor: np.ndarray, enu: np.ndarray, bins: FluxBins) -> np.ndarray:
    out = np.full(enu.size, bins.untouched, dtype=np.int64)
    for k, name in enumerate(bins.flavors):
        code = {"nue": 12, "numu": 14, "numubar": -14}[name]
        b = _digitize(enu, np.asarray(bins.edges[k]))
        hit = (flavor == code) & (b >= 0)
        out[hit] = bins.offsets[k] + b[hit]
    return out


def _block(
    rng: np.random.Generator, n: int, reco_edges: np.ndarray, *, pe: bool
) -> dict[str, np.ndarray]:
    """Values on every edge, just beside them, under- and overflow, counts and non-counts."""
    on_edges = np.concatenate([reco_edges, np.nextafter(reco_edges, -np.inf), reco_edges + 0.5])
    spread = rng.uniform(reco_edges[0] - 5, reco_edges[-1] + 5, n)
    reco = np.concatenate([on_edges, np.round(spread), spread, [0.0, -0.0, 1e30]])
    reco = rng.permutation(np.resize(reco, n))
    flux_edges = np.array([0.0, 10, 20, 29, 30, 30.5, 40, 53])
    enu = np.concatenate([flux_edges, np.nextafter(flux_edges, np.inf), rng.uniform(-1, 60, n)])
    return {
        "reco_pe" if pe else "reco_kevee": reco.astype(np.float32 if pe else np.float64),
        "recoil_mev": rng.permutation(np.resize(np.concatenate([on_edges, spread]), n)),
        "enu_true": rng.permutation(np.resize(enu, n)),
        "flavor": rng.choice(CODES, n),
        "is_signal": rng.random(n) < 0.7,
        "selected": rng.random(n) < 0.5,
        "w_nominal": rng.random(n),
    }


@pytest.mark.parametrize("pe", [True, False], ids=["photoelectrons (table)", "keVee (search)"])
@pytest.mark.parametrize("truth", [False, True], ids=["total", "truth bins"])
@pytest.mark.parametrize("n_edges", [8, 70], ids=["8 edges", "70 edges (binary search)"])
def test_compiled_bins_equal_searchsorted_and_digitize(pe: bool, truth: bool, n_edges: int) -> None:
    rng = np.random.default_rng(n_edges + 2 * pe + truth)
    reco_edges = np.unique(np.round(rng.uniform(0.0, 90.0, n_edges), 1 if n_edges > 8 else 0))
    truth_edges = np.array([-1.0, 2.5, 7.0, 30.0]) if truth else None
    observable = "reco_pe" if pe else "reco_kevee"
    cols = _block(rng, 20_000, reco_edges, pe=pe)
    spec = Binning.of(observable, reco_edges, "recoil_mev" if truth else None, truth_edges, FLUX)
    assert (spec.lut.size > 0) == pe
    got = binning.bin_block(cols, spec)

    reco = _digitize(cols[observable], reco_edges)
    truth_bin = (
        np.zeros(reco.size, dtype=np.int64)
        if truth_edges is None
        else _digitize(cols["recoil_mev"], truth_edges)
    )
    signal = cols["is_signal"] & (truth_bin >= 0)
    np.testing.assert_array_equal(got.reco, reco)
    np.testing.assert_array_equal(got.signal, signal)
    np.testing.assert_array_equal(got.truth, np.where(signal, truth_bin, 0))
    np.testing.assert_array_equal(got.flux, _flux_reference(cols["flavor"], cols["enu_true"], FLUX))
    assert (got.reco.dtype, got.truth.dtype, got.flux.dtype) == (np.int64, np.int64, np.int32)
    reference = binning.reference_bins(cols, spec)  # what the run computed before the kernels
    for name in ("reco", "truth", "signal", "flux"):
        np.testing.assert_array_equal(getattr(got, name), getattr(reference, name), name)


def test_flux_bins_past_32_edges_take_the_binary_search() -> None:
    rng = np.random.default_rng(11)
    edges = np.unique(np.round(rng.uniform(0.0, 60.0, 50), 2))
    wide = FluxBins.from_mapping({"nue": list(edges), "numu": [29.0, 30.5]})
    cols = _block(rng, 20_000, np.array([5.0, 10.0]), pe=True)
    cols["enu_true"] = np.concatenate([edges, rng.uniform(-1.0, 61.0, 20_000 - edges.size)])
    got = binning.bin_block(cols, Binning.of("reco_pe", np.array([5.0, 10.0]), None, None, wide))
    assert edges.size > 32
    np.testing.assert_array_equal(got.flux, _flux_reference(cols["flavor"], cols["enu_true"], wide))


@settings(max_examples=60, deadline=None)
@given(
    edges=st.lists(
        st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=2, max_size=60, unique=True
    ),
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.integers(-5, 1100).map(float),
        ),
        min_size=1,
        max_size=300,
    ),
)
def test_any_edges_and_values_bin_like_searchsorted(
    edges: list[float], values: list[float]
) -> None:
    """Edges anywhere, values anywhere (NaN and ±inf included, although the store refuses them):
    the table and the search agree with numpy, value for value."""
    edges_array = np.sort(np.asarray(edges, dtype=np.float64))
    obs = np.asarray(values, dtype=np.float32)
    n = obs.size
    cols = {
        "reco_pe": obs,
        "enu_true": np.abs(obs.astype(np.float64)),
        "flavor": np.resize(CODES, n),
        "is_signal": np.ones(n, dtype=bool),
        "selected": np.ones(n, dtype=bool),
        "w_nominal": np.ones(n),
    }
    spec = Binning.of("reco_pe", edges_array, None, None, FLUX)
    got = binning.bin_block(cols, spec)
    expected = np.searchsorted(edges_array, obs.astype(np.float64), side="right") - 1
    expected[(expected < 0) | (expected >= edges_array.size - 1)] = -1
    np.testing.assert_array_equal(got.reco, expected)
    np.testing.assert_array_equal(got.flux, _flux_reference(cols["flavor"], cols["enu_true"], FLUX))
    # the same edges as a flavour's flux bins (past 32 edges: the binary search)
    wide = FluxBins.from_mapping({"nue": list(edges_array), "numu": [0.0, 1.0]})
    cols["enu_true"] = obs.astype(np.float64)
    got = binning.bin_block(cols, Binning.of("reco_pe", edges_array, None, None, wide))
    np.testing.assert_array_equal(got.flux, wide.index(cols["flavor"], cols["enu_true"]))


@pytest.mark.parametrize("keep", [False, True])
def test_the_fused_flux_pass_gives_the_bits_of_binning_then_filling(keep: bool) -> None:
    rng = np.random.default_rng(5)
    reco_edges = np.array([5.0, 10, 15, 20, 25, 30, 40, 60])
    truth_edges = np.array([0.0, 3.0, 9.0, 40.0])
    cols = _block(rng, 50_000, reco_edges, pe=True)
    spec = Binning.of("reco_pe", reco_edges, "recoil_mev", truth_edges, FLUX)
    table, bins = binning.bin_block_with_flux(cols, spec, keep=keep)
    ref = binning.reference_bins(cols, spec)
    expected = flux_fill(
        cols["w_nominal"],
        ref.flux,
        ref.reco,
        ref.truth,
        ref.signal,
        cols["selected"],
        spec.n_flux,
        spec.n_reco,
        spec.n_truth,
    )
    assert table.shape == expected.shape
    assert table.tobytes() == expected.tobytes()
    assert (bins is not None) == keep
    if bins is not None:
        np.testing.assert_array_equal(bins.flux, ref.flux)
        np.testing.assert_array_equal(bins.reco, ref.reco)


def test_without_numba_the_numpy_reference_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    reco_edges = np.array([5.0, 10, 15, 20, 25, 30, 40, 60])
    cols = _block(rng, 5_000, reco_edges, pe=True)
    spec = Binning.of("reco_pe", reco_edges, None, None, FLUX)
    compiled = binning.bin_block(cols, spec)
    table, _ = binning.bin_block_with_flux(cols, spec, keep=False)
    monkeypatch.setattr(binning, "HAVE_NUMBA", False)
    plain = binning.bin_block(cols, spec)
    plain_table, _ = binning.bin_block_with_flux(cols, spec, keep=False)
    np.testing.assert_array_equal(plain.reco, compiled.reco)
    np.testing.assert_array_equal(plain.flux, compiled.flux)
    assert plain_table.tobytes() == table.tobytes()


# --- the cache ---------------------------------------------------------------------------------


def _bins(n: int, fill: int = 1) -> BlockBins:
    return BlockBins(
        reco=np.full(n, fill, dtype=np.int64),
        truth=np.zeros(n, dtype=np.int64),
        signal=np.ones(n, dtype=bool),
        flux=np.full(n, 300, dtype=np.int32),
    )


def test_the_cache_keeps_compact_bins_within_its_budget_least_recently_used_out() -> None:
    per_block = _bins(1000).compact().nbytes  # int8 reco and truth, bool, int16 flux: 5 B/event
    assert per_block == 5 * 1000
    cache = BinCache(budget_bytes=3 * per_block)
    for block in range(3):
        cache.put(("store", block), _bins(1000, fill=block))
    assert cache.get(("store", 0)) is not None  # 0 is now the most recently used
    cache.put(("store", 3), _bins(1000, fill=3))
    assert cache.get(("store", 1)) is None  # the least recently used went
    assert len(cache) == 3 and cache.nbytes == 3 * per_block <= cache.budget_bytes
    assert (cache.hits, cache.misses, cache.evictions) == (1, 1, 1)
    again = cache.get(("store", 3))
    assert again is not None and again.reco.dtype == np.int64 and again.flux.dtype == np.int32
    np.testing.assert_array_equal(again.reco, 3)
    np.testing.assert_array_equal(again.flux, 300)
    cache.put(("big",), _bins(10_000))  # larger than the whole budget: not kept
    assert cache.get(("big",)) is None and cache.nbytes <= cache.budget_bytes
    off = BinCache(budget_bytes=0)
    calls = []
    off.get_or_compute(("k",), lambda: calls.append(1) or _bins(10))
    off.get_or_compute(("k",), lambda: calls.append(1) or _bins(10))
    assert len(calls) == 2 and len(off) == 0


def test_a_bad_budget_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_BIN_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="FARM_BIN_CACHE_MB='lots'"):
        BinCache()
    monkeypatch.setenv("FARM_BIN_CACHE_MB", "64")
    assert BinCache().budget_bytes == 64 * 2**20


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """sns-csi, 300 000 events in 4 shards (5 blocks), 6 universes per systematic."""
    path = tmp_path_factory.mktemp("binning") / "csi.zarr"
    cfg = load_config(
        "sns-csi",
        **{
            "generation.events": 300_000,
            "generation.shard_size": 80_000,
            "sample.store": str(path),
        },
    )
    store = ensure_store(cfg, log=lambda _: None)
    prep, plan = plan_for(cfg, store, universes=6)
    return store, prep, plan


def _run_items(prep, plan, order) -> dict[int, object]:
    return {
        item.index: tasks.compute_item(str(prep.store_path), prep.spec, item, prep.block_rows)
        for item in order
    }


def _same_bits(a, b) -> None:
    for name in ("signal", "background", "truth", "truth_nominal", "clamped"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert (a.flux is None) == (b.flux is None)
    if a.flux is not None:
        for name in ("signal", "background", "truth"):
            assert getattr(a.flux, name).tobytes() == getattr(b.flux, name).tobytes(), name


def test_a_worker_bins_each_block_once_and_verifies_each_shard_once(
    small_run: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, prep, plan = small_run
    monkeypatch.setenv("FARM_VERIFIED_DIR", "off")  # as in a first process on this machine
    verified = []
    checksum = reader.shard_checksum
    monkeypatch.setattr(reader, "shard_checksum", lambda data: verified.append(1) or checksum(data))
    tasks._open_store_version.cache_clear()  # a fresh worker process
    BIN_CACHE.clear()
    results = _run_items(prep, plan, plan.items)  # chunk by chunk, as execute_inprocess does
    n_chunks = len(plan.chunks)
    assert n_chunks > 5
    assert len(verified) == store.n_shards == 4  # once per shard, not once per chunk
    assert BIN_CACHE.misses == prep.n_blocks == 5  # each block binned once ...
    assert BIN_CACHE.hits == prep.n_blocks * (n_chunks - 1)  # ... and reused by every other chunk
    assert BIN_CACHE.nbytes <= BIN_CACHE.budget_bytes

    # the same items without the cache, flux chunk last (its tensors then come from cached
    # bins, not the fused pass), give the same bits
    monkeypatch.setattr(BIN_CACHE, "budget_bytes", 0)
    for item in plan.items:
        fresh = tasks.compute_item(str(prep.store_path), prep.spec, item, prep.block_rows)
        _same_bits(results[item.index], fresh)
    monkeypatch.undo()
    BIN_CACHE.clear()
    reversed_order = _run_items(prep, plan, reversed(plan.items))  # per-event chunks bin first
    assert (BIN_CACHE.misses, BIN_CACHE.hits) == (5, 5 * (n_chunks - 1))
    for index, sums in results.items():
        _same_bits(sums, reversed_order[index])


def test_block_partial_sums_without_a_key_equal_those_with_one(small_run: tuple) -> None:
    """closure.py and the benchmarks call block_partial_sums without a key: no cache, same bits."""
    store, prep, plan = small_run
    spec = prep.spec.for_chunk(*plan.chunks[1], with_flux=False)
    cols = next(iter_blocks(store, columns_needed(spec), prep.block_rows))[1]
    BIN_CACHE.clear()
    keyed = block_partial_sums(cols, spec, block_key=("x", 0))
    cached = block_partial_sums(cols, spec, block_key=("x", 0))
    plain = block_partial_sums(cols, spec)
    assert BIN_CACHE.hits == 1
    _same_bits(keyed, plain)
    _same_bits(cached, plain)


def test_the_flux_chunk_reads_only_the_columns_it_bins_and_fills(small_run: tuple) -> None:
    _, prep, plan = small_run
    flux = prep.spec.for_chunk(0, 0, with_flux=True)
    knobs = prep.spec.for_chunk(*plan.chunks[1], with_flux=False)
    assert set(columns_needed(flux)) == {
        "enu_true",
        "flavor",
        "is_signal",
        "selected",
        "w_nominal",
        "reco_pe",
    }
    assert {"event_id", "channel"} <= set(columns_needed(knobs))


def test_the_cache_key_names_the_store_content_and_rows(small_run: tuple) -> None:
    store, prep, _ = small_run
    cols = {"w_nominal": np.zeros(prep.block_rows)}
    first = tasks._block_key(store, 0, prep.block_rows, cols)
    second = tasks._block_key(store, 1, prep.block_rows, cols)
    assert first != second
    assert first[1] == (store.shard_checksums[0],)
    assert second[1] == tuple(store.shard_checksums[0:2])  # rows 65 536–131 072 span two shards
    assert Path(first[0]) == store.path


def test_once_its_blocks_are_binned_a_chunk_reads_only_what_it_fills_with(
    small_run: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bootstrap chunk after the flux chunk reads event_id, selected and w_nominal, not the
    columns only binning reads; a block whose bins went after the check reads them after all."""
    _, prep, plan = small_run
    boot = next(
        c
        for c, (lo, hi) in enumerate(plan.chunks)
        if hi > lo and prep.universes.names[prep.universes.systematic_index[
            prep.spec.event_universes[lo]]] == "mc_statistics"
    )  # fmt: skip
    spec = prep.spec.for_chunk(*plan.chunks[boot], with_flux=False)
    BIN_CACHE.clear()
    _run_items(prep, plan, plan.items_of_chunk(0))  # the flux chunk bins every block
    full = _run_items(prep, plan, plan.items_of_chunk(boot))

    read: list[str] = []
    read_columns = reader.EventStore.read_columns

    def counting(self, columns, start, stop):
        read.extend(columns)
        return read_columns(self, columns, start, stop)

    monkeypatch.setattr(reader.EventStore, "read_columns", counting)
    lean = _run_items(prep, plan, plan.items_of_chunk(boot))
    assert set(read) == {"event_id", "selected", "w_nominal"} < set(columns_needed(spec))
    for index, sums in lean.items():
        _same_bits(sums, full[index])

    read.clear()
    monkeypatch.setattr(BIN_CACHE, "get", lambda key: None)  # evicted after the check
    again = _run_items(prep, plan, plan.items_of_chunk(boot))
    assert {"reco_pe", "enu_true", "flavor", "is_signal"} <= set(read)
    for index, sums in again.items():
        _same_bits(sums, full[index])
