"""Specifications of farm.physics.cevns and farm.physics.nuclei."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from farm.physics.cevns import (
    dxsec_dT,
    helm_form_factor,
    klein_nystrand_form_factor,
    max_recoil_mev,
    min_enu_mev,
    total_xsec,
    weak_charge,
)
from farm.physics.constants import (
    FERMI_CONSTANT_MEV2,
    HBARC2_MEV2_CM2,
    MASS_MUON_MEV,
    MASS_PION_MEV,
    MASS_PROTON_MEV,
)
from farm.physics.nuclei import (
    MATERIALS,
    TARGETS,
    get_target,
    material_mass_u,
    targets_per_kg,
)

# --- nuclei -----------------------------------------------------------------------------------


def test_required_targets_are_defined() -> None:
    required = {"Ar40", "Cs133", "I127", "Ge70", "Ge72", "Ge73", "Ge74", "Ge76"}
    required |= {"Na23", "Xe132", "O16", "C12", "H1"}
    assert required <= set(TARGETS)


def test_argon40_nuclear_mass_from_ame2020() -> None:
    # AME2020: m(⁴⁰Ar) = 39.9623831237 u = 37224.724 MeV for the atom, minus 18 m_e.
    assert get_target("Ar40").mass_mev == pytest.approx(37215.526, abs=1e-3)


def test_hydrogen_nucleus_is_the_free_proton() -> None:
    # The ¹H atom differs from p + e only by the 13.6 eV binding energy.
    assert get_target("H1").mass_mev == pytest.approx(MASS_PROTON_MEV, abs=2e-5)


def test_unknown_target_error_lists_allowed_names() -> None:
    with pytest.raises(ValueError, match=r"allowed: .*Ar40.*Cs133"):
        get_target("Ar41")


def test_isotopic_fractions_of_natural_elements_sum_to_one() -> None:
    for material in ("Ar", "Ge"):
        assert sum(MATERIALS[material].values()) == pytest.approx(1.0, abs=1e-12)


def test_natural_germanium_matches_standard_atomic_weight() -> None:
    # IUPAC standard atomic weight of Ge: 72.630(8).
    assert material_mass_u("Ge") == pytest.approx(72.630, abs=0.008)


def test_csi_has_one_cesium_and_one_iodine_per_259_81_u() -> None:
    per_kg = targets_per_kg("CsI")
    expected = 1.0 / (259.8099 * 1.66053906660e-27)
    assert per_kg["Cs133"] == pytest.approx(expected, rel=1e-6, abs=0)
    assert per_kg["I127"] == per_kg["Cs133"]


def test_unknown_material_error_lists_allowed_names() -> None:
    with pytest.raises(ValueError, match=r"allowed: .*CsI"):
        targets_per_kg("PbWO4")


# --- weak charge and kinematics ---------------------------------------------------------------


def test_corrected_weak_charge_of_cesium() -> None:
    # −2(Z g_V^p + N g_V^n) = −2(55 · 0.0227 − 78 · 0.5117) = 77.3282
    assert weak_charge("Cs133", "corrected") == pytest.approx(77.3282, abs=1e-10)


def test_tree_weak_charge_of_argon() -> None:
    # N − (1 − 4 sin²θ_W) Z = 22 − 0.0752 · 18
    assert weak_charge("Ar40", "tree", 0.2312) == pytest.approx(20.6464, abs=1e-10)


def test_min_enu_inverts_max_recoil() -> None:
    mass = get_target("Ge72").mass_mev
    enu = np.array([0.5, 3.0, 30.0, 300.0])
    np.testing.assert_allclose(min_enu_mev(max_recoil_mev(enu, mass), mass), enu, rtol=1e-12)


def test_ten_kev_recoil_cap_is_wrong_for_argon_at_sns_energies() -> None:
    # Tables of dσ/dT that stop at a 10 keV recoil are wrong above ≈ 14 MeV for argon.
    mass = get_target("Ar40").mass_mev
    assert min_enu_mev(0.010, mass) == pytest.approx(13.65, abs=0.01)
    assert max_recoil_mev(30.0, mass) == pytest.approx(0.04829, abs=1e-5)
    above_cap, _ = quad(lambda t: dxsec_dT(30.0, t, "Ar40"), 0.010, max_recoil_mev(30.0, mass))
    assert above_cap / total_xsec(30.0, "Ar40") > 0.5


# --- cross sections ---------------------------------------------------------------------------


def test_argon40_tree_helm_cross_section_at_30_mev_matches_reference() -> None:
    # Reference: ⁴⁰Ar at 30 MeV, tree-level Q_W with sin²θ_W = 0.2312 and the Helm form factor
    # (Freedman, PRD 9, 1389 (1974); Lewin & Smith, Astropart. Phys. 6, 87 (1996)):
    # σ = 1.44e-39 cm², quoted to three digits (±0.35 %). F instead of F² would be +5.7 %.
    xsec = total_xsec(30.0, "Ar40", couplings="tree", sin2w=0.2312, form_factor="helm")
    assert xsec / 1.44e-39 == pytest.approx(1.0, rel=0.005, abs=0)


# Everything written out for the next test, independently of farm.physics: G_F (PDG 2024), ħc,
# the ⁴⁰Ar nuclear mass (AME2020 atom minus 18 mₑ), and the Helm parameters of Lewin & Smith.
_G_F_MEV2 = 1.1663788e-11
_HBARC_MEV_FM = 197.3269804
_AR40_MASS_MEV = 37215.526


def _helm_by_hand(q_fm: float, a: int) -> float:
    """F(q) = 3 j₁(qR₀)/(qR₀) e^{−q²s²/2}, R₀² = c² + 7/3 π² a² − 5 s², c = 1.23 A^⅓ − 0.60 fm."""
    c_fm, a_fm, s_fm = 1.23 * a ** (1.0 / 3.0) - 0.60, 0.52, 0.9
    x = q_fm * math.sqrt(c_fm**2 + 7.0 / 3.0 * math.pi**2 * a_fm**2 - 5.0 * s_fm**2)
    return 3.0 * (math.sin(x) - x * math.cos(x)) / x**3 * math.exp(-0.5 * (q_fm * s_fm) ** 2)


@pytest.mark.parametrize("enu", [10.0, 30.0, 50.0])
def test_argon40_cross_section_is_the_freedman_formula_with_helm_written_out(enu: float) -> None:
    # dσ/dT = G_F² M Q_W²/(4π) · F²(q) · (1 − T/E − MT/(2E²)), 0 ≤ T ≤ 2E²/(M + 2E),
    # q = √(2MT + T²), Q_W = N − (1 − 4 sin²θ_W) Z (Freedman, PRD 9, 1389 (1974); COHERENT,
    # Science 357, 1123 (2017)), integrated here by adaptive quadrature.
    mass, qw = _AR40_MASS_MEV, 22 - (1 - 4 * 0.2312) * 18
    prefactor = _G_F_MEV2**2 * mass * qw**2 / (4.0 * math.pi) * (_HBARC_MEV_FM * 1e-13) ** 2

    def dsigma_dt(t: float) -> float:
        q_fm = math.sqrt(2.0 * mass * t + t * t) / _HBARC_MEV_FM
        kinematic = 1.0 - t / enu - mass * t / (2.0 * enu**2)
        return prefactor * _helm_by_hand(q_fm, 40) ** 2 * kinematic

    t_max = 2.0 * enu**2 / (mass + 2.0 * enu)
    reference, _ = quad(dsigma_dt, 0.0, t_max, epsabs=0.0, epsrel=1e-12, limit=200)
    xsec = total_xsec(enu, "Ar40", couplings="tree", sin2w=0.2312, form_factor="helm")
    assert xsec / reference == pytest.approx(1.0, rel=1e-6, abs=0)


@pytest.mark.parametrize("target", ["H1", "Ar40", "Ge76", "Cs133"])
def test_total_without_form_factor_equals_closed_form(target: str) -> None:
    nucleus = get_target(target)
    mass = nucleus.mass_mev
    enu = np.array([0.1, 2.0, 10.0, 30.0, 52.8, 300.0])
    t_max = max_recoil_mev(enu, mass)
    qw = weak_charge(target)
    closed = (
        FERMI_CONSTANT_MEV2**2
        * mass
        * qw**2
        / (4.0 * np.pi)
        * (t_max - t_max**2 / (2.0 * enu) - mass * t_max**2 / (4.0 * enu**2))
        * HBARC2_MEV2_CM2
    )
    np.testing.assert_allclose(total_xsec(enu, target, form_factor=None), closed, rtol=1e-10)


@pytest.mark.parametrize("form_factor", ["helm", "klein"])
@pytest.mark.parametrize("target", ["Ar40", "Cs133"])
def test_total_matches_adaptive_quadrature(form_factor: str, target: str) -> None:
    mass = get_target(target).mass_mev
    for enu in (5.0, 30.0, 52.8, 300.0):
        t_max = float(max_recoil_mev(enu, mass))
        reference, _ = quad(
            lambda t, e=enu: float(dxsec_dT(e, t, target, form_factor=form_factor)),
            0.0,
            t_max,
            epsabs=0.0,
            epsrel=1e-12,
            limit=200,
        )
        assert total_xsec(enu, target, form_factor=form_factor) == pytest.approx(
            reference, rel=1e-6, abs=0
        )


def test_cross_section_grows_as_energy_squared_at_low_energy() -> None:
    # σ = G_F² E² Q_W²/(4π) · (1 + O(E/M)) for F = 1.
    qw = weak_charge("Ge74")
    enu = np.array([0.5, 1.0, 2.0])
    xsec = total_xsec(enu, "Ge74", form_factor=None)
    np.testing.assert_allclose(xsec / xsec[1], (enu / 1.0) ** 2, rtol=1e-4)
    leading = FERMI_CONSTANT_MEV2**2 * enu**2 * qw**2 / (4.0 * np.pi) * HBARC2_MEV2_CM2
    np.testing.assert_allclose(xsec, leading, rtol=1e-4)


def test_corrected_over_tree_ratio_for_cesium_is_ratio_of_weak_charges_squared() -> None:
    corrected = total_xsec(30.0, "Cs133", couplings="corrected")
    tree = total_xsec(30.0, "Cs133", couplings="tree", sin2w=0.23857)
    # (77.3282 / (78 − (1 − 4 · 0.23857) · 55))² = (77.3282 / 75.4854)²
    assert corrected / tree == pytest.approx((77.3282 / 75.4854) ** 2, rel=1e-10, abs=0)


def test_dxsec_at_zero_recoil_is_the_coherent_prefactor() -> None:
    nucleus = get_target("I127")
    expected = (
        FERMI_CONSTANT_MEV2**2
        * nucleus.mass_mev
        * weak_charge(nucleus) ** 2
        / (4.0 * np.pi)
        * HBARC2_MEV2_CM2
    )
    assert dxsec_dT(20.0, 0.0, "I127") == pytest.approx(expected, rel=1e-14, abs=0)


def test_dxsec_vanishes_outside_kinematic_range_without_warnings() -> None:
    t_max = float(max_recoil_mev(30.0, get_target("Ar40").mass_mev))
    values = dxsec_dT(
        np.array([30.0, 30.0, 30.0, 0.0]), np.array([-1e-3, t_max * 1.0001, 1.0, 0.0]), "Ar40"
    )
    np.testing.assert_array_equal(values, 0.0)


def test_total_xsec_is_zero_at_zero_energy() -> None:
    assert total_xsec(0.0, "Cs133") == 0.0


def test_total_xsec_broadcasts_energy_against_neutron_radius() -> None:
    enu = np.array([10.0, 30.0, 50.0])[:, None]
    radius = np.array([4.5, 5.5])
    xsec = total_xsec(enu, "Cs133", rms_radius_fm=radius)
    assert xsec.shape == (3, 2)
    assert xsec[2, 1] == pytest.approx(
        total_xsec(50.0, "Cs133", rms_radius_fm=5.5), rel=1e-14, abs=0
    )


def test_larger_neutron_radius_lowers_the_cross_section() -> None:
    radius = np.array([4.5, 5.0, 5.5, 6.0])
    xsec = total_xsec(40.0, "Cs133", rms_radius_fm=radius)
    assert np.all(np.diff(xsec) < 0)


def test_csi_flux_averaged_cross_section_is_coherent_like() -> None:
    # π-DAR Michel spectra (COHERENT, PRD 106, 032003 (2022)); ⟨σ⟩ per nucleus over the three
    # flavours.
    # COHERENT (PRL 129, 081801 (2022)) predicts (189 ± 6) × 10⁻⁴⁰ cm² for CsI.
    e_prompt = (MASS_PION_MEV**2 - MASS_MUON_MEV**2) / (2.0 * MASS_PION_MEV)
    x, w = np.polynomial.legendre.leggauss(100)
    enu = 0.25 * MASS_MUON_MEV * (x + 1.0)
    weight = 0.25 * MASS_MUON_MEV * w
    nue = 192.0 * enu**2 / MASS_MUON_MEV**3 * (0.5 - enu / MASS_MUON_MEV)
    numubar = 64.0 * enu**2 / MASS_MUON_MEV**3 * (0.75 - enu / MASS_MUON_MEV)
    averages = []
    for target in ("Cs133", "I127"):
        delayed = np.sum(total_xsec(enu, target) * (nue + numubar) * weight)
        averages.append((total_xsec(e_prompt, target) + delayed) / 3.0)
    flux_averaged = np.mean(averages)
    assert 1e-39 < flux_averaged < 1e-37
    assert flux_averaged == pytest.approx(189e-40, rel=0.10, abs=0)


# --- form factors -----------------------------------------------------------------------------


@pytest.mark.parametrize("form_factor", [helm_form_factor, klein_nystrand_form_factor])
def test_form_factor_is_one_at_zero_and_falls_at_small_q(form_factor) -> None:
    q_mev = np.linspace(0.0, 60.0, 61)
    values = form_factor(q_mev, 133)
    assert values[0] == 1.0
    assert np.all(np.diff(values) < 0)


def test_helm_series_and_closed_form_join_smoothly() -> None:
    # qR₀ = 0.05 is where the Taylor series takes over; R₀(A = 40) = 3.8812 fm.
    c_fm = 1.23 * 40 ** (1 / 3) - 0.60
    r0_fm = np.sqrt(c_fm**2 + 7 / 3 * np.pi**2 * 0.52**2 - 5 * 0.9**2)
    q_edge_mev = 0.05 / r0_fm * 197.3269804
    below, above = helm_form_factor(q_edge_mev * np.array([1 - 1e-12, 1 + 1e-12]), 40)
    assert below == pytest.approx(above, abs=2e-13)


def test_helm_at_its_own_rms_radius_equals_default() -> None:
    # Helm rms radius: R² = 3/5 R₀² + 3 s².
    c_fm = 1.23 * 133 ** (1 / 3) - 0.60
    r0_sq = c_fm**2 + 7 / 3 * np.pi**2 * 0.52**2 - 5 * 0.9**2
    rms = np.sqrt(0.6 * r0_sq + 3 * 0.9**2)
    q_mev = np.linspace(0.0, 300.0, 31)
    np.testing.assert_allclose(
        helm_form_factor(q_mev, 133, rms_radius_fm=rms), helm_form_factor(q_mev, 133), atol=1e-14
    )


def test_klein_nystrand_at_its_own_rms_radius_equals_default() -> None:
    # Klein–Nystrand rms radius: R² = 3/5 R_A² + 6 a_k², R_A = 1.2 A^(1/3), a_k = 0.7 fm.
    rms = np.sqrt(0.6 * (1.2 * 127 ** (1 / 3)) ** 2 + 6 * 0.7**2)
    q_mev = np.linspace(0.0, 300.0, 31)
    np.testing.assert_allclose(
        klein_nystrand_form_factor(q_mev, 127, rms_radius_fm=rms),
        klein_nystrand_form_factor(q_mev, 127),
        atol=1e-14,
    )


def test_form_factors_with_equal_rms_radius_agree_at_small_q() -> None:
    # F = 1 − q²R²/6 + O(q⁴) for any density with rms radius R.
    q_mev = np.array([5.0, 10.0])
    helm = helm_form_factor(q_mev, 133, rms_radius_fm=4.8)
    klein = klein_nystrand_form_factor(q_mev, 133, rms_radius_fm=4.8)
    leading = 1.0 - (q_mev / 197.3269804 * 4.8) ** 2 / 6.0
    np.testing.assert_allclose(helm, leading, atol=2e-4)
    np.testing.assert_allclose(klein, helm, atol=2e-4)


# --- bad input --------------------------------------------------------------------------------


def test_negative_energy_is_rejected() -> None:
    with pytest.raises(ValueError, match="enu_mev must be >= 0"):
        total_xsec(np.array([10.0, -1.0]), "Ar40")
    with pytest.raises(ValueError, match="enu_mev must be >= 0"):
        dxsec_dT(-1.0, 0.001, "Ar40")


def test_unknown_couplings_error_lists_allowed() -> None:
    with pytest.raises(ValueError, match="'corrected', 'tree'"):
        total_xsec(30.0, "Ar40", couplings="loop")


def test_unknown_form_factor_error_lists_allowed() -> None:
    with pytest.raises(ValueError, match="'helm', 'klein', None"):
        dxsec_dT(30.0, 0.01, "Ar40", form_factor="fermi")


def test_unknown_target_is_rejected_by_cross_sections() -> None:
    with pytest.raises(ValueError, match=r"allowed: .*Ar40"):
        total_xsec(30.0, "Argon")


def test_rms_radius_below_the_helm_skin_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"rms_radius_fm must exceed 1\.5588 fm"):
        total_xsec(30.0, "Ar40", rms_radius_fm=1.5)
