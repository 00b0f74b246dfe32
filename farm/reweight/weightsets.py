"""Universes from precomputed per-event weights (``kind = "weights"``): one pass fills them all.

A weight set gives each event e a weight r_eu in each universe u (GENIE ReWeight multisims,
MicroBooNE's weightsGenie, nusystematics). The universe's histograms are

    h_u[b] = Σ_{e → b} w0_e · r_eu ,

b the event's reco slot (signal reco × truth bin, or background reco bin) and its truth slot.
The block's weights (n, U) are read row by row in one compiled pass that adds w0_e r_eu into
row b of a (slots, U) table: each bin of each universe is summed in event order, exactly as
one ``bincount`` per universe does (the per-universe loop it replaces), so the two agree bit for
bit and any subset of the universes (a work item's chunk) gets the same bits.

The weight policy handles unphysical weights and counts, per universe, the events whose weight
it changed: a NaN, ±inf or negative r is refused (``unphysical_weights = "refuse"``, naming the
event), set to 0 or set to 1; then ``[analysis] weight_clamp = [lo, hi]`` clips r into [lo, hi].
Events that fill no histogram are not looked at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.reweight.compiled import CACHE, HAVE_NUMBA  # one numba switch, one kernel cache
from farm.reweight.fastpaths import BlockLayout
from farm.store.weights import weights_key

if TYPE_CHECKING:
    from farm.accumulate import AccumulationSpec
    from farm.systematics.universes import UniverseSet

__all__ = [
    "POLICIES",
    "UnphysicalWeightError",
    "chunk_histograms",
    "weight_columns",
    "weight_set_fill",
    "weight_set_loop",
]

POLICIES = {"refuse": 0, "zero": 1, "one": 2}
"""What an unphysical (NaN, ±inf, negative) weight becomes: an error, 0 or 1."""

numba: Any = None
if HAVE_NUMBA:
    import numba


class UnphysicalWeightError(ValueError):
    """A weight set holds a NaN, infinite or negative weight and the policy is to refuse."""


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE)
    def _fill_plain_numba(weights, w0, slot, slot_truth, n_slots):
        """Weights known physical and no clamp: one fused, vectorised pass per event row."""
        n, n_u = weights.shape
        out = np.zeros((n_slots, n_u))
        for e in range(n):
            s = slot[e]
            st = slot_truth[e]
            if s < 0 and st < 0:
                continue
            w = w0[e]
            row = weights[e]
            if s >= 0 and st >= 0:
                reco_row = out[s]
                truth_row = out[st]
                for u in range(n_u):
                    v = w * np.float64(row[u])
                    reco_row[u] += v
                    truth_row[u] += v
            else:
                target = out[s if s >= 0 else st]
                for u in range(n_u):
                    target[u] += w * np.float64(row[u])
        return out

    @numba.njit(nogil=True, cache=CACHE)
    def _fill_numba(weights, bits, limit, w0, slot, slot_truth, n_slots, policy, lo, hi, clamp):
        """Every weight looked at: a row whose largest bit pattern is below that of +inf holds
        only finite, non-negative weights (one vectorised integer max) and takes the fused
        pass; any other row (or every row, with a clamp) goes weight by weight."""
        n, n_u = weights.shape
        out = np.zeros((n_slots, n_u))
        changed = np.zeros(n_u, dtype=np.int64)
        r = np.empty(n_u)
        for e in range(n):
            s = slot[e]
            st = slot_truth[e]
            if s < 0 and st < 0:
                continue
            w = w0[e]
            row = weights[e]
            if not clamp:
                brow = bits[e]
                top = brow[0]
                for u in range(n_u):
                    b = brow[u]
                    if b > top:
                        top = b
                if top < limit:
                    if s >= 0 and st >= 0:
                        reco_row = out[s]
                        truth_row = out[st]
                        for u in range(n_u):
                            v = w * np.float64(row[u])
                            reco_row[u] += v
                            truth_row[u] += v
                    else:
                        target = out[s if s >= 0 else st]
                        for u in range(n_u):
                            target[u] += w * np.float64(row[u])
                    continue
            for u in range(n_u):
                x = np.float64(row[u])
                if not (x >= 0.0 and x < np.inf):  # NaN, ±inf, negative
                    if policy == 0:
                        return out, changed, e, u
                    x = 0.0 if policy == 1 else 1.0
                    changed[u] += 1
                if clamp:
                    if x < lo:
                        x = lo
                        changed[u] += 1
                    elif x > hi:
                        x = hi
                        changed[u] += 1
                r[u] = w * x
            if s >= 0:
                reco_row = out[s]
                for u in range(n_u):
                    reco_row[u] += r[u]
            if st >= 0:
                truth_row = out[st]
                for u in range(n_u):
                    truth_row[u] += r[u]
        return out, changed, -1, -1


def _fill_numpy(weights, w0, slot, slot_truth, n_slots, policy, lo, hi, clamp):
    n_u = weights.shape[1]
    out = np.zeros((n_slots, n_u))
    changed = np.zeros(n_u, dtype=np.int64)
    live = (slot >= 0) | (slot_truth >= 0)
    reco, truth = slot >= 0, slot_truth >= 0
    for u in range(n_u):
        r = weights[:, u].astype(np.float64)
        bad = live & ~((r >= 0.0) & (r < np.inf))
        if bad.any():
            if policy == 0:
                return out, changed, int(np.argmax(bad)), u
            r[bad] = 0.0 if policy == 1 else 1.0
            changed[u] += int(bad.sum())
        if clamp:
            outside = live & ((r < lo) | (r > hi))
            changed[u] += int(outside.sum())
            r = np.clip(r, lo, hi)
        v = w0 * r
        out[:, u] = np.bincount(slot[reco], weights=v[reco], minlength=n_slots)
        out[:, u] += np.bincount(slot_truth[truth], weights=v[truth], minlength=n_slots)
    return out, changed, -1, -1


def weight_set_fill(
    weights: np.ndarray,
    w0: np.ndarray,
    slot: np.ndarray,
    slot_truth: np.ndarray,
    n_slots: int,
    *,
    policy: str = "refuse",
    clamp: tuple[float, float] | None = None,
    physical: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(U, n_slots) sums of w0 · r_u into each event's reco and truth slot, and per universe the
    number of events whose weight the policy changed (see the module docstring).

    ``weights`` is (n, U) float32 or float64, read as it is (no copy of a C-contiguous block).
    ``physical``: the caller knows every weight is finite and >= 0 (a weight set records its
    unphysical weights when it is written): without a clamp, no weight is then looked at twice,
    and the fill runs at the speed of reading the block (the same bits either way).

    Raises
    ------
    UnphysicalWeightError
        With ``policy = "refuse"``, at the first NaN, infinite or negative weight of an event that
        fills a histogram, naming its row in the block and its universe.
    """
    weights = np.ascontiguousarray(weights)
    if weights.dtype not in (np.float32, np.float64):
        weights = weights.astype(np.float64)
    weights = weights.astype(weights.dtype.newbyteorder("="), copy=False)
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    args = (
        weights,
        np.ascontiguousarray(w0, dtype=np.float64),
        np.ascontiguousarray(slot, dtype=np.int64),
        np.ascontiguousarray(slot_truth, dtype=np.int64),
        n_slots,
        POLICIES[policy],
        float(lo),
        float(hi),
        clamp is not None,
    )
    if physical and clamp is None and HAVE_NUMBA:
        out = _fill_plain_numba(*args[:5])
        return np.ascontiguousarray(out.T), np.zeros(weights.shape[1], dtype=np.int64)
    if HAVE_NUMBA:
        # as unsigned integers, +inf is the smallest pattern of a NaN, ±inf or negative weight
        unsigned, limit = (
            (np.uint32, np.uint32(0x7F800000))
            if weights.dtype == np.float32
            else (np.uint64, np.uint64(0x7FF0000000000000))
        )
        out, changed, bad_event, bad_universe = _fill_numba(
            weights, weights.view(unsigned), limit, *args[1:]
        )
    else:
        out, changed, bad_event, bad_universe = _fill_numpy(*args)
    if bad_event >= 0:
        value = weights[bad_event, bad_universe]
        msg = (
            f"row {bad_event} of the block has weight {value} in universe {bad_universe}: a NaN, "
            "infinite or negative weight; set [analysis] unphysical_weights = 'zero' or 'one' "
            "to replace such weights (they are counted), or fix the weight set"
        )
        raise UnphysicalWeightError(msg)
    return np.ascontiguousarray(out.T), changed


def weight_set_loop(
    weights: np.ndarray,
    w0: np.ndarray,
    slot: np.ndarray,
    slot_truth: np.ndarray,
    n_slots: int,
) -> np.ndarray:
    """The per-universe loop the one-pass fill replaces (reference for tests and benchmarks):
    one ``bincount`` per universe over w0 · r_u, physical weights assumed."""
    table = np.zeros((weights.shape[1], n_slots))
    reco, truth = slot >= 0, slot_truth >= 0
    for u in range(weights.shape[1]):
        v = w0 * weights[:, u].astype(np.float64)
        table[u] = np.bincount(slot[reco], weights=v[reco], minlength=n_slots)
        table[u] += np.bincount(slot_truth[truth], weights=v[truth], minlength=n_slots)
    return table


def chunk_histograms(
    cols: Mapping[str, np.ndarray],
    spec: AccumulationSpec,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(signal (K, I, J), background (K, I), truth (K, J), changed (K,)) of a chunk whose
    per-event universes are columns of one weight set (plans never mix systematics in a chunk)."""
    assert spec.event_weight_set is not None and spec.event_weight_column is not None
    owners = np.unique(spec.event_weight_set)
    if owners.size != 1 or owners[0] < 0:
        msg = "a chunk of weight-set universes holds other universes too; plans never do this"
        raise ValueError(msg)
    name = spec.weight_sets[int(owners[0])][0]
    block = cols[weights_key(name)]
    columns = spec.event_weight_column
    lo, hi = int(columns[0]), int(columns[-1]) + 1
    if np.array_equal(columns, np.arange(lo, hi)):
        weights = (
            block if (lo, hi) == (0, block.shape[1]) else np.ascontiguousarray(block[:, lo:hi])
        )
    else:
        weights = np.ascontiguousarray(block[:, columns])
    layout = BlockLayout.build(
        reco_bin, truth_bin, signal, cols["selected"], spec.n_reco, spec.n_truth
    )
    slot, slot_truth = layout.slots(reco_bin.size)
    table, changed = weight_set_fill(
        weights,
        cols["w_nominal"],
        slot,
        slot_truth,
        layout.n_slots,
        policy=spec.unphysical_weights,
        clamp=spec.clamp,  # every weight is checked: as fast as trusting the set's record
    )
    sig, bkg, truth = layout.split(table)
    return (
        np.ascontiguousarray(sig),
        np.ascontiguousarray(bkg),
        np.ascontiguousarray(truth),
        changed,
    )


def weight_columns(
    universes: UniverseSet, event_universes: np.ndarray, sets: Mapping[str, Any]
) -> dict[str, Any]:
    """The AccumulationSpec fields that tie each per-event universe of a ``weights`` systematic
    to its weight set and column (its throw index)."""
    if not sets:
        return {}
    names = list(sets)
    owner = universes.systematic_index[event_universes]
    index = np.full(event_universes.size, -1, dtype=np.int64)
    for k, name in enumerate(names):
        index[owner == universes.names.index(name)] = k
    column = np.where(index >= 0, universes.throw_index[event_universes], -1).astype(np.int64)
    identity = tuple(  # (name, checksums, no unphysical weight recorded when it was written)
        (
            ws.name,
            "-".join(ws.manifest["shard_checksums"]),
            not any(ws.manifest.get("unphysical", {"unknown": 1}).values()),
        )
        for ws in sets.values()
    )
    return {"event_weight_set": index, "event_weight_column": column, "weight_sets": identity}
