"""A block's slots and the fills by class of event, compiled, with numpy versions that give the
same bits (farm.reweight.fastpaths, farm.reweight.shortcuts).

- :func:`block_slots`: each event's reco slot and truth slot in a histogram row, from its bins.
- :func:`classes`: the classes of a knob whose factor depends on discrete columns (channel,
  nucleus), as ``np.unique`` numbers them, in one pass without sorting the events.
- :func:`class_slot_fill`: w₀ summed per class and slot, each bin in event order.
- :func:`add_class_products`: Σ_c factor[u, c] · sums[u, c] added in class order.
"""

from __future__ import annotations

import numpy as np

from farm.reweight.compiled import CACHE, HAVE_NUMBA, numba

__all__ = ["CLASS_LIMIT", "add_class_products", "block_slots", "class_slot_fill", "classes"]


def _block_slots_numpy(reco_bin, truth_bin, signal, selected, n_reco, n_truth, truth):
    n_sig = n_reco * n_truth
    in_reco = selected & (reco_bin >= 0)
    slot = np.full(reco_bin.size, -1, dtype=np.int64)
    sig = np.flatnonzero(in_reco & signal)
    bkg = np.flatnonzero(in_reco & ~signal)
    slot[sig] = reco_bin[sig] * n_truth + truth_bin[sig]
    slot[bkg] = n_sig + reco_bin[bkg]
    slot_truth = np.full(reco_bin.size, -1, dtype=np.int64)
    if truth:
        on = np.flatnonzero(signal)
        slot_truth[on] = n_sig + n_reco + truth_bin[on]
    return slot, slot_truth


def _class_slot_fill_numpy(category, n_cat, slot, slot_truth, w0, n_slots):
    cat = np.where(category >= 0, category, n_cat)  # the unit class last
    table = np.zeros(((n_cat + 1) * n_slots,))
    for slots in (slot, slot_truth):  # disjoint slot ranges: each bin is summed in event order
        has = slots >= 0
        table += np.bincount(cat[has] * n_slots + slots[has], weights=w0[has], minlength=table.size)
    return table.reshape(n_cat + 1, n_slots)


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE)
    def _block_slots_numba(reco_bin, truth_bin, signal, selected, n_reco, n_truth, truth):
        n = reco_bin.size
        n_sig = n_reco * n_truth
        slot = np.empty(n, dtype=np.int64)
        slot_truth = np.empty(n, dtype=np.int64)
        for e in range(n):
            r = reco_bin[e]
            s = -1
            if selected[e] and r >= 0:
                s = r * n_truth + truth_bin[e] if signal[e] else n_sig + r
            slot[e] = s
            slot_truth[e] = n_sig + n_reco + truth_bin[e] if truth and signal[e] else -1
        return slot, slot_truth

    @numba.njit(nogil=True, cache=CACHE)
    def _classes_numba(key, limit):
        # the distinct keys in order of appearance, the first event of each and each event's
        # place among them; a linear scan (a block has a handful of classes), −1 past limit
        n = key.size
        seen = np.empty(limit, dtype=np.int64)
        first = np.empty(limit, dtype=np.int64)
        appearance = np.empty(n, dtype=np.int64)
        n_seen = 0
        last = 0
        for e in range(n):
            k = key[e]
            if n_seen > 0 and seen[last] == k:
                appearance[e] = last
                continue
            c = 0
            while c < n_seen and seen[c] != k:
                c += 1
            if c == n_seen:
                if n_seen == limit:
                    return appearance, seen, first, -1
                seen[c] = k
                first[c] = e
                n_seen += 1
            appearance[e] = c
            last = c
        return appearance, seen[:n_seen], first[:n_seen], n_seen

    @numba.njit(nogil=True, cache=CACHE)
    def _class_slot_fill_numba(category, n_cat, slot, slot_truth, w0, n_slots):
        out = np.zeros((n_cat + 1, n_slots))
        for e in range(w0.size):
            c = category[e]
            if c < 0:
                c = n_cat
            w = w0[e]
            s = slot[e]
            if s >= 0:
                out[c, s] += w
            st = slot_truth[e]
            if st >= 0:
                out[c, st] += w
        return out


def block_slots(
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
    selected: np.ndarray,
    n_reco: int,
    n_truth: int,
    *,
    truth: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Each event's reco slot and truth slot in a row of (signal reco × truth, background reco,
    truth) bins, −1 for none (:meth:`farm.reweight.fastpaths.BlockLayout.slots`): a selected
    event inside the reco range fills reco × n_truth + truth if signal, else n_reco · n_truth +
    reco; a signal event (``truth``) fills n_reco · n_truth + n_reco + truth."""
    args = (
        np.ascontiguousarray(reco_bin, dtype=np.int64),
        np.ascontiguousarray(truth_bin, dtype=np.int64),
        np.ascontiguousarray(signal, dtype=np.bool_),
        np.ascontiguousarray(selected, dtype=np.bool_),
        int(n_reco),
        int(n_truth),
        bool(truth),
    )
    return _block_slots_numba(*args) if HAVE_NUMBA else _block_slots_numpy(*args)


CLASS_LIMIT = 64
"""Distinct classes a block may have for the compiled :func:`classes` (past it, ``np.unique``)."""


def classes(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, category) of ``np.unique(key, return_index=True, return_inverse=True)``: the
    classes numbered in increasing key order, the first event of each, and each event's class,
    in one pass without sorting the events (a block has a handful of classes)."""
    key = np.ascontiguousarray(key, dtype=np.int64)
    if HAVE_NUMBA:
        appearance, seen, first, count = _classes_numba(key, CLASS_LIMIT)
        if count >= 0:
            order = np.argsort(seen, kind="stable")
            rank = np.empty(count, dtype=np.intp)
            rank[order] = np.arange(count)
            return first[order], rank[appearance]
    _, first, category = np.unique(key, return_index=True, return_inverse=True)
    return first, category.reshape(-1)


def class_slot_fill(
    category: np.ndarray,
    n_cat: int,
    slot: np.ndarray,
    slot_truth: np.ndarray,
    w0: np.ndarray,
    n_slots: int,
) -> np.ndarray:
    """(n_cat + 1, n_slots) sums of w0 per class (−1: the unit class, last row) and slot, each
    event into its reco slot and its truth slot (−1: none), each bin summed in event order."""
    args = (
        np.ascontiguousarray(category, dtype=np.int64),
        int(n_cat),
        np.ascontiguousarray(slot, dtype=np.int64),
        np.ascontiguousarray(slot_truth, dtype=np.int64),
        np.ascontiguousarray(w0, dtype=np.float64),
        int(n_slots),
    )
    return _class_slot_fill_numba(*args) if HAVE_NUMBA else _class_slot_fill_numpy(*args)


def _add_class_products_numpy(table, factors, per_class):
    for c in range(factors.shape[1]):
        table += factors[:, c, None] * per_class[:, c, :]


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE)
    def _add_class_products_numba(table, factors, per_class):
        for u in range(table.shape[0]):
            row = table[u]
            for c in range(factors.shape[1]):
                factor = factors[u, c]
                products = per_class[u, c]
                for s in range(row.size):
                    row[s] += factor * products[s]


def add_class_products(table: np.ndarray, factors: np.ndarray, per_class: np.ndarray) -> None:
    """table[u] += Σ_c factors[u, c] · per_class[u, c] in place, the classes added in order
    (table (U, S) float64 C-contiguous, factors (U, C), per_class (U, C, S))."""
    if table.dtype != np.float64 or not table.flags.c_contiguous:
        msg = "add_class_products needs a C-contiguous float64 table"
        raise ValueError(msg)
    args = (
        table,
        np.ascontiguousarray(factors, dtype=np.float64),
        np.ascontiguousarray(per_class, dtype=np.float64),
    )
    if HAVE_NUMBA:
        _add_class_products_numba(*args)
    else:
        _add_class_products_numpy(*args)
