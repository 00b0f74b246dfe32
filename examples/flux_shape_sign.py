"""Worked example: whether a flux shape keeps Φ decides the sign of corr(measured, predicted).

In the real-flux-averaged convention the measurement S = (N − B)/(T Φ) and the prediction
P = ∫F σ dE / Φ both move when the flux moves. To first order in a flux change δ(E),

    ΔP = ∫ F̄ (σ − P̄) δ dE / Φ̄                     (the shape only: a constant δ cancels)
    ΔS = −[ΔB + (N − B̄) ΔΦ/Φ̄] / (T Φ̄)

so over the flux universes

    Cov(S, P) = −[Cov(ΔB, ΔP) + (N − B̄) Cov(ΔΦ/Φ̄, ΔP)] / (T Φ̄).

A Φ-preserving shape (``preserve_integral = true``) has ΔΦ = 0: the sign is −sign Cov(ΔB, ΔP),
set by how the background depends on E_ν. A shape that also moves Φ adds the second term, weighted
by the signal count N − B̄, and its sign is −sign Cov(ΔΦ, ΔP), set by whether the flux brightens
as it hardens or as it softens, whatever the background.

This script measures both on an exact synthetic case through the farm's own machinery: universes
thrown by ``run_universe_set`` from ``[[systematics]]`` tables, histograms, extraction and
covariances by ``finish``, the joint χ² by ``farm.compare``. The case:

* one flavour (ν_μ), flux bins [10, 20), [20, 30), [30, 40) MeV; the nominal flux is nine lines
  at 12.5, 15, …, 37.5 MeV of 10¹⁵ ν/cm² each (Φ̄ = 9·10¹⁵ ν/cm², ⟨E⟩ = 25 MeV);
* T = 10²⁸ targets, σ(E) = 10⁻⁴⁰ cm² · E/MeV, perfect efficiency and smearing, one total bin;
* a background carried by events at the same E_ν (so it follows the flux), ∝ 1/E or ∝ E per unit
  fluence, half the nominal signal; data N = 1.1 × (nominal signal) + B̄, no Poisson fluctuation;
* three flux systematics, each declared once with ``preserve_integral = false`` and once with
  ``true``: ``harder-brighter``, a 20 % one-parameter mode δ_b ∝ (E_b − 10 MeV)/30 MeV that adds
  flux at high energy; ``softer-brighter``, δ_b ∝ (40 MeV − E_b)/30 MeV, that adds it at low energy
  (both as a ``covariance_file`` v vᵀ); and ``kernel``, the farm's own ``shape = 0.1`` (Gaussian
  correlation in ln E_ν, ``shape_correlation_length = 0.3``). Projected to keep Φ, the first two
  become the same tilt (E_b − 25 MeV)/30 MeV, of opposite signs.

Run it with (about 2 s)

    python3 examples/flux_shape_sign.py
"""

from __future__ import annotations

import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

import farm
from farm.accumulate import AccumulationSpec, block_partial_sums
from farm.analysis.pipeline import Prepared, finish
from farm.analysis.run_inputs import run_universe_set
from farm.config import examples_dir, parse_config
from farm.reweight.knobs import KnobContext
from farm.store.schema import Channel
from farm.systematics.fluxbins import FluxBins

E_NODES_MEV = np.array([12.5, 15.0, 17.5, 22.5, 25.0, 27.5, 32.5, 35.0, 37.5])
FLUENCE_PER_NODE = 1e15  # ν/cm²
N_TARGETS = 1e28
SIGMA_CM2_PER_MEV = 1e-40
FLUX_EDGES_MEV = [10.0, 20.0, 30.0, 40.0]
BIN_CENTRES_MEV = np.array([15.0, 25.0, 35.0])
EXCESS = 1.1
BACKGROUND_FRACTION = 0.5
"""B̄ over the nominal signal."""
MODE_SIGMA = 0.20
THROWS = 400
SHAPES = ("harder-brighter", "softer-brighter", "kernel")
BACKGROUNDS = {"1/E": "inverse", "E": "linear"}


def sigma_linear(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
    """σ(E) = 10⁻⁴⁰ cm² · E/MeV, the model compared with the measurement."""
    del flavor
    return SIGMA_CM2_PER_MEV * np.asarray(enu_mev, dtype=np.float64)


def background_per_fluence(kind: str) -> np.ndarray:
    """b(E_k) at the nodes, ∝ 1/E (``inverse``) or ∝ E (``linear``), B̄ = half the signal."""
    shape = 1.0 / E_NODES_MEV if kind == "inverse" else E_NODES_MEV.copy()
    signal = N_TARGETS * FLUENCE_PER_NODE * sigma_linear(E_NODES_MEV, "numu").sum()
    return shape * BACKGROUND_FRACTION * signal / (FLUENCE_PER_NODE * shape.sum())


def _events(background: str) -> dict[str, np.ndarray]:
    """One signal and one background event per flux line, weighted to expected counts."""
    n = E_NODES_MEV.size
    enu = np.concatenate([E_NODES_MEV, E_NODES_MEV])
    return {
        "event_id": np.arange(2 * n, dtype=np.uint64),
        "enu_true": enu,
        "flavor": np.full(2 * n, 14, dtype=np.int16),
        "channel": np.array([Channel.CCQE] * n + [Channel.CC_OTHER] * n, dtype=np.int8),
        "is_signal": np.arange(2 * n) < n,
        "selected": np.ones(2 * n, dtype=bool),
        "w_nominal": np.concatenate(
            [
                N_TARGETS * FLUENCE_PER_NODE * sigma_linear(E_NODES_MEV, "numu"),
                FLUENCE_PER_NODE * background_per_fluence(background),
            ]
        ),
        "reco_mev": enu,
    }


def _rule() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"numu": (E_NODES_MEV, np.full(E_NODES_MEV.size, FLUENCE_PER_NODE))}


def _systematic(shape: str, preserve: bool, workdir: Path) -> dict[str, object]:
    """The ``[[systematics]]`` table of one flux shape."""
    table: dict[str, object] = {
        "name": f"{shape}{'-preserving' if preserve else ''}",
        "kind": "flux",
        "throws": THROWS,
        "preserve_integral": preserve,
    }
    if shape == "kernel":
        return table | {"shape": 0.1, "shape_correlation_length": 0.3}
    lo, hi = FLUX_EDGES_MEV[0], FLUX_EDGES_MEV[-1]
    ramp = (BIN_CENTRES_MEV - lo) if shape == "harder-brighter" else (hi - BIN_CENTRES_MEV)
    mode = MODE_SIGMA * ramp / (hi - lo)
    path = workdir / f"{shape}.npy"
    np.save(path, np.outer(mode, mode))
    return table | {"covariance_file": str(path)}


def dataset(shape: str, preserve: bool, background: str, workdir: Path) -> xr.Dataset:
    """The farm's result dataset for one flux shape and one background."""
    data = tomllib.loads((examples_dir() / "sns-csi.toml").read_text())
    data["sample"]["name"] = "flux-shape-sign"
    data["binning"] = {
        "observable": "reco_mev",
        "reco_edges": [0.0, 100.0],
        "truth": "total",
        "flux_edges_mev": {"numu": FLUX_EDGES_MEV},
    }
    data["systematics"] = [_systematic(shape, preserve, workdir)]
    data["models"] = []
    data["analysis"] = {"method": "lsq", "universe_seed": 20260523}
    data["data"] = {"kind": "fake", "signal_scale": EXCESS, "poisson": False}
    cfg = parse_config(data, source="flux_shape_sign.py")
    bins = FluxBins.from_mapping({"numu": FLUX_EDGES_MEV})
    rule = _rule()
    spec = AccumulationSpec(
        observable="reco_mev",
        reco_edges=np.array([0.0, 100.0]),
        truth_column=None,
        truth_edges=None,
        flux_bins=bins,
        event_universes=np.zeros(0, dtype=np.int64),
        knob_values={},
        bootstrap_replica=np.zeros(0, dtype=np.int64),
        bootstrap_key=0,
        knob_context=KnobContext(observable="reco_mev", nuclei_by_a={}),
    )
    prep = Prepared(
        cfg=cfg,
        store_path=Path("synthetic"),
        store_attrs={},
        store_checksums=(),
        n_events=2 * E_NODES_MEV.size,
        spec=spec,
        universes=run_universe_set(cfg, rule, bins, None),
        flux_bins=bins,
        rule=rule,
        n_targets=N_TARGETS,
    )
    return finish(prep, block_partial_sums(_events(background), spec))


@dataclass(frozen=True, kw_only=True)
class Case:
    shape: str
    preserve: bool
    background: str
    """Either "1/E" or "E"."""
    correlation: float
    """corr(measured, predicted) over the flux universes (farm.compare, real-flux convention)."""
    chi2_joint: float
    chi2_uncorrelated: float
    phi_spread: float
    """Largest |Φ_u/Φ̄ − 1| over the universes."""
    background_term: float
    """−Cov(ΔB, ΔP)/(T Φ̄), relative to S̄ P̄."""
    phi_term: float
    """−(N − B̄) Cov(ΔΦ/Φ̄, ΔP)/(T Φ̄), relative to S̄ P̄."""
    covariance: float
    """Cov(S, P) from the farm's joint covariance, relative to S̄ P̄."""


def _cov(x: np.ndarray, y: np.ndarray) -> float:
    """About the central value (universe 0), 1/N: the farm's default."""
    return float(np.mean((x[1:] - x[0]) * (y[1:] - y[0])))


def measure(shape: str, preserve: bool, background: str, workdir: Path) -> Case:
    ds = dataset(shape, preserve, BACKGROUNDS[background], workdir)
    real = farm.compare(ds, sigma_linear, name="sigma = kappa E").real
    phi = ds["integrated_flux"].values
    b = ds["background_reco"].values[:, 0]
    n, p = float(ds["data_counts"].values[0]), real.predicted[:, 0]
    s = ds["xsec_real"].values[:, 0]
    scale = N_TARGETS * phi[0] * s[0] * p[0]
    return Case(
        shape=shape,
        preserve=preserve,
        background=background,
        correlation=float(real.correlation[0]),
        chi2_joint=real.joint.chi2,
        chi2_uncorrelated=real.uncorrelated.chi2,
        phi_spread=float(np.max(np.abs(phi / phi[0] - 1.0))),
        background_term=-_cov(b, p) / scale,
        phi_term=-(n - b[0]) * _cov(phi / phi[0], p) / scale,
        covariance=float(real.joint_cov[0, 1]) / (s[0] * p[0]),
    )


def run_cases(workdir: Path) -> list[Case]:
    """Every flux shape, with and without ``preserve_integral``, for both backgrounds."""
    workdir.mkdir(parents=True, exist_ok=True)
    return [
        measure(shape, preserve, background, workdir)
        for shape in SHAPES
        for preserve in (True, False)
        for background in BACKGROUNDS
    ]


def report(cases: list[Case]) -> str:
    head = (
        f"{'flux systematic':<17} {'keeps Φ':<7} {'B ∝':<4} {'max|ΔΦ/Φ|':>10} "
        f"{'bkg term':>9} {'Φ term':>9} {'Cov(S,P)':>9} {'corr':>6} {'χ² joint':>9} {'χ² uncorr':>9}"
    )
    lines = [
        "sigma = kappa E, data 10 % above it, background half the signal; relative covariances",
        "(Cov/(S P)): bkg term = -Cov(dB,dP)/(T Phi), Phi term = -(N-B) Cov(dPhi/Phi,dP)/(T Phi)",
        head,
        "-" * len(head),
    ]
    for c in cases:
        lines.append(
            f"{c.shape:<17} {'yes' if c.preserve else 'no':<7} {c.background:<4} "
            f"{c.phi_spread:>10.2e} {c.background_term:>+9.2e} {c.phi_term:>+9.2e} "
            f"{c.covariance:>+9.2e} {c.correlation:>+6.2f} {c.chi2_joint:>9.2f} "
            f"{c.chi2_uncorrelated:>9.2f}"
        )
    return "\n".join(lines)


def main() -> list[Case]:
    with tempfile.TemporaryDirectory() as tmp:
        cases = run_cases(Path(tmp))
    print(report(cases))
    return cases


if __name__ == "__main__":
    main()
