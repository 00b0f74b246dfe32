"""SNS π-DAR CEvNS samples (sns-csi, sns-lar): prompt ν_μ, delayed ν_e and ν̄_μ, and backgrounds.

Components: CEvNS from each flavour with its timing; beam-related neutrons (prompt, flux
independent); neutrino-induced neutrons from ν_e CC on the lead shielding (they scale with the
ν_e flux and rise steeply with E_ν); steady-state background measured off-beam.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from farm.config import SnsCevnsConfig
from farm.physics import flux, lead, nuclei
from farm.samples.cevns_events import draw_nuclei, draw_recoils, readout, readout_column
from farm.samples.component import Columns, Component, SampleModel, truncated_exponential
from farm.store.schema import FLAVOR_PDG, Channel

__all__ = ["sns_model"]

_FLAVORS = ("numu", "nue", "numubar")
_LEAD_NUCLEI_PER_KG = 6.02214076e26 / 207.2  # natural lead, treated as 208Pb for ν_e CC


def _pot(cfg: SnsCevnsConfig) -> float:
    return (
        flux.sns_pot_per_second(cfg.source.beam_power_mw, cfg.source.proton_kinetic_gev)
        * cfg.source.seconds
    )


def _fluence_per_cm2(cfg: SnsCevnsConfig) -> float:
    """ν per cm² per flavour at the detector over the exposure: POT · yield / (4π L²)."""
    per_pot = cfg.source.yield_per_flavor or float(
        flux.sns_yield_per_pot(cfg.source.proton_kinetic_gev)
    )
    distance_cm = cfg.source.distance_m * 100.0
    return _pot(cfg) * per_pot / (4.0 * math.pi * distance_cm**2)


def _times_us(cfg: SnsCevnsConfig, rng: np.random.Generator, flavor: str, n: int) -> np.ndarray:
    """Production times with t = 0 at the onset of the proton pulse, the zero of the time window.

    The pulse is centred one FWHM after t = 0, so < 1 % of protons arrive before it; a pulse
    centred on t = 0 would put half of the prompt ν_μ before a window that opens at 0.
    """
    fwhm = cfg.source.pulse_fwhm_us
    return flux.sample_pidar_time_us(rng, flavor, n, pulse_fwhm_us=fwhm, pulse_center_us=fwhm)


def _selection(
    eff: np.ndarray, time_us: np.ndarray, cfg: SnsCevnsConfig, u: np.ndarray
) -> np.ndarray:
    """Efficiency draw and time window. The observable's range (the ROI) is left to the analysis
    binning, so that lateral shifts of the readout can move events across it."""
    lo, hi = cfg.detector.time_window_us or (-np.inf, np.inf)
    return (time_us >= lo) & (time_us < hi) & (u < eff)


def _cevns(cfg: SnsCevnsConfig, flavor: str, rng: np.random.Generator, n: int) -> Columns:
    det = cfg.detector
    enu = flux.sample_pidar(rng, flavor, n)
    which, names, nuclei_per_kg = draw_nuclei(rng, det.material, n)
    recoil, mass_number, xsec = draw_recoils(rng, enu, which, names)
    signal, eff = readout(rng, recoil, which, names, det)
    time_us = _times_us(cfg, rng, flavor, n).astype(np.float32)
    w_unit = _fluence_per_cm2(cfg) * det.mass_kg * nuclei_per_kg * xsec
    return {
        "enu_true": enu,
        "flavor": np.full(n, FLAVOR_PDG[flavor], dtype=np.int32),
        "channel": np.full(n, Channel.CEVNS, dtype=np.int8),
        "is_signal": np.ones(n, dtype=bool),
        "recoil_mev": recoil,
        "target_a": mass_number,
        "time_us": time_us,
        readout_column(cfg.detector): signal,
        "eff_nominal": eff,
        "selected": _selection(eff, time_us, cfg, rng.random(n)),
        "w_unit": w_unit,
    }


def _neutron_recoils(
    cfg: SnsCevnsConfig, rng: np.random.Generator, n: int, slope_kev: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nuclear recoils from neutron scatters: exponential in recoil energy (a fast-neutron spectrum)."""
    which, names, _ = draw_nuclei(rng, cfg.detector.material, n)
    recoil = rng.exponential(slope_kev * 1e-3, n)
    mass_number = np.array([nuclei.get_target(k).a for k in names], dtype=np.int16)[which]
    signal, eff = readout(rng, recoil, which, names, cfg.detector)
    return recoil, mass_number, signal, eff


def _brn(cfg: SnsCevnsConfig, rng: np.random.Generator, n: int) -> Columns:
    recoil, mass_number, signal, eff = _neutron_recoils(
        cfg, rng, n, cfg.backgrounds.brn_recoil_slope_kev
    )
    # prompt: neutrons arrive with the proton pulse, delayed by their time of flight (≈ 0.1–0.3 µs)
    time_us = (_times_us(cfg, rng, "numu", n) + rng.uniform(0.1, 0.3, n)).astype(np.float32)
    return _background(
        n,
        Channel.BRN,
        recoil,
        mass_number,
        signal,
        eff,
        time_us,
        cfg,
        rng,
        cfg.backgrounds.brn_events,
    )


def _nin(cfg: SnsCevnsConfig, rng: np.random.Generator, n: int) -> Columns:
    """Neutrino-induced neutrons: ν_e CC on ²⁰⁸Pb in the shielding, E_ν from the Michel spectrum."""
    bkg = cfg.backgrounds
    enu = flux.sample_pidar(rng, "nue", n)
    lead_nuclei = bkg.lead_mass_kg * _LEAD_NUCLEI_PER_KG
    w = (
        _fluence_per_cm2(cfg)
        * lead_nuclei
        * lead.neutron_yield_xsec(enu)
        * bkg.nin_detection_probability
    )
    recoil, mass_number, signal, eff = _neutron_recoils(cfg, rng, n, bkg.nin_recoil_slope_kev)
    time_us = _times_us(cfg, rng, "nue", n).astype(np.float32)
    cols = _background(n, Channel.NIN, recoil, mass_number, signal, eff, time_us, cfg, rng, 1.0)
    cols["enu_true"] = enu
    cols["flavor"] = np.full(n, FLAVOR_PDG["nue"], dtype=np.int32)
    cols["w_unit"] = w
    return cols


def _ssb(cfg: SnsCevnsConfig, rng: np.random.Generator, n: int) -> Columns:
    """Steady-state background: measured off-beam in the ROI and time window, so already selected."""
    det, ssb = cfg.detector, cfg.backgrounds.steady_state
    signal = truncated_exponential(rng, n, det.roi_min, det.roi_max, ssb.slope).astype(np.float32)
    lo, hi = det.time_window_us or (0.0, 1.0)
    time_us = rng.uniform(lo, hi, n).astype(np.float32)
    cols = _background(
        n,
        Channel.SSB,
        np.zeros(n),
        np.zeros(n, np.int16),
        signal,
        np.ones(n, np.float32),
        time_us,
        cfg,
        rng,
        ssb.events,
    )
    cols["selected"] = np.ones(n, dtype=bool)
    return cols


def _background(
    n: int,
    channel: Channel,
    recoil: np.ndarray,
    mass_number: np.ndarray,
    signal: np.ndarray,
    eff: np.ndarray,
    time_us: np.ndarray,
    cfg: SnsCevnsConfig,
    rng: np.random.Generator,
    expected: float,
) -> Columns:
    return {
        "enu_true": np.zeros(n),
        "flavor": np.zeros(n, dtype=np.int32),
        "channel": np.full(n, channel, dtype=np.int8),
        "is_signal": np.zeros(n, dtype=bool),
        "recoil_mev": recoil,
        "target_a": mass_number,
        "time_us": time_us,
        readout_column(cfg.detector): signal,
        "eff_nominal": eff,
        "selected": _selection(eff, time_us, cfg, rng.random(n)),
        "w_unit": np.full(n, expected),
    }


def sns_model(cfg: SnsCevnsConfig) -> SampleModel:
    components = [
        Component(name=f"cevns_{f}", draw=partial(_cevns, cfg, f), default_fraction=0.28)
        for f in _FLAVORS
    ]
    components += [
        Component(name="brn", draw=partial(_brn, cfg), default_fraction=0.05),
        Component(name="nin", draw=partial(_nin, cfg), default_fraction=0.05),
        Component(name="ssb", draw=partial(_ssb, cfg), default_fraction=0.06),
    ]
    attrs = {
        "source_family": "sns",
        "exposure": {"value": _pot(cfg), "unit": "POT", "seconds": cfg.source.seconds},
        "nominal_flux": {
            "model": "pi-DAR: prompt numu line, Michel nue and numubar",
            "fluence_per_cm2_per_flavor": _fluence_per_cm2(cfg),
            "distance_m": cfg.source.distance_m,
        },
        "readout_column": readout_column(cfg.detector),
    }
    columns = (
        "enu_true",
        "flavor",
        "channel",
        "is_signal",
        "selected",
        "w_nominal",
        "eff_nominal",
        "recoil_mev",
        "target_a",
        "time_us",
        readout_column(cfg.detector),
    )
    return SampleModel(components=tuple(components), columns=columns, attrs=attrs)
