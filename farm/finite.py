"""No NaN reaches a published result: the publish step, the report and the HEPData export refuse
a dataset whose numbers are not finite.

Every floating variable of a result must be finite, except these, whose non-finite values mean
something:

- ``truth_edges``: ±inf bound the one bin of ``truth = "total"`` (NaN is still refused);
- ``flux_bin_lo_mev``, ``flux_bin_hi_mev``: NaN for the last, untouched flux bin;
- ``condition_number_*``: +inf for a singular covariance (``positive_definite_*`` says so);
- the Monte-Carlo error diagnostics (``*_mc_error``, ``*_mc_bias``, ``cov_mc_error_*``,
  ``mc_rel_error_*``): NaN or inf when too few universes were thrown to estimate them.

A NaN cross section or covariance means a bad input got past the checks before the run (a
value in the store, a binning with empty bins); refusing to publish it keeps the current version
current and says which variable and where.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

__all__ = ["EXEMPT", "non_finite", "require_finite"]

EXEMPT = {
    "truth_edges": "inf",
    "flux_bin_lo_mev": "nan",
    "flux_bin_hi_mev": "nan",
}
"""Variables that may hold ±inf (``"inf"``) or NaN (``"nan"``); see the module docstring."""
_DIAGNOSTIC_PREFIXES = ("condition_number_", "cov_mc_error_", "mc_rel_error_")
_DIAGNOSTIC_SUFFIXES = ("_mc_error", "_mc_bias")


def _exempt(name: str) -> str | None:
    if name in EXEMPT:
        return EXEMPT[name]
    if name.startswith(_DIAGNOSTIC_PREFIXES) or name.endswith(_DIAGNOSTIC_SUFFIXES):
        return "any"
    return None


def non_finite(ds: xr.Dataset) -> list[str]:
    """One line per variable holding values it may not: how many, and where the first is."""
    problems = []
    for name in sorted(map(str, ds.variables)):
        var = ds[name]
        if var.dtype.kind not in "fc":
            continue
        allowed = _exempt(name)
        if allowed == "any":
            continue
        values = np.asarray(var.values)
        bad = np.isnan(values) if allowed == "inf" else ~np.isfinite(values)
        if allowed == "nan":
            bad = np.isinf(values)
        if not bad.any():
            continue
        first = np.unravel_index(int(np.argmax(bad)), values.shape)
        where = ", ".join(f"{d}={i}" for d, i in zip(var.dims, first, strict=True))
        kind = "NaN" if np.isnan(values[first]) else "inf"
        at = f" (first at {where})" if where else ""
        problems.append(f"{name} holds {int(bad.sum())} non-finite value(s), {kind}{at}")
    return problems


def require_finite(ds: xr.Dataset, *, source: str | os.PathLike[str], action: str) -> None:
    """Raise :class:`ValueError` if ``ds`` holds non-finite values where it may not.

    ``source`` names the result (or the output being published); ``action`` what is refused
    (``"published"``, ``"exported"``, ``"reported"``).
    """
    problems = non_finite(ds)
    if not problems:
        return
    shown = "; ".join(problems[:6]) + (
        f"; and {len(problems) - 6} more" if len(problems) > 6 else ""
    )
    msg = (
        f"{os.fspath(source)}: the result holds values that are not finite, so it is not "
        f"{action}: {shown}. A bad input got past the checks (a value in the event store, a "
        "binning with empty bins): run `farm inspect --verify STORE` and check the binning, "
        "then run again"
    )
    raise ValueError(msg)
