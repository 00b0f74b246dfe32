"""Configuration of one event sample: source, detector, backgrounds, exposure, generation.

One TOML file describes one sample (``examples/*.toml``). The ``[sample] generator`` key picks
the physics generator and thereby the shape of ``[source]`` and ``[detector]``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from farm.config._base import Section

__all__ = [
    "BeamSource",
    "CevnsDetector",
    "GenerationSection",
    "IbdDetector",
    "NuscopeDetector",
    "ReactorSource",
    "SampleSection",
    "SnsBackgrounds",
    "SnsSource",
    "SteadyStateBackground",
]

GeneratorName = Literal["sns-cevns", "reactor-cevns", "reactor-ibd", "nuscope-cc"]
DAY_S = 86400.0


class SampleSection(Section):
    name: str = Field(min_length=1)
    generator: GeneratorName
    description: str = ""
    store: str | None = None
    """Event store path; default ``stores/<name>-<hash of the event-defining sections>.zarr``."""


class SnsSource(Section):
    """π-DAR source at the SNS: beam power, proton energy, baseline and running time."""

    beam_power_mw: PositiveFloat = 1.4
    proton_kinetic_gev: PositiveFloat = 1.0
    distance_m: PositiveFloat
    running_days: PositiveFloat = 365.0
    yield_per_flavor: PositiveFloat | None = None
    """Neutrinos per proton per flavour; None uses the parametrisation in farm.physics.flux."""
    pulse_fwhm_us: PositiveFloat = 0.38

    @property
    def seconds(self) -> float:
        return self.running_days * DAY_S


class ReactorSource(Section):
    """Reactor ν̄_e source: thermal power, baseline, fission fractions and running time."""

    thermal_power_mw: PositiveFloat = 3900.0
    distance_m: PositiveFloat
    running_days: PositiveFloat = 365.0
    fission_fractions: dict[str, float] = Field(
        default_factory=lambda: {"U235": 0.564, "U238": 0.076, "Pu239": 0.304, "Pu241": 0.056}
    )
    enu_min_mev: float = Field(default=0.0, ge=0.0)
    enu_max_mev: PositiveFloat = 12.0

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> ReactorSource:
        from farm.physics.flux import REACTOR_ISOTOPES

        unknown = sorted(set(self.fission_fractions) - set(REACTOR_ISOTOPES))
        if unknown:
            msg = f"fission_fractions: unknown isotope(s) {', '.join(unknown)}; allowed: {', '.join(REACTOR_ISOTOPES)}"
            raise ValueError(msg)
        total = sum(self.fission_fractions.values())
        if abs(total - 1.0) > 1e-6:
            msg = f"fission_fractions must sum to 1 (they sum to {total:.6g}); isotopes: U235, U238, Pu239, Pu241"
            raise ValueError(msg)
        if self.enu_max_mev <= self.enu_min_mev:
            msg = "enu_max_mev must be larger than enu_min_mev"
            raise ValueError(msg)
        return self

    @property
    def seconds(self) -> float:
        return self.running_days * DAY_S


class BeamSource(Section):
    """nuSCOPE monitored, tagged beam: protons on target and the secondary beam."""

    pot: PositiveFloat = 1.0e20
    secondary_momentum_gev: PositiveFloat = 8.5
    momentum_bite: PositiveFloat = 0.10
    tunnel_length_m: PositiveFloat = 40.0
    detector_distance_m: PositiveFloat = 25.0
    detector_half_width_cm: PositiveFloat = 200.0


class Efficiency(Section):
    """A smooth turn-on ε(x) = plateau · ½[1 + erf((x − threshold)/(√2 width))], or COHERENT-like CsI."""

    kind: Literal["erf", "csi"] = "erf"
    threshold: float = 0.0
    width: PositiveFloat = 1.0
    plateau: float = Field(default=1.0, gt=0.0, le=1.0)


class CevnsDetector(Section):
    """A CEvNS detector: target material and mass, quenching, readout and selection."""

    material: Literal["CsI", "Ar", "Ge", "NaI"]
    mass_kg: PositiveFloat
    quenching: Literal["csi", "lar", "lindhard"]
    readout: Literal["pe", "kevee"]
    light_yield_pe_per_kevee: PositiveFloat = 13.35
    resolution_stochastic: float = Field(default=0.0, ge=0.0)
    """σ/E = stochastic/√(E/keVee) ⊕ constant ⊕ noise/E, for a keVee readout."""
    resolution_constant: float = Field(default=0.0, ge=0.0)
    resolution_noise_kevee: float = Field(default=0.0, ge=0.0)
    efficiency: Efficiency = Efficiency()
    roi_min: float = 0.0
    roi_max: PositiveFloat = 60.0
    """Selection window in the readout unit (PE or keVee)."""
    time_window_us: tuple[float, float] | None = None
    """Selection window in event time (SNS); None for a steady source (reactor)."""


class SteadyStateBackground(Section):
    events: float = Field(default=0.0, ge=0.0)
    """Expected steady-state events in the ROI and time window over the exposure (off-beam measurement)."""
    slope: PositiveFloat = 20.0
    """Exponential falloff of the readout spectrum (readout units)."""


class SnsBackgrounds(Section):
    brn_events: float = Field(default=0.0, ge=0.0)
    """Expected beam-related-neutron events over the exposure, before selection."""
    brn_recoil_slope_kev: PositiveFloat = 15.0
    lead_mass_kg: float = Field(default=0.0, ge=0.0)
    """Lead shielding in which ν_e CC makes neutrino-induced neutrons."""
    nin_detection_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability that a neutron emitted in the lead deposits a recoil in the detector."""
    nin_recoil_slope_kev: PositiveFloat = 15.0
    steady_state: SteadyStateBackground = SteadyStateBackground()


class IbdDetector(Section):
    """Liquid-scintillator IBD detector."""

    mass_kg: PositiveFloat = 3000.0
    free_protons_per_kg: PositiveFloat = 7.0e25
    resolution_stochastic: PositiveFloat = 0.03
    """σ/E at 1 MeV of visible energy (scales as 1/√E)."""
    efficiency: float = Field(default=0.8, gt=0.0, le=1.0)
    prompt_min_mev: float = 0.7
    prompt_max_mev: PositiveFloat = 12.0
    accidental_events: float = Field(default=0.0, ge=0.0)


class NuscopeDetector(Section):
    """nuSCOPE liquid-argon detector with tagged and monitored neutrinos."""

    mass_t: PositiveFloat = 500.0
    tagging_efficiency: float = Field(default=0.8, gt=0.0, le=1.0)
    tagging_resolution: PositiveFloat = 0.005
    accidental_tag_fraction: float = Field(default=0.02, ge=0.0, le=1.0)
    muon_momentum_resolution: PositiveFloat = 0.05
    muon_angle_resolution_rad: PositiveFloat = 0.01
    numu_selection_efficiency: float = Field(default=0.9, gt=0.0, le=1.0)
    nue_misid_probability: float = Field(default=0.02, ge=0.0, le=1.0)


class GenerationSection(Section):
    events: PositiveInt = 1_000_000
    importance_power: float = Field(default=0.0, ge=0.0, le=8.0)
    """Reactor samples: draw E_ν from S(E)·E^k and weight back (0: from the spectrum itself)."""
    seed: Annotated[int, Field(ge=0)] = 20261121
    shard_size: PositiveInt = 8_388_608
    component_fractions: dict[str, float] = Field(default_factory=dict)
    """Share of generated events per component; defaults per generator. Weights keep Σw exact."""
