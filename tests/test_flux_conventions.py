"""Both flux conventions on an exact synthetic case, and the two chi-square cases of docs/guide-analysts.md §3.

The case (every number below follows from it by hand):

* one flavour (ν_μ) with flux bins [10, 20), [20, 30), [30, 40) MeV; the nominal flux F̄ is nine
  lines at 12.5, 15, …, 37.5 MeV (three per bin, symmetric about 25 MeV) of 10¹⁵ ν/cm² each;
* T = 10²⁸ targets, σ(E) = 10⁻⁴⁰ cm² · E/MeV, perfect efficiency and smearing: one reco bin, one
  truth bin (the total cross section), every event selected;
* a background B(E) per unit fluence ∝ 1/E or ∝ E, normalised to half the nominal signal, carried
  by events at the same E_ν so that it moves with the flux;
* flux universes are linear tilts, R_u(bin) = 1 + a_u (E_bin − 25 MeV)/25 MeV with a_u ~ N(0, 0.1²)
  (the bin centres are 15, 25, 35 MeV), which keep Φ_u = Φ̄ but move the mean energy;
* data N = 1.1 · (nominal signal) + B̄: a 10% excess, no Poisson fluctuation.

With F_u the universe's flux, Φ_u = ∫F_u, G_u = ∫F_u σ and B_u = ∫F_u b:
real-flux-averaged measurement S_u = (N − B_u)/(T Φ_u), prediction P_u = G_u/Φ_u;
nominal-flux-averaged measurement S̃_u = (N − B_u) G_0/(T Φ_0 G_u) (the smearing's numerator
varies with the flux, its denominator stays nominal), prediction P̃ = G_0/Φ_0 in every universe.
Covariances over universes about the central value with 1/N (the farm's default);
χ² = Δ²/V with Δ = S_0 − P_0 and V = V_SS + V_PP − 2 V_SP + V_stat (joint) or without the
−2 V_SP term (correlation ignored).

The farm side runs its real kernels on 18 synthetic events: block_partial_sums →
assemble_histograms → extract, fold_model/model_predictions, and finish() for the dataset.
"""

from __future__ import annotations

import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

from farm.accumulate import AccumulationSpec, block_partial_sums
from farm.analysis.extract import ExtractionSettings, extract
from farm.analysis.histograms import UniverseHistograms, assemble_histograms
from farm.analysis.pipeline import Prepared, finish
from farm.analysis.predict import binned_flux, fold_model, model_predictions
from farm.config import examples_dir, parse_config
from farm.reweight.knobs import KnobContext
from farm.store.schema import Channel
from farm.systematics.fluxbins import FluxBins
from farm.systematics.universes import UniverseSet

E_NODES_MEV = np.array([12.5, 15.0, 17.5, 22.5, 25.0, 27.5, 32.5, 35.0, 37.5])
NODE_FLUX_BIN = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
FLUENCE_PER_NODE = 1e15  # ν/cm²
N_TARGETS = 1e28
SIGMA_CM2_PER_MEV = 1e-40
FLUX_EDGES_MEV = [10.0, 20.0, 30.0, 40.0]
BIN_CENTRES_MEV = np.array([15.0, 25.0, 35.0])
BINS = FluxBins.from_mapping({"numu": FLUX_EDGES_MEV})
N_UNIVERSES = 50
EXCESS = 1.1


def sigma_linear(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
    """σ(E) = 10⁻⁴⁰ cm² · E/MeV, the plugged-in model."""
    del flavor
    return SIGMA_CM2_PER_MEV * np.asarray(enu_mev, dtype=np.float64)


def _background_per_fluence(kind: str) -> np.ndarray:
    """b(E_k) at the nodes, ∝ 1/E or ∝ E, scaled so that B̄ is half the nominal signal."""
    shape = 1.0 / E_NODES_MEV if kind == "inverse" else E_NODES_MEV.copy()
    signal = N_TARGETS * FLUENCE_PER_NODE * sigma_linear(E_NODES_MEV, "numu").sum()
    return shape * 0.5 * signal / (FLUENCE_PER_NODE * shape.sum())


def _tilt_universes() -> UniverseSet:
    tilt = 0.1 * np.random.default_rng(2026).standard_normal(N_UNIVERSES)
    ratio = np.ones((N_UNIVERSES + 1, BINS.n_bins))
    ratio[1:, :-1] = 1.0 + tilt[:, None] * (BIN_CENTRES_MEV - 25.0) / 25.0
    return UniverseSet(
        seed=0,
        names=("flux_tilt",),
        groups=("flux",),
        kinds=("flux",),
        systematic_index=np.array([-1] + [0] * N_UNIVERSES, dtype=np.int32),
        flux_ratio=ratio,
        bootstrap=np.full(N_UNIVERSES + 1, -1, dtype=np.int64),
    )


def _tilt_and_normalisation_universes() -> UniverseSet:
    """The tilts times a normalisation (1 + n_u), n_u ~ N(0, 0.1²): now Φ_u ≠ Φ̄ as well."""
    universes = _tilt_universes()
    norm = 1.0 + 0.1 * np.random.default_rng(2027).standard_normal(N_UNIVERSES)
    ratio = universes.flux_ratio.copy()
    ratio[1:, :-1] *= norm[:, None]
    return UniverseSet(
        seed=0,
        names=universes.names,
        groups=universes.groups,
        kinds=universes.kinds,
        systematic_index=universes.systematic_index,
        flux_ratio=ratio,
        bootstrap=universes.bootstrap,
    )


UNIVERSE_SETS = {
    "tilt": _tilt_universes,
    "tilt_and_normalisation": _tilt_and_normalisation_universes,
}


def _events(background: str) -> dict[str, np.ndarray]:
    """One signal event and one background event per flux line, weighted to expected counts."""
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
                FLUENCE_PER_NODE * _background_per_fluence(background),
            ]
        ),
        "reco_mev": enu,
    }


def _spec(bins: FluxBins = BINS) -> AccumulationSpec:
    return AccumulationSpec(
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


def _rule() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"numu": (E_NODES_MEV, np.full(E_NODES_MEV.size, FLUENCE_PER_NODE))}


def _farm_histograms(background: str, universes: UniverseSet) -> UniverseHistograms:
    sums = block_partial_sums(_events(background), _spec())
    return assemble_histograms(
        sums, universes, np.zeros(0, dtype=np.int64), binned_flux(_rule(), BINS)
    )


# ---------------------------------------------------------------------------------------------
# the answer by hand
# ---------------------------------------------------------------------------------------------


def _by_hand(background: str, universes: UniverseSet) -> dict[str, np.ndarray]:
    ratio = universes.flux_ratio[:, NODE_FLUX_BIN]  # (U, node)
    phi = ratio.sum(axis=1) * FLUENCE_PER_NODE
    g = (ratio * FLUENCE_PER_NODE * SIGMA_CM2_PER_MEV * E_NODES_MEV).sum(axis=1)  # ∫ F_u σ
    b = (ratio * FLUENCE_PER_NODE * _background_per_fluence(background)).sum(axis=1)
    data = EXCESS * N_TARGETS * g[0] + b[0]
    return {
        "phi": phi,
        "g": g,
        "b": b,
        "data": np.array(data),
        "measured_real": (data - b) / (N_TARGETS * phi),
        "predicted_real": g / phi,
        "measured_nominal": (data - b) * g[0] / (N_TARGETS * phi[0] * g),
        "predicted_nominal": np.full(phi.shape, g[0] / phi[0]),
    }


def _cov(x: np.ndarray, y: np.ndarray) -> float:
    """About the central value (universe 0), normalised 1/N over the N varied universes."""
    return float(np.mean((x[1:] - x[0]) * (y[1:] - y[0])))


def _chi2_by_hand(measured: np.ndarray, predicted: np.ndarray, stat: float) -> tuple[float, float]:
    """(χ² with the measured–predicted correlation, χ² with it ignored) for one bin."""
    v_mm, v_pp, v_mp = (
        _cov(measured, measured),
        _cov(predicted, predicted),
        _cov(measured, predicted),
    )
    delta2 = (measured[0] - predicted[0]) ** 2
    return delta2 / (v_mm + v_pp - 2.0 * v_mp + stat), delta2 / (v_mm + v_pp + stat)


# ---------------------------------------------------------------------------------------------
# the case itself
# ---------------------------------------------------------------------------------------------


def test_tilt_universes_keep_the_integrated_flux_and_move_the_mean_energy() -> None:
    universes = _tilt_universes()
    hand = _by_hand("inverse", universes)
    hists = _farm_histograms("inverse", universes)
    assert_allclose(hand["phi"], 9 * FLUENCE_PER_NODE, rtol=1e-14)
    assert_allclose(hists.flux.sum(axis=1), 9 * FLUENCE_PER_NODE, rtol=1e-14)
    # ⟨E⟩_u = 25 MeV · (1 + 0.32 a_u / 3): mean energy moves by ~1% per 0.1 of tilt
    tilt = universes.flux_ratio[1:, 2] - 1.0
    assert_allclose(hand["g"][1:] / hand["g"][0], 1.0 + 0.32 * tilt / 0.4 / 3.0, rtol=1e-12)


def test_histograms_of_the_case_are_the_hand_integrals() -> None:
    universes = _tilt_universes()
    hand = _by_hand("inverse", universes)
    hists = _farm_histograms("inverse", universes)
    assert_allclose(hists.truth[:, 0], N_TARGETS * hand["g"], rtol=1e-12)
    assert_allclose(hists.signal[:, 0, 0], N_TARGETS * hand["g"], rtol=1e-12)
    assert_allclose(hists.background[:, 0], hand["b"], rtol=1e-12)
    assert_allclose(hists.response[:, 0, 0], 1.0, rtol=1e-14)  # perfect efficiency and smearing
    assert_allclose(hists.smearing_nominal[:, 0, 0], hand["g"] / hand["g"][0], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# (a), (b): extraction in both conventions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lsq", "dagostini"])
def test_real_flux_extraction_recovers_each_universes_flux_averaged_cross_section(
    method: str,
) -> None:
    # if the true flux is F_u, the data are T G_u + B_u; extracting in universe u gives G_u/Φ_u
    universes = _tilt_universes()
    hand = _by_hand("inverse", universes)
    hists = _farm_histograms("inverse", universes)
    settings = ExtractionSettings(method=method, n_stat_toys=10)
    for u in (
        0,
        1,
        7,
        int(np.argmax(universes.flux_ratio[:, 2])),
        int(np.argmin(universes.flux_ratio[:, 2])),
    ):
        data_u = hists.reco_expected[u]
        ext = extract(hists, data_u, n_targets=N_TARGETS, phi=hand["phi"], settings=settings)
        assert ext.xsec_real[u, 0] == pytest.approx(hand["g"][u] / hand["phi"][u], rel=1e-12, abs=0)
        # nominal convention: whatever the true flux, universe u returns ∫F̄σ/Φ̄ (the definition)
        assert ext.xsec_nominal[u, 0] == pytest.approx(
            hand["g"][0] / hand["phi"][0], rel=1e-12, abs=0
        )


@pytest.mark.parametrize("universe_set", sorted(UNIVERSE_SETS))
@pytest.mark.parametrize("method", ["lsq", "dagostini"])
def test_both_conventions_with_the_data_fixed_are_the_hand_formulas(
    method: str, universe_set: str
) -> None:
    # with normalisation throws Φ_u moves: S_u divides by each universe's Φ_u, S̃_u by Φ̄ only
    universes = UNIVERSE_SETS[universe_set]()
    hand = _by_hand("inverse", universes)
    hists = _farm_histograms("inverse", universes)
    ext = extract(
        hists,
        np.atleast_1d(hand["data"]),
        n_targets=N_TARGETS,
        phi=hand["phi"],
        settings=ExtractionSettings(method=method, n_stat_toys=10),
    )
    assert_allclose(ext.xsec_real[:, 0], hand["measured_real"], rtol=1e-12)
    assert_allclose(ext.xsec_nominal[:, 0], hand["measured_nominal"], rtol=1e-12)
    assert ext.xsec_real[0, 0] == pytest.approx(
        EXCESS * hand["g"][0] / hand["phi"][0], rel=1e-12, abs=0
    )


N_STAT_TOYS = 20_000


@pytest.mark.parametrize("method", ["lsq", "dagostini"])
def test_statistical_covariance_is_the_poisson_variance_of_the_data_over_t_phi_squared(
    method: str,
) -> None:
    # The data N are Poisson, Var N = N; with perfect efficiency and smearing the unfolded truth is
    # N − B̄, so both conventions have Var S = N / (T Φ̄)² at the nominal flux (R₀ = M₀ = 1).
    universes = _tilt_and_normalisation_universes()
    hand = _by_hand("inverse", universes)
    ext = extract(
        _farm_histograms("inverse", universes),
        np.atleast_1d(hand["data"]),
        n_targets=N_TARGETS,
        phi=hand["phi"],
        settings=ExtractionSettings(method=method, n_stat_toys=N_STAT_TOYS),
    )
    expected = float(hand["data"]) / (N_TARGETS * hand["phi"][0]) ** 2
    # the toys' sample variance has a relative standard error √(2/(N − 1)) = 1 %: 5 % is 5σ
    for cov in (ext.cov_stat_real, ext.cov_stat_nominal):
        assert cov.shape == (1, 1)
        assert cov[0, 0] / expected == pytest.approx(1.0, rel=0.05, abs=0)


def test_statistical_covariance_of_a_nonlinear_extraction_is_the_poisson_variance_by_toys() -> None:
    # D'Agostini with two truth bins is not linear in the data, so its statistical covariance
    # comes from Poisson toys. With a diagonal response (efficiency ε_j, no migration) it still
    # returns (d_j − b_j)/ε_j exactly, so Var S_j = d_j / (ε_j T Φ)² and the bins are independent.
    efficiency = np.array([0.5, 0.8])
    truth = np.array([[4.0e4, 2.5e4]])  # (U = 1, J)
    hists = UniverseHistograms(
        signal=(truth[:, None, :] * np.diag(efficiency)[None]),
        background=np.array([[1.0e3, 3.0e3]]),
        truth=truth,
        truth_nominal_flux=truth,
        flux=np.array([[9 * FLUENCE_PER_NODE, 0.0]]),
        clamped=np.zeros(1, dtype=np.int64),
    )
    data = hists.reco_expected[0]
    phi = np.array([9 * FLUENCE_PER_NODE])
    ext = extract(
        hists,
        data,
        n_targets=N_TARGETS,
        phi=phi,
        settings=ExtractionSettings(method="dagostini", n_stat_toys=N_STAT_TOYS),
    )
    assert_allclose(ext.xsec_real[0], truth[0] / (N_TARGETS * phi[0]), rtol=1e-12, atol=0)
    variance = data / (efficiency * N_TARGETS * phi[0]) ** 2
    for cov in (ext.cov_stat_real, ext.cov_stat_nominal):
        # 20 000 toys: relative standard error of a variance 1 %, of a correlation 0.007
        assert_allclose(np.diag(cov) / variance, 1.0, rtol=0.05, atol=0)
        assert abs(cov[0, 1]) / np.sqrt(variance[0] * variance[1]) < 0.05


# ---------------------------------------------------------------------------------------------
# (c): predictions of a plugged-in model and of the generator
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("universe_set", sorted(UNIVERSE_SETS))
def test_plugged_in_model_prediction_is_the_flux_average_in_each_universe(
    universe_set: str,
) -> None:
    universes = UNIVERSE_SETS[universe_set]()
    hand = _by_hand("inverse", universes)
    g = fold_model(sigma_linear, _rule(), BINS, ["numu"], "total", None, name="linear")
    identity = np.broadcast_to(np.eye(1), (N_UNIVERSES + 1, 1, 1))
    real, nominal = model_predictions(g, universes.flux_ratio, hand["phi"], identity, identity)
    assert_allclose(real[:, 0], hand["predicted_real"], rtol=1e-12)
    assert_allclose(nominal[:, 0], hand["predicted_nominal"], rtol=1e-12)
    # σ(⟨E⟩) with σ ∝ E
    assert real[0, 0] == pytest.approx(SIGMA_CM2_PER_MEV * 25.0, rel=1e-14, abs=0)


# ---------------------------------------------------------------------------------------------
# the two cases of docs/guide-analysts.md §3, through finish() and its dataset
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def linear_model_module(monkeypatch: pytest.MonkeyPatch) -> str:
    """σ ∝ E importable as ``farm_test_linear_model:sigma_linear`` for [[models]]."""
    module = types.ModuleType("farm_test_linear_model")
    module.sigma_linear = sigma_linear  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return f"{module.__name__}:sigma_linear"


def _case_dataset(
    background: str,
    model_callable: str,
    *,
    universes: UniverseSet | None = None,
    flux_edges: dict[str, list[float]] | None = None,
    rule: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    signal_flavors: list[str] | None = None,
) -> xr.Dataset:
    flux_edges = flux_edges or {"numu": FLUX_EDGES_MEV}
    bins = FluxBins.from_mapping(flux_edges)
    data = tomllib.loads((examples_dir() / "sns-csi.toml").read_text())
    data["binning"] = {
        "observable": "reco_mev",
        "reco_edges": [0.0, 100.0],
        "truth": "total",
        "flux_edges_mev": flux_edges,
    }
    if signal_flavors is not None:
        data["binning"]["signal_flavors"] = signal_flavors
    data["systematics"] = []
    data["models"] = [{"name": "linear", "callable": model_callable}]
    data["analysis"] = {
        "method": "dagostini",
        "iterations": 4,
        "covariance_center": "cv",
        "covariance_normalization": "n",
    }
    data["data"] = {
        "kind": "fake",
        "universe": 0,
        "signal_scale": EXCESS,
        "poisson": False,
        "seed": 7,
    }
    cfg = parse_config(data, source="two-cases")
    universes = universes or _tilt_universes()
    spec = _spec(bins)
    prep = Prepared(
        cfg=cfg,
        store_path=Path("synthetic"),
        store_attrs={},
        store_checksums=(),
        n_events=18,
        spec=spec,
        universes=universes,
        flux_bins=bins,
        rule=rule or _rule(),
        n_targets=N_TARGETS,
    )
    return finish(prep, block_partial_sums(_events(background), spec))


@pytest.mark.parametrize(
    ("background", "correlation_raises_chi2"),
    [("inverse", True), ("linear", False)],
    ids=["B_proportional_to_1/E", "B_proportional_to_E"],
)
def test_two_cases_chi2_with_and_without_the_measured_predicted_correlation(
    background: str, correlation_raises_chi2: bool, linear_model_module: str
) -> None:
    # σ ∝ E and a 10% excess. B ∝ 1/E: a harder flux lowers B (raises the measurement) and raises
    # the prediction, so both move together (V_SP > 0): ignoring that gives a smaller χ².
    # B ∝ E: a harder flux lowers the measurement and raises the prediction (V_SP < 0): ignoring
    # it gives a larger χ² (docs/guide-analysts.md §3).
    ds = _case_dataset(background, linear_model_module)
    hand = _by_hand(background, _tilt_universes())
    assert ds["data_counts"].values[0] == pytest.approx(float(hand["data"]), rel=1e-12, abs=0)
    assert_allclose(ds["xsec_real"].values[:, 0], hand["measured_real"], rtol=1e-12)
    assert_allclose(ds["xsec_nominal"].values[:, 0], hand["measured_nominal"], rtol=1e-12)
    assert_allclose(ds["pred_real"].values[:, 0], hand["predicted_real"], rtol=1e-12)
    assert_allclose(ds["pred_nominal"].values[:, 0], hand["predicted_nominal"], rtol=1e-12)
    assert_allclose(
        ds["model_pred_real"].sel(model="linear").values[:, 0], hand["predicted_real"], rtol=1e-12
    )

    m, p = hand["measured_real"], hand["predicted_real"]
    assert ds["cov_real"].values[0, 0] == pytest.approx(_cov(m, m), rel=1e-9, abs=0)
    expected_joint = [[_cov(m, m), _cov(m, p)], [_cov(p, m), _cov(p, p)]]
    assert_allclose(ds["joint_cov_real"].sel(model="generator").values, expected_joint, rtol=1e-9)
    assert (_cov(m, p) > 0) == correlation_raises_chi2

    # statistics: Poisson toys of the data, so ≈ N/(TΦ)² (200 toys: ±10% per 1σ)
    stat_real = float(ds["cov_stat_real"].values[0, 0])
    assert stat_real == pytest.approx(
        float(hand["data"]) / (N_TARGETS * hand["phi"][0]) ** 2, rel=0.5, abs=0
    )
    joint, uncorrelated = _chi2_by_hand(m, p, stat_real)
    for model in ("generator", "linear"):
        assert ds["chi2_real_joint"].sel(model=model).item() == pytest.approx(
            joint, rel=1e-9, abs=0
        )
        assert ds["chi2_real_uncorrelated"].sel(model=model).item() == pytest.approx(
            uncorrelated, rel=1e-9, abs=0
        )
    if correlation_raises_chi2:
        assert uncorrelated < joint / 1.5
    else:
        assert uncorrelated > joint * 1.5

    # nominal convention: the prediction carries no flux uncertainty, so both chi-squares agree
    stat_nominal = float(ds["cov_stat_nominal"].values[0, 0])
    joint_n, uncorrelated_n = _chi2_by_hand(
        hand["measured_nominal"], hand["predicted_nominal"], stat_nominal
    )
    assert joint_n == pytest.approx(uncorrelated_n, rel=1e-12, abs=0)
    assert ds["chi2_nominal_joint"].sel(model="generator").item() == pytest.approx(
        joint_n, rel=1e-9, abs=0
    )
    assert ds["chi2_nominal_uncorrelated"].sel(model="linear").item() == pytest.approx(
        joint_n, rel=1e-9, abs=0
    )


def test_phi_integrates_only_the_signal_flavours_and_other_flavours_throws_do_not_move_it(
    linear_model_module: str,
) -> None:
    # [binning] signal_flavors = ["numu"]: the beam's ν_e flux (with throws of its own, and no ν_e
    # events here) must stay out of Φ, so every number is the ν_μ-only case's. The ν_μ throws
    # move Φ too (tilt and normalisation): finish() must divide the real-flux quantities by Φ_u
    # and the nominal-flux ones by Φ̄.
    flux_edges = {"numu": FLUX_EDGES_MEV, "nue": [10.0, 40.0]}
    bins = FluxBins.from_mapping(flux_edges)
    assert bins.flavors == ("nue", "numu")  # flux bins: nue 0, numu 1–3, untouched 4
    tilt = _tilt_and_normalisation_universes()
    ratio = np.ones((N_UNIVERSES + 1, bins.n_bins))
    ratio[:, 1:4] = tilt.flux_ratio[:, :3]
    ratio[1:, 0] = 1.0 + 0.2 * np.random.default_rng(2028).standard_normal(N_UNIVERSES)
    universes = UniverseSet(
        seed=0,
        names=tilt.names,
        groups=tilt.groups,
        kinds=tilt.kinds,
        systematic_index=tilt.systematic_index,
        flux_ratio=ratio,
        bootstrap=tilt.bootstrap,
    )
    rule = _rule() | {"nue": (E_NODES_MEV, np.full(E_NODES_MEV.size, 0.5 * FLUENCE_PER_NODE))}
    ds = _case_dataset(
        "inverse",
        linear_model_module,
        universes=universes,
        flux_edges=flux_edges,
        rule=rule,
        signal_flavors=["numu"],
    )
    hand = _by_hand("inverse", tilt)
    assert_allclose(ds["integrated_flux"].values, hand["phi"], rtol=1e-14, atol=0)
    for name, key in (
        ("xsec_real", "measured_real"),
        ("xsec_nominal", "measured_nominal"),
        ("pred_real", "predicted_real"),
        ("pred_nominal", "predicted_nominal"),
    ):
        assert_allclose(ds[name].values[:, 0], hand[key], rtol=1e-12, atol=0, err_msg=name)
    assert_allclose(
        ds["model_pred_real"].sel(model="linear").values[:, 0],
        hand["predicted_real"],
        rtol=1e-12,
        atol=0,
    )
