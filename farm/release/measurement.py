"""The tables of one flux convention: measured cross section, covariances, universes, smearing.

Per convention (real- and nominal-flux-averaged, docs/physics.md §1): the measured cross section per
truth bin with its statistical and per-group systematic errors and the central predictions of the
attached models; the total, statistical, systematic and per-group covariances; the cross section
extracted in every universe; the detector smearing, and Wiener-SVD's additional smearing A_C.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import xarray as xr

from farm.release.blocks import (
    CONVENTION_TEXT,
    About,
    axis,
    bin_label,
    in_total_groups,
    index_axis,
    table,
    table_names,
    truth_axis,
    universe_axes,
    variable,
)

__all__ = ["measurement_tables"]


def _xsec_table(lib: ModuleType, ds: xr.Dataset, about: About, convention: str) -> Any:
    names = table_names(convention)
    groups = [str(g) for g in ds["group"].values]
    group_cov = ds[f"cov_group_{convention}"].values
    errors = [("stat", np.sqrt(np.diag(ds[f"cov_stat_{convention}"].values)))]
    errors += [
        (f"sys,{g}", np.sqrt(np.diag(group_cov[groups.index(g)]))) for g in in_total_groups(ds)
    ]
    wiener = ds.attrs.get("extraction_method") == "wiener-svd"
    measured = variable(
        lib,
        "SIG",
        ds[f"xsec_{convention}"].values[0].tolist(),
        about,
        units="cm^2 per target",
        qualifiers=[
            ("convention", CONVENTION_TEXT[convention]),
            ("variable_type", "cross_section_measurement"),
            (
                "measurement_type",
                "flux_averaged_total_cross_section"
                if about.truth == "total"
                else "flux_averaged_differential_cross_section",
            ),
            ("cross_section_units", "cm2|PerTarget"),
            ("target", about.target),
            ("probe_flux", ",".join(f"Flux {f}" for f in about.signal_flavors)),
            ("errors", names["cov"]),
            ("smearing", names["ac"] if wiener else "none (unfolded to truth)"),
            ("extraction", str(ds.attrs.get("extraction_method", ""))),
            ("targets T", float(ds.attrs.get("n_targets", np.nan))),
            ("integrated flux Phi (nu/cm^2)", float(ds["integrated_flux"].values[0])),
        ],
        errors=errors,
    )
    predictions = []
    joint = ds[f"joint_cov_{convention}"].values
    n = about.n_truth
    for m, model in enumerate(str(x) for x in ds["model"].values):
        predictions.append(
            variable(
                lib,
                f"Prediction {model}",
                ds[f"model_pred_{convention}"].values[m, 0].tolist(),
                about,
                units="cm^2 per target",
                qualifiers=[
                    ("variable_type", "cross_section_prediction"),
                    ("convention", convention),
                ],
                errors=[("sys,shared universes", np.sqrt(np.diag(joint[m, n:, n:])))],
            )
        )
    description = (
        f"Measured cross section per target, {CONVENTION_TEXT[convention]}. Errors: 'stat' from "
        "the data statistics, 'sys,<group>' from the systematic universes of each group (their "
        f"covariances are in '{names['cov']}', every universe in '{names['universes']}'). "
        "Predictions: the central value of each model attached to the run, with the uncertainty "
        "it shares with the measurement through the universes."
    )
    return table(
        lib,
        names["xsec"],
        description,
        [truth_axis(lib, ds, about), measured, *predictions],
        about,
        observables=["SIG"],
    )


def _cov_table(lib: ModuleType, ds: xr.Dataset, about: About, convention: str) -> Any:
    n = about.n_truth
    i, j = np.divmod(np.arange(n * n), n)
    groups = [str(g) for g in ds["group"].values]
    in_total = in_total_groups(ds)
    pieces = [
        ("total", ds[f"cov_total_{convention}"].values, "statistical plus systematic"),
        ("stat", ds[f"cov_stat_{convention}"].values, "data statistics"),
        ("syst", ds[f"cov_{convention}"].values, "sum over the systematics"),
    ]
    pieces += [
        (
            f"group {g}",
            ds[f"cov_group_{convention}"].values[k],
            "in the total" if g in in_total else "not in the total (joint set)",
        )
        for k, g in enumerate(groups)
    ]
    variables = [
        index_axis(lib, "Truth bin i", i.tolist(), about),
        index_axis(lib, "Truth bin j", j.tolist(), about),
    ]
    for label, matrix, note in pieces:
        variables.append(
            variable(
                lib,
                f"Covariance {label}",
                np.asarray(matrix).ravel().tolist(),
                about,
                units="cm^4",
                qualifiers=[
                    ("variable_type", "error_table"),
                    ("error_type", "covariance"),
                    ("part", note),
                ],
            )
        )
    description = (
        f"Covariance of the measured cross section ({CONVENTION_TEXT[convention]}) between truth "
        f"bins i and j (0-based, the rows of '{table_names(convention)['xsec']}'). Systematic "
        f"covariances are taken over the universes about the "
        f"{'central value' if ds.attrs.get('covariance_center') == 'cv' else 'universe mean'}, "
        f"normalised by 1/{'N' if ds.attrs.get('covariance_normalization') == 'n' else '(N-1)'}."
    )
    return table(
        lib,
        table_names(convention)["cov"],
        description,
        variables,
        about,
        phrases=["Covariance matrix"],
    )


def _universe_table(lib: ModuleType, ds: xr.Dataset, about: About, convention: str) -> Any:
    values = ds[f"xsec_{convention}"].values
    variables = universe_axes(lib, ds, about)
    for j in range(about.n_truth):
        variables.append(
            variable(
                lib,
                f"SIG bin {j}",
                values[:, j].tolist(),
                about,
                units="cm^2 per target",
                qualifiers=[("truth bin", bin_label(ds, about, j)), ("convention", convention)],
            )
        )
    description = (
        f"The cross section extracted in every universe ({CONVENTION_TEXT[convention]}). "
        "Universe 0 is the central value; every other row is one throw of the named systematic. "
        "The flux of each universe is in 'Flux universes' (same rows), so a prediction computed "
        "in every universe gives the joint measured-predicted covariance."
    )
    return table(
        lib,
        table_names(convention)["universes"],
        description,
        variables,
        about,
        observables=["SIG"],
        phrases=["Systematic universes"],
    )


def _smearing_table(lib: ModuleType, ds: xr.Dataset, about: About, convention: str) -> Any:
    matrix = ds["response" if convention == "real" else "smearing_nominal"].values[0]
    n_reco = matrix.shape[0]
    reco_edges = ds["reco_edges"].values
    name, units = axis(str(ds.attrs.get("observable", "reco")))
    reco_bins = [(float(reco_edges[r]), float(reco_edges[r + 1])) for r in range(n_reco)]
    reco = variable(
        lib,
        name,
        [b for b in reco_bins for _ in range(about.n_truth)],
        about,
        units=units,
        independent=True,
        binned=True,
    )
    what = (
        "R_ij = P(reconstructed and selected in i | true bin j) at the nominal flux"
        if convention == "real"
        else "M_ij = (events reconstructed in i from truth j) / (events in truth j at the nominal flux)"
    )
    variables = [
        reco,
        truth_axis(lib, ds, about, repeat=n_reco),
        variable(lib, "Smearing", matrix.ravel().tolist(), about, qualifiers=[("matrix", what)]),
    ]
    description = (
        f"Detector smearing of the central value used to unfold the {convention}-flux "
        f"convention: {what}. Shown for reference: the measurement is in truth space, so a "
        "prediction needs no smearing"
        + (" other than A_C." if ds.attrs.get("extraction_method") == "wiener-svd" else ".")
    )
    return table(lib, table_names(convention)["smearing"], description, variables, about)


def _ac_table(lib: ModuleType, ds: xr.Dataset, about: About, convention: str) -> Any:
    n = about.n_truth
    i, j = np.divmod(np.arange(n * n), n)
    matrix = ds[f"additional_smearing_{convention}"].values
    variables = [
        index_axis(lib, "Truth bin i", i.tolist(), about),
        index_axis(lib, "Truth bin j", j.tolist(), about),
        variable(
            lib,
            "A_C",
            matrix.ravel().tolist(),
            about,
            qualifiers=[("variable_type", "smearing_table"), ("smearing_type", "smearing_matrix")],
        ),
    ]
    description = (
        "Wiener-SVD additional smearing A_C of the central value: apply it to any truth-space "
        f"prediction, p -> A_C p, before comparing with '{table_names(convention)['xsec']}'."
    )
    return table(lib, table_names(convention)["ac"], description, variables, about)


def measurement_tables(lib: ModuleType, ds: xr.Dataset, about: About, convention: str) -> list[Any]:
    """The tables of ``convention`` (``real`` or ``nominal``), in release order."""
    tables = [
        _xsec_table(lib, ds, about, convention),
        _cov_table(lib, ds, about, convention),
        _universe_table(lib, ds, about, convention),
        _smearing_table(lib, ds, about, convention),
    ]
    if ds.attrs.get("extraction_method") == "wiener-svd":
        tables.append(_ac_table(lib, ds, about, convention))
    return tables
