"""The result dataset: every per-universe vector kept raw, covariances, chi-square.

Names tools may rely on: dims ``universe`` (0 = central value), ``reco_bin``, ``truth_bin``;
``xsec_real``, ``xsec_nominal``, ``pred_real``, ``pred_nominal`` over (universe, truth_bin);
``cov_real``, ``cov_nominal`` (systematics over universes), ``cov_stat_real``, ``cov_stat_nominal``;
per-group covariances on ``group``; ``chi2_*`` results per ``model``. What a later comparison
needs to fold a new model exactly as the run did (``farm.compare``): the nominal flux rule of the
signal flavours node by node (``flux_rule_*``), the flux bins' flavour and edges, every
universe's additional smearing, and each systematic's kind. Whether enough universes were
thrown: ``mc_rel_error_*``, ``cov_rank_*``, ``rank_limited_*`` per systematic, ``universes_needed``
and ``universes_converged`` against ``[analysis] universe_precision``, and the jackknife MC error
of every chi-square (``chi2_*_mc_error``, ``chi2_*_mc_bias``); the ``universes_warning`` attribute
says in one sentence what is short.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from farm.analysis.convergence import universe_vars, universes_warning
from farm.analysis.covariance import correlation, diagnostics
from farm.analysis.covariances import CovarianceSet, chi2_mc_errors, chi2_table, random_strata
from farm.analysis.extract import Extraction
from farm.analysis.histograms import UniverseHistograms
from farm.analysis.metadata import describe
from farm.analysis.nominal_flux import FluxRule
from farm.analysis.quoted import with_quoted
from farm.lazy_dask import defer_dask_array_import
from farm.store.schema import FLAVOR_PDG
from farm.systematics.fluxbins import FluxBins
from farm.systematics.universes import UniverseSet

__all__ = ["ModelPrediction", "build_dataset"]

T2 = "truth_bin_2"
JOINT, JOINT2 = "joint_bin", "joint_bin_2"


@dataclass(frozen=True, kw_only=True)
class ModelPrediction:
    name: str
    real: np.ndarray
    nominal: np.ndarray
    joint_real: np.ndarray
    joint_nominal: np.ndarray


def _strings(values: Any) -> np.ndarray:
    return np.array(list(values), dtype=object)


def _cov_vars(prefix: str, cov: CovarianceSet, stat: np.ndarray) -> dict[str, Any]:
    total = cov.total + stat
    diag = diagnostics(total)
    return {
        f"cov_{prefix}": (("truth_bin", T2), cov.total),
        f"cov_stat_{prefix}": (("truth_bin", T2), stat),
        f"cov_group_{prefix}": (("group", "truth_bin", T2), cov.per_group),
        f"cov_systematic_{prefix}": (("systematic", "truth_bin", T2), cov.per_systematic),
        f"cov_total_{prefix}": (("truth_bin", T2), total),
        f"corr_{prefix}": (("truth_bin", T2), correlation(total)),
        f"cov_mc_error_{prefix}": (("truth_bin", T2), cov.total_mc_error),
        f"mc_rel_error_{prefix}": (("systematic",), cov.mc_rel_error),
        f"cov_rank_{prefix}": (("systematic",), cov.rank),
        f"rank_limited_{prefix}": (("systematic",), cov.rank_limited),
        f"positive_definite_{prefix}": ((), bool(diag.is_positive_definite)),
        f"condition_number_{prefix}": ((), float(diag.condition_number)),
    }


def _flux_rule_vars(rule: FluxRule, flavors: Sequence[str]) -> dict[str, Any]:
    """The nominal flux rule of the signal flavours, in the order the run folds models with it."""
    node = ("flux_rule_node",)
    return {
        "flux_rule_enu": (node, np.concatenate([rule[f][0] for f in flavors])),
        "flux_rule_fluence": (node, np.concatenate([rule[f][1] for f in flavors])),
        "flux_rule_flavor": (
            node,
            np.concatenate([np.full(rule[f][0].size, FLAVOR_PDG[f], np.int32) for f in flavors]),
        ),
    }


def _flux_bin_coords(bins: FluxBins) -> dict[str, Any]:
    """Flavour and E_ν edges of every flux bin; the last, untouched bin has no edges."""
    flavors = [f for f, n in zip(bins.flavors, bins.sizes, strict=True) for _ in range(n)]
    lo = [e[k] for e in bins.edges for k in range(len(e) - 1)]
    hi = [e[k + 1] for e in bins.edges for k in range(len(e) - 1)]
    return {
        "flux_bin_flavor": (("flux_bin",), _strings([*flavors, "untouched"])),
        "flux_bin_lo_mev": (("flux_bin",), np.array([*lo, np.nan], dtype=np.float64)),
        "flux_bin_hi_mev": (("flux_bin",), np.array([*hi, np.nan], dtype=np.float64)),
    }


def build_dataset(
    *,
    universes: UniverseSet,
    hists: UniverseHistograms,
    extraction: Extraction,
    data: np.ndarray,
    phi: np.ndarray,
    reco_edges: np.ndarray,
    truth_edges: np.ndarray | None,
    flux_labels: list[str],
    flux_bins: FluxBins,
    flux_rule: FluxRule,
    signal_flavors: Sequence[str],
    cov_real: CovarianceSet,
    cov_nominal: CovarianceSet,
    models: list[ModelPrediction],
    attrs: dict[str, Any],
    exact: Collection[str] = (),
    precision: float = 0.10,
) -> xr.Dataset:
    """The result dataset. ``exact`` names the unisim systematics; ``precision`` is the target
    relative MC error of a systematic's covariance (``[analysis] universe_precision``)."""
    defer_dask_array_import()  # numpy arrays only: xarray need not import dask.array for them
    n_truth = extraction.xsec_real.shape[1]
    center = str(attrs.get("covariance_center", "cv"))
    normalization = str(attrs.get("covariance_normalization", "n"))
    strata = random_strata(universes, exact)
    labels = np.array(["cv", *universes.names])[universes.systematic_index + 1]
    groups_per_universe = np.array(["cv", *universes.groups])[universes.systematic_index + 1]
    data_vars: dict[str, Any] = {
        "data_counts": (("reco_bin",), data),
        "signal_reco": (("universe", "reco_bin"), hists.signal.sum(axis=2)),
        "background_reco": (("universe", "reco_bin"), hists.background),
        "truth_counts": (("universe", "truth_bin"), hists.truth),
        "response": (("universe", "reco_bin", "truth_bin"), hists.response),
        "efficiency": (("universe", "truth_bin"), hists.response.sum(axis=1)),
        "smearing_nominal": (("universe", "reco_bin", "truth_bin"), hists.smearing_nominal),
        "flux": (("universe", "flux_bin"), hists.flux),
        "flux_ratio": (("universe", "flux_bin"), universes.flux_ratio),
        "integrated_flux": (("universe",), phi),
        "weight_clamped": (("universe",), hists.clamped),
        "xsec_real": (("universe", "truth_bin"), extraction.xsec_real),
        "xsec_nominal": (("universe", "truth_bin"), extraction.xsec_nominal),
        "additional_smearing_real": (("truth_bin", T2), extraction.additional_smearing_real[0]),
        "additional_smearing_nominal": (
            ("truth_bin", T2),
            extraction.additional_smearing_nominal[0],
        ),
        "additional_smearing_universes_real": (
            ("universe", "truth_bin", T2),
            extraction.additional_smearing_real,
        ),
        "additional_smearing_universes_nominal": (
            ("universe", "truth_bin", T2),
            extraction.additional_smearing_nominal,
        ),
        "reco_edges": (("reco_edge",), reco_edges),
        "truth_edges": (
            ("truth_edge",),
            truth_edges if truth_edges is not None else np.array([-np.inf, np.inf]),
        ),
        "bootstrap_replica": (("universe",), universes.bootstrap),
        "throw_index": (("universe",), universes.throw_index),
    }
    data_vars |= _flux_rule_vars(flux_rule, signal_flavors)
    for knob, values in universes.knobs.items():
        data_vars[f"knob_{knob}"] = (("universe",), values)
    data_vars |= _cov_vars("real", cov_real, extraction.cov_stat_real)
    data_vars |= _cov_vars("nominal", cov_nominal, extraction.cov_stat_nominal)
    data_vars |= universe_vars(universes, (cov_real, cov_nominal), precision, center)

    generator = models[0]
    data_vars["pred_real"] = (("universe", "truth_bin"), generator.real)
    data_vars["pred_nominal"] = (("universe", "truth_bin"), generator.nominal)
    data_vars["model_pred_real"] = (
        ("model", "universe", "truth_bin"),
        np.stack([m.real for m in models]),
    )
    data_vars["model_pred_nominal"] = (
        ("model", "universe", "truth_bin"),
        np.stack([m.nominal for m in models]),
    )
    data_vars["joint_cov_real"] = (
        ("model", JOINT, JOINT2),
        np.stack([m.joint_real for m in models]),
    )
    data_vars["joint_cov_nominal"] = (
        ("model", JOINT, JOINT2),
        np.stack([m.joint_nominal for m in models]),
    )
    for convention, stat in (
        ("real", extraction.cov_stat_real),
        ("nominal", extraction.cov_stat_nominal),
    ):
        measured = extraction.xsec_real[0] if convention == "real" else extraction.xsec_nominal[0]
        results = [
            chi2_table(
                measured,
                (m.real if convention == "real" else m.nominal)[0],
                m.joint_real if convention == "real" else m.joint_nominal,
                stat,
            )
            for m in models
        ]
        data_vars[f"chi2_{convention}_joint"] = (("model",), [r[0].chi2 for r in results])
        data_vars[f"chi2_{convention}_uncorrelated"] = (("model",), [r[1].chi2 for r in results])
        data_vars[f"pvalue_{convention}_joint"] = (("model",), [r[0].pvalue for r in results])
        data_vars[f"pvalue_{convention}_uncorrelated"] = (
            ("model",),
            [r[1].pvalue for r in results],
        )
        errors = [
            chi2_mc_errors(
                extraction.xsec_real if convention == "real" else extraction.xsec_nominal,
                m.real if convention == "real" else m.nominal,
                m.joint_real if convention == "real" else m.joint_nominal,
                stat,
                strata,
                center=center,
                normalization=normalization,
            )
            for m in models
        ]
        for k, test in enumerate(("joint", "uncorrelated")):
            data_vars[f"chi2_{convention}_{test}_mc_error"] = (
                ("model",),
                [e[k].error for e in errors],
            )
            data_vars[f"chi2_{convention}_{test}_mc_bias"] = (
                ("model",),
                [e[k].bias for e in errors],
            )
    data_vars["chi2_dof"] = ((), n_truth)

    coords = {
        "universe": np.arange(universes.n_universes),
        "universe_systematic": (("universe",), labels.astype(object)),
        "universe_group": (("universe",), groups_per_universe.astype(object)),
        "reco_bin": np.arange(reco_edges.size - 1),
        "reco_lo": (("reco_bin",), np.asarray(reco_edges[:-1], dtype=np.float64)),
        "reco_hi": (("reco_bin",), np.asarray(reco_edges[1:], dtype=np.float64)),
        "truth_bin": np.arange(n_truth),
        T2: np.arange(n_truth),
        # object arrays become variable-length strings, which zarr v3 specifies
        "flux_bin": _strings(flux_labels),
        "group": _strings(cov_real.groups),
        "systematic": _strings(universes.names),
        "systematic_kind": (("systematic",), _strings(universes.kinds)),
        "systematic_group": (("systematic",), _strings(universes.groups)),
        **_flux_bin_coords(flux_bins),
        "model": _strings([m.name for m in models]),
        JOINT: np.arange(2 * n_truth),
        JOINT2: np.arange(2 * n_truth),
    }
    attrs = attrs | _statistics_attrs(extraction)
    attrs["universe_precision"] = precision
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    ds.attrs["universes_warning"] = universes_warning(ds)
    ds["xsec_real"].attrs["convention"] = "real-flux-averaged: unfold(d - B_u; R_u) / (T Phi_u)"
    ds["xsec_nominal"].attrs["convention"] = (
        "nominal-flux-averaged: unfold(d - B_u; M_u) / (T Phi_nominal)"
    )
    # the cross section as quoted (<sigma>_j in E_nu bins, dsigma/dx in kinematic bins) beside
    # the seed's flux share S_j above, and lo/hi coordinates of the truth bins (farm.analysis.quoted);
    # then long_name, units and description of everything from one registry
    return describe(with_quoted(ds))


def _statistics_attrs(extraction: Extraction) -> dict[str, Any]:
    """How ``cov_stat_*`` was obtained, and the covariance every chi-square uses."""
    stats = {"real": extraction.stat_real, "nominal": extraction.stat_nominal}
    attrs: dict[str, Any] = {f"stat_covariance_{c}": stat.describe() for c, stat in stats.items()}
    attrs["stat_toys"] = max(stat.toys for stat in stats.values())
    attrs["stat_covariance_rel_error"] = max(stat.rel_error for stat in stats.values())
    attrs["chi2_covariance"] = (
        "chi2_<c>_joint = D^T (V_mm + V_pp - V_mp - V_pm + cov_stat_<c>)^-1 D with D = measured - "
        "predicted of universe 0 and V the blocks of joint_cov_<c>; chi2_<c>_uncorrelated drops "
        "V_mp and V_pm. cov_stat_real: "
        + stats["real"].describe()
        + "; cov_stat_nominal: "
        + stats["nominal"].describe()
    )
    return attrs
