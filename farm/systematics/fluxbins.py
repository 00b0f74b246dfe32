"""Flux bins: the (flavour, E_ν bin) cells on which flux universes are histograms (docs/internals.md §3).

Global flux-bin index f runs over the flavours of the binning in a fixed order, then over their
energy bins; one extra last bin collects everything a flux universe does not touch (events with
no neutrino, or E_ν outside the edges), so its ratio is always 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from farm.store.schema import FLAVOR_PDG

__all__ = ["FluxBins"]


@dataclass(frozen=True, kw_only=True)
class FluxBins:
    flavors: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]

    @classmethod
    def from_mapping(cls, edges: Mapping[str, list[float]]) -> FluxBins:
        flavors = tuple(sorted(edges))
        return cls(flavors=flavors, edges=tuple(tuple(edges[f]) for f in flavors))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(e) - 1 for e in self.edges)

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(x) for x in np.concatenate([[0], np.cumsum(self.sizes)[:-1]]))

    @property
    def n_bins(self) -> int:
        """Number of flux bins including the last, untouched one."""
        return sum(self.sizes) + 1

    @property
    def untouched(self) -> int:
        return self.n_bins - 1

    def flavor_slice(self, flavor: str) -> slice:
        k = self.flavors.index(flavor)
        return slice(self.offsets[k], self.offsets[k] + self.sizes[k])

    def centers_log(self) -> np.ndarray:
        """ln of the geometric bin centres (for shape correlations), untouched bin excluded."""
        out = []
        for e in self.edges:
            e = np.asarray(e, dtype=np.float64)
            lo = np.maximum(e[:-1], 1e-3)
            out.append(0.5 * (np.log(lo) + np.log(e[1:])))
        return np.concatenate(out)

    def index(self, flavor_pdg: np.ndarray, enu_mev: np.ndarray) -> np.ndarray:
        """Global flux-bin index per event (int32)."""
        out = np.full(enu_mev.shape, self.untouched, dtype=np.int32)
        for k, flavor in enumerate(self.flavors):
            sel = flavor_pdg == FLAVOR_PDG[flavor]
            if not sel.any():
                continue
            edges = np.asarray(self.edges[k])
            b = np.searchsorted(edges, enu_mev[sel], side="right") - 1
            inside = (b >= 0) & (b < len(edges) - 1)
            out[np.flatnonzero(sel)[inside]] = self.offsets[k] + b[inside]
        return out
