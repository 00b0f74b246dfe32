"""The theorist plug-in: any cross-section model against a published result, without a cluster.

A beam measurement and a prediction share the flux, so both are computed in every flux universe
and compared through their joint covariance (design.md §2). The result dataset keeps all that
is needed to do this later for a new model, exactly as ``farm run`` did for the models attached
in its configuration: the nominal flux rule of the signal flavours, every universe's flux ratios
per flux bin and integrated flux, every universe's additional smearing, and the extracted cross
section in every universe. :func:`compare` folds the model with the nominal flux rule,
G[f, j] = Σ_k∈f,j fluence_k σ_j(E_k), predicts every universe u,

    real:    p_u = A_C,u (R_u G)_j / Φ_u        nominal:  p̃_u = A_C,u Σ_f G_fj / Φ̄,

builds the joint (measured, predicted) covariance over the shared universes and reports

    χ² = Δᵀ (V_mm + V_pp − V_mp − V_pm + V_stat)⁻¹ Δ     (with the correlation)
    χ² = Δᵀ (V_mm + V_pp + V_stat)⁻¹ Δ                  (ignoring it)

in both conventions. Pure numpy on the dataset: no dask, no event store.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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
TABLE_COLUMNS = ("enu_mev", "xsec_cm2", "flavor")
_TABLE_SUFFIXES = (".csv", ".txt", ".dat")
_ALL_FLAVORS = "*"


# --- model tables ------------------------------------------------------------------------------


def _flavor_name(value: object) -> str:
    """A flavour as the farm names it, from its name (``numu``) or its PDG code (``14``)."""
    from farm.store.schema import FLAVOR_PDG

    text = str(value).strip()
    by_code = {str(code): name for name, code in FLAVOR_PDG.items() if code}
    if text in by_code:
        return by_code[text]
    if text in FLAVOR_PDG and text != "none":
        return text
    allowed = ", ".join(f"{n} ({c})" for n, c in FLAVOR_PDG.items() if c)
    msg = f"unknown flavour {text!r} in the model table; allowed: {allowed}"
    raise ValueError(msg)


@dataclass(frozen=True, kw_only=True, eq=False)
class ModelTable:
    """σ(E_ν) tabulated per flavour (or for every flavour), interpolated linearly.

    Called like any plug-in model, ``table(enu_mev, flavor) -> σ`` in cm² per target. Energies
    outside the table are refused rather than extrapolated: a comparison names the range its flux
    needs, and a table that starts at threshold should carry a row with ``xsec_cm2 = 0`` there.
    """

    curves: Mapping[str, tuple[np.ndarray, np.ndarray]]
    """Per flavour (or ``"*"`` for all), increasing energies in MeV and σ in cm² per target."""

    @classmethod
    def from_columns(
        cls,
        enu_mev: Any,
        xsec_cm2: Any,
        flavor: Any = None,
    ) -> ModelTable:
        """A table from its columns; without ``flavor`` the curve serves every flavour."""
        energy = np.asarray(enu_mev, dtype=np.float64).ravel()
        sigma = np.asarray(xsec_cm2, dtype=np.float64).ravel()
        if energy.size != sigma.size or energy.size < 2:
            msg = f"a model table needs at least two rows with enu_mev and xsec_cm2 each; got {energy.size} and {sigma.size} values"
            raise ValueError(msg)
        if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(sigma))):
            msg = "the model table has NaN or infinite values; give finite enu_mev and xsec_cm2"
            raise ValueError(msg)
        if (sigma < 0).any():
            msg = "the model table has a negative xsec_cm2; a cross section is >= 0"
            raise ValueError(msg)
        if flavor is None:
            labels = np.full(energy.size, _ALL_FLAVORS, dtype=object)
        else:
            labels = np.array([_flavor_name(f) for f in np.asarray(flavor).ravel()], dtype=object)
            if labels.size != energy.size:
                msg = f"the model table's flavor column has {labels.size} values for {energy.size} rows"
                raise ValueError(msg)
        curves = {}
        for name in dict.fromkeys(labels):
            rows = labels == name
            order = np.argsort(energy[rows], kind="stable")
            e, s = energy[rows][order], sigma[rows][order]
            if e.size < 2 or np.any(np.diff(e) <= 0):
                msg = f"the model table for {name if name != _ALL_FLAVORS else 'all flavours'} needs at least two distinct energies and no repeated enu_mev"
                raise ValueError(msg)
            curves[name] = (e, s)
        return cls(curves=curves)

    def curve(self, flavor: str) -> tuple[np.ndarray, np.ndarray]:
        if flavor in self.curves:
            return self.curves[flavor]
        if _ALL_FLAVORS in self.curves:
            return self.curves[_ALL_FLAVORS]
        msg = f"the model table has no rows for flavour {flavor!r} (it has {', '.join(sorted(self.curves))}); add rows with flavor = {flavor}"
        raise ValueError(msg)

    def __call__(self, enu_mev: np.ndarray, flavor: str) -> np.ndarray:
        e, s = self.curve(flavor)
        x = np.asarray(enu_mev, dtype=np.float64)
        outside = (x < e[0]) | (x > e[-1])
        if outside.any():
            msg = (
                f"the table covers {e[0]:g}–{e[-1]:g} MeV for {flavor}, but the flux needs σ at "
                f"{x[outside].min():g}–{x[outside].max():g} MeV: extend the table (a row at "
                "threshold with xsec_cm2 = 0 where the cross section vanishes)"
            )
            raise ValueError(msg)
        return np.interp(x, e, s)


def read_model_table(path: str | Path) -> ModelTable:
    """Read a CSV model table: columns ``enu_mev``, ``xsec_cm2`` and optionally ``flavor``.

    Lines starting with ``#`` are comments. ``flavor`` holds farm names (``nue``, ``numu``,
    ``numubar``, ``nuebar``) or PDG codes; without it one curve serves every flavour.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"model table {path} not found; give a CSV file with columns enu_mev, xsec_cm2[, flavor]"
        raise FileNotFoundError(msg)
    with path.open(newline="", encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    header = [h.strip() for h in reader.fieldnames or ()]
    unknown = sorted(set(header) - set(TABLE_COLUMNS))
    missing = [c for c in TABLE_COLUMNS[:2] if c not in header]
    if unknown or missing:
        msg = f"model table {path}: columns must be enu_mev, xsec_cm2 and optionally flavor; got {', '.join(header) or 'none'}"
        raise ValueError(msg)
    rows = [{k.strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    try:
        energy = [float(r["enu_mev"]) for r in rows]
        sigma = [float(r["xsec_cm2"]) for r in rows]
    except ValueError as err:
        msg = f"model table {path}: {err}; enu_mev and xsec_cm2 must be numbers"
        raise ValueError(msg) from None
    flavor = [r["flavor"] for r in rows] if "flavor" in header else None
    try:
        return ModelTable.from_columns(energy, sigma, flavor)
    except ValueError as err:
        msg = f"model table {path}: {err}"
        raise ValueError(msg) from None


def resolve_model(model: object) -> tuple[Callable[..., np.ndarray], str]:
    """(the callable, a default name) from a callable, ``"module:callable"`` or a table.

    A table is a :class:`ModelTable`, a mapping of columns (``enu_mev``, ``xsec_cm2`` and
    optionally ``flavor``; a pandas DataFrame works), or the path of a CSV file.
    """
    from farm.analysis.predict import load_model

    if isinstance(model, ModelTable):
        return model, "table"
    if isinstance(model, Path) or (
        isinstance(model, str) and (model.endswith(_TABLE_SUFFIXES) or Path(model).is_file())
    ):
        return read_model_table(model), Path(model).stem
    if isinstance(model, str):
        if ":" not in model:
            msg = f"model {model!r}: give module:callable (e.g. farm.models:cevns_csi_tree_helm), a callable, or a CSV table"
            raise ValueError(msg)
        return load_model(model), model.rpartition(":")[2]
    if isinstance(model, Mapping) or hasattr(model, "columns"):
        columns = model  # a mapping or a DataFrame: both index by column name
        present = [c for c in TABLE_COLUMNS if c in columns]
        return ModelTable.from_columns(
            *(columns[c] for c in present[:2]),  # type: ignore[index]
            columns["flavor"] if "flavor" in present else None,  # type: ignore[index]
        ), "table"
    if callable(model):
        return model, str(getattr(model, "__name__", "model"))  # type: ignore[return-value]
    msg = f"cannot use {type(model).__name__} as a model: give a callable model(enu_mev, flavor), module:callable, or a table"
    raise ValueError(msg)


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


def open_result(result: str | Path | xr.Dataset) -> xr.Dataset:
    """A result dataset as given, or opened from a published path (pinned to its current version)."""
    import xarray as xr

    from farm.publish import open_published

    if isinstance(result, xr.Dataset):
        return result
    if not Path(result).exists():
        msg = f"result {result} not found; produce one with `farm run CONFIG --out {result}`"
        raise FileNotFoundError(msg)
    return open_published(result)


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
    """``real`` (real-flux-averaged) or ``nominal`` (nominal-flux-averaged), design.md §2."""
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
    return ComparisonResult(
        name=label,
        kind=kind,
        sample=str(ds.attrs.get("sample", "")),
        n_universes=int(pub.phi.size),
        real=_convention("real", pub, real),
        nominal=_convention("nominal", pub, nominal),
    )
