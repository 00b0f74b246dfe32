"""The tables a measurement rests on and how models fare: flux, flux universes, counts, chi-square.

- ``flux-<flavour>``: the nominal flux of each signal flavour at the run's own resolution, one bin
  per quadrature node with the node beside it (:mod:`farm.release.flux_nodes`); other flavours
  (background only) on their systematic flux bins.
- ``flux_universes-<flavour>``: every universe whose flux differs from the nominal, as its ratio
  to the nominal per systematic flux bin, which is how the run throws it: the flux of universe
  u at node k is F̄_k r_u,b(k). Where it stays small (``MAX_FINE_UNIVERSE_VALUES``) the same
  flux is also written node by node, ``flux_universes_fine-<flavour>``.
- ``event_counts`` and ``model_chi2`` (the chi-square of every model attached to the run).
"""

from __future__ import annotations

import itertools
import json
from types import ModuleType
from typing import Any

import numpy as np
import xarray as xr

from farm.release.blocks import About, axis, table, variable
from farm.release.flux_nodes import FluxNodes, flux_nodes
from farm.store.schema import FLAVOR_PDG

__all__ = ["MAX_FINE_UNIVERSE_VALUES", "flux_references", "input_tables"]

MAX_FINE_UNIVERSE_VALUES = 250_000
"""Most numbers one ``flux_universes_fine-<flavour>`` table may hold (else only the ratios)."""
_UNITS = "nu / cm^2 over the exposure"


def _nodes(ds: xr.Dataset, about: About, flavor: str) -> FluxNodes:
    code = FLAVOR_PDG[flavor]
    pick = np.asarray(ds["flux_rule_flavor"].values) == code
    kept = [*_flux_edges(ds, flavor)]
    if about.axis_kind == "enu":
        kept += [float(x) for x in ds["truth_edges"].values]
    return flux_nodes(
        flavor, ds["flux_rule_enu"].values[pick], ds["flux_rule_fluence"].values[pick], kept
    )


def _flux_edges(ds: xr.Dataset, flavor: str) -> list[float]:
    flavors = [str(f) for f in ds["flux_bin_flavor"].values[:-1]]
    rows = [k for k, f in enumerate(flavors) if f == flavor]
    lo, hi = ds["flux_bin_lo_mev"].values, ds["flux_bin_hi_mev"].values
    return sorted({float(lo[k]) for k in rows} | {float(hi[k]) for k in rows})


def _flux_universe_ids(ds: xr.Dataset, flavor: str) -> tuple[np.ndarray, np.ndarray]:
    """(universes whose flux of ``flavor`` differs from nominal, the flux-bin columns of it)."""
    flavors = [str(f) for f in ds["flux_bin_flavor"].values[:-1]]
    cols = np.array([k for k, f in enumerate(flavors) if f == flavor], dtype=np.int64)
    ratio = np.asarray(ds["flux_ratio"].values)[:, cols]
    moved = np.flatnonzero(np.any(ratio != 1.0, axis=1))
    return moved[moved > 0], cols


def fine_universes_written(ds: xr.Dataset, about: About, flavor: str) -> bool:
    moved, _ = _flux_universe_ids(ds, flavor)
    return 0 < moved.size * _nodes(ds, about, flavor).energy_mev.size <= MAX_FINE_UNIVERSE_VALUES


def flux_references(ds: xr.Dataset, about: About) -> dict[str, str]:
    """The ``probe_flux`` and ``flux_universes`` qualifiers of every measurement."""
    universes = [
        f"flux_universes_fine-{f}"
        if fine_universes_written(ds, about, f)
        else f"flux_universes-{f}"
        for f in about.signal_flavors
    ]
    return {
        "probe_flux": ",".join(f"flux-{f}" for f in about.signal_flavors),
        "flux_universes": ",".join(universes),
    }


def _energy_axis(lib: ModuleType, about: About, lo: np.ndarray, hi: np.ndarray) -> Any:
    bins = [(float(a), float(b)) for a, b in zip(lo, hi, strict=True)]
    return variable(lib, "E_nu", bins, about, units="MeV", independent=True, binned=True)


def _signal_flux_table(lib: ModuleType, ds: xr.Dataset, about: About, flavor: str) -> Any:
    nodes = _nodes(ds, about, flavor)
    p = about.precision
    scale = float(nodes.fluence.max())
    fluence = variable(
        lib,
        f"flux {flavor}",
        p.matrix(nodes.fluence, scale).tolist(),
        about,
        units=_UNITS,
        qualifiers=[
            ("variable_type", "probe_flux"),
            ("probe_particle", flavor),
            ("probe_pdg", FLAVOR_PDG[flavor]),
            ("bin_content_type", "count"),
        ],
    )
    node = variable(
        lib,
        "E_nu node",
        p.matrix(nodes.energy_mev, nodes.hi_mev - nodes.lo_mev).tolist(),
        about,
        units="MeV",
        qualifiers=[("variable_type", "probe_flux_node"), ("for", f"flux {flavor}")],
    )
    how = (
        f"the run's {ds['flux_rule_enu'].size} nodes merged into {nodes.energy_mev.size} bins, each at its fluence-weighted mean energy"
        if nodes.merged
        else "one bin per quadrature node of the run"
    )
    description = (
        f"Nominal {flavor} flux at the detector, neutrinos per cm^2 over the exposure in each "
        f"bin ({how}). 'E_nu node' is the energy at which the run evaluated a cross section for "
        "the bin: sum_k flux_k sigma(E_node_k) is the flux integral the run used. Every "
        "measurement of the record names this table in its probe_flux."
    )
    return table(
        lib,
        f"flux-{flavor}",
        description,
        [_energy_axis(lib, about, nodes.lo_mev, nodes.hi_mev), fluence, node],
        about,
        phrases=["Flux"],
    )


def _background_flux_table(lib: ModuleType, ds: xr.Dataset, about: About, flavor: str) -> Any:
    flavors = [str(f) for f in ds["flux_bin_flavor"].values]
    rows = [k for k, f in enumerate(flavors) if f == flavor]
    lo, hi = ds["flux_bin_lo_mev"].values[rows], ds["flux_bin_hi_mev"].values[rows]
    values = ds["flux"].values[0, rows]
    fluence = variable(
        lib,
        f"flux {flavor}",
        about.precision.matrix(values, float(np.abs(values).max()) or 1.0).tolist(),
        about,
        units=_UNITS,
        qualifiers=[
            ("variable_type", "probe_flux"),
            ("probe_particle", flavor),
            ("probe_pdg", FLAVOR_PDG[flavor]),
            ("bin_content_type", "count"),
        ],
    )
    description = (
        f"Nominal {flavor} flux per systematic flux bin. Not a probe flux of the measurements "
        "(its interactions are background), shown for completeness."
    )
    return table(
        lib,
        f"flux-{flavor}",
        description,
        [_energy_axis(lib, about, lo, hi), fluence],
        about,
        phrases=["Flux"],
    )


def _universe_qualifiers(ds: xr.Dataset, u: int, content: str) -> list[tuple[str, Any]]:
    return [
        ("variable_type", "error_table"),
        ("error_type", "universes"),
        ("universe", int(u)),
        ("systematic", str(ds["universe_systematic"].values[u])),
        ("bin_content_type", content),
    ]


def _ratio_table(lib: ModuleType, ds: xr.Dataset, about: About, flavor: str) -> Any:
    moved, cols = _flux_universe_ids(ds, flavor)
    lo, hi = ds["flux_bin_lo_mev"].values[cols], ds["flux_bin_hi_mev"].values[cols]
    ratio = np.asarray(ds["flux_ratio"].values)
    variables = [_energy_axis(lib, about, lo, hi)]
    for u in moved:
        variables.append(
            variable(
                lib,
                f"universe {u}",
                about.precision.matrix(ratio[u, cols], 1.0).tolist(),
                about,
                qualifiers=_universe_qualifiers(ds, u, "ratio"),
            )
        )
    if not moved.size:
        variables.append(
            variable(
                lib,
                "universe 0",
                [1.0] * cols.size,
                about,
                qualifiers=_universe_qualifiers(ds, 0, "ratio"),
            )
        )
    description = (
        f"The {flavor} flux of every universe that changes it, as its ratio to the nominal flux "
        f"'flux-{flavor}' in each systematic flux bin (lo <= E_nu < hi): the flux of universe u at "
        "a node of energy E is the nominal flux times the ratio of the bin holding E (1 outside "
        "these bins). A universe not listed has the nominal flux. Universe numbers are those of "
        "the 'universes' tables."
    )
    return table(
        lib,
        f"flux_universes-{flavor}",
        description,
        variables,
        about,
        phrases=["Flux", "Systematic universes"],
    )


def _fine_universe_table(lib: ModuleType, ds: xr.Dataset, about: About, flavor: str) -> Any:
    nodes = _nodes(ds, about, flavor)
    moved, cols = _flux_universe_ids(ds, flavor)
    ratio = np.asarray(ds["flux_ratio"].values)[:, cols]
    edges = np.concatenate(
        [ds["flux_bin_lo_mev"].values[cols], ds["flux_bin_hi_mev"].values[cols][-1:]]
    )
    index = np.searchsorted(edges, nodes.energy_mev, side="right") - 1
    inside = (index >= 0) & (index < cols.size)
    scale = float(nodes.fluence.max())
    variables = [_energy_axis(lib, about, nodes.lo_mev, nodes.hi_mev)]
    for u in moved:
        per_node = nodes.fluence * np.where(inside, ratio[u, np.clip(index, 0, cols.size - 1)], 1.0)
        variables.append(
            variable(
                lib,
                f"universe {u}",
                about.precision.matrix(per_node, scale).tolist(),
                about,
                units=_UNITS,
                qualifiers=_universe_qualifiers(ds, u, "count"),
            )
        )
    description = (
        f"The {flavor} flux of every universe that changes it, at the bins and nodes of "
        f"'flux-{flavor}' (neutrinos per cm^2 over the exposure in each bin). A universe not "
        "listed has the nominal flux."
    )
    return table(
        lib,
        f"flux_universes_fine-{flavor}",
        description,
        variables,
        about,
        phrases=["Flux", "Systematic universes"],
    )


def _counts_table(lib: ModuleType, ds: xr.Dataset, about: About) -> Any:
    edges = ds["reco_edges"].values
    name, units = axis(str(ds.attrs.get("observable", "reco")))
    reco = variable(
        lib,
        name,
        [(float(a), float(b)) for a, b in itertools.pairwise(edges)],
        about,
        units=units,
        independent=True,
        binned=True,
    )
    variables = [reco]
    for label, values in (
        ("observed events", ds["data_counts"].values),
        ("expected signal", ds["signal_reco"].values[0]),
        ("expected background", ds["background_reco"].values[0]),
    ):
        variables.append(
            variable(
                lib,
                label,
                about.precision.plain(values).tolist(),
                about,
                units="events",
                qualifiers=[("variable_type", "event_count")],
            )
        )
    data = json.loads(ds.attrs.get("data", "{}"))
    origin = "read from a file" if data.get("kind") == "file" else "fake data (farm recipe)"
    description = (
        f"Selected events per reconstructed bin: observed ({origin}), and the expected signal "
        "and background of the central value."
    )
    return table(lib, "event_counts", description, variables, about)


def _chi2_table(lib: ModuleType, ds: xr.Dataset, about: About) -> Any:
    from farm.analysis.quoted import sigma_chi2

    models = [str(m) for m in ds["model"].values]
    variables = [variable(lib, "model", models, about, independent=True)]
    share = "flux_share" if about.axis_kind == "enu" else "cross_section"
    rows: list[tuple[str, np.ndarray, str]] = []
    for convention in ("real", "nominal"):
        for kind, label in (("joint", "with"), ("uncorrelated", "without")):
            rows.append(
                (
                    f"chi2 {convention}, {label} correlation",
                    ds[f"chi2_{convention}_{kind}"].values,
                    f"{share}-{convention}",
                )
            )
            rows.append(
                (
                    f"p-value {convention}, {label} correlation",
                    ds[f"pvalue_{convention}_{kind}"].values,
                    f"{share}-{convention}",
                )
            )
        if about.axis_kind == "enu":
            sigma = [sigma_chi2(ds, convention, m) for m in range(len(models))]
            for k, label in ((0, "with"), (1, "without")):
                rows.append(
                    (
                        f"chi2 {convention} <sigma>, {label} correlation",
                        np.array([s[k].chi2 for s in sigma]),
                        f"cross_section-{convention}",
                    )
                )
    for label, values, measurement in rows:
        variables.append(
            variable(
                lib,
                label,
                about.precision.plain(np.asarray(values)).tolist(),
                about,
                qualifiers=[
                    ("variable_type", "statistic_at"),
                    ("dof", int(ds["chi2_dof"].values)),
                    ("for_measurement", measurement),
                ],
            )
        )
    description = (
        "Chi-square of each attached model against the measurement named in for_measurement, "
        "chi2 = D^T (V_mm + V_pp - V_mp - V_pm + V_stat)^-1 D with the measured-predicted "
        "correlation from the shared universes, and without it (V_mp = 0); "
        f"{int(ds['chi2_dof'].values)} degrees of freedom."
    )
    return table(lib, "model_chi2", description, variables, about, phrases=["Chi-square"])


def input_tables(lib: ModuleType, ds: xr.Dataset, about: About) -> list[Any]:
    """Flux per flavour, flux universes, event counts and the models' chi-square."""
    tables = []
    for flavor in about.flux_flavors:
        if flavor in about.signal_flavors:
            tables.append(_signal_flux_table(lib, ds, about, flavor))
        else:
            tables.append(_background_flux_table(lib, ds, about, flavor))
    for flavor in about.signal_flavors:
        tables.append(_ratio_table(lib, ds, about, flavor))
        if fine_universes_written(ds, about, flavor):
            tables.append(_fine_universe_table(lib, ds, about, flavor))
    return [*tables, _counts_table(lib, ds, about), _chi2_table(lib, ds, about)]
