"""Reactor ν̄_e samples: CEvNS on germanium (reactor-ge) and inverse beta decay (reactor-ibd).

The ν̄_e energy is drawn from the run's flux (:class:`farm.flux.model.Flux`): the Huber–Mueller
spectrum for the configured fission fractions (with the explicit extension below 2 MeV), whose
fluence is fissions · S / (4π L²), or a ``[flux]`` file's ν̄_e spectrum.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from farm.config import ReactorCevnsConfig, ReactorIbdConfig
from farm.flux import sources
from farm.flux.model import Flux
from farm.physics import ibd
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

__all__ = ["reactor_cevns_model", "reactor_ibd_model"]

_NUEBAR = FLAVOR_PDG["nuebar"]


def _fissions(cfg: ReactorCevnsConfig | ReactorIbdConfig) -> float:
    return sources.reactor_fissions(cfg.source)


def _fluence_per_cm2(cfg: ReactorCevnsConfig | ReactorIbdConfig) -> float:
    """ν̄_e per cm² at the detector over the exposure within the generated energy range."""
    return sources.reactor_fluence_per_cm2(cfg.source)


def _draw_enu(
    cfg: ReactorCevnsConfig | ReactorIbdConfig, nu: Flux, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, float, np.ndarray]:
    """E_ν drawn from the run's ν̄_e flux F(E) tilted by E^k (k = ``[generation]
    importance_power``), its Φ, and each event's factor (F/Φ)/(F E^k/M_k) that restores the
    spectrum (:meth:`Flux.draw_tilted`). k > 0 spends the events where the cross section is
    large (CEvNS grows as E², and only the high-energy tail passes a keV threshold)."""
    return nu.draw_tilted("nuebar", rng, n, cfg.generation.importance_power)


def _source_attrs(cfg: ReactorCevnsConfig | ReactorIbdConfig) -> dict:
    src = cfg.source
    return {
        "source_family": "reactor",
        "exposure": {"value": _fissions(cfg), "unit": "fissions", "seconds": src.seconds},
        "nominal_flux": {
            "model": "Huber-Mueller with an explicit extension below 2 MeV",
            "fission_fractions": dict(src.fission_fractions),
            "thermal_power_mw": src.thermal_power_mw,
            "fluence_per_cm2": _fluence_per_cm2(cfg),
            "enu_range_mev": [src.enu_min_mev, src.enu_max_mev],
            "distance_m": src.distance_m,
        },
    }


# --- CEvNS on germanium --------------------------------------------------------------------


def _cevns(cfg: ReactorCevnsConfig, nu: Flux, rng: np.random.Generator, n: int) -> Columns:
    det = cfg.detector
    response = response_of(det)
    enu, fluence, spectrum_weight = _draw_enu(cfg, nu, rng, n)
    which, names, nuclei_per_kg = draw_nuclei(rng, det.material, n)
    recoil, mass_number, xsec = draw_recoils(rng, enu, which, names, cfg.physics)
    read = readout(rng, recoil, mass_number, response)
    return {
        "enu_true": enu,
        "flavor": np.full(n, _NUEBAR, dtype=np.int32),
        "channel": np.full(n, Channel.CEVNS, dtype=np.int8),
        "is_signal": np.ones(n, dtype=bool),
        "recoil_mev": recoil,
        "target_a": mass_number,
        **read,
        **select(rng, response, read[response.column]),  # the ROI is the analysis binning's job
        "w_unit": fluence * det.mass_kg * nuclei_per_kg * xsec * spectrum_weight,
    }


def _ssb(cfg: ReactorCevnsConfig, rng: np.random.Generator, n: int) -> Columns:
    """Steady-state background, measured with the reactor off: selected, no knob moves it."""
    det, ssb = cfg.detector, cfg.backgrounds.steady_state
    column = readout_column(det)
    signal = truncated_exponential(rng, n, det.roi_min, det.roi_max, ssb.slope)
    extra = {"resolution_z": np.zeros(n, dtype=np.float32)} if det.readout == "kevee" else {}
    return {
        "enu_true": np.zeros(n),
        "flavor": np.zeros(n, dtype=np.int32),
        "channel": np.full(n, Channel.SSB, dtype=np.int8),
        "is_signal": np.zeros(n, dtype=bool),
        "recoil_mev": np.zeros(n),
        "target_a": np.zeros(n, dtype=np.int16),
        column: signal.astype(COLUMNS[column].dtype),
        **extra,
        "selection_threshold": np.full(n, -np.inf, dtype=np.float32),
        "eff_nominal": np.ones(n, dtype=np.float32),
        "selected": np.ones(n, dtype=bool),
        "w_unit": np.full(n, ssb.events),
    }


def reactor_cevns_model(cfg: ReactorCevnsConfig, nu: Flux) -> SampleModel:
    """The reactor CEvNS sample, its ν̄_e drawn from ``nu`` (the run's flux: the Huber–Mueller
    model's, or a ``[flux]`` file's)."""
    components = (
        Component(name="cevns", draw=partial(_cevns, cfg, nu), default_fraction=0.9),
        Component(name="ssb", draw=partial(_ssb, cfg), default_fraction=0.1),
    )
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
        *readout_columns(cfg.detector),
    )
    attrs = _source_attrs(cfg) | {"readout_column": readout_column(cfg.detector)}
    return SampleModel(components=components, columns=columns, attrs=attrs)


# --- inverse beta decay ---------------------------------------------------------------------


def _visible(rng: np.random.Generator, enu: np.ndarray, cfg: ReactorIbdConfig) -> np.ndarray:
    """Prompt visible energy E_ν − 0.78 MeV smeared with σ/E = a/√E, times the energy scale."""
    evis = np.maximum(ibd.prompt_visible_energy_mev(enu), 1e-6)
    sigma = cfg.detector.resolution_stochastic * np.sqrt(evis)
    smeared = np.maximum(evis + sigma * rng.standard_normal(evis.shape), 0.0)
    return cfg.detector.energy_scale * smeared


def _ibd(cfg: ReactorIbdConfig, nu: Flux, rng: np.random.Generator, n: int) -> Columns:
    det = cfg.detector
    enu, fluence, spectrum_weight = _draw_enu(cfg, nu, rng, n)
    evis = _visible(rng, enu, cfg)
    protons = det.mass_kg * det.free_protons_per_kg
    xsec = cfg.physics.xsec_scale * ibd.total_xsec(enu)
    return {
        "enu_true": enu,
        "flavor": np.full(n, _NUEBAR, dtype=np.int32),
        "channel": np.full(n, Channel.IBD, dtype=np.int8),
        "is_signal": np.ones(n, dtype=bool),
        "elep_mev": ibd.positron_energy_mev(enu),
        "reco_energy_mev": evis.astype(np.float32),
        "eff_nominal": np.full(n, det.efficiency, dtype=np.float32),
        "selected": rng.random(n) < det.efficiency,
        "w_unit": fluence * protons * xsec * spectrum_weight,
    }


def _accidental(cfg: ReactorIbdConfig, rng: np.random.Generator, n: int) -> Columns:
    """Accidental prompt–delayed coincidences: a falling singles spectrum, selected by construction."""
    det = cfg.detector
    evis = truncated_exponential(rng, n, det.prompt_min_mev, det.prompt_max_mev, 1.0)
    return {
        "enu_true": np.zeros(n),
        "flavor": np.zeros(n, dtype=np.int32),
        "channel": np.full(n, Channel.ACCIDENTAL, dtype=np.int8),
        "is_signal": np.zeros(n, dtype=bool),
        "elep_mev": np.zeros(n),
        "reco_energy_mev": evis.astype(np.float32),
        "eff_nominal": np.ones(n, dtype=np.float32),
        "selected": np.ones(n, dtype=bool),
        "w_unit": np.full(n, det.accidental_events),
    }


def reactor_ibd_model(cfg: ReactorIbdConfig, nu: Flux) -> SampleModel:
    """The reactor IBD sample, its ν̄_e drawn from ``nu`` (the run's flux: the Huber–Mueller
    model's, or a ``[flux]`` file's)."""
    components = (
        Component(name="ibd", draw=partial(_ibd, cfg, nu), default_fraction=0.9),
        Component(name="accidental", draw=partial(_accidental, cfg), default_fraction=0.1),
    )
    columns = (
        "enu_true",
        "flavor",
        "channel",
        "is_signal",
        "selected",
        "w_nominal",
        "eff_nominal",
        "elep_mev",
        "reco_energy_mev",
    )
    attrs = _source_attrs(cfg) | {"readout_column": "reco_energy_mev"}
    return SampleModel(components=components, columns=columns, attrs=attrs)
