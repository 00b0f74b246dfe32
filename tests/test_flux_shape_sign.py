"""The sign of corr(measured, predicted) under a Φ-preserving or a Φ-moving flux shape.

Pins the result written up in docs/guide-theorists.md ("Φ-preserving or not"), measured by
examples/flux_shape_sign.py through the farm itself (run_universe_set, finish, farm.compare) on an
exact synthetic case: σ ∝ E, a background ∝ 1/E or ∝ E, real-flux-averaged convention. With
Cov(S, P) = −[Cov(ΔB, ΔP) + (N − B̄) Cov(ΔΦ/Φ̄, ΔP)] / (T Φ̄):

* a Φ-preserving tilt: only the background term, so B ∝ 1/E gives a positive correlation and
  B ∝ E a negative one;
* the same shape left free to move Φ: the Φ term dominates, negative when the flux brightens as it
  hardens, positive when it brightens as it softens, whatever the background. The sign flips for
  B ∝ 1/E in the first case and for B ∝ E in the second.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flux_shape_sign.py"


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("flux_shape_sign", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def cases(
    example: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, bool, str], Any]:
    found = example.run_cases(tmp_path_factory.mktemp("flux-shape-sign"))
    return {(c.shape, c.preserve, c.background): c for c in found}


SHAPES = ("harder-brighter", "softer-brighter", "kernel")


@pytest.mark.parametrize("shape", SHAPES)
def test_a_phi_preserving_shape_correlates_as_the_background_says(cases, shape: str) -> None:
    inverse, linear = cases[(shape, True, "1/E")], cases[(shape, True, "E")]
    for c in (inverse, linear):
        assert c.phi_spread <= 1e-12
        # Φ fixed: S = (N − B)/(T Φ̄) is linear in B, so the background term is all of Cov(S, P)
        assert c.covariance == pytest.approx(c.background_term, rel=1e-9, abs=0)
    assert inverse.correlation > 0.95  # a harder flux lowers B ∝ 1/E: S and P rise together
    assert linear.correlation < -0.95  # a harder flux raises B ∝ E: S falls as P rises
    # which decides whether ignoring the correlation lowers or raises the chi-square
    assert inverse.chi2_uncorrelated < inverse.chi2_joint / 2
    assert linear.chi2_uncorrelated > linear.chi2_joint * 1.5


@pytest.mark.parametrize(
    ("shape", "sign", "flips_for"),
    [("harder-brighter", -1.0, "1/E"), ("softer-brighter", +1.0, "E")],
)
def test_a_shape_that_moves_phi_correlates_as_its_brightening_says(
    cases, shape: str, sign: float, flips_for: str
) -> None:
    for background in ("1/E", "E"):
        free, kept = cases[(shape, False, background)], cases[(shape, True, background)]
        assert free.phi_spread > 0.2
        # the Φ term, −(N − B̄) Cov(ΔΦ/Φ̄, ΔP)/(T Φ̄), has the sign of the brightening and dominates
        assert np.sign(free.phi_term) == sign
        assert abs(free.phi_term) > abs(free.background_term)
        assert np.sign(free.covariance) == sign
        assert sign * free.correlation > 0.95
        # the first-order formula holds to 10 % (the ratio S = (N − B)/(T Φ) is not linear)
        total = free.background_term + free.phi_term
        assert abs(total / free.covariance - 1.0) < 0.10
        flipped = np.sign(free.correlation) != np.sign(kept.correlation)
        assert flipped == (background == flips_for), (shape, background)


def test_a_generic_kernel_shape_loses_most_of_its_correlation_when_it_moves_phi(cases) -> None:
    """The ln E kernel couples brightness to hardness only weakly (Φ term small): moving Φ
    mostly adds variance the prediction does not share, so |corr| drops from ≈1 to below 0.3."""
    for background in ("1/E", "E"):
        free, kept = cases[("kernel", False, background)], cases[("kernel", True, background)]
        assert abs(kept.correlation) > 0.95
        assert abs(free.correlation) < 0.3
        assert free.phi_term < 0  # it brightens slightly as it hardens


def test_the_report_prints_every_case(example: ModuleType, cases) -> None:
    text = example.report(list(cases.values()))
    assert len(text.splitlines()) == 4 + 12
    assert "harder-brighter   yes     1/E" in text
