"""Read NuHepMC / HepMC3 event files with pyhepmc into gst-like per-event fields.

HepMC3 (Buckley et al., Comput. Phys. Commun. 260, 107310 (2021), arXiv:1912.08005) stores each
event as a graph of particles; NuHepMC (Gardiner, Isaacson & Pickering, arXiv:2310.13211) adds
the conventions that make neutrino events readable without knowing the generator: the incoming
neutrino has status 4, the target status 20 (11 before NuHepMC 1.0), the process id is the event
attribute ``signal_process_id`` (``ProcID`` in early versions), the "CV" weight normalises, and
the run info may carry ``NuHepMC.FluxAveragedTotalCrossSection`` in
``NuHepMC.Units.CrossSection.Unit`` per ``NuHepMC.Units.CrossSection.TargetScale`` (G.C.4,
G.C.5) and the beam's energy histogram (``NuHepMC.Beam[PDG].Histogram.*``, G.C.7), which the
reader passes on as they are (:mod:`farm.ingest.normalise` resolves them).

From each event this reader takes the fields a gst tree would have, in MeV whatever unit the
event declares:

==========================  ==========================================================
``iev``                     event number
``neu``, ``Ev``             PDG code and energy of the incoming neutrino (status 4)
``tgt``, ``Z``, ``A``       target PDG code (status 20 or 11) and its Z, A (0 if none)
``process_id``              ``signal_process_id`` or ``ProcID`` (-1 if neither)
``fspl``, ``cc``, ``nc``    primary lepton's PDG code; whether it is the charged partner
                            of the neutrino (CC) or the neutrino itself (NC)
``El``, ``pxl``, ``pyl``,   energy, momentum components and |p| of the primary lepton:
``pzl``, ``pl``             the most energetic final-state (status 1) one (NaN if none)
``cthl``                    cosine of its angle to the incoming neutrino
``Q2``                      Q² = −(k − k′)² from the neutrino and the lepton (MeV²)
``wght``                    the "CV" weight (else the first weight, else 1)
==========================  ==========================================================

HepMC3 is an event-by-event record, so reading walks the events in Python (≈50k events/s with
pyhepmc's numpy views); the fields of all events are kept (≈150 bytes per event).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from farm.ingest.source import IngestError, SourceInfo

__all__ = ["FIELD_UNITS", "HepMC3File", "read_run_info"]

FIELD_UNITS: dict[str, str] = {
    "iev": "",
    "neu": "",
    "tgt": "",
    "Z": "",
    "A": "",
    "process_id": "",
    "fspl": "",
    "cc": "",
    "nc": "",
    "Ev": "MeV",
    "El": "MeV",
    "pxl": "MeV",
    "pyl": "MeV",
    "pzl": "MeV",
    "pl": "MeV",
    "cthl": "",
    "Q2": "MeV^2",
    "wght": "",
}
"""Every field this reader gives, with its unit ("" for a number without one)."""

_INTEGER_FIELDS = ("iev", "neu", "tgt", "Z", "A", "process_id", "fspl", "cc", "nc")
_BEAM_STATUS = 4
_TARGET_STATUS = (20, 11)
_FINAL_STATUS = 1
_NEUTRINOS = (12, -12, 14, -14, 16, -16)


class HepMC3File:
    """The fields of every event of one HepMC3 file; use :meth:`open`."""

    def __init__(self, info: SourceInfo, fields: dict[str, np.ndarray]) -> None:
        self._info = info
        self._fields = fields

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> HepMC3File:
        """Read every event of ``path``; raise :class:`IngestError` naming the file and event."""
        try:
            import pyhepmc
        except ImportError:
            msg = "reading HepMC3 files needs pyhepmc: pip install 'farm[ingest]'"
            raise ImportError(msg) from None

        path = Path(path)
        if not path.is_file():
            raise IngestError("no such file", path=path)
        rows: list[tuple[float, ...]] = []
        weights: list[list[float]] = []
        run_info = None
        try:
            with pyhepmc.open(path) as reader:
                for event in reader:
                    rows.append(_event_fields(path, event))
                    weights.append(list(event.weights))
                    if run_info is None:
                        run_info = event.run_info
        except (OSError, RuntimeError) as err:
            msg = f"cannot be read as HepMC3 ({err}); give a HepMC3 (NuHepMC) event file"
            raise IngestError(msg, path=path) from None
        if not rows:
            raise IngestError("holds no HepMC3 events", path=path)
        table = np.array(rows, dtype=np.float64)
        fields = {name: table[:, i] for i, name in enumerate(FIELD_UNITS)}
        for name in _INTEGER_FIELDS:
            fields[name] = fields[name].astype(np.int64)
        run = _run_info(path, run_info)
        info = SourceInfo(
            path=path,
            format="hepmc3",
            container=None,
            n_events=len(rows),
            fields=tuple(FIELD_UNITS),
            field_units=dict(FIELD_UNITS),
            generator=run["generator"],
            flux_averaged_xsec=run.get("flux_averaged_xsec"),
            xsec_unit=run.get("xsec_unit"),
            xsec_target_scale=run.get("xsec_target_scale"),
            beam_histograms=run.get("beam_histograms", {}),
        )
        names = list(run_info.weight_names) if run_info is not None else []
        widths = {len(w) for w in weights}
        if len(widths) == 1 and names and len(names) == widths.pop():
            fields |= {
                f"weight:{name}": column
                for name, column in zip(names, np.array(weights).T, strict=True)
            }
        return cls(info, fields)

    def read_array(self, prefix: str, start: int, stop: int) -> np.ndarray:
        """(n, U) of the events' named weights (``GenRunInfo.weight_names``) that start with
        ``prefix``, in the order the names end in numbers (``genie_univ_0``, ``…_1``, …)."""
        names = [k[len("weight:") :] for k in self._fields if k.startswith("weight:" + prefix)]
        if not names:
            msg = f"no event weights named {prefix}…; the run info names: {', '.join(k[7:] for k in self._fields if k.startswith('weight:')) or 'none'}"
            raise IngestError(msg, path=self._info.path)

        def order(name: str) -> tuple[int, str]:
            tail = name[len(prefix) :].lstrip("_")
            return (int(tail), name) if tail.isdigit() else (-1, name)

        names.sort(key=order)
        return np.stack([self._fields[f"weight:{n}"][start:stop] for n in names], axis=1)

    @property
    def info(self) -> SourceInfo:
        return self._info

    def read(self, fields: Sequence[str], start: int, stop: int) -> dict[str, np.ndarray]:
        return {name: self._fields[name][start:stop] for name in fields}

    def close(self) -> None:
        self._fields = {}

    def __enter__(self) -> HepMC3File:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _event_fields(path: Path, event: Any) -> tuple[float, ...]:
    """The fields of one event, in the order of FIELD_UNITS, in MeV."""
    import pyhepmc

    to_mev = 1.0 if event.momentum_unit == pyhepmc.Units.MEV else 1e3
    p = event.numpy.particles
    pid, status = p.pid, p.status
    mom = np.stack([p.px, p.py, p.pz, p.e], axis=1) * to_mev

    beams = np.flatnonzero((status == _BEAM_STATUS) & np.isin(pid, _NEUTRINOS))
    if beams.size == 0:
        msg = f"event {event.event_number} has no incoming neutrino (status 4): not a NuHepMC neutrino event"
        raise IngestError(msg, path=path)
    beam = beams[0]
    neu = int(pid[beam])
    k = mom[beam]

    targets = np.flatnonzero(np.isin(status, _TARGET_STATUS))
    tgt = int(pid[targets[0]]) if targets.size else 0
    z, a = _nucleus(tgt)

    final = status == _FINAL_STATUS
    partner = neu - int(np.sign(neu))  # ν_ℓ (±12, ±14, ±16) → ℓ (±11, ±13, ±15)
    leptons = np.flatnonzero(final & (pid == partner))
    cc = leptons.size > 0
    if not cc:
        leptons = np.flatnonzero(final & (pid == neu))
    if leptons.size:
        lepton = leptons[np.argmax(mom[leptons, 3])]
        px, py, pz, el = mom[lepton]
        fspl = int(pid[lepton])
        pl = float(np.sqrt(px * px + py * py + pz * pz))
        q = k - mom[lepton]
        q2 = float(q[0] ** 2 + q[1] ** 2 + q[2] ** 2 - q[3] ** 2)
        k_abs = float(np.sqrt(k[:3] @ k[:3]))
        cthl = float(k[:3] @ mom[lepton, :3]) / (k_abs * pl) if k_abs * pl > 0 else np.nan
    else:
        px = py = pz = el = pl = q2 = cthl = np.nan
        fspl = 0
    return (
        float(event.event_number),
        float(neu),
        float(tgt),
        float(z),
        float(a),
        float(_process_id(event)),
        float(fspl),
        float(cc),
        float(leptons.size > 0 and not cc),
        float(k[3]),
        float(el),
        float(px),
        float(py),
        float(pz),
        pl,
        cthl,
        q2,
        _cv_weight(event),
    )


def _nucleus(pdg: int) -> tuple[int, int]:
    """(Z, A) of a target: nuclear codes 10LZZZAAAI (PDG MC numbering), free nucleons, else 0."""
    if pdg == 2212:
        return 1, 1
    if pdg == 2112:
        return 0, 1
    if pdg >= 1_000_000_000:
        return (pdg // 10_000) % 1000, (pdg // 10) % 1000
    return 0, 0


def _process_id(event: Any) -> int:
    attributes = event.attributes
    for name in ("signal_process_id", "ProcID"):
        if name in attributes:
            return int(attributes[name].astype(int))
    return -1


def _cv_weight(event: Any) -> float:
    weights = list(event.weights)
    if not weights:
        return 1.0
    names = list(event.weight_names) if event.run_info is not None else []
    return float(weights[names.index("CV")] if "CV" in names else weights[0])


def _run_info(path: Path, run_info: Any) -> dict[str, Any]:
    """Generator name/version (the first tool), σ̄ as recorded (value, unit, target scale; NuHepMC
    G.C.4/G.C.5) and the beam energy histograms (G.C.7), each where the file has them."""
    out: dict[str, Any] = {"generator": {}}
    if run_info is None:
        return out
    if run_info.tools:
        out["generator"] = {"name": run_info.tools[0].name, "version": run_info.tools[0].version}
    attributes = run_info.attributes

    def text(name: str) -> str | None:
        return str(attributes[name].astype(str)).strip() if name in attributes else None

    if "NuHepMC.FluxAveragedTotalCrossSection" in attributes:
        value = float(attributes["NuHepMC.FluxAveragedTotalCrossSection"].astype(float))
        if not (math.isfinite(value) and value > 0):
            msg = f"NuHepMC.FluxAveragedTotalCrossSection is {value}; a cross section is > 0"
            raise IngestError(msg, path=path)
        out["flux_averaged_xsec"] = value
    out["xsec_unit"] = text("NuHepMC.Units.CrossSection.Unit")
    out["xsec_target_scale"] = text("NuHepMC.Units.CrossSection.TargetScale")
    out["beam_histograms"] = _beam_histograms(attributes, text)
    return out


def _beam_histograms(attributes: Any, text: Any) -> dict[int, dict[str, Any]]:
    beams = {}
    for name in attributes:
        if not (name.startswith("NuHepMC.Beam[") and name.endswith("].Type")):
            continue
        pdg = int(name[len("NuHepMC.Beam[") : -len("].Type")])
        if text(name) != "Histogram":
            continue
        prefix = f"NuHepMC.Beam[{pdg}]"
        edges, contents = (
            text(f"{prefix}.Histogram.BinEdges"),
            text(f"{prefix}.Histogram.BinContent"),
        )
        if edges is None or contents is None:
            continue
        per_width = (text(f"{prefix}.Histogram.ContentIsPerWidth") or "").lower()
        beams[pdg] = {  # vector attributes are written as space-separated numbers
            "edges": np.array(edges.split(), dtype=np.float64),
            "contents": np.array(contents.split(), dtype=np.float64),
            "energy_unit": text(f"{prefix}.EnergyUnit"),
            "rate_unit": text(f"{prefix}.RateUnit") or "Arbitrary",
            "per_width": per_width in ("1", "true"),
        }
    return beams


def read_run_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The run info of a NuHepMC file (its first event's): generator, σ̄ and beam histograms."""
    import pyhepmc

    path = Path(path)
    with pyhepmc.open(path) as reader:
        for event in reader:
            return _run_info(path, event.run_info)
    raise IngestError("holds no HepMC3 events", path=path)
