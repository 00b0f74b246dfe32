"""Feldman–Cousins toys: the refit, seeding, checkpoints, dask, and coverage (issue 14 item 4).

Coverage is checked with 1,000 pseudo-experiments, within 3 σ_MC = 3 √(p (1 − p) / 1000) of
the nominal confidence level: on the bounded Gaussian of Feldman & Cousins (PRD 57, 3873
(1998), §IV.B: x ~ N(μ, 1), μ ≥ 0), where Wilks' χ²₁ threshold over-covers at the boundary, and
on the sns-csi sin²θ_W fit with Poisson pseudo-data re-extracted as the farm extracted the data.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from conftest import run_example
from numpy.testing import assert_allclose, assert_array_equal

from farm import models
from farm.fit.fc import run_toys
from farm.fit.minimize import best_fit, minimise
from farm.fit.params import parse_parameter
from farm.fit.problem import FitProblem, read_inputs
from farm.fit.run import FitSettings, _points, _thrower, run_fit, tabulate
from farm.fit.toys import (
    Grid,
    Thrower,
    ToyPoint,
    critical_values,
    interval_from,
    refined_min_1d,
    refined_min_2d,
    statistic_at,
    throw,
)

EVENTS = 65_536
UNIVERSES = 10
SIN2W = parse_parameter("sin2w", models.cevns)
N_PE = 1000


def sigma_mc(p: float, n: int = N_PE) -> float:
    return float(np.sqrt(p * (1 - p) / n))


@pytest.fixture(scope="module")
def csi(tmp_path_factory: pytest.TempPathFactory) -> FitProblem:
    ds = run_example(tmp_path_factory, "sns-csi", events=EVENTS, universes=UNIVERSES).load()
    return FitProblem(inputs=read_inputs(ds, "real"), model=models.cevns, names=("sin2w",))


@pytest.fixture(scope="module")
def small_toys(csi: FitProblem) -> tuple[Grid, Thrower, list[ToyPoint]]:
    """Poisson toys of the sns-csi problem at three points of a 51-node grid."""
    grid = tabulate(csi, [SIN2W], 51)
    fit = best_fit(csi.chi2, [SIN2W], 1)
    thrower = _thrower(csi, "auto")
    return grid, thrower, _points(csi, [SIN2W], fit, grid, thrower, 0, np.array([0, 25, 50]))


def bounded_gaussian(upper: float = 8.0, nodes: int = 801) -> tuple[Grid, Thrower]:
    """x ~ N(μ, 1) with μ in [0, upper]: prediction μ, no systematics, statistics 1."""
    mu = np.linspace(0.0, upper, nodes)
    grid = Grid(axes=(mu,), pred=mu[:, None], v_syst=np.zeros((nodes, 1, 1)))
    return grid, Thrower(kind="gaussian", scale=1.0, stat_cov=np.eye(1))


def gaussian_point(grid: Grid, index: int) -> ToyPoint:
    mu = grid.axes[0][index : index + 1]
    return ToyPoint(
        poi=0, index=index, theta=mu, pred=mu, expected=np.empty(0), syst_factor=np.zeros((1, 1))
    )


def test_the_refined_minimum_of_a_quadratic_is_exact() -> None:
    x = np.linspace(-1.0, 1.0, 21)
    values = np.stack([(x - c) ** 2 + m for c, m in ((0.137, 2.0), (-0.55, 0.0), (1.7, 1.0))])
    assert_allclose(refined_min_1d(values), [2.0, 0.0, (1.0 - 1.7) ** 2 + 1.0], rtol=0, atol=1e-12)
    y = np.linspace(-1.0, 1.0, 17)
    xx, yy = np.meshgrid(x, y, indexing="ij")
    bowl = 2 * (xx - 0.31) ** 2 + (yy + 0.27) ** 2 + 0.5 * (xx - 0.31) * (yy + 0.27) + 3.0
    edge = (xx - 0.31) ** 2 + (yy - 1.4) ** 2  # minimum beyond the top edge: on the edge y = 1
    got = refined_min_2d(np.stack([bowl, edge]))
    assert_allclose(got, [3.0, 0.16], rtol=0, atol=1e-12)


def test_the_grid_refit_of_the_bounded_gaussian_is_the_analytic_statistic() -> None:
    """Δχ²(μ) = (x − μ)² − (x − max(x, 0))² for μ ≥ 0 (FC's Eq. 4.3 ordering, in χ² form)."""
    grid, _ = bounded_gaussian()
    x = np.array([-1.3, -0.2, 0.0, 0.37, 1.234, 5.5])
    chi2 = grid.chi2(x[:, None], np.ones((x.size, 1, 1)))
    for index in (0, 37, 250):
        mu = grid.axes[0][index]
        expected = (x - mu) ** 2 - (x - np.clip(x, 0.0, 8.0)) ** 2
        assert_allclose(statistic_at(chi2, 0, index), expected, rtol=0, atol=1e-9)


def test_the_toys_grid_refit_agrees_with_an_exact_minuit_refit(csi: FitProblem, small_toys) -> None:
    grid, thrower, points = small_toys
    point = points[1]
    measured, v_stat = throw(thrower, point, seed=3, name="sin2w", toys=range(6))
    fast = statistic_at(grid.chi2(measured, v_stat), 0, point.index)
    theta = grid.axes[0][point.index]
    for k in range(6):
        toy = csi.with_data(measured[k] * csi.scale, v_stat[k] * csi.scale**2)
        exact = toy.chi2([theta]) - minimise(toy.chi2, [SIN2W]).fval
        assert fast[k] == pytest.approx(exact, abs=2e-3)


def test_toys_do_not_depend_on_the_blocks_or_the_cluster(small_toys, on_cluster) -> None:
    grid, thrower, points = small_toys
    one, _ = run_toys(grid, thrower, points, ("sin2w",), seed=11, toys=24, block=24)
    seven, _ = run_toys(grid, thrower, points, ("sin2w",), seed=11, toys=24, block=7)
    assert_array_equal(one, seven)
    remote, stats = run_toys(
        grid, thrower, points, ("sin2w",), seed=11, toys=24, block=5, options=on_cluster
    )
    assert stats.computed == stats.tasks == 15
    assert one.tobytes() == remote.tobytes()
    other, _ = run_toys(grid, thrower, points, ("sin2w",), seed=12, toys=24, block=24)
    assert not np.array_equal(one, other)


def test_toy_blocks_are_checkpointed_and_a_tampered_block_is_recomputed(
    small_toys, tmp_path
) -> None:
    grid, thrower, points = small_toys
    first, stats = run_toys(
        grid, thrower, points, ("sin2w",), seed=5, toys=20, block=10, checkpoint_dir=tmp_path
    )
    assert (stats.computed, stats.from_checkpoint) == (6, 0)
    again, stats = run_toys(
        grid, thrower, points, ("sin2w",), seed=5, toys=20, block=10, checkpoint_dir=tmp_path
    )
    assert (stats.computed, stats.from_checkpoint) == (0, 6)
    assert first.tobytes() == again.tobytes()
    victim = sorted(tmp_path.glob("fc-*.npz"))[0]
    with np.load(victim) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["dchi2"] = arrays["dchi2"] + 1.0
    np.savez(victim, **arrays)
    said: list[str] = []
    third, stats = run_toys(
        grid,
        thrower,
        points,
        ("sin2w",),
        seed=5,
        toys=20,
        block=10,
        checkpoint_dir=tmp_path,
        log=said.append,
    )
    assert stats.computed == 1 and "do not match its digest" in said[0]
    assert first.tobytes() == third.tobytes()
    # another seed is another fit: none of these checkpoints is taken for it
    _, stats = run_toys(
        grid, thrower, points, ("sin2w",), seed=6, toys=20, block=10, checkpoint_dir=tmp_path
    )
    assert stats.from_checkpoint == 0


def _coverage(
    grid: Grid,
    thrower: Thrower,
    points: list[ToyPoint],
    truth: ToyPoint,
    crit: np.ndarray,
    name: str,
) -> np.ndarray:
    """(C,) fraction of N_PE pseudo-experiments at ``truth`` whose FC interval holds it."""
    measured, v_stat = throw(thrower, truth, seed=2024, name=f"pe-{name}", toys=range(N_PE))
    chi2 = grid.chi2(measured, v_stat)
    indices = [p.index for p in points]
    data = np.stack([statistic_at(chi2, 0, i) for i in indices], axis=1)
    theta = grid.axes[0][indices]
    true_value = grid.axes[0][truth.index]
    covered = np.zeros(crit.shape[0])
    for c in range(crit.shape[0]):
        for pe in range(N_PE):
            lo, hi, _ = interval_from(theta, data[pe], crit[c])
            covered[c] += lo <= true_value <= hi
    return covered / N_PE


@pytest.mark.slow
def test_feldman_cousins_covers_the_bounded_gaussian_where_wilks_does_not() -> None:
    grid, thrower = bounded_gaussian()
    points = [gaussian_point(grid, i) for i in range(0, 801, 20)]
    toys, _ = run_toys(grid, thrower, points, ("mu",), seed=1, toys=4000, block=1000)
    crit, _ = critical_values(toys, np.array([0.9]))
    # the critical value: Φ⁻¹(0.9)² = 1.642 on the boundary (half the toys sit at Δχ² = 0), the
    # χ²₁ quantile 2.706 far from it (toys' quantile MC error ≈ 0.06 and 0.08)
    assert crit[0, 0] == pytest.approx(scipy.stats.norm.ppf(0.9) ** 2, abs=0.2)
    assert crit[0, 20] == pytest.approx(scipy.stats.chi2.ppf(0.9, 1), abs=0.25)
    tolerance = 3 * sigma_mc(0.9)
    for mu_index in (0, 60, 200):  # μ = 0 (the boundary), 0.6, 2.0
        truth = gaussian_point(grid, mu_index)
        coverage = _coverage(grid, thrower, points, truth, crit, f"gauss-{mu_index}")[0]
        assert abs(coverage - 0.9) <= tolerance, (mu_index, coverage)
    # Wilks' interval {μ : Δχ² ≤ 2.706} on the boundary covers Φ(1.645) = 0.95, not 0.90
    measured, v_stat = throw(
        thrower, gaussian_point(grid, 0), seed=7, name="wilks", toys=range(N_PE)
    )
    wilks = (statistic_at(grid.chi2(measured, v_stat), 0, 0) <= scipy.stats.chi2.ppf(0.9, 1)).mean()
    assert abs(wilks - 0.95) <= 3 * sigma_mc(0.95)
    assert abs(wilks - 0.9) > tolerance


@pytest.mark.slow
def test_feldman_cousins_covers_the_csi_sin2w_fit(csi: FitProblem) -> None:
    settings = FitSettings(toys=2000, fc_points=11, grid=101, cls=(0.6827, 0.9))
    r = run_fit(csi, [SIN2W], settings)
    assert r.stat == "poisson"
    thrower = _thrower(csi, "auto")
    points = _points(
        csi,
        [SIN2W],
        r.best,
        r.grid,
        thrower,
        0,
        np.array([int(i) for i in np.round(np.linspace(0, 100, 11))]),
    )
    truth = min(points, key=lambda p: abs(p.theta[0] - 0.23857))  # an FC point near the SM value
    coverage = _coverage(r.grid, thrower, points, truth, r.fc[0].crit, "csi")
    for c, cl in enumerate(settings.cls):
        assert abs(coverage[c] - cl) <= 3 * sigma_mc(cl), (cl, coverage[c])
    # the stored construction is the one used here
    assert_allclose(r.fc[0].theta, r.grid.axes[0][[p.index for p in points]], rtol=0, atol=0)


def test_a_whole_fit_gives_fc_intervals_that_hold_the_best_fit(csi: FitProblem) -> None:
    r = run_fit(csi, [SIN2W], FitSettings(toys=200, fc_points=11, grid=101, block=50))
    f = r.fc[0]
    assert f.toys.shape == (11, 200) and np.isfinite(f.toys).all()
    lo68, hi68 = f.intervals[0]
    lo90, hi90 = f.intervals[1]
    assert lo90 <= lo68 < r.best.values[0] < hi68 <= hi90
    assert f.connected.all()
    # the data's statistic at the FC points is the profile at those nodes
    indices = [int(np.argmin(np.abs(r.grid.axes[0] - t))) for t in f.theta]
    minimum = refined_min_1d(r.data_chi2[None])[0]
    assert_allclose(f.data, np.clip(r.data_chi2[indices] - minimum, 0, None), rtol=0, atol=1e-12)
    # the grid's refined minimum is Migrad's to the grid's accuracy (101 nodes: ~3e-5 in Δχ²,
    # far below the toys' Monte-Carlo error on a critical value)
    assert minimum == pytest.approx(r.best.chi2, abs=1e-4)
