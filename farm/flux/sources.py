"""The built-in source models as :class:`~farm.flux.model.Flux` objects, and their exposure.

Each takes only the configuration sections it uses (the source, and the detector mass where
the nuSCOPE beamline needs it), never a whole configuration. The SNS generator draws its
neutrinos from the run's :class:`Flux` (``Flux.draw``: the π-DAR densities carry the exact
inverse-CDF sampler of ``farm.physics.flux``), the reactor generators too (``Flux.draw_tilted``:
the Huber–Mueller density carries its sampler and its fluence), and the nuSCOPE generator draws
fresh neutrinos from the beamline Monte Carlo its spectra carry (``Flux.simulate``), so the
run's flux is the one the events were made with, by construction.

- π-DAR (SNS): Φ per flavour = POT · Y / (4π L²), POT = P / (E_p · e) · t (``farm.physics.flux``);
  a ν_μ line at (m_π² − m_μ²)/2m_π and Michel ν_e, ν̄_μ densities up to m_μ/2.
- Reactor: F(E) = N_f S(E) / (4π L²), N_f = P_th t / Σ f_i E_i the fissions over the exposure
  and S the Huber–Mueller spectrum per fission (knots at 2 and 8 MeV, where the fit joins its
  extensions).
- nuSCOPE: a fixed-seed Monte Carlo of the beamline, 400 000 weighted neutrinos per flavour,
  Φ_k = POT · (ν per POT) · w_k / A_face / n.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache, partial

import numpy as np

from farm.config.sample import BeamSource, ReactorSource, SnsSource
from farm.flux.model import DensitySpectrum, Flux, LineSpectrum, SampledSpectrum
from farm.physics import beamline, reactor
from farm.physics import flux as spectra

__all__ = [
    "nuscope_beamline",
    "nuscope_flux",
    "nuscope_per_event_fluence",
    "pidar_fluence_per_cm2",
    "pidar_flux",
    "reactor_fissions",
    "reactor_fluence_per_cm2",
    "reactor_flux",
    "sns_pot",
]


# --- π-DAR ---------------------------------------------------------------------------------------


def sns_pot(source: SnsSource) -> float:
    """Protons on target over the exposure: (P / E_p e) · t."""
    return (
        spectra.sns_pot_per_second(source.beam_power_mw, source.proton_kinetic_gev) * source.seconds
    )


def pidar_fluence_per_cm2(source: SnsSource) -> float:
    """ν per cm² per flavour at the detector over the exposure: POT · Y / (4π L²)."""
    per_pot = source.yield_per_flavor or float(spectra.sns_yield_per_pot(source.proton_kinetic_gev))
    distance_cm = source.distance_m * 100.0
    return sns_pot(source) * per_pot / (4.0 * math.pi * distance_cm**2)


def pidar_flux(source: SnsSource) -> Flux:
    """The π-DAR flux at the detector: the prompt ν_μ line, Michel ν_e and ν̄_μ."""
    fluence = pidar_fluence_per_cm2(source)
    flux: dict[str, LineSpectrum | DensitySpectrum] = {
        "numu": LineSpectrum(energy_mev=spectra.PIDAR_NUMU_LINE_MEV, fluence=fluence)
    }
    for flavor in ("nue", "numubar"):
        flux[flavor] = DensitySpectrum(
            density=partial(spectra.pidar_spectrum, flavor),
            scale=fluence,
            lo=0.0,
            hi=spectra.MICHEL_ENDPOINT_MEV,
            sampler=partial(spectra.sample_pidar, flavor=flavor),
        )
    return Flux(
        spectra=flux,
        exposure={"value": sns_pot(source), "unit": "POT", "seconds": source.seconds},
        source=f"π-DAR model at {source.distance_m:g} m ({source.beam_power_mw:g} MW)",
    )


# --- reactor -------------------------------------------------------------------------------------


def reactor_fissions(source: ReactorSource) -> float:
    """Fissions over the exposure: P_th t / Σ f_i E_i."""
    return (
        float(reactor.fission_rate_per_s(source.thermal_power_mw, source.fission_fractions))
        * source.seconds
    )


def _spectrum_integral(source: ReactorSource) -> float:
    """ν̄_e per fission between the configured energy limits (trapezoid, 4001 points)."""
    grid = np.linspace(source.enu_min_mev, source.enu_max_mev, 4001)
    return float(np.trapezoid(spectra.reactor_spectrum(grid, source.fission_fractions), grid))


def reactor_fluence_per_cm2(source: ReactorSource) -> float:
    """ν̄_e per cm² at the detector over the exposure within the generated energy range."""
    distance_cm = source.distance_m * 100.0
    return reactor_fissions(source) * _spectrum_integral(source) / (4.0 * math.pi * distance_cm**2)


def _reactor_density(e: np.ndarray, fractions: tuple[tuple[str, float], ...]) -> np.ndarray:
    return spectra.reactor_spectrum(e, dict(fractions))


def _reactor_sampler(
    rng: np.random.Generator,
    *,
    n: int,
    fractions: tuple[tuple[str, float], ...],
    emin: float,
    emax: float,
) -> np.ndarray:
    return spectra.sample_reactor(rng, dict(fractions), n, emin, emax)


def reactor_flux(source: ReactorSource) -> Flux:
    """The reactor ν̄_e flux: N_f S(E) / (4π L²) on [enu_min_mev, enu_max_mev]."""
    scale = reactor_fissions(source) / (4.0 * math.pi * (source.distance_m * 100.0) ** 2)
    fractions = tuple(source.fission_fractions.items())
    return Flux(
        spectra={
            "nuebar": DensitySpectrum(
                density=partial(_reactor_density, fractions=fractions),
                scale=scale,
                lo=source.enu_min_mev,
                hi=source.enu_max_mev,
                knots=(2.0, 8.0),
                sampler=partial(
                    _reactor_sampler,
                    fractions=fractions,
                    emin=source.enu_min_mev,
                    emax=source.enu_max_mev,
                ),
                fluence=reactor_fluence_per_cm2(source),
            )
        },
        exposure={"value": reactor_fissions(source), "unit": "fissions", "seconds": source.seconds},
        source=f"Huber-Mueller reactor model at {source.distance_m:g} m ({source.thermal_power_mw:g} MW)",
    )


# --- nuSCOPE ---------------------------------------------------------------------------------------


def nuscope_beamline(source: BeamSource, detector_mass_t: float) -> beamline.Beamline:
    """The monitored, tagged beamline of ``[source]`` in front of a ``detector_mass_t`` detector."""
    return beamline.Beamline(
        secondary_momentum_mev=source.secondary_momentum_gev * 1000.0,
        momentum_bite=source.momentum_bite,
        tunnel_length_m=source.tunnel_length_m,
        dump_to_detector_m=source.detector_distance_m,
        face_half_width_cm=source.detector_half_width_cm,
        detector_mass_t=detector_mass_t,
    )


def nuscope_per_event_fluence(
    source: BeamSource, detector_mass_t: float, flavor: str, weight: np.ndarray
) -> np.ndarray:
    """ν per cm² at the face carried by each forced-direction draw (exposure included)."""
    b = nuscope_beamline(source, detector_mass_t)
    return source.pot * beamline.neutrinos_per_pot(flavor, b) * weight / b.face_area_cm2


def nuscope_flux(source: BeamSource, detector_mass_t: float, n: int = 400_000) -> Flux:
    """The nominal nuSCOPE flux as a weighted sample (fixed seed) per flavour."""
    key = json.dumps(source.model_dump(mode="json"), sort_keys=True)
    sampled = _nuscope_sample(key, detector_mass_t, n)
    return Flux(
        spectra={
            f: SampledSpectrum(
                energies=e,
                fluences=w,
                simulate=partial(
                    _simulate_beam, source=source, detector_mass_t=detector_mass_t, flavor=f
                ),
            )
            for f, (e, w) in sampled.items()
        },
        exposure={"value": source.pot, "unit": "POT"},
        source=f"nuSCOPE beamline model ({source.secondary_momentum_gev:g} GeV/c secondaries)",
    )


def _simulate_beam(
    rng: np.random.Generator,
    *,
    n: int,
    source: BeamSource,
    detector_mass_t: float,
    flavor: str,
) -> dict[str, np.ndarray]:
    """n neutrinos of the beamline Monte Carlo, forced onto the detector face: E_ν, where and
    with which slopes each crosses the face, its acceptance weight, and the fluence it carries."""
    b = nuscope_beamline(source, detector_mass_t)
    nu = beamline.sample_beam_neutrinos(rng, n, flavor=flavor, beamline=b)
    fluence = nuscope_per_event_fluence(source, detector_mass_t, flavor, nu["weight"])
    return {**nu, "fluence": fluence}


@lru_cache(maxsize=8)
def _nuscope_sample(
    key: str, detector_mass_t: float, n: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    source = BeamSource.model_validate_json(key)
    out = {}
    for k, flavor in enumerate(("numu", "nue")):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([2026, k])))
        b = nuscope_beamline(source, detector_mass_t)
        nu = beamline.sample_beam_neutrinos(rng, n, flavor=flavor, beamline=b)
        fluence = nuscope_per_event_fluence(source, detector_mass_t, flavor, nu["weight"]) / n
        for array in (nu["enu_mev"], fluence):
            array.setflags(write=False)
        out[flavor] = (nu["enu_mev"], fluence)
    return out
