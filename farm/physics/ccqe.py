"""Charged-current quasi-elastic scattering on a free nucleon, and non-QE charged current.

CCQE: ν_l n → l⁻ p (and ν̄_l p → l⁺ n) in the Llewellyn Smith formalism (Phys. Rep. 3 (1972)
261), as written in Formaggio & Zeller, Rev. Mod. Phys. 84 (2012) 1307, eq. 42:

    dσ/dQ² = M² G_F² cos²θ_C / (8π E_ν²) · [A(Q²) ∓ B(Q²) (s − u)/M² + C(Q²) (s − u)²/M⁴]

    A = (m² + Q²)/M² [ (1 + τ) F_A² − (1 − τ) F₁² + τ (1 − τ) (ξF₂)² + 4τ F₁ ξF₂
                       − m²/(4M²) ((F₁ + ξF₂)² + (F_A + 2F_P)² − (Q²/M² + 4) F_P²) ]
    B = Q²/M² F_A (F₁ + ξF₂)
    C = (F_A² + F₁² + τ (ξF₂)²)/4

τ = Q²/(4M²), s − u = 4M E_ν − Q² − m², M the mean nucleon mass, m the charged-lepton mass.
Form factors: dipole G_D = (1 + Q²/M_V²)⁻², M_V² = 0.71 GeV²; F₁ = G_D (1 + τ(1 + ξ))/(1 + τ),
ξF₂ = ξ G_D/(1 + τ) with ξ = μ_p − μ_n − 1 = 3.706 (Pauli form factor from the anomalous
moments); F_A = g_A (1 + Q²/M_A²)⁻² with g_A = −1.267 (``constants.GA_NUCLEON``); PCAC
pseudoscalar F_P = 2M² F_A/(m_π² + Q²).

The formula takes equal nucleon masses in A, B, C (terms of order (M_n − M_p)/E_ν are
dropped; the kinematic Q² range uses the real masses). That is exact enough from the ν_μ
threshold up, but not for ν̄_e p at reactor energies: use :mod:`farm.physics.ibd` there.

Sign of the interference term: with g_A < 0, B < 0 and the *neutrino* takes −B (so the
interference adds), the antineutrino +B; this reproduces the free-neutron ν_μ plateau of
≈ 1 × 10⁻³⁸ cm² at a few GeV (M_A = 1 GeV) and a smaller ν̄ cross section.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from farm.physics.constants import (
    FERMI_CONSTANT_MEV2,
    GA_NUCLEON,
    GEV_MEV,
    HBARC2_MEV2_CM2,
    MASS_MUON_MEV,
    MASS_NEUTRON_MEV,
    MASS_PION_MEV,
    MASS_PROTON_MEV,
    V_UD,
)
from farm.physics.tabulate import interpolate_log_table

__all__ = [
    "ANOMALOUS_MOMENT_DIFFERENCE",
    "MV2_MEV2",
    "NOQE_SIGMA_OVER_E_CM2_PER_MEV",
    "dxsec_dq2",
    "lepton_kinematics",
    "noqe_xsec_per_nucleon",
    "q2_range_mev2",
    "reconstructed_enu_qe_mev",
    "single_pion_threshold_mev",
    "threshold_mev",
    "total_xsec",
    "total_xsec_quadrature",
]

MV2_MEV2 = 0.71e6
"""Vector dipole mass squared, 0.71 GeV²."""

ANOMALOUS_MOMENT_DIFFERENCE = 3.706
"""ξ = μ_p − μ_n − 1 = κ_p − κ_n (nuclear magnetons)."""

_M_AVG = 0.5 * (MASS_PROTON_MEV + MASS_NEUTRON_MEV)
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(96)


def _masses(antineutrino: bool) -> tuple[float, float]:
    """(initial, final) nucleon masses: n → p for ν, p → n for ν̄."""
    if antineutrino:
        return MASS_PROTON_MEV, MASS_NEUTRON_MEV
    return MASS_NEUTRON_MEV, MASS_PROTON_MEV


def threshold_mev(*, lepton_mass_mev: float = MASS_MUON_MEV, antineutrino: bool = False) -> float:
    """Neutrino energy threshold on a nucleon at rest, ((m + M_f)² − M_i²)/(2M_i).

    110.2 MeV for ν_μ n; 0 where the reaction is exothermic (ν_e n → e⁻ p, since M_n > M_p + m_e).
    """
    m_i, m_f = _masses(antineutrino)
    return max(((lepton_mass_mev + m_f) ** 2 - m_i**2) / (2.0 * m_i), 0.0)


def q2_range_mev2(
    enu_mev: ArrayLike,
    *,
    lepton_mass_mev: float = MASS_MUON_MEV,
    antineutrino: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Kinematic Q² range (MeV²) of ν N → l N' on a nucleon at rest; NaN below threshold.

    In the centre-of-mass frame, s = M_i² + 2M_i E_ν:

        Q²_∓ = −m² + 2 E_ν* (E_l* ∓ p_l*),   E_ν* = (s − M_i²)/(2√s),  E_l* = (s + m² − M_f²)/(2√s)
    """
    e = np.asarray(enu_mev, dtype=np.float64)
    m_i, m_f = _masses(antineutrino)
    threshold = threshold_mev(lepton_mass_mev=lepton_mass_mev, antineutrino=antineutrino)
    above = (e >= threshold) & (e > 0.0)
    e_safe = np.where(above, e, 2.0 * GEV_MEV)
    s = m_i**2 + 2.0 * m_i * e_safe
    root_s = np.sqrt(s)
    enu_cm = (s - m_i**2) / (2.0 * root_s)
    el_cm = (s + lepton_mass_mev**2 - m_f**2) / (2.0 * root_s)
    pl_cm = np.sqrt(np.maximum(el_cm**2 - lepton_mass_mev**2, 0.0))
    q2_min = -(lepton_mass_mev**2) + 2.0 * enu_cm * (el_cm - pl_cm)
    q2_max = -(lepton_mass_mev**2) + 2.0 * enu_cm * (el_cm + pl_cm)
    return np.where(above, q2_min, np.nan), np.where(above, q2_max, np.nan)


def dxsec_dq2(
    enu_mev: ArrayLike,
    q2_mev2: ArrayLike,
    *,
    ma_mev: float = 1000.0,
    antineutrino: bool = False,
    lepton_mass_mev: float = MASS_MUON_MEV,
) -> NDArray[np.float64]:
    """Llewellyn Smith dσ/dQ² in cm²/MeV² on a free nucleon; zero outside the kinematic range.

    See the module docstring for A, B, C and the form factors.

    Parameters
    ----------
    enu_mev, q2_mev2 : array_like
        Neutrino energy (MeV) and Q² = −q² (MeV²); broadcast together.
    ma_mev : float
        Axial dipole mass in MeV.
    antineutrino : bool
        ν̄ p → l⁺ n instead of ν n → l⁻ p.
    lepton_mass_mev : float
        Charged-lepton mass (muon by default; ``MASS_ELECTRON_MEV`` for ν_e).
    """
    e, q2 = np.broadcast_arrays(
        np.asarray(enu_mev, dtype=np.float64), np.asarray(q2_mev2, dtype=np.float64)
    )
    q2_min, q2_max = q2_range_mev2(e, lepton_mass_mev=lepton_mass_mev, antineutrino=antineutrino)
    inside = (q2 >= q2_min) & (q2 <= q2_max)
    e_safe = np.where(inside, e, GEV_MEV)
    q2_safe = np.where(inside, q2, 0.0)

    m = _M_AVG
    m2 = m * m
    lep2 = lepton_mass_mev**2
    tau = q2_safe / (4.0 * m2)
    g_dipole = 1.0 / (1.0 + q2_safe / MV2_MEV2) ** 2
    f1 = g_dipole * (1.0 + tau * (1.0 + ANOMALOUS_MOMENT_DIFFERENCE)) / (1.0 + tau)
    xi_f2 = g_dipole * ANOMALOUS_MOMENT_DIFFERENCE / (1.0 + tau)
    f_a = GA_NUCLEON / (1.0 + q2_safe / ma_mev**2) ** 2
    f_p = 2.0 * m2 * f_a / (MASS_PION_MEV**2 + q2_safe)

    a_term = (
        (lep2 + q2_safe)
        / m2
        * (
            (1.0 + tau) * f_a**2
            - (1.0 - tau) * f1**2
            + tau * (1.0 - tau) * xi_f2**2
            + 4.0 * tau * f1 * xi_f2
            - lep2
            / (4.0 * m2)
            * ((f1 + xi_f2) ** 2 + (f_a + 2.0 * f_p) ** 2 - (q2_safe / m2 + 4.0) * f_p**2)
        )
    )
    b_term = q2_safe / m2 * f_a * (f1 + xi_f2)
    c_term = 0.25 * (f_a**2 + f1**2 + tau * xi_f2**2)
    s_minus_u = 4.0 * m * e_safe - q2_safe - lep2
    sign = 1.0 if antineutrino else -1.0
    bracket = a_term + sign * b_term * s_minus_u / m2 + c_term * s_minus_u**2 / m2**2
    prefactor = m2 * FERMI_CONSTANT_MEV2**2 * V_UD**2 / (8.0 * np.pi * e_safe**2)
    return np.where(inside, prefactor * bracket * HBARC2_MEV2_CM2, 0.0)


def total_xsec_quadrature(
    enu_mev: ArrayLike,
    *,
    ma_mev: float = 1000.0,
    antineutrino: bool = False,
    lepton_mass_mev: float = MASS_MUON_MEV,
) -> NDArray[np.float64]:
    """CCQE total cross section by direct quadrature, cm² per free target nucleon.

    ∫ dσ/dQ² dQ² over the kinematic range, by 96-point Gauss–Legendre in ln(Q² + M_A²/4),
    which follows the dipole fall-off (relative accuracy < 1e-6 from threshold to 100 GeV).
    """
    e = np.asarray(enu_mev, dtype=np.float64)
    q2_min, q2_max = q2_range_mev2(e, lepton_mass_mev=lepton_mass_mev, antineutrino=antineutrino)
    above = np.isfinite(q2_min)
    shift = 0.25 * ma_mev**2
    lo = np.log(np.where(above, q2_min, 0.0) + shift)
    hi = np.log(np.where(above, q2_max, 1.0) + shift)
    half = 0.5 * (hi - lo)
    y = 0.5 * (hi + lo)[..., None] + half[..., None] * _GAUSS_NODES
    q2 = np.exp(y) - shift
    # Nodes sit strictly inside (q2_min, q2_max); clip the rounding at the ends.
    q2 = np.clip(
        q2, np.where(above, q2_min, 0.0)[..., None], np.where(above, q2_max, 1.0)[..., None]
    )
    integrand = dxsec_dq2(
        np.where(above, e, 0.0)[..., None],
        q2,
        ma_mev=ma_mev,
        antineutrino=antineutrino,
        lepton_mass_mev=lepton_mass_mev,
    ) * (q2 + shift)
    return np.where(above, half * (integrand @ _GAUSS_WEIGHTS), 0.0)


_TABLE_MIN_ABOVE_THRESHOLD_MEV = 1.0e-6
_TABLE_MAX_ABOVE_THRESHOLD_MEV = 1.0e6
_TABLE_SIZE = 4096


@lru_cache(maxsize=64)
def _log_xsec_table(
    ma_mev: float, antineutrino: bool, lepton_mass_mev: float
) -> tuple[float, float, float, NDArray[np.float64]]:
    """(threshold, ln ε₀, step, ln σ) on a geometric grid of ε = E_ν − E_th."""
    threshold = threshold_mev(lepton_mass_mev=lepton_mass_mev, antineutrino=antineutrino)
    log_eps = np.linspace(
        np.log(_TABLE_MIN_ABOVE_THRESHOLD_MEV), np.log(_TABLE_MAX_ABOVE_THRESHOLD_MEV), _TABLE_SIZE
    )
    sigma = total_xsec_quadrature(
        threshold + np.exp(log_eps),
        ma_mev=ma_mev,
        antineutrino=antineutrino,
        lepton_mass_mev=lepton_mass_mev,
    )
    log_sigma = np.log(sigma)
    log_sigma.setflags(write=False)
    return threshold, float(log_eps[0]), float(log_eps[1] - log_eps[0]), log_sigma


def total_xsec(
    enu_mev: ArrayLike,
    *,
    ma_mev: float = 1000.0,
    antineutrino: bool = False,
    lepton_mass_mev: float = MASS_MUON_MEV,
) -> NDArray[np.float64]:
    """CCQE total cross section in cm² per free target nucleon (n for ν, p for ν̄).

    :func:`total_xsec_quadrature`, tabulated once per (M_A, ν/ν̄, lepton mass) as ln σ against
    ln(E_ν − E_th) on 4096 points from 1 eV to 1 TeV above threshold and interpolated linearly
    (relative error < 1e-5), so that it costs O(1) per event; σ ∝ √(E_ν − E_th) closer to
    threshold, direct quadrature beyond. With M_A = 1 GeV the ν_μ n value plateaus at
    ≈ 1.0 × 10⁻³⁸ cm² above ~2 GeV.

    Examples
    --------
    >>> f"{float(total_xsec(5000.0)):.2e}"
    '9.89e-39'
    """
    e = np.asarray(enu_mev, dtype=np.float64)
    threshold, log_eps0, step, log_sigma = _log_xsec_table(
        float(ma_mev), bool(antineutrino), float(lepton_mass_mev)
    )
    eps = e - threshold
    value = interpolate_log_table(eps, log_eps0, step, log_sigma)
    beyond = np.flatnonzero(eps > _TABLE_MAX_ABOVE_THRESHOLD_MEV)
    if beyond.size:
        value.flat[beyond] = total_xsec_quadrature(
            e.flat[beyond],
            ma_mev=ma_mev,
            antineutrino=antineutrino,
            lepton_mass_mev=lepton_mass_mev,
        )
    return value


def lepton_kinematics(
    enu_mev: ArrayLike,
    q2_mev2: ArrayLike,
    *,
    lepton_mass_mev: float = MASS_MUON_MEV,
    antineutrino: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Charged-lepton total energy (MeV) and cos θ for a given (E_ν, Q²) on a nucleon at rest.

    ω = (Q² + M_f² − M_i²)/(2M_i),  E_l = E_ν − ω,  cos θ = (2E_ν E_l − m² − Q²)/(2E_ν p_l).

    Outside the physical range (e.g. below threshold) cos θ is clipped to [−1, 1], and it is
    set to 1 where p_l = 0.
    """
    e = np.asarray(enu_mev, dtype=np.float64)
    q2 = np.asarray(q2_mev2, dtype=np.float64)
    m_i, m_f = _masses(antineutrino)
    omega = (q2 + m_f**2 - m_i**2) / (2.0 * m_i)
    el = e - omega
    pl = np.sqrt(np.maximum(el**2 - lepton_mass_mev**2, 0.0))
    numerator, denominator = np.broadcast_arrays(
        2.0 * e * el - lepton_mass_mev**2 - q2, 2.0 * e * pl
    )
    # A lepton at rest (or E_ν = 0: no kinematics) has no direction: report it forward.
    cos_theta = np.divide(
        numerator, denominator, out=np.ones(numerator.shape), where=denominator > 0.0
    )
    return el, np.clip(cos_theta, -1.0, 1.0)


def reconstructed_enu_qe_mev(
    lepton_energy_mev: ArrayLike,
    cos_theta: ArrayLike,
    *,
    binding_mev: float = 0.0,
    lepton_mass_mev: float = MASS_MUON_MEV,
    antineutrino: bool = False,
) -> NDArray[np.float64]:
    """The QE-formula neutrino energy from the charged lepton alone (target at rest).

        E_ν = [2M' E_l − (M'² + m² − M_f²)] / [2 (M' − E_l + p_l cos θ)],  M' = M_i − E_b

    Exact for a free nucleon (E_b = 0); E_b ≈ 25–30 MeV is the usual choice for argon.
    """
    el = np.asarray(lepton_energy_mev, dtype=np.float64)
    c = np.asarray(cos_theta, dtype=np.float64)
    m_i, m_f = _masses(antineutrino)
    m_eff = m_i - binding_mev
    pl = np.sqrt(np.maximum(el**2 - lepton_mass_mev**2, 0.0))
    numerator = 2.0 * m_eff * el - (m_eff**2 + lepton_mass_mev**2 - m_f**2)
    return numerator / (2.0 * (m_eff - el + pl * c))


# ---------------------------------------------------------------------------------------------
# Non-QE charged current ("CC-other": resonant pion production + DIS)
# ---------------------------------------------------------------------------------------------

NOQE_SIGMA_OVER_E_CM2_PER_MEV = 0.677e-38 / GEV_MEV
"""High-energy slope σ/E of the ν_μ CC inclusive cross section per nucleon of an isoscalar
target, 0.677 × 10⁻³⁸ cm²/GeV (PDG Review of Particle Physics, "Neutrino cross-section
measurements"); QE is constant at high energy, so non-QE CC tends to the same slope."""

_NOQE_TURN_ON_POWER = 2.5


def single_pion_threshold_mev(*, lepton_mass_mev: float = MASS_MUON_MEV) -> float:
    """ν N → l N π threshold on a nucleon at rest, ((M + m_π + m)² − M²)/(2M) (277 MeV for ν_μ)."""
    return ((_M_AVG + MASS_PION_MEV + lepton_mass_mev) ** 2 - _M_AVG**2) / (2.0 * _M_AVG)


def noqe_xsec_per_nucleon(
    enu_mev: ArrayLike, *, lepton_mass_mev: float = MASS_MUON_MEV
) -> NDArray[np.float64]:
    """Non-QE ν CC cross section per nucleon of an isoscalar target, cm² (a stated parametrisation).

        σ(E) = 0.677 × 10⁻³⁸ cm²/GeV · E · (1 − E_π/E)^2.5,   E > E_π (zero below)

    E_π = :func:`single_pion_threshold_mev` (0.277 GeV for ν_μ). The asymptotic slope is the
    PDG inclusive σ/E; the turn-on power 2.5 is chosen by this module to follow the
    resonant + DIS (inclusive minus QE) per-nucleon curves of Formaggio & Zeller, Rev. Mod.
    Phys. 84 (2012) 1307: σ/E ≈ 0.30, 0.46, 0.53, 0.63 × 10⁻³⁸ cm²/GeV at 1, 2, 3,
    10 GeV. It is an overall shape with no resonance structure, meant for event rates and
    their systematic variation, not for pion kinematics.
    """
    e = np.asarray(enu_mev, dtype=np.float64)
    threshold = single_pion_threshold_mev(lepton_mass_mev=lepton_mass_mev)
    above = e > threshold
    e_safe = np.where(above, e, 2.0 * threshold)
    value = (
        NOQE_SIGMA_OVER_E_CM2_PER_MEV * e_safe * (1.0 - threshold / e_safe) ** _NOQE_TURN_ON_POWER
    )
    return np.where(above, value, 0.0)
