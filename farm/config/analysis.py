"""Configuration of the measurement: binning, systematics, extraction, data and models.

These tables sit in the same TOML file as the sample (``[binning]``, ``[[systematics]]``,
``[analysis]``, ``[data]``, ``[[models]]``).
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from farm.config._base import AsTuple, Section

__all__ = [
    "KNOBS",
    "AnalysisSection",
    "BinningSection",
    "DataSection",
    "ModelSection",
    "SystematicSection",
]

FLAVORS = ("nue", "nuebar", "numu", "numubar")

KNOBS: dict[str, str] = {
    "cevns_rms_radius": "fractional change of the neutron rms radius in the Helm form factor (per-event)",
    "sin2w": "absolute change of the weak mixing angle in tree-level CEvNS couplings (per-event)",
    "ccqe_ma_mev": "absolute change of the CCQE axial mass in MeV (per-event)",
    "noqe_norm": "fractional normalisation of non-QE charged current",
    "ibd_norm": "fractional normalisation of the IBD cross section",
    "brn_norm": "fractional normalisation of beam-related neutrons",
    "nin_norm": "fractional normalisation of neutrino-induced neutrons",
    "ssb_norm": "fractional normalisation of the steady-state background",
    "accidental_norm": "fractional normalisation of accidental coincidences",
    "energy_scale": "fractional scale of the reconstructed observable (lateral shift)",
    "quenching": "fractional scale of the quenching factor (lateral shift of nuclear recoils)",
    "light_yield": "fractional scale of the light yield (lateral shift of the readout)",
    "threshold": "absolute shift of the efficiency turn-on, in readout units (per-event)",
    "efficiency": "fractional normalisation of the detection efficiency",
    "channel_norm": "fractional normalisation of the events of `channels` (built-in or declared channel names)",
}


def _increasing(name: str, edges: list[float]) -> list[float]:
    if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
        msg = f"{name} must hold at least two strictly increasing bin edges"
        raise ValueError(msg)
    return edges


class BinningSection(Section):
    observable: str
    """Reconstructed column binned in reco space, e.g. reco_pe, reco_kevee, etag_mev."""
    reco_edges: list[float]
    """Bin edges of the reconstructed observable, increasing [the observable's units: PE, keVee
    or MeV]."""
    truth: str = "total"
    """Truth column binned in truth space (enu_true, recoil_mev, …) or "total" for one bin."""
    truth_edges: list[float] | None = None
    """Bin edges of the truth variable, increasing; none for truth = "total" [the truth column's
    units: MeV for enu_true]."""
    flux_edges_mev: dict[str, list[float]]
    """E_ν bin edges per flavour on which flux universes are defined. [MeV]"""
    signal_flavors: list[str] | None = None
    """Flavours whose integrated flux Φ normalises the cross section (default: all of flux_edges_mev)."""

    @field_validator("reco_edges")
    @classmethod
    def _reco(cls, v: list[float]) -> list[float]:
        return _increasing("reco_edges", v)

    @field_validator("flux_edges_mev")
    @classmethod
    def _flux(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for flavor, edges in v.items():
            if flavor not in FLAVORS:
                msg = f"unknown flavour {flavor!r}; allowed: {', '.join(FLAVORS)}"
                raise ValueError(msg)
            _increasing(f"flux_edges_mev.{flavor}", edges)
        return v

    @property
    def flux_normalising_flavors(self) -> list[str]:
        return sorted(self.signal_flavors or self.flux_edges_mev)

    @model_validator(mode="after")
    def _truth(self) -> BinningSection:
        unknown = sorted(set(self.signal_flavors or ()) - set(self.flux_edges_mev))
        if unknown:
            msg = f"signal_flavors {', '.join(unknown)} need flux_edges_mev entries"
            raise ValueError(msg)
        if self.truth == "total":
            if self.truth_edges is not None:
                msg = "truth = 'total' is one bin: remove truth_edges or name a truth column"
                raise ValueError(msg)
        elif self.truth_edges is None:
            msg = f"truth = {self.truth!r} needs truth_edges"
            raise ValueError(msg)
        else:
            _increasing("truth_edges", self.truth_edges)
        return self

    @property
    def n_truth(self) -> int:
        return 1 if self.truth_edges is None else len(self.truth_edges) - 1

    @property
    def n_reco(self) -> int:
        return len(self.reco_edges) - 1


class SystematicSection(Section):
    """One named systematic: a flux variation, a knob, or the MC-statistics bootstrap."""

    name: str = Field(min_length=1)
    """Name of the systematic: labels its universes and its covariance."""
    kind: Literal["flux", "knob", "bootstrap", "weights"]
    """``weights``: precomputed per-event universe weights stored with the events
    (``weight_set``; ``farm weights add``)."""
    group: str | None = None
    """Group the systematic's covariance adds into; default "flux" (flux), "mcstat" (bootstrap),
    "background" (brn_norm, nin_norm, ssb_norm, accidental_norm), "detector" (energy_scale,
    quenching, light_yield, threshold, efficiency), else "xsec"."""
    mode: Literal["multisim", "unisim"] = "multisim"
    """multisim: random universes (throws of them); unisim: two universes at ±1σ."""
    throws: PositiveInt = 100
    """Universes thrown by a multisim systematic [universes]."""
    # flux: a covariance on the E_ν bins per flavour
    normalization: float = Field(default=0.0, ge=0.0)
    """Flux: 1σ uncertainty of the flux normalisation, the same in every E_ν bin [fraction]."""
    shape: float = Field(default=0.0, ge=0.0)
    """Flux: 1σ shape uncertainty per E_ν bin, correlated over ``shape_correlation_length``
    [fraction]."""
    shape_correlation_length: PositiveFloat = 0.3
    """Correlation length of the shape uncertainty in ln(E_ν). [ln E_ν]"""
    fission_fraction_sigma: float = Field(default=0.0, ge=0.0)
    """Reactor: absolute uncertainty of each fission fraction (propagated to the spectrum). [absolute fraction]"""
    covariance_file: str | None = None
    """A .npy fractional covariance over the touched flux bins (flavours in alphabetical order,
    then energy), added to normalization/shape; checked symmetric positive semi-definite."""
    flavors: list[str] | None = None
    """Flux: the flavours it varies (default: every flavour of ``[binning] flux_edges_mev``)."""
    from_flux: bool = False
    """Flux: throw the flux's own universes (its file's universe histograms, one universe each,
    or its covariance), on the analysis flux bins (farm.flux.universes)."""
    preserve_integral: bool = False
    """Flux: make every throw a pure shape change, keeping the integrated flux Φ of the signal
    flavours (``[binning] signal_flavors``) at its nominal value; the throw's normalisation part
    is removed (``farm.systematics.universes.integral_preserving_projector``). Not with
    ``normalization``, which only moves Φ: declare that as a separate flux systematic."""
    # knob
    parameter: str | None = None
    """Knob: the parameter it shifts (the knob table below)."""
    sigma: float = Field(default=0.0, ge=0.0)
    """Knob: the 1σ shift of the parameter, in the parameter's own units: a fraction for the
    fractional knobs (0.1 = 10 %), MeV for ccqe_ma_mev, readout units (PE or keVee) for
    threshold, an absolute value for sin2w [the knob's units: see the knob table]."""
    channels: list[str] | None = None
    """``channel_norm``: the channels whose events it normalises."""
    # weights
    weight_set: str | None = None
    """The store's weight set (``farm weights add STORE --name NAME``): one universe per column,
    the first ``throws`` of them where ``throws`` is given (default all)."""

    @model_validator(mode="after")
    def _consistent(self) -> SystematicSection:
        if self.kind == "knob":
            if self.parameter not in KNOBS:
                msg = f"systematic {self.name!r}: parameter must be one of {', '.join(KNOBS)} (got {self.parameter!r})"
                raise ValueError(msg)
            if self.sigma <= 0:
                msg = f"systematic {self.name!r}: a knob needs sigma > 0"
                raise ValueError(msg)
        elif self.parameter is not None:
            msg = f"systematic {self.name!r}: `parameter` only applies to kind = 'knob'"
            raise ValueError(msg)
        if (self.parameter == "channel_norm") != bool(self.channels):
            msg = (
                f"systematic {self.name!r}: parameter = 'channel_norm' and channels = [NAME, …] "
                "go together (the channels whose events it normalises)"
            )
            raise ValueError(msg)
        if (self.kind == "weights") != (self.weight_set is not None):
            msg = f"systematic {self.name!r}: kind = 'weights' and weight_set = NAME go together"
            raise ValueError(msg)
        if self.from_flux and self.kind != "flux":
            msg = f"systematic {self.name!r}: `from_flux` only applies to kind = 'flux'"
            raise ValueError(msg)
        if self.covariance_file is not None and self.kind != "flux":
            msg = f"systematic {self.name!r}: `covariance_file` only applies to kind = 'flux'"
            raise ValueError(msg)
        if self.preserve_integral and self.kind != "flux":
            msg = f"systematic {self.name!r}: `preserve_integral` only applies to kind = 'flux'"
            raise ValueError(msg)
        if self.preserve_integral and self.normalization > 0:
            msg = (
                f"systematic {self.name!r}: preserve_integral = true keeps the integrated flux Φ "
                f"fixed, but normalization = {self.normalization:g} only moves Φ; declare the "
                "normalisation as a separate flux systematic, or set preserve_integral = false"
            )
            raise ValueError(msg)
        if (
            self.kind == "flux"
            and self.normalization == 0
            and self.shape == 0
            and self.fission_fraction_sigma == 0
            and self.covariance_file is None
            and not self.from_flux
        ):
            msg = f"systematic {self.name!r}: a flux systematic needs normalization, shape or fission_fraction_sigma > 0, a covariance_file, or from_flux = true"
            raise ValueError(msg)
        if self.kind == "bootstrap" and self.mode == "unisim":
            msg = f"systematic {self.name!r}: the bootstrap is multisim only"
            raise ValueError(msg)
        return self

    @property
    def group_name(self) -> str:
        if self.group:
            return self.group
        if self.kind == "flux":
            return "flux"
        if self.kind == "bootstrap":
            return "mcstat"
        if self.kind == "weights":
            return "xsec"
        if self.parameter in _BACKGROUND_KNOBS:
            return "background"
        return "detector" if self.parameter in _DETECTOR_KNOBS else "xsec"

    @property
    def n_universes(self) -> int:
        return 2 if self.mode == "unisim" else self.throws


_DETECTOR_KNOBS = {"energy_scale", "quenching", "light_yield", "threshold", "efficiency"}
_BACKGROUND_KNOBS = {"brn_norm", "nin_norm", "ssb_norm", "accidental_norm"}


class AnalysisSection(Section):
    method: Literal["lsq", "dagostini", "wiener-svd"] = "dagostini"
    """Extraction: lsq (least squares), dagostini (iterative Bayesian) or wiener-svd."""
    iterations: PositiveInt = 4
    """D'Agostini iterations [iterations]."""
    wiener_order: Literal[0, 1, 2] = 2
    """Wiener-SVD: the derivative order of the smoothness matrix, 0, 1 or 2 [—]."""
    covariance_center: Literal["cv", "mean"] = "cv"
    """Centre of the universe covariances: cv (universe 0, the MicroBooNE convention) or mean."""
    covariance_normalization: Literal["n", "n-1"] = "n"
    """Normalisation of the universe covariances: n (1/N) or n-1 (1/(N − 1))."""
    universe_seed: int = Field(default=12345, ge=0)
    """Seed of the universes: a throw depends only on (seed, systematic name, universe index)
    [—]."""
    universes_per_block: PositiveInt = 64
    """Per-event universes evaluated together on one block (bounds the weight matrices' memory). [universes]"""
    universes_per_task: PositiveInt = 256
    """Per-event universes in one work item (chunks never span two systematics). [universes]"""
    knob_universes_per_task: PositiveInt = 2048
    """Universes of one knob systematic in one work item when no weight clamping is declared
    (never fewer than ``universes_per_task``): a knob's fast paths cost a fixed number of exact
    evaluations per event whatever its number of universes, so fewer, wider items cost less. [universes]"""
    blocks_per_task: PositiveInt | None = None
    """Blocks of 65 536 events per work item, a power of 8; default chosen from the store size. [blocks]"""
    all_knob_universes: int = Field(default=0, ge=0)
    """Also throw this many universes with every flux systematic and knob at once (the all-knob
    set, reported as systematic "all_knobs"; not added into the total, which sums the per-knob sets). [universes]"""
    weight_clamp: Annotated[tuple[float, float], AsTuple] | None = None
    """Weight policy: clamp universe/nominal weight ratios into [lo, hi]; None means no clamping. [ratio to the nominal weight]"""
    unphysical_weights: Literal["refuse", "zero", "one"] = "refuse"
    """Weight policy for weight sets (``kind = "weights"``): a NaN, infinite or negative weight
    stops the run naming the event (refuse), or becomes 0 or 1; each is counted per universe
    with the clamped ones (``weight_clamped_total``)."""
    universe_precision: float = Field(default=0.10, gt=0.0, lt=1.0)
    """Target relative Monte-Carlo error of each multisim systematic's covariance (its worst
    variance; √(2/N) for N Gaussian universes, so 0.10 asks for 200): a systematic above it is
    flagged in the dataset, the run summary and the report; ``farm run --until-converged``
    throws more universes until every systematic reaches it. [fraction]"""
    stat_toys: int = Field(default=1000, ge=2)
    """Poisson toys for the data-statistics covariance of a non-linear extraction (D'Agostini
    with several truth bins; relative error of its variances ≈ √(2/stat_toys)). Linear
    extractions (lsq, Wiener-SVD, one truth bin) are propagated exactly and need none. [toys]"""

    @field_validator("wiener_order", mode="before")
    @classmethod
    def _not_a_boolean(cls, v: object) -> object:
        if isinstance(v, bool):  # True == 1 would pass Literal[0, 1, 2]
            msg = "wiener_order is 0, 1 or 2 (a number, not true or false)"
            raise ValueError(msg)
        return v

    @field_validator("blocks_per_task")
    @classmethod
    def _power_of_eight(cls, v: int | None) -> int | None:
        # work items are nodes of the fixed 8-ary reduction tree (farm.plan)
        if v is not None and 8 ** round(math.log(v, 8)) != v:
            msg = "blocks_per_task must be a power of 8 (1, 8, 64, 512, …)"
            raise ValueError(msg)
        return v

    @field_validator("weight_clamp")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0 <= v[0] <= v[1]:
            msg = f"weight_clamp must be [lo, hi] with 0 <= lo <= hi; got {list(v)}"
            raise ValueError(msg)
        return v


class DataSection(Section):
    kind: Literal["fake", "file"] = "fake"
    """fake: fake data from the MC (universe, signal_scale, model, poisson, seed); file:
    observed counts from ``file``."""
    file: str | None = None
    """Observed counts per reco bin: .npy, or a text file with one number per reco bin."""
    universe: int = Field(default=0, ge=0)
    """Fake data: the universe whose expectation is the fake data (0: the central value) [—]."""
    signal_scale: PositiveFloat = 1.0
    """Fake data: factor on the signal [factor]."""
    model: str | None = None
    """Alternative model for fake data: module:callable returning σ(E_ν) ratios to the generator's."""
    poisson: bool = True
    """Fake data: draw Poisson fluctuations (false: the expectation itself)."""
    seed: int = Field(default=1, ge=0)
    """Fake data: seed of the Poisson fluctuations [—]."""

    @model_validator(mode="after")
    def _file(self) -> DataSection:
        if self.kind == "file" and not self.file:
            msg = "data kind = 'file' needs file = PATH (observed counts per reco bin)"
            raise ValueError(msg)
        return self


class ModelSection(Section):
    """A plugged-in cross-section model: module:callable giving σ(E_ν) in cm² per target."""

    name: str
    """Label of the model in the result (the ``model`` coordinate)."""
    callable: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    """``module:callable`` returning σ(E_ν) in cm² per target (dσ/dX for kind = dxsec)."""
    kind: Literal["xsec", "dxsec"] = "xsec"
    """xsec: σ(E_ν, flavour); dxsec: dσ/dX(E_ν, X, flavour), for kinematic truth bins."""
