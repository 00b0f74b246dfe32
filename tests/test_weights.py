"""Precomputed universe weights as a systematic (issue 12, item 3).

The one-pass fill equals the per-universe loop bit for bit (numba and numpy), for float32 and
float64, for any subset of the universes; unphysical weights follow the declared policy and are
counted; weight sets attach without rewriting the store (npz and parquet friends keyed by
event_id, or a gst array branch at ingest) and are refused for other events; and a run's
weight-set covariance reproduces, to 1e-12, the covariance of a per-universe loop.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import farm_cli, toml_text

import farm.accumulate
from farm.config import parse_config
from farm.ingest import ingest
from farm.reweight import weightsets
from farm.reweight.fastpaths import BlockLayout
from farm.reweight.weightsets import UnphysicalWeightError, weight_set_fill, weight_set_loop
from farm.runner import run_inprocess
from farm.store import EventStore, StoreError
from farm.store.weights import WeightSet, weight_set_names, weights_key
from farm.weights import add_weight_set

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("realfiles", ROOT / "examples" / "realfiles.py")
realfiles = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(realfiles)  # type: ignore[union-attr]

N_EVENTS = 5000
UNIVERSES = 40


def _layout(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    reco = rng.integers(-1, 6, n)
    truth = rng.integers(0, 3, n)
    signal = rng.random(n) < 0.7
    selected = rng.random(n) < 0.8
    layout = BlockLayout.build(reco, truth, signal, selected, 6, 3)
    slot, slot_truth = layout.slots(n)
    return rng.exponential(1.0, n), slot, slot_truth, layout.n_slots


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("compiled", [True, False])
def test_the_one_pass_fill_equals_the_per_universe_loop_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, dtype: type, compiled: bool
) -> None:
    if not compiled:
        monkeypatch.setattr(weightsets, "HAVE_NUMBA", False)
    w0, slot, slot_truth, n_slots = _layout(3000)
    weights = (
        (1.0 + 0.2 * np.random.default_rng(1).standard_normal((3000, 25))).clip(0).astype(dtype)
    )
    table, changed = weight_set_fill(weights, w0, slot, slot_truth, n_slots)
    np.testing.assert_array_equal(table, weight_set_loop(weights, w0, slot, slot_truth, n_slots))
    assert not changed.any()
    known, _ = weight_set_fill(weights, w0, slot, slot_truth, n_slots, physical=True)
    np.testing.assert_array_equal(known, table)  # the unchecked pass of a clean set: same bits
    # any subset of the universes (a work item's chunk) gets the same bits
    part, _ = weight_set_fill(np.ascontiguousarray(weights[:, 7:19]), w0, slot, slot_truth, n_slots)
    np.testing.assert_array_equal(part, table[7:19])


@pytest.mark.parametrize("compiled", [True, False])
def test_unphysical_weights_follow_the_policy_and_are_counted(
    monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    if not compiled:
        monkeypatch.setattr(weightsets, "HAVE_NUMBA", False)
    w0, slot, slot_truth, n_slots = _layout(400)
    weights = np.ones((400, 3))
    live = np.flatnonzero((slot >= 0) | (slot_truth >= 0))
    weights[live[0], 0], weights[live[1], 1], weights[live[2], 1] = np.nan, -2.0, np.inf
    weights[live[3], 2] = 50.0
    with pytest.raises(
        UnphysicalWeightError, match=rf"row {live[0]} of the block has weight nan in universe 0"
    ):
        weight_set_fill(weights, w0, slot, slot_truth, n_slots)
    zero, changed = weight_set_fill(
        weights, w0, slot, slot_truth, n_slots, policy="zero", clamp=(0.0, 10.0)
    )
    assert changed.tolist() == [1, 2, 1]
    fixed = weights.copy()
    fixed[live[0], 0] = fixed[live[1], 1] = fixed[live[2], 1] = 0.0
    fixed[live[3], 2] = 10.0
    np.testing.assert_array_equal(zero, weight_set_loop(fixed, w0, slot, slot_truth, n_slots))
    one, _ = weight_set_fill(weights, w0, slot, slot_truth, n_slots, policy="one")
    fixed[live[0], 0] = fixed[live[1], 1] = fixed[live[2], 1] = 1.0
    fixed[live[3], 2] = 50.0
    np.testing.assert_array_equal(one, weight_set_loop(fixed, w0, slot, slot_truth, n_slots))


# --- storage -----------------------------------------------------------------------------------------


def _store(
    tmp_path: Path,
    *,
    weights_branch: np.ndarray | None = None,
    keep: dict[str, Any] | None = None,
    inputs: int = 1,
) -> Path:
    pytest.importorskip("uproot")
    extra = None if weights_branch is None else {"weightsGenie": weights_branch}
    gsts = [
        realfiles.write_gst(
            tmp_path / f"ar{k}.root", realfiles.gst_branches(N_EVENTS, seed=21 + k), weights=extra
        )
        for k in range(inputs)
    ]
    flux = realfiles.write_flux_csv(
        tmp_path / "numu.csv",
        np.array([0.0, 0.5, 1.0, 2.0, 6.0]),
        {"numu": np.array([2e-9, 5e-9, 3e-9, 1e-9])},
    )
    mapping: dict[str, Any] = {
        "ingest": {"format": "gst", **({"keep": keep} if keep else {})},
        "store": {"sample": "genie-ar"},
        "exposure": {"value": 1e20, "unit": "POT"},
        "target": {
            "material": "Ar",
            "nuclei": {"Ar40": {"z": 18, "n": 22, "a": 40, "count": 7.5e30}},
        },
        "flux": {
            "file": str(flux),
            "flavors": {"numu": "numu"},
            "energy_unit": "GeV",
            "unit": "nu/cm2/POT",
        },
        "normalization": {
            "weight": "wght",
            "flux_averaged_xsec_cm2": 3e-37,
            "xsec_target_scale": "nucleus",
        },
        "columns": {
            "enu_true": {"branch": "Ev", "unit": "GeV"},
            "flavor": {"branch": "neu"},
            "target_a": {"branch": "A"},
            "plep_mev": {"branch": "pl", "unit": "GeV"},
        },
        "channel": {"preset": "genie"},
        "signal": {"channels": ["CCQE"], "flavors": ["numu"]},
        "selection": {"when": {"pl": {"min": 0.15}}},
    }
    if weights_branch is not None:
        mapping["weights"] = [{"name": "genie", "branch": "weightsGenie"}]
    (tmp_path / "m.toml").write_text(toml_text(mapping))
    out = tmp_path / "store.zarr"
    ingest(gsts, tmp_path / "m.toml", out, shard_rows=1536)
    return out


def _weights(seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1.0 + 0.15 * rng.standard_normal((N_EVENTS, UNIVERSES))).clip(0.05).astype(np.float32)


def test_a_weight_set_attaches_without_rewriting_the_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    before = (store / "zarr.json").read_bytes()
    weights = _weights()
    order = np.random.default_rng(3).permutation(N_EVENTS)  # a friend file in any order
    realfiles.write_weights_npz(tmp_path / "w.npz", np.arange(N_EVENTS)[order], weights[order])
    manifest = add_weight_set(store, "genie", [tmp_path / "w.npz"])
    assert (store / "zarr.json").read_bytes() == before
    assert manifest["universes"] == UNIVERSES and manifest["unphysical"]["nan"] == 0
    opened = EventStore.open(store)
    assert weight_set_names(store) == ["genie"]
    ws = WeightSet.open(opened, "genie")
    np.testing.assert_array_equal(ws.read_rows(1000, 4000), weights[1000:4000])  # across shards
    assert all(ok for _, ok, _ in ws.verify())


def test_a_parquet_friend_gives_the_same_weight_set(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    store = _store(tmp_path)
    weights = _weights()
    realfiles.write_weights_parquet(tmp_path / "w.parquet", np.arange(N_EVENTS), weights)
    add_weight_set(store, "genie", [tmp_path / "w.parquet"])
    ws = WeightSet.open(EventStore.open(store), "genie")
    np.testing.assert_array_equal(ws.read_rows(0, N_EVENTS), weights)


def test_weights_from_a_gst_array_branch_are_written_at_ingest(tmp_path: Path) -> None:
    weights = _weights(seed=9)
    store = _store(tmp_path, weights_branch=weights)
    ws = WeightSet.open(EventStore.open(store), "genie")
    np.testing.assert_array_equal(ws.read_rows(0, N_EVENTS), weights)
    assert ws.manifest["source"]["branch"] == "weightsGenie"


def test_missing_repeated_or_foreign_event_ids_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    weights = _weights()
    realfiles.write_weights_npz(tmp_path / "short.npz", np.arange(N_EVENTS - 1), weights[:-1])
    with pytest.raises(
        StoreError, match=r"1 event\(s\) of the store have no weights \(the first: event_id 4999\)"
    ):
        add_weight_set(store, "genie", [tmp_path / "short.npz"])
    ids = np.arange(N_EVENTS)
    ids[10] = 11
    realfiles.write_weights_npz(tmp_path / "twice.npz", ids, weights)
    with pytest.raises(StoreError, match=r"event_id 11 has weights more than once"):
        add_weight_set(store, "genie", [tmp_path / "twice.npz"])
    ids[10] = 10**9
    realfiles.write_weights_npz(tmp_path / "foreign.npz", ids, weights)
    with pytest.raises(
        StoreError, match=r"event_ids the store does not hold \(the first: 1000000000\)"
    ):
        add_weight_set(store, "genie", [tmp_path / "foreign.npz"])
    assert weight_set_names(store) == []


def _by_entry(file: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """Weights that say which (input, entry) they belong to."""
    u = np.arange(UNIVERSES)
    return (1.0 + 1e-5 * entry[:, None] + 0.1 * file[:, None] + 1e-3 * u).astype(np.float64)


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_friend_files_keyed_by_input_entry_find_their_events_after_keep(
    tmp_path: Path, suffix: str
) -> None:
    """A reweighting tool numbers the input's entries, [ingest] keep or not: keyed by entry,
    every kept event gets its own row, and the rows of dropped events are skipped and counted."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    store = _store(tmp_path, keep={"pl": {"min": 0.3}})
    opened = EventStore.open(store)
    kept = opened.n_events
    assert 0 < kept < N_EVENTS  # keep dropped the events with a soft lepton
    entries = np.random.default_rng(4).permutation(N_EVENTS)  # every entry, in any order
    weights = _by_entry(np.zeros(N_EVENTS), entries)
    friend = tmp_path / f"w{suffix}"
    if suffix == ".npz":
        np.savez(friend, entry=entries.astype(np.int64), weights=weights)
    else:
        realfiles.write_weights_parquet(friend, entries, weights)
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(friend).rename_columns(["entry", "weights"])
        pq.write_table(pa.table({"entry": table["entry"], "weights": table["weights"]}), friend)
    manifest = add_weight_set(store, "genie", [friend], key="entry")
    assert manifest["source"]["keyed_by"] == "entry"
    assert manifest["source"]["rows_not_in_store"] == N_EVENTS - kept
    cols = opened.read_columns(["source_file", "source_entry"], 0, kept)
    assert np.all(np.diff(cols["source_entry"].astype(np.int64)) > 0)  # in input order, gaps
    stored = WeightSet.open(opened, "genie").read_rows(0, kept)
    np.testing.assert_array_equal(
        stored, _by_entry(cols["source_file"].astype(float), cols["source_entry"].astype(float))
    )
    # keyed by event_id, the same numbers would land on other events (ids skip no number)
    assert not np.array_equal(cols["source_entry"], np.arange(kept))


def test_several_inputs_need_the_file_index_beside_the_entry(tmp_path: Path) -> None:
    store = _store(tmp_path, inputs=2)
    n = 2 * N_EVENTS
    file = np.repeat([0, 1], N_EVENTS)
    entry = np.tile(np.arange(N_EVENTS), 2)
    np.savez(tmp_path / "bare.npz", entry=entry, weights=_by_entry(file, entry))
    with pytest.raises(StoreError, match=r"ingested from 2 input files.*only the entry"):
        add_weight_set(store, "genie", [tmp_path / "bare.npz"], key="entry")
    np.savez(tmp_path / "w.npz", entry=entry, input=file, weights=_by_entry(file, entry))
    manifest = add_weight_set(store, "genie", [tmp_path / "w.npz"], key="entry")
    assert manifest["source"]["rows_not_in_store"] == 0
    opened = EventStore.open(store)
    cols = opened.read_columns(["source_file", "source_entry"], 0, n)
    np.testing.assert_array_equal(cols["source_file"], file)  # the store kept the input order
    np.testing.assert_array_equal(
        WeightSet.open(opened, "genie").read_rows(0, n), _by_entry(file, entry)
    )
    np.savez(
        tmp_path / "short.npz", entry=entry[1:], input=file[1:], weights=_by_entry(file, entry)[1:]
    )
    with pytest.raises(
        StoreError,
        match=r"1 event\(s\) of the store have no weights \(the first: input 0 entry 0\)",
    ):
        add_weight_set(store, "genie2", [tmp_path / "short.npz"], key="entry")


def test_the_command_line_keys_by_entry_and_says_what_it_skipped(tmp_path: Path) -> None:
    store = _store(tmp_path, keep={"pl": {"min": 0.3}})
    kept = EventStore.open(store).n_events
    entries = np.arange(N_EVENTS)
    np.savez(tmp_path / "w.npz", entry=entries, weights=_by_entry(np.zeros(N_EVENTS), entries))
    by_id = farm_cli("weights", "add", store, tmp_path / "w.npz", "--name", "w")
    assert by_id.exit_code == 2 and "no array(s) event_id" in by_id.output  # the default key
    wrong = farm_cli("weights", "add", store, tmp_path / "w.npz", "--name", "w", "--key", "row")
    assert wrong.exit_code == 2 and "give event_id or entry" in wrong.output
    done = farm_cli("weights", "add", store, tmp_path / "w.npz", "--name", "w", "--key", "entry")
    assert done.exit_code == 0, done.output
    assert f"{N_EVENTS - kept:,} row(s) for entries the store does not hold skipped" in done.stdout


def test_a_generated_store_has_no_entries_to_key_by(tmp_path: Path) -> None:
    from farm.config import load_config
    from farm.samples.generate import generate_store

    cfg = load_config("sns-csi", **{"generation.events": 2000})
    generate_store(cfg, tmp_path / "g.zarr")
    np.savez(tmp_path / "w.npz", entry=np.arange(2000), weights=np.ones((2000, 3)))
    with pytest.raises(StoreError, match=r"records no input entries"):
        add_weight_set(tmp_path / "g.zarr", "w", [tmp_path / "w.npz"], key="entry")


def test_a_weight_set_of_other_events_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    realfiles.write_weights_npz(tmp_path / "w.npz", np.arange(N_EVENTS), _weights())
    add_weight_set(store, "genie", [tmp_path / "w.npz"])
    manifest = store / "weights" / "genie" / "weightset.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"store_checksums": [\n  "', '"store_checksums": [\n  "0'))
    with pytest.raises(StoreError, match=r"was made for other events"):
        WeightSet.open(EventStore.open(store), "genie")


# --- the run: weight-set universes against a per-universe loop ------------------------------------------


def _config(store: Path, mode: str = "multisim", **analysis: Any) -> Any:
    data = {
        "sample": {"name": "genie-ar", "generator": "external", "store": str(store)},
        "binning": {
            "observable": "plep_mev",
            "reco_edges": [150.0, 400.0, 700.0, 1100.0, 1700.0, 3000.0],
            "truth": "enu_true",
            "truth_edges": [0.0, 700.0, 1200.0, 6000.0],
            "flux_edges_mev": {"numu": [0.0, 500.0, 1000.0, 2000.0, 6000.0]},
        },
        "systematics": [
            {"name": "genie", "kind": "weights", "weight_set": "genie", "mode": mode},
            {
                "name": "res",
                "kind": "knob",
                "parameter": "channel_norm",
                "channels": ["CC_RES"],
                "sigma": 0.2,
                "throws": 10,
            },
        ],
        "analysis": {"method": "lsq", **analysis},
    }
    return parse_config(data, source="weights (test)")


def _loop_histograms(cols: Any, spec: Any, reco_bin: Any, truth_bin: Any, signal: Any) -> Any:
    """The reference: one bincount per universe over w0 · r_u (weight_set_loop)."""
    name = spec.weight_sets[int(spec.event_weight_set[0])][0]
    weights = cols[weights_key(name)][:, spec.event_weight_column]
    layout = BlockLayout.build(
        reco_bin, truth_bin, signal, cols["selected"], spec.n_reco, spec.n_truth
    )
    slot, slot_truth = layout.slots(reco_bin.size)
    table = weight_set_loop(weights, cols["w_nominal"], slot, slot_truth, layout.n_slots)
    sig, bkg, truth = layout.split(table)
    return sig, bkg, truth, np.zeros(weights.shape[1], dtype=np.int64)


def test_weight_set_covariance_reproduces_a_per_universe_loop_to_1e_12(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    realfiles.write_weights_npz(tmp_path / "w.npz", np.arange(N_EVENTS), _weights())
    add_weight_set(store, "genie", [tmp_path / "w.npz"])
    fast = run_inprocess(_config(store), log=lambda _: None)
    # chunks of 7 universes: the same bits (chunk-invariant)
    chunked = run_inprocess(
        _config(store, universes_per_task=7, knob_universes_per_task=7), log=lambda _: None
    )
    np.testing.assert_array_equal(fast["cov_real"].values, chunked["cov_real"].values)
    np.testing.assert_array_equal(fast["xsec_real"].values, chunked["xsec_real"].values)
    monkeypatch.setattr(farm.accumulate, "chunk_histograms", _loop_histograms)
    loop = run_inprocess(_config(store), log=lambda _: None)
    names = [str(s) for s in fast["systematic"].values]
    k = names.index("genie")
    for var in ("cov_systematic_real", "cov_systematic_nominal"):
        a, b = fast[var].values[k], loop[var].values[k]
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b))
    assert int(fast["n_universes"].values[k]) == UNIVERSES
    # the signal histograms are Σ w0 r_u over the selected signal events, universe by universe
    cols = EventStore.open(store).read_columns(None, 0, N_EVENTS)
    inside = cols["selected"] & cols["is_signal"] & (cols["enu_true"] < 6000.0)
    inside &= (cols["plep_mev"] >= 150.0) & (cols["plep_mev"] < 3000.0)
    total = cols["w_nominal"][inside] @ _weights()[inside].astype(np.float64)
    # universe 0 is the central value; the weight set's universes come next, in column order
    got = fast["signal_reco"].values[1 : 1 + UNIVERSES].sum(axis=1)
    assert np.max(np.abs(got - total) / total) <= 1e-12


def test_the_policy_refuses_unphysical_weights_unless_told(tmp_path: Path) -> None:
    store = _store(tmp_path)
    weights = _weights()
    cols = EventStore.open(store).read_columns(["selected", "plep_mev"], 0, N_EVENTS)
    row = int(np.flatnonzero(cols["selected"] & (cols["plep_mev"] > 200))[0])
    weights[row, 3] = np.nan
    realfiles.write_weights_npz(tmp_path / "w.npz", np.arange(N_EVENTS), weights)
    manifest = add_weight_set(store, "genie", [tmp_path / "w.npz"])
    assert manifest["unphysical"]["nan"] == 1
    with pytest.raises(RuntimeError, match=r"weight nan in universe 3.*unphysical_weights"):
        run_inprocess(_config(store), log=lambda _: None)
    ds = run_inprocess(_config(store, unphysical_weights="zero"), log=lambda _: None)
    assert ds.attrs["weight_clamped_total"] == 1


def test_a_weight_set_is_read_whole_when_the_system_returns_short_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux returns at most 2 GiB per read: a (rows × U) chunk must be read to its last byte
    (bytes, not rows, count what is left). Here every read returns at most 1000 bytes."""
    import farm.store.weights as module

    class Short:
        def __init__(self, file: Any) -> None:
            self.file = file

        def readinto(self, view: Any) -> int:
            return self.file.readinto(memoryview(view)[:1000])

        def __getattr__(self, name: str) -> Any:
            return getattr(self.file, name)

        def __enter__(self) -> Short:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

    store = _store(tmp_path)
    weights = _weights()
    realfiles.write_weights_npz(tmp_path / "w.npz", np.arange(N_EVENTS), weights)
    add_weight_set(store, "genie", [tmp_path / "w.npz"])
    ws = WeightSet.open(EventStore.open(store), "genie")
    monkeypatch.setattr(module, "open", lambda *a, **k: Short(open(*a, **k)), raising=False)
    for _ in range(3):  # memory the reader's np.empty may reuse holds NaN, not the weights
        garbage = np.full(weights.shape, np.nan, dtype=weights.dtype)
        del garbage
        np.testing.assert_array_equal(ws.read_rows(0, N_EVENTS), weights)


def test_farm_weights_add_and_list(tmp_path: Path) -> None:
    from conftest import farm_cli

    store = _store(tmp_path)
    realfiles.write_weights_npz(tmp_path / "w.npz", np.arange(N_EVENTS), _weights())
    added = farm_cli("weights", "add", store, tmp_path / "w.npz", "--name", "genie_multisim")
    assert added.exit_code == 0, added.output
    assert f"{N_EVENTS:,} events × {UNIVERSES} universes" in added.output
    listed = farm_cli("weights", "list", store, "--verify")
    assert listed.exit_code == 0, listed.output
    assert "genie_multisim" in listed.output and "OK" in listed.output
    again = farm_cli("weights", "add", store, tmp_path / "w.npz", "--name", "genie_multisim")
    assert again.exit_code == 2 and "already holds a weight set 'genie_multisim'" in again.output


def test_nuhepmc_named_event_weights_become_a_weight_set_at_ingest(tmp_path: Path) -> None:
    pytest.importorskip("pyhepmc")
    rng = np.random.default_rng(4)
    n, universes = 30, 6
    table = 1.0 + 0.1 * rng.standard_normal((n, universes))
    events = [
        {
            "process": 200,
            "beam": (14, (0.0, 0.0, 800.0, 800.0)),
            "target": (1000180400, (0.0, 0.0, 0.0, 37215.5)),
            "final": [(13, (100.0, 0.0, 500.0, 520.0))],
            "weights": [1.0, *table[i]],
        }
        for i in range(n)
    ]
    names = ["CV", *(f"genie_{i}" for i in range(universes))]
    path = realfiles.write_nuhepmc(tmp_path / "w.hepmc3", events, weight_names=names)
    mapping = {
        "ingest": {"format": "hepmc3"},
        "store": {"sample": "weights"},
        "exposure": {"value": 1e20, "unit": "POT"},
        "normalization": {"weight": "wght", "expected_events": 10.0, "cross_check": False},
        "columns": {"enu_true": {"branch": "Ev"}, "flavor": {"branch": "neu"}},
        "channel": {"preset": "nuhepmc"},
        "signal": {"channels": ["CCQE"]},
        "weights": [{"name": "genie", "hepmc3_prefix": "genie_", "dtype": "float64"}],
    }
    (tmp_path / "m.toml").write_text(toml_text(mapping))
    ingest([path], tmp_path / "m.toml", tmp_path / "s.zarr")
    ws = WeightSet.open(EventStore.open(tmp_path / "s.zarr"), "genie")
    np.testing.assert_allclose(ws.read_rows(0, n), table, rtol=1e-6, atol=0)  # HepMC3 text


def test_a_unisim_weight_set_is_two_universes_and_must_be_declared_so(tmp_path: Path) -> None:
    store = _store(tmp_path)
    up_down = np.stack([np.full(N_EVENTS, 1.1), np.full(N_EVENTS, 0.9)], axis=1)
    realfiles.write_weights_npz(tmp_path / "u.npz", np.arange(N_EVENTS), up_down)
    add_weight_set(store, "genie", [tmp_path / "u.npz"], mode="unisim")
    with pytest.raises(
        ValueError, match=r"is a multisim, but the weight set 'genie' was added as a unisim"
    ):
        run_inprocess(_config(store), log=lambda _: None)
    ds = run_inprocess(_config(store, mode="unisim"), log=lambda _: None)
    k = [str(s) for s in ds["systematic"].values].index("genie")
    assert int(ds["n_universes"].values[k]) == 2
    # the ±1σ pair (universes 1 and 2: the first systematic) about the central value, 1/N
    x = ds["xsec_real"].values
    delta = x[1:3] - x[0]
    expect = (np.outer(delta[0], delta[0]) + np.outer(delta[1], delta[1])) / 2.0
    got = ds["cov_systematic_real"].values[k]
    assert np.max(np.abs(got - expect)) <= 1e-12 * np.max(np.abs(expect))
    assert bool(ds["universes_converged"].values[k])  # a unisim has no Monte-Carlo error
