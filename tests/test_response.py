"""The detector response shared by the generator and the knobs (farm.physics.response).

Per-event selection thresholds reproduce the efficiency curve; the photoelectron likelihood ratio
is unbiased for every function of the count (exact sums); a knob that moves a keVee readout gives,
event by event, the readout of a sample regenerated with the parameter shifted.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from farm.config import load_config
from farm.physics import detector
from farm.physics.response import CevnsResponse, EfficiencyCurve, Quenching, poisson_ratio
from farm.reweight.readout_shift import ScaledReadout, check_response_knob, shifted_readout
from farm.samples.cevns_events import response_of
from farm.samples.generate import generate_rows

CURVES = [
    EfficiencyCurve(kind="erf", threshold=5.0, width=1.5, plateau=0.9),
    EfficiencyCurve(kind="csi"),
    EfficiencyCurve(kind="erf", threshold=0.2, width=0.03, plateau=0.95, scale=1.04),
]


@pytest.mark.parametrize("curve", CURVES, ids=["erf", "csi", "erf-scaled"])
def test_the_own_threshold_is_the_inverse_of_the_efficiency_curve(curve: EfficiencyCurve) -> None:
    u = np.linspace(0.0, 0.999, 2000)
    theta = curve.own_threshold(u)
    below = u < curve.maximum
    assert np.all(np.isinf(theta[~below]) & (theta[~below] > 0))
    np.testing.assert_allclose(curve(theta[below & (u > 0)]), u[below & (u > 0)], rtol=1e-9, atol=0)


@pytest.mark.parametrize("curve", CURVES, ids=["erf", "csi", "erf-scaled"])
def test_selecting_by_the_own_threshold_has_the_curve_as_probability(
    curve: EfficiencyCurve,
) -> None:
    """P(θ ≤ y) = ε(y): at each readout value the selected fraction is ε within 4 σ."""
    rng = np.random.default_rng(11)
    theta = curve.own_threshold(rng.random(400_000))
    scale = 10.0 if curve.kind == "csi" else curve.threshold
    for y in scale * np.array([0.5, 0.9, 1.0, 1.1, 2.0]):
        fraction = float(np.mean(theta <= y))
        eps = float(curve(np.array([y]))[0])
        assert abs(fraction - eps) <= 4.0 * np.sqrt(max(eps * (1 - eps), 1e-6) / theta.size)


def test_the_csi_curve_is_coherent_2021_acceptance() -> None:
    """COHERENT CsI[Na] acceptance (arXiv:2110.07730 data release): 0 below 7.07 PE."""
    curve = EfficiencyCurve(kind="csi")
    x = np.array([5.0, 10.8646, 30.0])
    np.testing.assert_allclose(curve(x), detector.csi_efficiency(x), rtol=1e-15, atol=0)
    assert curve(np.array([7.0]))[0] == 0.0


@pytest.mark.parametrize("factor", [0.85, 0.95, 1.05, 1.2])
def test_the_poisson_ratio_moves_every_expectation_of_the_count_exactly(factor: float) -> None:
    """Σ_k P(k; λ) r(k) g(k) = Σ_k P(k; fλ) g(k) for any g: efficiency, ROI and bins alike."""
    lam = 23.7
    k = np.arange(0, 200)
    p = stats.poisson.pmf(k, lam)
    r = poisson_ratio(k, lam, factor)
    for g in (np.ones_like(k, dtype=float), (k >= 7) & (k < 60), detector.csi_efficiency(k)):
        reweighted = float(np.sum(p * r * g))
        shifted = float(np.sum(stats.poisson.pmf(k, factor * lam) * g))
        np.testing.assert_allclose(reweighted, shifted, rtol=1e-12, atol=0)


def test_a_keVee_quenching_shift_moves_each_event_as_regeneration_does() -> None:
    """sns-lar regenerated with quenching_scale 1.05 (same seed): the same events, the same
    resolution draws z and thresholds θ, so every beam event's readout equals the knob's at
    δ = 0.05 (to rounding: (1.05 Q) z vs (Q)(1.05) z) and its selection agrees."""
    cfg = load_config("sns-lar")
    nominal = generate_rows(cfg, 50_000, 66_000)  # the end of a block: steady-state events too
    shifted_cfg = cfg.model_copy(
        update={"detector": cfg.detector.model_copy(update={"quenching_scale": 1.05})}
    )
    regenerated = generate_rows(shifted_cfg, 50_000, 66_000)
    np.testing.assert_array_equal(nominal["resolution_z"], regenerated["resolution_z"])
    np.testing.assert_array_equal(
        nominal["selection_threshold"], regenerated["selection_threshold"]
    )
    moved = shifted_readout({"quenching": np.array([0.05])}, nominal, response_of(cfg.detector))
    beam = nominal["channel"] != 12  # the steady-state background is drawn, not moved
    assert moved.value is not None and moved.selected is not None
    np.testing.assert_allclose(
        moved.value[0][beam], regenerated["reco_kevee"][beam], rtol=1e-12, atol=1e-12
    )
    agree = moved.selected[0] == regenerated["selected"]
    assert agree.mean() > 0.9999
    # the steady-state background is measured off-beam: no detector knob moves it
    assert (~beam).sum() > 100
    np.testing.assert_array_equal(moved.value[0][~beam], nominal["reco_kevee"][~beam])
    assert moved.selected[0][~beam].all()
    assert np.abs(moved.value[0][beam] - nominal["reco_kevee"][beam]).max() > 1.0  # it moves


def test_the_knob_at_zero_reproduces_the_stored_readout_and_selection_bit_for_bit() -> None:
    cfg = load_config("reactor-ge")
    cols = generate_rows(cfg, 0, 20_000)
    moved = shifted_readout(
        {"quenching": np.zeros(1), "energy_scale": np.zeros(1), "threshold": np.zeros(1)},
        cols,
        response_of(cfg.detector),
    )
    assert moved.value is not None and moved.selected is not None
    np.testing.assert_array_equal(moved.value[0], cols["reco_kevee"])
    np.testing.assert_array_equal(moved.selected[0], cols["selected"])


def test_a_photoelectron_sample_keeps_its_counts_and_reweights_them() -> None:
    cfg = load_config("sns-csi")
    cols = generate_rows(cfg, 0, 5_000)
    moved = shifted_readout({"light_yield": np.array([0.0, 0.03])}, cols, response_of(cfg.detector))
    assert moved.value is None and moved.weight is not None
    np.testing.assert_array_equal(moved.weight[0], 1.0)
    lam = response_of(cfg.detector).mean_pe(cols["recoil_mev"], cols["target_a"])
    beam = cols["channel"] != 12
    expected = 1.03 ** cols["reco_pe"][beam].astype(np.float64) * np.exp(-0.03 * lam[beam])
    np.testing.assert_allclose(moved.weight[1][beam], expected, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(moved.weight[1][~beam], 1.0)


@pytest.mark.parametrize(
    ("parameter", "readout", "observable", "message"),
    [
        ("energy_scale", "pe", "reco_pe", "no energy scale"),
        ("light_yield", "kevee", "reco_kevee", "no light yield"),
        ("quenching", "kevee", "recoil_mev", "bin the readout"),
    ],
)
def test_a_knob_the_readout_cannot_carry_is_refused_with_the_alternative(
    parameter: str, readout: str, observable: str, message: str
) -> None:
    response = CevnsResponse(readout=readout, quenching=Quenching(model="lar"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        check_response_knob(parameter, response, observable)


def test_a_rescaled_readout_takes_only_the_energy_scale() -> None:
    check_response_knob("energy_scale", ScaledReadout(column="etag_mev"), "etag_mev")
    with pytest.raises(ValueError, match="use parameter = 'energy_scale'"):
        check_response_knob("quenching", ScaledReadout(column="etag_mev"), "etag_mev")
