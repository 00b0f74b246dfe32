"""The fit as an xarray dataset, and writing it (a zarr store renamed into place).

Dimensions: ``parameter`` (the free parameters), ``cl`` (confidence levels), ``grid_<name>``
(the tabulated grid of each parameter), ``fc_point_<name>`` and ``toy`` (the Feldman–Cousins
construction of each parameter). docs/fit.md lists every variable.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

import farm
from farm.fit.metadata import describe_fit
from farm.fit.run import FitResult
from farm.stale import temp_token

__all__ = ["fit_dataset", "write_fit"]

CHI2_DEFINITION = (
    "chi2(theta) = D0^T (V_syst(theta) + V_stat)^-1 D0, D_u = m_u - p_u(theta) in every universe u, "
    "V_syst(theta) the covariance of D over the shared universes = V_mm + V_pp - V_mp - V_pm"
)
JOINT_DEFINITION = (
    "; over the concatenated truth bins of every sample: each sample's D_u as in its own fit, "
    "a shared systematic's universes of one throw index lined up across the samples (the "
    "cross-sample blocks of V_syst), V_stat block diagonal"
)
FC_DEFINITION = (
    "Feldman-Cousins (PRD 57, 3873 (1998)) with the profile construction: at each point "
    "theta_i, toys thrown at (theta_i, eta_hat(theta_i)), refit on the grid; "
    "dchi2 = min_eta chi2(theta_i, eta) - min chi2; crit = cl-quantile of the toys' dchi2; "
    "interval = {theta: dchi2_data(theta) <= crit(theta)}"
)


def fit_dataset(r: FitResult, *, result: str, model: str) -> xr.Dataset:
    """Every number of the fit, with the provenance of the result and the settings."""
    names = [p.name for p in r.params]
    cls = np.asarray(r.settings.cls)
    b = r.best
    data: dict[str, tuple] = {
        "best_fit": (("parameter",), b.values),
        "hesse_error": (("parameter",), b.errors),
        "fit_covariance": (("parameter", "parameter_2"), b.covariance),
        "at_limit": (("parameter",), np.array(b.at_limit)),
        "chi2_min": ((), b.chi2),
        "ndof": ((), b.ndof),
        "pvalue_gof": ((), b.pvalue),
        "fit_valid": ((), b.valid),
        "wilks_lower": (("parameter", "cl"), r.wilks[..., 0]),
        "wilks_upper": (("parameter", "cl"), r.wilks[..., 1]),
        "range_lower": (("parameter",), np.array([p.lower for p in r.params])),
        "range_upper": (("parameter",), np.array([p.upper for p in r.params])),
    }
    coords: dict[str, tuple | np.ndarray | list] = {
        "parameter": np.array(
            names, dtype=object
        ),  # variable-length strings, as results store them
        "cl": cls,
    }
    for k, name in enumerate(names):
        coords[f"grid_{name}"] = ((f"grid_{name}",), r.grid.axes[k])
        data[f"profile_{name}"] = ((f"grid_{name}",), r.profiles[k])
    if len(names) == 2:
        data["dchi2_grid"] = ((f"grid_{names[0]}", f"grid_{names[1]}"), r.data_chi2 - b.chi2)
    fc_lower = np.full((len(names), cls.size), np.nan)
    fc_upper = np.full((len(names), cls.size), np.nan)
    fc_connected = np.ones((len(names), cls.size), dtype=bool)
    for k, f in enumerate(r.fc):
        point = f"fc_point_{f.name}"
        coords[f"fc_theta_{f.name}"] = ((point,), f.theta)
        data |= {
            f"fc_generating_{f.name}": ((point, "parameter"), f.generating),
            f"fc_data_{f.name}": ((point,), f.data),
            f"fc_crit_{f.name}": (("cl", point), f.crit),
            f"fc_crit_lower_{f.name}": (("cl", point), f.crit_band[..., 0]),
            f"fc_crit_upper_{f.name}": (("cl", point), f.crit_band[..., 1]),
            f"fc_pvalue_{f.name}": ((point,), f.pvalue),
            f"fc_toys_{f.name}": ((point, "toy"), f.toys),
        }
        fc_lower[k], fc_upper[k] = f.intervals[:, 0], f.intervals[:, 1]
        fc_connected[k] = f.connected
    data |= {
        "fc_lower": (("parameter", "cl"), fc_lower),
        "fc_upper": (("parameter", "cl"), fc_upper),
        "fc_connected": (("parameter", "cl"), fc_connected),
    }
    s = r.settings
    inputs = r.problem.inputs
    attrs = {
        "title": f"farm fit of {model} to {inputs.sample}",
        "sample": inputs.sample,
        "result": result,
        "model": model,
        "fixed": json.dumps({k: v for k, v in r.problem.fixed.items()}, default=str),
        "convention": inputs.convention,
        "n_bins": inputs.n_bins,
        "n_universes": inputs.n_universes,
        "chi2_definition": CHI2_DEFINITION,
        "wilks_method": "MINUIT Minos (iminuit): profile dchi2 = chi2_1 quantile at cl",
        "fc_method": FC_DEFINITION if r.fc else "none (--toys 0)",
        "toys": s.toys if r.fc else 0,
        "toy_seed": s.seed,
        "toy_seed_rule": "toy t at point i of parameter p draws from SeedSequence([seed, blake2b64(p), i, t])",
        "toy_block": s.block,
        "toy_statistics": r.stat,
        "toy_statistics_note": inputs.counts_note,
        "grid_nodes": int(r.grid.axes[0].size),
        "fc_points": int(r.fc[0].theta.size) if r.fc else 0,
        "software_version": farm.__version__,
        **{f"result_{k}": v for k, v in inputs.provenance.items()},
    }
    labels = getattr(inputs, "labels", None)
    if labels is not None:  # a multi-sample measurement (farm.fit.joint)
        attrs["samples"] = json.dumps(list(labels))
        attrs["sample_fixed"] = json.dumps(
            {label: dict(p.fixed) for label, p in zip(labels, r.problem.parts, strict=True)},
            default=str,
        )
        attrs["shared_systematics"] = json.dumps([n for n, _ in inputs.shared])
        attrs["chi2_definition"] = CHI2_DEFINITION + JOINT_DEFINITION
    # long_name, units and description of every variable (farm.fit.metadata.FIT_VARIABLES)
    return describe_fit(xr.Dataset(data, coords=coords, attrs=attrs), tuple(names))


def write_fit(ds: xr.Dataset, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``ds`` as a zarr store at ``out``: into a temporary folder, then renamed into place."""
    out = Path(out)
    if out.exists() and not overwrite:
        msg = f"{out} exists; give another --out or add --overwrite"
        raise FileExistsError(msg)
    if out.exists() and not (out / "zarr.json").is_file():
        msg = f"{out} exists and is not a zarr store; --overwrite replaces only an earlier fit"
        raise FileExistsError(msg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{temp_token()}")
    try:
        with warnings.catch_warnings():
            # consolidated metadata is not in the zarr v3 spec yet; xarray readers expect it
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            ds.to_zarr(tmp, mode="w-", consolidated=True, zarr_format=3)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{temp_token()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
