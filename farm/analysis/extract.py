"""Cross-section extraction in every universe, in both flux conventions (design.md §2).

Real-flux-averaged: S_u = unfold(d − B_u; R_u) / (T Φ_u), R_u the response of universe u and
Φ_u its own integrated flux, estimating ∫ F σ dE / Φ.

Nominal-flux-averaged: S̃_u = unfold(d − B_u; M_u) / (T Φ̄), with M_u = (signal reconstructed in i
from truth j in universe u) / (signal in truth j at the nominal flux): all flux uncertainty sits in
the measurement, and a prediction needs only the nominal flux.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.analysis import unfold
from farm.analysis.histograms import UniverseHistograms

__all__ = ["Extraction", "ExtractionSettings", "extract", "unfold_universes"]


@dataclass(frozen=True, kw_only=True)
class ExtractionSettings:
    method: str = "dagostini"
    iterations: int = 4
    wiener_order: int = 2
    n_stat_toys: int = 200
    stat_seed: int = 1


@dataclass(frozen=True, kw_only=True)
class Extraction:
    xsec_real: np.ndarray
    """(U, J) real-flux-averaged cross section, cm² per target."""
    xsec_nominal: np.ndarray
    """(U, J) nominal-flux-averaged cross section, cm² per target."""
    additional_smearing_real: np.ndarray
    """(U, J, J) Wiener-SVD A_C (identity for other methods)."""
    additional_smearing_nominal: np.ndarray
    cov_stat_real: np.ndarray
    """(J, J) data-statistics covariance of the central-value extraction."""
    cov_stat_nominal: np.ndarray


def _stat_cov_reco(data: np.ndarray) -> np.ndarray:
    """Poisson covariance of the observed counts; empty bins get variance 1 so it stays invertible."""
    return np.diag(np.maximum(data, 1.0))


def unfold_universes(
    signal_reco: np.ndarray,
    response: np.ndarray,
    prior: np.ndarray,
    cov_reco: np.ndarray,
    settings: ExtractionSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Unfolded truth counts (U, J) and the additional smearing A_C (U, J, J) for every universe."""
    n_u, n_truth = prior.shape
    identity = np.broadcast_to(np.eye(n_truth), (n_u, n_truth, n_truth))
    if settings.method == "lsq":
        return unfold.unfold_least_squares(signal_reco, response), identity.copy()
    if settings.method == "dagostini":
        return unfold.unfold_dagostini(
            signal_reco, response, prior=prior, n_iterations=settings.iterations
        ), identity.copy()
    if settings.method == "wiener-svd":
        result = unfold.unfold_wiener_svd(
            signal_reco, response, cov_reco, signal_model=prior, order=settings.wiener_order
        )
        return result.unfolded, result.additional_smearing
    msg = f"unknown extraction method {settings.method!r}; choose lsq, dagostini or wiener-svd"
    raise ValueError(msg)


def _stat_covariance(
    data: np.ndarray,
    background: np.ndarray,
    response: np.ndarray,
    prior: np.ndarray,
    scale: float,
    settings: ExtractionSettings,
) -> np.ndarray:
    """Covariance of the central-value extraction under Poisson fluctuations of the data (seeded toys)."""
    rng = np.random.default_rng(settings.stat_seed)
    toys = rng.poisson(np.maximum(data, 0.0), size=(settings.n_stat_toys, data.size)).astype(
        np.float64
    )
    n = settings.n_stat_toys
    truth, _ = unfold_universes(
        toys - background[None, :],
        np.broadcast_to(response, (n, *response.shape)),
        np.broadcast_to(prior, (n, prior.size)),
        _stat_cov_reco(data),
        settings,
    )
    values = truth / scale
    return np.atleast_2d(np.cov(values, rowvar=False))


def extract(
    hists: UniverseHistograms,
    data: np.ndarray,
    *,
    n_targets: float,
    phi: np.ndarray,
    settings: ExtractionSettings,
) -> Extraction:
    """Extract the cross section in every universe from the observed reco counts ``data``.

    ``phi`` (U,) is the integrated flux of the signal flavours in each universe (ν/cm²); universe 0
    is the nominal flux.
    """
    cov_reco = _stat_cov_reco(data)
    signal_reco = data[None, :] - hists.background
    prior = hists.truth
    truth_real, ac_real = unfold_universes(signal_reco, hists.response, prior, cov_reco, settings)
    truth_nominal, ac_nominal = unfold_universes(
        signal_reco, hists.smearing_nominal, hists.truth_nominal_flux, cov_reco, settings
    )
    scale_real = n_targets * phi
    scale_nominal = n_targets * phi[0]
    return Extraction(
        xsec_real=truth_real / scale_real[:, None],
        xsec_nominal=truth_nominal / scale_nominal,
        additional_smearing_real=ac_real,
        additional_smearing_nominal=ac_nominal,
        cov_stat_real=_stat_covariance(
            data, hists.background[0], hists.response[0], prior[0], scale_real[0], settings
        ),
        cov_stat_nominal=_stat_covariance(
            data,
            hists.background[0],
            hists.smearing_nominal[0],
            hists.truth_nominal_flux[0],
            scale_nominal,
            settings,
        ),
    )
