"""Were enough universes thrown? The report's per-systematic check and its one-sentence verdict.

Each systematic's covariance has a Monte-Carlo error from its finite universes
(:mod:`farm.analysis.mc_error`: ``√(2/N)`` for N Gaussian throws, more with heavier tails) and a
rank, which N universes limit to N. A systematic is enough when the error is at most the
threshold (``[analysis] universe_precision`` of the run unless the report is given another) and
its rank is not limited by its universes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.stats
import xarray as xr

from farm.analysis.mc_error import universes_needed, variance_relative_errors
from farm.report._dataset import CONVENTIONS, config_of, labels
from farm.systematics.universes import ALL_KNOBS

__all__ = [
    "NEGLIGIBLE_SHARE",
    "UniverseCheck",
    "default_threshold",
    "universe_checks",
    "universes_verdict",
]

NEGLIGIBLE_SHARE = 0.01
"""A systematic below this fraction of every bin's variance cannot change a conclusion."""

_CONFIDENCE = 0.95
"""A share is negligible only if its one-sided upper bound at this confidence is."""


@dataclass(frozen=True, kw_only=True)
class UniverseCheck:
    """Whether one systematic's covariance is known well enough from the universes thrown."""

    systematic: str
    group: str
    n_universes: int
    unisim: bool
    """±1σ unisim: a fixed pair of universes, exact (more throws would change nothing)."""
    rel_error: dict[str, float]
    """Per convention, the largest relative Monte-Carlo error of a variance of its covariance."""
    share: float
    """Largest fraction of a bin's total variance (systematics ⊕ stat) this systematic gives
    (above 1 for the all-knob cross-check, which is not part of that total)."""
    threshold: float
    rank: int = 0
    """Rank of its covariance (the larger of the two conventions)."""
    n_bins: int = 1
    rank_limited: bool = False
    """The rank reached what its universes allow (N, N − 1 about the mean) below ``n_bins``."""
    center: str = "cv"

    @property
    def worst(self) -> float:
        return max(self.rel_error.values())

    @property
    def enough(self) -> bool:
        return self.unisim or (self.worst <= self.threshold and not self.rank_limited)

    @property
    def crosscheck(self) -> bool:
        """The all-knob set: compared with the total, never added into it."""
        return self.systematic == ALL_KNOBS

    @property
    def share_upper(self) -> float:
        """One-sided 95 % upper bound of the share: a variance from ν Gaussian deviations is
        below ``ν / χ²_ν(5 %)`` times its estimate at 95 % (19× at ν = 2, 1.2× at ν = 200)."""
        if self.unisim:
            return self.share
        dof = self.n_universes if self.center == "cv" else self.n_universes - 1
        if dof < 1:
            return math.inf
        return self.share * dof / float(scipy.stats.chi2.ppf(1.0 - _CONFIDENCE, dof))

    @property
    def matters(self) -> bool:
        """Whether it can change the total covariance noticeably (cross-checks never do): its
        share, allowing for the error of the share itself, reaches :data:`NEGLIGIBLE_SHARE`."""
        return not self.crosscheck and self.share_upper >= NEGLIGIBLE_SHARE

    @property
    def needed(self) -> int | None:
        """Universes for an error at the threshold (the error falls like 1/√N; never fewer than
        the Gaussian 2/threshold², nor than the bins when the rank is limited)."""
        if self.enough:
            return None
        count = universes_needed(self.n_universes, self.worst, self.threshold, self.center)
        if self.rank_limited:
            count = max(count, self.n_bins + (0 if self.center == "cv" else 1))
        return count


def _unisims(ds: xr.Dataset) -> set[str]:
    systematics = config_of(ds).get("systematics", [])
    return {s.get("name") for s in systematics if isinstance(s, dict) and s.get("mode") == "unisim"}


def default_threshold(ds: xr.Dataset) -> float:
    """The run's ``[analysis] universe_precision`` (0.10 for results that predate it)."""
    return float(ds.attrs.get("universe_precision", 0.10))


def _recomputed(ds: xr.Dataset, convention: str, rows: np.ndarray) -> float:
    """The relative MC error from the universes, for results published before it was stored."""
    values = np.asarray(ds[f"xsec_{convention}"].values, dtype=np.float64)
    center = str(ds.attrs.get("covariance_center", "cv"))
    normalization = str(ds.attrs.get("covariance_normalization", "n"))
    rel = variance_relative_errors(
        values[rows],
        central=values[0],
        center=center,  # type: ignore[arg-type]
        normalization=normalization,  # type: ignore[arg-type]
    )
    return float(rel.max(initial=0.0))


def universe_checks(ds: xr.Dataset, threshold: float | None = None) -> list[UniverseCheck]:
    """Per systematic: universes thrown, Monte-Carlo error and rank of its covariance, verdict.

    The relative error of a variance from N Gaussian universes is √(2/N), so a 10 % threshold
    asks for 200 universes. ``threshold`` defaults to the run's ``universe_precision``.
    """
    threshold = default_threshold(ds) if threshold is None else threshold
    if not 0 < threshold < 1:
        msg = f"threshold must be a fraction in (0, 1), e.g. 0.10; got {threshold}"
        raise ValueError(msg)
    per_universe = labels(ds, "universe_systematic")
    group_of = dict(zip(per_universe, labels(ds, "universe_group"), strict=True))
    unisims = _unisims(ds)
    center = str(ds.attrs.get("covariance_center", "cv"))
    n_bins = ds.sizes["truth_bin"]
    total = np.stack([np.diagonal(ds[f"cov_total_{c}"].values) for c in CONVENTIONS])
    stored = all(f"mc_rel_error_{c}" in ds for c in CONVENTIONS)
    rows_of = np.array(per_universe)
    checks = []
    for k, name in enumerate(labels(ds, "systematic")):
        own = np.stack([np.diagonal(ds[f"cov_systematic_{c}"].values[k]) for c in CONVENTIONS])
        share = np.divide(own, total, out=np.zeros_like(own), where=total > 0)
        n_universes = per_universe.count(name)
        if stored:
            rel = {c: float(ds[f"mc_rel_error_{c}"].values[k]) for c in CONVENTIONS}
            rank = max(int(ds[f"cov_rank_{c}"].values[k]) for c in CONVENTIONS)
            limited = any(bool(ds[f"rank_limited_{c}"].values[k]) for c in CONVENTIONS)
        else:
            rows = np.flatnonzero(rows_of == name)
            rel = {c: _recomputed(ds, c, rows) for c in CONVENTIONS}
            rank, limited = 0, False
        unisim = name in unisims
        checks.append(
            UniverseCheck(
                systematic=name,
                group=group_of.get(name, "?"),
                n_universes=n_universes,
                unisim=unisim,
                rel_error={c: 0.0 for c in CONVENTIONS} if unisim else rel,
                share=float(share.max()) if share.size else 0.0,
                threshold=threshold,
                rank=rank,
                n_bins=n_bins,
                rank_limited=limited and not unisim,
                center=center,
            )
        )
    return checks


def universes_verdict(checks: list[UniverseCheck]) -> tuple[bool, str]:
    """(enough?, one sentence): short systematics that matter decide; negligible ones are named."""
    short = [c for c in checks if not c.enough and c.matters]
    minor = [c for c in checks if not c.enough and not c.matters and not c.crosscheck]
    crosscheck = [c for c in checks if not c.enough and c.crosscheck]
    threshold = f"{100 * checks[0].threshold:g} %" if checks else "the threshold"

    def describe(c: UniverseCheck) -> str:
        text = f"{c.systematic} ({c.n_universes} thrown, ≈{c.needed} needed"
        if c.rank_limited:
            text += f"; rank {c.rank} of {c.n_bins}, limited by the universes"
        return text + ")"

    if short:
        names = ", ".join(describe(c) for c in short)
        text = f"No: the Monte-Carlo error of the covariance exceeds {threshold} for {names}."
    else:
        text = f"Yes: every systematic that matters is known to {threshold} or better."
    if minor:
        names = ", ".join(c.systematic for c in minor)
        text += (
            f" Above {threshold} but negligible (< {100 * NEGLIGIBLE_SHARE:g} % of every bin's"
            f" variance at {100 * _CONFIDENCE:g} % confidence): {names}."
        )
    for c in crosscheck:
        text += f" The cross-check set {c.systematic} would need ≈{c.needed} universes."
    return not short, text
