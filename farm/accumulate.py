"""Partial sums of one block of events over every universe: the unit of work and of reduction.

A block is a fixed range of rows (``farm.samples.blocks.BLOCK_EVENTS``) of an event store. Its
partial sums are (a) the flux tensors from which every flux universe follows by a matrix product,
and (b) the histograms of the universes that need per-event weights (knobs, bootstrap). Partial
sums add; :func:`tree_reduce` adds them in a fixed k-ary tree over block index, so the floating-point
result is the same however blocks are grouped into shards, tasks or workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from farm.reweight.bincache import BIN_CACHE
from farm.reweight.binning import (
    Binning,
    BlockBins,
    bin_block,
    bin_block_with_flux,
    fill_flux_table,
)
from farm.reweight.flux import FluxTensors, tensors_from_table
from farm.reweight.knobs import KnobContext, required_columns
from farm.reweight.per_event import event_universes
from farm.reweight.shortcuts import fast_histograms as _fast_histograms
from farm.reweight.weightsets import chunk_histograms
from farm.systematics.fluxbins import FluxBins

__all__ = [
    "AccumulationSpec",
    "PartialSums",
    "bin_events",
    "block_partial_sums",
    "columns_needed",
    "columns_once_binned",
    "tree_reduce",
]


@dataclass(frozen=True, kw_only=True, eq=False)
class AccumulationSpec:
    """Everything a worker needs to turn a block of events into partial sums (picklable)."""

    observable: str
    reco_edges: np.ndarray
    truth_column: str | None
    truth_edges: np.ndarray | None
    flux_bins: FluxBins
    event_universes: np.ndarray
    """Universe indices filled per event (knobs and bootstrap), in order."""
    knob_values: Mapping[str, np.ndarray]
    """Per knob, its value in each of ``event_universes``."""
    bootstrap_replica: np.ndarray
    """Per entry of ``event_universes``, its bootstrap replica (−1: none)."""
    bootstrap_key: int
    knob_context: KnobContext
    clamp: tuple[float, float] | None = None
    universes_per_block: int = 64
    with_flux: bool = True
    """Fill the flux tensors (and the fake-data signal): work items of the flux chunk do."""
    event_flux_ratio: np.ndarray | None = None
    """(K, F) flux ratio of each per-event universe (the joint all-knob set varies the flux too)."""
    fake_data_model: str | None = None
    """module:callable r(enu_mev, flavor): per-event weight ratio of the fake-data model (signal only)."""
    event_systematic: np.ndarray | None = None
    """Per entry of ``event_universes``, the index of the systematic that owns it."""
    event_weight_set: np.ndarray | None = None
    """Per entry of ``event_universes``, the index into ``weight_sets`` of the weight set whose
    column it is (−1: none); None when no systematic is a weight set."""
    event_weight_column: np.ndarray | None = None
    """Per entry of ``event_universes``, its column in that weight set."""
    weight_sets: tuple[tuple[str, str, bool], ...] = ()
    """(name, identity: its shard checksums, whether it holds only physical weights) of every
    weight set the run uses."""
    unphysical_weights: str = "refuse"
    """What a weight set's NaN, infinite or negative weight becomes (farm.reweight.weightsets)."""
    knob_span: Mapping[str, tuple[float, float, float, int]] | None = None
    """Per knob varied in a chunk, (min, max, median, count) of the values of *all* universes of
    the systematic that owns the chunk: the shortcuts take their expansion range and path from
    it, so a universe gets the same bits in whichever chunk it is computed."""

    @property
    def n_reco(self) -> int:
        return self.reco_edges.size - 1

    @cached_property
    def binning(self) -> Binning:
        """The binning in the form the compiled kernels read (farm.reweight.binning)."""
        return Binning.of(
            self.observable, self.reco_edges, self.truth_column, self.truth_edges, self.flux_bins
        )

    def for_chunk(self, lo: int, hi: int, *, with_flux: bool) -> AccumulationSpec:
        """The spec of one work-item chunk: per-event universes [lo, hi), flux tensors or not."""
        return replace(
            self,
            event_universes=self.event_universes[lo:hi],
            knob_values={k: v[lo:hi] for k, v in self.knob_values.items()},
            bootstrap_replica=self.bootstrap_replica[lo:hi],
            event_flux_ratio=None
            if self.event_flux_ratio is None
            else self.event_flux_ratio[lo:hi],
            with_flux=with_flux,
            event_systematic=None
            if self.event_systematic is None
            else self.event_systematic[lo:hi],
            event_weight_set=None
            if self.event_weight_set is None
            else self.event_weight_set[lo:hi],
            event_weight_column=None
            if self.event_weight_column is None
            else self.event_weight_column[lo:hi],
            knob_span=self._span(lo, hi),
        )

    def _span(self, lo: int, hi: int) -> dict[str, tuple[float, float, float, int]] | None:
        if self.event_systematic is None or hi <= lo:
            return None
        owners = np.unique(self.event_systematic[lo:hi])
        if owners.size != 1:
            return None
        rows = self.event_systematic == owners[0]
        span = {}
        for name, values in self.knob_values.items():
            if values[lo:hi].any():
                own = values[rows]
                span[name] = (
                    float(own.min()),
                    float(own.max()),
                    float(np.median(own)),
                    int(own.size),
                )
        return span

    @property
    def n_truth(self) -> int:
        return 1 if self.truth_edges is None else self.truth_edges.size - 1


def columns_needed(spec: AccumulationSpec) -> tuple[str, ...]:
    """The columns a block is read with: a chunk of only the flux tensors (no per-event
    universe) reads just what it bins and fills; ``event_id``, ``channel`` and the knobs'
    columns are read by per-event universes only."""
    names = {"enu_true", "flavor", "is_signal", "selected", "w_nominal", spec.observable}
    if spec.truth_column is not None:
        names.add(spec.truth_column)
    if spec.event_universes.size:
        names.update(("event_id", "channel"))
        for parameter in spec.knob_values:
            names.update(required_columns(parameter, spec.knob_context))
    return tuple(sorted(names))


def columns_once_binned(spec: AccumulationSpec) -> tuple[str, ...]:
    """The columns of :func:`columns_needed` a block is read with when its bins are known
    (farm.reweight.bincache.BIN_CACHE): the nominal weight and selection, the event id for
    bootstrap replicas, and the channel and the columns of the knobs that vary in the chunk.
    Not what only binning reads (observable, truth column, E_ν, flavour, signal flag) nor the
    columns of knobs at their nominal value; a path that asks for one of those after all is
    given it (:func:`workers.tasks.compute_item` reads it then)."""
    names = {"selected", "w_nominal"}
    if (spec.bootstrap_replica >= 0).any():
        names.add("event_id")  # the bootstrap's hash; no knob reads it
    if spec.event_universes.size:
        varied = [p for p, values in spec.knob_values.items() if values.any()]
        if varied:
            names.add("channel")
        for parameter in varied:
            names.update(required_columns(parameter, spec.knob_context))
    return tuple(sorted(names))


@dataclass(kw_only=True)
class PartialSums:
    flux: FluxTensors | None
    """Flux tensors (None in work items that compute only per-event universes)."""
    signal: np.ndarray
    """(K, I, J) selected signal in each per-event universe."""
    background: np.ndarray
    """(K, I)."""
    truth: np.ndarray
    """(K, J) all signal."""
    truth_nominal: np.ndarray
    """(K, J) all signal with the flux at nominal (differs from ``truth`` in the all-knob set)."""
    clamped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """(K,) events whose weight the clamping policy changed, per universe."""
    n_events: int = 0
    fake_signal: np.ndarray | None = None
    """(I,) selected signal reweighted to the fake-data model, when one is configured."""

    def __add__(self, other: PartialSums) -> PartialSums:
        return PartialSums(
            flux=None if self.flux is None else self.flux + other.flux,
            signal=self.signal + other.signal,
            background=self.background + other.background,
            truth=self.truth + other.truth,
            truth_nominal=self.truth_nominal + other.truth_nominal,
            clamped=self.clamped + other.clamped,
            n_events=self.n_events + other.n_events,
            fake_signal=None if self.fake_signal is None else self.fake_signal + other.fake_signal,
        )


def _event_universe_histograms(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    rows: slice,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
    flux_bin: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ev = event_universes(cols, spec, rows, reco_bin, flux_bin)
    n_u, n = ev.weight.shape
    n_reco, n_truth = spec.n_reco, spec.n_truth
    universe = np.arange(n_u)[:, None]
    sig = ev.selected & signal[None, :]
    bkg = ev.selected & ~signal[None, :]
    u_sig = np.broadcast_to(universe, (n_u, n))[sig]
    sig_idx = (u_sig * n_reco + ev.reco[sig]) * n_truth + np.broadcast_to(truth_bin, (n_u, n))[sig]
    hist_sig = np.bincount(sig_idx, weights=ev.weight[sig], minlength=n_u * n_reco * n_truth)
    bkg_idx = np.broadcast_to(universe, (n_u, n))[bkg] * n_reco + ev.reco[bkg]
    hist_bkg = np.bincount(bkg_idx, weights=ev.weight[bkg], minlength=n_u * n_reco)
    truth_w = ev.truth_weight[:, signal]
    truth_idx = (universe * n_truth + truth_bin[signal][None, :]).ravel()
    hist_truth = np.bincount(truth_idx, weights=truth_w.ravel(), minlength=n_u * n_truth)
    if ev.truth_nominal_weight is ev.truth_weight:
        hist_truth_nominal = hist_truth
    else:
        hist_truth_nominal = np.bincount(
            truth_idx, weights=ev.truth_nominal_weight[:, signal].ravel(), minlength=n_u * n_truth
        )
    return (
        hist_sig.reshape(n_u, n_reco, n_truth),
        hist_bkg.reshape(n_u, n_reco),
        hist_truth.reshape(n_u, n_truth),
        hist_truth_nominal.reshape(n_u, n_truth),
        ev.clamped,
    )


def bin_events(
    cols: Mapping[str, np.ndarray], spec: AccumulationSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reco bin (−1 outside the reco range), truth bin, signal) of each event of a block.

    Signal outside the truth range is treated as background (seen but not measured): it is not
    signal here, and its truth bin is 0 like every non-signal event's. Binned by the compiled
    kernels of farm.reweight.binning, which give ``np.searchsorted``'s indices.
    """
    bins = bin_block(cols, spec.binning)
    return bins.reco, bins.truth, bins.signal


def _flux_and_bins(
    cols: Mapping[str, np.ndarray], spec: AccumulationSpec, key: tuple | None
) -> tuple[FluxTensors | None, BlockBins | None]:
    """The block's flux tensors (flux chunk) and bins: from this process's cache when the block
    was binned before, else computed — for the flux chunk in the same pass as the tensors."""
    binning = spec.binning
    bins = BIN_CACHE.get(key) if key is not None else None
    if not spec.with_flux:
        if bins is None:
            bins = bin_block(cols, binning)
            if key is not None:
                BIN_CACHE.put(key, bins)
        return None, bins
    if bins is None:
        keep = (
            (key is not None and BIN_CACHE.budget_bytes > 0)
            or spec.event_universes.size > 0
            or spec.fake_data_model is not None
        )
        table, bins = bin_block_with_flux(cols, binning, keep=keep)
        if key is not None and bins is not None:
            BIN_CACHE.put(key, bins)
        if bins is not None and (spec.event_universes.size or spec.fake_data_model is not None):
            bins = bins.widened()
    else:
        table = fill_flux_table(cols, bins, binning)
    return tensors_from_table(table, n_reco=binning.n_reco, n_truth=binning.n_truth), bins


def block_partial_sums(
    cols: Mapping[str, np.ndarray], spec: AccumulationSpec, *, block_key: tuple | None = None
) -> PartialSums:
    """Partial sums of one block of events (a dict of columns) over every universe.

    ``block_key`` names the block's rows and its store's content (:func:`workers.tasks.compute_item`
    passes one): its bins are then computed once per process and shared by every chunk of the
    block (farm.reweight.bincache.BIN_CACHE).
    """
    n = cols["w_nominal"].size
    key = None if block_key is None else (*block_key, spec.binning.digest)
    tensors, bins = _flux_and_bins(cols, spec, key)
    k = spec.event_universes.size
    if bins is None:  # only the flux tensors were asked for
        return PartialSums(
            flux=tensors,
            signal=np.zeros((0, spec.n_reco, spec.n_truth)),
            background=np.zeros((0, spec.n_reco)),
            truth=np.zeros((0, spec.n_truth)),
            truth_nominal=np.zeros((0, spec.n_truth)),
            clamped=np.zeros(0, dtype=np.int64),
            n_events=n,
            fake_signal=None,
        )
    reco_bin, truth_bin, signal = bins.reco, bins.truth, bins.signal
    weighted = spec.event_weight_set is not None and bool((spec.event_weight_set >= 0).any())
    fast = _fast_histograms(cols, spec, reco_bin, truth_bin, signal) if k and not weighted else None
    if weighted:  # columns of a weight set: one compiled pass (farm.reweight.weightsets)
        sig, bkg, truth, clamped = chunk_histograms(cols, spec, reco_bin, truth_bin, signal)
        truth_nominal = truth
    elif fast is not None:
        sig, bkg, truth = fast
        truth_nominal = truth
        clamped = np.zeros(k, dtype=np.int64)
    else:
        sig = np.zeros((k, spec.n_reco, spec.n_truth))
        bkg = np.zeros((k, spec.n_reco))
        truth = np.zeros((k, spec.n_truth))
        truth_nominal = np.zeros((k, spec.n_truth))
        clamped = np.zeros(k, dtype=np.int64)
        flux_bin = bins.flux
        for start in range(0, k, spec.universes_per_block):
            rows = slice(start, min(start + spec.universes_per_block, k))
            sig[rows], bkg[rows], truth[rows], truth_nominal[rows], clamped[rows] = (
                _event_universe_histograms(cols, spec, rows, reco_bin, truth_bin, signal, flux_bin)
            )
    fake = None
    if spec.fake_data_model is not None and spec.with_flux:
        fake = _fake_signal(cols, spec, reco_bin, signal)
    return PartialSums(
        flux=tensors,
        signal=sig,
        background=bkg,
        truth=truth,
        truth_nominal=truth_nominal,
        clamped=clamped,
        n_events=n,
        fake_signal=fake,
    )


def _fake_signal(
    cols: Mapping[str, np.ndarray], spec: AccumulationSpec, reco_bin: np.ndarray, signal: np.ndarray
) -> np.ndarray:
    """Selected signal by reco bin with each event reweighted by the fake-data model's ratio."""
    from farm.analysis.predict import load_model
    from farm.store.schema import FLAVOR_PDG

    model = load_model(str(spec.fake_data_model))
    keep = signal & cols["selected"] & (reco_bin >= 0)
    ratio = np.ones(int(keep.sum()))
    flavors = cols["flavor"][keep]
    energies = cols["enu_true"][keep]
    for name, code in FLAVOR_PDG.items():
        m = flavors == code
        if m.any():
            r = np.asarray(model(energies[m], name), dtype=np.float64)
            if r.shape != energies[m].shape or not np.all(np.isfinite(r)) or (r < 0).any():
                msg = f"[data.model] {spec.fake_data_model}: must return one finite, non-negative ratio per event"
                raise ValueError(msg)
            ratio[m] = r
    return np.bincount(
        reco_bin[keep], weights=cols["w_nominal"][keep] * ratio, minlength=spec.n_reco
    )


def tree_reduce(
    parts: Iterable[PartialSums], arity: int = 8, *, tail: PartialSums | None = None
) -> PartialSums:
    """Sum an ordered stream of partial sums in a fixed k-ary tree (streaming, O(k log N) memory).

    Leaves are grouped in consecutive runs of ``arity``; each full run is summed left to right and
    becomes one node of the next level. At the end, the incomplete runs are closed from the lowest
    level up. The tree depends only on the number of leaves, never on timing or grouping.

    The tree composes: reducing each aligned run of ``arity**m`` leaves (a work item) gives the
    level-m nodes, and reducing those nodes with ``tail`` = the reduction of the last, incomplete
    run gives exactly the result of reducing all leaves at once. This is what lets a distributed
    run of any number of work items reproduce the in-process numbers bit for bit.
    """
    levels: list[list[PartialSums]] = []
    for part in parts:
        carry = part
        level = 0
        while True:
            if level == len(levels):
                levels.append([])
            levels[level].append(carry)
            if len(levels[level]) < arity:
                break
            carry = _sum(levels[level])
            levels[level] = []
            level += 1
    result: PartialSums | None = tail
    for pending in levels:
        if result is not None:
            pending = [*pending, result]
        result = _sum(pending) if pending else result
    if result is None:
        msg = "nothing to reduce: the event store has no events"
        raise ValueError(msg)
    return result


def _sum(nodes: list[PartialSums]) -> PartialSums:
    total = nodes[0]
    for node in nodes[1:]:
        total = total + node
    return total
