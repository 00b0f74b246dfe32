"""Inputs in the formats real analyses bring, written with the real writers (docs/ingest.md).

The walkthroughs of ``examples/`` and the tests use these to make small but faithful files:

- GENIE gst trees (``gntpc -f gst``; GENIE user manual, arXiv:1510.05494) written with uproot:
  the flat branches ``iev neu fspl tgt Z A hitnuc qel mec res dis coh nuel cc nc wght xs ys Q2
  W Ev El pxl pyl pzl pl cthl`` in GENIE's units (GeV, GeV²), ``tgt`` a PDG nuclear code
  10LZZZAAAI and ``wght`` the event weight (1 for unweighted GENIE output), and optionally a
  friend branch of per-event universe weights (MicroBooNE-style ``weightsGenie``, a
  ``std::vector`` per event);
- NuHepMC 1.0 files (arXiv:2310.13211) written with pyhepmc: the run info carries the tools,
  the "CV" weight, the process IDs, ``NuHepMC.FluxAveragedTotalCrossSection`` with its
  ``Units.CrossSection.Unit`` and ``TargetScale``, the exposure and the beam histogram (G.C.7);
  each event its ``signal_process_id``, a beam (status 4), a target (status 20) and final
  particles (status 1);
- flux files: CSV, NumPy npz (with PPFX-style universe histograms), ROOT TH1 (uproot) and
  HEPData tables with ``probe_flux`` variables;
- weight friend files keyed by event_id: npz, and parquet where pyarrow is installed.

The physics is simple (these are format tests, not generators): kinematics are drawn from
plausible distributions, not from a cross-section model.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MUON_MASS_GEV",
    "gst_branches",
    "write_flux_csv",
    "write_flux_hepdata",
    "write_flux_npz",
    "write_flux_root",
    "write_gst",
    "write_nuhepmc",
    "write_weights_npz",
    "write_weights_parquet",
]

MUON_MASS_GEV = 0.1056583755
ELECTRON_MASS_GEV = 0.51099895e-3
NUCLEON_MASS_GEV = 0.9389
_PROCESSES = ("qel", "mec", "res", "dis", "coh")


def _nuclear_pdg(z: int, a: int) -> int:
    return 1_000_000_000 + 10_000 * z + 10 * a


def gst_branches(
    n: int,
    *,
    seed: int,
    enu_gev: np.ndarray | None = None,
    neutrino: int = 14,
    targets: Sequence[tuple[int, int, float]] = ((18, 40, 1.0),),
    cc_fraction: float = 1.0,
    process_fractions: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Branches of a gst tree: ``n`` events of one neutrino on ``targets`` ((Z, A, share), …).

    ``enu_gev`` gives the neutrino energies (default: 0.2–3 GeV, falling); charged current with
    probability ``cc_fraction``; each event one process of ``process_fractions`` (default QE 45 %,
    MEC 10 %, RES 30 %, DIS 13 %, COH 2 %).
    """
    rng = np.random.default_rng(seed)
    fractions = dict(
        process_fractions or {"qel": 0.45, "mec": 0.10, "res": 0.30, "dis": 0.13, "coh": 0.02}
    )
    names = list(fractions)
    p = np.array([fractions[k] for k in names], dtype=np.float64)
    process = rng.choice(len(names), size=n, p=p / p.sum())
    ev = enu_gev if enu_gev is not None else 0.2 + rng.gamma(2.0, 0.35, n)
    ev = np.asarray(ev, dtype=np.float64)
    share = np.array([t[2] for t in targets], dtype=np.float64)
    which = rng.choice(len(targets), size=n, p=share / share.sum())
    z = np.array([t[0] for t in targets])[which]
    a = np.array([t[1] for t in targets])[which]
    tgt = np.array([_nuclear_pdg(zz, aa) if aa > 1 else 2212 for zz, aa in zip(z, a, strict=True)])
    cc = rng.random(n) < cc_fraction
    lepton_mass = np.where(abs(neutrino) == 14, MUON_MASS_GEV, ELECTRON_MASS_GEV)
    sign = 1 if neutrino > 0 else -1
    fspl = np.where(cc, sign * (abs(neutrino) - 1), neutrino)
    y = np.where(np.array(names)[process] == "qel", rng.beta(1.2, 6.0, n), rng.beta(1.5, 2.5, n))
    el = np.maximum(ev * (1.0 - y), np.where(cc, lepton_mass, 0.0) + 1e-6)
    m = np.where(cc, lepton_mass, 0.0)
    pl = np.sqrt(np.maximum(el**2 - m**2, 0.0))
    cth = np.clip(1.0 - rng.exponential(0.15, n) * (1.0 + y), -1.0, 1.0)
    phi = rng.random(n) * 2.0 * np.pi
    sth = np.sqrt(1.0 - cth**2)
    pxl, pyl, pzl = pl * sth * np.cos(phi), pl * sth * np.sin(phi), pl * cth
    q2 = 2.0 * ev * (el - pl * cth) - m**2
    w = np.sqrt(np.maximum(NUCLEON_MASS_GEV**2 + 2 * NUCLEON_MASS_GEV * ev * y - q2, 0.0))
    out: dict[str, np.ndarray] = {
        "iev": np.arange(n, dtype=np.int32),
        "neu": np.full(n, neutrino, dtype=np.int32),
        "fspl": fspl.astype(np.int32),
        "tgt": tgt.astype(np.int32),
        "Z": z.astype(np.int32),
        "A": a.astype(np.int32),
        "hitnuc": np.where(rng.random(n) < 0.5, 2112, 2212).astype(np.int32),
    }
    chosen = np.array(names)[process]
    for name in _PROCESSES:
        out[name] = chosen == name
    out |= {
        "nuel": np.zeros(n, dtype=bool),
        "cc": cc,
        "nc": ~cc,
        "wght": np.ones(n),  # GENIE's unweighted output
        "xs": rng.random(n),
        "ys": y,
        "Q2": q2,
        "W": w,
        "Ev": ev,
        "El": el,
        "pxl": pxl,
        "pyl": pyl,
        "pzl": pzl,
        "pl": pl,
        "cthl": cth,
    }
    return out


def write_gst(
    path: str | Path,
    branches: Mapping[str, np.ndarray],
    *,
    tree: str = "gst",
    weights: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write a gst tree with uproot; ``weights`` adds array branches (name → (n, U) array)."""
    import awkward as ak
    import uproot

    path = Path(path)
    data: dict[str, Any] = dict(branches)
    for name, values in (weights or {}).items():
        data[name] = ak.from_regular(ak.Array(np.asarray(values)))  # a std::vector per event
    with uproot.recreate(path) as file:
        file[tree] = data
    return path


def write_nuhepmc(
    path: str | Path,
    events: Sequence[Mapping[str, Any]],
    *,
    generator: tuple[str, str] = ("MARLEY", "1.2.1"),
    run_attributes: Mapping[str, Any] | None = None,
    weight_names: Sequence[str] = ("CV",),
) -> Path:
    """Write NuHepMC 1.0 events with pyhepmc.

    Each event is a mapping with ``process`` (signal_process_id), ``beam`` (PDG, (px, py, pz,
    E)), ``target`` (PDG, (px, py, pz, E)), ``final`` [(PDG, (px, py, pz, E)), …] in MeV, and
    ``weights`` (one per name of ``weight_names``).
    """
    import pyhepmc

    path = Path(path)
    run = pyhepmc.GenRunInfo()
    run.tools = [pyhepmc.GenRunInfo.ToolInfo(generator[0], generator[1], "event generator")]
    run.weight_names = list(weight_names)
    run.attributes["NuHepMC.Version.Major"] = 1
    run.attributes["NuHepMC.Version.Minor"] = 0
    run.attributes["NuHepMC.Version.Patch"] = 0
    for name, value in (run_attributes or {}).items():
        run.attributes[name] = value
    with pyhepmc.open(path, "w") as writer:
        for number, ev in enumerate(events):
            event = pyhepmc.GenEvent(pyhepmc.Units.MEV, pyhepmc.Units.CM)
            event.run_info = run
            event.event_number = number
            event.weights = list(ev["weights"])
            event.attributes["signal_process_id"] = int(ev["process"])
            vertex = pyhepmc.GenVertex()
            vertex.status = 1
            vertex.add_particle_in(pyhepmc.GenParticle(tuple(ev["beam"][1]), int(ev["beam"][0]), 4))
            vertex.add_particle_in(
                pyhepmc.GenParticle(tuple(ev["target"][1]), int(ev["target"][0]), 20)
            )
            for pdg, momentum in ev["final"]:
                vertex.add_particle_out(pyhepmc.GenParticle(tuple(momentum), int(pdg), 1))
            event.add_vertex(vertex)
            writer.write(event)
    return path


# --- flux files -----------------------------------------------------------------------------------


def write_flux_csv(path: str | Path, edges: np.ndarray, contents: Mapping[str, np.ndarray]) -> Path:
    """``e_low,e_high,<flavour>…`` rows."""
    path = Path(path)
    lines = ["e_low,e_high," + ",".join(contents)]
    for b in range(len(edges) - 1):
        values = ",".join(repr(float(c[b])) for c in contents.values())
        lines.append(f"{float(edges[b])!r},{float(edges[b + 1])!r},{values}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_flux_npz(
    path: str | Path,
    edges: np.ndarray,
    contents: Mapping[str, np.ndarray],
    *,
    universes: Mapping[str, np.ndarray] | None = None,
    covariance: np.ndarray | None = None,
) -> Path:
    """``edges``, one array per flavour, ``<flavour>_universes`` (N, bins), ``covariance``."""
    arrays: dict[str, np.ndarray] = {"edges": np.asarray(edges, np.float64)}
    arrays |= {k: np.asarray(v, np.float64) for k, v in contents.items()}
    arrays |= {f"{k}_universes": np.asarray(v, np.float64) for k, v in (universes or {}).items()}
    if covariance is not None:
        arrays["covariance"] = np.asarray(covariance, np.float64)
    np.savez(path, **arrays)
    return Path(path)


def write_flux_root(
    path: str | Path,
    edges: np.ndarray,
    contents: Mapping[str, np.ndarray],
    *,
    universes: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """TH1Ds ``h<flavour>`` and PPFX-style ``h<flavour>_univ_<i>`` (uproot)."""
    import uproot

    path = Path(path)
    with uproot.recreate(path) as file:
        for flavor, values in contents.items():
            file[f"h{flavor}"] = (np.asarray(values, np.float64), np.asarray(edges, np.float64))
        for flavor, table in (universes or {}).items():
            for i, values in enumerate(np.asarray(table)):
                file[f"h{flavor}_univ_{i}"] = (
                    np.asarray(values, np.float64),
                    np.asarray(edges, np.float64),
                )
    return path


def write_flux_hepdata(
    path: str | Path,
    edges: np.ndarray,
    contents: Mapping[str, np.ndarray],
    *,
    energy_unit: str = "MeV",
    unit: str = "nu / cm^2 over the exposure",
) -> Path:
    """A HEPData table (YAML): E_nu bins and one ``probe_flux`` variable per flavour."""
    import yaml

    pdg = {"nue": 12, "nuebar": -12, "numu": 14, "numubar": -14}
    doc = {
        "independent_variables": [
            {
                "header": {"name": "E_nu", "units": energy_unit},
                "values": [
                    {"low": float(lo), "high": float(hi)} for lo, hi in itertools.pairwise(edges)
                ],
            }
        ],
        "dependent_variables": [
            {
                "header": {"name": f"Flux {flavor}", "units": unit},
                "qualifiers": [
                    {"name": "variable_type", "value": "probe_flux"},
                    {"name": "probe_particle", "value": flavor},
                    {"name": "probe_pdg", "value": pdg[flavor]},
                    {
                        "name": "bin_content_type",
                        "value": "count_density"
                        if "MeV" in unit.split("/")[-1] or "GeV" in unit.split("/")[-1]
                        else "count",
                    },
                ],
                "values": [{"value": float(v)} for v in values],
            }
            for flavor, values in contents.items()
        ],
    }
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
    return Path(path)


# --- weights friend files ---------------------------------------------------------------------------


def write_weights_npz(path: str | Path, event_id: np.ndarray, weights: np.ndarray) -> Path:
    """``event_id`` (n,) and ``weights`` (n, U)."""
    np.savez(path, event_id=np.asarray(event_id, np.uint64), weights=np.asarray(weights))
    return Path(path)


def write_weights_parquet(path: str | Path, event_id: np.ndarray, weights: np.ndarray) -> Path:
    """A parquet table: ``event_id`` and ``weights`` (a fixed-size list per row), pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    weights = np.asarray(weights)
    values = pa.array(weights.ravel())
    table = pa.table(
        {
            "event_id": pa.array(np.asarray(event_id, np.uint64)),
            "weights": pa.FixedSizeListArray.from_arrays(values, weights.shape[1]),
        }
    )
    pq.write_table(table, path)
    return Path(path)
