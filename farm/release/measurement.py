"""The tables of one flux convention and quantity: the measurement, its covariances, its universes,
the response it was unfolded with, and Wiener-SVD's additional smearing A_C.

Per convention (real- and nominal-flux-averaged; L. Koch and S. Dolan, arXiv:2009.00552) the
release carries the cross section as physicists quote it (``cross_section-<c>``: ⟨σ⟩_j in E_ν
bins, dσ/dx in kinematic bins, the flux-averaged total for one bin; farm.analysis.quoted) and,
for truth binned in E_ν, the seed's flux share S_j = ∫_j F σ dE / Φ as well (``flux_share-<c>``),
whose chi-squares are the ones ``farm run`` stores. Each measurement names its covariance
(``errors``), its universes, its probe fluxes and, in the real-flux convention, the flux of every
universe, so that a prediction made in every universe gets the joint measured–predicted
covariance.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import xarray as xr

from farm.release.blocks import (
    CONVENTION_TEXT,
    About,
    axis,
    in_total_groups,
    index_axis,
    table,
    table_names,
    truth_axis,
    variable,
)

__all__ = ["Quantity", "measurement_tables", "quantity"]

MAX_AC_UNIVERSE_VALUES = 2_000_000
"""Above this many numbers, the A_C of every universe is not written (only the central one)."""


@dataclass(frozen=True, kw_only=True, eq=False)
class Quantity:
    """What one measurement table holds, in every universe, with its covariances."""

    convention: str
    kind: str
    """``sigma`` (⟨σ⟩ / dσ/dx / total) or ``share`` (S_j)."""
    universes: np.ndarray
    """(U, J)."""
    stat: np.ndarray
    syst: np.ndarray
    total: np.ndarray
    groups: np.ndarray
    """(G, J, J)."""
    models: np.ndarray
    """(M, U, J) with A_C applied."""
    factor: np.ndarray
    """(U, J) this quantity over S (1 for S)."""


def quantity(ds: xr.Dataset, convention: str, kind: str) -> Quantity:
    c = convention
    if kind == "share":
        names = (
            f"xsec_{c}",
            f"cov_stat_{c}",
            f"cov_{c}",
            f"cov_total_{c}",
            f"cov_group_{c}",
            f"model_pred_{c}",
        )
        factor = np.ones(ds[f"xsec_{c}"].shape)
    else:
        names = (
            f"sigma_{c}",
            f"cov_stat_sigma_{c}",
            f"cov_sigma_{c}",
            f"cov_total_sigma_{c}",
            f"cov_group_sigma_{c}",
            f"model_sigma_{c}",
        )
        factor = np.asarray(ds[f"sigma_factor_{c}"].values, dtype=np.float64)
    values = [np.asarray(ds[n].values, dtype=np.float64) for n in names]
    return Quantity(
        convention=c,
        kind=kind,
        universes=values[0],
        stat=values[1],
        syst=values[2],
        total=values[3],
        groups=values[4],
        models=values[5],
        factor=factor,
    )


def _units(about: About, kind: str) -> tuple[str, str, str]:
    """(header units, cross_section_units, measurement_type)."""
    per = f"per {about.target_text}"
    if kind == "share":
        return f"cm^2 {per}", "cm2|PerTarget", "flux_averaged_differential_cross_section"
    if about.axis_kind == "kinematic":
        _, x_units = axis(about.truth)
        return (
            f"cm^2/{x_units} {per}",
            "cm2|PerTarget|per_bin_width",
            "flux_averaged_differential_cross_section",
        )
    if about.axis_kind == "enu":
        return f"cm^2 {per}", "cm2|PerTarget", "total_cross_section"
    return f"cm^2 {per}", "cm2|PerTarget", "flux_averaged_differential_cross_section"


def _measured(
    lib: ModuleType, ds: xr.Dataset, about: About, q: Quantity, refs: dict[str, str]
) -> Any:
    names = table_names(q.convention, q.kind)
    sigma = np.sqrt(np.clip(np.diag(q.total), 0, None))
    groups = [str(g) for g in ds["group"].values]
    errors = [("stat", np.sqrt(np.clip(np.diag(q.stat), 0, None)))]
    errors += [
        (f"sys,{g}", np.sqrt(np.clip(np.diag(q.groups[groups.index(g)]), 0, None)))
        for g in in_total_groups(ds)
    ]
    header, units, kind = _units(about, q.kind)
    axis_name = truth_axis(lib, ds, about).name
    wiener = ds.attrs.get("extraction_method") == "wiener-svd"
    qualifiers = [
        ("variable_type", "cross_section_measurement"),
        ("measurement_type", kind),
        ("selectfunc", about.names.reference(about.names.select)),
        (f"{axis_name}:projectfunc", about.names.reference(about.names.project)),
        ("cross_section_units", units),
        ("target", about.target_code),
        ("probe_flux", refs["probe_flux"]),
        ("errors", f"{names['cov']}:total"),
        ("statistic_at", "chi2"),
        ("universes", names["universes"]),
    ]
    if q.convention == "real":
        qualifiers.append(("flux_universes", refs["flux_universes"]))
    if wiener:
        qualifiers.append(("smearing", f"{names['ac']}:A_C"))
    qualifiers += [
        ("convention", CONVENTION_TEXT[q.convention]),
        ("extraction", str(ds.attrs.get("extraction_method", ""))),
        ("targets T", float(ds.attrs.get("n_targets", np.nan))),
    ]
    p = about.precision
    return variable(
        lib,
        "cross_section" if q.kind == "sigma" else "flux_share",
        p.values(q.universes[0], sigma).tolist(),
        about,
        units=header,
        qualifiers=qualifiers,
        errors=[(label, p.values(e, sigma)) for label, e in errors],
    )


def _xsec_table(
    lib: ModuleType, ds: xr.Dataset, about: About, q: Quantity, refs: dict[str, str]
) -> Any:
    from farm.analysis.quoted import QUANTITY_TEXT

    names = table_names(q.convention, q.kind)
    sigma = np.sqrt(np.clip(np.diag(q.total), 0, None))
    header, _, _ = _units(about, q.kind)
    predictions = []
    n = about.n_truth
    for m, model in enumerate(str(x) for x in ds["model"].values):
        spread = _prediction_spread(ds, q, m)
        predictions.append(
            variable(
                lib,
                f"prediction {model}",
                about.precision.values(q.models[m, 0], sigma).tolist(),
                about,
                units=header,
                qualifiers=[
                    ("variable_type", "cross_section_prediction"),
                    (
                        "for_measurement",
                        f"{names['xsec']}:{'cross_section' if q.kind == 'sigma' else 'flux_share'}",
                    ),
                    ("label", model),
                    ("pre_smeared", "true"),
                ],
                errors=[("sys,shared universes", about.precision.values(spread, sigma))],
            )
        )
    del n
    what = (
        QUANTITY_TEXT[about.axis_kind]
        if q.kind == "sigma"
        else "the seed's flux share S_j = int_j F sigma dE / Phi (bin j's share of the flux-averaged total)"
    )
    description = (
        f"Measured {what}, per {about.target_text}; {CONVENTION_TEXT[q.convention]}. Errors: "
        "'stat' from the data statistics, 'sys,<group>' from the systematic universes of each "
        f"group; covariances in '{names['cov']}', every universe in '{names['universes']}'. "
        "Predictions: each model attached to the run (A_C applied), with the uncertainty it "
        "shares with the measurement through the universes."
    )
    return table(
        lib,
        names["xsec"],
        description,
        [truth_axis(lib, ds, about), _measured(lib, ds, about, q, refs), *predictions],
        about,
        observables=["SIG"],
    )


def _prediction_spread(ds: xr.Dataset, q: Quantity, m: int) -> np.ndarray:
    from farm.analysis.quoted import universe_set_of

    universes = universe_set_of(ds)
    center = str(ds.attrs.get("covariance_center", "cv"))
    normalization = str(ds.attrs.get("covariance_normalization", "n"))
    from farm.analysis.covariances import covariances

    cov = covariances(q.models[m], universes, center=center, normalization=normalization)
    return np.sqrt(np.clip(np.diag(cov.total), 0, None))


def _cov_table(lib: ModuleType, ds: xr.Dataset, about: About, q: Quantity) -> Any:
    n = about.n_truth
    i, j = np.divmod(np.arange(n * n), n)
    groups = [str(g) for g in ds["group"].values]
    in_total = in_total_groups(ds)
    pieces = [
        ("total", q.total, "statistical plus systematic"),
        ("stat", q.stat, "data statistics"),
        ("syst", q.syst, "sum over the systematics"),
    ]
    pieces += [
        (
            f"group {g}",
            q.groups[k],
            "in the total" if g in in_total else "not in the total (joint set)",
        )
        for k, g in enumerate(groups)
    ]
    scale = np.sqrt(np.outer(np.diag(q.total), np.diag(q.total)))
    header, _, _ = _units(about, q.kind)
    variables = [
        index_axis(lib, "bin i", i.tolist(), about),
        index_axis(lib, "bin j", j.tolist(), about),
    ]
    for label, matrix, note in pieces:
        variables.append(
            variable(
                lib,
                label,
                about.precision.matrix(np.asarray(matrix), scale).ravel().tolist(),
                about,
                units=f"({header})^2",
                qualifiers=[
                    ("variable_type", "error_table"),
                    ("error_type", "covariance"),
                    ("part", note),
                ],
            )
        )
    names = table_names(q.convention, q.kind)
    description = (
        f"Covariance of '{names['xsec']}' between bins i and j (0-based, the rows of the "
        "measurement in order). Systematic covariances are taken over the universes about the "
        f"{'central value' if ds.attrs.get('covariance_center') == 'cv' else 'universe mean'}, "
        f"normalised by 1/{'N' if ds.attrs.get('covariance_normalization') == 'n' else '(N-1)'} "
        "per systematic and summed."
    )
    return table(lib, names["cov"], description, variables, about, phrases=["Covariance matrix"])


def _universe_table(lib: ModuleType, ds: xr.Dataset, about: About, q: Quantity) -> Any:
    sigma = np.sqrt(np.clip(np.diag(q.total), 0, None))
    values = about.precision.matrix(q.universes, sigma[None, :])
    header, _, _ = _units(about, q.kind)
    systematics = [str(s) for s in ds["universe_systematic"].values]
    groups = [str(s) for s in ds["universe_group"].values]
    kinds = dict(
        zip(
            (str(s) for s in ds["systematic"].values),
            (str(k) for k in ds["systematic_kind"].values),
            strict=True,
        )
    )
    variables = [truth_axis(lib, ds, about)]
    for u in range(values.shape[0]):
        variables.append(
            variable(
                lib,
                f"universe {u}",
                values[u].tolist(),
                about,
                units=header,
                qualifiers=[
                    ("variable_type", "error_table"),
                    ("error_type", "universes"),
                    ("universe", u),
                    ("systematic", systematics[u]),
                    ("group", groups[u]),
                    ("in_total", "no" if kinds.get(systematics[u]) == "all" else "yes"),
                    ("covariance_center", str(ds.attrs.get("covariance_center", "cv"))),
                    (
                        "covariance_normalization",
                        str(ds.attrs.get("covariance_normalization", "n")),
                    ),
                ],
            )
        )
    names = table_names(q.convention, q.kind)
    description = (
        f"'{names['xsec']}' extracted in every universe, one variable per universe (universe 0 "
        "is the central value; the others are throws of the systematic they name). The "
        "systematic covariance is, per systematic in the total, the covariance over its "
        "universes about universe 0 (1/N), summed. In the real-flux convention the flux of "
        "universe u is in the 'flux_universes' tables under the same universe number."
    )
    return table(
        lib, names["universes"], description, variables, about, phrases=["Systematic universes"]
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
    scale = float(np.abs(matrix).max()) or 1.0
    response = variable(
        lib,
        "response",
        about.precision.matrix(matrix, scale).ravel().tolist(),
        about,
        qualifiers=[
            ("variable_type", "smearing_table"),
            ("smearing_type", "smearing_matrix"),
            ("matrix", what),
        ],
    )
    description = (
        f"Detector response of the central value used to unfold the {convention}-flux convention "
        f"({what}; rows: reconstructed bin i, then true bin j). For reference: the measurement "
        "is in truth space, so a prediction needs no response"
        + (" (only A_C)." if ds.attrs.get("extraction_method") == "wiener-svd" else ".")
    )
    return table(
        lib,
        table_names(convention)["smearing"],
        description,
        [reco, truth_axis(lib, ds, about, repeat=n_reco), response],
        about,
    )


def _ac_table(lib: ModuleType, ds: xr.Dataset, about: About, q: Quantity) -> Any:
    n = about.n_truth
    i, j = np.divmod(np.arange(n * n), n)
    a = np.asarray(ds[f"additional_smearing_universes_{q.convention}"].values, dtype=np.float64)
    # in σ = D S: A'_u = D_u A_u D_u⁻¹, so that A' σ_true = D A S_true
    a = q.factor[:, :, None] * a / q.factor[:, None, :]
    every = a.shape[0] * n * n <= MAX_AC_UNIVERSE_VALUES
    variables = [
        index_axis(lib, "bin i", i.tolist(), about),
        index_axis(lib, "bin j", j.tolist(), about),
    ]
    for u in range(a.shape[0] if every else 1):
        qualifiers = [("variable_type", "smearing_table"), ("smearing_type", "smearing_matrix")]
        if u:
            qualifiers.append(("universe", u))
        variables.append(
            variable(
                lib,
                "A_C" if u == 0 else f"A_C universe {u}",
                about.precision.matrix(a[u], 1.0).ravel().tolist(),
                about,
                qualifiers=qualifiers,
            )
        )
    names = table_names(q.convention, q.kind)
    description = (
        "Wiener-SVD additional smearing A_C: apply it to any truth-space prediction, "
        f"p'_i = sum_j A_C[i, j] p_j, before comparing with '{names['xsec']}' (bin i of the "
        "measurement is the first independent variable, bin j of the prediction the second). "
        + (
            "'A_C universe u' is the one of universe u (the prediction in universe u uses it)."
            if every
            else "Only the central A_C is written (the universes' would exceed the size limit)."
        )
    )
    return table(lib, names["ac"], description, variables, about)


def measurement_tables(
    lib: ModuleType, ds: xr.Dataset, about: About, convention: str, refs: dict[str, str]
) -> list[Any]:
    """The tables of ``convention`` (``real`` or ``nominal``), in release order."""
    kinds = ["sigma", "share"] if about.axis_kind == "enu" else ["sigma"]
    tables = []
    wiener = ds.attrs.get("extraction_method") == "wiener-svd"
    for kind in kinds:
        q = quantity(ds, convention, kind)
        tables += [
            _xsec_table(lib, ds, about, q, refs),
            _cov_table(lib, ds, about, q),
            _universe_table(lib, ds, about, q),
        ]
        if wiener:
            tables.append(_ac_table(lib, ds, about, q))
    tables.append(_smearing_table(lib, ds, about, convention))
    return tables
