"""Per-event weights of the knobs that reweight an event: cross-section parameters,
normalisations and the efficiency scale.

Each weight knob maps its shift in a block of universes (values[u]) and a block of events to a
weight[u, n]. The knobs that move the readout instead (quenching, light yield, energy scale,
threshold) re-run the detector response: farm.reweight.readout_shift.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from farm.physics import cevns
from farm.physics.constants import SIN2W_LOW_Q2
from farm.reweight.readout_shift import RESPONSE_KNOBS, Readout
from farm.reweight.readout_shift import readout_columns as _readout_columns
from farm.store.schema import Channel

__all__ = [
    "CATEGORICAL_KNOBS",
    "CHANNEL_NORM",
    "DETECTION_KNOBS",
    "FUSED_EXPANSIONS",
    "RESPONSE_KNOBS",
    "WEIGHT_KNOBS",
    "KnobContext",
    "categorical_columns",
    "knob_weight",
    "radius_expansion",
    "required_columns",
]

Columns = Mapping[str, np.ndarray]

_NORM_CHANNEL = {
    "noqe_norm": Channel.CC_OTHER,
    "ibd_norm": Channel.IBD,
    "brn_norm": Channel.BRN,
    "nin_norm": Channel.NIN,
    "ssb_norm": Channel.SSB,
    "accidental_norm": Channel.ACCIDENTAL,
}
CATEGORICAL_KNOBS: dict[str, tuple[str, ...]] = {
    "sin2w": ("channel", "target_a"),
    "efficiency": ("channel",),
    **dict.fromkeys(_NORM_CHANNEL, ("channel",)),
}
"""Knobs whose factor depends only on these discrete columns of an event (exactly)."""
DETECTION_KNOBS = frozenset({"efficiency", *RESPONSE_KNOBS})
"""Knobs that change the probability of selecting an event, not how many are produced: they
act on the selected (reco) histograms only, never the truth counts (so ε = reco / truth moves)."""
_MEASURED_OFF_BEAM = (Channel.SSB, Channel.ACCIDENTAL)


@dataclass(frozen=True, kw_only=True)
class KnobContext:
    """What the knobs need to know about the sample beyond the event columns: its readout and
    the nominal values of the physical parameters they shift."""

    observable: str
    nuclei_by_a: Mapping[int, str]
    readout: Readout | None = None
    couplings: str = "corrected"
    sin2w: float = SIN2W_LOW_Q2
    neutron_radius_scale: float = 1.0
    ccqe_ma_mev: float = 1000.0
    channels: Mapping[str, int] = field(default_factory=lambda: {c.name: int(c) for c in Channel})
    """Channel name → code: the built-in ones and those the store declares (``channel_norm``)."""


CHANNEL_NORM = "channel_norm"
"""The knob that normalises the events of given channels; its key in a universe set is
``channel_norm:NAME+NAME…`` (:func:`farm.systematics.universes.knob_key`)."""


def categorical_columns(parameter: str) -> tuple[str, ...] | None:
    """The discrete columns a knob's factor depends on (None: it depends on more)."""
    if parameter.startswith(CHANNEL_NORM + ":"):
        return ("channel",)
    return CATEGORICAL_KNOBS.get(parameter)


def _channel_norm(parameter: str) -> Callable[[np.ndarray, Columns, KnobContext], np.ndarray]:
    names = parameter.split(":", 1)[1].split("+")

    def weight(values: np.ndarray, cols: Columns, ctx: KnobContext) -> np.ndarray:
        unknown = [n for n in names if n not in ctx.channels]
        if unknown:
            known = ", ".join(sorted(ctx.channels))
            msg = f"channel_norm: channel(s) {', '.join(unknown)} are neither built in nor declared by the store ({known})"
            raise ValueError(msg)
        sel = np.isin(cols["channel"], [ctx.channels[n] for n in names])
        return 1.0 + values[:, None] * sel[None, :]

    return weight


def required_columns(parameter: str, ctx: KnobContext | None = None) -> tuple[str, ...]:
    if parameter in RESPONSE_KNOBS:
        return _readout_columns(parameter, None if ctx is None else ctx.readout)
    return {
        "cevns_rms_radius": ("recoil_mev", "target_a", "channel"),
        "sin2w": ("target_a", "channel"),
        "ccqe_ma_mev": ("enu_true", "q2_mev2", "channel"),
        "efficiency": ("selected", "channel"),
    }.get(parameter, ("channel",))


def _cevns_radius(values: np.ndarray, cols: Columns, ctx: KnobContext) -> np.ndarray:
    """dσ/dT(R')/dσ/dT(R) = F²(q; R')/F²(q; R), R = the sample's Helm rms radius (its
    ``[physics] neutron_radius_scale`` times the standard one), R' = R (1 + v): kinematics, weak
    charge and the Helm skin cancel,
    leaving [j(q R₀')/j(q R₀)]² with j(x) = 3 j₁(x)/x (farm.physics.cevns.helm_radius_weight),
    evaluated for all values and nuclei at once (farm.reweight.helm.helm_ratio_table).
    Events of other channels keep q = 0, where the ratio is exactly 1."""
    from farm.physics import nuclei
    from farm.physics.constants import HBARC_MEV_FM
    from farm.reweight.helm import helm_ratio_table

    n = cols["channel"].size
    q_fm = np.zeros(n)
    group = np.zeros(n, dtype=np.int64)
    shifts = np.asarray(values, dtype=np.float64)
    r0_nominal = [1.0]
    r0_shifted = [np.ones(shifts.size)]
    cevns_events = cols["channel"] == Channel.CEVNS
    for a, name in ctx.nuclei_by_a.items():
        sel = cevns_events & (cols["target_a"] == a)
        if not sel.any():
            continue
        group[sel] = len(r0_nominal)
        q_fm[sel] = (
            cevns.momentum_transfer_mev(cols["recoil_mev"][sel], nuclei.get_target(name).mass_mev)
            / HBARC_MEV_FM
        )
        nominal, shifted = _helm_radii(a, shifts, ctx)
        r0_nominal.append(nominal)
        r0_shifted.append(shifted)
    weight = helm_ratio_table(q_fm, group, np.array(r0_nominal), np.stack(r0_shifted))
    weight[shifts == 0.0] = 1.0
    return weight


def _helm_radii(a: int, shifts: np.ndarray, ctx: KnobContext) -> tuple[float, np.ndarray]:
    """(nominal R₀, R₀ at every shifted rms radius R (1 + v)) of the nucleus of mass number A."""
    radius = float(cevns.helm_rms_radius_fm(a)) * ctx.neutron_radius_scale
    # the nominal R₀ exactly as the generator computed it (standard R₀ at scale 1)
    nominal = None if ctx.neutron_radius_scale == 1.0 else radius
    return float(cevns.helm_r0_fm(a, nominal)), cevns.helm_r0_fm(a, radius * (1.0 + shifts))


def radius_expansion(
    values: np.ndarray,
    cols: Columns,
    ctx: KnobContext,
    fill: tuple[np.ndarray, np.ndarray, np.ndarray, int],
    lagrange: np.ndarray,
    tolerance: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The neutron-radius knob's expansion on a block in one compiled pass
    (farm.reweight.helm.helm_expansion_fill): ``values`` are its K nodes then C check points,
    ``fill`` is (w0, reco slot, truth slot, slots per row). Gives the (K, slots) node sums and
    the active events that miss the check, the bits of :func:`knob_weight` then
    ``interpolation_error`` and ``slot_fill``; None where that pass does not apply (no numba, a
    mass number beyond the lookup, a shifted radius that :func:`_cevns_radius` would refuse for
    a nucleus in the block: the generic path then says so)."""
    from farm.physics import nuclei
    from farm.reweight.helm import helm_expansion_fill

    shifts = np.asarray(values, dtype=np.float64)
    by_a = dict(ctx.nuclei_by_a)
    if any(not 0 < a < 1024 for a in by_a):
        return None
    group_of_a = np.zeros(max(by_a, default=0) + 1, dtype=np.int64)
    two_m, r0_nominal, r0_shifted = [0.0], [1.0], [np.ones(shifts.size)]
    try:
        for a, name in by_a.items():
            group_of_a[a] = len(two_m)
            two_m.append(2.0 * float(nuclei.get_target(name).mass_mev))
            nominal, shifted = _helm_radii(a, shifts, ctx)
            r0_nominal.append(nominal)
            r0_shifted.append(shifted)
    except ValueError:
        return None
    w0, slot, slot_truth, n_slots = fill
    groups = (np.array(two_m), np.array(r0_nominal), np.stack(r0_shifted))
    return helm_expansion_fill(
        (cols["recoil_mev"], cols["channel"], cols["target_a"]),
        w0,
        slot,
        slot_truth,
        n_slots,
        (int(Channel.CEVNS), group_of_a, *groups),
        shifts == 0.0,
        lagrange,
        tolerance,
    )


FUSED_EXPANSIONS = {"cevns_rms_radius": radius_expansion}
"""Knobs whose expansion (weights at the nodes and checks, the check, the node fill) has a
compiled pass of its own with the generic path's bits; ``(values, cols, ctx, (w0, slot,
slot_truth, n_slots), lagrange, tolerance) → (node sums, events that miss) or None``."""


def _sin2w(values: np.ndarray, cols: Columns, ctx: KnobContext) -> np.ndarray:
    """Q_W(s + v)²/Q_W(s)² in the sample's coupling scheme at its sin²θ_W s."""
    weight = np.ones((values.size, cols["channel"].size))
    for a, name in ctx.nuclei_by_a.items():
        sel = (cols["channel"] == Channel.CEVNS) & (cols["target_a"] == a)
        factors = _weak_charge_ratios(name, ctx.couplings, ctx.sin2w, values.tobytes())
        weight[:, sel] = factors[:, None]
    return weight


@functools.lru_cache(maxsize=256)
def _weak_charge_ratios(name: str, couplings: str, sin2w: float, raw: bytes) -> np.ndarray:
    """Q_W(s + v)²/Q_W(s)² of one nucleus for the values v (float64 bytes): the same for
    every block of a chunk, so computed once per process."""
    nominal = cevns.weak_charge(name, couplings, sin2w) ** 2  # type: ignore[arg-type]
    factors = np.array(
        [
            cevns.weak_charge(name, couplings, sin2w + v) ** 2 / nominal  # type: ignore[arg-type]
            for v in np.frombuffer(raw, dtype=np.float64)
        ]
    )
    factors.flags.writeable = False
    return factors


def _ccqe_ma(values: np.ndarray, cols: Columns, ctx: KnobContext) -> np.ndarray:
    """dσ/dQ²(M_A + v)/dσ/dQ²(M_A) of each CCQE event (farm.physics.ccqe.dxsec_dq2, through
    farm.reweight.ccqe_ratio: the kinematics once per event, not once per value)."""
    from farm.reweight.ccqe_ratio import ccqe_ratio_table

    weight = np.ones((values.size, cols["channel"].size))
    sel = cols["channel"] == Channel.CCQE
    table = ccqe_ratio_table(
        cols["enu_true"][sel], cols["q2_mev2"][sel], ctx.ccqe_ma_mev, ctx.ccqe_ma_mev + values
    )
    table[values == 0.0] = 1.0
    weight[:, sel] = table
    return weight


def _normalisation(channel: Channel) -> Callable[[np.ndarray, Columns, KnobContext], np.ndarray]:
    def weight(values: np.ndarray, cols: Columns, ctx: KnobContext) -> np.ndarray:
        sel = cols["channel"] == channel
        return 1.0 + values[:, None] * sel[None, :]

    return weight


def _efficiency(values: np.ndarray, cols: Columns, ctx: KnobContext) -> np.ndarray:
    sel = ~np.isin(cols["channel"], _MEASURED_OFF_BEAM)
    return 1.0 + values[:, None] * sel[None, :]


_WEIGHTS: dict[str, Callable[[np.ndarray, Columns, KnobContext], np.ndarray]] = {
    "cevns_rms_radius": _cevns_radius,
    "sin2w": _sin2w,
    "ccqe_ma_mev": _ccqe_ma,
    **{name: _normalisation(ch) for name, ch in _NORM_CHANNEL.items()},
    "efficiency": _efficiency,
}
WEIGHT_KNOBS = frozenset(_WEIGHTS)
"""Knobs that reweight an event (the others re-run its detector response)."""


def knob_weight(parameter: str, values: np.ndarray, cols: Columns, ctx: KnobContext) -> np.ndarray:
    """The weight of each event of the block when ``parameter`` is shifted by ``values[u]``."""
    if parameter.startswith(CHANNEL_NORM + ":"):
        return _channel_norm(parameter)(np.asarray(values, dtype=np.float64), cols, ctx)
    try:
        weight = _WEIGHTS[parameter]
    except KeyError:
        if parameter in RESPONSE_KNOBS:
            msg = (
                f"{parameter!r} moves the readout, not the weight: use farm.reweight.readout_shift"
            )
        else:
            msg = f"unknown knob {parameter!r}; known: {', '.join([*_WEIGHTS, *RESPONSE_KNOBS])}"
        raise ValueError(msg) from None
    return weight(np.asarray(values, dtype=np.float64), cols, ctx)
