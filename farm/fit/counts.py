"""The measurement as the farm made it: observed counts, background, response and extraction.

A pseudo-experiment at θ throws Poisson counts about the expected reco spectrum

    ν_i(θ) = b_i + Σ_j R_ij t_j(θ),     t_j(θ) = c · p_j(θ)      (c = T Φ₀, or T Φ̄ nominal)

(b the background, R the universe-0 response of the convention, p(θ) the model's central
prediction before A_C) and extracts the cross section from them with the result's own method
(:func:`farm.analysis.extract.unfold_universes`: least squares or D'Agostini with the result's
prior and iterations), exactly as ``farm run`` extracted the data. The statistics covariance of a
pseudo-experiment is J diag(d) Jᵀ of its own counts d where the extraction is linear (least
squares, or one truth bin), as the result's ``cov_stat_*``; otherwise the result's.

Wiener-SVD extractions (their whitening depends on the data's covariance) and results whose
extraction cannot be reproduced from the stored arrays get no counts model: their
pseudo-experiments are Gaussian about the prediction with the result's statistics covariance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from farm.analysis.extract import (
    ExtractionSettings,
    is_linear,
    linear_map,
    unfold_universes,
)

__all__ = ["CountsModel", "counts_model"]

_REPRODUCED = 1e-9
"""Largest relative difference between the re-extracted data and the stored central value."""


@dataclass(frozen=True, kw_only=True, eq=False)
class CountsModel:
    """Observed counts, background, response and extraction of one convention (universe 0)."""

    data: np.ndarray
    """(R,) observed counts."""
    background: np.ndarray
    """(R,) expected background."""
    response: np.ndarray
    """(R, J) expected reco counts per unit truth count."""
    prior: np.ndarray
    """(J,) truth counts the extraction starts from (D'Agostini's prior)."""
    counts_per_xsec: float
    """c: truth counts per cm² of predicted flux share (T Φ₀ real, T Φ̄ nominal)."""
    settings: ExtractionSettings
    stat_cov_fixed: np.ndarray
    """(J, J) the result's statistics covariance (cm⁴), used where the extraction is not linear."""

    @property
    def linear(self) -> bool:
        return is_linear(self.settings, self.prior.size)

    @property
    def jacobian(self) -> np.ndarray:
        """(J, R) cm² per count: the linear extraction (meaningful where ``linear``)."""
        return (
            linear_map(self.response, self.prior, self._cov_reco, self.settings)
            / self.counts_per_xsec
        )

    @property
    def _cov_reco(self) -> np.ndarray:
        return np.diag(np.maximum(self.data, 1.0))

    def expected(self, raw: np.ndarray) -> np.ndarray:
        """ν(θ) = b + R c p(θ): expected reco counts for a central prediction ``raw`` (cm²)."""
        return self.background + self.response @ (self.counts_per_xsec * np.asarray(raw))

    def extract(self, counts: np.ndarray) -> np.ndarray:
        """(n, J) cross sections (cm²) extracted from counts (n, R) as ``farm run`` did."""
        counts = np.atleast_2d(counts)
        n = counts.shape[0]
        truth, _ = unfold_universes(
            counts - self.background[None, :],
            np.broadcast_to(self.response, (n, *self.response.shape)),
            np.broadcast_to(self.prior, (n, self.prior.size)),
            self._cov_reco,
            self.settings,
        )
        return truth / self.counts_per_xsec

    def fingerprint_parts(self) -> list[object]:
        """What decides the pseudo-experiments this model throws (farm.fit.fc.toy_fingerprint)."""
        return [
            self.data,
            self.background,
            self.response,
            self.prior,
            float(self.counts_per_xsec),
            self.settings.method,
            int(self.settings.iterations),
            self.stat_cov_fixed,
        ]

    def stat_cov(self, counts: np.ndarray) -> np.ndarray:
        """(n, J, J) statistics covariance (cm⁴) of each row of counts, J diag(d) Jᵀ where linear."""
        counts = np.atleast_2d(counts)
        if not self.linear:
            return np.broadcast_to(
                self.stat_cov_fixed, (counts.shape[0], *self.stat_cov_fixed.shape)
            )
        weighted = self.jacobian[None, :, :] * np.sqrt(np.maximum(counts, 0.0))[:, None, :]
        return weighted @ np.swapaxes(weighted, -1, -2)


def counts_model(
    ds: Any, convention: str, measured: np.ndarray, phi: np.ndarray
) -> tuple[CountsModel | None, str]:
    """The counts model of a result and convention, or (None, why not)."""
    needed = ("data_counts", "background_reco", "truth_counts", "response", "smearing_nominal")
    missing = [v for v in needed if v not in ds.variables]
    if missing:
        return None, f"the result lacks {', '.join(missing)}"
    method = str(ds.attrs.get("extraction_method", ""))
    if method not in ("lsq", "dagostini"):
        return (
            None,
            f"the {method or 'unknown'} extraction is not re-run on pseudo-data (its whitening depends on the data)",
        )
    settings = ExtractionSettings(
        method=method,
        iterations=int(ds.attrs.get("iterations", 4)) or 4,
    )
    response = ds["response" if convention == "real" else "smearing_nominal"].values[0]
    model = CountsModel(
        data=np.asarray(ds["data_counts"].values, dtype=np.float64),
        background=np.asarray(ds["background_reco"].values[0], dtype=np.float64),
        response=np.asarray(response, dtype=np.float64),
        prior=np.asarray(ds["truth_counts"].values[0], dtype=np.float64),
        counts_per_xsec=float(ds.attrs["n_targets"]) * float(phi[0]),
        settings=settings,
        stat_cov_fixed=np.asarray(ds[f"cov_stat_{convention}"].values, dtype=np.float64),
    )
    again = model.extract(model.data[None, :])[0]
    scale = np.max(np.abs(measured[0]))
    if not np.all(np.abs(again - measured[0]) <= _REPRODUCED * scale):
        return None, "re-extracting the stored data counts does not give the stored central value"
    return model, ""
