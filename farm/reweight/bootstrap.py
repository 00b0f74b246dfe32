"""MC-statistics bootstrap: a Poisson(1) weight per (event_id, replica) from a counter-based hash.

The weight of an event in a replica is a pure function of (key, event_id, replica), so it is the
same however events are sharded, ordered or distributed (design.md §5).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import poisson

__all__ = ["poisson_weights", "splitmix64"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
# Poisson(1) cumulative probabilities as 53-bit thresholds; 20 terms reach 1 − 1e-19.
_CDF = poisson.cdf(np.arange(20), 1.0)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def poisson_weights(event_id: np.ndarray, replicas: np.ndarray, key: int) -> np.ndarray:
    """Poisson(1) weights, shape (len(replicas), len(event_id)), as float64.

    u = splitmix64(splitmix64(event_id ⊕ key') + replica) / 2⁶⁴ is uniform; the weight is the
    smallest k with CDF(k) > u.
    """
    ids = np.asarray(event_id, dtype=np.uint64)
    key_mixed = splitmix64(np.array([key], dtype=np.uint64))[0]
    base = splitmix64(ids ^ key_mixed)
    reps = np.asarray(replicas, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        bits = splitmix64(base[None, :] + reps * _GOLDEN)
    u = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return np.searchsorted(_CDF, u, side="right").astype(np.float64)
