"""Pure, vectorised kernels of ingestion: conditions, channels, lepton kinematics, weights.

No file I/O: each takes and returns numpy arrays (one element per event).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from farm.ingest.mapping import Condition, NormalizationSection, Range

__all__ = [
    "NEUTRINO_PDG",
    "assign_channels",
    "condition_mask",
    "cosine_to_direction",
    "expected_events_per_weight",
    "momentum_magnitude",
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


def expected_events_per_weight(
    normalization: NormalizationSection,
    *,
    sum_weights: float,
    xsec_cm2: float | None = None,
) -> float:
    """Expected events over the exposure per unit of generator weight: w_nominal = this · wght.

    One of three normalisations (:class:`~farm.ingest.mapping.NormalizationSection`):

    - k = events_per_weight;
    - k = N / Σ wght for a given expected count N;
    - k = σ̄ Φ N_T / Σ wght: the expected count is the flux-averaged cross section σ̄ times the
      fluence Φ (ν/cm²) times the number of targets N_T (the event-rate formula, e.g. Formaggio
      & Zeller, Rev. Mod. Phys. 84, 1307 (2012)), shared by the events in proportion
      to their weights, as NuHepMC's "CV" weight and FATX prescribe (Gardiner, Isaacson &
      Pickering, arXiv:2310.13211, G.R.7 and G.C.4).

    ``xsec_cm2`` is σ̄ read from the input when the mapping says ``flux_averaged_xsec_cm2 = "file"``.

    >>> expected_events_per_weight(NormalizationSection(expected_events=300.0), sum_weights=600.0)
    0.5
    """
    if normalization.events_per_weight is not None:
        return normalization.events_per_weight
    if not sum_weights > 0:
        msg = f"the generator weights sum to {sum_weights}; they must sum to a positive number"
        raise ValueError(msg)
    if normalization.expected_events is not None:
        return normalization.expected_events / sum_weights
    xsec = normalization.flux_averaged_xsec_cm2
    if xsec == "file":
        if xsec_cm2 is None:
            msg = (
                'flux_averaged_xsec_cm2 = "file" needs an input that records it '
                "(NuHepMC.FluxAveragedTotalCrossSection); give the value in cm² instead"
            )
            raise ValueError(msg)
        xsec = xsec_cm2
    assert normalization.fluence_per_cm2 is not None and normalization.targets is not None
    assert isinstance(xsec, float)
    return xsec * normalization.fluence_per_cm2 * normalization.targets / sum_weights
