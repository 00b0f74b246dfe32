"""Were enough universes thrown? Per-systematic verdicts, the run summary, and the next throws.

A multisim systematic has converged when the relative Monte-Carlo error of its covariance
(:mod:`farm.analysis.mc_error`, both flux conventions) is at most ``[analysis]
universe_precision`` and its rank is not limited by the number of universes. ``farm run`` prints
what is short; ``farm run --until-converged`` (:func:`farm.runner.run_until_converged`) throws
more universes of the systematics that are short, with :func:`next_throws`, until all converge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from farm.analysis.mc_error import universes_needed
from farm.systematics.universes import ALL_KNOBS, UniverseSet

if TYPE_CHECKING:
    from farm.analysis.covariances import CovarianceSet

__all__ = [
    "GROWTH",
    "next_throws",
    "summary_lines",
    "summary_record",
    "universe_vars",
    "universes_warning",
]

GROWTH = 2
"""``--until-converged`` multiplies a short systematic's universes by at least this much."""


def universe_vars(
    universes: UniverseSet,
    covs: Sequence[CovarianceSet],
    precision: float,
    center: str,
) -> dict[str, Any]:
    """``n_universes``, ``universes_needed`` and ``universes_converged`` per systematic.

    Needed: ``N (rel / precision)²`` for the worse convention, at least the Gaussian minimum
    ``2 / precision²``, and at least one universe per truth bin (two about the mean) when the
    rank is limited by the universes; an exact unisim needs what it has.
    """
    n_bin = covs[0].total.shape[0]
    counts = np.array([universes.universes_of(name).size for name in universes.names], np.int64)
    worst = np.max([c.mc_rel_error for c in covs], axis=0)
    limited = np.any([c.rank_limited for c in covs], axis=0)
    exact = covs[0].exact
    needed = np.array(
        [
            n
            if fixed
            else max(
                universes_needed(int(n), float(w), precision, center),
                n_bin + (0 if center == "cv" else 1) if short else 0,
            )
            for n, w, short, fixed in zip(counts, worst, limited, exact, strict=True)
        ],
        dtype=np.int64,
    )
    converged = exact | ((worst <= precision) & ~limited)
    return {
        "n_universes": (("systematic",), counts),
        "universes_needed": (("systematic",), needed),
        "universes_converged": (("systematic",), converged),
    }


def _percent(value: float) -> str:
    return "∞" if not math.isfinite(value) else f"{100 * value:.0f} %"


def _shortfalls(ds: xr.Dataset) -> tuple[list[str], list[str], list[str]]:
    """(systematics in the total that are short and could be thrown more, those short whose
    universes are fixed by their source, the cross-check set if short), described."""
    names = [str(v) for v in ds["systematic"].values]
    fixed_names = set(filter(None, str(ds.attrs.get("universes_fixed", "")).split(",")))
    n_bin = ds.sizes["truth_bin"]
    short, fixed, crosscheck = [], [], []
    for k, name in enumerate(names):
        if bool(ds["universes_converged"].values[k]):
            continue
        worst = max(float(ds[f"mc_rel_error_{c}"].values[k]) for c in ("real", "nominal"))
        text = (
            f"{name} ({int(ds['n_universes'].values[k])} thrown: MC error {_percent(worst)}, "
            f"≈{int(ds['universes_needed'].values[k])} needed"
        )
        if any(bool(ds[f"rank_limited_{c}"].values[k]) for c in ("real", "nominal")):
            rank = max(int(ds[f"cov_rank_{c}"].values[k]) for c in ("real", "nominal"))
            text += f"; rank {rank} of {n_bin} bins, limited by the universes"
        if name == ALL_KNOBS:
            crosscheck.append(text + ")")
        else:
            (fixed if name in fixed_names else short).append(text + ")")
    return short, fixed, crosscheck


def universes_warning(ds: xr.Dataset) -> str:
    """One sentence naming every systematic with too few universes ("" when none is short)."""
    short, fixed, crosscheck = _shortfalls(ds)
    precision = float(ds.attrs.get("universe_precision", 0.10))
    parts = []
    if short or fixed:
        parts.append(
            f"Too few universes for a {100 * precision:g} % Monte-Carlo precision of the "
            f"covariance: {', '.join(short + fixed)}. The covariances and chi-squares of this "
            "result are uncertain by that much."
        )
    if short:
        parts.append("Throw more (`farm run --until-converged`).")
    if fixed:
        names = ", ".join(text.split(" (", 1)[0] for text in fixed)
        parts.append(
            f"The universes of {names} come with their source (a weight set's columns, a flux "
            "file's histograms): none can be thrown; more need a source with more universes."
        )
    if crosscheck:
        parts.append(f"The cross-check set is short too: {', '.join(crosscheck)}.")
    return " ".join(parts)


def _chi2_text(ds: xr.Dataset, convention: str, test: str, k: int) -> str:
    value = float(ds[f"chi2_{convention}_{test}"].values[k])
    error = float(ds[f"chi2_{convention}_{test}_mc_error"].values[k])
    return f"{value:.2f} ± {error:.2g}" if math.isfinite(error) else f"{value:.2f} (± ?)"


def _p_text(ds: xr.Dataset, convention: str, test: str, k: int) -> str:
    p = float(ds[f"pvalue_{convention}_{test}"].values[k])
    return f"p = {p:.2g}" if p < 0.01 else f"p = {p:.2f}"


def summary_lines(ds: xr.Dataset) -> list[str]:
    """What ``farm run`` prints after publishing: each model's chi-squares with their MC error
    and p-value, then a warning when a systematic has too few universes."""
    lines = []
    dof = int(ds["chi2_dof"].values)
    for k, model in enumerate(str(v) for v in ds["model"].values):
        lines.append(
            f"  {model}: chi2/dof real {_chi2_text(ds, 'real', 'joint', k)}/{dof}, "
            f"{_p_text(ds, 'real', 'joint', k)} "
            f"(uncorrelated {_chi2_text(ds, 'real', 'uncorrelated', k)}, "
            f"{_p_text(ds, 'real', 'uncorrelated', k)}), "
            f"nominal {_chi2_text(ds, 'nominal', 'joint', k)}, {_p_text(ds, 'nominal', 'joint', k)}"
        )
    warning = str(ds.attrs.get("universes_warning", ""))
    if warning:
        lines.append(f"warning: {warning}")
    return lines


def summary_record(ds: xr.Dataset, stats: object) -> dict[str, object]:
    """What ``farm run --json`` prints: the sizes, the work items, each model's chi-squares
    (with their Monte-Carlo error and p-value) and the universes warning."""
    dof = int(ds["chi2_dof"].values)
    models = []
    for k, model in enumerate(str(v) for v in ds["model"].values):
        entry: dict[str, object] = {"model": model, "dof": dof}
        for convention in ("real", "nominal"):
            for test in ("joint", "uncorrelated"):
                name = f"{convention}_{test}"
                entry[f"chi2_{name}"] = float(ds[f"chi2_{name}"].values[k])
                entry[f"chi2_{name}_mc_error"] = float(ds[f"chi2_{name}_mc_error"].values[k])
                entry[f"pvalue_{name}"] = float(ds[f"pvalue_{name}"].values[k])
        models.append(entry)
    return {
        "sample": str(ds.attrs.get("sample", "")),
        "universes": int(ds.sizes["universe"]),
        "systematics": [str(v) for v in ds["systematic"].values],
        "truth_bins": int(ds.sizes["truth_bin"]),
        "work_items": {
            name: int(getattr(stats, name))
            for name in ("items", "computed", "from_checkpoint", "extended")
        },
        "models": models,
        "universes_warning": str(ds.attrs.get("universes_warning", "")) or None,
    }


def next_throws(
    ds: xr.Dataset, throws: Mapping[str, int], max_universes: int
) -> dict[str, int] | None:
    """The throws of the next ``--until-converged`` iteration, or None when there is nothing to add.

    Each systematic of ``throws`` (multisim, in the total) that has not converged goes to the
    universes it needs, at least :data:`GROWTH` times what it has, at most ``max_universes``.
    Throws depend only on (seed, systematic, index), so the new universes extend the old ones.
    """
    names = [str(v) for v in ds["systematic"].values]
    grown = dict(throws)
    for name, count in throws.items():
        k = names.index(name)
        if bool(ds["universes_converged"].values[k]) or count >= max_universes:
            continue
        needed = int(ds["universes_needed"].values[k])
        grown[name] = min(max_universes, max(needed, GROWTH * count))
    return None if grown == dict(throws) else grown
