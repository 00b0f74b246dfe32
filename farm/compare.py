"""The theorist plug-in: any cross-section model against a published result, without a cluster.

A beam measurement and a prediction share the flux, so both are computed in every flux universe
and compared through their joint covariance (docs/physics.md §1). The result dataset keeps all that
is needed to do this later for a new model, exactly as ``farm run`` did for the models attached
in its configuration: the nominal flux rule of the signal flavours, every universe's flux ratios
per flux bin and integrated flux, every universe's additional smearing, and the extracted cross
section in every universe. :func:`compare` folds the model with the nominal flux rule,
G[f, j] = Σ_k∈f,j fluence_k σ_j(E_k), predicts every universe u,

    real:    p_u = A_C,u (R_u G)_j / Φ_u        nominal:  p̃_u = A_C,u Σ_f G_fj / Φ̄,

builds the joint (measured, predicted) covariance over the shared universes and reports

    χ² = Δᵀ (V_mm + V_pp − V_mp − V_pm + V_stat)⁻¹ Δ     (with the correlation)
    χ² = Δᵀ (V_mm + V_pp + V_stat)⁻¹ Δ                  (ignoring it)

in both conventions. Pure numpy on the dataset: no dask, no event store. The models it accepts
(callables, ``"module:callable"``, tables of σ(E_ν)) are resolved in :mod:`farm.compare_models`;
``ModelTable``, ``read_model_table`` and ``resolve_model`` are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from farm.compare_models import ModelTable, read_model_table, resolve_model

if TYPE_CHECKING:
    import xarray as xr

    from farm.analysis.chi2 import Chi2Result
    from farm.systematics.fluxbins import FluxBins
    from farm.systematics.universes import UniverseSet

__all__ = [
    "ComparisonResult",
    "ConventionComparison",
    "ModelTable",
    "compare",
    "open_result",
    "read_model_table",
    "resolve_model",
]

CONVENTIONS = ("real", "nominal")


# --- what the result holds ---------------------------------------------------------------------

_NEEDED = (
    "xsec_real",
    "xsec_nominal",
    "cov_stat_real",
    "cov_stat_nominal",
    "flux_ratio",
    "integrated_flux",
    "truth_edges",
    "additional_smearing_universes_real",
    "additional_smearing_universes_nominal",
    "flux_rule_enu",
    "flux_rule_fluence",
    "flux_rule_flavor",
    "systematic_kind",
    "systematic_group",
    "flux_bin_flavor",
    "flux_bin_lo_mev",
    "flux_bin_hi_mev",
)


@dataclass(frozen=True, kw_only=True, eq=False)
class _Published:
    """The arrays of a result that a comparison reads, as numpy."""

    xsec: dict[str, np.ndarray]
    stat: dict[str, np.ndarray]
    smearing: dict[str, np.ndarray]
    phi: np.ndarray
    universes: UniverseSet
    bins: FluxBins
    rule: dict[str, tuple[np.ndarray, np.ndarray]]
    signal_flavors: tuple[str, ...]
    truth: str
    truth_edges: np.ndarray | None
    center: str
    normalization: str


def open_result(result: str | Path | xr.Dataset, *, sample: str | None = None) -> xr.Dataset:
    """A result dataset as given, or opened from a published path (pinned to its current version).

    A multi-sample measurement (farm.measurement) holds one result per sample: ``sample``
    names the one to open; without it such a result is refused with the samples it holds.
    """
    import xarray as xr

    from farm.publish import open_published, open_sample

    if isinstance(result, xr.Dataset):
        return result
    if not Path(result).exists():
        msg = f"result {result} not found; produce one with `farm run CONFIG --out {result}`"
        raise FileNotFoundError(msg)
    if not (Path(result) / "zarr.json").is_file():
        msg = (
            f"{result} is neither a farm result (no zarr.json: produce one with `farm run CONFIG "
            "--out PATH`) nor a HEPData record (no submission.yaml; give its directory, "
            "submission.yaml, or a .zip/.tar.gz archive)"
        )
        raise ValueError(msg)
    if sample is not None:
        return open_sample(result, sample)
    ds = open_published(result)
    if ds.attrs.get("kind") == "measurement":
        held = ", ".join(str(v) for v in ds["sample"].values)
        msg = (
            f"{result} is a multi-sample measurement (samples {held}); give --sample NAME "
            "to use one sample's own result; for all the samples together with their joint "
            "covariance use farm.compare_joint.compare_joint or farm.fit.fit on the "
            "measurement (docs/measurements.md)"
        )
        raise ValueError(msg)
    return ds


def _flux_bins(ds: xr.Dataset) -> FluxBins:
    from farm.systematics.fluxbins import FluxBins

    flavors = [str(f) for f in ds["flux_bin_flavor"].values[:-1]]
    lo, hi = ds["flux_bin_lo_mev"].values[:-1], ds["flux_bin_hi_mev"].values[:-1]
    order = tuple(dict.fromkeys(flavors))
    edges = []
    for flavor in order:
        rows = np.flatnonzero(np.array(flavors) == flavor)
        edges.append((*(float(x) for x in lo[rows]), float(hi[rows[-1]])))
    return FluxBins(flavors=order, edges=tuple(edges))


def _universe_set(ds: xr.Dataset) -> UniverseSet:
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


def _flux_rule(
    ds: xr.Dataset, flavors: tuple[str, ...]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from farm.store.schema import FLAVOR_PDG

    energy = ds["flux_rule_enu"].values
    fluence = ds["flux_rule_fluence"].values
    code = ds["flux_rule_flavor"].values
    return {f: (energy[code == FLAVOR_PDG[f]], fluence[code == FLAVOR_PDG[f]]) for f in flavors}


def _published(ds: xr.Dataset) -> _Published:
    missing = [v for v in _NEEDED if v not in ds.variables]
    if missing:
        msg = (
            f"the result lacks {', '.join(missing)}: it was written by a farm without the "
            "comparison inputs; recompute it with `farm run` (or `farm refresh`)"
        )
        raise ValueError(msg)
    flavors = tuple(f for f in str(ds.attrs["signal_flavors"]).split(",") if f)
    truth = str(ds.attrs["truth_variable"])
    edges = np.asarray(ds["truth_edges"].values, dtype=np.float64)
    return _Published(
        xsec={c: np.asarray(ds[f"xsec_{c}"].values) for c in CONVENTIONS},
        stat={c: np.asarray(ds[f"cov_stat_{c}"].values) for c in CONVENTIONS},
        smearing={
            c: np.asarray(ds[f"additional_smearing_universes_{c}"].values) for c in CONVENTIONS
        },
        phi=np.asarray(ds["integrated_flux"].values),
        universes=_universe_set(ds),
        bins=_flux_bins(ds),
        rule=_flux_rule(ds, flavors),
        signal_flavors=flavors,
        truth=truth,
        truth_edges=None if truth == "total" else edges,
        center=str(ds.attrs["covariance_center"]),
        normalization=str(ds.attrs["covariance_normalization"]),
    )


def _contributing(
    rule: dict[str, tuple[np.ndarray, np.ndarray]], truth_edges: np.ndarray | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The nodes whose σ(E) enters a truth bin binned in E_ν (the others add nothing), so that a
    model is only asked for σ where the measurement depends on it."""
    if truth_edges is None:
        return rule
    out = {}
    for flavor, (e, w) in rule.items():
        inside = (e >= truth_edges[0]) & (e < truth_edges[-1])
        out[flavor] = (e[inside], w[inside])
    return out


# --- the comparison ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class ConventionComparison:
    """A model against the measurement in one flux convention."""

    convention: str
    """``real`` (real-flux-averaged) or ``nominal`` (nominal-flux-averaged), docs/physics.md §1."""
    measured: np.ndarray
    """(J,) measured cross section, central value, cm² per target."""
    predicted: np.ndarray
    """(U, J) the model's prediction in every universe (0 = central value), cm² per target."""
    joint_cov: np.ndarray
    """(2J, 2J) joint systematic covariance of (measured, predicted) over the shared universes."""
    stat_cov: np.ndarray
    """(J, J) data-statistics covariance of the measurement."""
    joint: Chi2Result
    """χ² with the measured–predicted correlation (the right one)."""
    uncorrelated: Chi2Result
    """χ² with that correlation ignored."""

    @property
    def n_bins(self) -> int:
        return int(self.measured.size)

    def __repr__(self) -> str:
        from farm._repr import chi2_text

        return (
            f"ConventionComparison({self.convention}, {self.n_bins} bins, "
            f"{self.predicted.shape[0]} universes: χ² with the correlation "
            f"{chi2_text(self.joint)}, ignoring it {chi2_text(self.uncorrelated)})"
        )

    @property
    def measured_error(self) -> np.ndarray:
        """√diag(V_mm + V_stat), cm² per target."""
        n = self.n_bins
        return np.sqrt(np.diag(self.joint_cov[:n, :n] + self.stat_cov))

    @property
    def predicted_error(self) -> np.ndarray:
        """√diag(V_pp), cm² per target: the prediction's own flux (and shared) uncertainty."""
        n = self.n_bins
        return np.sqrt(np.diag(self.joint_cov[n:, n:]))

    @property
    def correlation(self) -> np.ndarray:
        """Per bin, corr(measured, predicted) over the universes, V_mp,jj / √(V_mm,jj V_pp,jj)."""
        n = self.n_bins
        block = np.diag(self.joint_cov[:n, n:])
        scale = np.sqrt(np.diag(self.joint_cov[:n, :n]) * np.diag(self.joint_cov[n:, n:]))
        # a prediction that no universe moves (beyond round-off) is uncorrelated, not ±noise
        moves = self.predicted_error > 1e-12 * np.abs(self.predicted[0])
        return np.divide(block, scale, out=np.zeros(n), where=(scale > 0) & moves)


@dataclass(frozen=True, kw_only=True, eq=False)
class ComparisonResult:
    """A model against a result, in both conventions (``real``, ``nominal``)."""

    name: str
    kind: str
    sample: str
    n_universes: int
    real: ConventionComparison
    nominal: ConventionComparison
    quantity: str = "share"
    """``share``: the seed's flux share S_j (the chi-squares ``farm run`` stores); ``sigma``: the
    cross section as quoted (⟨σ⟩_j in E_ν bins, dσ/dx, the flux-averaged total;
    farm.analysis.quoted), as the ``cross_section-*`` tables of a HEPData release carry it."""

    def __repr__(self) -> str:
        from farm._repr import chi2_text, lines

        head = (
            f"ComparisonResult({self.name!r} against {self.sample or 'the result'}: {self.kind}, "
            f"{self.quantity}, {self.real.n_bins} bins, {self.n_universes} universes)"
        )
        body = [
            f"{c.convention + ':':<8} χ² with the correlation {chi2_text(c.joint)}, "
            f"ignoring it {chi2_text(c.uncorrelated)}"
            for c in (self.real, self.nominal)
        ]
        return lines(head, body)

    def convention(self, name: str) -> ConventionComparison:
        if name not in CONVENTIONS:
            msg = f"unknown convention {name!r}; choose real or nominal"
            raise ValueError(msg)
        return self.real if name == "real" else self.nominal


def _convention(name: str, pub: _Published, predicted: np.ndarray) -> ConventionComparison:
    from farm.analysis.covariances import chi2_table, joint_covariances

    measured = pub.xsec[name]
    joint = joint_covariances(
        measured,
        predicted,
        pub.universes,
        center=pub.center,
        normalization=pub.normalization,
    )
    with_correlation, without = chi2_table(measured[0], predicted[0], joint, pub.stat[name])
    return ConventionComparison(
        convention=name,
        measured=measured[0],
        predicted=predicted,
        joint_cov=joint,
        stat_cov=pub.stat[name],
        joint=with_correlation,
        uncorrelated=without,
    )


def compare(
    result: str | Path | xr.Dataset,
    model: object,
    *,
    kind: str = "xsec",
    name: str | None = None,
    quantity: str = "share",
) -> ComparisonResult:
    """Compare a cross-section model with a published result, in every universe.

    Parameters
    ----------
    result : path or xarray.Dataset
        A result of ``farm run`` (the published path, or the dataset itself).
    model : callable, str or table
        ``model(enu_mev, flavor) -> σ`` in cm² per target (``kind="xsec"``), or
        ``model(enu_mev, x, flavor) -> dσ/dX`` (``kind="dxsec"``, truth binned in X); or
        ``"module:callable"``; or a table of σ(E_ν) (:class:`ModelTable`, a mapping of columns,
        or a CSV path with columns ``enu_mev``, ``xsec_cm2`` and optionally ``flavor``),
        interpolated linearly.
    kind : {"xsec", "dxsec"}
    name : str, optional
        Label of the model (default: the callable's or the file's name).
    quantity : {"share", "sigma"}
        Compare the seed's flux share S_j = ∫_j F σ dE / Φ (default: the numbers ``farm run``
        stored), or the cross section as quoted, σ = D·S (⟨σ⟩_j = ∫_j F σ / ∫_j F in E_ν bins,
        dσ/dx = S_j/Δx_j, the total for one bin), measured and predicted alike. The two give
        the same chi-square wherever D does not depend on the universe (nominal flux, kinematic
        or total bins).

    Returns
    -------
    ComparisonResult
        The prediction in every universe, the joint covariance and the chi-square with and
        without the measured–predicted correlation, in both conventions. For a model attached
        in the run's configuration these are the numbers ``farm run`` stored.

    Examples
    --------
    >>> import farm  # doctest: +SKIP
    >>> c = farm.compare("results/sns-csi.zarr", "farm.models:cevns_csi_tree_helm")  # doctest: +SKIP
    >>> c.real.joint.chi2, c.real.uncorrelated.chi2  # doctest: +SKIP
    """
    from farm.analysis.predict import fold_model, model_predictions

    if kind not in ("xsec", "dxsec"):
        msg = f"kind must be 'xsec' (σ(E_ν)) or 'dxsec' (dσ/dX); got {kind!r}"
        raise ValueError(msg)
    if quantity not in ("share", "sigma"):
        msg = f"quantity must be 'share' (the flux share S_j) or 'sigma' (the cross section as quoted); got {quantity!r}"
        raise ValueError(msg)
    function, default_name = resolve_model(model)
    if isinstance(function, ModelTable) and kind != "xsec":
        msg = "a model table gives σ(E_ν): use kind='xsec' (dσ/dX models must be callables)"
        raise ValueError(msg)
    label = name or default_name
    ds = open_result(result)
    pub = _published(ds)
    rule = _contributing(pub.rule, pub.truth_edges) if kind == "xsec" else pub.rule
    g = fold_model(
        function,
        rule,
        pub.bins,
        pub.signal_flavors,
        pub.truth,
        pub.truth_edges,
        kind=kind,
        name=label,
    )
    real, nominal = model_predictions(
        g,
        pub.universes.flux_ratio,
        pub.phi,
        pub.smearing["real"],
        pub.smearing["nominal"],
    )
    if quantity == "sigma":
        from farm.analysis.quoted import with_quoted

        quoted = with_quoted(ds)
        factor = {c: np.asarray(quoted[f"sigma_factor_{c}"].values) for c in CONVENTIONS}
        pub = replace(
            pub,
            xsec={c: np.asarray(quoted[f"sigma_{c}"].values) for c in CONVENTIONS},
            stat={c: np.asarray(quoted[f"cov_stat_sigma_{c}"].values) for c in CONVENTIONS},
        )
        real, nominal = factor["real"] * real, factor["nominal"] * nominal
    return ComparisonResult(
        name=label,
        kind=kind,
        sample=str(ds.attrs.get("sample", "")),
        n_universes=int(pub.phi.size),
        real=_convention("real", pub, real),
        nominal=_convention("nominal", pub, nominal),
        quantity=quantity,
    )
