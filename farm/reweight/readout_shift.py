"""Detector knobs that move an event's readout: quenching, light yield, energy scale, threshold.

A shift of one of these parameters re-runs the detector response of every event it affects,
with the event's own stored random numbers (farm.physics.response): the readout value moves,
and with it the efficiency turn-on, the ROI and the reco bin, exactly as in a sample regenerated
with the parameter shifted and the same seed.

- keVee readout (CEvNS): x' = E (1 + δ_E) · max(μ' + σ(μ') z, 0), μ' = μ (1 + δ_Q), with the
  stored resolution draw z; selected when x' − (shift + δ_T) ≥ θ, the stored threshold.
- photoelectron readout (CEvNS): the count k stays; a change of its mean λ = LY μ to
  λ' = λ (1 + δ_Q)(1 + δ_LY) reweights the event by P(k; λ')/P(k; λ) = (λ'/λ)^k e^{−(λ'−λ)}, an
  unbiased likelihood ratio for every function of k (efficiency, ROI, binning), and a turn-on
  shift re-selects it: k − (shift + δ_T) ≥ θ.
- a readout a knob can only rescale (IBD prompt energy, nuSCOPE tagged energy, ingested
  samples), :class:`ScaledReadout`: x' = x (1 + δ_E); its selection does not depend on x.

Events measured off-beam (steady-state, accidentals) are never moved; quenching moves nuclear
recoils only (CEvNS, beam-related and neutrino-induced neutrons).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from farm.physics.response import CevnsResponse, poisson_ratio
from farm.store.schema import Channel

__all__ = [
    "RESPONSE_KNOBS",
    "Readout",
    "ScaledReadout",
    "Shifted",
    "affected",
    "check_response_knob",
    "readout_columns",
    "shifted_readout",
]

RESPONSE_KNOBS = ("quenching", "light_yield", "energy_scale", "threshold")
"""Knobs whose shift re-runs the detector response of an event (never its truth)."""

_NUCLEAR_RECOIL = (Channel.CEVNS, Channel.BRN, Channel.NIN)
_MEASURED_OFF_BEAM = (Channel.SSB, Channel.ACCIDENTAL)

Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True, kw_only=True)
class ScaledReadout:
    """A readout that the ``energy_scale`` knob rescales, x' = x (1 + δ), and nothing else moves:
    its selection does not depend on it (IBD prompt energy, nuSCOPE tagged energy)."""

    column: str


Readout = CevnsResponse | ScaledReadout


@dataclass(frozen=True, kw_only=True)
class Shifted:
    """The readout of a block under shifted parameters; None where nothing changes."""

    value: np.ndarray | None
    """(P, n) readout value (float64)."""
    selected: np.ndarray | None
    """(P, n) selection."""
    weight: np.ndarray | None
    """(P, n) likelihood-ratio weight of a photoelectron count (reco level only)."""


def affected(parameter: str, cols: Columns) -> np.ndarray:
    """The events a response knob moves: nuclear recoils for quenching, every beam event else."""
    channel = cols["channel"]
    if parameter == "quenching":
        return np.isin(channel, _NUCLEAR_RECOIL)
    return ~np.isin(channel, _MEASURED_OFF_BEAM)


def check_response_knob(parameter: str, readout: Readout | None, observable: str) -> None:
    """Refuse a response knob that the sample's readout cannot carry, saying what to use."""
    if readout is None:
        msg = f"the {parameter!r} knob needs a detector readout; this sample has none"
        raise ValueError(msg)
    if isinstance(readout, ScaledReadout):
        if parameter != "energy_scale":
            msg = (
                f"the {parameter!r} knob moves a CEvNS detector's response (quenched energy, "
                f"photoelectrons, turn-on); this sample's readout {readout.column!r} can only be "
                "rescaled: use parameter = 'energy_scale'"
            )
            raise ValueError(msg)
        return
    if observable != readout.column:
        msg = (
            f"the {parameter!r} knob moves the readout {readout.column!r}, but [binning] "
            f"observable is {observable!r}: bin the readout, or drop the knob"
        )
        raise ValueError(msg)
    if parameter == "energy_scale" and readout.readout == "pe":
        msg = (
            "a photoelectron count has no energy scale: use parameter = 'light_yield' (or "
            "'quenching') for the conversion of energy into photoelectrons"
        )
        raise ValueError(msg)
    if parameter == "light_yield" and readout.readout == "kevee":
        msg = (
            "a keVee readout has no light yield: use parameter = 'energy_scale' (a calibration "
            "scale of the keVee value) or 'quenching'"
        )
        raise ValueError(msg)


def readout_columns(parameter: str, readout: Readout | None) -> tuple[str, ...]:
    """The columns a response knob reads."""
    if isinstance(readout, CevnsResponse):
        base = ("channel", readout.column, "selection_threshold")
        if parameter == "threshold":  # moves the turn-on, not the readout
            return base
        extra = ("resolution_z",) if readout.readout == "kevee" else ()
        return (*base, "recoil_mev", "target_a", *extra)
    if isinstance(readout, ScaledReadout):
        return ("channel", readout.column)
    return ("channel",)


def _shift(shifts: Mapping[str, np.ndarray], name: str, mask: np.ndarray) -> np.ndarray | None:
    value = shifts.get(name)
    if value is None:
        return None
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    return v * mask[None, :]


def _visible(cols: Columns, readout: CevnsResponse) -> np.ndarray:
    """μ, the quenched energy in keVee (``cols["visible_kevee"]`` when a caller computed it)."""
    if "visible_kevee" in cols:
        return cols["visible_kevee"]
    return readout.quenching.visible_kevee(cols["recoil_mev"], cols["target_a"])


def shifted_readout(shifts: Mapping[str, np.ndarray], cols: Columns, readout: Readout) -> Shifted:
    """The readout of every event under the parameter shifts ``shifts[name]``: arrays of shape (P,)
    (one value per universe) or (P, n) (one per universe and event), for names in
    :data:`RESPONSE_KNOBS`; absent names are not shifted."""
    beam = affected("energy_scale", cols)
    if isinstance(readout, ScaledReadout):
        scale = _shift(shifts, "energy_scale", beam)
        if scale is None:
            return Shifted(value=None, selected=None, weight=None)
        return Shifted(
            value=cols[readout.column].astype(np.float64)[None, :] * (1.0 + scale),
            selected=None,
            weight=None,
        )
    nuclear = affected("quenching", cols)
    dq = _shift(shifts, "quenching", nuclear)
    dt = _shift(shifts, "threshold", beam)
    theta = cols["selection_threshold"]
    if readout.readout == "pe":
        k = cols[readout.column]
        weight = None
        dly = _shift(shifts, "light_yield", beam)
        if dq is not None or dly is not None:
            factor = (1.0 + (0.0 if dq is None else dq)) * (1.0 + (0.0 if dly is None else dly))
            weight = poisson_ratio(
                k[None, :],
                readout.light_yield_pe_per_kevee * _visible(cols, readout)[None, :],
                factor,
            )
        selected = None if dt is None else readout.selected(k[None, :], theta[None, :], dt)
        return Shifted(value=None, selected=selected, weight=weight)
    de = _shift(shifts, "energy_scale", beam)
    if dq is None and de is None:
        value = None
        x = cols[readout.column][None, :]
    else:
        mu = _visible(cols, readout)[None, :]
        if dq is not None:
            mu = mu * (1.0 + dq)
        scale = readout.energy_scale * (1.0 + (0.0 if de is None else de))
        z = cols["resolution_z"].astype(np.float64)[None, :]
        moved = scale * np.maximum(mu + readout.sigma_kevee(mu) * z, 0.0)
        value = np.where(beam[None, :], moved, cols[readout.column][None, :])
        x = value
    selected = None
    if value is not None or dt is not None:
        selected = readout.selected(x, theta[None, :], 0.0 if dt is None else dt)
    return Shifted(value=value, selected=selected, weight=None)
