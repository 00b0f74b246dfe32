"""Pure, vectorised kernels of ingestion: conditions, channels, lepton kinematics, weights.

No file I/O: each takes and returns numpy arrays (one element per event).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from farm.ingest.mapping import Condition, Range

__all__ = [
    "NEUTRINO_PDG",
    "assign_channels",
    "condition_mask",
    "cosine_to_direction",
    "momentum_magnitude",
    "nucleus_of_pdg",
    "signal_mask",
    "when_mask",
]

NEUTRINO_PDG = (12, -12, 14, -14, 16, -16)
"""PDG codes a ``flavor`` column may hold for an outside generator's events (PDG MC numbering)."""


def condition_mask(values: np.ndarray, condition: Condition) -> np.ndarray:
    """Events whose field satisfies one condition.

    ``x == c`` for a number or boolean, ``x ∈ {c₁, c₂, …}`` for a list, and
    ``min <= x <= max`` for a :class:`~farm.ingest.mapping.Range`. NaN satisfies none.

    >>> condition_mask(np.array([12, 14, -14]), [14, -14]).tolist()
    [False, True, True]
    >>> condition_mask(np.array([199, 200, 249, 250]), Range(min=200, max=249)).tolist()
    [False, True, True, False]
    """
    values = np.asarray(values)
    if isinstance(condition, Range):
        mask = np.ones(values.shape, dtype=bool)
        if condition.min is not None:
            mask &= values >= condition.min
        if condition.max is not None:
            mask &= values <= condition.max
        return mask
    if isinstance(condition, list):
        return np.isin(values, condition)
    return values == condition


def when_mask(
    fields: Mapping[str, np.ndarray], when: Mapping[str, Condition], n: int
) -> np.ndarray:
    """Events for which every condition of ``when`` holds (all events for an empty table)."""
    mask = np.ones(n, dtype=bool)
    for name, condition in when.items():
        mask &= condition_mask(fields[name], condition)
    return mask


def assign_channels(
    fields: Mapping[str, np.ndarray],
    rules: Sequence[tuple[int, Mapping[str, Condition]]],
    default: int | None,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Channel code per event from ordered ``(code, when)`` rules: the first rule that holds wins.

    Returns the int8 channel codes and the mask of events no rule matched (all False when a
    ``default`` code fills them).

    >>> ch, unmatched = assign_channels(
    ...     {"cc": np.array([1, 1, 0]), "qel": np.array([1, 0, 0])},
    ...     [(2, {"cc": 1, "qel": 1}), (3, {"cc": 1})],
    ...     None,
    ...     3,
    ... )
    >>> ch.tolist(), unmatched.tolist()
    ([2, 3, 0], [False, False, True])
    """
    channel = np.zeros(n, dtype=np.int8)
    assigned = np.zeros(n, dtype=bool)
    for code, when in rules:
        hit = when_mask(fields, when, n) & ~assigned
        channel[hit] = code
        assigned |= hit
    if default is not None:
        channel[~assigned] = default
        assigned[:] = True
    return channel, ~assigned


def signal_mask(
    channel: np.ndarray,
    flavor: np.ndarray,
    channels: Sequence[int],
    flavors: Sequence[int] | None,
    when: np.ndarray,
) -> np.ndarray:
    """Signal events: channel in ``channels``, flavour in ``flavors`` (None: any) and ``when``."""
    mask = np.isin(channel, channels) & when
    if flavors is not None:
        mask &= np.isin(flavor, flavors)
    return mask


def momentum_magnitude(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> np.ndarray:
    """|p| = √(px² + py² + pz²), in the unit of the components.

    >>> momentum_magnitude(np.array([3.0]), np.array([0.0]), np.array([4.0])).tolist()
    [5.0]
    """
    px, py, pz = (np.asarray(c, dtype=np.float64) for c in (px, py, pz))
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite inputs: refused as values
        return np.sqrt(px * px + py * py + pz * pz)


def cosine_to_direction(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray, direction: Sequence[float]
) -> np.ndarray:
    """cos θ = p·n̂ / |p| between a momentum and a direction n (normalised here).

    A particle at rest has no direction: its cosine is NaN.

    >>> cosine_to_direction(np.array([0.0, 1.0, 0.0]), np.zeros(3), np.array([2.0, 1.0, 0.0]),
    ...                     (0, 0, 5)).tolist()
    [1.0, 0.7071067811865475, nan]
    """
    n = np.asarray(direction, dtype=np.float64)
    n = n / np.sqrt(n @ n)
    p = momentum_magnitude(px, py, pz)
    out = np.full(p.shape, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite inputs: refused as values
        dot = np.asarray(px) * n[0] + np.asarray(py) * n[1] + np.asarray(pz) * n[2]
        np.divide(dot, p, out=out, where=p > 0)
    return np.clip(out, -1.0, 1.0)


def nucleus_of_pdg(pdg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Z, A) of target PDG codes: nuclei 10LZZZAAAI (PDG MC numbering), 2212 a free proton
    (1, 1), 2112 a free neutron (0, 1); (−1, −1) for any other code.

    >>> z, a = nucleus_of_pdg(np.array([1000180400, 1000060120, 2212, 11]))
    >>> z.tolist(), a.tolist()
    ([18, 6, 1, -1], [40, 12, 1, -1])
    """
    pdg = np.asarray(pdg, dtype=np.int64)
    z = np.full(pdg.shape, -1, dtype=np.int64)
    a = np.full(pdg.shape, -1, dtype=np.int64)
    nucleus = pdg >= 1_000_000_000
    z[nucleus] = (pdg[nucleus] // 10_000) % 1000
    a[nucleus] = (pdg[nucleus] // 10) % 1000
    z[pdg == 2212], a[pdg == 2212] = 1, 1
    z[pdg == 2112], a[pdg == 2112] = 0, 1
    return z, a
