"""Per-event effects of continuous knobs: weight factors and lateral shifts of the observable.

Each knob maps its shift in a block of universes (values[u]) and a block of events to
``(weight[u, n] or None, reco_scale[u, n] or None)``: a multiplicative weight and a multiplicative
scale of the reconstructed observable. None means "no effect of that kind".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from farm.physics import ccqe, cevns
from farm.physics.constants import SIN2W_LOW_Q2
from farm.store.schema import Channel

__all__ = [
    "CATEGORICAL_KNOBS",
    "DETECTION_KNOBS",
    "LATERAL_KNOBS",
    "READOUT_VALUE_KNOBS",
    "KnobContext",
    "knob_effect",
    "required_columns",
]

Columns = Mapping[str, np.ndarray]
Effect = tuple[np.ndarray | None, np.ndarray | None]

_NORM_CHANNEL = {
    "noqe_norm": Channel.CC_OTHER,
    "ibd_norm": Channel.IBD,
    "brn_norm": Channel.BRN,
    "nin_norm": Channel.NIN,
    "ssb_norm": Channel.SSB,
    "accidental_norm": Channel.ACCIDENTAL,
}
_NUCLEAR_RECOIL = (Channel.CEVNS, Channel.BRN, Channel.NIN)
LATERAL_KNOBS = frozenset({"energy_scale", "quenching", "light_yield"})
"""Knobs that move the observable (a scale of the reco value), not the weight."""
CATEGORICAL_KNOBS: dict[str, tuple[str, ...]] = {
    "sin2w": ("channel", "target_a"),
    "efficiency": ("channel",),
    **dict.fromkeys(_NORM_CHANNEL, ("channel",)),
}
"""Knobs whose factor depends only on these discrete columns of an event (exactly)."""
DETECTION_KNOBS = frozenset({"threshold", "efficiency"})
"""Knobs whose weight changes the probability of selecting an event, not how many are produced:
they reweight the selected (reco) histograms only, never the truth counts (so ε = reco / truth moves)."""
_MEASURED_OFF_BEAM = (Channel.SSB, Channel.ACCIDENTAL)
READOUT_VALUE_KNOBS = frozenset({"threshold"})
"""Knobs whose factor on an event they affect depends only on its readout value (ε(x − v)/ε(x)),
and is 1 on the others (:func:`readout_value_affected`): on a discrete readout (photoelectron
counts) a block's events fall into a few exact classes."""


def readout_value_affected(parameter: str, cols: Columns) -> np.ndarray:
    """The events a :data:`READOUT_VALUE_KNOBS` knob reweights: selected beam events."""
    if parameter not in READOUT_VALUE_KNOBS:
        msg = (
            f"{parameter!r} is not a readout-value knob ({', '.join(sorted(READOUT_VALUE_KNOBS))})"
        )
        raise ValueError(msg)
    return cols["selected"] & ~np.isin(cols["channel"], _MEASURED_OFF_BEAM)


@dataclass(frozen=True, kw_only=True)
class KnobContext:
    """What the knobs need to know about the sample beyond the event columns."""

    observable: str
    nuclei_by_a: Mapping[int, str]
    efficiency: Callable[[np.ndarray], np.ndarray] | None = None
    ccqe_ma_mev: float = 1000.0


def required_columns(parameter: str) -> tuple[str, ...]:
    return {
        "cevns_rms_radius": ("recoil_mev", "target_a", "channel"),
        "sin2w": ("target_a", "channel"),
        "ccqe_ma_mev": ("enu_true", "q2_mev2", "channel"),
        "threshold": ("selected",),
        "efficiency": ("selected", "channel"),
    }.get(parameter, ("channel",))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.ones_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _cevns_radius(values: np.ndarray, cols: Columns, ctx: KnobContext) -> Effect:
    """dσ/dT(R')/dσ/dT(R) = F²(q; R')/F²(q; R): kinematics, weak charge and the Helm skin cancel,
    leaving [j(q R₀')/j(q R₀)]² with j(x) = 3 j₁(x)/x (farm.physics.cevns.helm_radius_weight),
    evaluated for all values and nuclei at once (farm.reweight.compiled.helm_ratio_table).
    Events of other channels keep q = 0, where the ratio is exactly 1."""
    from farm.physics import nuclei
    from farm.physics.constants import HBARC_MEV_FM
    from farm.reweight.compiled import helm_ratio_table

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
        r0_nominal.append(float(cevns.helm_r0_fm(a)))
        r0_shifted.append(cevns.helm_r0_fm(a, float(cevns.helm_rms_radius_fm(a)) * (1.0 + shifts)))
    weight = helm_ratio_table(q_fm, group, np.array(r0_nominal), np.stack(r0_shifted))
    weight[shifts == 0.0] = 1.0
    return weight, None


def _sin2w(values: np.ndarray, cols: Columns, ctx: KnobContext) -> Effect:
    weight = np.ones((values.size, cols["channel"].size))
    for a, name in ctx.nuclei_by_a.items():
        sel = (cols["channel"] == Channel.CEVNS) & (cols["target_a"] == a)
        nominal = cevns.weak_charge(name, "tree", SIN2W_LOW_Q2) ** 2
        factors = np.array(
            [cevns.weak_charge(name, "tree", SIN2W_LOW_Q2 + v) ** 2 / nominal for v in values]
        )
        weight[:, sel] = factors[:, None]
    return weight, None


def _ccqe_ma(values: np.ndarray, cols: Columns, ctx: KnobContext) -> Effect:
    weight = np.ones((values.size, cols["channel"].size))
    sel = cols["channel"] == Channel.CCQE
    e, q2 = cols["enu_true"][sel], cols["q2_mev2"][sel]
    nominal = ccqe.dxsec_dq2(e, q2, ma_mev=ctx.ccqe_ma_mev)
    for u, v in enumerate(values):
        if v != 0.0:
            weight[u, sel] = _ratio(ccqe.dxsec_dq2(e, q2, ma_mev=ctx.ccqe_ma_mev + v), nominal)
    return weight, None


def _normalisation(channel: Channel) -> Callable[[np.ndarray, Columns, KnobContext], Effect]:
    def effect(values: np.ndarray, cols: Columns, ctx: KnobContext) -> Effect:
        sel = cols["channel"] == channel
        return 1.0 + values[:, None] * sel[None, :], None

    return effect


def _lateral(
    channels: tuple[Channel, ...] | None,
) -> Callable[[np.ndarray, Columns, KnobContext], Effect]:
    """Scale the observable by (1 + v) for the given channels (all but off-beam ones when None)."""

    def effect(values: np.ndarray, cols: Columns, ctx: KnobContext) -> Effect:
        ch = cols["channel"]
        sel = np.isin(ch, channels) if channels is not None else ~np.isin(ch, _MEASURED_OFF_BEAM)
        return None, 1.0 + values[:, None] * sel[None, :]

    return effect


def _threshold(values: np.ndarray, cols: Columns, ctx: KnobContext) -> Effect:
    """Shift the efficiency turn-on by v readout units: selected events get ε(x − v)/ε(x)."""
    if ctx.efficiency is None:
        msg = "the 'threshold' knob needs a sample with an efficiency curve (a CEvNS detector)"
        raise ValueError(msg)
    x = cols[ctx.observable].astype(np.float64)
    sel = readout_value_affected("threshold", cols)
    nominal = ctx.efficiency(x)
    shifted = ctx.efficiency((x[None, :] - values[:, None]).ravel()).reshape(values.size, x.size)
    return np.where(
        sel[None, :], _ratio(shifted, np.broadcast_to(nominal, shifted.shape)), 1.0
    ), None


def _efficiency(values: np.ndarray, cols: Columns, ctx: KnobContext) -> Effect:
    sel = ~np.isin(cols["channel"], _MEASURED_OFF_BEAM)
    return 1.0 + values[:, None] * sel[None, :], None


_EFFECTS: dict[str, Callable[[np.ndarray, Columns, KnobContext], Effect]] = {
    "cevns_rms_radius": _cevns_radius,
    "sin2w": _sin2w,
    "ccqe_ma_mev": _ccqe_ma,
    **{name: _normalisation(ch) for name, ch in _NORM_CHANNEL.items()},
    "energy_scale": _lateral(None),
    "quenching": _lateral(_NUCLEAR_RECOIL),
    "light_yield": _lateral(None),
    "threshold": _threshold,
    "efficiency": _efficiency,
}


def knob_effect(parameter: str, values: np.ndarray, cols: Columns, ctx: KnobContext) -> Effect:
    """The effect of shifting ``parameter`` by ``values[u]`` on each event of the block."""
    try:
        effect = _EFFECTS[parameter]
    except KeyError:
        msg = f"unknown knob {parameter!r}; known: {', '.join(_EFFECTS)}"
        raise ValueError(msg) from None
    return effect(np.asarray(values, dtype=np.float64), cols, ctx)
