"""Walkthrough: GENIE ν_μ events on argon, with their own flux and GENIE multisim weights.

What a collaboration brings, written here with the real writers (examples/realfiles.py):

- ``numu_Ar40.gst.root``: a GENIE gst tree (uproot) of ν_μ on ⁴⁰Ar, CC and NC, with the
  experiment's reconstructed energy ``Erec`` and a ``weightsGenie`` branch holding 100 GENIE
  ReWeight multisim weights per event (a ``std::vector``, MicroBooNE style; a few negative);
- ``ppfx-numu.root``: the flux group's PPFX-style publication, a TH1D ``hnumu`` in
  ν/m²/10⁶ POT/GeV and 100 universe TH1Ds ``hnumu_univ_<i>``.

Then, as a user would:

    farm ingest numu_Ar40.gst.root --mapping genie-argon-mapping.toml --out genie-argon.zarr
    farm run genie-argon-analysis.toml --out genie-argon-result.zarr

The ingest checks every event's target against the mapping's ⁴⁰Ar, classifies the events with
GENIE's process flags, cross-checks σ̄ × fluence × nuclei against the flux file's integral, and
stores the flux (with its universes) and the weights beside the events. The run takes its flux
from the store, throws the flux file's 100 universes, the 100 GENIE multisims (one universe per
weight column), a channel-selected NC background normalisation and the MC-statistics bootstrap,
and extracts the ν_μ CC cross section in E_ν bins with their covariance.

    python3 examples/genie_argon.py [--workdir DIR] [--events N]       # about 10 s
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
from farm.ingest import ingest
from farm.runner import run_inprocess
from farm.store import EventStore
from farm.store.summary import summarize

HERE = Path(__file__).resolve().parent
EDGES_GEV = np.round(np.arange(0.0, 5.0001, 0.25), 2)
POT = 1.0e20
FLUENCE = 1.0e12  # ν_μ/cm² over the exposure: what the mapping states
UNIVERSES = 100


def _realfiles() -> Any:
    spec = importlib.util.spec_from_file_location("realfiles", HERE / "realfiles.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_inputs(workdir: Path, events: int, seed: int = 2026) -> None:
    """The flux file, the gst tree with its weights branch, and the mapping next to them."""
    realfiles = _realfiles()
    rng = np.random.default_rng(seed)
    centres = 0.5 * (EDGES_GEV[1:] + EDGES_GEV[:-1])
    width = np.diff(EDGES_GEV)
    shape = centres**1.5 * np.exp(-centres / 0.55)
    # ν/m²/10⁶POT/GeV such that Σ c Δ × 1e-4 (m² → cm²) × 1e20/1e6 = 1e12 /cm²
    density = shape * FLUENCE / ((shape * width).sum() * 1e-4 * POT / 1e6)
    tilt = rng.standard_normal((UNIVERSES, 1)) * (centres - 1.0) * 0.05
    universes = density * (1.0 + 0.07 * rng.standard_normal((UNIVERSES, 1)) + tilt)
    universes *= 1.0 + 0.02 * rng.standard_normal(universes.shape)
    realfiles.write_flux_root(
        workdir / "ppfx-numu.root", EDGES_GEV, {"numu": density}, universes={"numu": universes}
    )

    # events: E_ν from flux × E (a rising cross section), CC 80 %
    rate = density * width * centres
    which = rng.choice(centres.size, size=events, p=rate / rate.sum())
    enu = EDGES_GEV[which] + rng.random(events) * width[which]
    branches = realfiles.gst_branches(events, seed=seed, enu_gev=enu, cc_fraction=0.8)
    branches["Erec"] = np.where(
        branches["cc"], enu * (1.0 + 0.08 * rng.standard_normal(events)), 0.4 * enu
    )
    # GENIE multisims: each process's normalisation thrown per universe, plus event-level spread
    spread = {"qel": 0.12, "mec": 0.3, "res": 0.15, "dis": 0.1, "coh": 0.5}
    z = rng.standard_normal((len(spread), UNIVERSES))
    weights = np.ones((events, UNIVERSES))
    for k, (name, sigma) in enumerate(spread.items()):
        weights[branches[name]] += sigma * z[k]
    # an M_A-like knob: the QE weight's slope in E_ν differs from universe to universe
    slope = 0.1 * rng.standard_normal(UNIVERSES)
    weights[branches["qel"]] += np.outer(enu[branches["qel"]] - 1.0, slope)
    weights *= 1.0 + 0.02 * rng.standard_normal(weights.shape)
    weights[:3, 7] = -0.05  # unphysical: the analysis's policy sets them to 0 and counts them
    realfiles.write_gst(
        workdir / "numu_Ar40.gst.root",
        branches,
        weights={"weightsGenie": weights.astype(np.float32)},
    )
    shutil.copy(HERE / "ingest" / "genie-argon-mapping.toml", workdir / "genie-argon-mapping.toml")


def run(workdir: Path, events: int = 40_000) -> dict[str, Any]:
    """Write, ingest, run; return what the walkthrough prints (for tests)."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_inputs(workdir, events)
    store_path = workdir / "genie-argon.zarr"
    ingest(
        [workdir / "numu_Ar40.gst.root"],
        workdir / "genie-argon-mapping.toml",
        store_path,
        overwrite=True,
    )
    store = EventStore.open(store_path)
    data = tomllib.loads((HERE / "ingest" / "genie-argon-analysis.toml").read_text())
    data["sample"]["store"] = str(store_path)
    ds = run_inprocess(parse_config(data, source="genie-argon-analysis.toml"), log=lambda _: None)
    names = [str(s) for s in ds["systematic"].values]
    xsec = ds["xsec_real"].values[0]
    total = np.sqrt(np.diag(ds["cov_real"].values) + np.diag(ds["cov_stat_real"].values))
    per = {
        n: np.sqrt(np.diag(ds["cov_systematic_real"].values[k])) / xsec for k, n in enumerate(names)
    }
    genie = ds["cov_systematic_real"].values[names.index("genie_multisim")]
    scale = np.sqrt(np.diag(genie))
    return {
        "store": store,
        "summary": summarize(store),
        "normalization": store.attrs["ingest"]["normalization"],
        "target_check": store.attrs["ingest"]["target_check"],
        "xsec": xsec,
        "total": total,
        "per_systematic": per,
        "genie_covariance": genie,
        "genie_correlation": genie / np.outer(scale, scale),
        "clamped": int(ds.attrs["weight_clamped_total"]),
        "n_universes": dict(zip(names, ds["n_universes"].values.tolist(), strict=True)),
        "dataset": ds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--events", type=int, default=40_000)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genie-argon-"))
    out = run(workdir, args.events)
    check = out["normalization"]["cross_check"]
    print(f"inputs and store in {workdir}")
    print(
        f"target check: {out['target_check']['events_by_nucleus']} events on declared nuclei; "
        f"expected events {check['declared_events']:.4g} declared, {check['computed_events']:.4g} "
        f"from σ̄ × flux × nuclei (ratio {check['ratio']:.4f})"
    )
    print(
        "expected events by channel:",
        {k: round(v.expected, 1) for k, v in out["summary"].by_channel.items()},
    )
    print(
        f"\nν_μ CC σ (real-flux-averaged), per ⁴⁰Ar nucleus; {out['clamped']} negative or "
        "non-finite GENIE weights set to 0 (the analysis's unphysical_weights policy)"
    )
    header = "truth bin | σ (cm²) | total | " + " | ".join(out["per_systematic"]) + " |"
    print(header)
    for j, value in enumerate(out["xsec"]):
        parts = " | ".join(f"{100 * v[j]:.1f} %" for v in out["per_systematic"].values())
        print(f"{j} | {value:.3e} | {100 * out['total'][j] / value:.1f} % | {parts} |")
    print("\nGENIE multisim correlation between truth bins:")
    print(np.array2string(out["genie_correlation"], precision=2))
    print("universes:", out["n_universes"])


if __name__ == "__main__":
    sys.exit(main())
