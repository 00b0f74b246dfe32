"""Read a flux file into a :class:`~farm.flux.model.Flux`: CSV, NumPy npz, ROOT TH1, HEPData.

Every format gives, per flavour, bin edges and one number per bin, plus (optionally) the
flux's universes. Units are declared in ``[flux]`` (``energy_unit``, ``unit``) or by the file
(a HEPData table's headers); where both say something they must agree, and a flux whose units
nobody states is refused. Every bin is converted to ν/cm² over the run's exposure
(:mod:`farm.flux.units`).

Formats (``[flux] format``, default from the suffix):

- ``csv``: a header row, then one row per bin: the columns ``e_low``, ``e_high`` (or those
  ``[flux] edges = "LOW,HIGH"`` names) and one column per flavour (``[flux] flavors``).
- ``npz``: ``edges`` (or ``[flux] edges``, or ``edges_<name>`` per flavour) and one array of
  contents per flavour; universes as (N, bins) arrays, a covariance as a (bins, bins) array.
- ``root``: a TH1 per flavour (uproot; the flow bins are not flux); universes as TH1 name
  patterns with ``{i}`` (PPFX writes ``hnumu_univ_0`` …), a covariance as a TH2.
- ``hepdata``: a HEPData table (YAML): one independent variable (the E_ν bins, with units) and
  the flux as dependent variables, found by ``variable_type: probe_flux`` and
  ``probe_particle`` qualifiers (the convention of farm's own export and NUISANCE) or by
  header name; a table whose variables point to their flux with a ``probe_flux`` qualifier
  (``FILE`` or ``FILE:VARIABLE``, next to the table) is followed to it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from farm.config.flux import FluxSection
from farm.flux.model import Flux, FluxUniverses, HistogramSpectrum
from farm.flux.readers import READERS, FluxFileError, Table
from farm.flux.units import energy_factor, parse_flux_unit

__all__ = ["FluxFileError", "guess_flux_format", "read_flux_file"]

_SUFFIXES = {
    ".csv": "csv",
    ".npz": "npz",
    ".root": "root",
    ".yaml": "hepdata",
    ".yml": "hepdata",
    ".hepmc3": "nuhepmc",
    ".hepmc": "nuhepmc",
}


def guess_flux_format(path: str | os.PathLike[str]) -> str | None:
    """``csv``, ``npz``, ``root``, ``hepdata`` or ``nuhepmc`` from the suffix (None if unknown)."""
    return _SUFFIXES.get(Path(path).suffix.lower())


def _checksum(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        while block := file.read(1 << 23):
            digest.update(block)
    return digest.hexdigest()


def read_flux_file(
    section: FluxSection, exposure: Mapping[str, Any], *, where: str = "[flux]"
) -> Flux:
    """The flux ``section`` describes, over ``exposure`` (``{"value", "unit"[, "seconds"]}``).

    Raises
    ------
    FluxFileError
        Naming ``where`` (the key), the file and what to fix: a missing file or flavour, units
        stated nowhere or stated twice differently, an exposure unit the run does not have,
        non-finite or negative numbers, bins that do not increase.
    """
    path = Path(section.file)
    fmt = section.format or guess_flux_format(path)
    if fmt is None:
        msg = f"{where} file {path}: cannot tell its format from the suffix; set format = one of csv, npz, root, hepdata"
        raise FluxFileError(msg)
    if not path.is_file():
        msg = f"{where} file {path} not found; give the path of the flux file (relative to the working directory)"
        raise FluxFileError(msg)
    try:
        table = READERS[fmt](path, section)
    except FluxFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as err:
        msg = f"{where} file {path} ({fmt}): {err}".replace("\n", " ")
        raise FluxFileError(msg) from None
    return _to_flux(table, section, exposure, path, fmt, where)


# --- units ------------------------------------------------------------------------------------


def _agreed(declared: str | None, in_file: str | None, what: str, where: str, path: Path) -> str:
    if declared is not None and in_file is not None:
        same = (
            parse_flux_unit(declared) == _without_text(parse_flux_unit(in_file), declared)
            if what == "unit"
            else declared == in_file
        )
        if not same:
            msg = f"{where} {what} = {declared!r}, but {path} declares {in_file!r}; remove {what} from {where} or fix it"
            raise FluxFileError(msg)
    value = declared or in_file
    if value is None:
        example = "nu/cm2/POT/GeV" if what == "unit" else "GeV"
        msg = f"{where} file {path} does not state its {what} and {where} does not either: set {what} (e.g. {example!r})"
        raise FluxFileError(msg)
    return value


def _without_text(unit: Any, text: str) -> Any:
    from dataclasses import replace

    return replace(unit, text=text)


def _exposure_value(
    unit_exposure: str | None, exposure: Mapping[str, Any], where: str
) -> float | None:
    if unit_exposure is None:
        return None
    if exposure.get("unit") == unit_exposure:
        return float(exposure["value"])
    if unit_exposure == "seconds" and "seconds" in exposure:
        return float(exposure["seconds"])
    word = {"POT": "POT", "seconds": "s", "fissions": "fission"}.get(str(exposure.get("unit")), "?")
    msg = (
        f"{where} unit is per {unit_exposure}, but the exposure is {float(exposure.get('value', 0)):g} "
        f"{exposure.get('unit')}: give the flux per {word} (nu/cm2/{word}…) or over the whole "
        "exposure (nu/cm2), or an exposure in the flux's unit"
    )
    raise FluxFileError(msg)


def _to_flux(
    table: Table,
    section: FluxSection,
    exposure: Mapping[str, Any],
    path: Path,
    fmt: str,
    where: str,
) -> Flux:
    energy_unit = _agreed(section.energy_unit, table.energy_unit, "energy_unit", where, path)
    try:
        to_mev = energy_factor(energy_unit, f"{where} energy_unit")
        unit = parse_flux_unit(_agreed(section.unit, table.unit, "unit", where, path))
    except ValueError as err:
        raise FluxFileError(str(err)) from None
    value = _exposure_value(unit.exposure_unit, exposure, where)
    spectra: dict[str, HistogramSpectrum] = {}
    factors: dict[str, np.ndarray] = {}
    for flavor in section.flavors:
        edges = np.asarray(table.edges[flavor], dtype=np.float64)
        raw = np.asarray(table.contents[flavor], dtype=np.float64)
        name = f"{where} flavour {flavor} ({section.flavors[flavor]!r} in {path})"
        _check_bins(name, edges, raw)
        edges_mev = edges * to_mev
        factor = np.asarray(unit.bin_factor(np.diff(edges_mev), value)) * section.scale
        factors[flavor] = np.broadcast_to(factor, raw.shape).astype(np.float64)
        contents = raw * factors[flavor]
        spectra[flavor] = HistogramSpectrum(edges=edges_mev, contents=contents)
    universes = _universes(table, section, spectra, factors, where, path)
    shown = ", ".join(f"{f} = {section.flavors[f]!r}" for f in section.flavors)
    return Flux(
        spectra=spectra,
        exposure=dict(exposure),
        source=f"file {path.resolve()} ({fmt}; {shown}; unit {unit.text}; blake2b {_checksum(path)})",
        universes=universes,
    )


def _check_bins(name: str, edges: np.ndarray, contents: np.ndarray) -> None:
    if edges.ndim != 1 or contents.ndim != 1 or edges.size != contents.size + 1:
        msg = f"{name}: {edges.size} edges for {contents.size} bins; a histogram has one edge more than bins"
        raise FluxFileError(msg)
    if not (np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0) and edges[0] >= 0):
        msg = f"{name}: bin edges must be finite, >= 0 and strictly increasing"
        raise FluxFileError(msg)
    bad = np.flatnonzero(~(np.isfinite(contents) & (contents >= 0)))
    if bad.size:
        msg = (
            f"{name}: bin {bad[0]} holds {contents[bad[0]]}; a flux is finite and >= 0 in every bin"
        )
        raise FluxFileError(msg)
    if not contents.sum() > 0:
        msg = f"{name}: every bin is 0; a flux needs neutrinos"
        raise FluxFileError(msg)


def _universes(
    table: Table,
    section: FluxSection,
    spectra: Mapping[str, HistogramSpectrum],
    factors: Mapping[str, np.ndarray],
    where: str,
    path: Path,
) -> FluxUniverses | None:
    if table.universes is None and table.covariance is None:
        return None
    flavors = table.universe_flavors
    edges = tuple(spectra[f].edges for f in flavors)
    nominal = np.concatenate([spectra[f].contents for f in flavors])
    factor = np.concatenate([factors[f] for f in flavors])
    n = nominal.size
    key = f"{where} universes ({path})"
    if table.universes is not None:
        raw = np.asarray(table.universes, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != n:
            msg = f"{key}: histograms of shape {raw.shape}; need (N, {n}), the bins of {', '.join(flavors)}"
            raise FluxFileError(msg)
        if not np.all(np.isfinite(raw)) or (raw < 0).any():
            msg = f"{key}: a universe holds a negative or non-finite bin; every universe is a flux"
            raise FluxFileError(msg)
        return FluxUniverses(flavors=flavors, edges=edges, nominal=nominal, histograms=raw * factor)
    cov = np.asarray(table.covariance, dtype=np.float64)
    if cov.shape != (n, n):
        msg = f"{key}: covariance of shape {cov.shape}; need ({n}, {n}), the bins of {', '.join(flavors)}"
        raise FluxFileError(msg)
    if not np.all(np.isfinite(cov)) or np.abs(cov - cov.T).max(initial=0.0) > 1e-12 * np.abs(
        cov
    ).max(initial=1e-300):
        msg = f"{key}: the covariance must be finite and symmetric"
        raise FluxFileError(msg)
    assert section.universes is not None
    if not section.universes.fractional:
        raw_nominal = nominal / np.where(factor > 0, factor, 1.0)
        scale = np.outer(raw_nominal, raw_nominal)
        cov = np.divide(cov, scale, out=np.zeros_like(cov), where=scale > 0)
    return FluxUniverses(flavors=flavors, edges=edges, nominal=nominal, covariance=cov)
