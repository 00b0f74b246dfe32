"""Nuclear targets and detector materials.

A :class:`Target` is one nuclide: its charges, mass number and nuclear mass. Nuclear masses
are built from AME2020 atomic masses (Wang et al., Chin. Phys. C 45, 030003 (2021)) as

    M_nucleus = m_atom[u] · AMU_MEV − Z · m_e,

neglecting the total electron binding energy (≈ 0.2 MeV for Cs, 2 × 10⁻⁶ of the mass, far
below any cross-section uncertainty).

:data:`MATERIALS` gives the nuclide composition of detector materials, per formula unit, with
natural isotopic abundances (IUPAC, Berglund & Wieser, Pure Appl. Chem. 83, 397 (2011)).
:func:`targets_per_kg` turns a composition into nuclei per kilogram, so that the number of
targets of a detector is ``mass_kg * targets_per_kg(material)[nuclide]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from farm.physics.constants import AMU_MEV, MASS_ELECTRON_MEV

__all__ = [
    "AMU_KG",
    "MATERIALS",
    "TARGETS",
    "Target",
    "get_target",
    "material_mass_u",
    "targets_per_kg",
]

AMU_KG = 1.66053906660e-27
"""Atomic mass unit in kg (CODATA 2018)."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One nuclide seen as a scattering target.

    Attributes
    ----------
    name : str
        Key in :data:`TARGETS`, e.g. ``"Ar40"``.
    z, n, a : int
        Proton number, neutron number and mass number (``a == z + n``).
    atomic_mass_u : float
        AME2020 atomic mass (neutral atom, electrons included) in u.
    mass_mev : float
        Nuclear mass in MeV: ``atomic_mass_u * AMU_MEV - z * m_e``.
    """

    name: str
    z: int
    n: int
    a: int
    atomic_mass_u: float
    mass_mev: float

    def __post_init__(self) -> None:
        if self.a != self.z + self.n:
            msg = f"target {self.name}: mass number a={self.a} must equal z + n = {self.z + self.n}"
            raise ValueError(msg)


def _nuclide(name: str, z: int, a: int, atomic_mass_u: float) -> Target:
    return Target(
        name=name,
        z=z,
        n=a - z,
        a=a,
        atomic_mass_u=atomic_mass_u,
        mass_mev=atomic_mass_u * AMU_MEV - z * MASS_ELECTRON_MEV,
    )


# AME2020 atomic masses in u.
_NUCLIDES = (
    _nuclide("H1", 1, 1, 1.007825031898),
    _nuclide("C12", 6, 12, 12.0),
    _nuclide("O16", 8, 16, 15.994914619257),
    _nuclide("Na23", 11, 23, 22.989769282),
    _nuclide("Ar36", 18, 36, 35.967545105),
    _nuclide("Ar38", 18, 38, 37.96273211),
    _nuclide("Ar40", 18, 40, 39.9623831237),
    _nuclide("Ge70", 32, 70, 69.92424875),
    _nuclide("Ge72", 32, 72, 71.922075826),
    _nuclide("Ge73", 32, 73, 72.923458956),
    _nuclide("Ge74", 32, 74, 73.921177760),
    _nuclide("Ge76", 32, 76, 75.921402726),
    _nuclide("I127", 53, 127, 126.9044719),
    _nuclide("Xe132", 54, 132, 131.9041550856),
    _nuclide("Cs133", 55, 133, 132.905451961),
)

TARGETS: Mapping[str, Target] = MappingProxyType({t.name: t for t in _NUCLIDES})
"""All known nuclides by name. ``"H1"`` is the free proton (IBD bookkeeping)."""

MATERIALS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        # One formula unit each. Mono-isotopic elements: Na, I, Cs.
        "CsI": MappingProxyType({"Cs133": 1.0, "I127": 1.0}),
        "NaI": MappingProxyType({"Na23": 1.0, "I127": 1.0}),
        # Atmospheric argon (IUPAC 2009 abundances).
        "Ar": MappingProxyType({"Ar36": 0.003336, "Ar38": 0.000629, "Ar40": 0.996035}),
        # Natural germanium (IUPAC 2009 abundances).
        "Ge": MappingProxyType(
            {"Ge70": 0.2057, "Ge72": 0.2745, "Ge73": 0.0775, "Ge74": 0.3650, "Ge76": 0.0773}
        ),
        # H, C, O as their main isotopes only (²H, ¹³C, ¹⁷O, ¹⁸O: ≤ 1.1 % by number).
        "H2O": MappingProxyType({"H1": 2.0, "O16": 1.0}),
        "CH2": MappingProxyType({"C12": 1.0, "H1": 2.0}),
    }
)
"""Nuclides per formula unit of each detector material (fractions for mixed isotopes)."""


def get_target(name: str | Target) -> Target:
    """Return the :class:`Target` called ``name`` (a Target is returned unchanged).

    Raises
    ------
    ValueError
        If ``name`` is not a key of :data:`TARGETS`; the message lists the allowed names.
    """
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        msg = f"unknown target {name!r}; allowed: {', '.join(sorted(TARGETS))}"
        raise ValueError(msg) from None


def _get_material(material: str) -> Mapping[str, float]:
    try:
        return MATERIALS[material]
    except (KeyError, TypeError):
        msg = f"unknown material {material!r}; allowed: {', '.join(sorted(MATERIALS))}"
        raise ValueError(msg) from None


def material_mass_u(material: str) -> float:
    """Mass of one formula unit of ``material`` in u (neutral atoms, electrons included).

    ``material_mass_u("CsI")`` = m(¹³³Cs) + m(¹²⁷I) = 259.81 u; for natural germanium it is the
    abundance-weighted atomic mass, 72.63 u (IUPAC standard atomic weight 72.630(8)).
    """
    composition = _get_material(material)
    return sum(count * TARGETS[name].atomic_mass_u for name, count in composition.items())


def targets_per_kg(material: str) -> dict[str, float]:
    """Number of nuclei of each nuclide in one kilogram of ``material``.

    N_i / kg = count_i / (m_formula[u] · AMU_KG), with ``count_i`` from :data:`MATERIALS`.

    Examples
    --------
    >>> round(targets_per_kg("Ar")["Ar40"] / 1e25, 4)
    1.5015
    """
    composition = _get_material(material)
    units_per_kg = 1.0 / (material_mass_u(material) * AMU_KG)
    return {name: count * units_per_kg for name, count in composition.items()}
