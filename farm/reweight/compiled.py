"""numba kernels for the two hottest loops, with numpy fallbacks that give the same bits.

- :func:`flux_fill`: one pass over the events fills the flux tensors (design.md §5); each bin is
  summed in event order, exactly as the two-``bincount`` numpy version does.
- :func:`bootstrap_fill`: the Poisson(1) bootstrap hashes (event_id, replica) and adds the weight
  into that replica's bin in the same pass, so no (universe × event) matrix is ever built.

numba is the field's standard JIT for numpy loops; where it is missing (or ``FARM_NO_NUMBA=1``)
the numpy versions run instead.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["HAVE_NUMBA", "bootstrap_fill", "flux_fill", "helm_ratio_table"]

try:  # pragma: no cover - which branch runs depends on the environment
    if os.environ.get("FARM_NO_NUMBA"):
        raise ImportError
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _flux_fill_numpy(
    w0, flux_bin, reco_bin, truth_bin, is_signal, selected, n_flux, n_reco, n_truth
):
    n_sig = n_reco * n_truth
    width = n_sig + n_reco + n_truth + 1
    discard = width - 1
    signal = is_signal & (truth_bin >= 0)
    in_reco = selected & (reco_bin >= 0)
    base = flux_bin.astype(np.int64) * width
    reco_slot = np.where(
        in_reco & signal,
        reco_bin * n_truth + truth_bin,
        np.where(in_reco & ~is_signal, n_sig + reco_bin, discard),
    )
    truth_slot = np.where(signal, n_sig + n_reco + truth_bin, discard)
    total = np.bincount(base + reco_slot, weights=w0, minlength=n_flux * width)
    total += np.bincount(base + truth_slot, weights=w0, minlength=n_flux * width)
    return total.reshape(n_flux, width)[:, :discard]


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=False)
    def _flux_fill_numba(
        w0, flux_bin, reco_bin, truth_bin, is_signal, selected, n_flux, n_reco, n_truth
    ):
        n_sig = n_reco * n_truth
        width = n_sig + n_reco + n_truth
        out = np.zeros((n_flux, width))
        for e in range(w0.size):
            f = flux_bin[e]
            w = w0[e]
            r = reco_bin[e]
            t = truth_bin[e]
            in_reco = selected[e] and r >= 0
            if is_signal[e]:
                if t >= 0:
                    if in_reco:
                        out[f, r * n_truth + t] += w
                    out[f, n_sig + n_reco + t] += w
            elif in_reco:
                out[f, n_sig + r] += w
        return out

    @numba.njit(nogil=True, cache=False)
    def _bootstrap_fill_numba(w0, base, replicas, thresholds, slot, slot_truth, n_slots):
        n_rep = replicas.size
        out = np.zeros((n_rep, n_slots))
        golden = np.uint64(0x9E3779B97F4A7C15)
        m1 = np.uint64(0xBF58476D1CE4E5B9)
        m2 = np.uint64(0x94D049BB133111EB)
        offsets = np.empty(n_rep, dtype=np.uint64)
        for u in range(n_rep):
            offsets[u] = (replicas[u] + np.uint64(1)) * golden
        n_thresholds = thresholds.size
        for e in range(w0.size):
            s = slot[e]
            st = slot_truth[e]
            if s < 0 and st < 0:
                continue
            b = base[e]
            w = w0[e]
            for u in range(n_rep):
                z = b + offsets[u]
                z = (z ^ (z >> np.uint64(30))) * m1
                z = (z ^ (z >> np.uint64(27))) * m2
                z = z ^ (z >> np.uint64(31))
                top = z >> np.uint64(32)
                k = 0  # thresholds increase: stop at the first one not reached
                while k < n_thresholds and top >= thresholds[k]:
                    k += 1
                if k:
                    if s >= 0:
                        out[u, s] += w * k
                    if st >= 0:
                        out[u, st] += w * k
        return out


def flux_fill(
    w0: np.ndarray,
    flux_bin: np.ndarray,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    is_signal: np.ndarray,
    selected: np.ndarray,
    n_flux: int,
    n_reco: int,
    n_truth: int,
) -> np.ndarray:
    """(F, I·J + I + J) table: selected signal by (reco, truth), selected background by reco, and
    all signal by truth, per flux bin. Signal outside the truth range (truth_bin −1) counts nowhere."""
    if HAVE_NUMBA:
        return _flux_fill_numba(
            np.ascontiguousarray(w0, dtype=np.float64),
            np.ascontiguousarray(flux_bin, dtype=np.int64),
            np.ascontiguousarray(reco_bin, dtype=np.int64),
            np.ascontiguousarray(truth_bin, dtype=np.int64),
            np.ascontiguousarray(is_signal, dtype=np.bool_),
            np.ascontiguousarray(selected, dtype=np.bool_),
            n_flux,
            n_reco,
            n_truth,
        )
    return _flux_fill_numpy(
        w0, flux_bin, reco_bin, truth_bin, is_signal, selected, n_flux, n_reco, n_truth
    )


def bootstrap_fill(
    w0: np.ndarray,
    base_hash: np.ndarray,
    replicas: np.ndarray,
    thresholds: np.ndarray,
    slot: np.ndarray,
    slot_truth: np.ndarray,
    n_slots: int,
) -> np.ndarray | None:
    """(U, n_slots) sums of w0 · Poisson(event, replica) into each event's reco slot and truth
    slot (−1: none), hashing each (event, replica) once.

    ``base_hash`` is the per-event hash of farm.reweight.bootstrap; returns None without numba
    (the caller then uses its numpy path, which gives the same weights).
    """
    if not HAVE_NUMBA:
        return None
    return _bootstrap_fill_numba(
        np.ascontiguousarray(w0, dtype=np.float64),
        np.ascontiguousarray(base_hash, dtype=np.uint64),
        np.ascontiguousarray(replicas, dtype=np.uint64),
        np.ascontiguousarray(thresholds, dtype=np.uint64),
        np.ascontiguousarray(slot, dtype=np.int64),
        np.ascontiguousarray(slot_truth, dtype=np.int64),
        n_slots,
    )


def _helm_j(x: np.ndarray) -> np.ndarray:
    """3 j₁(x)/x with its series below x = 0.05 (as farm.physics.cevns)."""
    small = x < 0.05
    safe = np.where(small, 1.0, x)
    closed = 3.0 * (np.sin(safe) - safe * np.cos(safe)) / (safe * safe * safe)
    x2 = x * x
    return np.where(small, 1.0 - x2 / 10.0 + x2 * x2 / 280.0 - x2 * x2 * x2 / 15120.0, closed)


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=False)
    def _helm_ratio_numba(q_fm, r0_nominal, r0_values):
        out = np.ones((r0_values.size, q_fm.size))
        for e in range(q_fm.size):
            x = q_fm[e] * r0_nominal
            if x < 0.05:
                x2 = x * x
                nominal = 1.0 - x2 / 10.0 + x2 * x2 / 280.0 - x2 * x2 * x2 / 15120.0
            else:
                nominal = 3.0 * (np.sin(x) - x * np.cos(x)) / (x * x * x)
            if nominal == 0.0:
                continue
            for k in range(r0_values.size):
                y = q_fm[e] * r0_values[k]
                if y < 0.05:
                    y2 = y * y
                    shifted = 1.0 - y2 / 10.0 + y2 * y2 / 280.0 - y2 * y2 * y2 / 15120.0
                else:
                    shifted = 3.0 * (np.sin(y) - y * np.cos(y)) / (y * y * y)
                ratio = shifted / nominal
                out[k, e] = ratio * ratio
        return out


def helm_ratio_table(q_fm: np.ndarray, r0_nominal: float, r0_values: np.ndarray) -> np.ndarray:
    """[j(q R₀ₖ)/j(q R₀)]² for every radius R₀ₖ and event (1 where j(q R₀) = 0): (K, n)."""
    q = np.ascontiguousarray(q_fm, dtype=np.float64)
    radii = np.ascontiguousarray(r0_values, dtype=np.float64)
    if HAVE_NUMBA:
        return _helm_ratio_numba(q, float(r0_nominal), radii)
    nominal = _helm_j(q * r0_nominal)
    out = np.ones((radii.size, q.size))
    for k, r0 in enumerate(radii):
        ratio = np.divide(_helm_j(q * r0), nominal, out=np.ones_like(q), where=nominal != 0.0)
        out[k] = ratio * ratio
    return out
