"""The nominal flux each sample was generated with, as a quadrature rule per flavour.

A rule is (energies in MeV, fluence in ν/cm² over the exposure carried by each node), so that
∫ F̄(E) g(E) dE ≈ Σ_k fluence_k g(E_k) for smooth g. Flux bins, the integrated flux Φ and the
folding of plugged-in cross-section models all use it.
"""

from __future__ import annotations

import itertools
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

_NODES = 48


def _gauss_legendre(lo: float, hi: float, n: int = _NODES) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (hi - lo) * x + 0.5 * (hi + lo), 0.5 * (hi - lo) * w


def _piecewise_rule(
    cfg: FarmConfig, flavor: str, lo: float, hi: float, extra: tuple[float, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre on every interval between the binning's edges, so that summing nodes by
    flux or truth bin integrates each bin exactly (no node straddles an edge)."""
    knots = {lo, hi, *extra}
    if cfg.binning is not None:
        knots.update(cfg.binning.flux_edges_mev.get(flavor, ()))
        if cfg.binning.truth == "enu_true" and cfg.binning.truth_edges:
            knots.update(cfg.binning.truth_edges)
    points = sorted(k for k in knots if lo <= k <= hi)
    parts = [_gauss_legendre(a, b, 48) for a, b in itertools.pairwise(points) if b > a]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _sns(cfg: SnsCevnsConfig) -> FluxRule:
    from farm.samples.sns import _fluence_per_cm2

    fluence = _fluence_per_cm2(cfg)
    rule: FluxRule = {"numu": (np.array([flux.PIDAR_NUMU_LINE_MEV]), np.array([fluence]))}
    for flavor in ("nue", "numubar"):
        e, w = _piecewise_rule(cfg, flavor, 0.0, flux.MICHEL_ENDPOINT_MEV)
        rule[flavor] = (e, fluence * w * flux.pidar_spectrum(flavor, e))
    return rule


def _reactor(cfg: ReactorCevnsConfig | ReactorIbdConfig) -> FluxRule:
    from farm.samples.reactor import _fissions

    src = cfg.source
    scale = _fissions(cfg) / (4.0 * math.pi * (src.distance_m * 100.0) ** 2)
    # 2 and 8 MeV are knots too: the low-energy extension joins the Huber-Mueller fit at 2 MeV
    e, w = _piecewise_rule(cfg, "nuebar", src.enu_min_mev, src.enu_max_mev, extra=(2.0, 8.0))
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
