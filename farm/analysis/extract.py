"""Cross-section extraction in every universe, in both flux conventions (docs/guide-analysts.md §3).

Real-flux-averaged: S_u = unfold(d − B_u; R_u) / (T Φ_u), R_u the response of universe u and
Φ_u its own integrated flux, estimating ∫ F σ dE / Φ.

Nominal-flux-averaged: S̃_u = unfold(d − B_u; M_u) / (T Φ̄), with M_u = (signal reconstructed in i
from truth j in universe u) / (signal in truth j at the nominal flux): all flux uncertainty sits in
the measurement, and a prediction needs only the nominal flux.

Data statistics: the observed counts are Poisson, ``V_d = diag(max(d, 0))``. Where the extraction
of the central value is linear in the data — least squares, Wiener-SVD (its response, whitening
and additional smearing fixed in the CV universe), any extraction with one truth bin (D'Agostini
then gives ``x = Σ_i (d − b)_i / ε`` over the bins the response reaches) — the statistical
covariance is the exact propagation ``J V_d Jᵀ``, with ``J`` the extraction applied to each unit
vector of reco space. D'Agostini with several truth bins is not linear: its covariance comes from
seeded Poisson toys, with the Monte-Carlo error of their variances recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.analysis import unfold
from farm.analysis.histograms import UniverseHistograms
from farm.analysis.mc_error import relative_mc_error

__all__ = [
    "Extraction",
    "ExtractionSettings",
    "StatCovariance",
    "data_variance",
    "extract",
    "is_linear",
    "linear_map",
    "stat_covariance",
    "unfold_universes",
]


@dataclass(frozen=True, kw_only=True)
class ExtractionSettings:
    method: str = "dagostini"
    iterations: int = 4
    wiener_order: int = 2
    n_stat_toys: int = 1000
    """Poisson toys for the statistical covariance of a non-linear extraction."""
    stat_seed: int = 1


@dataclass(frozen=True, kw_only=True)
class StatCovariance:
    """The data-statistics covariance of the central-value extraction and how it was obtained."""

    cov: np.ndarray
    """(J, J)."""
    toys: int
    """Poisson toys it was estimated from; 0 for exact linear propagation."""
    rel_error: float
    """Largest relative MC error of a variance (0 when exact; ≈ √(2/(toys − 1)) for toys)."""

    def describe(self) -> str:
        if self.toys == 0:
            return "exact linear propagation J diag(max(d, 0)) J^T through the CV extraction"
        return (
            f"{self.toys} seeded Poisson toys of the data through the CV extraction; largest "
            f"relative MC error of a variance {self.rel_error:.3g}"
        )


@dataclass(frozen=True, kw_only=True)
class Extraction:
    xsec_real: np.ndarray
    """(U, J) real-flux-averaged cross section, cm² per target."""
    xsec_nominal: np.ndarray
    """(U, J) nominal-flux-averaged cross section, cm² per target."""
    additional_smearing_real: np.ndarray
    """(U, J, J) Wiener-SVD A_C (identity for other methods)."""
    additional_smearing_nominal: np.ndarray
    stat_real: StatCovariance
    """Data-statistics covariance of the central-value extraction."""
    stat_nominal: StatCovariance

    @property
    def cov_stat_real(self) -> np.ndarray:
        return self.stat_real.cov

    @property
    def cov_stat_nominal(self) -> np.ndarray:
        return self.stat_nominal.cov


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


def data_variance(data: np.ndarray) -> np.ndarray:
    """Poisson variance of each observed count, ``max(d, 0)`` (the toys' variance)."""
    return np.maximum(data, 0.0)


def is_linear(settings: ExtractionSettings, n_truth: int) -> bool:
    """Whether the CV extraction is linear in the data: lsq, Wiener-SVD, or one truth bin."""
    return settings.method in ("lsq", "wiener-svd") or n_truth == 1


def linear_map(
    response: np.ndarray, prior: np.ndarray, cov_reco: np.ndarray, settings: ExtractionSettings
) -> np.ndarray:
    """``J`` (n_truth, n_reco) of a linear extraction: column i is the extraction of unit vector i.

    The same code path as the extraction itself, so ``J (d − b)`` is what it gives for data
    ``d`` (up to rounding). Only meaningful where :func:`is_linear` holds.
    """
    n_reco = response.shape[0]
    truth, _ = unfold_universes(
        np.eye(n_reco),
        np.broadcast_to(response, (n_reco, *response.shape)),
        np.broadcast_to(prior, (n_reco, prior.size)),
        cov_reco,
        settings,
    )
    return truth.T


def stat_covariance(
    data: np.ndarray,
    background: np.ndarray,
    response: np.ndarray,
    prior: np.ndarray,
    scale: float,
    settings: ExtractionSettings,
) -> StatCovariance:
    """Covariance of the central-value extraction under Poisson fluctuations of the data.

    Linear extraction: ``J V_d Jᵀ / scale²`` exactly. Otherwise ``n_stat_toys`` seeded toys
    ``Poisson(max(d, 0))``, their sample covariance (1/(N − 1)) and its relative MC error.
    """
    cov_reco = _stat_cov_reco(data)
    if is_linear(settings, prior.size):
        jacobian = linear_map(response, prior, cov_reco, settings) / scale
        weighted = jacobian * np.sqrt(data_variance(data))
        cov = weighted @ weighted.T  # symmetric bit for bit
        return StatCovariance(cov=cov, toys=0, rel_error=0.0)
    n = settings.n_stat_toys
    if n < 2:
        msg = f"[analysis] stat_toys must be >= 2 to estimate a covariance; got {n}"
        raise ValueError(msg)
    rng = np.random.default_rng(settings.stat_seed)
    toys = rng.poisson(data_variance(data), size=(n, data.size)).astype(np.float64)
    truth, _ = unfold_universes(
        toys - background[None, :],
        np.broadcast_to(response, (n, *response.shape)),
        np.broadcast_to(prior, (n, prior.size)),
        cov_reco,
        settings,
    )
    values = truth / scale
    return StatCovariance(
        cov=np.atleast_2d(np.cov(values, rowvar=False)),
        toys=n,
        rel_error=relative_mc_error(values, center="mean", normalization="n-1"),
    )


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
        stat_real=stat_covariance(
            data, hists.background[0], hists.response[0], prior[0], scale_real[0], settings
        ),
        stat_nominal=stat_covariance(
            data,
            hists.background[0],
            hists.smearing_nominal[0],
            hists.truth_nominal_flux[0],
            scale_nominal,
            settings,
        ),
    )
