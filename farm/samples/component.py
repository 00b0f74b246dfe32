"""A sample is a set of components, each an importance-sampled event source.

A component draws ``n`` events and returns their columns plus ``w_unit``: an unbiased estimate,
from that single event, of the component's expected number of events over the exposure
(flux × targets × cross section ÷ proposal density). Dividing by the number of generated events
of the component gives ``w_nominal``, so Σ w_nominal converges to the expected count with no
quadrature hidden in the generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Columns", "Component", "SampleModel", "truncated_exponential"]

Columns = dict[str, np.ndarray]


@dataclass(frozen=True, kw_only=True)
class Component:
    name: str
    draw: Callable[[np.random.Generator, int], Columns]
    default_fraction: float


@dataclass(frozen=True, kw_only=True)
class SampleModel:
    """What a generator produces: its components, the columns they fill and the store attributes."""

    components: tuple[Component, ...]
    columns: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    def fractions(self, overrides: dict[str, float]) -> tuple[tuple[str, float], ...]:
        names = [c.name for c in self.components]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            msg = (
                f"[generation.component_fractions] unknown component(s) {', '.join(unknown)}; "
                f"this sample has: {', '.join(names)}"
            )
            raise ValueError(msg)
        out = tuple(
            (c.name, float(overrides.get(c.name, c.default_fraction))) for c in self.components
        )
        if any(f <= 0 for _, f in out):
            msg = (
                "[generation.component_fractions] every component needs a positive share of events"
            )
            raise ValueError(msg)
        return out


def truncated_exponential(
    rng: np.random.Generator, n: int, lo: float, hi: float, slope: float
) -> np.ndarray:
    """Draws from exp(−(x − lo)/slope) on [lo, hi) by inverting its CDF (falling background spectra)."""
    import math

    u = rng.random(n)
    return lo - slope * np.log1p(-u * (1.0 - math.exp(-(hi - lo) / slope)))
