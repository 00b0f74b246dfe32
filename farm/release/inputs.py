"""The tables a measurement rests on and how models fare: flux, flux universes, counts, chi-square.

The nominal flux per flavour and flux bin (the probe flux of every measurement table), the flux of
every universe as ratios per flux bin with its integrated flux (rows shared with the per-universe
cross-section tables), the observed and expected event counts, and the chi-square of every model
attached to the run with and without the measured–predicted correlation.
"""

from __future__ import annotations

import itertools
import json
from types import ModuleType
from typing import Any

import xarray as xr

from farm.release.blocks import About, axis, table, universe_axes, variable
from farm.store.schema import FLAVOR_PDG

__all__ = ["input_tables"]


def _flux_tables(lib: ModuleType, ds: xr.Dataset, about: About) -> list[Any]:
    flavors = [str(f) for f in ds["flux_bin_flavor"].values]
    lo, hi = ds["flux_bin_lo_mev"].values, ds["flux_bin_hi_mev"].values
    nominal = ds["flux"].values[0]
    tables = []
    for flavor in about.flux_flavors:
        rows = [k for k, f in enumerate(flavors) if f == flavor]
        energy = variable(
            lib,
            "E_nu",
            [(float(lo[k]), float(hi[k])) for k in rows],
            about,
            units="MeV",
            independent=True,
            binned=True,
        )
        fluence = variable(
            lib,
            f"Flux {flavor}",
            nominal[rows].tolist(),
            about,
            units="nu / cm^2 over the exposure",
            qualifiers=[
                ("variable_type", "probe_flux"),
                ("probe_particle", flavor),
                ("probe_pdg", FLAVOR_PDG[flavor]),
                ("bin_content_type", "count"),
                ("signal", "yes" if flavor in about.signal_flavors else "no"),
            ],
        )
        description = (
            f"Nominal {flavor} fluence per flux bin over the exposure (neutrinos per cm^2 at the "
            "detector, integrated over each bin): the flux bins on which flux universes vary."
        )
        tables.append(
            table(lib, f"Flux {flavor}", description, [energy, fluence], about, phrases=["Flux"])
        )
    return tables


def _flux_universe_table(lib: ModuleType, ds: xr.Dataset, about: About) -> Any:
    labels = [str(f) for f in ds["flux_bin"].values[:-1]]
    ratio = ds["flux_ratio"].values
    variables = universe_axes(lib, ds, about)
    for k, label in enumerate(labels):
        variables.append(
            variable(
                lib,
                f"Flux ratio {label}",
                ratio[:, k].tolist(),
                about,
                qualifiers=[("flux bin", f"{label} MeV")],
            )
        )
    variables.append(
        variable(
            lib,
            "Integrated flux Phi",
            ds["integrated_flux"].values.tolist(),
            about,
            units="nu / cm^2 over the exposure",
            qualifiers=[("flavours", ",".join(about.signal_flavors))],
        )
    )
    description = (
        "The flux of every universe as its ratio to the nominal flux per flux bin "
        "(flavour:E_nu range in MeV), and the integrated flux Phi_u of the signal flavours. "
        "Rows match the 'Universes' tables: universe u of a prediction uses these ratios."
    )
    return table(
        lib,
        "Flux universes",
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
        ("Observed events", ds["data_counts"].values),
        ("Expected signal", ds["signal_reco"].values[0]),
        ("Expected background", ds["background_reco"].values[0]),
    ):
        variables.append(variable(lib, label, values.tolist(), about, units="events"))
    data = json.loads(ds.attrs.get("data", "{}"))
    origin = "read from a file" if data.get("kind") == "file" else "fake data (farm recipe)"
    description = (
        f"Selected events per reconstructed bin: observed ({origin}), and the expected signal "
        "and background of the central value."
    )
    return table(lib, "Event counts", description, variables, about)


def _chi2_table(lib: ModuleType, ds: xr.Dataset, about: About) -> Any:
    models = [str(m) for m in ds["model"].values]
    variables = [variable(lib, "Model", models, about, independent=True)]
    for convention in ("real", "nominal"):
        for kind, label in (("joint", "with"), ("uncorrelated", "without")):
            variables.append(
                variable(
                    lib,
                    f"chi2 {convention}, {label} correlation",
                    ds[f"chi2_{convention}_{kind}"].values.tolist(),
                    about,
                    qualifiers=[("dof", int(ds["chi2_dof"].values))],
                )
            )
            variables.append(
                variable(
                    lib,
                    f"p-value {convention}, {label} correlation",
                    ds[f"pvalue_{convention}_{kind}"].values.tolist(),
                    about,
                )
            )
    description = (
        "Chi-square of each attached model against the measurement, "
        "chi2 = D^T (V_mm + V_pp - V_mp - V_pm + V_stat)^-1 D with the measured-predicted "
        "correlation from the shared universes, and without it (V_mp = 0); "
        f"{int(ds['chi2_dof'].values)} degrees of freedom."
    )
    return table(lib, "Model chi-square", description, variables, about, phrases=["Chi-square"])


def input_tables(lib: ModuleType, ds: xr.Dataset, about: About) -> list[Any]:
    """Flux per flavour, flux universes, event counts and the models' chi-square."""
    return [
        *_flux_tables(lib, ds, about),
        _flux_universe_table(lib, ds, about),
        _counts_table(lib, ds, about),
        _chi2_table(lib, ds, about),
    ]
