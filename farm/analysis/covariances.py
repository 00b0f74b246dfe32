"""Covariances per systematic, per group and total; joint measured–predicted; chi-square tables.

Each systematic owns its universes; its covariance is taken over them about the central value
(universe 0) by default. Group and total covariances are sums over systematics. The joint
covariance of (measured, predicted) is the sum over systematics of the joint covariance over the
*same* universes, so shared flux throws correlate the two (design.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farm.analysis.chi2 import Chi2Result, chi2_joint, chi2_uncorrelated
from farm.analysis.covariance import (
    bootstrap_covariance_error,
    joint_covariance,
    relative_bootstrap_error,
    universe_covariance,
)
from farm.systematics.universes import UniverseSet

__all__ = ["CovarianceSet", "chi2_table", "covariances", "joint_covariances"]


@dataclass(frozen=True, kw_only=True)
class CovarianceSet:
    per_systematic: np.ndarray
    """(S, J, J)."""
    per_group: np.ndarray
    """(G, J, J)."""
    groups: tuple[str, ...]
    total: np.ndarray
    """(J, J): sum over every systematic."""
    bootstrap_error: np.ndarray
    """(S,) largest relative bootstrap error of a diagonal element: is the universe count enough?"""


def covariances(
    values: np.ndarray,
    universes: UniverseSet,
    *,
    center: str,
    normalization: str,
    n_bootstrap: int = 200,
) -> CovarianceSet:
    """Covariances of ``values[u, j]`` per systematic, per group and in total."""
    n = values.shape[1]
    per_syst = np.zeros((len(universes.names), n, n))
    boot = np.zeros(len(universes.names))
    central = values[0]
    for k, name in enumerate(universes.names):
        rows = values[universes.universes_of(name)]
        per_syst[k] = universe_covariance(
            rows, central=central, center=center, normalization=normalization
        )
        if rows.shape[0] >= 2:
            err = bootstrap_covariance_error(
                rows,
                central=central,
                center=center,
                normalization=normalization,
                n_bootstrap=n_bootstrap,
                seed=k,
            )
            boot[k] = relative_bootstrap_error(per_syst[k], err)
        else:
            boot[k] = np.inf
    groups = tuple(dict.fromkeys(universes.groups))
    in_total = np.array(universes.in_total(), dtype=bool)
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
        bootstrap_error=boot,
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
