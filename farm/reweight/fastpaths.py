"""Fast histogramming of per-event universes when a chunk holds one kind of variation.

Three exact-or-checked shortcuts for the per-event path (design.md §5), each a pure kernel:

- **Expansion** (a weight knob): the per-event weight r_e(δ) is interpolated on K Chebyshev nodes
  over the thrown range of δ, r_e(δ) = Σ_k c_ek T_k(x(δ)). Then every universe is a sum of K basis
  histograms, hist_u = Σ_k T_k(x_u) H_k with H_k = hist(w0 c_k): K exact evaluations per event
  instead of one per universe. Exact for normalisations (degree 1) and sin²θ_W (degree 2); for
  the others the caller checks the interpolation against exact weights before using it.
- **Lateral shift** (a scale of the observable): events of each histogram row are sorted by their
  reco value once; a universe with scale s takes bin b as the events with x ≥ e_b/s and
  x < e_{b+1}/s, read from prefix sums of the weights. O(B log N) per universe.
- **Bootstrap**: Poisson weights are summed per bin with ``np.add.reduceat`` over events grouped
  by bin once, instead of a scatter over (universe × event) pairs.

All three return the same histograms as the generic path up to floating-point rounding, and are
deterministic: the same block always gives the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BlockLayout",
    "bootstrap_histograms",
    "categorical_histograms",
    "chebyshev_coefficients",
    "chebyshev_nodes",
    "evaluate_expansion",
    "exact_histograms",
    "expansion_histograms",
    "lateral_histograms",
]


@dataclass(frozen=True, kw_only=True)
class BlockLayout:
    """Which events of a block fill which histogram row (fixed bins, no lateral shift)."""

    n_reco: int
    n_truth: int
    sig_events: np.ndarray
    sig_index: np.ndarray
    """reco × n_truth + truth of each selected, in-range signal event."""
    bkg_events: np.ndarray
    bkg_index: np.ndarray
    truth_events: np.ndarray
    truth_index: np.ndarray

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
        in_reco = selected & (reco_bin >= 0)
        sig = np.flatnonzero(in_reco & signal)
        bkg = np.flatnonzero(in_reco & ~signal)
        truth = np.flatnonzero(signal)
        return cls(
            n_reco=n_reco,
            n_truth=n_truth,
            sig_events=sig,
            sig_index=reco_bin[sig] * n_truth + truth_bin[sig],
            bkg_events=bkg,
            bkg_index=reco_bin[bkg],
            truth_events=truth,
            truth_index=truth_bin[truth],
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


def chebyshev_nodes(lo: float, hi: float, k: int) -> np.ndarray:
    """The k Chebyshev points of the first kind mapped onto [lo, hi]."""
    x = np.cos(np.pi * (np.arange(k) + 0.5) / k)
    return 0.5 * (hi + lo) + 0.5 * (hi - lo) * x


def _to_unit(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (2.0 * values - (hi + lo)) / (hi - lo)


def chebyshev_coefficients(at_nodes: np.ndarray) -> np.ndarray:
    """c_j = (2/K) Σ_k f(x_k) T_j(x_k) (c_0 halved), from values at the K first-kind nodes.

    Summed in a fixed order with elementwise operations (no BLAS), so the bits never depend on
    the machine's thread count.
    """
    k = at_nodes.shape[0]
    x = np.cos(np.pi * (np.arange(k) + 0.5) / k)
    vander = np.polynomial.chebyshev.chebvander(x, k - 1)
    coefficients = np.zeros_like(at_nodes)
    for j in range(k):
        for node in range(k):
            coefficients[j] += vander[node, j] * at_nodes[node]
    coefficients *= 2.0 / k
    coefficients[0] *= 0.5
    return coefficients


def evaluate_expansion(
    coefficients: np.ndarray, values: np.ndarray, lo: float, hi: float
) -> np.ndarray:
    """Σ_j c_j T_j(x(v)) for each value: shape (len(values), n)."""
    basis = np.polynomial.chebyshev.chebvander(_to_unit(values, lo, hi), coefficients.shape[0] - 1)
    out = np.zeros((values.size, coefficients.shape[1]))
    for j in range(coefficients.shape[0]):
        out += basis[:, j, None] * coefficients[j][None, :]
    return out


def expansion_histograms(
    layout: BlockLayout,
    w0: np.ndarray,
    coefficients: np.ndarray,
    values: np.ndarray,
    lo: float,
    hi: float,
    *,
    weights_truth: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms of every universe from K basis histograms (see the module docstring)."""
    k = coefficients.shape[0]
    basis = np.polynomial.chebyshev.chebvander(_to_unit(values, lo, hi), k - 1)
    filled = [layout.fill(w0 * coefficients[j]) for j in range(k)]
    n_u = values.size
    sig = np.zeros((n_u, layout.n_reco * layout.n_truth))
    bkg = np.zeros((n_u, layout.n_reco))
    truth = np.zeros((n_u, layout.n_truth))
    for j in range(k):
        sig += basis[:, j, None] * filled[j][0][None, :]
        bkg += basis[:, j, None] * filled[j][1][None, :]
        if weights_truth:
            truth += basis[:, j, None] * filled[j][2][None, :]
    if not weights_truth:
        truth[:] = layout.fill(w0)[2][None, :]
    return sig.reshape(n_u, layout.n_reco, layout.n_truth), bkg, truth


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
    truth = layout.fill(w0)[2]
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

    ``category`` (n,) numbers each event's class (channel, nucleus, …), ``factors`` (U × C) the
    knob's exact factor per universe and class: hist_u = Σ_c factors[u, c] · hist(w0 [class c]).
    Normalisations and the weak charge are of this kind: exact, and C fills instead of U.
    """
    n_u, n_cat = factors.shape
    sig = np.zeros((n_u, layout.n_reco * layout.n_truth))
    bkg = np.zeros((n_u, layout.n_reco))
    truth = np.zeros((n_u, layout.n_truth))
    for c in range(n_cat):
        part = layout.fill(np.where(category == c, w0, 0.0))
        sig += factors[:, c, None] * part[0][None, :]
        bkg += factors[:, c, None] * part[1][None, :]
        if weights_truth:
            truth += factors[:, c, None] * part[2][None, :]
    if not weights_truth:
        truth[:] = layout.fill(w0)[2][None, :]
    return sig.reshape(n_u, layout.n_reco, layout.n_truth), bkg, truth


def exact_histograms(
    layout: BlockLayout, w0: np.ndarray, weights: np.ndarray, *, weights_truth: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Universes with exact per-event weights (U × n), on fixed bins (no lateral shift)."""
    n_u = weights.shape[0]
    sig = np.zeros((n_u, layout.n_reco * layout.n_truth))
    bkg = np.zeros((n_u, layout.n_reco))
    truth = np.zeros((n_u, layout.n_truth))
    nominal_truth = None if weights_truth else layout.fill(w0)[2]
    for u in range(n_u):
        sig[u], bkg[u], truth[u] = layout.fill(w0 * weights[u])
        if nominal_truth is not None:
            truth[u] = nominal_truth
    return sig.reshape(n_u, layout.n_reco, layout.n_truth), bkg, truth
