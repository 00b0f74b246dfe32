"""Write tests/data/theorist_record: a small, synthetic HEPData record in the NUISANCE conventions.

    python3 tests/data/make_theorist_record.py      # rewrites tests/data/theorist_record/

A ν_μ charged-current measurement on argon: ⟨σ⟩_j = ∫_j F σ dE / ∫_j F dE in six E_ν bins from
0.5 to 4 GeV, per nucleon in 1e-38 cm² (``total_cross_section``), in both flux conventions:

- ``cross_section-real``: the real-flux-averaged measurement, with its covariance, the
  measurement in 121 universes (60 throws of the flux shape, 60 of the detector) and the flux of
  every flux universe as a ratio per flux bin, so that a model's prediction is made in every
  universe and its chi-square takes the measured–predicted correlation into account;
- ``cross_section-nominal``: the same data averaged over the nominal flux, the flux
  uncertainty in its covariance (no universes: the prediction needs only the nominal flux).

The data are made, not measured: the truth is 1.08 × farm.models.numu_cc_argon, the flux a
Booster-like ν_μ spectrum, the statistics 2–6 % per bin. It exists to show and test the
theorist's path (examples/theorist_release.ipynb, tests/test_theorist_notebook.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from nuisance_record import FluxSpec, MeasurementSpec, write_record  # noqa: E402

from farm.models import numu_cc_argon  # noqa: E402

EDGES_GEV = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0]
FLUX_EDGES_GEV = list(np.round(np.arange(0.25, 5.01, 0.25), 2))
ARGON_NUCLEONS = 40
TRUTH_SCALE = 1.08
SEED = 20260601


def booster_like(e_gev: np.ndarray) -> np.ndarray:
    """ν/cm²/GeV (arbitrary normalisation): rises to a peak near 0.7 GeV, falls slowly."""
    return (
        1e11 * (e_gev / 0.7) ** 1.5 * np.exp(-1.5 * (e_gev / 0.7 - 1.0)) / (1 + (e_gev / 3.0) ** 3)
    )


def _bin_means(
    density: np.ndarray, ratio: np.ndarray, sigma: callable
) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[valid-type]
    """(∫_j F σ, ∫_j F) per measurement bin for a flux scaled by ``ratio`` per flux bin."""
    lo, hi = np.array(FLUX_EDGES_GEV[:-1]), np.array(FLUX_EDGES_GEV[1:])
    x, w = np.polynomial.legendre.leggauss(4)
    e = 0.5 * (hi - lo)[:, None] * x + 0.5 * (hi + lo)[:, None]
    weight = (density * ratio)[:, None] * 0.5 * (hi - lo)[:, None] * w
    j = np.searchsorted(EDGES_GEV, e, side="right") - 1
    inside = (j >= 0) & (j < len(EDGES_GEV) - 1)
    n = len(EDGES_GEV) - 1
    return (
        np.bincount(j[inside], (weight * sigma(e))[inside], n),
        np.bincount(j[inside], weight[inside], n),
    )


def per_nucleon(e_gev: np.ndarray) -> np.ndarray:
    """The synthetic truth, per nucleon in 1e-38 cm²."""
    return TRUTH_SCALE * numu_cc_argon(1000 * e_gev, "numu") / ARGON_NUCLEONS / 1e-38


def make(directory: Path) -> Path:
    rng = np.random.default_rng(SEED)
    centres = 0.5 * (np.array(FLUX_EDGES_GEV[:-1]) + np.array(FLUX_EDGES_GEV[1:]))
    density = booster_like(centres)
    n_flux, n_detector = 60, 60
    tilt = (centres - 1.0) / 2.0
    ratios = np.ones((1 + n_flux + n_detector, centres.size))
    ratios[1 : 1 + n_flux] = (
        1 + rng.normal(0, 0.06, (n_flux, 1)) * tilt + rng.normal(0, 0.04, (n_flux, centres.size))
    )
    numerator, flux_nominal = _bin_means(density, np.ones(centres.size), per_nucleon)
    truth = numerator / flux_nominal
    stat = np.array([0.02, 0.025, 0.03, 0.04, 0.05, 0.06]) * truth
    measured = truth + rng.normal(0, stat)
    universes = np.empty((ratios.shape[0], truth.size))
    for u, r in enumerate(ratios):
        _, flux_u = _bin_means(density, r, per_nucleon)
        universes[u] = measured * flux_nominal / flux_u  # N_j / (T Φ_j,u)
    detector = (
        1 + rng.normal(0, 0.03, (n_detector, 1)) + rng.normal(0, 0.02, (n_detector, truth.size))
    )
    universes[1 + n_flux :] = measured * detector
    systematic = ["cv"] + ["flux_shape"] * n_flux + ["detector"] * n_detector
    cov = np.zeros((truth.size, truth.size))
    for rows in (slice(1, 1 + n_flux), slice(1 + n_flux, None)):
        d = universes[rows] - universes[0]
        cov += d.T @ d / d.shape[0]
    total = cov + np.diag(stat**2)
    flux_universes = ratios[: 1 + n_flux]
    real = MeasurementSpec(
        name="real",
        edges_gev=EDGES_GEV,
        values=np.round(measured, 6).tolist(),
        covariance=total,
        universes=universes,
        universe_systematic=systematic,
        flux_universes=flux_universes,
        extra={"convention": "real-flux-averaged: int_j F sigma / int_j F with F the true flux"},
    )
    nominal = MeasurementSpec(
        name="nominal",
        edges_gev=EDGES_GEV,
        values=np.round(measured, 6).tolist(),
        covariance=total,
        extra={
            "convention": "nominal-flux-averaged: the nominal flux; flux uncertainty in the covariance"
        },
    )
    flux = FluxSpec(edges_gev=FLUX_EDGES_GEV, density_per_gev=np.round(density, 1).tolist())
    return write_record(directory, [real, nominal], flux)


if __name__ == "__main__":
    print(make(HERE / "theorist_record"))
