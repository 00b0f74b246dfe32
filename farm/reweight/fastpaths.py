"""Fast histogramming of per-event universes when a chunk holds one kind of variation.

Four exact-or-checked shortcuts for the per-event path (docs/internals.md §3), each a pure kernel:

- **Expansion** (a weight knob): the per-event weight r_e(δ) is interpolated on K Chebyshev nodes
  over the thrown range of δ. Interpolation is linear in the node values, so it commutes with
  filling: the K node histograms Nₖ = hist(w0 r(δₖ)) are filled in one pass, and every universe
  is hist_u = Σₖ Lₖ(δ_u) Nₖ with Lₖ the interpolant's cardinal functions. K exact evaluations
  per event instead of one per universe; the caller checks the interpolant against exact
  weights at extra points, event by event, and fills the events that fail exactly.
- **Lateral shift** (a scale of the observable): events of each histogram row are sorted by their
  reco value once; a universe with scale s takes bin b as the events with x ≥ e_b/s and
  x < e_{b+1}/s, read from prefix sums of the weights. O(B log N) per universe.
- **Categories** (a factor per discrete class of event): one pass fills every class, then a
  (universes × classes) product.
- **Bootstrap**: Poisson weights are summed per bin with ``np.add.reduceat`` over events grouped
  by bin once, instead of a scatter over (universe × event) pairs (the compiled kernel of
  farm.reweight.compiled does it in one pass).

All four return the same histograms as the generic path up to floating-point rounding, and are
deterministic: the same block always gives the same bits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from farm.reweight.compiled import ordered_matmul
from farm.reweight.slots import block_slots, class_slot_fill

__all__ = [
    "BlockLayout",
    "bootstrap_histograms",
    "categorical_histograms",
    "chebyshev_interpolation_matrix",
    "chebyshev_nodes",
    "exact_histograms",
    "expansion_histograms",
    "lateral_histograms",
    "split_slots",
]


@dataclass(frozen=True, kw_only=True)
class BlockLayout:
    """Which events of a block fill which histogram row (fixed bins, no lateral shift): built
    from the block's bins, each event list formed when a path first asks for it."""

    n_reco: int
    n_truth: int
    reco_bin: np.ndarray
    truth_bin: np.ndarray
    signal: np.ndarray
    selected: np.ndarray

    @classmethod
    def build(
        cls,
        reco_bin: np.ndarray,
        truth_bin: np.ndarray,
        signal: np.ndarray,
        selected: np.ndarray,
        n_reco: int,
        n_truth: int,
    ) -> BlockLayout:
        return cls(
            n_reco=n_reco,
            n_truth=n_truth,
            reco_bin=reco_bin,
            truth_bin=truth_bin,
            signal=signal,
            selected=selected,
        )

    @functools.cached_property
    def _events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        in_reco = self.selected & (self.reco_bin >= 0)
        return (
            np.flatnonzero(in_reco & self.signal),
            np.flatnonzero(in_reco & ~self.signal),
            np.flatnonzero(self.signal),
        )

    @property
    def sig_events(self) -> np.ndarray:
        """The selected signal events inside the reco range."""
        return self._events[0]

    @functools.cached_property
    def sig_index(self) -> np.ndarray:
        """reco × n_truth + truth of each selected, in-range signal event."""
        return self.reco_bin[self.sig_events] * self.n_truth + self.truth_bin[self.sig_events]

    @property
    def bkg_events(self) -> np.ndarray:
        """The selected background events inside the reco range."""
        return self._events[1]

    @functools.cached_property
    def bkg_index(self) -> np.ndarray:
        return self.reco_bin[self.bkg_events]

    @property
    def truth_events(self) -> np.ndarray:
        """Every signal event."""
        return self._events[2]

    @functools.cached_property
    def truth_index(self) -> np.ndarray:
        return self.truth_bin[self.truth_events]

    @property
    def n_slots(self) -> int:
        """Signal (reco × truth), then background (reco), then truth bins, in one row."""
        return self.n_reco * self.n_truth + self.n_reco + self.n_truth

    def slots(self, n: int, *, truth: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Each event's reco slot (signal or background) and truth slot in a row of
        :attr:`n_slots`, −1 for none; ``truth=False`` leaves every truth slot at −1
        (farm.reweight.slots.block_slots; ``n`` is the block's number of events)."""
        if n != self.reco_bin.size:
            msg = f"slots of {n} events asked of a block of {self.reco_bin.size}"
            raise ValueError(msg)
        return block_slots(
            self.reco_bin,
            self.truth_bin,
            self.signal,
            self.selected,
            self.n_reco,
            self.n_truth,
            truth=truth,
        )

    def split(self, table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(U, n_slots) rows → signal (U, I, J), background (U, I), truth (U, J)."""
        return split_slots(table, self.n_reco, self.n_truth)

    def truth_sums(self, weight: np.ndarray) -> np.ndarray:
        """truth[J] for one weight per event: the last of :meth:`fill`, alone."""
        return np.bincount(
            self.truth_index, weights=weight[self.truth_events], minlength=self.n_truth
        )

    def fill(self, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(signal[I·J], background[I], truth[J]) for one weight per event."""
        return (
            np.bincount(
                self.sig_index,
                weights=weight[self.sig_events],
                minlength=self.n_reco * self.n_truth,
            ),
            np.bincount(self.bkg_index, weights=weight[self.bkg_events], minlength=self.n_reco),
            np.bincount(
                self.truth_index, weights=weight[self.truth_events], minlength=self.n_truth
            ),
        )


def split_slots(
    table: np.ndarray, n_reco: int, n_truth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U, I·J + I + J) rows in the slots of :class:`BlockLayout` → signal (U, I, J),
    background (U, I), truth (U, J)."""
    n_sig = n_reco * n_truth
    return (
        table[:, :n_sig].reshape(-1, n_reco, n_truth),
        table[:, n_sig : n_sig + n_reco],
        table[:, n_sig + n_reco :],
    )


def chebyshev_nodes(lo: float, hi: float, k: int) -> np.ndarray:
    """The k Chebyshev points of the first kind mapped onto [lo, hi]."""
    x = np.cos(np.pi * (np.arange(k) + 0.5) / k)
    return 0.5 * (hi + lo) + 0.5 * (hi - lo) * x


def _to_unit(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (2.0 * values - (hi + lo)) / (hi - lo)


def chebyshev_interpolation_matrix(points: np.ndarray, lo: float, hi: float, k: int) -> np.ndarray:
    """L (P × K) with p(points[i]) = Σₖ L[i, k] f(nodeₖ) for the Chebyshev interpolant p of f
    through the K first-kind nodes of [lo, hi] (:func:`chebyshev_nodes`).

    p = Σⱼ cⱼ Tⱼ with cⱼ = (2/K) Σₖ f(nodeₖ) Tⱼ(nodeₖ) (c₀ halved), so L = T(points) · C; formed
    with elementwise sums in a fixed order (no BLAS), so its bits never depend on the machine.
    Every block of a chunk asks for the same matrices: each is formed once per process.
    """
    points = np.array(points, dtype=np.float64, order="C")
    return _interpolation_matrix(
        points.tobytes(), points.shape, float(lo), float(hi), int(k)
    ).copy()


@functools.lru_cache(maxsize=256)
def _interpolation_matrix(
    raw: bytes, shape: tuple[int, ...], lo: float, hi: float, k: int
) -> np.ndarray:
    points = np.frombuffer(raw, dtype=np.float64).reshape(shape)
    nodes = np.cos(np.pi * (np.arange(k) + 0.5) / k)
    transform = np.polynomial.chebyshev.chebvander(nodes, k - 1).T * (2.0 / k)  # (j, node)
    transform[0] *= 0.5
    basis = np.polynomial.chebyshev.chebvander(_to_unit(points, lo, hi), k - 1)
    out = np.zeros((basis.shape[0], k))
    for j in range(k):
        out += basis[:, j, None] * transform[j][None, :]
    out.flags.writeable = False  # the cached one; callers get a copy
    return out


def expansion_histograms(
    layout: BlockLayout,
    w0: np.ndarray,
    nodes_filled: np.ndarray,
    values: np.ndarray,
    lo: float,
    hi: float,
    *,
    weights_truth: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms of every universe from the K node histograms (see the module docstring):
    hist_u = Σₖ L[u, k] Nₖ with L the interpolation matrix at the universes' values."""
    k = nodes_filled.shape[0]
    table = ordered_matmul(chebyshev_interpolation_matrix(values, lo, hi, k), nodes_filled)
    sig, bkg, truth = layout.split(table)
    if not weights_truth:
        truth = np.repeat(layout.truth_sums(w0)[None, :], values.size, axis=0)
    return sig, bkg, truth


def _shifted_rows(x: np.ndarray, w: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Σ w over x in [bounds[u, b], bounds[u, b+1]) for every u, b (x need not be sorted)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    prefix = np.concatenate([[0.0], np.cumsum(w[order])])
    pos = np.searchsorted(xs, bounds.ravel(), side="left").reshape(bounds.shape)
    return prefix[pos[:, 1:]] - prefix[pos[:, :-1]]


def lateral_histograms(
    layout: BlockLayout,
    w0: np.ndarray,
    reco: np.ndarray,
    truth_bin: np.ndarray,
    signal: np.ndarray,
    selected: np.ndarray,
    affected: np.ndarray,
    scales: np.ndarray,
    reco_edges: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms when universe u multiplies the observable of ``affected`` events by scales[u] > 0."""
    n_u, n_reco, n_truth = scales.size, layout.n_reco, layout.n_truth
    fixed = np.where(affected, 0.0, w0)
    base_sig, base_bkg, truth = layout.fill(fixed)
    truth = layout.truth_sums(w0)
    bounds = reco_edges[None, :] / scales[:, None]
    sig = np.repeat(base_sig.reshape(1, n_reco, n_truth), n_u, axis=0)
    moving = selected & affected
    for j in range(n_truth):
        rows = moving & signal & (truth_bin == j)
        if rows.any():
            sig[:, :, j] += _shifted_rows(reco[rows], w0[rows], bounds)
    bkg = np.repeat(base_bkg[None, :], n_u, axis=0)
    rows = moving & ~signal
    if rows.any():
        bkg += _shifted_rows(reco[rows], w0[rows], bounds)
    return sig, bkg, np.repeat(truth[None, :], n_u, axis=0)


def _grouped_sums(weights: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """out[:, b] = Σ over columns with index b, for a (U × n) weight matrix."""
    out = np.zeros((weights.shape[0], size))
    if index.size == 0:
        return out
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_index[1:] != sorted_index[:-1]]))
    out[:, sorted_index[starts]] = np.add.reduceat(weights[:, order], starts, axis=1)
    return out


def bootstrap_histograms(
    layout: BlockLayout, w0: np.ndarray, poisson: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms of bootstrap replicas: ``poisson`` is (U × n) Poisson(1) weights per event."""
    n_u = poisson.shape[0]
    sig = _grouped_sums(
        poisson[:, layout.sig_events] * w0[layout.sig_events],
        layout.sig_index,
        layout.n_reco * layout.n_truth,
    )
    bkg = _grouped_sums(
        poisson[:, layout.bkg_events] * w0[layout.bkg_events], layout.bkg_index, layout.n_reco
    )
    truth = _grouped_sums(
        poisson[:, layout.truth_events] * w0[layout.truth_events],
        layout.truth_index,
        layout.n_truth,
    )
    return sig.reshape(n_u, layout.n_reco, layout.n_truth), bkg, truth


def categorical_histograms(
    layout: BlockLayout,
    w0: np.ndarray,
    category: np.ndarray,
    factors: np.ndarray,
    *,
    weights_truth: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Universes of a knob whose factor depends only on a discrete attribute of the event.

    ``category`` (n,) numbers each event's class (channel, nucleus, readout value, …; −1: the
    event keeps factor 1), ``factors`` (U × C) the knob's exact factor per universe and class:
    hist_u = Σ_c factors[u, c] · hist(w0 [class c]) + hist(w0 [no class]). Normalisations, the
    weak charge and an efficiency shift on a discrete readout are of this kind: exact, one pass
    over the events whatever the number of universes.
    """
    n_u, n_cat = factors.shape
    slot, slot_truth = layout.slots(w0.size, truth=True)
    n_slots = layout.n_slots
    per_class = class_slot_fill(category, n_cat, slot, slot_truth, w0, n_slots)  # unit class last
    unit = np.ones((n_u, 1))
    hist = ordered_matmul(np.concatenate([factors, unit], axis=1), per_class)
    sig, bkg, truth = layout.split(hist)
    if not weights_truth:
        truth = np.repeat(layout.truth_sums(w0)[None, :], n_u, axis=0)
    return sig, bkg, truth


def exact_histograms(
    layout: BlockLayout, w0: np.ndarray, weights: np.ndarray, *, weights_truth: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Universes with exact per-event weights (U × n), on fixed bins (no lateral shift)."""
    n_u = weights.shape[0]
    sig = np.zeros((n_u, layout.n_reco * layout.n_truth))
    bkg = np.zeros((n_u, layout.n_reco))
    truth = np.zeros((n_u, layout.n_truth))
    nominal_truth = None if weights_truth else layout.truth_sums(w0)
    for u in range(n_u):
        sig[u], bkg[u], truth[u] = layout.fill(w0 * weights[u])
        if nominal_truth is not None:
            truth[u] = nominal_truth
    return sig.reshape(n_u, layout.n_reco, layout.n_truth), bkg, truth
