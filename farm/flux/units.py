"""Units of a flux file: what one number of a flux histogram means, declared and checked.

A flux unit is written as neutrinos per area, optionally per exposure and per energy, e.g.
``nu/cm2/POT/GeV`` (a density, PPFX and most beam groups), ``nu/m2/1e6POT/50MeV`` (per bin of
50 MeV, per million protons), ``nu/cm2/POT`` (per bin), ``nu/cm2/s`` (a steady source) or
``nu/cm2`` (over the whole exposure). A factor may precede the exposure or the energy. The farm
converts every bin to ν/cm² over the run's exposure E (in that exposure's unit):

    Φ_b = c_b · (1 cm² / A) · (E / X) · (Δ_b / ΔE)

with c_b the file's number, A the area unit in cm², X the exposure the unit is per (e.g. 10⁶ POT),
Δ_b the bin width and ΔE the energy the unit is per (omitted: the number is per bin already).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ENERGY_UNITS_MEV", "EXPOSURE_UNITS", "FluxUnit", "energy_factor", "parse_flux_unit"]

ENERGY_UNITS_MEV = {"eV": 1e-6, "keV": 1e-3, "MeV": 1.0, "GeV": 1e3}
"""Energy units a flux file may use, in MeV."""
_AREAS_CM2 = {"cm2": 1.0, "cm^2": 1.0, "m2": 1e4, "m^2": 1e4}
EXPOSURE_UNITS = {
    "POT": "POT",
    "pot": "POT",
    "s": "seconds",
    "fission": "fissions",
    "fissions": "fissions",
}
"""Exposure words of a flux unit → the exposure unit of an ingest mapping or event store."""
_NEUTRINOS = ("nu", "neutrinos", "")
_NUMBER = re.compile(r"^([0-9.]+(?:[eE][+-]?[0-9]+)?)?\s*(.*)$")


@dataclass(frozen=True, kw_only=True)
class FluxUnit:
    """A parsed flux unit (see the module docstring)."""

    text: str
    area_cm2: float
    exposure_unit: str | None
    """``POT``, ``seconds`` or ``fissions``; None: the numbers are over the whole exposure."""
    per_exposure: float
    energy_mev: float | None
    """The energy the numbers are per (a density); None: per bin."""

    def bin_factor(self, widths_mev: object, exposure: float | None) -> object:
        """Multiplier from the file's numbers to ν/cm² per bin over ``exposure``."""
        factor = 1.0 / self.area_cm2
        if self.exposure_unit is not None:
            if exposure is None:
                msg = f"flux unit {self.text!r} is per {self.exposure_unit}: the run's exposure is needed"
                raise ValueError(msg)
            factor *= exposure / self.per_exposure
        if self.energy_mev is None:
            return factor
        return factor * (widths_mev / self.energy_mev)  # type: ignore[operator]


def energy_factor(unit: str, what: str) -> float:
    """MeV per ``unit``; a ValueError names ``what`` and the allowed units."""
    try:
        return ENERGY_UNITS_MEV[unit]
    except KeyError:
        msg = f"{what}: unknown energy unit {unit!r}; allowed: {', '.join(ENERGY_UNITS_MEV)}"
        raise ValueError(msg) from None


def parse_flux_unit(text: str) -> FluxUnit:
    """Parse ``nu/cm2/POT/GeV``-style units (see the module docstring).

    >>> u = parse_flux_unit("nu/m2/1e6POT/50MeV")
    >>> (u.area_cm2, u.exposure_unit, u.per_exposure, u.energy_mev)
    (10000.0, 'POT', 1000000.0, 50.0)
    >>> parse_flux_unit("/cm^2/GeV").exposure_unit is None
    True
    """
    hint = (
        "write it as nu/AREA[/EXPOSURE][/ENERGY], e.g. nu/cm2/POT/GeV, nu/m2/1e6POT/50MeV, "
        "nu/cm2/s or nu/cm2 (over the whole exposure); AREA is cm2 or m2, EXPOSURE POT, s or "
        f"fission, ENERGY one of {', '.join(ENERGY_UNITS_MEV)}"
    )
    parts = [p.strip() for p in text.replace("·", "/").split("/")]
    if not parts or parts[0] not in _NEUTRINOS:
        msg = f"flux unit {text!r}: expected neutrinos (nu) per area; {hint}"
        raise ValueError(msg)
    rest = parts[1:]
    if not rest or rest[0] not in _AREAS_CM2:
        msg = f"flux unit {text!r}: the first divisor must be an area (cm2 or m2); {hint}"
        raise ValueError(msg)
    area = _AREAS_CM2[rest[0]]
    exposure_unit, per_exposure, energy = None, 1.0, None
    for part in rest[1:]:
        match = _NUMBER.match(part.replace(" ", ""))
        number, word = (match.group(1), match.group(2)) if match else (None, part)
        amount = float(number) if number else 1.0
        if word in EXPOSURE_UNITS and exposure_unit is None and energy is None:
            exposure_unit, per_exposure = EXPOSURE_UNITS[word], amount
        elif word in ENERGY_UNITS_MEV and energy is None:
            energy = amount * ENERGY_UNITS_MEV[word]
        else:
            msg = f"flux unit {text!r}: cannot read {part!r}; {hint}"
            raise ValueError(msg)
        if not amount > 0:
            msg = f"flux unit {text!r}: {part!r} must be per a positive amount; {hint}"
            raise ValueError(msg)
    return FluxUnit(
        text=text,
        area_cm2=area,
        exposure_unit=exposure_unit,
        per_exposure=per_exposure,
        energy_mev=energy,
    )
