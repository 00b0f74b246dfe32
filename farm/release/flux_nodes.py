"""The nominal flux of a result at the resolution the run used: its quadrature nodes, as bins.

A run folds every model with the nominal flux rule of the signal flavours, nodes (E_k, F_k) with
∫ F̄ g dE ≈ Σ_k F_k g(E_k) (``flux_rule_*`` in the result). A release writes each flavour's nodes
as a histogram a generator can sample (one bin per node, ``bin_content_type=count``) together
with the node inside each bin (``E_nu node``), so that a reader that sums F_k g(E_k) over the
nodes gets exactly what the run got, and one that reads the histogram gets the flux to the bin
width.

The bins split the axis halfway between consecutive nodes, except at the edges of the flux bins
and (for truth binned in E_ν) of the truth bins, which are kept as bin edges, so no bin straddles
a bin of the measurement. A flavour with more than ``max_nodes`` nodes (nuSCOPE's beamline
sample has 400 000) is first merged into at most that many bins, each carrying its summed
fluence at its fluence-weighted mean energy: exact for a σ linear within the bin, and off by
½ σ'' Var_bin(E) otherwise (below 1e-7 relative for 2 MeV bins at GeV energies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FluxNodes", "flux_nodes"]

MAX_NODES = 20000
"""Default largest number of nodes per flavour written (more are merged into bins)."""


@dataclass(frozen=True, kw_only=True, eq=False)
class FluxNodes:
    flavor: str
    energy_mev: np.ndarray
    """(K,) node energies, increasing."""
    fluence: np.ndarray
    """(K,) ν/cm² over the exposure carried by each node."""
    lo_mev: np.ndarray
    hi_mev: np.ndarray
    merged: bool
    """Nodes were merged into bins (the rule had more than ``max_nodes``)."""


def _merge(
    e: np.ndarray, w: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes summed per bin of ``edges`` (lo ≤ E < hi), at their fluence-weighted mean energy."""
    index = np.searchsorted(edges, e, side="right") - 1
    keep = (index >= 0) & (index < edges.size - 1)
    n = edges.size - 1
    weight = np.bincount(index[keep], weights=w[keep], minlength=n)
    moment = np.bincount(index[keep], weights=(w * e)[keep], minlength=n)
    full = weight > 0
    return moment[full] / weight[full], weight[full], np.flatnonzero(full)


def flux_nodes(
    flavor: str,
    energy_mev: np.ndarray,
    fluence: np.ndarray,
    kept_edges: Sequence[float],
    *,
    max_nodes: int = MAX_NODES,
) -> FluxNodes:
    """The nodes of one flavour and a bin around each (see the module docstring)."""
    order = np.argsort(energy_mev, kind="stable")
    e, w = (
        np.asarray(energy_mev, dtype=np.float64)[order],
        np.asarray(fluence, dtype=np.float64)[order],
    )
    kept = np.unique(np.asarray(list(kept_edges), dtype=np.float64))
    merged = e.size > max_nodes
    if merged or np.any(np.diff(e) == 0):
        lo_e, hi_e = float(e[0]), float(np.nextafter(e[-1], np.inf))
        inside = kept[(kept > lo_e) & (kept < hi_e)]
        grid = np.linspace(lo_e, hi_e, max(2, min(max_nodes, e.size) - inside.size + 1))
        edges = np.unique(np.concatenate([grid, inside]))
        e, w, bins = _merge(e, w, edges)
        return FluxNodes(
            flavor=flavor,
            energy_mev=e,
            fluence=w,
            lo_mev=edges[bins],
            hi_mev=edges[bins + 1],
            merged=merged,
        )
    if e.size == 1:  # a line (the π-DAR ν_μ): a narrow bin around it
        half = 0.005 * abs(e[0]) or 0.5
        return FluxNodes(
            flavor=flavor, energy_mev=e, fluence=w, lo_mev=e - half, hi_mev=e + half, merged=False
        )
    bounds = 0.5 * (e[1:] + e[:-1])
    for k in range(bounds.size):  # a kept edge between two nodes is the bound
        between = kept[(kept > e[k]) & (kept <= e[k + 1])]
        if between.size:
            bounds[k] = between[0]
    first = max(e[0] - (bounds[0] - e[0]), 0.0) if e[0] >= 0 else e[0] - (bounds[0] - e[0])
    last = e[-1] + (e[-1] - bounds[-1])
    below, above = kept[kept <= e[0]], kept[kept > e[-1]]
    if below.size:
        first = max(first, below[-1])
    if above.size:
        last = min(last, above[0])
    lo = np.concatenate([[first], bounds])
    hi = np.concatenate([bounds, [last]])
    return FluxNodes(flavor=flavor, energy_mev=e, fluence=w, lo_mev=lo, hi_mev=hi, merged=False)
