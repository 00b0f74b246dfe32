"""Exact factorised flux reweighting (design.md §5).

A flux universe is a histogram ratio R_u[f] on flux bins, so an event's weight is w0 · R_u[f(event)].
A block of events is read once into tensors over (flux bin, reco bin, truth bin); every flux
universe is then a matrix product with R. Cost O(N + U·F·B) instead of O(N·U).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FluxTensors", "apply_flux_universes", "flux_tensors", "reweight_loop"]


@dataclass(frozen=True, kw_only=True)
class FluxTensors:
    signal: np.ndarray
    """(F, I, J): selected signal by flux bin, reco bin, truth bin (Σ w0)."""
    background: np.ndarray
    """(F, I): selected background by flux bin and reco bin."""
    truth: np.ndarray
    """(F, J): all signal (selected or not) by flux bin and truth bin."""

    def __add__(self, other: FluxTensors) -> FluxTensors:
        return FluxTensors(
            signal=self.signal + other.signal,
            background=self.background + other.background,
            truth=self.truth + other.truth,
        )


def flux_tensors(
    w0: np.ndarray,
    flux_bin: np.ndarray,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    is_signal: np.ndarray,
    selected: np.ndarray,
    *,
    n_flux: int,
    n_reco: int,
    n_truth: int,
) -> FluxTensors:
    """Fill the tensors once. ``reco_bin`` is −1 outside the reco range, ``truth_bin`` −1 outside truth."""
    in_reco = selected & (reco_bin >= 0)
    sig = in_reco & is_signal & (truth_bin >= 0)
    bkg = in_reco & ~is_signal
    truth_sel = is_signal & (truth_bin >= 0)
    idx = (flux_bin[sig].astype(np.int64) * n_reco + reco_bin[sig]) * n_truth + truth_bin[sig]
    signal = np.bincount(idx, weights=w0[sig], minlength=n_flux * n_reco * n_truth)
    background = np.bincount(
        flux_bin[bkg].astype(np.int64) * n_reco + reco_bin[bkg],
        weights=w0[bkg],
        minlength=n_flux * n_reco,
    )
    truth = np.bincount(
        flux_bin[truth_sel].astype(np.int64) * n_truth + truth_bin[truth_sel],
        weights=w0[truth_sel],
        minlength=n_flux * n_truth,
    )
    return FluxTensors(
        signal=signal.reshape(n_flux, n_reco, n_truth),
        background=background.reshape(n_flux, n_reco),
        truth=truth.reshape(n_flux, n_truth),
    )


def apply_flux_universes(
    ratio: np.ndarray, tensors: FluxTensors
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms in every flux universe: (signal[u,i,j], background[u,i], truth[u,j]) = R @ C."""
    f = ratio.shape[1]
    signal = (ratio @ tensors.signal.reshape(f, -1)).reshape(
        ratio.shape[0], *tensors.signal.shape[1:]
    )
    background = ratio @ tensors.background
    truth = ratio @ tensors.truth
    return signal, background, truth


def reweight_loop(
    ratio: np.ndarray,
    w0: np.ndarray,
    flux_bin: np.ndarray,
    reco_bin: np.ndarray,
    truth_bin: np.ndarray,
    is_signal: np.ndarray,
    selected: np.ndarray,
    *,
    n_reco: int,
    n_truth: int,
) -> np.ndarray:
    """The per-universe reweight-and-histogram loop that the factorised path replaces.

    Kept as the reference for tests and benchmarks: selected-signal histograms (u, i, j).
    """
    sig = selected & is_signal & (reco_bin >= 0) & (truth_bin >= 0)
    idx = reco_bin[sig].astype(np.int64) * n_truth + truth_bin[sig]
    fb, w = flux_bin[sig], w0[sig]
    out = np.empty((ratio.shape[0], n_reco, n_truth))
    for u in range(ratio.shape[0]):
        out[u] = np.bincount(idx, weights=w * ratio[u, fb], minlength=n_reco * n_truth).reshape(
            n_reco, n_truth
        )
    return out
