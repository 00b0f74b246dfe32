"""Exact factorised flux reweighting (docs/internals.md §3).

A flux universe is a histogram ratio R_u[f] on flux bins, so an event's weight is w0 · R_u[f(event)].
A block of events is read once into tensors over (flux bin, reco bin, truth bin); every flux
universe is then a matrix product with R. Cost O(N + U·F·B) instead of O(N·U).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.reweight.compiled import flux_fill

__all__ = [
    "FluxTensors",
    "apply_flux_universes",
    "flux_tensors",
    "reweight_loop",
    "tensors_from_table",
]


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
    """Fill the tensors once. ``reco_bin`` is −1 outside the reco range, ``truth_bin`` −1 outside truth.

    One pass over the events (farm.reweight.compiled.flux_fill: numba, or two weighted
    ``bincount`` passes without it); each bin is summed in event order either way, so both give
    the same bits.
    """
    table = flux_fill(
        w0, flux_bin, reco_bin, truth_bin, is_signal, selected, n_flux, n_reco, n_truth
    )
    return tensors_from_table(table, n_reco=n_reco, n_truth=n_truth)


def tensors_from_table(table: np.ndarray, *, n_reco: int, n_truth: int) -> FluxTensors:
    """The tensors in the (F, I·J + I + J) table of :func:`farm.reweight.compiled.flux_fill`."""
    n_flux, n_sig = table.shape[0], n_reco * n_truth
    return FluxTensors(
        signal=table[:, :n_sig].reshape(n_flux, n_reco, n_truth).copy(),
        background=table[:, n_sig : n_sig + n_reco].copy(),
        truth=table[:, n_sig + n_reco : n_sig + n_reco + n_truth].copy(),
    )


def apply_flux_universes(
    ratio: np.ndarray, tensors: FluxTensors
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histograms in every flux universe: (signal[u,i,j], background[u,i], truth[u,j]) = R @ C.

    Summed over flux bins in a fixed order with elementwise operations rather than BLAS, so the
    bits do not depend on the BLAS build or its thread count (driver and workers agree).
    """

    def product(c: np.ndarray) -> np.ndarray:
        flat = c.reshape(c.shape[0], -1)
        out = np.zeros((ratio.shape[0], flat.shape[1]))
        for f in range(flat.shape[0]):
            out += ratio[:, f, None] * flat[f][None, :]
        return out.reshape(ratio.shape[0], *c.shape[1:])

    return product(tensors.signal), product(tensors.background), product(tensors.truth)


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
