"""Specifications of the reweighting kernels and the reduction (issue 3, docs/internals.md §3, §4).

farm.reweight.flux (factorised flux universes), farm.reweight.knobs through farm.accumulate
(per-event universes and the weight policy), farm.reweight.bootstrap (MC-statistics Poisson
weights), farm.accumulate.tree_reduce and the in-process runner over two shard layouts.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from numpy.testing import assert_allclose, assert_array_equal

from farm.accumulate import AccumulationSpec, PartialSums, block_partial_sums, tree_reduce
from farm.analysis.histograms import assemble_histograms
from farm.analysis.pipeline import prepare
from farm.config import (
    FarmConfig,
    SystematicSection,
    examples_dir,
    load_config,
    parse_config,
    store_path,
)
from farm.physics.response import CevnsResponse, EfficiencyCurve, Quenching
from farm.reweight.bootstrap import poisson_weights
from farm.reweight.flux import FluxTensors, apply_flux_universes, flux_tensors, reweight_loop
from farm.reweight.knobs import KnobContext
from farm.reweight.readout_shift import Readout, ScaledReadout
from farm.runner import reduce_inprocess, run_inprocess
from farm.samples.generate import generate_store
from farm.store.reader import EventStore
from farm.store.schema import Channel
from farm.systematics.fluxbins import FluxBins
from farm.systematics.universes import build_universe_set

RECO_EDGES_PE = np.array([5.0, 10.0, 20.0, 40.0, 60.0])
TRUTH_EDGES_MEV = np.array([0.0, 20.0, 40.0, 60.0])
BINS = FluxBins.from_mapping(
    {"nue": [0.0, 10.0, 20.0, 30.0, 40.0, 53.0], "numu": [29.0, 30.5], "numubar": [0, 20, 53]}
)


# ---------------------------------------------------------------------------------------------
# helpers: synthetic events
# ---------------------------------------------------------------------------------------------


def _kernel_inputs(
    rng: np.random.Generator, n: int, n_flux: int, n_reco: int, n_truth: int
) -> dict:
    """Random per-event inputs of the flux kernels (bins −1 = outside the range)."""
    return {
        "w0": rng.lognormal(0.0, 1.0, n),
        "flux_bin": rng.integers(0, n_flux, n).astype(np.int32),
        "reco_bin": rng.integers(-1, n_reco, n),
        "truth_bin": rng.integers(-1, n_truth, n),
        "is_signal": rng.random(n) < 0.7,
        "selected": rng.random(n) < 0.6,
    }


def _event_columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A block of store-like columns: CEvNS signal from three flavours, BRN with no neutrino."""
    flavor = rng.choice(np.array([12, 14, -14, 0]), n)
    enu = np.where(flavor == 14, 29.79, rng.uniform(0.0, 60.0, n))
    channel = np.where(flavor == 0, Channel.BRN, Channel.CEVNS).astype(np.int8)
    return {
        "event_id": rng.permutation(n).astype(np.uint64) * np.uint64(7919) + np.uint64(11),
        "enu_true": enu,
        "flavor": flavor.astype(np.int16),
        "channel": channel,
        "is_signal": flavor != 0,
        "selected": rng.random(n) < 0.7,
        "w_nominal": rng.lognormal(-3.0, 0.5, n),
        "reco_pe": rng.uniform(0.0, 70.0, n),
    }


def _spec(
    *,
    event_universes: Sequence[int] = (),
    knob_values: dict[str, np.ndarray] | None = None,
    bootstrap_replica: Sequence[int] | None = None,
    clamp: tuple[float, float] | None = None,
    universes_per_block: int = 64,
    readout: Readout | None = None,
) -> AccumulationSpec:
    k = len(event_universes)
    return AccumulationSpec(
        observable="reco_pe",
        reco_edges=RECO_EDGES_PE,
        truth_column="enu_true",
        truth_edges=TRUTH_EDGES_MEV,
        flux_bins=BINS,
        event_universes=np.asarray(event_universes, dtype=np.int64),
        knob_values=knob_values or {},
        bootstrap_replica=np.full(k, -1)
        if bootstrap_replica is None
        else np.asarray(bootstrap_replica),
        bootstrap_key=4242,
        knob_context=KnobContext(
            observable="reco_pe",
            nuclei_by_a={},
            readout=ScaledReadout(column="reco_pe") if readout is None else readout,
        ),
        clamp=clamp,
        universes_per_block=universes_per_block,
    )


_TURN_ON_PE = CevnsResponse(
    readout="pe",
    quenching=Quenching(model="csi"),
    efficiency=EfficiencyCurve(kind="erf", threshold=8.0, width=1.5),
)
"""A photoelectron readout with a smooth turn-on at 8 PE."""


def _explicit_histograms(
    cols: dict[str, np.ndarray], weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signal[i, j], background[i], truth[j]) of one universe from explicit per-event weights."""
    reco = np.searchsorted(RECO_EDGES_PE, cols["reco_pe"], side="right") - 1
    truth = np.searchsorted(TRUTH_EDGES_MEV, cols["enu_true"], side="right") - 1
    in_reco = cols["selected"] & (reco >= 0) & (reco < RECO_EDGES_PE.size - 1)
    in_truth = (truth >= 0) & (truth < TRUTH_EDGES_MEV.size - 1)
    signal = cols["is_signal"] & in_truth  # signal outside the truth range counts as background
    n_i, n_j = RECO_EDGES_PE.size - 1, TRUTH_EDGES_MEV.size - 1
    s = in_reco & signal
    b = in_reco & ~signal
    sig = np.bincount(reco[s] * n_j + truth[s], weights=weight[s], minlength=n_i * n_j)
    return (
        sig.reshape(n_i, n_j),
        np.bincount(reco[b], weights=weight[b], minlength=n_i),
        np.bincount(truth[signal], weights=weight[signal], minlength=n_j),
    )


# ---------------------------------------------------------------------------------------------
# flux bins
# ---------------------------------------------------------------------------------------------


def test_flux_bin_index_runs_over_sorted_flavours_then_energy_with_an_untouched_last_bin() -> None:
    # flavours sorted: nue (5 bins: 0..4), numu (1 bin: 5), numubar (2 bins: 6, 7); untouched = 8
    flavor = np.array([12, 12, 12, 14, 14, -14, -14, 0, -12, 12])
    enu = np.array([0.0, 19.999, 52.9, 29.79, 31.0, 19.0, 20.0, 30.0, 30.0, 53.0])
    assert BINS.n_bins == 9
    assert_array_equal(BINS.index(flavor, enu), [0, 1, 4, 5, 8, 6, 7, 8, 8, 8])


# ---------------------------------------------------------------------------------------------
# 1. factorised flux path == per-universe loop == per-event weights
# ---------------------------------------------------------------------------------------------


def test_factorised_flux_path_equals_the_per_universe_reweight_loop_to_1e12() -> None:
    rng = np.random.default_rng(31)
    n_flux, n_reco, n_truth = 12, 10, 4
    ev = _kernel_inputs(rng, 200_000, n_flux, n_reco, n_truth)
    ratio = 1.0 + 0.1 * rng.standard_normal((50, n_flux))
    ratio[:, -1] = 1.0
    tensors = flux_tensors(**ev, n_flux=n_flux, n_reco=n_reco, n_truth=n_truth)
    factorised, _, _ = apply_flux_universes(ratio, tensors)
    loop = reweight_loop(ratio, **ev, n_reco=n_reco, n_truth=n_truth)
    assert factorised.shape == (50, n_reco, n_truth)
    assert loop.min() > 0.0  # every bin is filled, so relative agreement is meaningful everywhere
    assert_allclose(factorised, loop, rtol=1e-12, atol=0.0)


def test_factorised_background_and_truth_equal_explicit_per_event_weights_to_1e12() -> None:
    rng = np.random.default_rng(32)
    n_flux, n_reco, n_truth = 9, 6, 3
    ev = _kernel_inputs(rng, 200_000, n_flux, n_reco, n_truth)
    ratio = 1.0 + 0.1 * rng.standard_normal((50, n_flux))
    sig_f, bkg_f, truth_f = apply_flux_universes(
        ratio, flux_tensors(**ev, n_flux=n_flux, n_reco=n_reco, n_truth=n_truth)
    )
    in_reco = ev["selected"] & (ev["reco_bin"] >= 0)
    sig = in_reco & ev["is_signal"] & (ev["truth_bin"] >= 0)
    bkg = in_reco & ~ev["is_signal"]
    truth = ev["is_signal"] & (ev["truth_bin"] >= 0)
    for u in range(ratio.shape[0]):
        w = ev["w0"] * ratio[u, ev["flux_bin"]]
        idx = ev["reco_bin"][sig] * n_truth + ev["truth_bin"][sig]
        expected_sig = np.bincount(idx, weights=w[sig], minlength=n_reco * n_truth)
        assert_allclose(sig_f[u].ravel(), expected_sig, rtol=1e-12, atol=0.0)
        assert_allclose(
            bkg_f[u], np.bincount(ev["reco_bin"][bkg], weights=w[bkg], minlength=n_reco), rtol=1e-12
        )
        assert_allclose(
            truth_f[u],
            np.bincount(ev["truth_bin"][truth], weights=w[truth], minlength=n_truth),
            rtol=1e-12,
        )


def test_flux_universes_from_block_partial_sums_equal_per_event_flux_weights() -> None:
    rng = np.random.default_rng(33)
    cols = _event_columns(rng, 100_000)
    systematics = [
        SystematicSection(
            name="flux_shape", kind="flux", normalization=0.05, shape=0.08, throws=20
        ),
    ]
    universes = build_universe_set(systematics, BINS, seed=5)
    sums = block_partial_sums(cols, _spec())
    hists = assemble_histograms(sums, universes, np.zeros(0, dtype=np.int64), np.ones(BINS.n_bins))
    flux_bin = BINS.index(cols["flavor"], cols["enu_true"])
    assert np.unique(universes.flux_ratio[1:, :-1]).size > 100  # the bins really move independently
    for u in range(universes.n_universes):
        sig, bkg, truth = _explicit_histograms(
            cols, cols["w_nominal"] * universes.flux_ratio[u, flux_bin]
        )
        assert_allclose(hists.signal[u], sig, rtol=1e-12)
        assert_allclose(hists.background[u], bkg, rtol=1e-12)
        assert_allclose(hists.truth[u], truth, rtol=1e-12)


def test_factorised_and_per_event_paths_agree_to_1e12_where_both_apply() -> None:
    # A flux normalisation of (1 + v) on every touched flux bin and the per-event knob noqe_norm = v
    # are the same reweighting when every event is non-QE charged current with a neutrino inside
    # the flux edges: the first goes through R @ C, the second through per-event weights.
    rng = np.random.default_rng(34)
    n = 60_000
    cols = _event_columns(rng, n)
    cols["flavor"] = rng.choice(np.array([12, -14]), n).astype(np.int16)
    cols["enu_true"] = rng.uniform(0.0, 52.0, n)
    cols["channel"] = np.full(n, Channel.CC_OTHER, dtype=np.int8)
    cols["is_signal"] = rng.random(n) < 0.8
    shifts = np.array([0.0, 0.1, -0.07, 0.3, -0.25])
    sums = block_partial_sums(
        cols,
        _spec(
            event_universes=range(shifts.size),
            knob_values={"noqe_norm": shifts},
            universes_per_block=2,
        ),
    )
    ratio = np.ones((shifts.size, BINS.n_bins))
    ratio[:, :-1] += shifts[:, None]
    sig_f, bkg_f, truth_f = apply_flux_universes(ratio, sums.flux)
    assert sums.signal[0].sum() > 0 and sums.background[0].sum() > 0
    assert_allclose(sums.signal, sig_f, rtol=1e-12, atol=0.0)
    assert_allclose(sums.background, bkg_f, rtol=1e-12, atol=0.0)
    assert_allclose(sums.truth, truth_f, rtol=1e-12, atol=0.0)


# ---------------------------------------------------------------------------------------------
# per-event detector knobs: the detection probability moves, the produced signal does not
# ---------------------------------------------------------------------------------------------


def test_efficiency_knob_scales_selected_events_but_not_the_truth_counts() -> None:
    rng = np.random.default_rng(35)
    cols = _event_columns(rng, 50_000)
    sums = block_partial_sums(
        cols, _spec(event_universes=[1, 2], knob_values={"efficiency": np.array([0.1, -0.2])})
    )
    nominal_signal = sums.flux.signal.sum(axis=0)
    assert_allclose(sums.signal[0], 1.1 * nominal_signal, rtol=1e-12)
    assert_allclose(sums.signal[1], 0.8 * nominal_signal, rtol=1e-12)
    # BRN are beam neutrons seen by the same detector: their selection moves too
    assert_allclose(
        sums.background, np.outer([1.1, 0.8], sums.flux.background.sum(axis=0)), rtol=1e-12
    )
    assert_allclose(sums.truth, np.broadcast_to(sums.flux.truth.sum(axis=0), (2, 3)), rtol=1e-12)


def test_threshold_knob_reselects_each_event_with_its_own_threshold_and_keeps_truth() -> None:
    """A turn-on shift v re-selects every beam event by its stored threshold θ: selected when
    k − v ≥ θ, exactly as a sample generated with the shifted turn-on (same θ) would be."""
    rng = np.random.default_rng(36)
    cols = _event_columns(rng, 50_000)
    cols["reco_pe"] = np.round(cols["reco_pe"])
    theta = _TURN_ON_PE.selection_threshold(rng.random(50_000))
    cols["selection_threshold"] = theta
    cols["selected"] = _TURN_ON_PE.selected(cols["reco_pe"], theta)
    shift_pe = 1.5
    sums = block_partial_sums(
        cols,
        _spec(
            event_universes=[1],
            knob_values={"threshold": np.array([shift_pe])},
            readout=_TURN_ON_PE,
        ),
    )
    moved = {**cols, "selected": cols["reco_pe"] - shift_pe >= theta.astype(np.float64)}
    sig, bkg, _ = _explicit_histograms(moved, cols["w_nominal"])
    _, _, truth = _explicit_histograms(cols, cols["w_nominal"])
    assert_allclose(sums.signal[0], sig, rtol=1e-12, atol=0)
    assert_allclose(sums.background[0], bkg, rtol=1e-12, atol=0)
    assert_allclose(sums.truth[0], truth, rtol=1e-12, atol=0)
    assert sums.signal[0].sum() < 0.98 * sums.flux.signal.sum()  # a higher threshold loses events


def test_energy_scale_knob_shifts_the_observable_of_beam_events_and_not_off_beam_ones() -> None:
    rng = np.random.default_rng(42)
    cols = _event_columns(rng, 50_000)
    off_beam = (cols["flavor"] == 0) & (rng.random(50_000) < 0.5)
    cols["channel"] = np.where(off_beam, Channel.SSB, cols["channel"]).astype(np.int8)
    shifts = np.array([0.05, -0.08])
    sums = block_partial_sums(
        cols, _spec(event_universes=[1, 2], knob_values={"energy_scale": shifts})
    )
    for u, v in enumerate(shifts):
        shifted = {**cols, "reco_pe": cols["reco_pe"] * np.where(off_beam, 1.0, 1.0 + v)}
        sig, bkg, truth = _explicit_histograms(shifted, cols["w_nominal"])
        assert_allclose(sums.signal[u], sig, rtol=1e-12)
        assert_allclose(sums.background[u], bkg, rtol=1e-12)
        assert_allclose(sums.truth[u], truth, rtol=1e-12)  # a lateral shift never changes truth
    nominal = sums.flux.signal.sum(axis=0)
    assert np.abs(sums.signal[0] / nominal - 1.0).max() > 0.01  # events really migrate


# ---------------------------------------------------------------------------------------------
# 3. MC-statistics bootstrap weights
# ---------------------------------------------------------------------------------------------


def test_bootstrap_weights_are_poisson_with_mean_one_and_variance_one() -> None:
    ids = np.arange(5_000, dtype=np.uint64) * np.uint64(2_654_435_761)
    w = poisson_weights(ids, np.arange(200), key=4242)  # 10⁶ draws
    n = w.size
    # Poisson(1): mean 1, variance 1, fourth central moment 4 → σ(s²) = sqrt((4 − 1)/n)
    assert abs(w.mean() - 1.0) < 5.0 / math.sqrt(n)
    assert abs(w.var() - 1.0) < 5.0 * math.sqrt(3.0 / n)
    p0 = math.exp(-1.0)
    assert abs(np.mean(w == 0.0) - p0) < 5.0 * math.sqrt(p0 * (1 - p0) / n)
    counts = np.bincount(np.minimum(w.astype(np.int64), 5).ravel(), minlength=6)
    expected = n * np.append(
        scipy.stats.poisson.pmf(np.arange(5), 1.0), scipy.stats.poisson.sf(4, 1.0)
    )
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-3
    assert np.all(w == np.round(w))


def test_bootstrap_replicas_are_uncorrelated() -> None:
    w = poisson_weights(np.arange(200_000, dtype=np.uint64), np.arange(4), key=1)
    corr = np.corrcoef(w)
    off_diagonal = corr[~np.eye(4, dtype=bool)]
    assert np.abs(off_diagonal).max() < 5.0 / math.sqrt(200_000)


def test_bootstrap_weight_of_an_event_is_independent_of_order_and_partition() -> None:
    rng = np.random.default_rng(37)
    ids = rng.integers(0, 2**63, 10_000, dtype=np.uint64)
    replicas = np.arange(30)
    whole = poisson_weights(ids, replicas, key=99)
    perm = rng.permutation(ids.size)
    assert_array_equal(poisson_weights(ids[perm], replicas, key=99), whole[:, perm])
    parts = [
        poisson_weights(ids[a:b], replicas, key=99)
        for a, b in ((0, 3_333), (3_333, 3_334), (3_334, 10_000))
    ]
    assert_array_equal(np.concatenate(parts, axis=1), whole)
    assert_array_equal(poisson_weights(ids, replicas[7:9], key=99), whole[7:9])


def test_bootstrap_weights_change_with_the_key_and_the_replica() -> None:
    ids = np.arange(10_000, dtype=np.uint64)
    a = poisson_weights(ids, np.array([0, 1]), key=1)
    b = poisson_weights(ids, np.array([0]), key=2)
    assert np.mean(a[0] != a[1]) > 0.5
    assert np.mean(a[0] != b[0]) > 0.5


def test_bootstrap_histograms_do_not_depend_on_event_order_or_blocking() -> None:
    rng = np.random.default_rng(38)
    cols = _event_columns(rng, 40_000)
    spec = _spec(event_universes=[1, 2, 3], bootstrap_replica=[0, 1, 2])
    whole = block_partial_sums(cols, spec)
    perm = rng.permutation(40_000)
    shuffled = block_partial_sums({k: v[perm] for k, v in cols.items()}, spec)
    halves = block_partial_sums(
        {k: v[:17_000] for k, v in cols.items()}, spec
    ) + block_partial_sums({k: v[17_000:] for k, v in cols.items()}, spec)
    for other in (shuffled, halves):
        assert_allclose(other.signal, whole.signal, rtol=1e-12)
        assert_allclose(other.background, whole.background, rtol=1e-12)
        assert_allclose(other.truth, whole.truth, rtol=1e-12)
    # and the replicas really differ from the central value (about 1/sqrt(N_eff) per bin)
    assert np.abs(whole.truth / whole.flux.truth.sum(axis=0) - 1.0).max() > 1e-3


# ---------------------------------------------------------------------------------------------
# 6. weight policy
# ---------------------------------------------------------------------------------------------


def test_clamping_counts_and_clips_every_event_a_knob_pushes_outside_the_bounds() -> None:
    rng = np.random.default_rng(39)
    cols = _event_columns(rng, 30_000)
    n_brn = int(np.sum(cols["channel"] == Channel.BRN))
    shifts = np.array([0.25, -0.25, 0.05])  # BRN weights 1.25, 0.75, 1.05 against bounds [0.9, 1.1]
    sums = block_partial_sums(
        cols, _spec(event_universes=[1, 2, 3], knob_values={"brn_norm": shifts}, clamp=(0.9, 1.1))
    )
    assert n_brn > 1000
    assert_array_equal(sums.clamped, [n_brn, n_brn, 0])
    nominal_bkg = sums.flux.background.sum(axis=0)
    assert_allclose(sums.background, np.outer([1.1, 0.9, 1.05], nominal_bkg), rtol=1e-12)


def test_clamped_counts_reach_the_histograms_of_their_universes() -> None:
    rng = np.random.default_rng(40)
    cols = _event_columns(rng, 20_000)
    systematics = [
        SystematicSection(name="flux", kind="flux", normalization=0.1, throws=3),
        SystematicSection(name="brn", kind="knob", parameter="brn_norm", mode="unisim", sigma=0.25),
    ]
    universes = build_universe_set(systematics, BINS, seed=1)
    event_universes = universes.universes_of("brn")
    spec = _spec(
        event_universes=event_universes,
        knob_values={"brn_norm": universes.knobs["brn_norm"][event_universes]},
        clamp=(0.8, 1.2),
    )
    hists = assemble_histograms(
        block_partial_sums(cols, spec), universes, event_universes, np.ones(BINS.n_bins)
    )
    n_brn = int(np.sum(cols["channel"] == Channel.BRN))
    assert_array_equal(hists.clamped, [0, 0, 0, 0, n_brn, n_brn])


def test_no_clamping_policy_records_zero_even_for_extreme_weights() -> None:
    rng = np.random.default_rng(41)
    cols = _event_columns(rng, 20_000)
    sums = block_partial_sums(
        cols, _spec(event_universes=[1], knob_values={"brn_norm": np.array([5.0])})
    )
    assert_array_equal(sums.clamped, [0])
    assert_allclose(sums.background[0], 6.0 * sums.flux.background.sum(axis=0), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# 4. fixed-shape tree reduction
# ---------------------------------------------------------------------------------------------


def _leaf(rng: np.random.Generator) -> PartialSums:
    """Partial sums with a wide dynamic range, so the order of additions shows in the last bits."""

    def values(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 7, shape)

    return PartialSums(
        flux=FluxTensors(signal=values(4, 3, 2), background=values(4, 3), truth=values(4, 2)),
        signal=values(5, 3, 2),
        background=values(5, 3),
        truth=values(5, 2),
        truth_nominal=values(5, 2),
        clamped=rng.integers(0, 10, 5),
        n_events=int(rng.integers(1, 100)),
    )


def _left_to_right(nodes: list[PartialSums]) -> PartialSums:
    total = nodes[0]
    for node in nodes[1:]:
        total = total + node
    return total


def _reference_tree(leaves: list[PartialSums], arity: int) -> PartialSums:
    """The documented tree, built level by level: full runs of ``arity`` become parent nodes;
    each level's incomplete tail waits, and tails are closed from the lowest level up."""
    tails: list[list[PartialSums]] = []
    level = list(leaves)
    while len(level) >= arity:
        full = len(level) // arity * arity
        tails.append(level[full:])
        level = [_left_to_right(level[i : i + arity]) for i in range(0, full, arity)]
    tails.append(level)
    result: PartialSums | None = None
    for tail in tails:
        nodes = [*tail, result] if result is not None else tail
        result = _left_to_right(nodes) if nodes else result
    assert result is not None
    return result


def _assert_sums_identical(a: PartialSums, b: PartialSums) -> None:
    for name in ("signal", "background", "truth"):
        assert np.array_equal(getattr(a.flux, name), getattr(b.flux, name)), f"flux.{name}"
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.clamped, b.clamped)
    assert a.n_events == b.n_events


@pytest.mark.parametrize(
    ("n_leaves", "arity"), [(1, 8), (8, 8), (10, 3), (64, 8), (77, 8), (29, 2)]
)
def test_tree_reduce_adds_in_the_documented_fixed_tree(n_leaves: int, arity: int) -> None:
    rng = np.random.default_rng(n_leaves * 100 + arity)
    leaves = [_leaf(rng) for _ in range(n_leaves)]
    streamed = tree_reduce(iter(leaves), arity)
    _assert_sums_identical(streamed, _reference_tree(leaves, arity))
    _assert_sums_identical(tree_reduce(list(leaves), arity), streamed)


def test_tree_reduce_order_is_visible_in_the_bits_so_the_tree_test_can_fail() -> None:
    rng = np.random.default_rng(7)
    leaves = [_leaf(rng) for _ in range(77)]
    assert not np.array_equal(tree_reduce(leaves, 8).signal, _left_to_right(leaves).signal)
    assert not np.array_equal(tree_reduce(leaves, 8).signal, tree_reduce(leaves, 3).signal)


def test_tree_reduce_with_arity_two_on_four_leaves_is_pairwise() -> None:
    rng = np.random.default_rng(8)
    a, b, c, d = (_leaf(rng) for _ in range(4))
    _assert_sums_identical(tree_reduce([a, b, c, d], 2), (a + b) + (c + d))


def test_tree_reduce_of_nothing_says_the_store_is_empty() -> None:
    with pytest.raises(ValueError, match="no events"):
        tree_reduce([], 8)


# ---------------------------------------------------------------------------------------------
# 4. the same numbers for any shard layout of the same events
# ---------------------------------------------------------------------------------------------

SHARD_SIZES = (65_536, 100_000)
N_EVENTS = 150_000
N_THROWS = 8


def _layout_config(shard_size: int) -> FarmConfig:
    return load_config(
        "sns-csi", **{"generation.events": N_EVENTS, "generation.shard_size": shard_size}
    )


@pytest.fixture(scope="module")
def two_shard_layouts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FarmConfig]]:
    """The sns-csi events written twice, with 65 536 and 100 000 rows per shard, at store_path(cfg)."""
    root = tmp_path_factory.mktemp("layouts")
    configs = [_layout_config(size) for size in SHARD_SIZES]
    for cfg in configs:
        generate_store(cfg, root / store_path(cfg))
    return root, configs


def test_the_two_stores_really_have_different_shard_layouts(two_shard_layouts) -> None:
    root, configs = two_shard_layouts
    ranges = [EventStore.open(root / store_path(cfg)).shard_ranges for cfg in configs]
    assert [tuple(r) for r in ranges[0]] == [(0, 65_536), (65_536, 131_072), (131_072, N_EVENTS)]
    assert [tuple(r) for r in ranges[1]] == [(0, 100_000), (100_000, N_EVENTS)]


@pytest.mark.slow
def test_reduced_partial_sums_are_bit_identical_for_two_shard_layouts(two_shard_layouts) -> None:
    root, configs = two_shard_layouts
    reduced = []
    for cfg in configs:
        store = EventStore.open(root / store_path(cfg))
        prep = prepare(cfg, store, universes=N_THROWS)
        reduced.append(reduce_inprocess(prep, store))
    assert reduced[0].n_events == N_EVENTS
    assert reduced[0].signal.shape[0] == prep.spec.event_universes.size > 40
    _assert_sums_identical(*reduced)


@pytest.mark.slow
def test_run_inprocess_dataset_is_bit_identical_for_two_shard_layouts(
    two_shard_layouts, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, configs = two_shard_layouts
    monkeypatch.chdir(root)
    messages: list[str] = []
    results = [run_inprocess(cfg, universes=N_THROWS, log=messages.append) for cfg in configs]
    assert not any("generating" in m for m in messages)  # both stores were found, not regenerated
    a, b = results
    assert (
        a.attrs["input_checksums"] != b.attrs["input_checksums"]
    )  # shards differ, numbers must not
    assert set(a.data_vars) == set(b.data_vars)
    for name in (
        "xsec_real",
        "xsec_nominal",
        "pred_real",
        "pred_nominal",
        "cov_real",
        "cov_nominal",
        "cov_stat_real",
        "cov_stat_nominal",
        "chi2_real_joint",
        "chi2_nominal_joint",
    ):
        assert name in a.data_vars
    for name in a.data_vars:
        assert np.array_equal(
            a[name].values, b[name].values, equal_nan=a[name].dtype.kind == "f"
        ), name
    assert a.sizes["universe"] == 1 + 5 * N_THROWS + 3 * 2 + N_THROWS + N_THROWS


def _clamp_config(clamp: list[float] | None) -> FarmConfig:
    """sns-csi on the 65 536-row store, with a flux normalisation and the BRN ±25% unisim only."""
    data = tomllib.loads((examples_dir() / "sns-csi.toml").read_text())
    data["generation"] |= {"events": N_EVENTS, "shard_size": SHARD_SIZES[0]}
    data["systematics"] = [
        {"name": "flux_normalization", "kind": "flux", "normalization": 0.1, "throws": 4},
        {
            "name": "brn_normalization",
            "kind": "knob",
            "parameter": "brn_norm",
            "mode": "unisim",
            "sigma": 0.25,
        },
    ]
    data["models"] = []
    if clamp is not None:
        data["analysis"]["weight_clamp"] = clamp
    return parse_config(data, source="clamp")


def test_the_weight_policy_and_its_counts_are_recorded_in_the_dataset(
    two_shard_layouts, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = two_shard_layouts
    monkeypatch.chdir(root)
    free, clamped = (
        run_inprocess(_clamp_config(c), log=lambda _: None) for c in (None, [0.9, 1.1])
    )
    store = EventStore.open(store_path(_clamp_config(None)))
    n_brn = int(np.sum(store.read_columns(["channel"], 0, N_EVENTS)["channel"] == Channel.BRN))
    assert n_brn > 100

    assert free.attrs["weight_policy"] == "none"
    assert free.attrs["weight_clamped_total"] == 0
    assert_array_equal(free["weight_clamped"].values, 0)

    assert "[0.9, 1.1]" in clamped.attrs["weight_policy"]
    assert_array_equal(
        clamped["weight_clamped"].values, [0, 0, 0, 0, 0, n_brn, n_brn]
    )  # cv, 4 flux, BRN ±σ
    assert clamped.attrs["weight_clamped_total"] == 2 * n_brn

    # BRN weights 1.25 and 0.75 become 1.1 and 0.9: the BRN shift shrinks to 0.1/0.25 of itself
    def brn_shift(ds):
        return ds["background_reco"].values[5:] - ds["background_reco"].values[0]

    assert np.all(np.abs(brn_shift(free)) > 0)
    assert_allclose(brn_shift(clamped), 0.4 * brn_shift(free), rtol=1e-9)
    # flux universes are untouched by the policy
    assert_array_equal(clamped["background_reco"].values[:5], free["background_reco"].values[:5])
