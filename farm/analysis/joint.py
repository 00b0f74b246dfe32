"""One dataset for several samples: their truth bins concatenated, the full block covariance.

Each sample's own result (:func:`farm.analysis.pipeline.finish`) keeps every universe. A
systematic that two samples share (same name, same throws: ``throw_index`` checked equal)
correlates them: the cross-sample block of its covariance is taken over the shared universes
exactly as a sample's own block is over its universes,

    V_ab = 1/K · Σ_u (x_a,u − r_a)(x_b,u − r_b)ᵀ,

with the samples' common centre r and normalisation K (:func:`farm.analysis.covariance.
universe_covariance` on the concatenated vector). An independent systematic has zero
cross-sample blocks. The diagonal blocks are the samples' own covariances, bit for bit.

The joint measured–predicted covariance of a model is built the same way over the vector
(measured of every sample, predicted of every sample), so the combined χ² is

    χ² = Δᵀ (V_mm + V_pp − V_mp − V_pm + V_stat)⁻¹ Δ

over all samples' bins (:func:`farm.analysis.chi2.chi2_joint`); with the cross-sample blocks
removed it is the sum of the samples' χ² (the data statistics are independent: V_stat is block
diagonal).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np
import xarray as xr

from farm.analysis.chi2 import chi2_joint, chi2_uncorrelated
from farm.analysis.covariance import correlation, universe_covariance
from farm.analysis.joint_metadata import describe_joint

__all__ = [
    "CONVENTIONS",
    "joint_dataset",
    "sample_blocks",
    "shared_universe_rows",
    "universe_rows",
]

CONVENTIONS = ("real", "nominal")
T2 = "truth_bin_2"
JOINT, JOINT2 = "joint_bin", "joint_bin_2"


def _strings(values: Any) -> np.ndarray:
    return np.array(list(values), dtype=object)


def _systematics(ds: xr.Dataset) -> dict[str, str]:
    """Name → kind of the sample's systematics that add into its total (not the all-knob set)."""
    kinds = [str(k) for k in ds["systematic_kind"].values]
    return {str(n): k for n, k in zip(ds["systematic"].values, kinds, strict=True) if k != "all"}


def universe_rows(ds: xr.Dataset, name: str) -> np.ndarray:
    return np.flatnonzero(ds["universe_systematic"].values == name)


def shared_universe_rows(
    a: tuple[str, xr.Dataset], b: tuple[str, xr.Dataset], name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The universes of ``name`` in both samples, checked to be the same throws."""
    rows_a, rows_b = universe_rows(a[1], name), universe_rows(b[1], name)
    throws_a = a[1]["throw_index"].values[rows_a]
    throws_b = b[1]["throw_index"].values[rows_b]
    if throws_a.shape != throws_b.shape or (throws_a != throws_b).any():
        msg = (
            f"shared systematic {name!r} has throws {throws_a.size} in {a[0]} and {throws_b.size} "
            f"in {b[0]}: a shared systematic needs the same throws in every sample; give it the "
            "same `throws` (or one definition under the measurement's [[systematics]])"
        )
        raise ValueError(msg)
    return rows_a, rows_b


def _cross(
    x_a: np.ndarray,
    x_b: np.ndarray,
    rows_a: np.ndarray,
    rows_b: np.ndarray,
    *,
    center: str,
    normalization: str,
) -> np.ndarray:
    """The (n_a, n_b) block of the covariance of (x_a, x_b) over shared universes."""
    n_a = x_a.shape[1]
    full = universe_covariance(
        np.concatenate([x_a[rows_a], x_b[rows_b]], axis=1),
        central=np.concatenate([x_a[0], x_b[0]]),
        center=center,  # type: ignore[arg-type]
        normalization=normalization,  # type: ignore[arg-type]
    )
    return full[:n_a, n_a:]


def _shared_blocks(
    samples: Sequence[tuple[str, xr.Dataset]],
    values: Sequence[np.ndarray],
    name: str,
    owners: Sequence[int],
    *,
    center: str,
    normalization: str,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(a, b, block) for every pair a < b of the samples that share ``name``: the covariance
    block of (values[a], values[b]) over the universes of ``name`` (:func:`_cross`)."""
    for i, a in enumerate(owners):
        for b in owners[i + 1 :]:
            rows_a, rows_b = shared_universe_rows(samples[a], samples[b], name)
            block = _cross(
                values[a], values[b], rows_a, rows_b, center=center, normalization=normalization
            )
            yield a, b, block


def sample_blocks(sizes: Sequence[int]) -> list[slice]:
    """The slice of each sample's bins in the concatenated truth bins."""
    edges = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [slice(int(lo), int(hi)) for lo, hi in itertools.pairwise(edges)]


def joint_dataset(
    samples: Sequence[tuple[str, xr.Dataset]],
    shared: Collection[str],
    *,
    attrs: dict[str, Any],
) -> xr.Dataset:
    """The measurement's dataset from the samples' results (label, dataset), in order.

    ``shared`` names the systematics thrown once for every sample that declares them.
    """
    labels = [label for label, _ in samples]
    first = samples[0][1]
    center = str(first.attrs["covariance_center"])
    normalization = str(first.attrs["covariance_normalization"])
    sizes = [ds.sizes["truth_bin"] for _, ds in samples]
    blocks = sample_blocks(sizes)
    n = int(sum(sizes))
    owned = [_systematics(ds) for _, ds in samples]
    names: dict[str, str] = {}
    for systematics in owned:
        for name, kind in systematics.items():
            names.setdefault(name, kind)
    owners = {name: [k for k, s in enumerate(owned) if name in s] for name in names}
    models = [
        str(m)
        for m in first["model"].values
        if all(str(m) in {str(v) for v in ds["model"].values} for _, ds in samples)
    ]
    groups_of = {}
    for _, ds in samples:
        for name, group in zip(ds["systematic"].values, ds["systematic_group"].values, strict=True):
            groups_of.setdefault(str(name), str(group))
    groups = list(dict.fromkeys(groups_of[name] for name in names))
    data_vars: dict[str, Any] = {}
    for c in CONVENTIONS:
        values = [ds[f"xsec_{c}"].values for _, ds in samples]
        per_syst = np.zeros((len(names), n, n))
        cross_total = np.zeros((n, n))
        for s, name in enumerate(names):
            for k in owners[name]:
                cov = samples[k][1][f"cov_systematic_{c}"].sel(systematic=name).values
                per_syst[s, blocks[k], blocks[k]] = cov
            if name not in shared:
                continue
            for a, b, block in _shared_blocks(
                samples, values, name, owners[name], center=center, normalization=normalization
            ):
                per_syst[s, blocks[a], blocks[b]] = block
                per_syst[s, blocks[b], blocks[a]] = block.T
                cross_total[blocks[a], blocks[b]] += block
                cross_total[blocks[b], blocks[a]] += block.T
        total = cross_total.copy()
        stat = np.zeros((n, n))
        for k, (_, ds) in enumerate(samples):
            total[blocks[k], blocks[k]] = ds[f"cov_{c}"].values
            stat[blocks[k], blocks[k]] = ds[f"cov_stat_{c}"].values
        per_group = (
            np.stack(
                [per_syst[[groups_of[name] == g for name in names]].sum(axis=0) for g in groups]
            )
            if groups
            else np.zeros((0, n, n))
        )
        measured = np.concatenate([v[0] for v in values])
        data_vars |= {
            f"xsec_{c}": (("truth_bin",), measured),
            f"cov_{c}": (("truth_bin", T2), total),
            f"cov_cross_sample_{c}": (("truth_bin", T2), cross_total),
            f"cov_stat_{c}": (("truth_bin", T2), stat),
            f"cov_total_{c}": (("truth_bin", T2), total + stat),
            f"corr_{c}": (("truth_bin", T2), correlation(total + stat)),
            f"corr_systematics_{c}": (("truth_bin", T2), correlation(total)),
            f"cov_systematic_{c}": (("systematic", "truth_bin", T2), per_syst),
            f"cov_group_{c}": (("group", "truth_bin", T2), per_group),
        }
        data_vars |= _model_vars(samples, models, names, owners, shared, blocks, c, stat)
        data_vars |= _sigma_vars(samples, names, owners, shared, blocks, c)
    coords = {
        "sample": _strings(labels),
        "sample_first_bin": (("sample",), np.array([b.start for b in blocks], dtype=np.int64)),
        "sample_bins": (("sample",), np.array(sizes, dtype=np.int64)),
        "truth_bin": np.arange(n),
        T2: np.arange(n),
        "bin_sample": (("truth_bin",), _strings(np.repeat(np.array(labels, dtype=object), sizes))),
        "bin_in_sample": (("truth_bin",), np.concatenate([np.arange(s) for s in sizes])),
        "systematic": _strings(names),
        "systematic_kind": (("systematic",), _strings(names.values())),
        "systematic_group": (("systematic",), _strings(groups_of[name] for name in names)),
        "systematic_shared": (
            ("systematic",),
            np.array([name in shared and len(owners[name]) > 1 for name in names]),
        ),
        "systematic_samples": (
            ("systematic",),
            _strings(",".join(labels[k] for k in owners[name]) for name in names),
        ),
        "group": _strings(groups),
        "model": _strings(models),
        JOINT: np.arange(2 * n),
        JOINT2: np.arange(2 * n),
    }
    attrs = attrs | {
        "covariance_center": center,
        "covariance_normalization": normalization,
        "samples": json.dumps(labels),
        "shared_systematics": json.dumps(sorted(n for n in names if n in shared)),
        "chi2_covariance": (
            "chi2_<c>_joint = D^T (V_mm + V_pp - V_mp - V_pm + cov_stat_<c>)^-1 D over the "
            "concatenated truth bins of every sample, D = measured - predicted, V the blocks of "
            "joint_cov_<c> (cross-sample blocks from the shared systematics); cov_stat_<c> is "
            "block diagonal. chi2_<c>_separate_sum is the sum of the samples' own chi2_<c>_joint, "
            "which the combined one equals when cov_cross_sample_<c> is zero"
        ),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    return describe_joint(ds, [sample for _, sample in samples])


def _sigma_vars(
    samples: Sequence[tuple[str, xr.Dataset]],
    names: dict[str, str],
    owners: dict[str, list[int]],
    shared: Collection[str],
    blocks: list[slice],
    c: str,
) -> dict[str, Any]:
    """The cross section as quoted (``sigma_*``: ⟨σ⟩ in E_ν bins, dσ/dx in kinematic bins;
    farm.analysis.quoted) with its block covariance, cross blocks over its own universes."""
    n = blocks[-1].stop
    center = str(samples[0][1].attrs["covariance_center"])
    normalization = str(samples[0][1].attrs["covariance_normalization"])
    values = [ds[f"sigma_{c}"].values for _, ds in samples]
    cov = np.zeros((n, n))
    stat = np.zeros((n, n))
    for name in names:
        if name not in shared:
            continue
        for a, b, block in _shared_blocks(
            samples, values, name, owners[name], center=center, normalization=normalization
        ):
            cov[blocks[a], blocks[b]] += block
            cov[blocks[b], blocks[a]] += block.T
    for k, (_, ds) in enumerate(samples):
        cov[blocks[k], blocks[k]] = ds[f"cov_sigma_{c}"].values
        stat[blocks[k], blocks[k]] = ds[f"cov_stat_sigma_{c}"].values
    return {
        f"sigma_{c}": (("truth_bin",), np.concatenate([v[0] for v in values])),
        f"cov_sigma_{c}": (("truth_bin", T2), cov),
        f"cov_stat_sigma_{c}": (("truth_bin", T2), stat),
        f"cov_total_sigma_{c}": (("truth_bin", T2), cov + stat),
    }


def _model_vars(
    samples: Sequence[tuple[str, xr.Dataset]],
    models: Sequence[str],
    names: dict[str, str],
    owners: dict[str, list[int]],
    shared: Collection[str],
    blocks: list[slice],
    c: str,
    stat: np.ndarray,
) -> dict[str, Any]:
    """Joint measured–predicted covariance, predictions and χ² of every common model."""
    n = stat.shape[0]
    center = str(samples[0][1].attrs["covariance_center"])
    normalization = str(samples[0][1].attrs["covariance_normalization"])

    def joint_index(k: int) -> np.ndarray:  # sample k's (measured, predicted) in the joint order
        idx = np.arange(blocks[k].start, blocks[k].stop)
        return np.concatenate([idx, n + idx])

    joint = np.zeros((len(models), 2 * n, 2 * n))
    predicted = np.zeros((len(models), n))
    per_sample = np.zeros((len(models), len(samples)))
    results = []
    measured = np.concatenate([ds[f"xsec_{c}"].values[0] for _, ds in samples])
    for m, model in enumerate(models):
        both = []
        for k, (_, ds) in enumerate(samples):
            idx = joint_index(k)
            joint[m][np.ix_(idx, idx)] = ds[f"joint_cov_{c}"].sel(model=model).values
            pred = ds[f"model_pred_{c}"].sel(model=model).values
            predicted[m, blocks[k]] = pred[0]
            per_sample[m, k] = float(ds[f"chi2_{c}_joint"].sel(model=model))
            both.append(np.concatenate([ds[f"xsec_{c}"].values, pred], axis=1))
        for name in names:
            if name not in shared:
                continue
            for a, b, block in _shared_blocks(
                samples, both, name, owners[name], center=center, normalization=normalization
            ):
                ia, ib = joint_index(a), joint_index(b)
                joint[m][np.ix_(ia, ib)] += block
                joint[m][np.ix_(ib, ia)] += block.T
        results.append(
            (
                chi2_joint(measured, predicted[m], joint[m], stat_cov=stat),
                chi2_uncorrelated(measured, predicted[m], joint[m], stat_cov=stat),
            )
        )
    return {
        f"model_pred_{c}": (("model", "truth_bin"), predicted),
        f"joint_cov_{c}": (("model", JOINT, JOINT2), joint),
        f"chi2_{c}_joint": (("model",), np.array([r[0].chi2 for r in results])),
        f"chi2_{c}_uncorrelated": (("model",), np.array([r[1].chi2 for r in results])),
        f"pvalue_{c}_joint": (("model",), np.array([r[0].pvalue for r in results])),
        f"chi2_{c}_per_sample": (("model", "sample"), per_sample),
        f"chi2_{c}_separate_sum": (("model",), per_sample.sum(axis=1)),
        "chi2_dof": ((), n),
    }
