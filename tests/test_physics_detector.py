"""Specifications of farm.physics.detector."""

from __future__ import annotations

import numpy as np
import pytest

from farm.physics.constants import MASS_MUON_MEV, MASS_NEUTRON_MEV, MASS_PROTON_MEV
from farm.physics.detector import (
    accidental_tag_fraction,
    csi_efficiency,
    csi_quenched_energy_mev,
    draw_tags,
    gaussian_resolution,
    lar_quenching_factor,
    lindhard_quenching_factor,
    photoelectrons,
    qe_neutrino_energy_mev,
    quenched_energy_mev,
    threshold_efficiency,
)

# --- quenching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enr_mev", "eee_mev"),
    # COHERENT 2021: E_ee = 0.0554628x + 4.30681x² − 111.707x³ + 840.384x⁴, summed exactly.
    [(0.005, 0.000371546115), (0.020, 0.00207278544), (0.040, 0.00411154304)],
)
def test_csi_quenching_follows_coherent_polynomial(enr_mev: float, eee_mev: float) -> None:
    assert csi_quenched_energy_mev(enr_mev) == pytest.approx(eee_mev, rel=1e-8, abs=0)


def test_csi_quenching_factor_is_held_above_the_fitted_range() -> None:
    qf_at_60kev = csi_quenched_energy_mev(0.06) / 0.06
    assert qf_at_60kev == pytest.approx(0.09325, abs=1e-5)
    assert csi_quenched_energy_mev(0.1) / 0.1 == pytest.approx(qf_at_60kev, rel=1e-14, abs=0)


def test_csi_visible_energy_rises_monotonically() -> None:
    eee = csi_quenched_energy_mev(np.linspace(0.0, 0.2, 2001))
    assert eee[0] == 0.0
    assert np.all(np.diff(eee) > 0)


def test_lar_quenching_factor_at_20_kevnr() -> None:
    # COHERENT LAr: 0.246 + 0.00078 · 20 = 0.2616
    assert lar_quenching_factor(20.0) == pytest.approx(0.2616, abs=1e-12)


def test_lindhard_germanium_at_1_kevnr() -> None:
    # k = 0.133 · 32^(2/3) / √72.63 = 0.1573, ε = 11.5 · 32^(−7/3) = 3.537e-3 →
    # QF = 0.1713; Ge measurements near 1 keVnr lie around 0.15–0.22 (published ≈ 0.2).
    qf = lindhard_quenching_factor(0.001, 32, 72.63)
    assert qf == pytest.approx(0.1713, abs=2e-4)
    assert 0.15 < qf < 0.22


def test_lindhard_quenching_is_zero_at_zero_recoil_and_rises() -> None:
    qf = lindhard_quenching_factor(np.array([0.0, 0.001, 0.01, 0.1]), 32, 72.63)
    assert qf[0] == 0.0
    assert np.all(np.diff(qf) > 0)


def test_quenched_energy_dispatches_to_models() -> None:
    enr = np.array([0.005, 0.02])
    np.testing.assert_array_equal(quenched_energy_mev(enr, "csi"), csi_quenched_energy_mev(enr))
    np.testing.assert_allclose(quenched_energy_mev(enr, "lar"), enr * (0.246 + 0.78 * enr))
    np.testing.assert_allclose(
        quenched_energy_mev(enr, "lindhard", z=11, a=23),
        enr * lindhard_quenching_factor(enr, 11, 23),
    )


def test_unknown_quenching_model_error_lists_allowed() -> None:
    with pytest.raises(ValueError, match="'csi', 'lar', 'lindhard'"):
        quenched_energy_mev(0.01, "birks")


def test_negative_recoil_energy_is_rejected() -> None:
    with pytest.raises(ValueError, match="enr_mev must be >= 0"):
        csi_quenched_energy_mev(-0.001)


# --- light, resolution, efficiency -------------------------------------------------------------


def test_photoelectrons_are_poisson_with_light_yield_mean() -> None:
    rng = np.random.default_rng(20240601)
    pe = photoelectrons(rng, np.full(200_000, 2.0))
    mean = 2.0 * 13.35
    # Standard error of the mean √(26.7/2e5) = 0.0116; of the variance ≈ 0.086.
    assert pe.mean() == pytest.approx(mean, abs=0.06)
    assert pe.var() == pytest.approx(mean, abs=0.45)
    assert pe.dtype == np.int64


def test_gaussian_resolution_has_stochastic_constant_and_noise_terms() -> None:
    rng = np.random.default_rng(7)
    smeared = gaussian_resolution(
        rng, np.full(200_000, 100.0), stochastic=0.5, constant=0.02, noise=1.0
    )
    # σ = √(0.5² · 100 + (0.02 · 100)² + 1²) = √30
    assert smeared.mean() == pytest.approx(100.0, abs=0.06)
    assert smeared.std() == pytest.approx(np.sqrt(30.0), rel=0.01, abs=0)


def test_gaussian_resolution_never_returns_negative_energy() -> None:
    rng = np.random.default_rng(8)
    smeared = gaussian_resolution(rng, np.full(10_000, 0.1), stochastic=1.0, constant=0.0)
    assert smeared.min() == 0.0


def test_threshold_efficiency_is_half_at_threshold_and_one_sigma_above() -> None:
    eff = threshold_efficiency(np.array([5.0, 6.0, 100.0]), threshold=5.0, width=1.0)
    np.testing.assert_allclose(eff, [0.5, 0.8413447461, 1.0], atol=1e-10)


def test_threshold_efficiency_with_zero_width_is_a_step() -> None:
    eff = threshold_efficiency(np.array([4.99, 5.0, 5.01]), threshold=5.0, width=0.0)
    np.testing.assert_array_equal(eff, [0.0, 1.0, 1.0])


def test_csi_efficiency_follows_coherent_2021_acceptance() -> None:
    # a/(1 + exp(−k(x − x0))) + b with (1.32045, 0.285979, 10.8646, −0.333322), floored at 0.
    eff = csi_efficiency(np.array([0.0, 5.0, 10.8646, 1e4]))
    np.testing.assert_allclose(eff, [0.0, 0.0, 1.32045 / 2 - 0.333322, 1.32045 - 0.333322])


# --- nuSCOPE tagging ---------------------------------------------------------------------------


def test_tagging_efficiency_and_sub_percent_resolution() -> None:
    rng = np.random.default_rng(11)
    enu = rng.uniform(500.0, 4000.0, 100_000)
    tagged, etag = draw_tags(rng, enu, accidental_fraction=0.0)
    assert tagged.mean() == pytest.approx(0.8, abs=0.005)
    assert np.all(np.isnan(etag[~tagged]))
    relative = etag[tagged] / enu[tagged] - 1.0
    assert np.std(relative) < 0.01
    assert np.std(relative) == pytest.approx(0.005, rel=0.02, abs=0)


def test_accidental_tags_take_a_wrong_parent_energy_from_the_pool() -> None:
    rng = np.random.default_rng(12)
    enu = np.full(100_000, 1000.0)
    tagged, etag = draw_tags(
        rng, enu, accidental_fraction=0.1, rel_resolution=0.0, accidental_pool_mev=[3000.0]
    )
    wrong = etag[tagged] == 3000.0
    assert wrong.mean() == pytest.approx(0.1, abs=0.005)
    np.testing.assert_array_equal(etag[tagged][~wrong], 1000.0)


def test_accidental_tags_default_to_parents_of_other_events_in_the_batch() -> None:
    rng = np.random.default_rng(13)
    enu = np.repeat([800.0, 2400.0], 50_000)
    tagged, etag = draw_tags(rng, enu, efficiency=1.0, accidental_fraction=1.0, rel_resolution=0.0)
    assert tagged.all()
    assert set(np.unique(etag)) == {800.0, 2400.0}
    assert np.mean(etag != enu) == pytest.approx(0.5, abs=0.01)


def test_tags_are_reproducible_from_the_seed() -> None:
    enu = np.linspace(100.0, 5000.0, 1000)
    first = draw_tags(np.random.default_rng(3), enu)
    second = draw_tags(np.random.default_rng(3), enu)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_accidental_fraction_scales_linearly_with_time_resolution() -> None:
    assert accidental_tag_fraction(600.0, fraction_at_reference=0.02) == pytest.approx(0.04, abs=0)
    assert accidental_tag_fraction(1e9) == 1.0


# --- QE energy reconstruction ------------------------------------------------------------------


def _two_body_lepton(
    enu_mev: np.ndarray, cos_cm: np.ndarray, m_initial: float, m_final: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ν + N(at rest, mass m_initial) → μ + N' kinematics; lepton (p, cos θ) in the lab."""
    s = m_initial**2 + 2.0 * enu_mev * m_initial
    sqrt_s = np.sqrt(s)
    m_mu = MASS_MUON_MEV
    e_star = (s + m_mu**2 - m_final**2) / (2.0 * sqrt_s)
    p_star = np.sqrt(e_star**2 - m_mu**2)
    gamma = (enu_mev + m_initial) / sqrt_s
    gamma_beta = enu_mev / sqrt_s
    p_z = gamma * p_star * cos_cm + gamma_beta * e_star
    p_t = p_star * np.sqrt(1.0 - cos_cm**2)
    p = np.hypot(p_z, p_t)
    return p, p_z / p


def test_qe_formula_recovers_free_neutron_kinematics_exactly() -> None:
    rng = np.random.default_rng(5)
    enu = rng.uniform(200.0, 10_000.0, 10_000)
    p, cos = _two_body_lepton(
        enu, rng.uniform(-1.0, 1.0, enu.size), MASS_NEUTRON_MEV, MASS_PROTON_MEV
    )
    np.testing.assert_allclose(qe_neutrino_energy_mev(p, cos), enu, rtol=1e-9)


def test_qe_formula_with_binding_recovers_bound_nucleon_kinematics() -> None:
    # The formula treats the struck nucleon as at rest with energy M_n − E_b.
    rng = np.random.default_rng(6)
    enu = rng.uniform(300.0, 3000.0, 1000)
    p, cos = _two_body_lepton(
        enu, rng.uniform(-1.0, 1.0, enu.size), MASS_NEUTRON_MEV - 30.0, MASS_PROTON_MEV
    )
    np.testing.assert_allclose(qe_neutrino_energy_mev(p, cos, binding_mev=30.0), enu, rtol=1e-9)


def test_qe_formula_for_antineutrinos_on_protons() -> None:
    rng = np.random.default_rng(9)
    enu = rng.uniform(200.0, 3000.0, 1000)
    p, cos = _two_body_lepton(
        enu, rng.uniform(-1.0, 1.0, enu.size), MASS_PROTON_MEV, MASS_NEUTRON_MEV
    )
    np.testing.assert_allclose(qe_neutrino_energy_mev(p, cos, target="proton"), enu, rtol=1e-9)


def test_qe_formula_is_nan_without_a_quasi_elastic_solution() -> None:
    # A 5 GeV backward muon: M_n − E_μ + p cos θ < 0.
    assert np.isnan(qe_neutrino_energy_mev(5000.0, -1.0))
