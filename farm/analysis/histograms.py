"""Per-universe histograms assembled from reduced partial sums (docs/internals.md §1).

Flux universes (and the central value) follow from the flux tensors by R @ C; knob and bootstrap
universes were filled per event. Every universe then has: selected signal by (reco, truth), selected
background by reco, all signal by truth (at its own flux, and at the nominal flux for the
nominal-flux-averaged convention), and its flux per flux bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.accumulate import PartialSums
from farm.reweight.flux import apply_flux_universes
from farm.systematics.universes import UniverseSet

__all__ = ["UniverseHistograms", "assemble_histograms"]


@dataclass(frozen=True, kw_only=True)
class UniverseHistograms:
    signal: np.ndarray
    """(U, I, J) selected signal events by reco and truth bin."""
    background: np.ndarray
    """(U, I) selected background events by reco bin."""
    truth: np.ndarray
    """(U, J) all signal events by truth bin."""
    truth_nominal_flux: np.ndarray
    """(U, J) all signal events by truth bin with the flux held at nominal (denominator of M)."""
    flux: np.ndarray
    """(U, F) fluence per flux bin (ν/cm² over the exposure); the last bin is the untouched rest."""
    clamped: np.ndarray
    """(U,) events whose weight the clamping policy changed."""

    @property
    def response(self) -> np.ndarray:
        """Real-flux response: P(reco i, selected | truth j) in each universe."""
        return _divide_columns(self.signal, self.truth)

    @property
    def smearing_nominal(self) -> np.ndarray:
        """Nominal-flux M_ij: numerator in the universe, denominator at the nominal flux."""
        return _divide_columns(self.signal, self.truth_nominal_flux)

    @property
    def reco_expected(self) -> np.ndarray:
        """(U, I) expected selected events: signal summed over truth plus background."""
        return self.signal.sum(axis=2) + self.background


def _divide_columns(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator[:, None, :], out=out, where=denominator[:, None, :] > 0)
    return out


def assemble_histograms(
    sums: PartialSums,
    universes: UniverseSet,
    event_universes: np.ndarray,
    nominal_flux_per_bin: np.ndarray,
) -> UniverseHistograms:
    """Histograms of every universe from the reduced partial sums."""
    n_u = universes.n_universes
    factorised = np.setdiff1d(np.arange(n_u), event_universes)
    sig_f, bkg_f, truth_f = apply_flux_universes(universes.flux_ratio[factorised], sums.flux)
    shape_sig = (n_u, *sig_f.shape[1:])
    signal = np.empty(shape_sig)
    background = np.empty((n_u, bkg_f.shape[1]))
    truth = np.empty((n_u, truth_f.shape[1]))
    signal[factorised], background[factorised], truth[factorised] = sig_f, bkg_f, truth_f
    signal[event_universes], background[event_universes], truth[event_universes] = (
        sums.signal,
        sums.background,
        sums.truth,
    )
    truth_nominal = truth.copy()
    truth_nominal[universes.is_flux()] = truth[0]
    truth_nominal[event_universes] = sums.truth_nominal
    clamped = np.zeros(n_u, dtype=np.int64)
    clamped[event_universes] = sums.clamped
    return UniverseHistograms(
        signal=signal,
        background=background,
        truth=truth,
        truth_nominal_flux=truth_nominal,
        flux=universes.flux_ratio * nominal_flux_per_bin[None, :],
        clamped=clamped,
    )
