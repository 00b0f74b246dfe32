"""Walkthrough: a COHERENT-style CsI sample whose flux comes from a file, not the π-DAR model.

An experiment brings its own events and its flux group's table:

- ``csi_cevns.root``: a flat ROOT tree (uproot) of CEvNS events on ¹³³Cs and ¹²⁷I, one entry per
  event with the neutrino (``neu``, ``Ev`` in MeV), the target (``tgt``, ``Z``, ``A``), the
  recoil (``T`` in keV) and the reconstruction (photoelectrons ``pe``, time ``t`` in µs);
- ``pidar-flux.yaml``: a HEPData table of the π-DAR flux at 19.3 m, ν per cm² per POT in 1 MeV
  bins, one ``probe_flux`` variable per flavour (the convention of farm's own HEPData export).

    farm ingest csi_cevns.root --mapping coherent-csi-mapping.toml --out coherent-csi.zarr
    farm run coherent-csi-analysis.toml --out coherent-csi-result.zarr

The ingest checks each event's nucleus against the mapping's Cs and I, normalises each
nucleus's events by its own σ̄ (a file of events on two targets), cross-checks the fluence the
mapping states against the table's integral and stores the table's flux with the events. The
run measures the flux-averaged CEvNS cross section per nucleus with the store's flux: the
table holds the built-in π-DAR model's histogram, so its Φ is the model's to 1e-12, but nothing
in the run comes from the model.

    python3 examples/coherent_csi.py [--workdir DIR] [--events N]      # about 10 s
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from farm.config import parse_config
from farm.config.sample import SnsSource
from farm.flux.sources import pidar_flux
from farm.ingest import ingest
from farm.physics import cevns, nuclei
from farm.physics import flux as spectra
from farm.runner import run_inprocess
from farm.store import EventStore

HERE = Path(__file__).resolve().parent
SOURCE = SnsSource(distance_m=19.3)
EDGES_MEV = np.arange(0.0, 54.0, 1.0)
MASS_KG = 14.6
TARGETS = ("Cs133", "I127")
FLAVORS = {"numu": 14, "nue": 12, "numubar": -14}
PE_PER_KEV = 0.08 * 13.35  # quenching × light yield


def _realfiles() -> Any:
    spec = importlib.util.spec_from_file_location("realfiles", HERE / "realfiles.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def flux_averaged_xsec() -> dict[str, float]:
    """σ̄ per nucleus over the three flavours: Σ_f ∫ Φ_f σ dE / Σ_f Φ_f (Helm, corrected Q_W)."""
    flux = pidar_flux(SOURCE)
    rule = flux.rule()
    return {
        t: sum(float((w * cevns.total_xsec(e, t)).sum()) for e, w in rule.values())
        / flux.integral()
        for t in TARGETS
    }


def _energies(rng: np.random.Generator, flavor: str, target: str, n: int) -> np.ndarray:
    if flavor == "numu":
        return np.full(n, spectra.PIDAR_NUMU_LINE_MEV)
    grid = np.linspace(0.0, spectra.MICHEL_ENDPOINT_MEV, 4001)
    pdf = spectra.pidar_spectrum(flavor, grid) * cevns.total_xsec(grid, target)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    return np.interp(rng.random(n), cdf / cdf[-1], grid)


def _recoils(rng: np.random.Generator, enu: np.ndarray, target: str) -> np.ndarray:
    """T from dσ/dT by rejection (T_max = 2E²/(M + 2E))."""
    mass = nuclei.get_target(target).mass_mev
    t_max = cevns.max_recoil_mev(enu, mass)
    out = np.empty(enu.size)
    todo = np.arange(enu.size)
    top = cevns.dxsec_dT(enu, np.zeros(enu.size), target)
    while todo.size:
        t = rng.random(todo.size) * t_max[todo]
        keep = rng.random(todo.size) * top[todo] <= cevns.dxsec_dT(enu[todo], t, target)
        out[todo[keep]] = t[keep]
        todo = todo[~keep]
    return out


def write_inputs(workdir: Path, events: int, seed: int = 133) -> None:
    """The flat tree, the HEPData flux table and the mapping next to them."""
    realfiles = _realfiles()
    flux = pidar_flux(SOURCE)
    per_pot = {f: flux.histogram(f, EDGES_MEV) / flux.exposure["value"] for f in FLAVORS}
    realfiles.write_flux_hepdata(
        workdir / "pidar-flux.yaml", EDGES_MEV, per_pot, energy_unit="MeV", unit="nu / cm^2 / POT"
    )
    rng = np.random.default_rng(seed)
    rule = flux.rule()
    rate = np.array(
        [
            [float((rule[f][1] * cevns.total_xsec(rule[f][0], t)).sum()) for f in FLAVORS]
            for t in TARGETS
        ]
    )
    counts = rng.multinomial(events, (rate / rate.sum()).ravel()).reshape(rate.shape)
    parts = []
    for i, target in enumerate(TARGETS):
        nucleus = nuclei.get_target(target)
        for j, (flavor, pdg) in enumerate(FLAVORS.items()):
            n = int(counts[i, j])
            enu = _energies(rng, flavor, target, n)
            recoil_kev = 1000.0 * _recoils(rng, enu, target)
            parts.append(
                {
                    "neu": np.full(n, pdg, dtype=np.int32),
                    "tgt": np.full(
                        n, 1_000_000_000 + 10_000 * nucleus.z + 10 * nucleus.a, dtype=np.int32
                    ),
                    "Z": np.full(n, nucleus.z, dtype=np.int32),
                    "A": np.full(n, nucleus.a, dtype=np.int32),
                    "Ev": enu,
                    "T": recoil_kev,
                    "pe": rng.poisson(PE_PER_KEV * recoil_kev).astype(np.float32),
                    "t": spectra.sample_pidar_time_us(rng, flavor, n, pulse_center_us=0.38),
                    "wght": np.ones(n),
                }
            )
    tree = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = rng.permutation(events)
    tree = {k: v[order] for k, v in tree.items()}
    tree["iev"] = np.arange(events, dtype=np.int32)
    realfiles.write_gst(workdir / "csi_cevns.root", tree, tree="flat")
    shutil.copy(
        HERE / "ingest" / "coherent-csi-mapping.toml", workdir / "coherent-csi-mapping.toml"
    )


def run(workdir: Path, events: int = 40_000) -> dict[str, Any]:
    """Write, ingest, run; return what the walkthrough prints (for tests)."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_inputs(workdir, events)
    store_path = workdir / "coherent-csi.zarr"
    ingest(
        [workdir / "csi_cevns.root"],
        workdir / "coherent-csi-mapping.toml",
        store_path,
        overwrite=True,
    )
    store = EventStore.open(store_path)
    data = tomllib.loads((HERE / "ingest" / "coherent-csi-analysis.toml").read_text())
    data["sample"]["store"] = str(store_path)
    ds = run_inprocess(parse_config(data, source="coherent-csi-analysis.toml"), log=lambda _: None)
    names = [str(s) for s in ds["systematic"].values]
    xsec = float(ds["xsec_real"].values[0, 0])
    sigma = flux_averaged_xsec()
    return {
        "store": store,
        "normalization": store.attrs["ingest"]["normalization"],
        "target_check": store.attrs["ingest"]["target_check"],
        "phi_store": float(ds["integrated_flux"].values[0]),
        "phi_model": pidar_flux(SOURCE).integral(),
        "xsec": xsec,
        "model_xsec": float(np.mean([sigma[t] for t in TARGETS])),  # equal numbers of Cs and I
        "total": float(np.sqrt(ds["cov_real"].values[0, 0] + ds["cov_stat_real"].values[0, 0])),
        "per_systematic": {
            n: float(np.sqrt(ds["cov_systematic_real"].values[k][0, 0])) / xsec
            for k, n in enumerate(names)
        },
        "flux_source": ds.attrs["flux_source"],
        "dataset": ds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--events", type=int, default=40_000)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="coherent-csi-"))
    out = run(workdir, args.events)
    check = out["normalization"]["cross_check"]
    print(f"inputs and store in {workdir}")
    print(f"events per nucleus: {out['target_check']['events_by_nucleus']}")
    print(
        f"expected events {check['declared_events']:.5g} (σ̄ per nucleus × the stated fluence), "
        f"{check['computed_events']:.5g} from the table's Φ (ratio {check['ratio']:.5f})"
    )
    print(
        f"Φ of the run (the store's, from the HEPData table) {out['phi_store']:.6e} /cm²; the "
        f"built-in π-DAR model {out['phi_model']:.6e} (ratio − 1 = {out['phi_store'] / out['phi_model'] - 1:.1e})"
    )
    print(f"flux: {out['flux_source']}")
    print(
        f"\nCEvNS σ on CsI (real-flux-averaged, per nucleus): {out['xsec']:.4e} cm² ± "
        f"{100 * out['total'] / out['xsec']:.1f} %; the model used to make the events "
        f"{out['model_xsec']:.4e} cm²"
    )
    print("  " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in out["per_systematic"].items()))


if __name__ == "__main__":
    sys.exit(main())
