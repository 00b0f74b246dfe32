"""The nominal flux each sample was generated with, as a quadrature rule per flavour.

A rule is (energies in MeV, fluence in ν/cm² over the exposure carried by each node), so that
∫ F̄(E) g(E) dE ≈ Σ_k fluence_k g(E_k) for smooth g. Flux bins, the integrated flux Φ and the
folding of plugged-in cross-section models all use it.
"""

from __future__ import annotations

import math

import numpy as np

from farm.config import (
    FarmConfig,
    NuscopeConfig,
    ReactorCevnsConfig,
    ReactorIbdConfig,
    SnsCevnsConfig,
)
from farm.physics import flux

__all__ = ["FluxRule", "flux_rule"]

FluxRule = dict[str, tuple[np.ndarray, np.ndarray]]

_NODES = 256


def _gauss_legendre(lo: float, hi: float, n: int = _NODES) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (hi - lo) * x + 0.5 * (hi + lo), 0.5 * (hi - lo) * w


def _sns(cfg: SnsCevnsConfig) -> FluxRule:
    from farm.samples.sns import _fluence_per_cm2

    fluence = _fluence_per_cm2(cfg)
    rule: FluxRule = {"numu": (np.array([flux.PIDAR_NUMU_LINE_MEV]), np.array([fluence]))}
    e, w = _gauss_legendre(0.0, flux.MICHEL_ENDPOINT_MEV)
    for flavor in ("nue", "numubar"):
        rule[flavor] = (e, fluence * w * flux.pidar_spectrum(flavor, e))
    return rule


def _reactor(cfg: ReactorCevnsConfig | ReactorIbdConfig) -> FluxRule:
    from farm.samples.reactor import _fissions

    src = cfg.source
    scale = _fissions(cfg) / (4.0 * math.pi * (src.distance_m * 100.0) ** 2)
    # piecewise rules so the kink of the low-energy extension at 2 MeV is integrated exactly
    knots = [k for k in (src.enu_min_mev, 2.0, 8.0, src.enu_max_mev) if src.enu_min_mev <= k <= src.enu_max_mev]
    parts = [_gauss_legendre(a, b, 128) for a, b in zip(knots[:-1], knots[1:], strict=True) if b > a]
    e = np.concatenate([p[0] for p in parts])
    w = np.concatenate([p[1] for p in parts])
    return {"nuebar": (e, scale * w * flux.reactor_spectrum(e, src.fission_fractions))}


def _nuscope(cfg: NuscopeConfig) -> FluxRule:
    from farm.samples.nuscope import flux_sample

    return flux_sample(cfg)


def flux_rule(cfg: FarmConfig) -> FluxRule:
    """The nominal flux of the configured sample, per flavour."""
    if isinstance(cfg, SnsCevnsConfig):
        return _sns(cfg)
    if isinstance(cfg, ReactorCevnsConfig | ReactorIbdConfig):
        return _reactor(cfg)
    return _nuscope(cfg)
