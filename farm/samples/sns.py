"""SNS π-DAR CEvNS samples (sns-csi, sns-lar): prompt ν_μ, delayed ν_e and ν̄_μ, and backgrounds.

Components: CEvNS from each flavour with its timing; beam-related neutrons (prompt, flux
independent); neutrino-induced neutrons from ν_e CC on the lead shielding (they scale with the
ν_e flux and rise steeply with E_ν); steady-state background measured off-beam.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from farm.config import SnsCevnsConfig
from farm.flux import sources
from farm.flux.model import Flux
from farm.physics import flux, lead, nuclei
from farm.samples.cevns_events import (
    draw_nuclei,
    draw_recoils,
    readout,
    readout_column,
    readout_columns,
    response_of,
    select,
)
from farm.samples.component import Columns, Component, SampleModel, truncated_exponential
from farm.store.schema import COLUMNS, FLAVOR_PDG, Channel

__all__ = ["sns_model"]

_FLAVORS = ("numu", "nue", "numubar")
_LEAD_NUCLEI_PER_KG = 6.02214076e26 / 207.2  # natural lead, treated as 208Pb for ν_e CC


def _pot(cfg: SnsCevnsConfig) -> float:
    return sources.sns_pot(cfg.source)


def _fluence_per_cm2(cfg: SnsCevnsConfig) -> float:
    """ν per cm² per flavour at the detector over the exposure (farm.flux.sources)."""
    return sources.pidar_fluence_per_cm2(cfg.source)


def _times_us(cfg: SnsCevnsConfig, rng: np.random.Generator, flavor: str, n: int) -> np.ndarray:
    """Production times with t = 0 at the onset of the proton pulse, the zero of the time window.

    The pulse is centred one FWHM after t = 0, so < 1 % of protons arrive before it; a pulse
    centred on t = 0 would put half of the prompt ν_μ before a window that opens at 0.
    """
    fwhm = cfg.source.pulse_fwhm_us
    return flux.sample_pidar_time_us(rng, flavor, n, pulse_fwhm_us=fwhm, pulse_center_us=fwhm)


def _cevns(cfg: SnsCevnsConfig, nu: Flux, flavor: str, rng: np.random.Generator, n: int) -> Columns:
    det = cfg.detector
    response = response_of(det)
    enu, fluence = nu.draw(flavor, rng, n)
    which, names, nuclei_per_kg = draw_nuclei(rng, det.material, n)
    recoil, mass_number, xsec = draw_recoils(rng, enu, which, names, cfg.physics)
    read = readout(rng, recoil, mass_number, response)
    time_us = _times_us(cfg, rng, flavor, n).astype(np.float32)
    w_unit = fluence * det.mass_kg * nuclei_per_kg * xsec
    return {
        "enu_true": enu,
        "flavor": np.full(n, FLAVOR_PDG[flavor], dtype=np.int32),
        "channel": np.full(n, Channel.CEVNS, dtype=np.int8),
        "is_signal": np.ones(n, dtype=bool),
        "recoil_mev": recoil,
        "target_a": mass_number,
        "time_us": time_us,
        **read,
        **select(rng, response, read[response.column], time_us),
        "w_unit": w_unit,
    }


def _neutron_recoils(
    cfg: SnsCevnsConfig, rng: np.random.Generator, n: int, slope_kev: float
) -> tuple[np.ndarray, np.ndarray, Columns]:
    """Nuclear recoils from neutron scatters: exponential in recoil energy (a fast-neutron spectrum)."""
    which, names, _ = draw_nuclei(rng, cfg.detector.material, n)
    recoil = rng.exponential(slope_kev * 1e-3, n)
    mass_number = np.array([nuclei.get_target(k).a for k in names], dtype=np.int16)[which]
    return recoil, mass_number, readout(rng, recoil, mass_number, response_of(cfg.detector))


def _brn(cfg: SnsCevnsConfig, rng: np.random.Generator, n: int) -> Columns:
    recoil, mass_number, read = _neutron_recoils(cfg, rng, n, cfg.backgrounds.brn_recoil_slope_kev)
    # prompt: neutrons arrive with the proton pulse, delayed by their time of flight (≈ 0.1–0.3 µs)
    time_us = (_times_us(cfg, rng, "numu", n) + rng.uniform(0.1, 0.3, n)).astype(np.float32)
    return _background(
        n, Channel.BRN, recoil, mass_number, read, time_us, cfg, rng, cfg.backgrounds.brn_events
    )


def _nin(cfg: SnsCevnsConfig, nu: Flux, rng: np.random.Generator, n: int) -> Columns:
    """Neutrino-induced neutrons: ν_e CC on ²⁰⁸Pb in the shielding, E_ν from the ν_e spectrum."""
    bkg = cfg.backgrounds
    enu, fluence = nu.draw("nue", rng, n)
    lead_nuclei = bkg.lead_mass_kg * _LEAD_NUCLEI_PER_KG
    w = fluence * lead_nuclei * lead.neutron_yield_xsec(enu) * bkg.nin_detection_probability
    recoil, mass_number, read = _neutron_recoils(cfg, rng, n, bkg.nin_recoil_slope_kev)
    time_us = _times_us(cfg, rng, "nue", n).astype(np.float32)
    cols = _background(n, Channel.NIN, recoil, mass_number, read, time_us, cfg, rng, 1.0)
    cols["enu_true"] = enu
    cols["flavor"] = np.full(n, FLAVOR_PDG["nue"], dtype=np.int32)
    cols["w_unit"] = w
    return cols


def _ssb(cfg: SnsCevnsConfig, rng: np.random.Generator, n: int) -> Columns:
    """Steady-state background: measured off-beam in the ROI and time window, so already selected
    (its selection threshold is −∞: no detector knob moves it)."""
    det, ssb = cfg.detector, cfg.backgrounds.steady_state
    response = response_of(det)
    signal = truncated_exponential(rng, n, det.roi_min, det.roi_max, ssb.slope)
    read: Columns = {response.column: signal.astype(COLUMNS[response.column].dtype)}
    if response.readout == "kevee":
        read["resolution_z"] = np.zeros(n, dtype=np.float32)
    lo, hi = det.time_window_us or (0.0, 1.0)
    time_us = rng.uniform(lo, hi, n).astype(np.float32)
    cols = _background(
        n, Channel.SSB, np.zeros(n), np.zeros(n, np.int16), read, time_us, cfg, rng, ssb.events
    )
    cols["selection_threshold"] = np.full(n, -np.inf, dtype=np.float32)
    cols["selected"] = np.ones(n, dtype=bool)
    cols["eff_nominal"] = np.ones(n, dtype=np.float32)
    return cols


def _background(
    n: int,
    channel: Channel,
    recoil: np.ndarray,
    mass_number: np.ndarray,
    read: Columns,
    time_us: np.ndarray,
    cfg: SnsCevnsConfig,
    rng: np.random.Generator,
    expected: float,
) -> Columns:
    response = response_of(cfg.detector)
    return {
        "enu_true": np.zeros(n),
        "flavor": np.zeros(n, dtype=np.int32),
        "channel": np.full(n, channel, dtype=np.int8),
        "is_signal": np.zeros(n, dtype=bool),
        "recoil_mev": recoil,
        "target_a": mass_number,
        "time_us": time_us,
        **read,
        **select(rng, response, read[response.column], time_us),
        "w_unit": np.full(n, expected),
    }


def sns_model(cfg: SnsCevnsConfig, nu: Flux) -> SampleModel:
    """The SNS sample, its neutrinos drawn from ``nu`` (the run's flux: the π-DAR model's, or a
    ``[flux]`` file's)."""
    components = [
        Component(name=f"cevns_{f}", draw=partial(_cevns, cfg, nu, f), default_fraction=0.28)
        for f in _FLAVORS
    ]
    components += [
        Component(name="brn", draw=partial(_brn, cfg), default_fraction=0.05),
        Component(name="nin", draw=partial(_nin, cfg, nu), default_fraction=0.05),
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
        *readout_columns(cfg.detector),
    )
    return SampleModel(components=tuple(components), columns=columns, attrs=attrs)
