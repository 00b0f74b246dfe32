"""How many events an ingested sample stands for, computed two ways that must agree (pure).

The mapping declares the expected count N over the exposure one way (``events_per_weight``,
``expected_events``, or σ̄ Φ N_T); independently the event-rate formula

    N = σ̄ · Φ · N_T

(e.g. Formaggio & Zeller, Rev. Mod. Phys. 84, 1307 (2012)) gives it from the generator's
flux-averaged cross section σ̄ (the mapping's, or NuHepMC's FluxAveragedTotalCrossSection in the
file's NuHepMC.Units.CrossSection.Unit), the integral Φ of the sample's flux (``[flux]``) over
the exposure, and the number N_T of what σ̄ is per (NuHepMC.Units.CrossSection.TargetScale, or
``xsec_target_scale``): nuclei Σ n_i, nucleons Σ n_i A_i, or molecules. The two must agree to
``cross_check_tolerance`` (1 %) or the ingest refuses and prints both (Gardiner, Isaacson &
Pickering, arXiv:2310.13211, G.C.4/G.C.5: the CV weight, σ̄ and the exposure together normalise).

Each event then carries w = k · wght with k = N / Σ wght (all inputs, dropped events included);
with a σ̄ per nucleus in ``[target]`` each target's events share their own N_t.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from farm.flux.model import Flux
from farm.ingest.sections import NormalizationSection, TargetSection

__all__ = [
    "Normalisation",
    "NormalisationError",
    "TargetCounts",
    "normalise",
    "target_scale_of",
    "xsec_unit_cm2",
]

_XSEC_UNITS_CM2 = {
    "pb": 1e-36,
    "nb": 1e-33,
    "fb": 1e-39,
    "cm2": 1.0,
    "1e-38cm2": 1e-38,
    "10-38cm2": 1e-38,
    "10^-38cm2": 1e-38,
    "cm2_ten38": 1e-38,
}
_TARGET_SCALES = {
    "pertarget": "target",
    "peratom": "nucleus",
    "pertargetatom": "nucleus",
    "pernucleus": "nucleus",
    "pertargetnucleus": "nucleus",
    "pernucleon": "nucleon",
    "pertargetnucleon": "nucleon",
    "pertargetmolecularnucleon": "nucleon",
    "permolecule": "molecule",
    "pertargetmolecule": "molecule",
}


class NormalisationError(ValueError):
    """The mapping and the inputs do not determine, or contradict, the expected events."""


def xsec_unit_cm2(unit: str) -> float:
    """cm² per unit of a cross section (``pb``, ``1e-38 cm2``, ``cm2``, …).

    >>> xsec_unit_cm2("1e-38 cm2"), xsec_unit_cm2("pb")
    (1e-38, 1e-36)
    """
    key = unit.replace(" ", "").replace("^2", "2").lower()
    try:
        return _XSEC_UNITS_CM2[key]
    except KeyError:
        msg = f"unknown cross-section unit {unit!r}; known: pb, nb, fb, cm2, 1e-38 cm2"
        raise NormalisationError(msg) from None


def target_scale_of(text: str, n_species: int) -> str:
    """``nucleus``, ``nucleon`` or ``molecule`` for a NuHepMC TargetScale value.

    "PerTarget" (NuHepMC 1.0's recommendation: the target element or compound of the run) is
    per nucleus for a one-element target and per molecule for a compound.

    >>> target_scale_of("PerTargetNucleon", 1), target_scale_of("PerTarget", 2)
    ('nucleon', 'molecule')
    """
    scale = _TARGET_SCALES.get(text.replace(" ", "").lower())
    if scale is None:
        msg = (
            f"unknown NuHepMC.Units.CrossSection.TargetScale {text!r}; known: PerTarget, PerAtom, "
            "PerNucleon, PerTargetAtom, PerTargetNucleon, PerTargetMolecule"
        )
        raise NormalisationError(msg)
    if scale == "target":
        return "nucleus" if n_species <= 1 else "molecule"
    return scale


@dataclass(frozen=True, kw_only=True)
class TargetCounts:
    """What ``[target]`` and ``targets`` say there is: nuclei, nucleons, molecules, per nucleus."""

    nuclei: float | None
    nucleons: float | None
    molecules: float | None
    by_nucleus: Mapping[tuple[int, int], tuple[str, float]] = field(default_factory=dict)
    """(Z, A) → (name, count)."""

    @classmethod
    def of(cls, target: TargetSection | None, targets: float | None) -> TargetCounts:
        by = {} if target is None else {(n.z, n.a): (k, n.count) for k, n in target.nuclei.items()}
        nuclei = sum(c for _, c in by.values()) if by else None
        if (
            targets is not None
            and nuclei is not None
            and not math.isclose(targets, nuclei, rel_tol=1e-3)
        ):
            msg = (
                f"[normalization] targets = {targets:.6g} nuclei, but [target] nuclei count "
                f"{nuclei:.6g}: they must agree (0.1 %); remove one or fix it"
            )
            raise NormalisationError(msg)
        nucleons = sum(c * a for (_, a), (_, c) in by.items()) if by else None
        return cls(
            nuclei=targets if targets is not None else nuclei,
            nucleons=nucleons,
            molecules=None if target is None else target.molecules,
            by_nucleus=by,
        )

    def count(self, scale: str, what: str) -> float:
        value = {"nucleus": self.nuclei, "nucleon": self.nucleons, "molecule": self.molecules}[
            scale
        ]
        if value is None:
            need = {
                "nucleus": "[normalization] targets or [target] nuclei",
                "nucleon": "[target] nuclei (each with z, n, a, count): nucleons are Σ count · A",
                "molecule": "[target] molecules",
            }[scale]
            msg = f"{what} is per {scale}: give {need}"
            raise NormalisationError(msg)
        return value


@dataclass(frozen=True, kw_only=True)
class FileXsec:
    """σ̄ as an input file records it (NuHepMC G.C.4/G.C.5), in its own unit and scale."""

    value: float | None
    unit: str | None
    target_scale: str | None


@dataclass(frozen=True, kw_only=True)
class Normalisation:
    events_per_weight: float
    """k for every event, or (with per-target σ̄) 0 and ``per_target`` instead."""
    per_target: Mapping[tuple[int, int], float]
    """(Z, A) → k of that target's events (empty unless σ̄ is given per nucleus)."""
    sum_weights: float
    declared_events: float
    record: dict[str, Any]
    """What the store records: the way N was declared, σ̄, its scale, N_T, Φ and the cross-check."""


def _xsec(
    norm: NormalizationSection, file: FileXsec, n_species: int
) -> tuple[float | None, str | None, str]:
    """(σ̄ in cm², its target scale, where it came from), σ̄ None if nobody gives one."""
    given = norm.flux_averaged_xsec_cm2
    if isinstance(given, float):
        return given, norm.xsec_target_scale, "[normalization] flux_averaged_xsec_cm2"
    if given != "file":
        return None, norm.xsec_target_scale, "none"
    if file.value is None:
        msg = (
            'flux_averaged_xsec_cm2 = "file" needs an input that records it '
            "(NuHepMC.FluxAveragedTotalCrossSection); give the value in cm² instead"
        )
        raise NormalisationError(msg)
    unit = _agree("NuHepMC.Units.CrossSection.Unit", file.unit, norm.xsec_unit, "xsec_unit")
    scale_text = file.target_scale
    mapped = None if scale_text is None else target_scale_of(scale_text, n_species)
    scale = _agree(
        "NuHepMC.Units.CrossSection.TargetScale",
        mapped,
        norm.xsec_target_scale,
        "xsec_target_scale",
    )
    return (
        file.value * xsec_unit_cm2(unit),
        scale,
        "the file's NuHepMC.FluxAveragedTotalCrossSection",
    )


def _agree(attribute: str, in_file: str | None, in_mapping: str | None, key: str) -> str:
    if in_file is not None and in_mapping is not None and in_file != in_mapping:
        same_unit = key == "xsec_unit" and xsec_unit_cm2(in_file) == xsec_unit_cm2(in_mapping)
        if not same_unit:
            msg = f"the file's {attribute} says {in_file!r}, [normalization] {key} says {in_mapping!r}: remove {key} or fix it"
            raise NormalisationError(msg)
    value = in_file if in_file is not None else in_mapping
    if value is None:
        msg = (
            f"the file does not record {attribute} and the mapping does not state it: set "
            f"[normalization] {key} (a σ̄ per nucleon read as per nucleus is A times too few events)"
        )
        raise NormalisationError(msg)
    return value


def normalise(
    norm: NormalizationSection,
    target: TargetSection | None,
    *,
    sum_weights: float,
    sum_weights_by_target: Mapping[tuple[int, int], float],
    file_xsec: FileXsec,
    flux: Flux | None,
    flavors: tuple[str, ...],
) -> Normalisation:
    """The per-event factor k and the cross-check (see the module docstring).

    ``flux`` is the sample's flux over the exposure (None without ``[flux]``); ``flavors`` those
    of the events, whose flux σ̄ was averaged over.
    """
    if not sum_weights > 0:
        msg = f"the generator weights sum to {sum_weights}; they must sum to a positive number"
        raise NormalisationError(msg)
    counts = TargetCounts.of(target, norm.targets)
    n_species = max(len(counts.by_nucleus), 1)
    xsec, scale, xsec_from = _xsec(norm, file_xsec, n_species)
    phi_flux = None if flux is None else flux.integral(f for f in flavors if f in flux.spectra)
    phi = norm.fluence_per_cm2 if norm.fluence_per_cm2 is not None else phi_flux
    per_target: dict[tuple[int, int], float] = {}
    record: dict[str, Any] = {"sum_weights": sum_weights, "flux_averaged_xsec_cm2": xsec}
    record |= {"xsec_target_scale": scale, "xsec_from": xsec_from, "flavors": list(flavors)}
    if xsec is None and target is not None and target.per_target_xsec:
        xsec, xsec_from = 0.0, "[target] nuclei (one σ̄ per nucleus)"
        record |= {"flux_averaged_xsec_cm2": None, "xsec_from": xsec_from}
    if norm.events_per_weight is not None:
        k, declared, way = (
            norm.events_per_weight,
            norm.events_per_weight * sum_weights,
            "events_per_weight",
        )
    elif norm.expected_events is not None:
        k, declared, way = (
            norm.expected_events / sum_weights,
            norm.expected_events,
            "expected_events",
        )
    else:
        if phi is None:
            msg = "N = σ̄ Φ N_T needs Φ: give [normalization] fluence_per_cm2 or the sample's [flux]"
            raise NormalisationError(msg)
        assert scale is not None and xsec is not None
        if target is not None and target.per_target_xsec:
            declared = 0.0
            for key, (name, count) in counts.by_nucleus.items():
                nucleus = target.nuclei[name]
                n_t = count * (nucleus.a if scale == "nucleon" else 1.0)
                if scale == "molecule":
                    n_t = counts.count("molecule", "σ̄")
                n_events = float(nucleus.flux_averaged_xsec_cm2) * phi * n_t  # type: ignore[arg-type]
                w = sum_weights_by_target.get(key, 0.0)
                per_target[key] = n_events / w if w > 0 else 0.0
                declared += n_events
            k, way = 0.0, "flux_averaged_xsec_cm2 per nucleus ([target] nuclei)"
        else:
            declared = xsec * phi * counts.count(scale, "σ̄")
            k, way = declared / sum_weights, "flux_averaged_xsec_cm2"
        record["fluence_per_cm2"] = phi
    record |= {"declared_by": way, "declared_events": declared}
    record["cross_check"] = _cross_check(norm, target, counts, xsec, scale, phi_flux, declared)
    return Normalisation(
        events_per_weight=k,
        per_target=per_target,
        sum_weights=sum_weights,
        declared_events=declared,
        record=record,
    )


def _cross_check(
    norm: NormalizationSection,
    target: TargetSection | None,
    counts: TargetCounts,
    xsec: float | None,
    scale: str | None,
    phi_flux: float | None,
    declared: float,
) -> dict[str, Any]:
    if not norm.cross_check:
        return {"done": False, "reason": "[normalization] cross_check = false"}
    missing = []
    if phi_flux is None:
        missing.append("the sample's flux ([flux])")
    if xsec is None:
        missing.append(
            "σ̄ ([normalization] flux_averaged_xsec_cm2 with xsec_target_scale, or the file's NuHepMC.FluxAveragedTotalCrossSection)"
        )
    if missing:
        msg = (
            "the expected events cannot be cross-checked against σ̄ · Φ · N_T without "
            f"{' and '.join(missing)}; give them, or set [normalization] cross_check = false "
            "(the store then records that the normalisation was not checked)"
        )
        raise NormalisationError(msg)
    assert scale is not None and xsec is not None and phi_flux is not None
    if target is not None and target.per_target_xsec:
        computed = sum(
            float(target.nuclei[name].flux_averaged_xsec_cm2)  # type: ignore[arg-type]
            * phi_flux
            * (
                counts.count("molecule", "σ̄")
                if scale == "molecule"
                else count * (target.nuclei[name].a if scale == "nucleon" else 1.0)
            )
            for name, count in counts.by_nucleus.values()
        )
        n_t = None
    else:
        n_t = counts.count(scale, "σ̄")
        computed = xsec * phi_flux * n_t
    ratio = declared / computed
    check = {
        "done": True,
        "declared_events": declared,
        "computed_events": computed,
        "ratio": ratio,
        "tolerance": norm.cross_check_tolerance,
        "fluence_per_cm2_of_flux": phi_flux,
        "targets": n_t,
    }
    if abs(ratio - 1.0) > norm.cross_check_tolerance:
        msg = (
            f"the expected events disagree: the mapping declares {declared:.6g} "
            f"({_declared_how(norm)}), but σ̄ · Φ · N_T = {xsec:.6g} cm² × {phi_flux:.6g} /cm² "
            f"× {n_t if n_t is not None else 'per-nucleus'} {scale}s = {computed:.6g} "
            f"(ratio {ratio:.4g}, more than {100 * norm.cross_check_tolerance:g} % from 1). "
            "Check the exposure, the flux file's units and integral, the number of targets and "
            "what σ̄ is per (nucleus or nucleon)"
        )
        raise NormalisationError(msg)
    return check


def _declared_how(norm: NormalizationSection) -> str:
    if norm.events_per_weight is not None:
        return "events_per_weight × Σ wght"
    if norm.expected_events is not None:
        return "expected_events"
    if norm.fluence_per_cm2 is not None:
        return f"σ̄ × fluence_per_cm2 = {norm.fluence_per_cm2:.6g} × N_T"
    return "σ̄ × the flux integral × N_T"
