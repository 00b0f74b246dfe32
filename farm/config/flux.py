"""``[flux]``: a flux from a file, in a run configuration or an ingest mapping (docs/ingest.md).

Without ``[flux]`` a generated sample takes its flux from its source model (π-DAR, reactor,
nuSCOPE beamline) and an ingested one from its event store (the flux it was ingested with). With
it, the flux comes from ``file``: a CSV table, a NumPy ``.npz``, ROOT TH1 histograms (read with
uproot) or a HEPData flux table (the ``probe_flux`` variables), its units declared here or in the
file and checked against each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from farm.config._base import Section

__all__ = ["FLUX_FORMATS", "FluxSection", "FluxUniversesSection"]

FLUX_FORMATS = ("csv", "npz", "root", "hepdata", "nuhepmc")
_FLAVORS = ("nue", "nuebar", "numu", "numubar")


def _known_flavors(names: dict[str, str] | list[str] | None) -> None:
    unknown = sorted(set(names or ()) - set(_FLAVORS))
    if unknown:
        msg = f"unknown flavour(s) {', '.join(unknown)}; allowed: {', '.join(_FLAVORS)}"
        raise ValueError(msg)


class FluxUniversesSection(Section):
    """The flux file's own uncertainty: N universe histograms (PPFX-style), or a covariance."""

    kind: Literal["histograms", "covariance"]
    """histograms: universe histograms per flavour; covariance: one covariance matrix over the
    bins."""
    names: dict[str, str] = Field(default_factory=dict)
    """histograms, per flavour: the npz key of an (N, bins) array, or a ROOT name pattern with
    ``{i}`` for universe i (``numu/ppfx/hnumu_univ_{i}``)."""
    count: PositiveInt | None = None
    """histograms from a ROOT pattern: the number of universes (0 … count − 1). [universes]"""
    covariance: str | None = None
    """covariance: the npz key or ROOT TH2 name of the matrix over the bins of ``flavors``, or a
    ``.npy`` file."""
    fractional: bool = True
    """covariance: relative (V_ij / Φ_i Φ_j); false: in the file's units squared."""
    flavors: list[str] | None = None
    """covariance: the flavours its bins run over, in order (default: those of ``[flux]
    flavors``, in the order given there)."""

    @model_validator(mode="after")
    def _complete(self) -> FluxUniversesSection:
        _known_flavors(self.names)
        _known_flavors(self.flavors)
        if self.kind == "histograms" and not self.names:
            msg = "kind = 'histograms' needs names = {FLAVOUR = NAME}: one entry per flavour"
            raise ValueError(msg)
        if self.kind == "covariance" and self.covariance is None:
            msg = (
                "kind = 'covariance' needs covariance = NAME (an npz key, a ROOT TH2, a .npy file)"
            )
            raise ValueError(msg)
        return self


class FluxSection(Section):
    """A flux read from a file; every bin becomes ν/cm² over the run's exposure. A generated SNS
    CEvNS or reactor sample draws its neutrinos from it (the nuSCOPE generator refuses one: its
    beamline Monte Carlo also gives where each neutrino enters the detector); an ingested
    sample's must be the flux it was ingested with."""

    file: str = Field(min_length=1)
    """The flux file (CSV, npz, ROOT, HEPData YAML or NuHepMC), relative to the configuration."""
    format: Literal["csv", "npz", "root", "hepdata", "nuhepmc"] | None = None
    """Default from the suffix: .csv, .npz, .root, .yaml/.yml (HEPData), .hepmc3/.hepmc
    (the beam histograms a NuHepMC file's run info carries, G.C.7)."""
    flavors: dict[str, str] = Field(min_length=1)
    """Flavour → its name in the file: a CSV column, an npz key, a ROOT TH1, a HEPData
    dependent variable (its header name, or its ``probe_particle`` qualifier), or the beam's
    PDG code in a NuHepMC file (``nue = "12"``)."""
    energy_unit: str | None = None
    """Unit of the bin edges (eV, keV, MeV, GeV); a HEPData table declares its own."""
    unit: str | None = None
    """What a bin's number is, e.g. ``nu/cm2/POT/GeV`` (farm.flux.units); a HEPData table
    declares its own. Per POT, s or fission: times the run's exposure in that unit."""
    edges: str | None = None
    """npz key of the bin edges (default ``edges``) or the CSV columns ``LOW,HIGH`` (default
    ``e_low,e_high``)."""
    scale: PositiveFloat = 1.0
    """An extra factor on every bin (and universe). [factor]"""
    universes: FluxUniversesSection | None = None
    """The file's own universes (the ``[flux.universes]`` table)."""

    @field_validator("flavors")
    @classmethod
    def _flavors(cls, v: dict[str, str]) -> dict[str, str]:
        _known_flavors(v)
        return v

    @model_validator(mode="after")
    def _universe_flavors(self) -> FluxSection:
        if self.universes is not None:
            extra = sorted(
                (set(self.universes.names) | set(self.universes.flavors or ())) - set(self.flavors)
            )
            if extra:
                msg = f"universes name flavour(s) {', '.join(extra)} that [flux] flavors does not"
                raise ValueError(msg)
        return self
