"""The nominal flux of a run as a quadrature rule per flavour, on the analysis bins.

A rule is (energies in MeV, fluence in ν/cm² over the exposure carried by each node), so that
∫ F̄(E) g(E) dE ≈ Σ_k fluence_k g(E_k) for smooth g. Flux bins, the integrated flux Φ and the
folding of plugged-in cross-section models all use it. The flux itself is a
:class:`~farm.flux.model.Flux` resolved once at the boundary (:func:`farm.resolve.run_flux`:
a ``[flux]`` file, an ingested store's own flux, or the source model); this module only places
its nodes so that none straddles an analysis bin edge.
"""

from __future__ import annotations

from farm.config import FarmConfig
from farm.config.analysis import BinningSection
from farm.flux.model import Flux, FluxRule
from farm.resolve import analysis_knots, run_flux

__all__ = ["FluxRule", "analysis_rule", "flux_rule"]


def analysis_rule(flux: Flux, binning: BinningSection | None) -> FluxRule:
    """``flux``'s rule with knots at the analysis bin edges (summing nodes by flux or truth bin
    integrates each bin exactly)."""
    return flux.rule(analysis_knots(binning))


def flux_rule(cfg: FarmConfig) -> FluxRule:
    """The nominal flux of the configured run, per flavour (the flux :func:`run_flux` resolves)."""
    return analysis_rule(run_flux(cfg), cfg.binning)
