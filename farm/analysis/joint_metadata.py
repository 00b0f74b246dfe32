"""Metadata of a multi-sample measurement's dataset (farm.analysis.joint): its own variables, and
the single-sample registry (farm.analysis.metadata) for the names it shares."""

from __future__ import annotations

import xarray as xr

from farm.analysis.metadata import annotate, lookup, units_context
from farm.analysis.variables import CONVENTIONS, Meta, var_meta

__all__ = ["JOINT_VARIABLES", "describe_joint"]


JOINT_VARIABLES: dict[str, Meta] = {
    "sample": var_meta(
        "sample", "text", "the measurement's samples, in the order of their truth bins"
    ),
    "sample_first_bin": var_meta(
        "first truth bin of the sample", "1", "index of the sample's first bin in truth_bin"
    ),
    "sample_bins": var_meta("truth bins of the sample", "1", "how many truth bins the sample has"),
    "bin_sample": var_meta(
        "sample of the truth bin", "text", "which sample each truth bin belongs to"
    ),
    "bin_in_sample": var_meta(
        "truth bin within its sample", "1", "the bin's index in its sample's own result"
    ),
    "systematic_shared": var_meta(
        "systematic shared",
        "1",
        "thrown once for every sample that declares it (same name, same throws)",
    ),
    "systematic_samples": var_meta(
        "samples of the systematic", "text", "comma-separated samples that declare it"
    ),
    "cov_cross_sample_{c}": var_meta(
        "cross-sample covariance ({c}-flux convention)",
        "{share2}",
        "the off-diagonal sample blocks of cov_{c}: what the shared systematics correlate",
    ),
    "corr_systematics_{c}": var_meta(
        "systematic correlation ({c}-flux convention)",
        "1",
        "correlation matrix of cov_{c} (systematics only, statistics left out)",
    ),
    "chi2_{c}_per_sample": var_meta(
        "chi-square per sample ({c}-flux convention)",
        "1",
        "each sample's own joint measured-predicted chi-square of the model",
    ),
    "chi2_{c}_separate_sum": var_meta(
        "sum of the samples' chi-squares ({c}-flux convention)",
        "1",
        "what the combined chi-square would be without the cross-sample covariance",
    ),
}
"""The variables only a multi-sample measurement's dataset has (farm.analysis.joint)."""


def describe_joint(ds: xr.Dataset, samples: list[xr.Dataset]) -> xr.Dataset:
    """``long_name``, ``units`` and ``description`` of every variable and coordinate of a
    multi-sample dataset, in place: the single-sample registry where the name is shared, units
    from the samples when they agree (else "per sample", pointing at ``samples/NAME``).

    Raises
    ------
    KeyError
        If the dataset holds a variable neither registry describes.
    """
    contexts = [units_context(s) for s in samples]
    context = {
        key: (
            contexts[0][key]
            if all(c[key] == contexts[0][key] for c in contexts)
            else "per sample (see samples/NAME)"
        )
        for key in contexts[0]
    }
    joint = {}
    for key, meta in JOINT_VARIABLES.items():
        for c in CONVENTIONS if "{c}" in key else ("",):
            joint[key.format(c=c)] = (meta, {"c": c})
    unknown = [str(n) for n in ds.variables if str(n) not in joint and lookup(str(n)) is None]
    if unknown:
        msg = (
            f"no metadata for {', '.join(unknown)}: add them to "
            "farm.analysis.joint_metadata.JOINT_VARIABLES"
        )
        raise KeyError(msg)
    for name in ds.variables:
        found = joint.get(str(name)) or lookup(str(name))
        assert found is not None
        registered, values = found
        annotate(ds[name].attrs, registered, values | context)
    return ds
