"""A block's bins, computed once: reco bin, truth bin, signal and flux bin of every event.

Every work item of a block needs the same four arrays (:func:`farm.accumulate.bin_events` and
:meth:`farm.systematics.fluxbins.FluxBins.index` define them). They are computed here by compiled
kernels and kept per process in a :class:`farm.reweight.bincache.BinCache`, so the flux chunk and every per-event chunk
of a block bin its events once:

- **a lookup table** for a photoelectron readout: a count k below the table's length is its bin
  ``table[k]``, the table filled by the reference binning itself (anything else, such as a
  background count drawn as a float, is searched as below);
- **a branch-free search** for float edges: an event's bin is the number of edges ≤ its value,
  minus one — a fixed sequence of compares with no data-dependent branch (a binary search of
  fixed depth past 32 edges). That is ``np.searchsorted(edges, x, side="right") - 1`` for every x,
  NaN included (no edge is ≤ NaN, numpy sorts NaN last: both put it outside the range);
- **the flux chunk fused**: the pass that bins an event also adds its weight into the flux
  tensors, each bin summed in event order as :func:`farm.reweight.compiled.flux_fill` does, so
  the tensors keep their bits.

Without numba (``FARM_NO_NUMBA=1``) the numpy reference runs and gives the same indices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from farm.reweight.compiled import CACHE, HAVE_NUMBA, flux_fill, numba
from farm.reweight.per_event import bin_values
from farm.store.schema import COLUMNS, FLAVOR_PDG

if TYPE_CHECKING:
    from farm.systematics.fluxbins import FluxBins

__all__ = [
    "Binning",
    "BlockBins",
    "bin_block",
    "bin_block_with_flux",
    "fill_flux_table",
    "reference_bins",
    "warm_up",
]

LUT_UNITS = frozenset({"PE"})
"""Units of readouts that count (photoelectrons): binned through a lookup table."""

LUT_MAX = 1 << 16
"""Longest lookup table (counts at or past it are searched)."""

_LINEAR_EDGES = 32
"""Up to this many edges the search compares with every edge (a short loop of compares, no
data-dependent branch); past it, a binary search of fixed depth."""

_FLAVOR_SPAN = 32
"""Flavour codes −32..32 index the flavour table (PDG neutrino codes are ±12, ±14, ±16)."""


@dataclass(frozen=True, kw_only=True)
class BlockBins:
    """Bins of one block's events (:func:`farm.accumulate.bin_events` and ``FluxBins.index``)."""

    reco: np.ndarray
    """int64 reco bin, −1 outside the reco range."""
    truth: np.ndarray
    """int64 truth bin of signal events, 0 for every other event."""
    signal: np.ndarray
    """bool: signal inside the truth range."""
    flux: np.ndarray
    """int32 global flux bin (the last, untouched bin for no neutrino or E_ν outside the edges)."""

    @property
    def nbytes(self) -> int:
        return self.reco.nbytes + self.truth.nbytes + self.signal.nbytes + self.flux.nbytes

    def compact(self) -> BlockBins:
        """The same bins in the narrowest integer types (what the cache holds)."""
        return BlockBins(
            reco=_narrow(self.reco),
            truth=_narrow(self.truth),
            signal=self.signal,
            flux=_narrow(self.flux),
        )

    def widened(self) -> BlockBins:
        """The bins in the types the kernels take (int64, int64, bool, int32)."""
        return BlockBins(
            reco=self.reco.astype(np.int64),
            truth=self.truth.astype(np.int64),
            signal=self.signal,
            flux=self.flux.astype(np.int32),
        )


def _fits(n: int) -> type:
    """The narrowest integer type holding −1..n−1."""
    for dtype in (np.int8, np.int16, np.int32):
        if n - 1 <= np.iinfo(dtype).max:
            return dtype
    return np.int64


def _narrow(values: np.ndarray) -> np.ndarray:
    if values.dtype.itemsize == 1:
        return values
    if values.size == 0:
        return values.astype(np.int16)
    lo, hi = int(values.min()), int(values.max())
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype)
    return values


@dataclass(frozen=True, kw_only=True, eq=False)
class Binning:
    """A spec's binning in the form the kernels read, with a digest naming it in cache keys."""

    observable: str
    reco_edges: np.ndarray
    truth_column: str | None
    truth_edges: np.ndarray
    """float64 truth edges ([0, 1] unused placeholder without a truth column)."""
    lut: np.ndarray
    """int64 reco bin of each count 0..len−1 (empty: the observable is searched)."""
    flavor_slot: np.ndarray
    """int64 row of the flux edges per flavour code + _FLAVOR_SPAN (the last row: not binned)."""
    flux_edges: np.ndarray
    """(flavours + 1, most edges) float64, each row padded with +inf; the last row all +inf."""
    flux_sizes: np.ndarray
    """int64 edges per row (0 in the last: nothing is inside)."""
    flux_offsets: np.ndarray
    """int64 first global flux bin per row."""
    untouched: int
    n_flux: int
    flux_bins: FluxBins = field(repr=False)
    """The reference (:meth:`FluxBins.index`)."""
    digest: str = field(repr=False)

    @classmethod
    def of(
        cls,
        observable: str,
        reco_edges: np.ndarray,
        truth_column: str | None,
        truth_edges: np.ndarray | None,
        flux_bins: FluxBins,
    ) -> Binning:
        reco = np.ascontiguousarray(reco_edges, dtype=np.float64)
        truth = (
            np.array([0.0, 1.0])
            if truth_edges is None
            else np.ascontiguousarray(truth_edges, dtype=np.float64)
        )
        lut = np.zeros(0, dtype=np.int64)
        unit = COLUMNS[observable].unit if observable in COLUMNS else ""
        if unit in LUT_UNITS and reco.size and np.isfinite(reco[-1]) and reco[-1] >= 0:
            length = min(int(reco[-1]) + 2, LUT_MAX)
            lut = bin_values(np.arange(length, dtype=np.float64), reco)
        n_flavors = len(flux_bins.flavors)
        slot = np.full(2 * _FLAVOR_SPAN + 1, n_flavors, dtype=np.int64)
        for k, flavor in enumerate(flux_bins.flavors):
            slot[FLAVOR_PDG[flavor] + _FLAVOR_SPAN] = k
        widest = max((len(e) for e in flux_bins.edges), default=1)
        edges = np.full((n_flavors + 1, widest), np.inf)
        for k, e in enumerate(flux_bins.edges):
            edges[k, : len(e)] = np.asarray(e, dtype=np.float64)
        h = hashlib.blake2b(digest_size=12)
        for part in (
            observable,
            reco,
            str(truth_column),
            truth,
            repr(flux_bins.flavors),
            repr(flux_bins.edges),
        ):
            h.update(part.tobytes() if isinstance(part, np.ndarray) else part.encode())
            h.update(b"|")
        return cls(
            observable=observable,
            reco_edges=reco,
            truth_column=truth_column,
            truth_edges=truth,
            lut=lut,
            flavor_slot=slot,
            flux_edges=edges,
            flux_sizes=np.array([*(len(e) for e in flux_bins.edges), 0], dtype=np.int64),
            flux_offsets=np.array([*flux_bins.offsets, 0], dtype=np.int64),
            untouched=flux_bins.untouched,
            n_flux=flux_bins.n_bins,
            flux_bins=flux_bins,
            digest=h.hexdigest(),
        )

    @property
    def n_reco(self) -> int:
        return self.reco_edges.size - 1

    @property
    def n_truth(self) -> int:
        return 1 if self.truth_column is None else self.truth_edges.size - 1

    @property
    def compact_dtypes(self) -> tuple[type, type, type]:
        """The narrowest integer types of the reco (−1..I−1), truth and flux bins."""
        return _fits(self.n_reco), _fits(self.n_truth), _fits(self.n_flux)


# --- kernels -------------------------------------------------------------------------------------

if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE, inline="always")
    def _count(x, edges, row, n):
        # how many of the first n edges of edges[row] are <= x (indexing the 2-D table rather
        # than taking a row view: a view per event costs more than the search)
        count = 0
        if n <= _LINEAR_EDGES:
            for k in range(n):
                count += edges[row, k] <= x
        else:
            step = 1
            while step * 2 <= n:
                step *= 2
            while step > 0:
                probe = count + step
                if probe <= n and edges[row, probe - 1] <= x:
                    count = probe
                step //= 2
        return count

    @numba.njit(nogil=True, cache=CACHE)
    def _bin_fill_numba(
        obs,
        lut,
        reco_edges,
        truth_values,
        has_truth,
        truth_edges,
        is_signal,
        flavor,
        enu,
        flavor_slot,
        flux_edges,
        flux_sizes,
        flux_offsets,
        untouched,
        w0,
        selected,
        n_flux,
        n_truth,
        fill,
        keep,
        reco,
        truth,
        signal,
        flux,
    ):
        # One pass over the events: each event's bins, kept when asked for, and with ``fill``
        # its weight added into the flux tensors of farm.reweight.compiled.flux_fill (every
        # bin summed in event order, as there); with ``keep`` the bins go into reco, truth,
        # signal and flux (of length n, in whatever integer types the caller chose). Written
        # out in one loop: a per-event helper taking the arrays measured 10× slower (numba
        # counts references per call).
        n = obs.size
        n_lut = lut.size
        n_reco_edges = reco_edges.shape[1]
        n_truth_edges = truth_edges.shape[1]
        n_reco = n_reco_edges - 1
        n_sig = n_reco * n_truth
        last = flavor_slot.size - 1
        width = flux_edges.shape[1]
        out = np.zeros((n_flux if fill else 0, n_sig + n_reco + n_truth))
        for e in range(n):
            x = np.float64(obs[e])
            if 0.0 <= x < n_lut and np.float64(np.int64(x)) == x:
                r = lut[np.int64(x)]  # a count: its bin from the table
            else:
                r = _count(x, reco_edges, 0, n_reco_edges) - 1
                r = r if r < n_reco_edges - 1 else -1
            t = 0
            if has_truth:
                t = _count(np.float64(truth_values[e]), truth_edges, 0, n_truth_edges) - 1
                t = t if t < n_truth_edges - 1 else -1
            sig = is_signal[e] and t >= 0
            if not sig:
                t = 0
            # flux bin: the count of the edges <= E_ν in the row of the event's flavour, over
            # the padded row's fixed width (+inf pads count nowhere), if it is inside
            row = flavor_slot[min(max(np.int64(flavor[e]) + _FLAVOR_SPAN, 0), last)]
            energy = np.float64(enu[e])
            if width <= _LINEAR_EDGES:  # written out: through _count it measured 1.7× slower
                b = -1
                for k in range(width):
                    b += flux_edges[row, k] <= energy
            else:
                b = _count(energy, flux_edges, row, width) - 1
            f = flux_offsets[row] + b if b >= 0 and b < flux_sizes[row] - 1 else untouched
            if keep:
                reco[e] = r
                truth[e] = t
                signal[e] = sig
                flux[e] = f
            if fill:
                w = w0[e]
                in_reco = selected[e] and r >= 0
                if sig:
                    if in_reco:
                        out[f, r * n_truth + t] += w
                    out[f, n_sig + n_reco + t] += w
                elif in_reco:
                    out[f, n_sig + r] += w
        return out


def _kernel_args(cols: Mapping[str, np.ndarray], binning: Binning) -> tuple:
    truth = cols[binning.truth_column] if binning.truth_column is not None else cols["enu_true"]
    return (
        np.ascontiguousarray(cols[binning.observable]),
        binning.lut,
        binning.reco_edges.reshape(1, -1),
        np.ascontiguousarray(truth),
        binning.truth_column is not None,
        binning.truth_edges.reshape(1, -1),
        np.ascontiguousarray(cols["is_signal"], dtype=np.bool_),
        np.ascontiguousarray(cols["flavor"]),
        np.ascontiguousarray(cols["enu_true"], dtype=np.float64),
        binning.flavor_slot,
        binning.flux_edges,
        binning.flux_sizes,
        binning.flux_offsets,
        binning.untouched,
    )


def _fill_args(cols: Mapping[str, np.ndarray], binning: Binning) -> tuple:
    return (
        np.ascontiguousarray(cols["w_nominal"], dtype=np.float64),
        np.ascontiguousarray(cols["selected"], dtype=np.bool_),
        binning.n_flux,
        binning.n_truth,
    )


def reference_bins(cols: Mapping[str, np.ndarray], binning: Binning) -> BlockBins:
    """The numpy reference: ``np.searchsorted`` per column (what the kernels must reproduce)."""
    n = cols["w_nominal"].size
    reco = bin_values(cols[binning.observable].astype(np.float64), binning.reco_edges)
    if binning.truth_column is None:
        truth = np.zeros(n, dtype=np.int64)
    else:
        truth = bin_values(cols[binning.truth_column].astype(np.float64), binning.truth_edges)
    signal = cols["is_signal"] & (truth >= 0)
    return BlockBins(
        reco=reco,
        truth=np.where(signal, truth, 0),
        signal=signal,
        flux=binning.flux_bins.index(cols["flavor"], cols["enu_true"]),
    )


def bin_block(cols: Mapping[str, np.ndarray], binning: Binning) -> BlockBins:
    """Bins of every event of a block (compiled: one pass over the columns)."""
    if not HAVE_NUMBA:
        return reference_bins(cols, binning)
    bins = _empty_bins(cols["w_nominal"].size, np.int64, np.int64, np.int32)
    _bin_fill_numba(*_kernel_args(cols, binning), *_fill_args(cols, binning), False, True, *bins)
    return BlockBins(reco=bins[0], truth=bins[1], signal=bins[2], flux=bins[3])


def fill_flux_table(
    cols: Mapping[str, np.ndarray], bins: BlockBins, binning: Binning
) -> np.ndarray:
    """The flux table of :func:`farm.reweight.compiled.flux_fill` from bins already known."""
    return flux_fill(
        cols["w_nominal"],
        bins.flux,
        bins.reco,
        bins.truth,
        bins.signal,
        cols["selected"],
        binning.n_flux,
        binning.n_reco,
        binning.n_truth,
    )


def bin_block_with_flux(
    cols: Mapping[str, np.ndarray],
    binning: Binning,
    *,
    keep: bool,
) -> tuple[np.ndarray, BlockBins | None]:
    """(flux table of :func:`farm.reweight.compiled.flux_fill`, the bins if ``keep``) in one pass.

    The table has the bits of binning first and filling after: the fill adds each event's weight
    into the same cells in the same (event) order. Kept bins come in the narrowest integer types
    (:attr:`Binning.compact_dtypes`, what the cache holds; :meth:`BlockBins.widened` for kernels).
    """
    if not HAVE_NUMBA:
        bins = reference_bins(cols, binning)
        return fill_flux_table(cols, bins, binning), bins if keep else None
    n = cols["w_nominal"].size if keep else 0
    kept = _empty_bins(n, *binning.compact_dtypes)
    table = _bin_fill_numba(
        *_kernel_args(cols, binning), *_fill_args(cols, binning), True, keep, *kept
    )
    bins = BlockBins(reco=kept[0], truth=kept[1], signal=kept[2], flux=kept[3]) if keep else None
    return table, bins


def _empty_bins(n: int, reco: type, truth: type, flux: type) -> tuple[np.ndarray, ...]:
    return (
        np.empty(n, dtype=reco),
        np.empty(n, dtype=truth),
        np.empty(n, dtype=np.bool_),
        np.empty(n, dtype=flux),
    )


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the kernels for the column types of the
    example samples: float32 photoelectrons and float64 keVee or energies."""
    if not HAVE_NUMBA:
        return
    from farm.systematics.fluxbins import FluxBins

    flux_bins = FluxBins.from_mapping({"nue": [0.0, 1.0]})
    for observable, dtype in (("reco_pe", np.float32), ("reco_kevee", np.float64)):
        spec = Binning.of(observable, np.array([0.0, 1.0]), None, None, flux_bins)
        cols = {
            observable: np.zeros(1, dtype=dtype),
            "enu_true": np.zeros(1),
            "flavor": np.zeros(1, dtype=np.int32),
            "is_signal": np.ones(1, dtype=bool),
            "selected": np.ones(1, dtype=bool),
            "w_nominal": np.ones(1),
        }
        bin_block(cols, spec)
        bin_block_with_flux(cols, spec, keep=True)
