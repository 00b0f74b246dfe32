"""Specifications of the IBD, CCQE, non-QE CC and ν_e–²⁰⁸Pb cross sections, and the IBD yield."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from farm.physics import ccqe, flux, ibd, lead, reactor
from farm.physics.constants import MASS_ELECTRON_MEV, MASS_MUON_MEV, MASS_PION_MEV

DAYA_BAY = {"U235": 0.564, "U238": 0.076, "Pu239": 0.304, "Pu241": 0.056}


# --- inverse beta decay ----------------------------------------------------------------------


def test_ibd_full_and_approximate_cross_sections_agree_within_1_percent_from_2_to_100_mev():
    # Strumia & Vissani, PLB 564 (2003) 42: the fit (eq. 25) reproduces the full result.
    enu = np.geomspace(2.0, 100.0, 400)
    ratio = ibd.total_xsec_full(enu) / ibd.total_xsec_approx(enu)
    assert np.max(np.abs(ratio - 1.0)) < 0.01


def test_ibd_total_xsec_is_the_full_calculation_tabulated():
    enu = ibd.IBD_THRESHOLD_MEV + np.geomspace(1e-3, 1500.0, 20_000)
    np.testing.assert_allclose(ibd.total_xsec(enu), ibd.total_xsec_full(enu), rtol=1e-5)


def test_ibd_threshold_is_1_806_mev():
    # ((m_n + m_e)² − m_p²)/(2 m_p)
    assert ibd.IBD_THRESHOLD_MEV == pytest.approx(1.8061, abs=1e-4)


def test_ibd_cross_section_is_zero_below_threshold_and_opens_like_the_positron_momentum():
    below = np.array([0.0, 1.0, 1.8, ibd.IBD_THRESHOLD_MEV - 1e-6])
    assert np.all(ibd.total_xsec(below) == 0.0)
    assert np.all(ibd.total_xsec_approx(below) == 0.0)
    near, further = ibd.total_xsec(ibd.IBD_THRESHOLD_MEV + np.array([1e-6, 1e-4]))
    assert 0.0 < near < 1e-46
    # σ ∝ p_e ∝ √(E_ν − E_th) just above threshold: 100× the distance, 10× the cross section
    assert further / near == pytest.approx(10.0, rel=0.02, abs=0)


def test_ibd_near_threshold_matches_the_zeroth_order_cross_section():
    # Vogel & Beacom, PRD 60 (1999) 053003: σ⁽⁰⁾ = 0.0952e-42 cm² · E_e p_e (MeV²),
    # with O(1/M) corrections below 1 % at 2–2.5 MeV.
    enu = np.linspace(1.9, 2.5, 7)
    ee = enu - 1.29333
    pe = np.sqrt(ee**2 - MASS_ELECTRON_MEV**2)
    ratio = ibd.total_xsec(enu) / (0.0952e-42 * ee * pe)
    assert np.all(np.abs(ratio - 1.0) < 0.01)


@pytest.mark.parametrize("enu", [3.0, 10.0, 50.0])
def test_ibd_angular_distribution_integrates_to_the_total(enu):
    value, _ = quad(lambda c: float(ibd.dxsec_dcos(enu, c)), -1.0, 1.0, epsabs=0.0, epsrel=1e-10)
    # against the direct ∫ dσ/dE_e (the tabulated total_xsec is only good to ~1e-6 relative)
    assert value == pytest.approx(float(ibd.total_xsec_full(enu)), rel=1e-10, abs=0)
    assert value == pytest.approx(float(ibd.total_xsec(enu)), rel=1e-6, abs=0)


def test_ibd_positron_energy_at_zeroth_order_is_enu_minus_1_293_mev():
    assert float(ibd.positron_energy_mev(10.0)) == pytest.approx(10.0 - 1.29333, abs=1e-5)
    assert float(ibd.positron_energy_mev(1.0)) == 0.0


def test_ibd_positron_energy_with_recoil_spans_the_kinematic_range():
    forward, backward = ibd.positron_energy_mev(10.0, [1.0, -1.0])
    e_min, e_max = ibd.positron_energy_range_mev(10.0)
    assert forward == pytest.approx(float(e_max), rel=1e-12, abs=0)
    assert backward == pytest.approx(float(e_min), rel=1e-12, abs=0)
    # recoil costs ≈ E_ν²(1 − cos θ)/m_p: 0.18 MeV backwards at 10 MeV
    assert forward - backward == pytest.approx(2 * 10.0**2 / 938.3 * (8.7 / 10.0), rel=0.05, abs=0)


def test_ibd_prompt_visible_energy_is_enu_minus_0_78_mev():
    assert float(ibd.prompt_visible_energy_mev(5.0)) == pytest.approx(5.0 - 0.782, abs=1e-3)
    assert float(ibd.prompt_visible_energy_mev(1.5)) == 0.0


# --- reactor IBD yield -----------------------------------------------------------------------


def test_ibd_yield_per_fission_is_at_the_daya_bay_scale():
    # Daya Bay (PRL 116 (2016) 061801): measured (5.91 ± 0.09)e-43 cm²/fission, 0.952 of the
    # Huber–Mueller prediction at fractions 0.564/0.076/0.304/0.056, i.e. ≈ 6.2e-43.
    predicted = reactor.ibd_yield_per_fission(DAYA_BAY)
    assert predicted == pytest.approx(6.2e-43, rel=0.03, abs=0)
    assert 5.91e-43 / predicted == pytest.approx(0.952, abs=0.03)


def test_ibd_yield_per_fission_is_the_integral_from_the_threshold() -> None:
    # σ_f = ∫ S(E) σ(E) dE from the 1.806 MeV threshold (not from 2 MeV, where the Huber–Mueller
    # fits start: 1.806–2 MeV holds 0.8 % of the yield) to 12 MeV, with the full SV σ; 64
    # Gauss–Legendre nodes on each piece between the spectrum's joins at 2 and 8 MeV.
    nodes, weights = np.polynomial.legendre.leggauss(64)
    expected = 0.0
    for lo, hi in ((ibd.IBD_THRESHOLD_MEV, 2.0), (2.0, 8.0), (8.0, 12.0)):
        e = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
        integrand = flux.reactor_spectrum(e, DAYA_BAY) * ibd.total_xsec_full(e)
        expected += 0.5 * (hi - lo) * float(weights @ integrand)
    assert reactor.ibd_yield_per_fission(DAYA_BAY) / expected == pytest.approx(1.0, rel=1e-5, abs=0)


@pytest.mark.parametrize(("isotope", "expected"), [("U235", 6.69e-43), ("Pu239", 4.36e-43)])
def test_ibd_yield_per_isotope_matches_the_huber_mueller_prediction(isotope, expected):
    # Huber–Mueller predictions quoted by Daya Bay, PRL 118 (2017) 251801.
    assert reactor.ibd_yield_per_fission({isotope: 1.0}) == pytest.approx(expected, rel=0.02, abs=0)


# --- CCQE ------------------------------------------------------------------------------------


@pytest.mark.parametrize("enu_gev", [3.0, 5.0, 10.0])
def test_ccqe_numu_neutron_plateaus_near_1e_38(enu_gev):
    # Llewellyn Smith, M_A = 1 GeV: free-neutron ν_μ CCQE ≈ 1e-38 cm² at a few GeV
    # (Formaggio & Zeller, RMP 84 (2012) 1307).
    value = float(ccqe.total_xsec(enu_gev * 1000.0, ma_mev=1000.0))
    assert 0.9e-38 < value < 1.1e-38


@pytest.mark.parametrize("enu_gev", [0.5, 1.0, 3.0, 10.0])
def test_ccqe_grows_with_the_axial_mass(enu_gev):
    low = float(ccqe.total_xsec(enu_gev * 1000.0, ma_mev=1000.0))
    high = float(ccqe.total_xsec(enu_gev * 1000.0, ma_mev=1200.0))
    assert high > 1.05 * low


@pytest.mark.parametrize("enu_gev", [0.5, 1.0, 3.0, 10.0])
def test_ccqe_antineutrino_cross_section_is_smaller(enu_gev):
    nu = float(ccqe.total_xsec(enu_gev * 1000.0))
    nubar = float(ccqe.total_xsec(enu_gev * 1000.0, antineutrino=True))
    assert nubar < 0.9 * nu


@pytest.mark.parametrize("antineutrino", [False, True])
@pytest.mark.parametrize("lepton_mass", [MASS_MUON_MEV, MASS_ELECTRON_MEV])
def test_ccqe_table_matches_the_direct_quadrature(antineutrino, lepton_mass):
    threshold = ccqe.threshold_mev(lepton_mass_mev=lepton_mass, antineutrino=antineutrino)
    enu = threshold + np.geomspace(1e-3, 2e6, 5000)
    kwargs = {"antineutrino": antineutrino, "lepton_mass_mev": lepton_mass, "ma_mev": 1100.0}
    np.testing.assert_allclose(
        ccqe.total_xsec(enu, **kwargs), ccqe.total_xsec_quadrature(enu, **kwargs), rtol=1e-5
    )


@pytest.mark.parametrize("antineutrino", [False, True])
def test_ccqe_forward_cross_section_is_g_f_squared_v_ud_squared_times_one_plus_g_a_squared(
    antineutrino,
):
    # At Q² → 0 (and m_l → 0) only C survives: dσ/dQ² = G_F² V_ud² (F₁(0)² + F_A(0)²)/(2π)
    # = G_F² V_ud² (1 + g_A²)/(2π) (Llewellyn Smith, Phys. Rep. 3 (1972) 261). Written out with
    # G_F = 1.1663788e-5 GeV⁻², V_ud = 0.97373, g_A = −1.267; ν_e at 10 GeV, where
    # Q²_min ≈ −3e-5 MeV² and the corrections are O(m_e²/M²) < 1e-6.
    g_f, v_ud, g_a, hbarc_cm = 1.1663788e-11, 0.97373, -1.267, 197.3269804e-13
    expected = g_f**2 * v_ud**2 * (1.0 + g_a**2) / (2.0 * np.pi) * hbarc_cm**2
    kwargs = {"lepton_mass_mev": MASS_ELECTRON_MEV, "antineutrino": antineutrino}
    q2_min, _ = ccqe.q2_range_mev2(10_000.0, **kwargs)
    value = float(ccqe.dxsec_dq2(10_000.0, q2_min, **kwargs))
    assert value / expected == pytest.approx(1.0, rel=1e-6, abs=0)


def test_ccqe_threshold_is_110_mev_for_numu_on_neutrons():
    assert ccqe.threshold_mev() == pytest.approx(110.16, abs=0.01)
    assert float(ccqe.total_xsec(110.0)) == 0.0
    assert float(ccqe.total_xsec(111.0)) > 0.0


def test_ccqe_differential_cross_section_vanishes_outside_the_kinematic_range():
    q2_min, q2_max = ccqe.q2_range_mev2(1000.0)
    values = ccqe.dxsec_dq2(1000.0, [q2_min * 0.5, q2_min, q2_max, q2_max * 1.01])
    assert values[0] == 0.0
    assert values[1] > 0.0
    assert values[2] > 0.0
    assert values[3] == 0.0


@pytest.mark.parametrize("enu", [300.0, 1000.0, 10000.0])
def test_ccqe_total_is_the_integral_of_the_differential(enu):
    q2_min, q2_max = ccqe.q2_range_mev2(enu)
    value, _ = quad(
        lambda q2: float(ccqe.dxsec_dq2(enu, q2)),
        float(q2_min),
        float(q2_max),
        points=[1e5, 1e6] if q2_max > 1e6 else None,
        limit=400,
        epsabs=0.0,
        epsrel=1e-10,
    )
    assert float(ccqe.total_xsec_quadrature(enu)) == pytest.approx(value, rel=1e-6, abs=0)
    assert float(ccqe.total_xsec(enu)) == pytest.approx(value, rel=1e-5, abs=0)


@pytest.mark.parametrize("antineutrino", [False, True])
def test_qe_formula_recovers_the_neutrino_energy_on_a_free_nucleon(antineutrino):
    q2_min, q2_max = ccqe.q2_range_mev2(2500.0, antineutrino=antineutrino)
    q2 = np.linspace(q2_min, q2_max, 9)[1:-1]
    lepton_energy, cos_theta = ccqe.lepton_kinematics(2500.0, q2, antineutrino=antineutrino)
    reco = ccqe.reconstructed_enu_qe_mev(lepton_energy, cos_theta, antineutrino=antineutrino)
    np.testing.assert_allclose(reco, 2500.0, rtol=1e-9)


# --- non-QE CC ---------------------------------------------------------------------------------


def test_non_qe_cc_turns_on_at_the_single_pion_threshold():
    m = 0.5 * (938.27208816 + 939.56542052)
    threshold = ((m + MASS_PION_MEV + MASS_MUON_MEV) ** 2 - m**2) / (2 * m)
    assert ccqe.single_pion_threshold_mev() == pytest.approx(threshold, rel=1e-12, abs=0)
    assert threshold == pytest.approx(277.3, abs=0.1)
    assert float(ccqe.noqe_xsec_per_nucleon(threshold - 1.0)) == 0.0
    assert float(ccqe.noqe_xsec_per_nucleon(threshold + 50.0)) > 0.0


def test_non_qe_cc_slope_tends_to_the_pdg_inclusive_value():
    # PDG: σ_CC/E_ν = 0.677e-38 cm²/GeV per nucleon (isoscalar, high energy)
    e_mev = 200_000.0
    assert float(ccqe.noqe_xsec_per_nucleon(e_mev)) / (e_mev / 1000.0) == pytest.approx(
        0.677e-38, rel=0.01, abs=0
    )


@pytest.mark.parametrize(
    ("enu_gev", "sigma_over_e"), [(1.0, 0.30), (2.0, 0.46), (3.0, 0.53), (10.0, 0.63)]
)
def test_non_qe_cc_follows_the_resonant_plus_dis_shape(enu_gev, sigma_over_e):
    # inclusive minus QE per nucleon, read off Formaggio & Zeller (2012), in 1e-38 cm²/GeV
    value = float(ccqe.noqe_xsec_per_nucleon(enu_gev * 1000.0)) / enu_gev / 1e-38
    assert value == pytest.approx(sigma_over_e, rel=0.1, abs=0)


# --- ν_e on lead ---------------------------------------------------------------------------------


def _michel_average(xsec) -> float:
    nodes, weights = np.polynomial.legendre.leggauss(400)
    e = 0.5 * (MASS_MUON_MEV / 2) * (nodes + 1.0)
    return float(0.5 * (MASS_MUON_MEV / 2) * weights @ (flux.pidar_spectrum("nue", e) * xsec(e)))


def test_lead_cc_averaged_over_the_michel_nue_flux_is_the_published_value():
    # Engel, McLaughlin & Volpe PRD 67 (2003) 013005; Kolbe & Langanke PRC 63 (2001) 025802:
    # flux-averaged σ_CC ≈ 3.6–4.1e-39 cm².
    assert 3.6e-39 < _michel_average(lead.total_cc_xsec) < 4.1e-39


def test_lead_neutron_emission_dominates_the_michel_averaged_cc():
    one_n = _michel_average(lead.cc_1n_xsec)
    two_n = _michel_average(lead.cc_2n_xsec)
    total = _michel_average(lead.total_cc_xsec)
    assert one_n == pytest.approx(2.35e-39, rel=0.02, abs=0)
    assert two_n == pytest.approx(1.34e-39, rel=0.02, abs=0)
    assert (one_n + two_n) / total > 0.9


def test_lead_cc_rises_steeply_with_energy():
    assert float(lead.total_cc_xsec(50.0) / lead.total_cc_xsec(20.0)) > 10.0


def test_lead_neutron_channels_close_below_their_thresholds():
    assert float(lead.cc_1n_xsec(10.0)) == 0.0
    assert float(lead.cc_2n_xsec(20.0)) == 0.0
    assert float(lead.cc_1n_xsec(12.0)) > 0.0
    assert float(lead.cc_2n_xsec(22.0)) > 0.0


@pytest.mark.parametrize(
    ("xsec", "enu", "sigma_over_e"),
    [
        (lead.cc_1n_xsec, 24.38, 5.377),
        (lead.cc_1n_xsec, 44.93, 8.396),
        (lead.cc_2n_xsec, 54.59, 12.735),
    ],
)
def test_lead_parametrisation_reproduces_the_tabulated_calculation_between_knots(
    xsec, enu, sigma_over_e
):
    # SNOwGLoBES xs_nue_Pb208_{1n,2n}.dat (EMV 2003): σ/E in 1e-38 cm²/GeV at points off the knots.
    assert float(xsec(enu)) == pytest.approx(sigma_over_e * 1e-38 * enu / 1000.0, rel=0.01, abs=0)


def test_lead_two_neutron_emission_overtakes_one_neutron_at_high_energy():
    assert float(lead.cc_2n_xsec(50.0)) > float(lead.cc_1n_xsec(50.0))
    assert float(lead.cc_2n_xsec(30.0)) < 0.2 * float(lead.cc_1n_xsec(30.0))


def test_lead_neutron_yield_counts_two_per_two_neutron_event():
    e = np.array([25.0, 40.0])
    np.testing.assert_allclose(
        lead.neutron_yield_xsec(e), lead.cc_1n_xsec(e) + 2.0 * lead.cc_2n_xsec(e), rtol=1e-15
    )
