"""Predictions of cross-section models in every flux universe, in both conventions (docs/physics.md §1).

A plugged-in model is a callable ``model(enu_mev, flavor) -> σ`` in cm² per target. It is folded
with the nominal flux rule once per flux bin and truth bin, G[f, j] = Σ_k∈f,j fluence_k σ(E_k);
every universe then follows exactly: real-flux prediction (R_u G)_j / Φ_u, nominal-flux
prediction (Σ_f G_fj) / Φ̄. The generator's own model is the truth-level MC itself.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from farm.analysis.nominal_flux import FluxRule
from farm.store.schema import FLAVOR_PDG
from farm.systematics.fluxbins import FluxBins

__all__ = ["XsecModel", "binned_flux", "fold_model", "load_model", "model_predictions"]

XsecModel = Callable[[np.ndarray, str], np.ndarray]


def _import(module_name: str) -> object:
    """Import a module as ``python -m`` would find it: installed, or in the current folder.

    The current folder is searched only when the module is found nowhere else (so a folder
    never shadows an installed module), and then stays searched, as under ``python -m``, so that
    the model's own imports of its neighbours work too."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        top = module_name.partition(".")[0]
        here = os.getcwd()
        if err.name not in (top, module_name) or here in sys.path:
            raise
        if not (Path(here, f"{top}.py").is_file() or Path(here, top).is_dir()):
            raise
        sys.path.append(here)
        importlib.invalidate_caches()
        return importlib.import_module(module_name)


def load_model(spec: str) -> XsecModel:
    """Import ``module:callable`` (installed, or a module in the current folder). This runs user
    code: only load models you trust."""
    module_name, _, attr = spec.partition(":")
    try:
        obj = _import(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        msg = (
            f"cannot load model {spec!r}: {err}; give module:callable importable on this machine "
            "(installed, on PYTHONPATH, or a module.py in the current folder)"
        )
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


def _evaluate(
    model: Callable[..., np.ndarray], args: tuple, shape: tuple[int, ...], name: str, flavor: str
) -> np.ndarray:
    """Call a plug-in (user code) and check what it returns, reporting problems in its terms."""
    try:
        value = np.asarray(model(*args), dtype=np.float64)
    except Exception as err:
        msg = f"model {name!r} raised {type(err).__name__}: {err} (called for {flavor})"
        raise ValueError(msg) from err
    if value.shape != shape:
        try:
            value = np.broadcast_to(value, shape)
        except ValueError:
            msg = f"model {name!r} returned shape {value.shape} for {flavor}; expected {shape} (one value per energy)"
            raise ValueError(msg) from None
    if not np.all(np.isfinite(value)):
        msg = f"model {name!r} returned NaN or inf for {flavor}; a cross section must be finite"
        raise ValueError(msg)
    return value


def fold_model(
    model: Callable[..., np.ndarray],
    rule: FluxRule,
    bins: FluxBins,
    signal_flavors: Sequence[str],
    truth: str,
    truth_edges: np.ndarray | None,
    *,
    kind: str = "xsec",
    name: str = "model",
) -> np.ndarray:
    """G[f, j] = Σ_k fluence_k σ_j(E_k) over the rule's nodes k in flux bin f.

    ``kind = "xsec"``: ``model(enu_mev, flavor) -> σ`` (cm²), for truth binned in E_ν
    (σ_j(E) = σ(E) when E lies in bin j) or one total bin. ``kind = "dxsec"``:
    ``model(enu_mev, x, flavor) -> dσ/dX`` (cm² per unit of X), for truth binned in a kinematic X
    (σ_j(E) = ∫_j dσ/dX dX, 16-point Gauss–Legendre per bin).
    """
    n_truth = 1 if truth_edges is None else truth_edges.size - 1
    g = np.zeros((bins.n_bins, n_truth))
    if kind == "xsec" and truth not in ("enu_true", "total"):
        msg = f"model {name!r} gives σ(E_ν), but the analysis bins truth in {truth!r}: give a dσ/dX model (kind = 'dxsec')"
        raise ValueError(msg)
    if kind == "dxsec" and (truth in ("enu_true", "total") or truth_edges is None):
        msg = f"model {name!r} gives dσ/dX, which needs truth binned in a kinematic variable (not {truth!r})"
        raise ValueError(msg)
    for flavor in signal_flavors:
        e, w = rule[flavor]
        fbin = bins.index(np.full(e.shape, FLAVOR_PDG[flavor]), e)
        if kind == "xsec":
            sigma = _evaluate(model, (e, flavor), e.shape, name, flavor)
            if truth_edges is None:
                tbin = np.zeros(e.shape, dtype=np.int64)
            else:
                tbin = np.searchsorted(truth_edges, e, side="right") - 1
            keep = (tbin >= 0) & (tbin < n_truth)
            np.add.at(g, (fbin[keep], tbin[keep]), w[keep] * sigma[keep])
        else:
            x, wx = np.polynomial.legendre.leggauss(16)
            lo, hi = truth_edges[:-1, None], truth_edges[1:, None]  # type: ignore[index]
            xs = (0.5 * (hi - lo) * x + 0.5 * (hi + lo)).ravel()
            weights = (0.5 * (hi - lo) * wx).ravel()
            shape = (e.size, xs.size)
            dsigma = _evaluate(model, (e[:, None], xs[None, :], flavor), shape, name, flavor)
            per_bin = (dsigma * weights).reshape(e.size, n_truth, 16).sum(axis=2)
            np.add.at(g, fbin, w[:, None] * per_bin)
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
