"""Configuration of one event sample: source, detector, backgrounds, exposure, generation.

One TOML file describes one sample (``examples/*.toml``). The ``[sample] generator`` key picks
the physics generator and thereby the shape of ``[source]`` and ``[detector]``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from farm.config._base import AsTuple, Section

__all__ = [
    "BeamSource",
    "CevnsDetector",
    "CevnsPhysics",
    "GenerationSection",
    "IbdDetector",
    "IbdPhysics",
    "NuscopeDetector",
    "NuscopePhysics",
    "ReactorSource",
    "SampleSection",
    "SnsBackgrounds",
    "SnsSource",
    "SteadyStateBackground",
]

GeneratorName = Literal["sns-cevns", "reactor-cevns", "reactor-ibd", "nuscope-cc", "external"]
"""``external``: events ingested with ``farm ingest`` (no generator of the farm's own)."""
DAY_S = 86400.0


class SampleSection(Section):
    name: str = Field(min_length=1)
    """Sample name: labels the result and the default event-store file."""
    generator: GeneratorName
    """Physics generator; picks the shape of ``[source]``, ``[detector]``, ``[physics]`` and
    ``[backgrounds]``: sns-cevns, reactor-cevns, reactor-ibd, nuscope-cc, or external (an
    ingested store)."""
    description: str = ""
    """One line describing the sample, shown in the report."""
    store: str | None = None
    """Event store path; default ``<store folder>/<name>-<hash of the event-defining sections>.zarr``
    (the folder: ``$FARM_STORE_DIR``, else ``~/.cache/farm/stores``; :func:`farm.config.store_dir`)."""


class SnsSource(Section):
    """π-DAR source at the SNS: beam power, proton energy, baseline and running time."""

    beam_power_mw: PositiveFloat = 1.4
    """Proton beam power on target [MW]."""
    proton_kinetic_gev: PositiveFloat = 1.0
    """Proton kinetic energy, which sets the π⁺ yield per proton [GeV]."""
    distance_m: PositiveFloat
    """Distance from the target to the detector [m]."""
    running_days: PositiveFloat = 365.0
    """Beam time of the exposure [days]."""
    yield_per_flavor: PositiveFloat | None = None
    """Neutrinos per proton per flavour; None uses the parametrisation in farm.physics.flux. [ν per proton per flavour]"""
    pulse_fwhm_us: PositiveFloat = 0.38
    """Full width at half maximum of the proton pulse [µs]."""

    @property
    def seconds(self) -> float:
        return self.running_days * DAY_S


class ReactorSource(Section):
    """Reactor ν̄_e source: thermal power, baseline, fission fractions and running time."""

    thermal_power_mw: PositiveFloat = 3900.0
    """Thermal power of the core [MW]."""
    distance_m: PositiveFloat
    """Distance from the core to the detector [m]."""
    running_days: PositiveFloat = 365.0
    """Reactor-on time of the exposure [days]."""
    fission_fractions: dict[str, float] = Field(
        default_factory=lambda: {"U235": 0.564, "U238": 0.076, "Pu239": 0.304, "Pu241": 0.056}
    )
    """Share of the fissions per isotope (U235, U238, Pu239, Pu241), summing to 1 [fraction]."""
    enu_min_mev: float = Field(default=0.0, ge=0.0)
    """Lowest antineutrino energy generated [MeV]."""
    enu_max_mev: PositiveFloat = 12.0
    """Highest antineutrino energy generated [MeV]."""

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
    """Protons on target of the exposure [POT]."""
    secondary_momentum_gev: PositiveFloat = 8.5
    """Central momentum of the secondary (π, K) beam [GeV/c]."""
    momentum_bite: PositiveFloat = 0.10
    """Relative momentum spread of the secondary beam, σ_p/p [fraction]."""
    tunnel_length_m: PositiveFloat = 40.0
    """Length of the instrumented decay tunnel [m]."""
    detector_distance_m: PositiveFloat = 25.0
    """Distance from the end of the tunnel to the detector [m]."""
    detector_half_width_cm: PositiveFloat = 200.0
    """Half width of the detector's front face [cm]."""


class Efficiency(Section):
    """A smooth turn-on ε(x) = plateau · ½[1 + erf((x − threshold)/(√2 width))], or COHERENT-like CsI."""

    kind: Literal["erf", "csi"] = "erf"
    """Shape of the turn-on: erf (the formula above) or csi (COHERENT's CsI[Na] efficiency
    curve)."""
    threshold: float = 0.0
    """Position of the erf turn-on, where it reaches half the plateau [readout units: PE or
    keVee]."""
    width: PositiveFloat = 1.0
    """Width of the erf turn-on [readout units: PE or keVee]."""
    plateau: float = Field(default=1.0, gt=0.0, le=1.0)
    """Efficiency far above threshold [fraction]."""
    shift: float = 0.0
    """Shift of the whole turn-on in readout units (PE or keVee): ε(y − shift). The physical
    parameter of the ``threshold`` systematic. [readout units: PE or keVee]"""
    scale: PositiveFloat = 1.0
    """Factor on the efficiency (capped at 1): the physical parameter of the ``efficiency``
    systematic. [factor]"""


class CevnsDetector(Section):
    """A CEvNS detector: target material and mass, quenching, readout and selection."""

    material: Literal["CsI", "Ar", "Ge", "NaI"]
    """Target material (CsI, Ar, Ge, NaI): the nuclei and their abundances."""
    mass_kg: PositiveFloat
    """Target mass [kg]."""
    quenching: Literal["csi", "lar", "lindhard"]
    """Quenching model of nuclear recoils: csi (COHERENT CsI[Na]), lar (argon) or lindhard."""
    quenching_scale: PositiveFloat = 1.0
    """Factor on the quenched (electron-equivalent) energy of every nuclear recoil: the physical
    parameter of the ``quenching`` systematic. [factor]"""
    readout: Literal["pe", "kevee"]
    """Unit of the reconstructed energy: pe (photoelectrons) or kevee (electron-equivalent keV)."""
    light_yield_pe_per_kevee: PositiveFloat = 13.35
    """Photoelectrons per keVee, for a PE readout [PE/keVee]."""
    energy_scale: PositiveFloat = 1.0
    """Factor on the reconstructed keVee value (a calibration scale; keVee readouts only): the
    physical parameter of the ``energy_scale`` systematic. [factor]"""
    resolution_stochastic: float = Field(default=0.0, ge=0.0)
    """σ/E = stochastic/√(E/keVee) ⊕ constant ⊕ noise/E, for a keVee readout. [fraction at 1 keVee]"""
    resolution_constant: float = Field(default=0.0, ge=0.0)
    """Constant term of σ/E, for a keVee readout [fraction]."""
    resolution_noise_kevee: float = Field(default=0.0, ge=0.0)
    """Noise term of the resolution, for a keVee readout [keVee]."""
    efficiency: Efficiency = Efficiency()
    """Detection-efficiency turn-on (the ``[detector.efficiency]`` table)."""
    roi_min: float = 0.0
    """Lower end of the selection window in the readout unit [readout units: PE or keVee]."""
    roi_max: PositiveFloat = 60.0
    """Upper end of the selection window in the readout unit [readout units: PE or keVee]."""
    time_window_us: Annotated[tuple[float, float], AsTuple] | None = None
    """Selection window in event time (SNS), [start, stop) in µs; None for a steady source
    (reactor). [µs]"""

    @field_validator("time_window_us")
    @classmethod
    def _window_ordered(cls, window: tuple[float, float] | None) -> tuple[float, float] | None:
        if window is not None and not window[0] < window[1]:
            msg = (
                f"the time window [{window[0]:g}, {window[1]:g}] must be [start, stop] with "
                "start < stop (µs after the proton pulse); swap or fix them"
            )
            raise ValueError(msg)
        return window

    @model_validator(mode="after")
    def _roi_ordered(self) -> CevnsDetector:
        if not self.roi_min < self.roi_max:
            msg = (
                f"roi_min = {self.roi_min:g} must be below roi_max = {self.roi_max:g} (the "
                "selection window in the readout unit); swap or fix them"
            )
            raise ValueError(msg)
        return self


class CevnsPhysics(Section):
    """Cross-section inputs of the CEvNS generator (the physical parameters its knobs shift)."""

    couplings: Literal["corrected", "tree"] = "corrected"
    """Weak-charge scheme (farm.physics.cevns.weak_charge)."""
    sin2w: float = Field(default=0.23857, gt=0.0, lt=1.0)
    """sin²θ_W at low Q²: the physical parameter of the ``sin2w`` systematic. [1]"""
    form_factor: Literal["helm", "klein"] = "helm"
    """Nuclear form factor: helm or klein (Klein–Nystrand)."""
    neutron_radius_scale: PositiveFloat = 1.0
    """Factor on the Helm rms radius of every nucleus: the ``cevns_rms_radius`` systematic. [factor]"""


class NuscopePhysics(Section):
    """Cross-section inputs of the nuSCOPE generator (the physical parameters its knobs shift)."""

    ccqe_ma_mev: PositiveFloat = 1000.0
    """CCQE axial mass in MeV: the ``ccqe_ma_mev`` systematic. [MeV]"""
    noqe_scale: PositiveFloat = 1.0
    """Factor on the non-QE charged-current cross section: the ``noqe_norm`` systematic. [factor]"""


class IbdPhysics(Section):
    """Cross-section input of the IBD generator."""

    xsec_scale: PositiveFloat = 1.0
    """Factor on the IBD cross section: the ``ibd_norm`` systematic. [factor]"""


class SteadyStateBackground(Section):
    events: float = Field(default=0.0, ge=0.0)
    """Expected steady-state events in the ROI and time window over the exposure (off-beam measurement). [events]"""
    slope: PositiveFloat = 20.0
    """Exponential falloff of the readout spectrum (readout units). [readout units: PE or keVee]"""


class SnsBackgrounds(Section):
    brn_events: float = Field(default=0.0, ge=0.0)
    """Expected beam-related-neutron events over the exposure, before selection. [events]"""
    brn_recoil_slope_kev: PositiveFloat = 15.0
    """Exponential slope of the beam-related-neutron recoil spectrum [keV, nuclear recoil]."""
    lead_mass_kg: float = Field(default=0.0, ge=0.0)
    """Lead shielding in which ν_e CC makes neutrino-induced neutrons. [kg]"""
    nin_detection_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability that a neutron emitted in the lead deposits a recoil in the detector. [probability]"""
    nin_recoil_slope_kev: PositiveFloat = 15.0
    """Exponential slope of the neutrino-induced-neutron recoil spectrum [keV, nuclear recoil]."""
    steady_state: SteadyStateBackground = SteadyStateBackground()
    """Steady-state (beam-off) background (the ``[backgrounds.steady_state]`` table)."""


class IbdDetector(Section):
    """Liquid-scintillator IBD detector."""

    mass_kg: PositiveFloat = 3000.0
    """Scintillator mass [kg]."""
    free_protons_per_kg: PositiveFloat = 7.0e25
    """Free (hydrogen) protons per kg of scintillator [protons/kg]."""
    resolution_stochastic: PositiveFloat = 0.03
    """σ/E at 1 MeV of visible energy (scales as 1/√E). [fraction at 1 MeV]"""
    energy_scale: PositiveFloat = 1.0
    """Factor on the reconstructed prompt energy (calibration): the ``energy_scale`` systematic. [factor]"""
    efficiency: float = Field(default=0.8, gt=0.0, le=1.0)
    """Detection efficiency of an IBD event, prompt and delayed together [fraction]."""
    prompt_min_mev: float = 0.7
    """Lower end of the prompt-energy window [MeV]."""
    prompt_max_mev: PositiveFloat = 12.0
    """Upper end of the prompt-energy window [MeV]."""
    accidental_events: float = Field(default=0.0, ge=0.0)
    """Expected accidental coincidences in the window over the exposure [events]."""

    @model_validator(mode="after")
    def _window_ordered(self) -> IbdDetector:
        if not self.prompt_min_mev < self.prompt_max_mev:
            msg = (
                f"prompt_min_mev = {self.prompt_min_mev:g} must be below prompt_max_mev = "
                f"{self.prompt_max_mev:g} (the prompt-energy window); swap or fix them"
            )
            raise ValueError(msg)
        return self


class NuscopeDetector(Section):
    """nuSCOPE liquid-argon detector with tagged and monitored neutrinos."""

    mass_t: PositiveFloat = 500.0
    """Liquid-argon target mass [t]."""
    tagging_efficiency: float = Field(default=0.8, gt=0.0, le=1.0)
    """Probability that an interacting neutrino is tagged by its parent's decay [fraction]."""
    tagging_resolution: PositiveFloat = 0.005
    """Relative resolution of the tagged neutrino energy, σ_E/E [fraction]."""
    energy_scale: PositiveFloat = 1.0
    """Factor on the tagged neutrino energy (the tagger's momentum scale): the ``energy_scale``
    systematic. [factor]"""
    accidental_tag_fraction: float = Field(default=0.02, ge=0.0, le=1.0)
    """Share of interactions tagged with the wrong parent (accidental tags) [fraction]."""
    muon_momentum_resolution: PositiveFloat = 0.05
    """Relative muon momentum resolution, σ_p/p [fraction]."""
    muon_angle_resolution_rad: PositiveFloat = 0.01
    """Muon angle resolution [rad]."""
    numu_selection_efficiency: float = Field(default=0.9, gt=0.0, le=1.0)
    """Probability that a ν_μ CC event is selected [fraction]."""
    nue_misid_probability: float = Field(default=0.02, ge=0.0, le=1.0)
    """Probability that a ν_e CC event is selected as ν_μ [fraction]."""


class GenerationSection(Section):
    events: PositiveInt = 1_000_000
    """Events generated into the store [events]."""
    importance_power: float = Field(default=0.0, ge=0.0, le=8.0)
    """Reactor samples: draw E_ν from S(E)·E^k and weight back (0: from the spectrum itself). [1]"""
    seed: Annotated[int, Field(ge=0)] = 20261121
    """Seed of the event generation [—]."""
    shard_size: PositiveInt = 8_388_608
    """Rows per shard: 1 to 2**26, above 2**20 a multiple of 65 536 (``farm.store.schema``). [rows]"""
    component_fractions: dict[str, float] = Field(default_factory=dict)
    """Share of generated events per component; defaults per generator. Weights keep Σw exact. [fraction]"""

    @field_validator("shard_size")
    @classmethod
    def _shard_size(cls, v: int) -> int:
        from farm.store.schema import check_shard_rows

        return check_shard_rows(v)
