"""A flux file's own universes on the analysis flux bins (``from_flux = true`` systematics).

The analysis flux bins (``[binning] flux_edges_mev``) must each be a union of the file's bins of
their flavour, so that every analysis bin's flux is an exact sum (J: analysis bin k ← file bin i):

- universe histograms H_u (PPFX-style): r_u,k = (J H_u)_k / (J Φ̄)_k, the ratio of each analysis
  bin's flux in universe u to its nominal;
- a fractional covariance V on the file's bins: the absolute A = V ⊙ Φ̄ Φ̄ᵀ sums to J A Jᵀ on the
  analysis bins, fractional again after dividing by the analysis bins' nominal fluxes.

Flavours the universes do not cover keep ratio 1 (covariance 0).
"""

from __future__ import annotations

import numpy as np

from farm.flux.model import FluxUniverses
from farm.systematics.fluxbins import FluxBins

__all__ = ["analysis_jacobian", "universe_covariance", "universe_ratios"]


def analysis_jacobian(universes: FluxUniverses, bins: FluxBins, *, name: str) -> np.ndarray:
    """J (analysis bins without the untouched one, file bins): 1 where a file bin lies in an
    analysis bin. A ValueError names the analysis edge that is no file edge."""
    n_file = universes.nominal.size
    jac = np.zeros((bins.n_bins - 1, n_file))
    offset = 0
    for flavor, file_edges in zip(universes.flavors, universes.edges, strict=True):
        n = file_edges.size - 1
        if flavor in bins.flavors:
            edges = np.asarray(bins.edges[bins.flavors.index(flavor)], dtype=np.float64)
            inside = (edges >= file_edges[0]) & (edges <= file_edges[-1])
            unmatched = [
                e
                for e in edges[inside]
                if not np.any(np.isclose(file_edges, e, rtol=1e-12, atol=0.0))
            ]
            if unmatched:
                msg = (
                    f"systematic {name!r}: the flux universes' {flavor} bins have no edge at "
                    f"{unmatched[0]:g} MeV, an edge of [binning.flux_edges_mev.{flavor}]; choose "
                    "flux edges among the flux file's edges "
                    f"({', '.join(f'{x:g}' for x in file_edges[:12])}{' …' if n > 12 else ''} MeV)"
                )
                raise ValueError(msg)
            centres = 0.5 * (file_edges[:-1] + file_edges[1:])
            k = np.searchsorted(edges, centres, side="right") - 1
            ok = (k >= 0) & (k < edges.size - 1)
            start = bins.flavor_slice(flavor).start
            jac[start + k[ok], offset + np.flatnonzero(ok)] = 1.0
        offset += n
    return jac


def universe_ratios(universes: FluxUniverses, bins: FluxBins, *, name: str) -> np.ndarray:
    """(N, analysis bins without the untouched one): each universe's flux over the nominal."""
    if universes.histograms is None:
        msg = f"systematic {name!r}: the flux has a covariance, not universe histograms"
        raise ValueError(msg)
    jac = analysis_jacobian(universes, bins, name=name)
    nominal = jac @ universes.nominal
    per_universe = universes.histograms @ jac.T
    ratio = np.ones_like(per_universe)
    np.divide(per_universe, nominal[None, :], out=ratio, where=nominal[None, :] > 0)
    return ratio


def universe_covariance(universes: FluxUniverses, bins: FluxBins, *, name: str) -> np.ndarray:
    """(analysis bins without the untouched one)²: the fractional flux covariance."""
    if universes.covariance is None:
        msg = f"systematic {name!r}: the flux has universe histograms, not a covariance"
        raise ValueError(msg)
    jac = analysis_jacobian(universes, bins, name=name)
    absolute = universes.covariance * np.outer(universes.nominal, universes.nominal)
    summed = jac @ absolute @ jac.T
    nominal = jac @ universes.nominal
    scale = np.outer(nominal, nominal)
    return np.divide(summed, scale, out=np.zeros_like(summed), where=scale > 0)
