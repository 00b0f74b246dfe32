"""The truth definition of a release as an analysis snippet: ProSelecta functions (NUISANCE).

The conventions name a measurement's signal definition (``selectfunc``) and the projection onto
each of its axes (``<axis>:projectfunc``) as C++ functions in an additional resource, written
against the ProSelecta environment on HepMC3 events. Names follow the conventions'
``<Experiment>_<Measurement>_<Year>_<Projection>_<INSPIRE id>``; until the record has an INSPIRE
id the placeholder ``INSPIRE`` stands in it (``farm export hepdata --inspire ID`` sets it).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

__all__ = ["SNIPPET_FILE", "FunctionNames", "function_names", "snippet"]

SNIPPET_FILE = "analysis.cxx"
INSPIRE_PLACEHOLDER = "INSPIRE"

_PROJECTIONS = {
    "enu_true": "Enu",
    "total": "Enu",
    "recoil_mev": "TRecoil",
    "q2_mev2": "Q2",
    "plep_mev": "PLep",
    "coslep": "CosThetaLep",
}


@dataclass(frozen=True, kw_only=True)
class FunctionNames:
    select: str
    project: str
    inspire: str

    def reference(self, function: str) -> str:
        """``analysis.cxx:<function>``: a resource reference to a function of the snippet."""
        return f"{SNIPPET_FILE}:{function}"


def function_names(sample: str, truth: str, inspire: str | None, year: int | None) -> FunctionNames:
    stem = "FARM_" + re.sub(r"[^A-Za-z0-9]+", "", sample.title()) or "FARM"
    when = year or datetime.date.today().year
    tag = inspire or INSPIRE_PLACEHOLDER
    projection = _PROJECTIONS.get(truth, re.sub(r"[^A-Za-z0-9]+", "", truth.title()))
    return FunctionNames(
        select=f"{stem}_XSec_{when}_Select_{tag}",
        project=f"{stem}_XSec_{when}_{projection}_{tag}",
        inspire=tag,
    )


_PDG = {"nue": 12, "nuebar": -12, "numu": 14, "numubar": -14}
_NUCLEUS = {"Ar": [1000180400], "CsI": [1000551330, 1000531270], "Ge": [1000320740], "H": [2212]}


def _select_body(generator: str, target: str, flavors: list[str]) -> str:
    beams = ", ".join(str(_PDG[f]) for f in flavors)
    if generator.endswith("ibd"):
        return (
            "  // inverse beta decay on a free proton: nuebar p -> e+ n\n"
            "  if (!ps::event::has_beam_part(ev, -12)) { return 0; }\n"
            "  return (ps::event::has_out_part(ev, -11) && ps::event::has_out_part(ev, 2112)) ? 1 : 0;\n"
        )
    if generator.endswith("cevns"):
        nuclei = ", ".join(str(c) for c in _NUCLEUS.get(target, []))
        return (
            "  // coherent elastic scattering: the neutrino and the whole nucleus come out\n"
            f"  for (int pdg : {{{beams}}}) {{\n"
            "    if (!ps::event::has_beam_part(ev, pdg) || !ps::event::has_out_part(ev, pdg)) { continue; }\n"
            f"    for (int nucleus : {{{nuclei}}}) {{\n"
            "      if (ps::event::has_out_part(ev, nucleus)) { return 1; }\n"
            "    }\n"
            "  }\n"
            "  return 0;\n"
        )
    lepton = {"numu": 13, "nue": 11, "numubar": -13, "nuebar": -11}
    lines = "".join(
        f"  if (ps::event::has_beam_part(ev, {_PDG[f]}) && ps::event::has_out_part(ev, {lepton[f]})) {{ return 1; }}\n"
        for f in flavors
    )
    return (
        "  // charged current on argon: the charged lepton of the beam flavour comes out\n"
        + lines
        + "  return 0;\n"
    )


def _project_body(truth: str, flavors: list[str]) -> str:
    beams = ", ".join(str(_PDG[f]) for f in flavors)
    if truth in ("enu_true", "total"):
        return (
            f"  for (int pdg : {{{beams}}}) {{\n"
            "    if (ps::event::has_beam_part(ev, pdg)) {\n"
            "      return ps::event::beam_part(ev, pdg)->momentum().e() / ps::unit::MeV;\n"
            "    }\n"
            "  }\n"
            "  return -1;\n"
        )
    if truth == "recoil_mev":
        return (
            "  // kinetic energy of the recoiling nucleus\n"
            "  auto nucleus = ps::event::out_nuclear_parts(ev).front();\n"
            "  return (nucleus->momentum().e() - nucleus->generated_mass()) / ps::unit::MeV;\n"
        )
    return f"  // {truth}: see the record's description for the definition\n  return -1;\n"


def snippet(
    sample: str, generator: str, target: str, truth: str, flavors: list[str], names: FunctionNames
) -> str:
    """The C++ source of ``analysis.cxx``."""
    return (
        f"// farm release of {sample}: the truth definition of the measurement, for ProSelecta\n"
        "// (NUISANCE HEPData conventions). Energies in MeV, as the record's axes.\n"
        f"// INSPIRE id: {names.inspire} (replace the placeholder INSPIRE once the paper has one).\n\n"
        f"int {names.select}(HepMC3::GenEvent const &ev) {{\n{_select_body(generator, target, flavors)}}}\n\n"
        f"double {names.project}(HepMC3::GenEvent const &ev) {{\n{_project_body(truth, flavors)}}}\n"
    )
