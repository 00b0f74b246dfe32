"""Read NuHepMC / HepMC3 event files with pyhepmc into gst-like per-event fields.

HepMC3 (Buckley et al., Comput. Phys. Commun. 260, 107310 (2021), arXiv:1912.08005) stores each
event as a graph of particles; NuHepMC (Gardiner, Isaacson & Pickering, arXiv:2310.13211) adds
the conventions that make neutrino events readable without knowing the generator: the incoming
neutrino has status 4, the target status 20 (11 before NuHepMC 1.0), the process id is the event
attribute ``signal_process_id`` (``ProcID`` in early versions), the "CV" weight normalises, and
the run info may carry ``NuHepMC.FluxAveragedTotalCrossSection``.

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

import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from farm.ingest.source import IngestError, SourceInfo

__all__ = ["FIELD_UNITS", "HepMC3File", "xsec_unit_cm2"]

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
_XSEC_UNITS_CM2 = {"pb": 1e-36, "nb": 1e-33, "fb": 1e-39, "cm2": 1.0, "1e-38 cm2": 1e-38}


def xsec_unit_cm2(unit: str) -> float:
    """cm² per unit of a NuHepMC cross section (``NuHepMC.Units.CrossSection.Unit``; pb by default).

    >>> xsec_unit_cm2("pb")
    1e-36
    """
    try:
        return _XSEC_UNITS_CM2[unit]
    except KeyError:
        msg = f"unknown cross-section unit {unit!r}; known: {', '.join(_XSEC_UNITS_CM2)}"
        raise ValueError(msg) from None


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
        run_info = None
        try:
            with pyhepmc.open(path) as reader:
                for event in reader:
                    rows.append(_event_fields(path, event))
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
        generator, xsec = _run_info(path, run_info)
        info = SourceInfo(
            path=path,
            format="hepmc3",
            container=None,
            n_events=len(rows),
            fields=tuple(FIELD_UNITS),
            field_units=dict(FIELD_UNITS),
            generator=generator,
            flux_averaged_xsec_cm2=xsec,
        )
        return cls(info, fields)

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


def _run_info(path: Path, run_info: Any) -> tuple[dict[str, str], float | None]:
    """Generator name/version (the first tool) and the flux-averaged cross section in cm²."""
    if run_info is None:
        return {}, None
    generator = {}
    if run_info.tools:
        generator = {"name": run_info.tools[0].name, "version": run_info.tools[0].version}
    attributes = run_info.attributes
    if "NuHepMC.FluxAveragedTotalCrossSection" not in attributes:
        return generator, None
    value = float(attributes["NuHepMC.FluxAveragedTotalCrossSection"].astype(float))
    unit = "pb"
    if "NuHepMC.Units.CrossSection.Unit" in attributes:
        unit = str(attributes["NuHepMC.Units.CrossSection.Unit"].astype(str)).strip()
    try:
        factor = xsec_unit_cm2(unit)
    except ValueError as err:
        raise IngestError(f"NuHepMC.Units.CrossSection.Unit: {err}", path=path) from None
    if "NuHepMC.Units.CrossSection.TargetScale" in attributes:
        scale = attributes["NuHepMC.Units.CrossSection.TargetScale"].astype(str)
        generator["xsec_target_scale"] = str(scale).strip()
    return generator, value * factor
