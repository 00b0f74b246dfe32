"""Feldman–Cousins pseudo-experiments: throw at θ, refit, and the test statistic. Pure numpy.

The ordering principle of G. J. Feldman & R. D. Cousins, PRD 57, 3873 (1998), arXiv:physics/9711021,
in its χ² form: at each θ_i the statistic is

    Δχ²(θ_i) = min_η χ²(θ_i, η) − min_θ,η χ²(θ, η)

(η the other free parameters, profiled: the profile construction). Pseudo-experiments are drawn
at (θ_i, η̂(θ_i)), η̂ the data's conditional best fit: Poisson counts about the expected reco
spectrum, extracted as the farm extracted the data (:mod:`farm.fit.counts`), or Gaussian about
the prediction where the result cannot be re-extracted, plus a correlated systematic throw
L z from the covariance of Δ at that θ (L Lᵀ = V_syst(θ_i), z standard normal). Each is refit
on a grid: χ² is computed at every node of the tabulated prediction and covariance (θ and its
V_syst(θ) tabulated once, so a refit costs no model evaluation), and its minimum refined by
the vertex of the quadratic through the grid minimum and its neighbours.

Every pseudo-experiment draws from its own generator, seeded by (seed, parameter, θ index, toy
index) only: the toys do not depend on how they are split into tasks or on how many workers run
them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from farm.fit.counts import CountsModel

__all__ = [
    "Grid",
    "Thrower",
    "ToyPoint",
    "critical_values",
    "interval_from",
    "psd_factor",
    "refined_min_1d",
    "refined_min_2d",
    "run_block",
    "statistic_at",
    "toy_rng",
]

_CHUNK_ELEMENTS = 1 << 22


def psd_factor(cov: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = cov for a positive semi-definite cov (eigenvalues below 0 clipped to 0)."""
    values, vectors = np.linalg.eigh(0.5 * (cov + cov.T))
    return vectors * np.sqrt(np.clip(values, 0.0, None))[None, :]


@dataclass(frozen=True, kw_only=True, eq=False)
class Grid:
    """The prediction and V_syst tabulated on a grid of θ (one or two free parameters)."""

    axes: tuple[np.ndarray, ...]
    """Evenly spaced values of each free parameter."""
    pred: np.ndarray
    """(*shape, J) central prediction / scale."""
    v_syst: np.ndarray
    """(*shape, J, J) covariance of Δ = m − p(θ) over the universes / scale²."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    def __repr__(self) -> str:
        ranges = ", ".join(f"{a.size} nodes {a[0]:.4g}..{a[-1]:.4g}" for a in self.axes)
        return f"Grid({ranges}; {self.pred.shape[-1]} bins)"

    def chi2(self, measured: np.ndarray, v_stat: np.ndarray) -> np.ndarray:
        """(n, *shape) χ² of each pseudo-experiment (n, J) with its statistics covariance
        (n, J, J) at every node: (m − p)ᵀ (V_syst + V_stat)⁻¹ (m − p)."""
        n, j = measured.shape
        pred = self.pred.reshape(-1, j)
        v = self.v_syst.reshape(-1, j, j)
        out = np.empty((n, pred.shape[0]))
        step = max(1, _CHUNK_ELEMENTS // max(1, n * j * j))
        for start in range(0, pred.shape[0], step):
            r = measured[:, None, :] - pred[None, start : start + step]
            total = v[None, start : start + step] + v_stat[:, None]
            if j == 1:
                out[:, start : start + step] = r[..., 0] ** 2 / total[..., 0, 0]
            else:
                x = np.linalg.solve(total, r[..., None])[..., 0]
                out[:, start : start + step] = np.einsum("ngj,ngj->ng", r, x)
        return out.reshape(n, *self.shape)


def refined_min_1d(values: np.ndarray) -> np.ndarray:
    """Minimum along the last axis (evenly spaced nodes), refined by the parabola's vertex.

    Through the grid minimum y₁ and its neighbours y₀, y₂: y_min = y₁ − (y₂ − y₀)² / (8 (y₀ − 2y₁ + y₂)),
    kept only where the curvature is positive; at an end of the grid the node itself (a
    minimum on the boundary of the physical region).
    """
    k = np.argmin(values, axis=-1)
    best = np.take_along_axis(values, k[..., None], axis=-1)[..., 0]
    inside = (k > 0) & (k < values.shape[-1] - 1)
    kk = np.clip(k, 1, values.shape[-1] - 2)
    y0 = np.take_along_axis(values, (kk - 1)[..., None], axis=-1)[..., 0]
    y1 = np.take_along_axis(values, kk[..., None], axis=-1)[..., 0]
    y2 = np.take_along_axis(values, (kk + 1)[..., None], axis=-1)[..., 0]
    curvature = y0 - 2.0 * y1 + y2
    safe = np.where(curvature > 0, curvature, 1.0)
    vertex = y1 - (y2 - y0) ** 2 / (8.0 * safe)
    return np.where(inside & (curvature > 0), np.minimum(vertex, best), best)


_STENCIL = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)], dtype=np.float64)
_DESIGN = np.column_stack(
    [
        np.ones(9),
        _STENCIL[:, 0],
        _STENCIL[:, 1],
        _STENCIL[:, 0] ** 2,
        _STENCIL[:, 0] * _STENCIL[:, 1],
        _STENCIL[:, 1] ** 2,
    ]
)
_FIT = np.linalg.pinv(_DESIGN)


def refined_min_2d(values: np.ndarray) -> np.ndarray:
    """Minimum over the last two axes, refined by the quadratic fitted to the 3 × 3 stencil
    around the grid minimum (its vertex where the quadratic is convex and the vertex lies within
    the stencil); along an edge of the grid, the parabola along that edge."""
    n, a, b = values.shape
    flat = values.reshape(n, -1)
    k = np.argmin(flat, axis=1)
    i, j = np.divmod(k, b)
    best = flat[np.arange(n), k]
    out = best.copy()
    inner = (i > 0) & (i < a - 1) & (j > 0) & (j < b - 1)
    if inner.any():
        rows = np.flatnonzero(inner)
        ii = i[rows, None] + _STENCIL[None, :, 0].astype(int)
        jj = j[rows, None] + _STENCIL[None, :, 1].astype(int)
        y = values[rows[:, None], ii, jj]
        c = y @ _FIT.T
        h = np.stack(
            [np.stack([2 * c[:, 3], c[:, 4]], -1), np.stack([c[:, 4], 2 * c[:, 5]], -1)], -2
        )
        det = h[:, 0, 0] * h[:, 1, 1] - h[:, 0, 1] ** 2
        convex = (h[:, 0, 0] > 0) & (det > 0)
        g = c[:, 1:3]
        safe = np.where(convex[:, None, None], h, np.eye(2)[None])
        step = -np.linalg.solve(safe, g[..., None])[..., 0]
        vertex = c[:, 0] + 0.5 * np.einsum("nk,nk->n", g, step)
        ok = convex & (np.abs(step).max(axis=1) <= 1.0)
        out[rows] = np.where(ok, np.minimum(vertex, best[rows]), best[rows])
    edge_i = ~inner & ((i == 0) | (i == a - 1)) & (j > 0) & (j < b - 1)
    edge_j = ~inner & ((j == 0) | (j == b - 1)) & (i > 0) & (i < a - 1)
    if edge_i.any():
        rows = np.flatnonzero(edge_i)
        out[rows] = refined_min_1d(values[rows, i[rows], :])
    if edge_j.any():
        rows = np.flatnonzero(edge_j)
        out[rows] = refined_min_1d(values[rows, :, j[rows]])
    return out


def statistic_at(chi2: np.ndarray, poi: int, index: int) -> np.ndarray:
    """(n,) Δχ² at node ``index`` of free parameter ``poi`` from χ² on the grid (n, *shape)."""
    if chi2.ndim == 2:
        conditional = chi2[:, index]
        minimum = refined_min_1d(chi2)
    elif chi2.ndim == 3:
        conditional = refined_min_1d(chi2[:, index, :] if poi == 0 else chi2[:, :, index])
        minimum = refined_min_2d(chi2)
    else:
        msg = f"Feldman–Cousins toys refit on a grid of one or two free parameters; got {chi2.ndim - 1}"
        raise ValueError(msg)
    return np.maximum(conditional - minimum, 0.0)


@dataclass(frozen=True, kw_only=True, eq=False)
class Thrower:
    """How pseudo-experiments are made: ``poisson`` counts re-extracted, or ``gaussian``."""

    kind: str
    scale: float
    """cm² per internal unit (the fit problem's scale)."""
    stat_cov: np.ndarray
    """(J, J) statistics covariance / scale² (Gaussian toys)."""
    counts: CountsModel | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class ToyPoint:
    """Where one set of pseudo-experiments is drawn: node ``index`` of free parameter ``poi``."""

    poi: int
    index: int
    theta: np.ndarray
    """(P,) the generating θ: the node, with the other parameters at their conditional best fit."""
    pred: np.ndarray
    """(J,) central prediction / scale (Gaussian toys' mean)."""
    expected: np.ndarray
    """(R,) expected reco counts ν(θ) (Poisson toys; empty for Gaussian)."""
    syst_factor: np.ndarray
    """(J, J) L with L Lᵀ = V_syst(θ) / scale²."""


def toy_rng(seed: int, name: str, index: int, toy: int) -> np.random.Generator:
    """The generator of toy ``toy`` at node ``index`` of parameter ``name``: SeedSequence of
    (seed, blake2b64(name), index, toy)."""
    stream = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index, toy]))


def throw(
    thrower: Thrower, point: ToyPoint, *, seed: int, name: str, toys: range
) -> tuple[np.ndarray, np.ndarray]:
    """(measured (n, J), V_stat (n, J, J)) of pseudo-experiments ``toys`` at ``point`` (scaled)."""
    j = point.pred.size
    n = len(toys)
    z_syst = np.empty((n, j))
    if thrower.kind == "poisson":
        if thrower.counts is None:
            msg = "Poisson pseudo-experiments need the result's counts model"
            raise ValueError(msg)
        counts = np.empty((n, point.expected.size))
        for row, toy in enumerate(toys):
            rng = toy_rng(seed, name, point.index, toy)
            counts[row] = rng.poisson(point.expected)
            z_syst[row] = rng.standard_normal(j)
        measured = thrower.counts.extract(counts) / thrower.scale
        v_stat = thrower.counts.stat_cov(counts) / thrower.scale**2
    elif thrower.kind == "gaussian":
        z_stat = np.empty((n, j))
        for row, toy in enumerate(toys):
            rng = toy_rng(seed, name, point.index, toy)
            z_stat[row] = rng.standard_normal(j)
            z_syst[row] = rng.standard_normal(j)
        measured = point.pred[None, :] + z_stat @ psd_factor(thrower.stat_cov).T
        v_stat = np.broadcast_to(thrower.stat_cov, (n, j, j))
    else:
        msg = f"unknown pseudo-experiment kind {thrower.kind!r}; choose poisson or gaussian"
        raise ValueError(msg)
    return measured + z_syst @ point.syst_factor.T, v_stat


def run_block(
    grid: Grid, thrower: Thrower, point: ToyPoint, *, seed: int, name: str, first: int, stop: int
) -> np.ndarray:
    """Δχ²(θ_i) of toys first … stop − 1 at ``point``: the work of one dask task."""
    measured, v_stat = throw(thrower, point, seed=seed, name=name, toys=range(first, stop))
    return statistic_at(grid.chi2(measured, v_stat), point.poi, point.index)


def critical_values(toys: np.ndarray, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, K) critical Δχ² per confidence level and point, and (C, K, 2) its MC band.

    The critical value is the cl-quantile of the toys' Δχ²; the band the order statistics
    n·cl ∓ √(n cl (1 − cl)) (a binomial standard error on the toys below it).
    """
    n = toys.shape[-1]
    ordered = np.sort(toys, axis=-1)
    crit = np.quantile(toys, cls, axis=-1)
    band = np.empty((*crit.shape, 2))
    for c, cl in enumerate(np.atleast_1d(cls)):
        spread = np.sqrt(n * cl * (1 - cl))
        lo = int(np.clip(np.floor(n * cl - spread) - 1, 0, n - 1))
        hi = int(np.clip(np.ceil(n * cl + spread) - 1, 0, n - 1))
        band[c, :, 0], band[c, :, 1] = ordered[..., lo], ordered[..., hi]
    return crit, band


def interval_from(
    theta: np.ndarray, data: np.ndarray, crit: np.ndarray
) -> tuple[float, float, bool]:
    """(lower, upper, connected) of {θ : Δχ²_data(θ) ≤ crit(θ)} over the points ``theta``.

    Bounds fall between points where data − crit changes sign (linear interpolation); an
    accepted end point is the bound itself. NaN bounds when no point is accepted.
    """
    f = data - crit
    accepted = f <= 0
    if not accepted.any():
        return float("nan"), float("nan"), True
    first, last = np.flatnonzero(accepted)[[0, -1]]
    connected = bool(accepted[first : last + 1].all())

    def crossing(a: int, b: int) -> float:
        return float(theta[a] + (theta[b] - theta[a]) * f[a] / (f[a] - f[b]))

    lower = float(theta[first]) if first == 0 else crossing(first - 1, first)
    upper = float(theta[last]) if last == theta.size - 1 else crossing(last, last + 1)
    return lower, upper, connected
