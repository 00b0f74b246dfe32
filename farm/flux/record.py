"""A flux as an event store records it (``attrs["flux"]`` and a sidecar file), and back.

The nominal spectra are JSON in the store's attributes (Python writes floats as their shortest
round-trip text, so they come back bit for bit); the universes, which can be large (a PPFX
publication: 600 universes × a few hundred bins), are an ``.npz`` beside the columns whose
BLAKE2b checksum the attributes record. Reading refuses a sidecar that is missing or changed,
and a record whose flux checksum no longer matches its numbers.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from farm.flux.model import (
    Flux,
    FluxUniverses,
    HistogramSpectrum,
    LineSpectrum,
    SampledSpectrum,
    Spectrum,
)

__all__ = ["UNIVERSES_FILE", "flux_from_record", "flux_record", "write_universes"]

UNIVERSES_FILE = "flux-universes.npz"


def _spectrum_record(flavor: str, s: Spectrum) -> dict[str, Any]:
    if isinstance(s, HistogramSpectrum):
        return {"kind": "histogram", "edges": s.edges.tolist(), "contents": s.contents.tolist()}
    if isinstance(s, LineSpectrum):
        return {"kind": "line", "energy_mev": s.energy_mev, "fluence": s.fluence}
    if isinstance(s, SampledSpectrum):
        return {"kind": "sample", "energies": s.energies.tolist(), "fluences": s.fluences.tolist()}
    msg = f"the {flavor} flux is a {s.kind}: an event store records histograms, lines and samples"
    raise ValueError(msg)


def _universe_bytes(u: FluxUniverses) -> bytes:
    buffer = io.BytesIO()
    arrays = {
        "nominal": u.nominal,
        **{f"edges_{f}": e for f, e in zip(u.flavors, u.edges, strict=True)},
    }
    arrays["covariance" if u.covariance is not None else "histograms"] = (
        u.covariance if u.covariance is not None else u.histograms
    )
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def flux_record(flux: Flux) -> tuple[dict[str, Any], bytes | None]:
    """(the JSON record, the universes' sidecar bytes or None) of ``flux``."""
    record: dict[str, Any] = {
        "source": flux.source,
        "exposure": dict(flux.exposure),
        "checksum": flux.checksum(),
        "spectra": {f: _spectrum_record(f, s) for f, s in flux.spectra.items()},
    }
    blob = None
    if flux.universes is not None:
        blob = _universe_bytes(flux.universes)
        record["universes"] = {
            "kind": "covariance" if flux.universes.covariance is not None else "histograms",
            "flavors": list(flux.universes.flavors),
            "file": UNIVERSES_FILE,
            "checksum": hashlib.blake2b(blob, digest_size=16).hexdigest(),
        }
    return record, blob


def write_universes(folder: str | os.PathLike[str], blob: bytes) -> Path:
    """Write the universes' sidecar into a store folder (before it is published)."""
    path = Path(folder) / UNIVERSES_FILE
    path.write_bytes(blob)
    return path


def _spectrum(flavor: str, r: Mapping[str, Any]) -> Spectrum:
    kind = r.get("kind")
    if kind == "histogram":
        return HistogramSpectrum(edges=np.asarray(r["edges"]), contents=np.asarray(r["contents"]))
    if kind == "line":
        return LineSpectrum(energy_mev=float(r["energy_mev"]), fluence=float(r["fluence"]))
    if kind == "sample":
        return SampledSpectrum(
            energies=np.asarray(r["energies"], np.float64),
            fluences=np.asarray(r["fluences"], np.float64),
        )
    msg = f"the recorded {flavor} flux is of unknown kind {kind!r}"
    raise ValueError(msg)


def flux_from_record(record: Mapping[str, Any], store: str | os.PathLike[str]) -> Flux:
    """The flux a store recorded; a ValueError says what is missing or changed."""
    universes = None
    u = record.get("universes")
    if u is not None:
        path = Path(store) / str(u["file"])
        if not path.is_file():
            msg = f"the store records flux universes in {path}, which is missing: ingest it again"
            raise ValueError(msg)
        blob = path.read_bytes()
        if hashlib.blake2b(blob, digest_size=16).hexdigest() != u["checksum"]:
            msg = f"{path} changed since the store was written (its checksum differs): ingest it again"
            raise ValueError(msg)
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            flavors = tuple(u["flavors"])
            universes = FluxUniverses(
                flavors=flavors,
                edges=tuple(np.asarray(data[f"edges_{f}"]) for f in flavors),
                nominal=np.asarray(data["nominal"]),
                covariance=np.asarray(data["covariance"]) if u["kind"] == "covariance" else None,
                histograms=np.asarray(data["histograms"]) if u["kind"] == "histograms" else None,
            )
    flux = Flux(
        spectra={f: _spectrum(f, r) for f, r in record["spectra"].items()},
        exposure=dict(record["exposure"]),
        source=str(record["source"]),
        universes=universes,
    )
    if flux.checksum() != record.get("checksum"):
        msg = "the recorded flux does not match its checksum: the store's attributes were edited; ingest it again"
        raise ValueError(msg)
    return flux
