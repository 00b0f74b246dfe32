"""Metadata of the dataset ``farm fit`` writes (farm.fit.dataset): ``long_name``, ``units`` and
``description`` of every variable, as farm.analysis.metadata gives a run's result."""

from __future__ import annotations

import xarray as xr

from farm.analysis.metadata import annotate
from farm.analysis.variables import Meta, var_meta

__all__ = ["FIT_VARIABLES", "describe_fit"]


FIT_VARIABLES: dict[str, Meta] = {
    "parameter": var_meta("fit parameter", "text", "the free parameters of the fit"),
    "cl": var_meta("confidence level", "1", "the confidence levels of the intervals"),
    "best_fit": var_meta(
        "best fit", "parameter's", "the parameters at the minimum of chi2(theta) (MINUIT)"
    ),
    "hesse_error": var_meta(
        "Hesse error", "parameter's", "parabolic error of each parameter at the minimum (dchi2 = 1)"
    ),
    "fit_covariance": var_meta(
        "fit covariance", "parameter's squared", "Hesse covariance of the parameters"
    ),
    "at_limit": var_meta(
        "at a limit", "1", "the best fit sits at the edge of the parameter's range"
    ),
    "chi2_min": var_meta(
        "minimum chi-square", "1", "chi2(theta) at the best fit (chi2_definition)"
    ),
    "ndof": var_meta("degrees of freedom", "1", "bins minus free parameters"),
    "pvalue_gof": var_meta(
        "goodness-of-fit p-value", "1", "P(chi2_ndof >= chi2_min); NaN with 0 dof"
    ),
    "fit_valid": var_meta("fit valid", "1", "MINUIT reports a valid minimum"),
    "wilks_lower": var_meta(
        "Wilks lower limit", "parameter's", "Minos lower limit at each confidence level"
    ),
    "wilks_upper": var_meta(
        "Wilks upper limit", "parameter's", "Minos upper limit at each confidence level"
    ),
    "range_lower": var_meta("range lower edge", "parameter's", "lowest value the fit may take"),
    "range_upper": var_meta("range upper edge", "parameter's", "highest value the fit may take"),
    "dchi2_grid": var_meta(
        "delta chi-square on the grid",
        "1",
        "chi2(theta) - chi2_min on the two-parameter grid",
    ),
    "fc_lower": var_meta(
        "Feldman-Cousins lower limit", "parameter's", "at each confidence level (NaN: no toys)"
    ),
    "fc_upper": var_meta(
        "Feldman-Cousins upper limit", "parameter's", "at each confidence level (NaN: no toys)"
    ),
    "fc_connected": var_meta(
        "Feldman-Cousins interval connected",
        "1",
        "the accepted points form one interval",
    ),
    "grid_{p}": var_meta(
        "grid of {p}", "{p}'s", "evenly spaced values of {p} where chi2 is tabulated"
    ),
    "profile_{p}": var_meta(
        "profile of {p}", "1", "dchi2 along the grid of {p}, the other parameters minimised"
    ),
    "fc_theta_{p}": var_meta("Feldman-Cousins points of {p}", "{p}'s", "the points tested"),
    "fc_generating_{p}": var_meta(
        "toy-generating parameters ({p})",
        "parameter's",
        "where the toys of each point were thrown (the others at their conditional best fit)",
    ),
    "fc_data_{p}": var_meta("data's dchi2 ({p})", "1", "the data's dchi2 at each point"),
    "fc_crit_{p}": var_meta(
        "critical dchi2 ({p})", "1", "cl-quantile of the toys' dchi2 at each point"
    ),
    "fc_crit_lower_{p}": var_meta(
        "critical dchi2, lower MC band ({p})", "1", "order statistic -1 binomial sigma"
    ),
    "fc_crit_upper_{p}": var_meta(
        "critical dchi2, upper MC band ({p})", "1", "order statistic +1 binomial sigma"
    ),
    "fc_pvalue_{p}": var_meta(
        "Feldman-Cousins p-value ({p})", "1", "share of toys with dchi2 >= the data's"
    ),
    "fc_toys_{p}": var_meta("toys' dchi2 ({p})", "1", "every toy's dchi2 at each point"),
}
"""The dataset ``farm fit`` writes (farm.fit.dataset): ``{p}`` is a parameter's name; a
parameter's own units (``sin2w``: 1, ``rn``: fm, …) are the model's, written ``parameter's``."""


def describe_fit(ds: xr.Dataset, names: tuple[str, ...]) -> xr.Dataset:
    """``long_name``, ``units`` and ``description`` of every variable of a fit dataset whose
    parameters are ``names``, in place.

    Raises
    ------
    KeyError
        If the dataset holds a variable :data:`FIT_VARIABLES` does not describe.
    """
    concrete = {key: (meta, {}) for key, meta in FIT_VARIABLES.items() if "{p}" not in key}
    for key, meta in FIT_VARIABLES.items():
        if "{p}" in key:
            concrete |= {key.replace("{p}", name): (meta, {"p": name}) for name in names}
    unknown = [str(name) for name in ds.variables if name not in concrete]
    if unknown:
        msg = f"no metadata for {', '.join(unknown)}: add them to farm.fit.metadata.FIT_VARIABLES"
        raise KeyError(msg)
    for name in ds.variables:
        annotate(ds[name].attrs, *concrete[str(name)])
    return ds
