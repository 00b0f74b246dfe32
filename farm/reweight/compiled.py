"""numba kernels for the two hottest loops, with numpy fallbacks that give the same bits.

- :func:`flux_fill`: one pass over the events fills the flux tensors (docs/internals.md §3); each bin is
  summed in event order, exactly as the two-``bincount`` numpy version does.
- :func:`bootstrap_fill`: the Poisson(1) bootstrap hashes (event_id, replica) and adds the weight
  into that replica's bin in the same pass, so no (universe × event) matrix is ever built.

numba is the field's standard JIT for numpy loops; where it is missing (or ``FARM_NO_NUMBA=1``)
the numpy versions run instead.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from farm.reweight.bootstrap import POISSON_THRESHOLDS, key_hash

__all__ = [
    "HAVE_NUMBA",
    "bootstrap_fill",
    "flux_fill",
    "interpolation_error",
    "ordered_matmul",
    "slot_fill",
]



def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".farm-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True


def _cache_kernels() -> bool:
    """Whether the kernels are cached on disk (compiled once per machine, not once per process).

    numba keys its cache on the source file and the argument types, so an upgrade recompiles.
    It writes beside this module, or under ``NUMBA_CACHE_DIR``; where neither is writable (a
    read-only image), a per-user folder under the temporary directory is used, and with no
    writable place at all every process compiles again (``FARM_NUMBA_CACHE=0`` asks for that).
    """
    if os.environ.get("FARM_NUMBA_CACHE", "1") == "0":
        return False
    if os.environ.get("NUMBA_CACHE_DIR"):
        return _writable(Path(os.environ["NUMBA_CACHE_DIR"]))
    if _writable(Path(__file__).resolve().parent / "__pycache__"):
        return True
    fallback = Path(tempfile.gettempdir()) / f"farm-numba-cache-{os.getuid()}"
    if _private(fallback) and _writable(fallback):
        os.environ["NUMBA_CACHE_DIR"] = str(fallback)
        return True
    return False


def _private(folder: Path) -> bool:
    """A folder only this user can write (numba's cache index is a pickle: a cache folder that
    another user could fill would let them run code here). Created 0700 if missing."""
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


try:  # pragma: no cover - which branch runs depends on the environment
    if os.environ.get("FARM_NO_NUMBA"):
        raise ImportError
    import numba

    HAVE_NUMBA = True
    CACHE = _cache_kernels()
    if os.environ.get("FARM_NUMBA_EXTENSIONS") == "0":
        # numba imports every package registering a numba extension (awkward: ≈ 0.2 s) at its
        # first dispatch; farm's kernels use none. Only farm's own processes ask for this: the
        # command line and the local workers it starts (farm.cli), never a library user's process.
        import numba.core.entrypoints

        numba.core.entrypoints._already_initialized = True
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False
    CACHE = False

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

    @numba.njit(nogil=True, cache=CACHE)
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

    # the Poisson(1) thresholds as compile-time constants: the count below is straight-line code
    _T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9, _T10, _T11 = (
        np.uint32(t) for t in POISSON_THRESHOLDS
    )

    @numba.njit(nogil=True, cache=CACHE)
    def _bootstrap_fill_numba(
        w0, event_id, key_hash, replicas, reco_bin, truth_bin, signal, selected, n_reco, n_truth
    ):
        # Three passes per event over its replicas, innermost and contiguous so that LLVM
        # vectorises each at its own width: the top 32 bits of each (event, replica) hash
        # (64-bit lanes), the Poisson count against the first five thresholds (32-bit lanes:
        # twice the compares per instruction; in the pass that adds, LLVM counts in 64-bit
        # lanes), then w0 · count added into the event's reco and truth rows. A draw past the
        # fifth (0.06 %: one event in 17 at 100 replicas) needs all twelve, so the last pass
        # writes each row's new sum beside the old one (two copies per slot, `current` says which
        # holds the sum) and an event with such a draw redoes those replicas from the untouched
        # old sums. Each bin still gets one addition per event, in event order: the bits are
        # those of the numpy path. The event's slots are those of
        # farm.reweight.fastpaths.BlockLayout, its base hash that of
        # farm.reweight.bootstrap.event_hash.
        n_rep = replicas.size
        n_sig = n_reco * n_truth
        n_slots = n_sig + n_reco + n_truth
        rows = np.zeros((2 * n_slots, n_rep))
        current = np.zeros(n_slots, dtype=np.int64)
        golden = np.uint64(0x9E3779B97F4A7C15)
        m1 = np.uint64(0xBF58476D1CE4E5B9)
        m2 = np.uint64(0x94D049BB133111EB)
        offsets = np.empty(n_rep, dtype=np.uint64)
        for u in range(n_rep):
            offsets[u] = (replicas[u] + np.uint64(1)) * golden
        tops = np.empty(n_rep, dtype=np.uint32)
        counts = np.empty(n_rep, dtype=np.uint32)
        for e in range(w0.size):
            r = reco_bin[e]
            in_reco = selected[e] and r >= 0
            if signal[e]:
                t = truth_bin[e]
                s = r * n_truth + t if in_reco else -1
                st = n_sig + n_reco + t
            elif in_reco:
                s = n_sig + r
                st = -1
            else:
                continue
            b = np.uint64(event_id[e]) ^ key_hash
            b = b + golden
            b = (b ^ (b >> np.uint64(30))) * m1
            b = (b ^ (b >> np.uint64(27))) * m2
            b = b ^ (b >> np.uint64(31))
            for u in range(n_rep):
                z = b + offsets[u]
                z = (z ^ (z >> np.uint64(30))) * m1
                z = (z ^ (z >> np.uint64(27))) * m2
                z = z ^ (z >> np.uint64(31))
                tops[u] = np.uint32(z >> np.uint64(32))
            w = w0[e]
            first = s if s >= 0 else st  # a reco slot is never a truth slot
            old_a = 2 * first + current[first]
            new_a = 2 * first + 1 - current[first]
            current[first] = 1 - current[first]
            both = s >= 0 and st >= 0
            old_b = new_b = old_a
            high = np.uint32(0)
            for u in range(n_rep):
                top = tops[u]
                high = max(high, top)
                counts[u] = (
                    np.uint32(top >= _T0)
                    + np.uint32(top >= _T1)
                    + np.uint32(top >= _T2)
                    + np.uint32(top >= _T3)
                    + np.uint32(top >= _T4)
                )
            if both:
                old_b = 2 * st + current[st]
                new_b = 2 * st + 1 - current[st]
                current[st] = 1 - current[st]
                for u in range(n_rep):
                    x = w * np.float64(counts[u])
                    rows[new_a, u] = rows[old_a, u] + x
                    rows[new_b, u] = rows[old_b, u] + x
            else:
                for u in range(n_rep):
                    rows[new_a, u] = rows[old_a, u] + w * np.float64(counts[u])
            if high >= _T5:
                for u in range(n_rep):
                    top = tops[u]
                    if top >= _T5:
                        x = w * np.float64(
                            np.uint32(5)
                            + np.uint32(top >= _T5)
                            + np.uint32(top >= _T6)
                            + np.uint32(top >= _T7)
                            + np.uint32(top >= _T8)
                            + np.uint32(top >= _T9)
                            + np.uint32(top >= _T10)
                            + np.uint32(top >= _T11)
                        )
                        rows[new_a, u] = rows[old_a, u] + x
                        if both:
                            rows[new_b, u] = rows[old_b, u] + x
        out = np.empty((n_rep, n_slots))
        for k in range(n_slots):
            sums = 2 * k + current[k]
            for u in range(n_rep):
                out[u, k] = rows[sums, u]
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
    event_id: np.ndarray,
    key: int,
    replicas: np.ndarray,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
    selected: np.ndarray,
    n_reco: int,
    n_truth: int,
) -> np.ndarray | None:
    """(U, I·J + I + J) sums of w0 · Poisson(event, replica): selected signal by (reco, truth),
    selected background by reco and all signal by truth — the slots of
    :class:`farm.reweight.fastpaths.BlockLayout` — hashing each (event, replica) once.

    The Poisson weight is that of :func:`farm.reweight.bootstrap.poisson_weights` with bootstrap
    key ``key``; returns None without numba (the caller then uses its numpy path, which gives the
    same weights).
    """
    if not HAVE_NUMBA:
        return None
    return _bootstrap_fill_numba(
        np.ascontiguousarray(w0, dtype=np.float64),
        np.ascontiguousarray(event_id, dtype=np.uint64),
        key_hash(key),
        np.ascontiguousarray(replicas, dtype=np.uint64),
        np.ascontiguousarray(reco_bin, dtype=np.int64),
        np.ascontiguousarray(truth_bin, dtype=np.int64),
        np.ascontiguousarray(signal, dtype=np.bool_),
        np.ascontiguousarray(selected, dtype=np.bool_),
        n_reco,
        n_truth,
    )


# --- filling many weights of each event at once -----------------------------------------------


def _slot_fill_numpy(values, w0, slot, slot_truth, n_slots):
    out = np.zeros((values.shape[0], n_slots))
    reco, truth = slot >= 0, slot_truth >= 0
    for k in range(values.shape[0]):
        weighted = w0 * values[k]
        # reco and truth slots are disjoint: each bin gets one bincount's sum, the other adds 0
        out[k] = np.bincount(slot[reco], weights=weighted[reco], minlength=n_slots)
        out[k] += np.bincount(slot_truth[truth], weights=weighted[truth], minlength=n_slots)
    return out


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE)
    def _slot_fill_numba(values, w0, slot, slot_truth, n_slots):
        n_k = values.shape[0]
        out = np.zeros((n_slots, n_k))
        weighted = np.empty(n_k)
        for e in range(w0.size):
            s = slot[e]
            st = slot_truth[e]
            if s < 0 and st < 0:
                continue
            w = w0[e]
            for k in range(n_k):
                weighted[k] = w * values[k, e]
            if s >= 0:
                for k in range(n_k):
                    out[s, k] += weighted[k]
            if st >= 0:
                for k in range(n_k):
                    out[st, k] += weighted[k]
        return out.T.copy()


def slot_fill(
    values: np.ndarray, w0: np.ndarray, slot: np.ndarray, slot_truth: np.ndarray, n_slots: int
) -> np.ndarray:
    """(K, n_slots) sums of w0 · values[k] into each event's reco slot and truth slot (−1: none).

    One pass for K weights per event (the K nodes of an expansion). Reco and truth slots are
    disjoint parts of the row (:meth:`farm.reweight.fastpaths.BlockLayout.slots`), so each bin is
    summed in event order in the numba and numpy versions alike.
    """
    args = (
        np.ascontiguousarray(values, dtype=np.float64),
        np.ascontiguousarray(w0, dtype=np.float64),
        np.ascontiguousarray(slot, dtype=np.int64),
        np.ascontiguousarray(slot_truth, dtype=np.int64),
        n_slots,
    )
    return _slot_fill_numba(*args) if HAVE_NUMBA else _slot_fill_numpy(*args)


def _interpolation_error_numpy(values, n_nodes, lagrange, active):
    worst = np.zeros(values.shape[1])
    for c in range(values.shape[0] - n_nodes):
        approx = np.zeros(values.shape[1])
        for k in range(n_nodes):
            approx = approx + lagrange[c, k] * values[k]
        exact = values[n_nodes + c]
        err = np.abs(approx - exact) / np.maximum(1.0, np.abs(exact))
        worst = np.maximum(worst, np.where(np.isnan(err), np.inf, err))
    return np.where(active, worst, 0.0)


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE, inline="always")
    def interpolation_error_into(values, n_nodes, lagrange, n, approx, worst):
        """:func:`interpolation_error` of the first ``n`` columns of ``values`` into ``worst``
        (``approx``: scratch of n), every event active; also the fused radius pass's check
        (farm.reweight.helm). Node by node over the events (vectorised, the node rows
        streamed), each event's interpolant summed over the nodes in order as numpy does."""
        for e in range(n):
            worst[e] = 0.0
        for c in range(values.shape[0] - n_nodes):
            for e in range(n):
                approx[e] = 0.0
            for k in range(n_nodes):
                factor = lagrange[c, k]
                row = values[k]
                for e in range(n):
                    approx[e] = approx[e] + factor * row[e]
            exact = values[n_nodes + c]
            for e in range(n):
                err = abs(approx[e] - exact[e]) / max(1.0, abs(exact[e]))
                if err != err:
                    worst[e] = np.inf
                elif err > worst[e]:
                    worst[e] = err

    @numba.njit(nogil=True, cache=CACHE)
    def _interpolation_error_numba(values, n_nodes, lagrange, active):
        n = values.shape[1]
        worst = np.empty(n)
        interpolation_error_into(values, n_nodes, lagrange, n, np.empty(n), worst)
        for e in range(n):
            if not active[e]:
                worst[e] = 0.0
        return worst


def interpolation_error(
    values: np.ndarray, n_nodes: int, lagrange: np.ndarray, active: np.ndarray
) -> np.ndarray:
    """Per event, the largest |Σₖ lagrange[c, k] values[k] − values[K + c]| / max(1, |values[K + c]|)
    over the check points c (inf where that is NaN; 0 for events not ``active``): how far the
    interpolant through the first K = ``n_nodes`` rows is from the exact values in the others."""
    args = (
        np.ascontiguousarray(values, dtype=np.float64),
        n_nodes,
        np.ascontiguousarray(lagrange, dtype=np.float64),
        np.ascontiguousarray(active, dtype=np.bool_),
    )
    return _interpolation_error_numba(*args) if HAVE_NUMBA else _interpolation_error_numpy(*args)


def _ordered_matmul_numpy(a, b):
    out = np.zeros((a.shape[0], b.shape[1]))
    for c in range(a.shape[1]):
        out += a[:, c, None] * b[None, c, :]
    return out


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE)
    def _ordered_matmul_numba(a, b):
        out = np.zeros((a.shape[0], b.shape[1]))
        for u in range(a.shape[0]):
            for c in range(a.shape[1]):
                factor = a[u, c]
                for j in range(b.shape[1]):
                    out[u, j] += factor * b[c, j]
        return out


def ordered_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b summed over the inner index in increasing order, without BLAS: the bits never
    depend on a BLAS library or its thread count (small matrices: universes × nodes × bins)."""
    args = (np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64))
    return _ordered_matmul_numba(*args) if HAVE_NUMBA else _ordered_matmul_numpy(*args)
