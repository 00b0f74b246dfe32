"""Units and targets of a cross-section measurement, as the NUISANCE HEPData conventions write
them (docs/hepdata.md): ``cross_section_units`` flags (``1e-38 cm2|PerTargetNucleon|per_bin_width``)
and ``target`` formulas (``Ar``, ``CH``, ``1000180400``, ``C[12],H[1]``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["Target", "Units", "header_scale", "parse_target", "parse_units"]

_UNIT_SCALE = {"cm2": 1.0, "pb": 1e-36, "nb": 1e-33, "fb": 1e-39, "mb": 1e-27, "ub": 1e-30}
_SCALINGS = {"pertarget", "pertargetnucleon", "pertargetneutron", "pertargetproton"}
_DENSITY = {"perbinwidth"}


@dataclass(frozen=True, kw_only=True)
class Units:
    """``cross_section_units`` of a measurement: σ in ``scale`` cm² per target scaled as
    ``scaling``, divided by the bin width where ``per_bin_width``."""

    text: str
    scale_cm2: float
    scaling: str
    per_bin_width: bool

    def same(self, other: Units) -> bool:
        return (
            np.isclose(self.scale_cm2, other.scale_cm2, rtol=1e-12, atol=0)
            and self.scaling == other.scaling
            and self.per_bin_width == other.per_bin_width
        )


def _flag(text: str) -> str:
    return re.sub(r"[\s_]", "", text).lower()


def parse_units(text: str, *, where: str = "cross_section_units") -> Units:
    """``"1e-38 cm2|PerTargetNucleon|per_bin_width"`` and the like (case and ``_`` ignored).

    Raises
    ------
    ValueError
        For a flag that is not one of the conventions' units, target scalings or densities.
    """
    scale, scaling, density = 1.0, "pertarget", False
    for raw in (part for part in text.split("|") if part.strip()):
        flag = _flag(raw)
        unit = re.fullmatch(
            r"(?:(\d+(?:\.\d*)?(?:e[-+]?\d+)?|10\^\{?[-+]?\d+\}?)\*?)?(cm2|pb|nb|fb|mb|ub)", flag
        )
        if unit:
            factor = unit.group(1) or "1"
            factor = re.sub(r"10\^\{?([-+]?\d+)\}?", r"1e\1", factor)
            scale = float(factor) * _UNIT_SCALE[unit.group(2)]
        elif flag in _SCALINGS:
            scaling = flag
        elif flag in _DENSITY or flag == "perfirstbinwidth":
            density = True
        else:
            known = "cm2, 1e-38 cm2, pb, nb, fb | PerTarget, PerTargetNucleon, PerTargetNeutron, PerTargetProton | per_bin_width"
            msg = f"{where} = {text!r}: unknown flag {raw.strip()!r}; the conventions know {known}"
            raise ValueError(msg)
    return Units(text=text, scale_cm2=scale, scaling=scaling, per_bin_width=density)


def header_scale(units: str) -> float | None:
    """The cm² scale a variable's header units state, where they state one plainly."""
    text = units.lower().replace(" ", "").replace("$", "").replace("{", "").replace("}", "")
    for name, scale in (("pb", 1e-36), ("nb", 1e-33), ("fb", 1e-39)):
        if re.search(rf"(^|[^a-z]){name}([^a-z]|$)", text):
            return scale
    if "cm^2" not in text and "cm2" not in text:
        return None
    power = re.search(r"10\^(-?\d+)|1e(-?\d+)", text)
    return 10.0 ** int(power.group(1) or power.group(2)) if power else 1.0


# --- targets -----------------------------------------------------------------------------------

_ELEMENTS = {  # symbol: (Z, A of the most abundant isotope)
    "H": (1, 1),
    "He": (2, 4),
    "Li": (3, 7),
    "C": (6, 12),
    "N": (7, 14),
    "O": (8, 16),
    "F": (9, 19),
    "Na": (11, 23),
    "Al": (13, 27),
    "Si": (14, 28),
    "Cl": (17, 35),
    "Ar": (18, 40),
    "Ca": (20, 40),
    "Fe": (26, 56),
    "Cu": (29, 63),
    "Ge": (32, 74),
    "I": (53, 127),
    "Xe": (54, 132),
    "Cs": (55, 133),
    "W": (74, 184),
    "Pb": (82, 208),
}


@dataclass(frozen=True, kw_only=True)
class Target:
    """The nuclei of a ``target`` qualifier, each with its share of the targets (by count)."""

    text: str
    nuclei: tuple[tuple[int, int, float], ...]
    """(Z, A, share of the nuclei)."""

    def per(self, scaling: str) -> float:
        """What one unit of the scaling counts per target nucleus: 1, ⟨A⟩, ⟨A − Z⟩ or ⟨Z⟩."""
        if scaling == "pertarget":
            return 1.0
        z = np.array([n[0] for n in self.nuclei], dtype=np.float64)
        a = np.array([n[1] for n in self.nuclei], dtype=np.float64)
        share = np.array([n[2] for n in self.nuclei])
        value = {"pertargetnucleon": a, "pertargetneutron": a - z, "pertargetproton": z}[scaling]
        return float(share @ value)


def parse_target(text: str) -> Target:
    """``Ar``, ``CH``, ``H2O``, ``CsI``, ``1000180400``, ``C[12],H[1]`` (mass weights, as the
    conventions define them) into nuclei and their shares by count."""
    parts: list[tuple[int, int, float]] = []
    for raw in (p.strip() for p in text.split(",") if p.strip()):
        weight = None
        match = re.fullmatch(r"(.+?)\[([-+.\deE]+)\]", raw)
        if match:
            raw, weight = match.group(1), float(match.group(2))
        if raw.isdigit() and len(raw) == 10:
            code = int(raw)
            nuclei = [((code // 10000) % 1000, (code // 10) % 1000, 1.0)]
        else:
            nuclei = []
            for symbol, count in re.findall(r"([A-Z][a-z]?)(\d*)", raw):
                if symbol not in _ELEMENTS or "".join(re.findall(r"[A-Z][a-z]?\d*", raw)) != raw:
                    msg = f"target {text!r}: cannot read {raw!r}; give an element formula (Ar, CH, H2O) or a nuclear PDG code (1000180400)"
                    raise ValueError(msg)
                z, a = _ELEMENTS[symbol]
                nuclei.append((z, a, float(count or 1)))
        if weight is not None:  # a mass weight: nuclei count as weight / A
            nuclei = [(z, a, weight / a) for z, a, _ in nuclei]
        parts += nuclei
    if not parts:
        msg = f"target {text!r} names no nucleus"
        raise ValueError(msg)
    total = sum(p[2] for p in parts)
    return Target(text=text, nuclei=tuple((z, a, c / total) for z, a, c in parts))
