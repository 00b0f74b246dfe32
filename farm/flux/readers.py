"""The readers of :mod:`farm.flux.files`: one per format, each giving per flavour the bin edges and
the file's numbers in its own units (and the units, where the file states them), and the flux's
universes as the file holds them. No conversion happens here."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from farm.config.flux import FluxSection
from farm.flux.units import parse_flux_unit

__all__ = ["READERS", "FluxFileError", "Table"]


class FluxFileError(ValueError):
    """A flux file is missing, unreadable, or its numbers or units do not make a flux."""


@dataclass(frozen=True, kw_only=True)
class Table:
    """What a reader found, in the file's own units."""

    edges: dict[str, np.ndarray]
    contents: dict[str, np.ndarray]
    energy_unit: str | None = None
    unit: str | None = None
    universes: np.ndarray | None = None
    """(N, bins) over the flavours of ``universe_flavors``, in the file's units."""
    covariance: np.ndarray | None = None
    universe_flavors: tuple[str, ...] = ()


def _universe_flavors(section: FluxSection) -> tuple[str, ...]:
    u = section.universes
    assert u is not None
    if u.kind == "histograms":
        return tuple(f for f in section.flavors if f in u.names)
    return tuple(u.flavors or section.flavors)


def _read_csv(path: Path, section: FluxSection) -> Table:
    low, high = (section.edges or "e_low,e_high").split(",")
    with open(path, newline="") as file:
        rows = list(csv.DictReader(line for line in file if not line.lstrip().startswith("#")))
    if not rows:
        raise FluxFileError(f"[flux] file {path}: no rows under the header")
    columns = list(rows[0])
    wanted = [low.strip(), high.strip(), *section.flavors.values()]
    missing = [c for c in wanted if c not in columns]
    if missing:
        msg = f"[flux] file {path}: no column(s) {', '.join(map(repr, missing))}; it has {', '.join(columns)}"
        raise FluxFileError(msg)
    lo = np.array([float(r[low.strip()]) for r in rows])
    hi = np.array([float(r[high.strip()]) for r in rows])
    if np.any(lo[1:] != hi[:-1]):
        msg = f"[flux] file {path}: each row's {low} must equal the previous row's {high} (contiguous bins)"
        raise FluxFileError(msg)
    edges = np.append(lo, hi[-1])
    contents = {f: np.array([float(r[name]) for r in rows]) for f, name in section.flavors.items()}
    if section.universes is not None:
        msg = (
            f"[flux] file {path}: a CSV table holds no universes; give them in an npz or ROOT file"
        )
        raise FluxFileError(msg)
    return Table(edges=dict.fromkeys(section.flavors, edges), contents=contents)


def _read_npz(path: Path, section: FluxSection) -> Table:
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)

        def get(key: str) -> np.ndarray:
            if key not in keys:
                msg = f"[flux] file {path}: no array {key!r}; it holds {', '.join(sorted(keys))}"
                raise FluxFileError(msg)
            return np.asarray(data[key])

        edges = {}
        for flavor, name in section.flavors.items():
            own = f"edges_{name}"
            edges[flavor] = get(section.edges or (own if own in keys else "edges"))
        contents = {f: get(name) for f, name in section.flavors.items()}
        universes = covariance = None
        flavors: tuple[str, ...] = ()
        if section.universes is not None:
            flavors = _universe_flavors(section)
            if section.universes.kind == "histograms":
                universes = np.concatenate(
                    [np.atleast_2d(get(section.universes.names[f])) for f in flavors], axis=1
                )
            else:
                covariance = _covariance(section, path, get)
    return Table(
        edges=edges,
        contents=contents,
        universes=universes,
        covariance=covariance,
        universe_flavors=flavors,
    )


def _covariance(section: FluxSection, path: Path, get: Any) -> np.ndarray:
    name = str(section.universes.covariance)  # type: ignore[union-attr]
    if name.endswith(".npy"):
        return np.load(Path(name), allow_pickle=False)
    return get(name)


def _read_root(path: Path, section: FluxSection) -> Table:
    try:
        import uproot
    except ImportError:
        msg = "reading ROOT flux files needs uproot: pip install 'farm[ingest]'"
        raise ImportError(msg) from None
    with uproot.open(path) as file:
        held = sorted({k.split(";")[0] for k in file.keys()})

        def hist(name: str, dims: int = 1) -> Any:
            if name not in file:
                shown = ", ".join(held[:20]) + (" …" if len(held) > 20 else "")
                msg = f"[flux] file {path}: no histogram {name!r}; it holds {shown}"
                raise FluxFileError(msg)
            obj = file[name]
            if not hasattr(obj, "values") or obj.values().ndim != dims:
                msg = f"[flux] file {path}: {name!r} is a {obj.classname}, not a TH{dims}"
                raise FluxFileError(msg)
            return obj

        edges, contents = {}, {}
        for flavor, name in section.flavors.items():
            h = hist(name)
            edges[flavor] = np.asarray(h.axis().edges(), dtype=np.float64)
            contents[flavor] = np.asarray(h.values(), dtype=np.float64)
        universes = covariance = None
        flavors: tuple[str, ...] = ()
        u = section.universes
        if u is not None:
            flavors = _universe_flavors(section)
            if u.kind == "histograms":
                if u.count is None:
                    msg = "[flux.universes] count = N is needed to read N ROOT histograms from a name pattern"
                    raise FluxFileError(msg)
                universes = np.stack(
                    [
                        np.concatenate([hist(u.names[f].format(i=i)).values() for f in flavors])
                        for i in range(u.count)
                    ]
                )
            else:
                name = str(u.covariance)
                covariance = (
                    np.load(Path(name), allow_pickle=False)
                    if name.endswith(".npy")
                    else np.asarray(hist(name, dims=2).values(), dtype=np.float64)
                )
    return Table(
        edges=edges,
        contents=contents,
        universes=universes,
        covariance=covariance,
        universe_flavors=flavors,
    )


def _read_hepdata(path: Path, section: FluxSection) -> Table:
    try:
        import yaml
    except ImportError:
        msg = "reading HEPData tables needs PyYAML: pip install pyyaml"
        raise ImportError(msg) from None
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or "dependent_variables" not in doc:
        raise FluxFileError(f"[flux] file {path}: not a HEPData table (no dependent_variables)")
    followed = _probe_flux_reference(doc)
    if followed is not None and not _flux_variables(doc):
        target, _, _variable = followed.partition(":")
        return _read_hepdata(path.parent / target, section)
    independent = doc.get("independent_variables") or []
    if len(independent) != 1:
        msg = f"[flux] file {path}: a flux table has one independent variable (E_nu); it has {len(independent)}"
        raise FluxFileError(msg)
    bins = independent[0].get("values", [])
    if not all(isinstance(b, dict) and "low" in b and "high" in b for b in bins):
        raise FluxFileError(f"[flux] file {path}: the E_nu values must be bins with low and high")
    lo = np.array([float(b["low"]) for b in bins])
    hi = np.array([float(b["high"]) for b in bins])
    if np.any(lo[1:] != hi[:-1]):
        raise FluxFileError(f"[flux] file {path}: the E_nu bins must be contiguous")
    edges = np.append(lo, hi[-1])
    energy_unit = (independent[0].get("header") or {}).get("units")
    variables = _flux_variables(doc) or doc["dependent_variables"]
    contents, units = {}, set()
    for flavor, name in section.flavors.items():
        var = _find_variable(variables, flavor, name)
        if var is None:
            names = [str((v.get("header") or {}).get("name")) for v in variables]
            msg = f"[flux] file {path}: no flux variable for {flavor} (named {name!r}, or with probe_particle {flavor}); it has {', '.join(names)}"
            raise FluxFileError(msg)
        contents[flavor] = np.array([float(v["value"]) for v in var["values"]])
        unit = (var.get("header") or {}).get("units")
        if unit:
            units.add(_hepdata_unit(str(unit), _qualifier(var, "bin_content_type")))
    if section.universes is not None:
        msg = f"[flux] file {path}: a HEPData flux table holds no universes here; give them in an npz or ROOT file"
        raise FluxFileError(msg)
    if len(units) > 1:
        raise FluxFileError(
            f"[flux] file {path}: the flux variables have different units {sorted(units)}"
        )
    return Table(
        edges=dict.fromkeys(section.flavors, edges),
        contents=contents,
        energy_unit=str(energy_unit) if energy_unit else None,
        unit=units.pop() if units else None,
    )


def _qualifier(var: Mapping[str, Any], name: str) -> str | None:
    for q in var.get("qualifiers") or []:
        if isinstance(q, dict) and q.get("name") == name:
            return str(q.get("value"))
    return None


def _flux_variables(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in doc["dependent_variables"] if _qualifier(v, "variable_type") == "probe_flux"]


def _probe_flux_reference(doc: Mapping[str, Any]) -> str | None:
    for var in doc["dependent_variables"]:
        ref = _qualifier(var, "probe_flux")
        if ref:
            return ref
    return None


def _find_variable(
    variables: list[Mapping[str, Any]], flavor: str, name: str
) -> Mapping[str, Any] | None:
    for var in variables:
        if (var.get("header") or {}).get("name") == name:
            return var
    for var in variables:
        if _qualifier(var, "probe_particle") in (flavor, name):
            return var
    return None


def _hepdata_unit(unit: str, content_type: str | None) -> str:
    """A HEPData header unit in farm's grammar: ``nu / cm^2 over the exposure`` → ``nu/cm2``."""
    text = unit.replace("over the exposure", "").replace(" ", "")
    if not text.startswith(("nu", "/")):
        text = "nu/" + text
    parsed = parse_flux_unit(text)
    if content_type == "count_density" and parsed.energy_mev is None:
        msg = f"unit {unit!r} is per bin, but the variable says bin_content_type: count_density"
        raise FluxFileError(msg)
    if content_type == "count" and parsed.energy_mev is not None:
        msg = f"unit {unit!r} is per energy, but the variable says bin_content_type: count"
        raise FluxFileError(msg)
    return text


def _read_nuhepmc(path: Path, section: FluxSection) -> Table:
    from farm.ingest.hepmc3 import read_run_info

    beams = read_run_info(path).get("beam_histograms", {})
    edges, contents, energies, units = {}, {}, set(), set()
    for flavor, name in section.flavors.items():
        try:
            pdg = int(name)
        except ValueError:
            msg = f"[flux] flavors.{flavor} = {name!r}: give the beam's PDG code in the NuHepMC file (e.g. 12)"
            raise FluxFileError(msg) from None
        if pdg not in beams:
            held = ", ".join(str(k) for k in sorted(beams)) or "none"
            msg = (
                f"[flux] file {path}: no NuHepMC.Beam[{pdg}] histogram (G.C.7); it has beams {held}"
            )
            raise FluxFileError(msg)
        beam = beams[pdg]
        edges[flavor], contents[flavor] = beam["edges"], beam["contents"]
        energy = {"MEV": "MeV", "GEV": "GeV"}.get(str(beam["energy_unit"]).upper())
        energies.add(energy)
        if beam["rate_unit"] != "Arbitrary":  # else a shape: [flux] unit must say what it is
            per_width = beam["per_width"] and parse_flux_unit(beam["rate_unit"]).energy_mev is None
            units.add(beam["rate_unit"] + (f"/{energy}" if per_width else ""))
    if len(energies) > 1 or len(units) > 1:
        msg = f"[flux] file {path}: the beams' units differ ({sorted(map(str, energies))}, {sorted(units)})"
        raise FluxFileError(msg)
    return Table(
        edges=edges,
        contents=contents,
        energy_unit=energies.pop(),
        unit=units.pop() if units else None,
    )


READERS = {
    "csv": _read_csv,
    "npz": _read_npz,
    "root": _read_root,
    "hepdata": _read_hepdata,
    "nuhepmc": _read_nuhepmc,
}
"""Format → reader(path, section) → :class:`Table`."""
