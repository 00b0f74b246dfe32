"""The flux: a first-class object that generation, ingest, reweighting, extraction and
prediction all take (docs/architecture.md).

- :mod:`farm.flux.model`: :class:`Flux` (per-flavour spectra over an exposure, and the flux's
  own universes) and its quadrature rule;
- :mod:`farm.flux.sources`: the built-in source models (π-DAR, reactor, nuSCOPE beamline);
- :mod:`farm.flux.files`: flux files (CSV, NumPy, ROOT TH1, HEPData ``probe_flux`` tables), with
  units declared and checked (:mod:`farm.flux.units`);
- :mod:`farm.flux.record`: a flux as an event store records it, and back;
- :mod:`farm.flux.universes`: a flux file's universes on the analysis flux bins.
"""

from __future__ import annotations

from farm.flux.model import (
    DensitySpectrum,
    Flux,
    FluxRule,
    FluxUniverses,
    HistogramSpectrum,
    LineSpectrum,
    SampledSpectrum,
    Spectrum,
)

__all__ = [
    "DensitySpectrum",
    "Flux",
    "FluxRule",
    "FluxUniverses",
    "HistogramSpectrum",
    "LineSpectrum",
    "SampledSpectrum",
    "Spectrum",
]
