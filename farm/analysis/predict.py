"""Predictions of cross-section models in every flux universe, in both conventions (design.md §2).

A plugged-in model is a callable ``model(enu_mev, flavor) -> σ`` in cm² per target. It is folded
with the nominal flux rule once per flux bin and truth bin, G[f, j] = Σ_k∈f,j fluence_k σ(E_k);
every universe then follows exactly: real-flux prediction (R_u G)_j / Φ_u, nominal-flux
prediction (Σ_f G_fj) / Φ̄. The generator's own model is the truth-level MC itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import numpy as np

from farm.analysis.nominal_flux import FluxRule
from farm.store.schema import FLAVOR_PDG
from farm.systematics.fluxbins import FluxBins

__all__ = ["XsecModel", "binned_flux", "fold_model", "load_model", "model_predictions"]

XsecModel = Callable[[np.ndarray, str], np.ndarray]


def load_model(spec: str) -> XsecModel:
    """Import ``module:callable``. This runs user code: only load models you trust."""
    module_name, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        msg = f"cannot load model {spec!r}: {err}; give module:callable importable on this machine"
        raise ValueError(msg) from None
    if not callable(obj):
        msg = f"model {spec!r} is not callable"
        raise ValueError(msg)
    return obj  # type: ignore[return-value]


def binned_flux(rule: FluxRule, bins: FluxBins, flavors: Sequence[str] | None = None) -> np.ndarray:
    """Nominal fluence per flux bin (the last bin holds what lies outside the edges)."""
    out = np.zeros(bins.n_bins)
    for flavor, (e, w) in rule.items():
        if flavors is not None and flavor not in flavors:
            continue
        index = bins.index(np.full(e.shape, FLAVOR_PDG[flavor]), e)
        out += np.bincount(index, weights=w, minlength=bins.n_bins)
    return out


def fold_model(
    model: XsecModel,
    rule: FluxRule,
    bins: FluxBins,
    signal_flavors: Sequence[str],
    truth_edges: np.ndarray | None,
    *,
    name: str = "model",
) -> np.ndarray:
    """G[f, j]: fluence × σ summed over the rule's nodes in flux bin f and truth bin j (E_ν truth)."""
    n_truth = 1 if truth_edges is None else truth_edges.size - 1
    g = np.zeros((bins.n_bins, n_truth))
    for flavor in signal_flavors:
        e, w = rule[flavor]
        try:
            sigma = np.asarray(model(e, flavor), dtype=np.float64)
        except Exception as err:  # a plug-in is user code: report it in terms of the model
            msg = f"model {name!r} raised {type(err).__name__}: {err} (called with {e.size} energies for {flavor})"
            raise ValueError(msg) from err
        if sigma.shape != e.shape:
            msg = f"model {name!r} returned shape {sigma.shape} for {e.size} energies of {flavor}; return one σ per energy"
            raise ValueError(msg)
        if not np.all(np.isfinite(sigma)):
            msg = f"model {name!r} returned NaN or inf for {flavor} (e.g. at E = {e[~np.isfinite(sigma)][0]:.4g} MeV)"
            raise ValueError(msg)
        fbin = bins.index(np.full(e.shape, FLAVOR_PDG[flavor]), e)
        if truth_edges is None:
            tbin = np.zeros(e.shape, dtype=np.int64)
        else:
            tbin = np.searchsorted(truth_edges, e, side="right") - 1
        keep = (tbin >= 0) & (tbin < n_truth)
        np.add.at(g, (fbin[keep], tbin[keep]), w[keep] * sigma[keep])
    return g


def model_predictions(
    g: np.ndarray,
    flux_ratio: np.ndarray,
    phi: np.ndarray,
    ac_real: np.ndarray,
    ac_nominal: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(pred_real[u, j], pred_nominal[u, j]) with each universe's additional smearing applied."""
    real = (flux_ratio @ g) / phi[:, None]
    nominal = np.broadcast_to(g.sum(axis=0) / phi[0], real.shape)
    return np.einsum("ujk,uk->uj", ac_real, real), np.einsum("ujk,uk->uj", ac_nominal, nominal)
