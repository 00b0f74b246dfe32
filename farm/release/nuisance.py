"""One measurement of a HEPData record, read by the NUISANCE HEPData conventions (docs/hepdata.md).

A measurement is a dependent variable with ``variable_type=cross_section_measurement``. From its
qualifiers this module reads what a prediction needs and what a chi-square needs:

- ``cross_section_units`` (``1e-38 cm2|PerTargetNucleon|per_bin_width``) and ``target``;
- ``measurement_type``: ``flux_averaged_differential_cross_section`` (∫_j F dσ/dX / Φ, per unit
  of X with ``per_bin_width``) or ``total_cross_section`` (⟨σ⟩_j = ∫_j F σ / ∫_j F in E_ν bins);
- ``errors``: an error table (``covariance``, ``fractional_covariance``, ``correlation``,
  ``inverse_covariance`` or ``universes``); without it, the per-bin errors in quadrature;
- ``smearing``: the additional smearing A_C, a matrix over (i, j) with p'_i = Σ_j A_ij p_j (i the
  measurement's bin, j the bin of the prediction before smearing: the first independent
  variable is i, the second j);
- ``probe_flux``: one or more flux tables, ``name[weight]`` comma-separated;
- and, where published (farm's extension, ignored by other readers): ``universes``, the
  measurement in every systematic universe, and ``flux_universes``, the probe flux in each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from farm.release.record import Column, Record, Table
from farm.release.units import Target, Units, header_scale, parse_target, parse_units

__all__ = ["FluxComponent", "Measurement", "energy_factor", "read_measurement"]

_ENERGY = {"ev": 1e-6, "kev": 1e-3, "mev": 1.0, "gev": 1e3, "tev": 1e6}
_DEFAULT_UNITS = "1e-38 cm2|PerTarget|per_bin_width"
"""What the conventions assume when a measurement states no cross_section_units."""
_ENU_NAME = re.compile(r"(?i)(^|[^a-z])(e_?\{?\\?nu\}?|enu|e_nu|neutrino energy|e\(nu\))")


# --- flux --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class FluxComponent:
    """One probe flux as quadrature nodes: ∫ F g dE ≈ Σ_k fluence_k g(E_k)."""

    table: str
    flavor: str
    weight: float
    energy_mev: np.ndarray
    fluence: np.ndarray
    universes: dict[int, np.ndarray] = field(default_factory=dict)
    """Universe id -> fluence at the same nodes (absent: the nominal flux)."""


def _flavor(text: str, where: str) -> str:
    from farm.store.schema import FLAVOR_PDG

    value = text.strip().lower().replace("_", "")
    by_code = {str(code): name for name, code in FLAVOR_PDG.items() if code}
    if value in by_code:
        return by_code[value]
    if value in FLAVOR_PDG and value != "none":
        return value
    msg = f"{where}: probe_particle {text!r} is not a neutrino flavour the farm knows (nue, nuebar, numu, numubar or their PDG codes)"
    raise ValueError(msg)


def energy_factor(units: str, where: str) -> float:
    """MeV per unit of an energy axis (MeV when no units are given)."""
    key = units.strip().lower() or "mev"
    if key not in _ENERGY:
        msg = f"{where}: energy units {units!r} are not eV, keV, MeV, GeV or TeV"
        raise ValueError(msg)
    return _ENERGY[key]


def _nodes(table: Table, flux: Column, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(E in MeV, fluence) nodes of a flux table: its ``probe_flux_node`` energies where it has
    them (exact), else four Gauss–Legendre points per bin with the bin's content spread evenly."""
    if len(table.independent) != 1:
        msg = f"{where}: a flux table needs exactly one independent variable (E_nu)"
        raise ValueError(msg)
    axis = table.independent[0]
    factor = energy_factor(axis.units, where)
    content = flux.numbers(where)
    kind = flux.qualifiers.get("bin_content_type", "count")
    if kind not in ("count", "count_density"):
        msg = f"{where}: bin_content_type {kind!r} is not count or count_density"
        raise ValueError(msg)
    nodes = table.typed("probe_flux_node")
    if not axis.binned:
        return axis.numbers(where) * factor, content
    lo, hi = axis.edges(where)
    if kind == "count_density":
        content = content * (hi - lo)
    if nodes:
        return nodes[0].numbers(where) * energy_factor(nodes[0].units, where), content
    x, w = np.polynomial.legendre.leggauss(4)
    e = (0.5 * (hi - lo)[:, None] * x + 0.5 * (hi + lo)[:, None]) * factor
    return e.ravel(), (content[:, None] * 0.5 * w).ravel()


def _flux_universes(
    record: Record, reference: str, component: FluxComponent, where: str
) -> dict[int, np.ndarray]:
    """Fluence per universe at the component's nodes, from a table of counts at the same bins
    (``bin_content_type=count``) or of ratios to the nominal per E_nu bin (``ratio``)."""
    table = record.table(reference.split(":")[0])
    out = {}
    for col in table.typed("error_table"):
        if col.qualifiers.get("error_type") != "universes":
            continue
        u = int(col.qualifiers.get("universe", "-1"))
        values = col.numbers(where)
        if col.qualifiers.get("bin_content_type", "count") == "ratio":
            lo, hi = table.independent[0].edges(where)
            factor = energy_factor(table.independent[0].units, where)
            index = np.searchsorted(lo * factor, component.energy_mev, side="right") - 1
            inside = (index >= 0) & (component.energy_mev < hi[np.clip(index, 0, None)] * factor)
            out[u] = component.fluence * np.where(inside, values[np.clip(index, 0, None)], 1.0)
        else:
            if values.size != component.fluence.size:
                msg = f"{where}: flux universe table '{table.name}' has {values.size} rows for the {component.fluence.size} nodes of '{component.table}'"
                raise ValueError(msg)
            out[u] = values * component.weight
    return out


def _fluxes(record: Record, column: Column, where: str) -> list[FluxComponent]:
    spec = column.qualifiers.get("probe_flux", "")
    if not spec:
        msg = f"{where}: the measurement has no probe_flux qualifier; a model cannot be folded without the flux"
        raise ValueError(msg)
    universes = [r for r in column.qualifiers.get("flux_universes", "").split(",") if r.strip()]
    out = []
    for k, raw in enumerate(p.strip() for p in spec.split(",") if p.strip()):
        match = re.fullmatch(r"(.+?)\[([-+.\deE]+)\]", raw)
        ref, weight = (match.group(1), float(match.group(2))) if match else (raw, 1.0)
        table, flux = record.resolve(ref, want="probe_flux")
        e, w = _nodes(table, flux, f"{where}, flux '{table.name}'")
        component = FluxComponent(
            table=table.name,
            flavor=_flavor(
                flux.qualifiers.get("probe_particle", ""), f"{where}, flux '{table.name}'"
            ),
            weight=weight,
            energy_mev=e,
            fluence=w * weight,
        )
        if k < len(universes):
            component.universes.update(_flux_universes(record, universes[k], component, where))
        out.append(component)
    return out


# --- matrices over the measurement's bins ------------------------------------------------------


def _matrix(table: Table, column: Column, n: int, axes: list[Column], where: str) -> np.ndarray:
    """An (n, n) matrix from a table over (i, j): bin indices (0- or 1-based) or the bins of a
    one-dimensional measurement."""
    if len(table.independent) != 2:
        msg = f"{where}: table '{table.name}' needs two independent variables (bin i, bin j); it has {len(table.independent)}"
        raise ValueError(msg)
    values = column.numbers(where)
    index = []
    for axis in table.independent:
        if axis.binned:
            if len(axes) != 1 or not axes[0].binned:
                msg = f"{where}: table '{table.name}' is binned in '{axis.name}', which matches no one-dimensional binning of the measurement"
                raise ValueError(msg)
            lo, _ = axes[0].edges(where)
            a_lo, _ = axis.edges(where)
            k = np.searchsorted(lo, a_lo)
            if np.any(k >= n) or not np.allclose(lo[np.clip(k, 0, n - 1)], a_lo, rtol=1e-9, atol=0):
                msg = f"{where}: the bins of '{axis.name}' in '{table.name}' are not those of the measurement"
                raise ValueError(msg)
            index.append(k)
        else:
            k = np.rint(axis.numbers(where)).astype(np.int64)
            index.append(k - 1 if k.size and k.min() == 1 and k.max() == n else k)
    if values.size != n * n or any(k.min() < 0 or k.max() >= n for k in index):
        msg = f"{where}: table '{table.name}' holds {values.size} entries for a {n}-bin measurement (need {n}x{n} = {n * n}); the bin counts do not match"
        raise ValueError(msg)
    out = np.full((n, n), np.nan)
    out[index[0], index[1]] = values
    if np.isnan(out).any():
        msg = f"{where}: table '{table.name}' leaves some (i, j) of the {n}x{n} matrix empty"
        raise ValueError(msg)
    return out


def _universe_rows(table: Table, column: Column) -> tuple[np.ndarray, list[Column]]:
    """Universe ids and columns of an ``error_type=universes`` table."""
    cols = [c for c in table.typed("error_table") if c.qualifiers.get("error_type") == "universes"]
    ids = np.array(
        [int(c.qualifiers.get("universe", k)) for k, c in enumerate(cols)], dtype=np.int64
    )
    del column
    return ids, cols


def _covariance(
    record: Record, column: Column, values: np.ndarray, axes: list[Column], where: str
) -> tuple[np.ndarray, str]:
    n = values.size
    reference = column.qualifiers.get("errors", "")
    if not reference:
        if not column.has_errors():
            msg = f"{where}: the measurement has no covariance (no errors qualifier naming an error table) and no per-bin errors; a chi-square needs one of them"
            raise ValueError(msg)
        return np.diag(column.errors(where) ** 2), "per-bin errors in quadrature (no correlations)"
    table, col = record.resolve(reference, want="error_table")
    kind = col.qualifiers.get("error_type", "covariance")
    source = f"'{table.name}:{col.name}' ({kind})"
    if kind == "universes":
        ids, cols = _universe_rows(table, col)
        x = np.stack([c.numbers(where) for c in cols])
        center = x[ids == 0][0] if (ids == 0).any() else x.mean(axis=0)
        d = x[ids != 0] - center if (ids == 0).any() else x - center
        return d.T @ d / max(d.shape[0], 1), source
    matrix = _matrix(table, col, n, axes, f"{where}, {source}")
    if kind == "covariance":
        return matrix, source
    if kind == "fractional_covariance":
        return matrix * np.outer(values, values), source
    if kind == "inverse_covariance":
        return np.linalg.inv(matrix), source
    if kind == "correlation":
        labelled = [
            e for r in column.rows for e in (r.get("errors") or []) if e.get("label") == "total"
        ]
        sigma = (
            column.errors(where)
            if not labelled
            else np.array(
                [
                    abs(
                        float(next(e for e in r["errors"] if e.get("label") == "total")["symerror"])
                    )
                    for r in column.rows
                ]
            )
        )
        return matrix * np.outer(sigma, sigma), source
    msg = f"{where}: error_type {kind!r} of '{table.name}' is not covariance, fractional_covariance, correlation, inverse_covariance or universes"
    raise ValueError(msg)


@dataclass(frozen=True, kw_only=True, eq=False)
class Measurement:
    """A measurement of a record with all it takes to compare a model with it."""

    record: str
    table: str
    name: str
    measurement_type: str
    values: np.ndarray
    """(n,) in the record's units (``units``)."""
    units: Units
    header_units: str
    target: Target | None
    axes: list[Column]
    covariance: np.ndarray
    covariance_source: str
    smearing: np.ndarray | None = None
    """(n, n) A_C with p'_i = Σ_j A_ij p_j, or None."""
    smearing_universes: dict[int, np.ndarray] = field(default_factory=dict)
    fluxes: list[FluxComponent] = field(default_factory=list)
    flux_error: str = ""
    """Why the flux could not be read (a model cannot be folded then; a prediction file still can)."""
    universe_ids: np.ndarray | None = None
    universes: np.ndarray | None = None
    """(U, n) the measurement in every universe, or None."""
    universe_systematic: tuple[str, ...] = ()
    universe_in_total: np.ndarray | None = None
    center: str = "cv"
    normalization: str = "n"

    @property
    def n_bins(self) -> int:
        return int(self.values.size)

    @property
    def axis_kind(self) -> str:
        """``enu`` (binned in E_ν), ``total`` (one bin without a binned axis) or ``x``."""
        binned = [a for a in self.axes if a.binned]
        if not binned:
            return "total"
        if len(binned) == 1 and (
            _ENU_NAME.search(binned[0].name)
            or "enu" in self.project_function(binned[0]).lower()
            or self.measurement_type == "total_cross_section"
        ):
            return "enu"
        return "x"

    def project_function(self, axis: Column) -> str:
        return self.qualifiers.get(f"{axis.name}:projectfunc", "")

    qualifiers: dict[str, str] = field(default_factory=dict)


def _smearing(
    record: Record, column: Column, n: int, axes: list[Column], where: str
) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
    reference = column.qualifiers.get("smearing", "")
    if not reference or reference.lower().startswith("none"):
        return None, {}
    table, col = record.resolve(reference, want="smearing_table")
    central = _matrix(table, col, n, axes, f"{where}, smearing '{table.name}'")
    per_universe = {
        int(c.qualifiers["universe"]): _matrix(
            table, c, n, axes, f"{where}, smearing '{table.name}'"
        )
        for c in table.typed("smearing_table")
        if "universe" in c.qualifiers and c is not col
    }
    return central, per_universe


def _universes(record: Record, column: Column, n: int, where: str) -> dict[str, object]:
    reference = column.qualifiers.get("universes", "")
    if not reference:
        return {}
    table = record.table(reference.split(":")[0])
    ids, cols = _universe_rows(table, column)
    if not cols:
        msg = f"{where}: universes table '{table.name}' has no variable with error_type=universes"
        raise ValueError(msg)
    x = np.stack([c.numbers(where) for c in cols])
    if x.shape[1] != n:
        msg = f"{where}: universes table '{table.name}' has {x.shape[1]} bins for a {n}-bin measurement; the bin counts do not match"
        raise ValueError(msg)
    q = cols[0].qualifiers
    return {
        "universe_ids": ids,
        "universes": x,
        "universe_systematic": tuple(c.qualifiers.get("systematic", "all") for c in cols),
        "universe_in_total": np.array([c.qualifiers.get("in_total", "yes") != "no" for c in cols]),
        "center": q.get("covariance_center", "cv" if (ids == 0).any() else "mean"),
        "normalization": q.get("covariance_normalization", "n" if (ids == 0).any() else "n-1"),
    }


def read_measurement(record: Record, table: Table, column: Column) -> Measurement:
    """Everything the conventions give about one measurement variable (see the module docstring).

    Raises
    ------
    ValueError
        Naming the record, table and qualifier: no covariance, bin counts that do not match,
        units that do not match or are unknown, a composite or non-cross-section measurement.
    """
    where = f"{record.source}, table '{table.name}', '{column.name}'"
    q = column.qualifiers
    if q.get("variable_type") != "cross_section_measurement":
        msg = f"{where}: composite measurements are not supported; compare each sub-measurement"
        raise ValueError(msg)
    kind = q.get("measurement_type", "flux_averaged_differential_cross_section")
    if kind not in ("flux_averaged_differential_cross_section", "total_cross_section"):
        msg = f"{where}: measurement_type {kind!r} is not a flux-averaged or total cross section the farm can predict"
        raise ValueError(msg)
    stated = header_scale(column.units)
    if "cross_section_units" in q:
        units = parse_units(q["cross_section_units"], where=f"{where}: cross_section_units")
        if stated is not None and not np.isclose(stated, units.scale_cm2, rtol=1e-9, atol=0):
            msg = f"{where}: the header units {column.units!r} and cross_section_units {units.text!r} do not match ({stated:g} vs {units.scale_cm2:g} cm2)"
            raise ValueError(msg)
    elif stated is not None:  # no flags: the header's plainly stated scale, not the default's
        per_nucleon = "nucleon" in column.units.lower()
        flags = f"{stated:g} cm2|{'PerTargetNucleon' if per_nucleon else 'PerTarget'}|per_bin_width"
        units = Units(
            text=f"{flags} (from the header units {column.units!r})",
            scale_cm2=stated,
            scaling="pertargetnucleon" if per_nucleon else "pertarget",
            per_bin_width=True,
        )
    else:
        units = parse_units(_DEFAULT_UNITS, where=f"{where}: the conventions' default units")
    values = column.numbers(where)
    axes = list(table.independent)
    for axis in axes:
        if len(axis.rows) != values.size:
            msg = f"{where}: '{axis.name}' has {len(axis.rows)} rows for {values.size} values; the bin counts do not match"
            raise ValueError(msg)
    cov, source = _covariance(record, column, values, axes, where)
    smearing, smearing_u = _smearing(record, column, values.size, axes, where)
    target = parse_target(q["target"]) if q.get("target") else None
    if target is None and units.scaling != "pertarget":
        msg = f"{where}: cross_section_units {units.text!r} scale per nucleon, but the measurement has no target qualifier to count them"
        raise ValueError(msg)
    try:
        fluxes, flux_error = _fluxes(record, column, where), ""
    except ValueError as err:
        fluxes, flux_error = [], str(err)
    return Measurement(
        record=str(record.source),
        table=table.name,
        name=column.name,
        measurement_type=kind,
        values=values,
        units=units,
        header_units=column.units,
        target=target,
        axes=axes,
        covariance=cov,
        covariance_source=source,
        smearing=smearing,
        smearing_universes=smearing_u,
        fluxes=fluxes,
        flux_error=flux_error,
        qualifiers=dict(q),
        **_universes(record, column, values.size, where),  # type: ignore[arg-type]
    )
