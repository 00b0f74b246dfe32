"""A whole fit: best fit, Wilks intervals, Δχ² profiles and Feldman–Cousins intervals.

1. χ²(θ) of :class:`farm.fit.problem.FitProblem` is minimised with MINUIT (best fit, Hesse
   errors) and Minos gives the Wilks intervals (:mod:`farm.fit.minimize`).
2. The prediction and V_syst(θ) are tabulated on a grid of the free parameters (one or two):
   the data's Δχ² profiles come from it, and it is what every toy is refit on.
3. At ``fc_points`` nodes of each parameter, toys are thrown at the node (other parameters at the
   data's conditional best fit, from MINUIT), refit, and the cl-quantile of their Δχ² is the
   critical value; the Feldman–Cousins interval is where the data's Δχ² stays below it
   (:mod:`farm.fit.toys`, run by :mod:`farm.fit.fc` on the farm's clusters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from farm.fit.fc import ToyRunStats, run_toys
from farm.fit.minimize import BestFit, best_fit, profile_1d, wilks_intervals
from farm.fit.params import Parameter
from farm.fit.problem import FitProblem
from farm.fit.toys import (
    Grid,
    Thrower,
    ToyPoint,
    critical_values,
    interval_from,
    psd_factor,
    refined_min_1d,
    statistic_at,
)

__all__ = [
    "FCResult",
    "FitResult",
    "FitSettings",
    "data_statistic",
    "fc_indices",
    "run_fit",
    "tabulate",
]

DEFAULT_CLS = (0.6827, 0.90)


@dataclass(frozen=True, kw_only=True)
class FitSettings:
    cls: tuple[float, ...] = DEFAULT_CLS
    grid: int | None = None
    """Nodes per parameter of the tabulated grid (default 201 for one parameter, 41 for two)."""
    toys: int = 1000
    """Toys per Feldman–Cousins point (0: Wilks intervals only)."""
    fc_points: int = 21
    seed: int = 1
    block: int = 500
    stat: str = "auto"
    """Pseudo-experiments: ``poisson`` (counts re-extracted), ``gaussian``, or ``auto``."""

    def __post_init__(self) -> None:
        if not self.cls or not all(0.0 < c < 1.0 for c in self.cls):
            msg = f"confidence levels must lie strictly between 0 and 1; got {self.cls}"
            raise ValueError(msg)
        if self.stat not in ("auto", "poisson", "gaussian"):
            msg = f"--stat must be auto, poisson or gaussian; got {self.stat!r}"
            raise ValueError(msg)
        if self.toys < 0 or self.fc_points < 2:
            msg = f"--toys must be >= 0 and --fc-points >= 2; got {self.toys} and {self.fc_points}"
            raise ValueError(msg)

    def nodes(self, n_params: int) -> int:
        return self.grid if self.grid is not None else (201 if n_params == 1 else 41)


@dataclass(frozen=True, kw_only=True, eq=False)
class FCResult:
    """Feldman–Cousins construction of one parameter."""

    name: str
    theta: np.ndarray
    """(K,) the points (grid nodes)."""
    generating: np.ndarray
    """(K, P) where the toys were thrown (the others at the data's conditional best fit)."""
    data: np.ndarray
    """(K,) the data's Δχ²."""
    toys: np.ndarray
    """(K, n) every toy's Δχ²."""
    crit: np.ndarray
    """(C, K) critical Δχ² at each confidence level."""
    crit_band: np.ndarray
    """(C, K, 2) its Monte-Carlo band (order statistics ±1 binomial σ)."""
    pvalue: np.ndarray
    """(K,) fraction of toys with Δχ² ≥ the data's."""
    intervals: np.ndarray
    """(C, 2) the interval at each confidence level."""
    connected: np.ndarray
    """(C,) whether the accepted points form one interval."""

    def __repr__(self) -> str:
        from farm._repr import interval_text

        intervals = ", ".join(interval_text(lo, hi) for lo, hi in self.intervals)
        return (
            f"FCResult({self.name!r}, {self.theta.size} points × {self.toys.shape[-1]} toys, "
            f"intervals {intervals})"
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class FitResult:
    problem: FitProblem
    params: tuple[Parameter, ...]
    settings: FitSettings
    best: BestFit
    wilks: np.ndarray
    """(P, C, 2) Minos intervals."""
    grid: Grid
    data_chi2: np.ndarray
    """(*grid.shape) the data's χ² on the grid."""
    profiles: tuple[np.ndarray, ...]
    """Per parameter, Δχ² along its grid axis (the others minimised on the grid)."""
    fc: tuple[FCResult, ...]
    stat: str
    """How the toys were thrown (poisson, gaussian; '' without toys)."""
    toy_stats: ToyRunStats | None

    def __repr__(self) -> str:
        from farm._repr import interval_text, lines

        body = [repr(self.best)]
        for k, p in enumerate(self.params):
            for c, cl in enumerate(self.settings.cls):
                text = f"{p.name} {100 * cl:.4g} %: Wilks {interval_text(*self.wilks[k, c])}"
                if k < len(self.fc):
                    text += f", Feldman–Cousins {interval_text(*self.fc[k].intervals[c])}"
                body.append(text)
        toys = f", {self.settings.toys} toys per point ({self.stat})" if self.fc else ", no toys"
        head = (
            f"FitResult({self.problem.label!r} to {self.problem.inputs.sample}, "
            f"{self.problem.inputs.convention} flux, {self.problem.n_bins} bins{toys})"
        )
        return lines(head, body)


def tabulate(
    problem: FitProblem,
    params: Sequence[Parameter],
    nodes: int,
    progress: Callable[[int, int], None] | None = None,
) -> Grid:
    """The prediction and V_syst(θ) at every node of the grid (``nodes`` per parameter)."""
    if len(params) not in (1, 2):
        msg = f"the grid (and the Feldman–Cousins toys) takes one or two free parameters; got {len(params)}: fix the others with --set"
        raise ValueError(msg)
    axes = tuple(p.grid(nodes) for p in params)
    shape = tuple(a.size for a in axes)
    j = problem.n_bins
    pred = np.empty((*shape, j))
    v = np.empty((*shape, j, j))
    total = int(np.prod(shape))
    for done, index in enumerate(np.ndindex(*shape), start=1):
        e = problem.evaluate([axes[k][i] for k, i in enumerate(index)])
        pred[index], v[index] = e.pred, e.v_syst
        if progress is not None and (done % 50 == 0 or done == total):
            progress(done, total)
    return Grid(axes=axes, pred=pred, v_syst=v)


def fc_indices(nodes: int, points: int) -> np.ndarray:
    """``points`` grid nodes evenly spread over ``nodes`` (both ends included)."""
    return np.unique(np.round(np.linspace(0, nodes - 1, min(points, nodes))).astype(int))


def data_statistic(grid: Grid, problem: FitProblem) -> np.ndarray:
    """(*shape) the data's χ² on the grid, with the result's statistics covariance."""
    measured = problem.measured_cv / problem.scale
    v_stat = problem.inputs.stat_cov / problem.scale**2
    return grid.chi2(measured[None, :], v_stat[None])[0]


def _profiles(chi2: np.ndarray, minimum: float) -> tuple[np.ndarray, ...]:
    if chi2.ndim == 1:
        return (chi2 - minimum,)
    return (
        refined_min_1d(chi2) - minimum,  # along parameter 0: minimise over axis 1
        refined_min_1d(chi2.T) - minimum,
    )


def _thrower(problem: FitProblem, stat: str) -> Thrower:
    counts = problem.inputs.counts
    if stat == "poisson" and counts is None:
        msg = f"--stat poisson needs the result's counts and a re-runnable extraction: {problem.inputs.counts_note}; use --stat gaussian"
        raise ValueError(msg)
    kind = stat if stat != "auto" else ("poisson" if counts is not None else "gaussian")
    return Thrower(
        kind=kind,
        scale=problem.scale,
        stat_cov=problem.inputs.stat_cov / problem.scale**2,
        counts=counts if kind == "poisson" else None,
    )


def _points(
    problem: FitProblem,
    params: Sequence[Parameter],
    best: BestFit,
    grid: Grid,
    thrower: Thrower,
    k: int,
    indices: np.ndarray,
) -> list[ToyPoint]:
    theta = grid.axes[k][indices]
    _, generating = profile_1d(problem.chi2, params, best, k, theta)
    out = []
    for i, index in enumerate(indices):
        e = problem.evaluate(generating[i])
        expected = (
            thrower.counts.expected(e.raw)
            if thrower.kind == "poisson" and thrower.counts
            else np.empty(0)
        )
        out.append(
            ToyPoint(
                poi=k,
                index=int(index),
                theta=generating[i].copy(),
                pred=e.pred,
                expected=expected,
                syst_factor=psd_factor(e.v_syst),
            )
        )
    return out


def run_fit(
    problem: FitProblem,
    params: Sequence[Parameter],
    settings: FitSettings,
    *,
    options: Any = None,
    checkpoint_dir: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """Fit ``problem`` over ``params``: best fit, Wilks and (with toys) Feldman–Cousins intervals.

    ``progress(stage, done, total)`` is told how far the grid and the toys are.
    """
    params = tuple(params)
    if len(params) not in (1, 2):
        msg = f"farm fit tabulates χ²(θ) and refits its toys on a grid of one or two free parameters; got {len(params)}: fix the others with --set"
        raise ValueError(msg)
    if tuple(p.name for p in params) != problem.names:
        msg = (
            f"the parameters {[p.name for p in params]} are not the problem's {list(problem.names)}"
        )
        raise ValueError(msg)
    best = best_fit(problem.chi2, params, problem.n_bins)
    wilks = wilks_intervals(problem.chi2, params, best, settings.cls)
    nodes = settings.nodes(len(params))
    grid = tabulate(
        problem, params, nodes, None if progress is None else (lambda d, t: progress("grid", d, t))
    )
    chi2 = data_statistic(grid, problem)
    profiles = _profiles(chi2, best.chi2)
    fc: list[FCResult] = []
    stats = None
    stat = ""
    if settings.toys > 0:
        thrower = _thrower(problem, settings.stat)
        stat = thrower.kind
        indices = fc_indices(nodes, settings.fc_points)
        per_param = [
            _points(problem, params, best, grid, thrower, k, indices) for k in range(len(params))
        ]
        points = [p for group in per_param for p in group]
        toys, stats = run_toys(
            grid,
            thrower,
            points,
            problem.names,
            seed=settings.seed,
            toys=settings.toys,
            block=settings.block,
            options=options,
            checkpoint_dir=checkpoint_dir,
            progress=None if progress is None else (lambda d, t: progress("toys", d, t)),
            log=log,
        )
        cls = np.asarray(settings.cls)
        for k, group in enumerate(per_param):
            rows = slice(k * indices.size, (k + 1) * indices.size)
            block = toys[rows]
            data = np.array([statistic_at(chi2[None], k, int(i))[0] for i in indices])
            crit, band = critical_values(block, cls)
            bounds = [interval_from(grid.axes[k][indices], data, crit[c]) for c in range(cls.size)]
            fc.append(
                FCResult(
                    name=params[k].name,
                    theta=grid.axes[k][indices],
                    generating=np.array([p.theta for p in group]),
                    data=data,
                    toys=block,
                    crit=crit,
                    crit_band=band,
                    pvalue=(block >= data[:, None]).mean(axis=1),
                    intervals=np.array([b[:2] for b in bounds]),
                    connected=np.array([b[2] for b in bounds]),
                )
            )
    return FitResult(
        problem=problem,
        params=params,
        settings=settings,
        best=best,
        wilks=wilks,
        grid=grid,
        data_chi2=chi2,
        profiles=profiles,
        fc=tuple(fc),
        stat=stat,
        toy_stats=stats,
    )
