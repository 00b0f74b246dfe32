"""Covariances per systematic, per group and total; joint measured–predicted; chi-square tables.

Each systematic owns its universes; its covariance is taken over them about the central value
(universe 0) by default. Group and total covariances are sums over systematics. The joint
covariance of (measured, predicted) is the sum over systematics of the joint covariance over the
*same* universes, so shared flux throws correlate the two (docs/guide-analysts.md §3).

Each multisim systematic's covariance carries its Monte-Carlo error (:mod:`farm.analysis.mc_error`)
and its rank; unisim systematics (fixed ±1σ pairs) are exact.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from farm.analysis.chi2 import Chi2Result, chi2_joint, chi2_uncorrelated, difference_covariance
from farm.analysis.covariance import joint_covariance, universe_covariance
from farm.analysis.mc_error import (
    Chi2MCError,
    chi2_mc_error,
    covariance_mc_error,
    covariance_rank,
    rank_limit,
    relative_mc_error,
)
from farm.systematics.universes import UniverseSet

__all__ = [
    "CovarianceSet",
    "chi2_mc_errors",
    "chi2_table",
    "covariances",
    "joint_covariances",
    "random_strata",
]


@dataclass(frozen=True, kw_only=True)
class CovarianceSet:
    per_systematic: np.ndarray
    """(S, J, J)."""
    per_group: np.ndarray
    """(G, J, J)."""
    groups: tuple[str, ...]
    total: np.ndarray
    """(J, J): sum over every systematic."""
    mc_rel_error: np.ndarray
    """(S,) largest relative MC error of a variance (0 for unisim): is the universe count enough?"""
    total_mc_error: np.ndarray
    """(J, J) MC standard error of each element of ``total`` (systematics are independent)."""
    rank: np.ndarray
    """(S,) numerical rank of each systematic's covariance."""
    rank_limited: np.ndarray
    """(S,) the rank reached what the universes allow (N, N − 1 about the mean) below J: the
    covariance is missing directions because too few universes were thrown."""
    exact: np.ndarray
    """(S,) unisim: a fixed ±1σ pair, no Monte-Carlo error."""


def random_strata(universes: UniverseSet, exact: Collection[str] = ()) -> list[np.ndarray]:
    """Rows of each systematic with random throws that adds into the total (not unisim)."""
    return [
        universes.universes_of(name)
        for name, counted in zip(universes.names, universes.in_total(), strict=True)
        if counted and name not in exact
    ]


def covariances(
    values: np.ndarray,
    universes: UniverseSet,
    *,
    center: str,
    normalization: str,
    exact: Collection[str] = (),
) -> CovarianceSet:
    """Covariances of ``values[u, j]`` per systematic, per group and in total, with their MC errors.

    ``exact`` names the unisim systematics: their covariance has no Monte-Carlo error.
    """
    n = values.shape[1]
    n_syst = len(universes.names)
    per_syst = np.zeros((n_syst, n, n))
    rel = np.zeros(n_syst)
    rank = np.zeros(n_syst, dtype=np.int64)
    limited = np.zeros(n_syst, dtype=bool)
    is_exact = np.array([name in exact for name in universes.names], dtype=bool)
    error_sq = np.zeros((n, n))
    central = values[0]
    in_total = np.array(universes.in_total(), dtype=bool)
    for k, name in enumerate(universes.names):
        rows = values[universes.universes_of(name)]
        per_syst[k] = universe_covariance(
            rows, central=central, center=center, normalization=normalization
        )
        rank[k] = covariance_rank(per_syst[k])
        if is_exact[k]:
            continue
        rel[k] = relative_mc_error(
            rows, central=central, center=center, normalization=normalization
        )
        limit = rank_limit(rows.shape[0], n, center)
        limited[k] = limit < n and rank[k] >= limit
        if in_total[k]:
            error_sq += (
                covariance_mc_error(
                    rows, central=central, center=center, normalization=normalization
                )
                ** 2
            )
    groups = tuple(dict.fromkeys(universes.groups))
    per_group = (
        np.stack([per_syst[[g == grp for g in universes.groups]].sum(axis=0) for grp in groups])
        if groups
        else np.zeros((0, n, n))
    )
    return CovarianceSet(
        per_systematic=per_syst,
        per_group=per_group,
        groups=groups,
        total=per_syst[in_total].sum(axis=0),
        mc_rel_error=rel,
        total_mc_error=np.sqrt(error_sq),
        rank=rank,
        rank_limited=limited,
        exact=is_exact,
    )


def joint_covariances(
    measured: np.ndarray,
    predicted: np.ndarray,
    universes: UniverseSet,
    *,
    center: str,
    normalization: str,
) -> np.ndarray:
    """(2J, 2J) joint covariance of (measured, predicted), summed over systematics."""
    n = measured.shape[1] + predicted.shape[1]
    total = np.zeros((n, n))
    for name, counted in zip(universes.names, universes.in_total(), strict=True):
        if not counted:
            continue
        rows = universes.universes_of(name)
        total += joint_covariance(
            measured[rows],
            predicted[rows],
            central_measured=measured[0],
            central_predicted=predicted[0],
            center=center,
            normalization=normalization,
        )
    return total


def chi2_table(
    measured_cv: np.ndarray, predicted_cv: np.ndarray, joint: np.ndarray, stat: np.ndarray
) -> tuple[Chi2Result, Chi2Result]:
    """(with the measured–predicted correlation, with it ignored)."""
    return (
        chi2_joint(measured_cv, predicted_cv, joint, stat_cov=stat),
        chi2_uncorrelated(measured_cv, predicted_cv, joint, stat_cov=stat),
    )


def chi2_mc_errors(
    measured: np.ndarray,
    predicted: np.ndarray,
    joint: np.ndarray,
    stat: np.ndarray,
    strata: list[np.ndarray],
    *,
    center: str,
    normalization: str,
) -> tuple[Chi2MCError, Chi2MCError]:
    """Jackknife MC errors of the two chi-squares of :func:`chi2_table` (universe rows ``strata``)."""
    n = measured.shape[1]
    return tuple(  # type: ignore[return-value]
        chi2_mc_error(
            measured,
            predicted,
            difference_covariance(joint, n, include_correlation=correlated, stat_cov=stat),
            strata,
            center=center,  # type: ignore[arg-type]
            normalization=normalization,  # type: ignore[arg-type]
            include_correlation=correlated,
        )
        for correlated in (True, False)
    )
