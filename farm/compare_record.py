"""A model against a published HEPData record, read by the NUISANCE HEPData conventions.

``compare_record(RECORD, model)`` reads every cross-section measurement of the record
(:mod:`farm.release.nuisance`), folds the model with the record's probe flux exactly as
:func:`farm.compare` folds it with a farm result, applies the additional smearing A_C where the
record has one, and returns per measurement

    χ² = (x − A p)ᵀ C⁻¹ (x − A p),   dof = number of bins,

with C the record's covariance (an error table, or the per-bin errors). Where the record also
publishes the measurement in every systematic universe (and the flux of each universe), the
prediction is made in every universe too, and the joint measured–predicted chi-square follows:

    χ²_joint = Δᵀ (C + V_pp − V_mp − V_pm)⁻¹ Δ,     χ²_uncorrelated = Δᵀ (C + V_pp)⁻¹ Δ,

with V the covariance over the shared universes (the measured block V_mm is already in C). For a
release written by ``farm export hepdata`` these are the numbers ``farm compare RESULT`` gives.

The prediction, folded from the nodes (E_k, F_k) of the probe flux (Φ = Σ_k F_k over all probe
fluxes, a node k in bin j when lo_j ≤ E_k < hi_j):

- ``flux_averaged_differential_cross_section`` binned in E_ν: p_j = Σ_{k∈j} F_k σ(E_k) / Φ;
- binned in a kinematic X, with a dσ/dX model: p_j = Σ_k F_k ∫_j dσ/dX(E_k, x) dx / Φ;
- ``per_bin_width``: divided by the bin width; ``total_cross_section``: p_j = Σ_{k∈j} F_k σ_k /
  Σ_{k∈j} F_k; one bin without a binned axis: Σ_k F_k σ_k / Φ;

then converted to the record's units: divided by their cm² scale (1e-38 for ``1e-38 cm2``) and
by the nucleons (neutrons, protons) per target nucleus for ``PerTargetNucleon`` (…).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from farm.analysis.chi2 import Chi2Result
    from farm.release.nuisance import Measurement

__all__ = ["MeasurementComparison", "RecordComparison", "compare_record", "is_record", "predict"]


@dataclass(frozen=True, kw_only=True, eq=False)
class MeasurementComparison:
    """One measurement of a record against one model (or a prediction file)."""

    measurement: Measurement
    predicted: np.ndarray
    """(n,) the prediction in the record's units, A_C applied."""
    chi2: Chi2Result
    """With the record's covariance alone."""
    joint: Chi2Result | None = None
    """With the measured–predicted correlation over the published universes (None without them)."""
    uncorrelated: Chi2Result | None = None
    predicted_universes: np.ndarray | None = None
    """(U, n) the prediction in every published universe."""
    joint_cov: np.ndarray | None = None
    """(2n, 2n) covariance of (measured, predicted) over the universes."""

    @property
    def table(self) -> str:
        return self.measurement.table

    def __repr__(self) -> str:
        from farm._repr import chi2_text

        text = f"MeasurementComparison({self.table!r}, {self.predicted.size} bins: χ² {chi2_text(self.chi2)}"
        if self.joint is not None:
            text += (
                f"; over the universes with the correlation {chi2_text(self.joint)}, "
                f"ignoring it {chi2_text(self.uncorrelated)}"
            )
        return text + ")"

    @property
    def measured_error(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.measurement.covariance), 0, None))

    @property
    def predicted_error(self) -> np.ndarray:
        n = self.measurement.n_bins
        if self.joint_cov is None:
            return np.zeros(n)
        return np.sqrt(np.clip(np.diag(self.joint_cov[n:, n:]), 0, None))


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordComparison:
    record: str
    name: str
    measurements: list[MeasurementComparison]

    def __repr__(self) -> str:
        from farm._repr import lines

        head = f"RecordComparison({self.name!r} against {self.record}: {len(self.measurements)} measurement(s))"
        return lines(head, [repr(m) for m in self.measurements])

    def table(self, name: str) -> MeasurementComparison:
        for m in self.measurements:
            if m.table == name:
                return m
        msg = f"no measurement table {name!r} in {self.record}; it has {', '.join(m.table for m in self.measurements)}"
        raise ValueError(msg)


def is_record(path: str | Path) -> bool:
    """A HEPData record (a directory with submission.yaml, the file itself, or an archive) rather
    than a farm result."""
    path = Path(path)
    if path.is_dir():
        return (path / "submission.yaml").is_file()
    return path.name.endswith((".zip", ".tar.gz", ".tgz", ".tar", ".yaml", ".yml"))


# --- folding -----------------------------------------------------------------------------------


def _contributions(
    m: Measurement, component: Any, model: Callable[..., Any], kind: str, name: str
) -> np.ndarray:
    """(K, n) what node k adds to bin j before dividing by the flux (σ_k·[k ∈ j], or ∫_j dσ/dX)."""
    from farm.analysis.predict import _evaluate

    e, n = component.energy_mev, m.n_bins
    out = np.zeros((e.size, n))
    axis = m.axis_kind
    if kind == "dxsec":
        if axis != "x":
            msg = f"{m.table}: a dσ/dX model needs a measurement binned in a kinematic variable; this one is binned in {'E_nu' if axis == 'enu' else 'nothing (one total bin)'}: use --kind xsec"
            raise ValueError(msg)
        lo, hi = m.axes[0].edges(m.table)
        x, w = np.polynomial.legendre.leggauss(16)
        xs = (0.5 * (hi - lo)[:, None] * x + 0.5 * (hi + lo)[:, None]).ravel()
        weights = (0.5 * (hi - lo)[:, None] * w).ravel()
        dsigma = _evaluate(
            model,
            (e[:, None], xs[None, :], component.flavor),
            (e.size, xs.size),
            name,
            component.flavor,
        )
        return (dsigma * weights).reshape(e.size, n, 16).sum(axis=2)
    if axis == "x":
        variable = next(a for a in m.axes if a.binned).name
        msg = f"{m.table} is binned in {variable!r}, not E_nu: give a dσ/dX model (--kind dxsec) or a prediction file"
        raise ValueError(msg)
    index = _enu_bins(m, e)
    inside = index >= 0
    sigma = _evaluate(
        model, (e[inside], component.flavor), (int(inside.sum()),), name, component.flavor
    )
    out[np.flatnonzero(inside), index[inside]] = sigma
    return out


def _enu_bins(m: Measurement, energy_mev: np.ndarray) -> np.ndarray:
    """Bin of each node (lo ≤ E < hi), −1 outside; one total bin holds every node."""
    from farm.release.nuisance import energy_factor

    if m.axis_kind == "total":
        return np.zeros(energy_mev.size, dtype=np.int64)
    axis = next(a for a in m.axes if a.binned)
    lo, hi = axis.edges(m.table)
    factor = energy_factor(axis.units, f"{m.table}, '{axis.name}'")
    lo, hi = lo * factor, hi * factor
    index = np.searchsorted(lo, energy_mev, side="right") - 1
    ok = (index >= 0) & (energy_mev < hi[np.clip(index, 0, None)])
    return np.where(ok, index, -1)


def _bin_widths(m: Measurement) -> np.ndarray:
    binned = [a for a in m.axes if a.binned]
    if not binned:
        return np.ones(m.n_bins)
    lo, hi = binned[0].edges(m.table)
    return hi - lo


def predict(
    m: Measurement, model: Callable[..., Any], *, kind: str = "xsec", name: str = "model"
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(central prediction, {universe id: prediction} for every published universe) in the
    record's units, each with its own A_C where the record has one per universe."""
    if not m.fluxes:
        msg = f"{m.record}: cannot fold a model with {m.table}: {m.flux_error or 'no probe flux'}; give a prediction file instead"
        raise ValueError(msg)
    if len([a for a in m.axes if a.binned]) > 1:
        msg = f"{m.table} is binned in {len(m.axes)} variables: the farm folds models for one-dimensional measurements; give a prediction file (--prediction)"
        raise ValueError(msg)
    ids = sorted({u for c in m.fluxes for u in c.universes})
    numerator = {u: np.zeros(m.n_bins) for u in [-1, *ids]}
    flux_in_bin = {u: np.zeros(m.n_bins) for u in numerator}
    phi = dict.fromkeys(numerator, 0.0)
    for component in m.fluxes:
        contrib = _contributions(m, component, model, kind, name)
        index = _enu_bins(m, component.energy_mev) if m.axis_kind != "x" else None
        for u in numerator:
            fluence = component.universes.get(u, component.fluence) if u >= 0 else component.fluence
            numerator[u] += fluence @ contrib
            phi[u] += float(fluence.sum())
            if index is not None:
                inside = index >= 0
                flux_in_bin[u] += np.bincount(
                    index[inside], weights=fluence[inside], minlength=m.n_bins
                )
    scale = m.units.scale_cm2 * (m.target.per(m.units.scaling) if m.target else 1.0)
    width = _bin_widths(m) if m.units.per_bin_width else np.ones(m.n_bins)
    if m.measurement_type == "total_cross_section" and m.units.per_bin_width:
        msg = f"{m.table}: per_bin_width on a total_cross_section is not defined; check cross_section_units"
        raise ValueError(msg)
    unsmeared = {}
    for u in numerator:
        if m.measurement_type == "total_cross_section":
            if not (flux_in_bin[u] > 0).all():
                msg = f"{m.table}: an E_nu bin holds no probe flux, so its total cross section cannot be predicted"
                raise ValueError(msg)
            p = numerator[u] / flux_in_bin[u]
        else:
            p = numerator[u] / phi[u]
        unsmeared[u] = p / width / scale
    central = _smear(m, unsmeared[-1], 0)
    if m.universe_ids is None:
        return central, {}
    return central, {
        int(u): _smear(m, unsmeared.get(int(u), unsmeared[-1]), int(u)) for u in m.universe_ids
    }


def _smear(m: Measurement, p: np.ndarray, universe: int) -> np.ndarray:
    a = m.smearing_universes.get(universe, m.smearing) if m.smearing is not None else None
    return p if a is None else a @ p


# --- chi-squares -------------------------------------------------------------------------------


def _chi2(delta: np.ndarray, cov: np.ndarray, where: str) -> Chi2Result:
    from farm.analysis.chi2 import Chi2Result, chi2, pvalue

    try:
        value = float(chi2(delta, cov))
    except ValueError as err:
        msg = f"{where}: {err}"
        raise ValueError(msg) from None
    return Chi2Result(chi2=value, dof=int(delta.size), pvalue=float(pvalue(value, delta.size)))


def _joint(
    m: Measurement, predicted: np.ndarray, per_universe: dict[int, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(U, n) predictions aligned with the measurement's universes, and the (2n, 2n) covariance of
    (measured, predicted) summed over the systematics in the total."""
    from farm.analysis.covariance import joint_covariance

    assert (
        m.universes is not None and m.universe_ids is not None and m.universe_in_total is not None
    )
    p = np.stack([per_universe[int(u)] for u in m.universe_ids])
    systematic = np.array(m.universe_systematic)
    has_cv = (m.universe_ids == 0).any()
    cv = int(np.flatnonzero(m.universe_ids == 0)[0]) if has_cv else None
    n = m.n_bins
    total = np.zeros((2 * n, 2 * n))
    for name in dict.fromkeys(systematic[m.universe_in_total & (m.universe_ids != 0)]):
        rows = np.flatnonzero((systematic == name) & (m.universe_ids != 0))
        total += joint_covariance(
            m.universes[rows],
            p[rows],
            central_measured=m.universes[cv] if cv is not None else None,
            central_predicted=p[cv] if cv is not None else None,
            center=m.center if cv is not None else "mean",  # type: ignore[arg-type]
            normalization=m.normalization,  # type: ignore[arg-type]
        )
    return p, total


def _compare(
    m: Measurement, predicted: np.ndarray, per_universe: dict[int, np.ndarray] | None
) -> MeasurementComparison:
    where = f"{m.record}, {m.table}"
    if predicted.size != m.n_bins:
        msg = f"{where}: the prediction has {predicted.size} values for {m.n_bins} bins; the bin counts do not match"
        raise ValueError(msg)
    delta = m.values - predicted
    plain = _chi2(delta, m.covariance, f"{where} ({m.covariance_source})")
    if m.universes is None or per_universe is None:
        return MeasurementComparison(measurement=m, predicted=predicted, chi2=plain)
    p, joint = _joint(m, predicted, per_universe)
    n = m.n_bins
    vpp, vmp = joint[n:, n:], joint[:n, n:]
    return MeasurementComparison(
        measurement=m,
        predicted=predicted,
        chi2=plain,
        joint=_chi2(delta, m.covariance + vpp - vmp - vmp.T, f"{where} (joint)"),
        uncorrelated=_chi2(delta, m.covariance + vpp, f"{where} (uncorrelated)"),
        predicted_universes=p,
        joint_cov=joint,
    )


def compare_record(
    record: str | Path,
    model: object = None,
    *,
    prediction: str | Path | None = None,
    kind: str = "xsec",
    table: str | None = None,
    name: str | None = None,
) -> RecordComparison:
    """Compare a model (or a prediction file) with the measurements of a HEPData record.

    Parameters
    ----------
    record : path
        A directory with ``submission.yaml``, the ``submission.yaml`` itself, or a ``.zip`` /
        ``.tar.gz`` archive, following the NUISANCE HEPData conventions (docs/hepdata.md).
    model : callable or str, optional
        ``σ(enu_mev, flavor)`` in cm² per target nucleus (``kind="xsec"``), or ``dσ/dX(enu_mev,
        x, flavor)`` per unit of X in the record's units (``kind="dxsec"``), or
        ``"module:callable"``, or a σ(E_ν) table (see :func:`farm.compare`).
    prediction : path, optional
        Bin values instead of a model (CSV or YAML, :mod:`farm.release.prediction_file`).
    table : str, optional
        Only this measurement table (default: every one).

    Returns
    -------
    RecordComparison
        Per measurement: χ², dof, p-value; and the joint / uncorrelated χ² where universes are
        published.
    """
    from farm.compare_models import resolve_model
    from farm.release.nuisance import read_measurement
    from farm.release.prediction_file import read_prediction
    from farm.release.record import open_record

    if (model is None) == (prediction is None):
        msg = "give exactly one of a model or a prediction file"
        raise ValueError(msg)
    if kind not in ("xsec", "dxsec"):
        msg = f"kind must be 'xsec' (σ(E_ν)) or 'dxsec' (dσ/dX); got {kind!r}"
        raise ValueError(msg)
    rec = open_record(record)
    found = rec.measurements()
    if table is not None:
        found = [(t, c) for t, c in found if t.name == table]
    if not found:
        names = (
            ", ".join(t.name for t, _ in rec.measurements())
            or f"none (its tables: {', '.join(rec.tables)})"
        )
        msg = (
            f"{record}: no variable with variable_type=cross_section_measurement "
            f"{'in table ' + repr(table) + ' ' if table else ''}(the NUISANCE HEPData conventions, "
            f"docs/hepdata.md); the record's measurement tables: {names}. Give the bins' "
            "prediction of an untyped table with --prediction once it names its covariance"
        )
        raise ValueError(msg)
    out = []
    if prediction is not None:
        for t, c in found:
            m = read_measurement(rec, t, c)
            values = read_prediction(prediction, m)
            out.append(_compare(m, values, None))
        return RecordComparison(
            record=str(record), name=name or Path(prediction).stem, measurements=out
        )
    function, default_name = resolve_model(model)
    label = name or default_name
    for t, c in found:
        m = read_measurement(rec, t, c)
        central, per_universe = predict(m, function, kind=kind, name=label)
        out.append(_compare(m, central, per_universe if m.universes is not None else None))
    return RecordComparison(record=str(record), name=label, measurements=out)
