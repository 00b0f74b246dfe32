"""MC-statistics bootstrap: a Poisson(1) weight per (event_id, replica) from a counter-based hash.

The weight of an event in a replica is a pure function of (key, event_id, replica), so it is the
same however events are sharded, ordered or distributed (docs/internals.md §3).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["POISSON_THRESHOLDS", "event_hash", "key_hash", "poisson_weights", "splitmix64"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _poisson_one_cdf(k: int) -> float:
    """P(K ≤ k) for K ~ Poisson(1): e⁻¹ Σ_{i ≤ k} 1/i! (exactly summed; no scipy import on a
    worker's start-up path)."""
    return math.exp(-1.0) * math.fsum(1.0 / math.factorial(i) for i in range(k + 1))


# P(k ≤ K) of Poisson(1) as 32-bit thresholds: the weight is the number of thresholds the
# hash's top 32 bits reach. Terms below 2⁻³² (k ≥ 13) cannot be resolved and are dropped.
_THRESHOLDS = np.array(
    [t for t in (round(_poisson_one_cdf(k) * 2.0**32) for k in range(13)) if t < 2**32],
    dtype=np.uint64,
)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _mix_inplace(z: np.ndarray, scratch: np.ndarray) -> None:
    """splitmix64's finaliser applied in place (no temporaries: this is the bootstrap's hot loop)."""
    np.right_shift(z, np.uint64(30), out=scratch)
    np.bitwise_xor(z, scratch, out=z)
    np.multiply(z, _M1, out=z)
    np.right_shift(z, np.uint64(27), out=scratch)
    np.bitwise_xor(z, scratch, out=z)
    np.multiply(z, _M2, out=z)
    np.right_shift(z, np.uint64(31), out=scratch)
    np.bitwise_xor(z, scratch, out=z)


POISSON_THRESHOLDS = _THRESHOLDS


def key_hash(key: int) -> np.uint64:
    """mix(key): the bootstrap key's part of every event's hash."""
    return splitmix64(np.array([key], dtype=np.uint64))[0]


def event_hash(event_id: np.ndarray, key: int) -> np.ndarray:
    """The per-event part of the bootstrap hash: mix(event_id ⊕ mix(key))."""
    ids = np.asarray(event_id, dtype=np.uint64)
    return splitmix64(ids ^ key_hash(key))


def poisson_weights(event_id: np.ndarray, replicas: np.ndarray, key: int) -> np.ndarray:
    """Poisson(1) weights, shape (len(replicas), len(event_id)), as float64.

    h = mix(mix(event_id ⊕ mix(key)) + (replica + 1)·φ) with φ the golden-ratio constant and mix
    the SplitMix64 finaliser; the weight is the smallest k with 2³²·P(K ≤ k) > h >> 32.
    """
    ids = np.asarray(event_id, dtype=np.uint64)
    base = event_hash(ids, key)
    reps = np.asarray(replicas, dtype=np.uint64)
    z = np.empty((reps.size, ids.size), dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.add(base[None, :], ((reps + np.uint64(1)) * _GOLDEN)[:, None], out=z)
    scratch = np.empty_like(z)
    _mix_inplace(z, scratch)
    top = (z >> np.uint64(32)).astype(np.uint32)
    counts = np.zeros(z.shape, dtype=np.uint8)
    for threshold in _THRESHOLDS:
        counts += top >= np.uint32(threshold)
    return counts.astype(np.float64)
