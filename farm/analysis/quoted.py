"""The cross section as physicists quote it, next to the seed's flux share S_j.

The farm extracts, per truth bin j and universe u, the seed's flux share

    S_j = ∫_j F σ dE / Φ,        Φ = ∫ F dE over every signal flavour,

a bin's share of the flux-averaged total cross section (``xsec_*``; its covariances, predictions
and chi-squares are ``cov_*``, ``pred_*``, ``chi2_*``). Plotted against E_ν it follows the bin
widths and the flux shape, so it is not what anyone quotes. This module derives what is quoted:

- truth binned in E_ν: the flux-averaged cross section in each bin,
  ⟨σ⟩_j = ∫_j F σ dE / ∫_j F dE = S_j · Φ / Φ_j, with Φ_j the signal flux inside bin j
  (real-flux convention: the flux of each universe, Φ_u / Φ_j,u; nominal-flux convention: the
  nominal flux, Φ̄ / Φ̄_j, the same in every universe);
- truth binned in a kinematic X (e.g. the recoil energy): dσ/dX_j = S_j / ΔX_j, per unit of X;
- one flux-averaged total bin: ⟨σ⟩ = S (the factor is 1).

So σ_u,j = D_u,j · S_u,j with a factor D (``sigma_factor_*``). The same factor takes a
prediction into σ (``model_sigma_*`` = D · ``model_pred_*``, with the Wiener-SVD A_C already
applied in S). The σ covariances are taken over the universes exactly as those of S (same
systematics, centre and normalisation) and the statistical one is D₀ V_stat D₀. Where D does not
depend on the universe (nominal flux, kinematic and total bins) every chi-square is the same in
σ as in S; in the real-flux convention with E_ν bins the two are different, equally valid,
statistics (``farm compare --quantity sigma`` gives the one in σ).

See L. Koch and S. Dolan, arXiv:2009.00552, for the two flux conventions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "QUANTITY_TEXT",
    "bin_flux",
    "quoted_factors",
    "quoted_vars",
    "sigma_chi2",
    "target_text",
    "universe_set_of",
    "with_quoted",
]

QUANTITY_TEXT = {
    "enu": "flux-averaged cross section in the E_nu bin, <sigma>_j = int_j F sigma dE / int_j F dE",
    "kinematic": "differential cross section per unit of the truth variable, dsigma/dx_j = S_j / dx_j",
    "total": "flux-averaged total cross section, <sigma> = int F sigma dE / int F dE",
}
_ENU = "enu_true"


def _kind(truth: str) -> str:
    return "total" if truth == "total" else "enu" if truth == _ENU else "kinematic"


def bin_flux(
    rule: dict[str, tuple[np.ndarray, np.ndarray]],
    bins: Any,
    signal_flavors: Sequence[str],
    truth_edges: np.ndarray,
) -> np.ndarray:
    """(flux_bin, truth_bin) nominal signal fluence in each flux bin and E_ν truth bin.

    B[f, j] = Σ_k F̄_k over the nodes k of flux bin f inside truth bin j, so that the signal flux
    of truth bin j in universe u is Φ_j,u = Σ_f r_u,f B[f, j] (``r`` the flux ratios).
    """
    from farm.analysis.predict import fold_model

    def one(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
        del flavor
        return np.ones_like(enu_mev, dtype=np.float64)

    return fold_model(one, rule, bins, signal_flavors, _ENU, truth_edges, name="unit")


def quoted_factors(
    *,
    truth: str,
    truth_edges: np.ndarray | None,
    flux_ratio: np.ndarray,
    phi: np.ndarray,
    rule: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    bins: Any = None,
    signal_flavors: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """(D_real[u, j], D_nominal[u, j]) with σ = D · S in each convention.

    E_ν bins: D_real = Φ_u / Φ_j,u and D_nominal = Φ̄ / Φ̄_j (universe 0 is nominal);
    kinematic bins: 1 / ΔX_j; one total bin: 1.

    Raises
    ------
    ValueError
        If an E_ν truth bin holds no signal flux (its ⟨σ⟩ is undefined).
    """
    n_universes = flux_ratio.shape[0]
    kind = _kind(truth)
    if kind == "total" or truth_edges is None:
        ones = np.ones((n_universes, 1))
        return ones, ones.copy()
    edges = np.asarray(truth_edges, dtype=np.float64)
    if kind == "kinematic":
        per_bin = np.broadcast_to(1.0 / np.diff(edges), (n_universes, edges.size - 1)).copy()
        return per_bin, per_bin.copy()
    if rule is None or bins is None:
        msg = "⟨σ⟩ in E_ν bins needs the flux rule and the flux bins of the result"
        raise ValueError(msg)
    b = bin_flux(rule, bins, signal_flavors, edges)
    per_universe = flux_ratio @ b
    nominal = b.sum(axis=0)
    empty = np.flatnonzero(~(per_universe > 0).all(axis=0) | ~(nominal > 0))
    if empty.size:
        j = int(empty[0])
        msg = (
            f"truth bin {edges[j]:g}-{edges[j + 1]:g} MeV holds no flux of the signal flavours "
            f"({', '.join(signal_flavors)}): its flux-averaged cross section is undefined; set "
            "[binning] truth_edges inside the flux"
        )
        raise ValueError(msg)
    real = phi[:, None] / per_universe
    nom = np.broadcast_to(phi[0] / nominal, real.shape).copy()
    return real, nom


def target_text(config: dict[str, Any]) -> str:
    """What one target is, for the units: ``Ar nucleus``, ``free proton``, ``CsI nucleus …``."""
    generator = str(config.get("sample", {}).get("generator", ""))
    material = str(config.get("detector", {}).get("material", ""))
    if generator.endswith("ibd"):
        return "free proton"
    if generator.endswith("cevns"):
        if material and sum(c.isupper() for c in material) > 1:
            return f"{material} nucleus (averaged over the nuclei of {material})"
        return f"{material or 'target'} nucleus"
    if generator:
        return "Ar nucleus"
    return "target"


def universe_set_of(ds: xr.Dataset) -> Any:
    """The :class:`~farm.systematics.universes.UniverseSet` a result was computed with (the
    parts covariances need: names, groups, kinds, which universe belongs to which systematic)."""
    from farm.systematics.universes import UniverseSet

    names = tuple(str(s) for s in ds["systematic"].values)
    labels = [str(s) for s in ds["universe_systematic"].values]
    index = np.array([-1] + [names.index(s) for s in labels[1:]], dtype=np.int32)
    return UniverseSet(
        seed=int(ds.attrs.get("universe_seed", 0)),
        names=names,
        groups=tuple(str(g) for g in ds["systematic_group"].values),
        kinds=tuple(str(k) for k in ds["systematic_kind"].values),
        systematic_index=index,
        flux_ratio=np.asarray(ds["flux_ratio"].values, dtype=np.float64),
    )


def _factors_of(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    from farm.compare import _flux_bins, _flux_rule

    truth = str(ds.attrs.get("truth_variable", "total"))
    flavors = tuple(f for f in str(ds.attrs.get("signal_flavors", "")).split(",") if f)
    edges = np.asarray(ds["truth_edges"].values, dtype=np.float64)
    enu = _kind(truth) == "enu"
    return quoted_factors(
        truth=truth,
        truth_edges=None if truth == "total" else edges,
        flux_ratio=np.asarray(ds["flux_ratio"].values, dtype=np.float64),
        phi=np.asarray(ds["integrated_flux"].values, dtype=np.float64),
        rule=_flux_rule(ds, flavors) if enu else None,
        bins=_flux_bins(ds) if enu else None,
        signal_flavors=flavors,
    )


def _units(ds: xr.Dataset) -> tuple[str, str, str]:
    """(σ units, truth-axis units, target) of a result."""
    from farm.store.schema import COLUMNS

    config = json.loads(ds.attrs.get("config", "{}") or "{}")
    target = target_text(config)
    truth = str(ds.attrs.get("truth_variable", "total"))
    spec = COLUMNS.get(truth)
    axis_units = spec.unit if spec is not None else ""
    if _kind(truth) == "kinematic":
        return f"cm2/{axis_units} per {target}", axis_units, target
    return f"cm2 per {target}", axis_units, target


def quoted_vars(ds: xr.Dataset) -> dict[str, Any]:
    """The σ variables of a result dataset, computed from its own S variables and flux rule.

    ``sigma_real``, ``sigma_nominal`` (universe, truth_bin); ``sigma_factor_*``;
    ``model_sigma_*`` (model, universe, truth_bin); ``cov_sigma_*`` (systematics),
    ``cov_stat_sigma_*``, ``cov_total_sigma_*``, ``cov_group_sigma_*``.
    """
    from farm.analysis.covariances import covariances

    d_real, d_nominal = _factors_of(ds)
    universes = universe_set_of(ds)
    center = str(ds.attrs.get("covariance_center", "cv"))
    normalization = str(ds.attrs.get("covariance_normalization", "n"))
    t2 = "truth_bin_2"
    out: dict[str, Any] = {}
    for convention, factor in (("real", d_real), ("nominal", d_nominal)):
        sigma = factor * np.asarray(ds[f"xsec_{convention}"].values, dtype=np.float64)
        cov = covariances(sigma, universes, center=center, normalization=normalization)
        d0 = factor[0]
        stat = d0[:, None] * np.asarray(ds[f"cov_stat_{convention}"].values) * d0[None, :]
        models = np.asarray(ds[f"model_pred_{convention}"].values, dtype=np.float64)
        out |= {
            f"sigma_{convention}": (("universe", "truth_bin"), sigma),
            f"sigma_factor_{convention}": (("universe", "truth_bin"), factor),
            f"model_sigma_{convention}": (("model", "universe", "truth_bin"), factor * models),
            f"cov_sigma_{convention}": (("truth_bin", t2), cov.total),
            f"cov_stat_sigma_{convention}": (("truth_bin", t2), stat),
            f"cov_total_sigma_{convention}": (("truth_bin", t2), cov.total + stat),
            f"cov_group_sigma_{convention}": (("group", "truth_bin", t2), cov.per_group),
        }
    return out


def _truth_coords(ds: xr.Dataset) -> dict[str, Any]:
    """lo/hi/centre of each truth bin (none for one total bin, which has no edges)."""
    truth = str(ds.attrs.get("truth_variable", "total"))
    edges = np.asarray(ds["truth_edges"].values, dtype=np.float64)
    if truth == "total" or not np.all(np.isfinite(edges)):
        return {}
    _, axis_units, _ = _units(ds)
    lo, hi = edges[:-1], edges[1:]
    centre = 0.5 * (lo + hi)
    out = {}
    for dim in ("truth_bin", "truth_bin_2"):
        attrs = {"units": axis_units, "long_name": f"true {truth}, bin centre"}
        out[dim] = xr.Variable((dim,), centre, attrs)
    out["truth_lo"] = xr.Variable(
        ("truth_bin",), lo, {"units": axis_units, "long_name": f"true {truth}, lower bin edge"}
    )
    out["truth_hi"] = xr.Variable(
        ("truth_bin",), hi, {"units": axis_units, "long_name": f"true {truth}, upper bin edge"}
    )
    return out


def _describe(ds: xr.Dataset) -> None:
    """What one target is, on the σ variables and the dataset (long_name, units and description
    come from farm.analysis.metadata)."""
    truth = str(ds.attrs.get("truth_variable", "total"))
    _, _, target = _units(ds)
    for c in ("real", "nominal"):
        ds[f"sigma_{c}"].attrs["target"] = target
        ds[f"xsec_{c}"].attrs["target"] = f"cm2 per target ({target})"
    ds.attrs["sigma_quantity"] = QUANTITY_TEXT[_kind(truth)]
    ds.attrs["cross_section_target"] = target


def with_quoted(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the σ variables and truth-bin coordinates (computed if it lacks them, as a
    result published before they existed does)."""
    if "sigma_real" in ds.variables:
        return ds
    from farm.analysis.metadata import describe

    out = ds.assign(quoted_vars(ds)).assign_coords(_truth_coords(ds))
    _describe(out)
    return describe(out, strict=False)  # long_name, units, description from one registry


def sigma_chi2(ds: xr.Dataset, convention: str, model: int) -> tuple[Any, Any]:
    """(with the measured–predicted correlation, without it) of attached model ``model`` in σ,
    exactly as ``chi2_<convention>_*`` are in S (farm.analysis.covariances.chi2_table)."""
    from farm.analysis.covariances import chi2_table, joint_covariances

    ds = with_quoted(ds)
    measured = np.asarray(ds[f"sigma_{convention}"].values, dtype=np.float64)
    predicted = np.asarray(ds[f"model_sigma_{convention}"].values[model], dtype=np.float64)
    joint = joint_covariances(
        measured,
        predicted,
        universe_set_of(ds),
        center=str(ds.attrs.get("covariance_center", "cv")),
        normalization=str(ds.attrs.get("covariance_normalization", "n")),
    )
    stat = np.asarray(ds[f"cov_stat_sigma_{convention}"].values, dtype=np.float64)
    return chi2_table(measured[0], predicted[0], joint, stat)
