"""The tables of an ingest mapping that say how many events the inputs stand for (docs/ingest.md).

``[exposure]`` (what the events are over), ``[target]`` (the nuclei, checked against every
event), ``[flux]`` (the sample's flux, :class:`farm.config.flux.FluxSection`),
``[normalization]`` (how generator weights become expected events, and the cross-check of that
number against σ̄ · Φ · N_T), ``[generator]`` and ``[store]`` (provenance), and ``[[weights]]``
(precomputed universe weights written into the store).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from farm.config._base import Section

__all__ = [
    "TARGET_SCALES",
    "ExposureSection",
    "GeneratorSection",
    "NormalizationSection",
    "Nucleus",
    "StoreSection",
    "TargetSection",
    "WeightsSection",
]

TARGET_SCALES = ("nucleus", "nucleon", "molecule")
"""What a flux-averaged cross section may be per: a target nucleus (atom), a nucleon, a molecule."""
XsecTargetScale = Literal["nucleus", "nucleon", "molecule"]


class NormalizationSection(Section):
    """How generator weights become expected events over ``[exposure]``; exactly one way.

    - ``events_per_weight``: w = wght · events_per_weight;
    - ``expected_events``: w = wght · N / Σ wght (N over all inputs);
    - ``flux_averaged_xsec_cm2`` (σ̄, a number or ``"file"``: NuHepMC's
      FluxAveragedTotalCrossSection): N = σ̄ · Φ · N_T, then as ``expected_events``. Φ is
      ``fluence_per_cm2``, else the integral of ``[flux]`` over the exposure; N_T counts what σ̄
      is per (``xsec_target_scale``): nuclei (``targets``, or Σ count of ``[target] nuclei``),
      nucleons (Σ count · A) or molecules (``[target] molecules``).

    Whatever the way, the expected events are cross-checked: σ̄ · Φ_flux · N_T (σ̄ from this table
    or the file, Φ_flux from ``[flux]``, N_T from ``[target]``) must agree with the declared
    count to ``cross_check_tolerance``, or the ingest refuses and prints both.
    """

    weight: str | None = None
    """Field holding each event's generator weight (GENIE: ``wght``); none: every event weighs 1."""
    events_per_weight: PositiveFloat | None = None
    expected_events: PositiveFloat | None = None
    flux_averaged_xsec_cm2: PositiveFloat | Literal["file"] | None = None
    """σ̄ in cm² per ``xsec_target_scale``; with ``events_per_weight`` or ``expected_events``
    it only cross-checks them."""
    xsec_target_scale: XsecTargetScale | None = None
    """What σ̄ is per. Required for a σ̄ given here; for ``"file"`` the file's
    NuHepMC.Units.CrossSection.TargetScale is read, and this key, if given, must agree with it."""
    xsec_unit: str | None = None
    """For ``"file"``: the unit of the file's σ̄ where the file does not say
    (NuHepMC.Units.CrossSection.Unit: pb, 1e-38 cm2, cm2, …); must agree where it does."""
    fluence_per_cm2: PositiveFloat | None = None
    """Φ: neutrinos per cm² over the exposure (default: the integral of ``[flux]``)."""
    targets: PositiveFloat | None = None
    """Target nuclei (default: Σ count of ``[target] nuclei``; must agree with it if both)."""
    cross_check: bool = True
    """false: do not cross-check the expected events (the store records that it was not)."""
    cross_check_tolerance: float = Field(default=0.01, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_way(self) -> NormalizationSection:
        # with a σ̄ per nucleus in [target] neither is needed: IngestMapping checks the whole
        if self.events_per_weight is not None and self.expected_events is not None:
            msg = "give events_per_weight or expected_events, not both"
            raise ValueError(msg)
        if isinstance(self.flux_averaged_xsec_cm2, float) and self.xsec_target_scale is None:
            msg = (
                "flux_averaged_xsec_cm2 is per what? set xsec_target_scale = 'nucleus', "
                "'nucleon' or 'molecule' (a per-nucleon σ̄ counted per nucleus is A times too few events)"
            )
            raise ValueError(msg)
        if self.xsec_unit is not None and self.flux_averaged_xsec_cm2 != "file":
            msg = "xsec_unit applies to flux_averaged_xsec_cm2 = 'file' only (a number here is in cm²)"
            raise ValueError(msg)
        return self


class ExposureSection(Section):
    """The exposure the normalisation refers to (``farm ingest --exposure`` rescales it)."""

    value: PositiveFloat
    unit: Literal["POT", "fissions", "seconds"]
    seconds: PositiveFloat | None = None


class GeneratorSection(Section):
    """Recorded in the store; HepMC3 files that name their generator fill in what is left out."""

    name: str | None = None
    version: str | None = None
    tune: str | None = None


class StoreSection(Section):
    """What the event store records about itself (not a ``[sample]`` table: this is no sample
    configuration that ``farm generate`` could run)."""

    sample: str = Field(min_length=1)
    description: str = ""


class Nucleus(Section):
    """One target nucleus: Z, N, A = Z + N and how many there are."""

    z: int = Field(ge=0)
    n: int = Field(ge=0)
    a: int = Field(ge=1)
    count: PositiveFloat
    flux_averaged_xsec_cm2: PositiveFloat | None = None
    """σ̄ of this nucleus alone (per ``xsec_target_scale``): give it for every nucleus to
    normalise each target's events separately (a file of events on several targets)."""

    @model_validator(mode="after")
    def _nucleons(self) -> Nucleus:
        if self.z + self.n != self.a:
            msg = f"z + n must equal a (got z = {self.z}, n = {self.n}, a = {self.a})"
            raise ValueError(msg)
        return self


class TargetSection(Section):
    material: str
    mass_kg: PositiveFloat | None = None
    nuclei: dict[str, Nucleus] = Field(default_factory=dict)
    molecules: PositiveFloat | None = None
    """Molecules in the target, for a σ̄ per molecule."""
    check: bool = True
    """Check every event's target (``pdg_field``, else ``z_field`` and ``a_field``) against
    ``nuclei``; false records that it was not checked."""
    pdg_field: str = "tgt"
    """Field with the target's PDG code (10LZZZAAAI; 2212 a free proton)."""
    z_field: str = "Z"
    a_field: str = "A"

    @model_validator(mode="after")
    def _distinct(self) -> TargetSection:
        seen: dict[tuple[int, int], str] = {}
        for name, nucleus in self.nuclei.items():
            key = (nucleus.z, nucleus.a)
            if key in seen:
                msg = f"nuclei {seen[key]} and {name} are both Z = {key[0]}, A = {key[1]}: list each once"
                raise ValueError(msg)
            seen[key] = name
        given = [n.flux_averaged_xsec_cm2 is not None for n in self.nuclei.values()]
        if any(given) and not all(given):
            msg = "give flux_averaged_xsec_cm2 for every nucleus (per-target normalisation) or for none"
            raise ValueError(msg)
        return self

    @property
    def per_target_xsec(self) -> bool:
        return bool(self.nuclei) and all(
            n.flux_averaged_xsec_cm2 is not None for n in self.nuclei.values()
        )


class WeightsSection(Section):
    """A set of precomputed per-event universe weights written into the store at ingest.

    From a branch of the input holding an array per event (``branch``: a gst/ROOT friend
    branch such as MicroBooNE's ``weightsGenie``), from the event's HepMC3 weights named
    ``<prefix><i>`` (``hepmc3_prefix``), or from a friend file (``file``: parquet or npz) keyed
    by event_id or by input entry (``key``). ``farm weights add`` attaches one to a store later.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    branch: str | None = None
    hepmc3_prefix: str | None = None
    file: str | None = None
    key: Literal["event_id", "entry"] = "event_id"
    """How a friend ``file`` finds each event: the store's ``event_id``, or ``entry`` (with
    ``input``, the input file's index) as numbered in the input files, [ingest] keep or not."""
    dtype: Literal["float32", "float64"] = "float32"
    mode: Literal["multisim", "unisim"] = "multisim"
    universes: PositiveInt | None = None
    """How many weights each event holds (checked); default: as many as the first event has."""

    @model_validator(mode="after")
    def _one_source(self) -> WeightsSection:
        if sum(x is not None for x in (self.branch, self.hepmc3_prefix, self.file)) != 1:
            msg = f"weights {self.name!r}: give exactly one of branch, hepmc3_prefix, file"
            raise ValueError(msg)
        return self
