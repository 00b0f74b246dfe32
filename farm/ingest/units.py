"""Units an outside generator may write, and their factors to the farm's units (MeV, cm, µs).

GENIE writes energies and momenta in GeV and Q² in GeV² (the gst tree of ``gntpc``; GENIE user
manual, arXiv:1510.05494); HepMC3 events declare MeV or GeV (arXiv:1912.08005). Event-store
columns are in MeV, MeV², cm and µs (``farm.store.schema``).
"""

from __future__ import annotations

from farm.physics.constants import GEV_MEV

__all__ = ["UNITS", "unit_factor"]

UNITS: dict[str, dict[str, float]] = {
    "MeV": {"eV": 1e-6, "keV": 1e-3, "MeV": 1.0, "GeV": GEV_MEV, "TeV": GEV_MEV**2},
    "MeV^2": {"keV^2": 1e-6, "MeV^2": 1.0, "GeV^2": GEV_MEV**2},
    "cm": {"um": 1e-4, "mm": 0.1, "cm": 1.0, "m": 100.0},
    "us": {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6},
    "keVee": {"eVee": 1e-3, "keVee": 1.0, "MeVee": 1e3},
    "PE": {"PE": 1.0},
}
"""Farm unit → {unit an input may use: factor that converts a value in it to the farm unit}."""


def unit_factor(unit: str, farm_unit: str) -> float:
    """Factor that converts a value in ``unit`` to ``farm_unit``: x_farm = factor · x.

    >>> unit_factor("GeV", "MeV"), unit_factor("GeV^2", "MeV^2"), unit_factor("mm", "cm")
    (1000.0, 1000000.0, 0.1)
    """
    allowed = UNITS.get(farm_unit)
    if allowed is None:
        msg = f"the farm column unit {farm_unit!r} takes no conversion; remove `unit`"
        raise ValueError(msg)
    if unit not in allowed:
        msg = f"unit {unit!r} cannot convert to {farm_unit}; allowed: {', '.join(allowed)}"
        raise ValueError(msg)
    return allowed[unit]
