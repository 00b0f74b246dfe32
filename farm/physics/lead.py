"""ν_e charged current on ²⁰⁸Pb and the neutrons it frees (the SNS "NIN" background).

ν_e + ²⁰⁸Pb → e⁻ + ²⁰⁸Bi*. Nearly all of the strength (the isobaric analogue state at
E_x ≈ 15 MeV and the Gamow–Teller resonance) lies above the neutron separation energy of
²⁰⁸Bi (S_n ≈ 6.9 MeV), so most interactions emit one or two neutrons; in lead shielding those
neutrons are a beam-correlated background that scales with the ν_e flux.

Model (cm² per ²⁰⁸Pb nucleus):

- 1n and 2n emission: monotone cubic (PCHIP) interpolation of σ/E through knots read off the
  Engel, McLaughlin & Volpe calculation (Phys. Rev. D 67 (2003) 013005) as tabulated in
  SNOwGLoBES (xs_nue_Pb208_1n / _2n); the knots reproduce those tables to < 1 % above
  threshold + 1.5 MeV. σ/E is held constant above 100 MeV (the last knot).
- no neutron (bound final states): allowed approximation
  σ₀ₙ = κ G_F² cos²θ_C (ħc)²/π · p_e E_e F(Z = 83, E_e), E_e = E_ν − Q − E_x, with Q = 2.879 MeV
  (²⁰⁸Bi − ²⁰⁸Pb atomic masses), an effective E_x = 3 MeV and an effective strength κ = 4.0
  that gives bound states ≈ 5 % of the Michel-averaged total; this share is an assumption of
  this module (it emits no neutron, so the NIN background does not depend on it).

Michel-averaged (π-DAR ν_e): σ_0n = 0.19, σ_1n = 2.35, σ_2n = 1.34, σ_CC = 3.9 × 10⁻³⁹ cm²,
inside the 3.6–4.1 × 10⁻³⁹ cm² spread of published calculations (Engel et al. 2003; Kolbe &
Langanke, Phys. Rev. C 63 (2001) 025802). COHERENT's measured NIN yield on lead came out well
below predictions of this kind: give σ a generous normalisation systematic.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import PchipInterpolator

from farm.physics.constants import (
    ALPHA_EM,
    FERMI_CONSTANT_MEV2,
    GEV_MEV,
    HBARC2_MEV2_CM2,
    MASS_ELECTRON_MEV,
    V_UD,
)

__all__ = [
    "BOUND_STATE_STRENGTH",
    "Q_VALUE_MEV",
    "THRESHOLD_1N_MEV",
    "THRESHOLD_2N_MEV",
    "cc_0n_xsec",
    "cc_1n_xsec",
    "cc_2n_xsec",
    "neutron_yield_xsec",
    "total_cc_xsec",
]

Q_VALUE_MEV = 2.879
"""Ground-state Q of ²⁰⁸Pb(ν_e, e⁻)²⁰⁸Bi: M(²⁰⁸Bi) − M(²⁰⁸Pb), atomic masses (AME 2020)."""

THRESHOLD_1N_MEV = 10.2
THRESHOLD_2N_MEV = 20.6
"""E_ν where the calculated 1n and 2n cross sections turn on (the bare 1n threshold is
Q + S_n ≈ 9.8 MeV; two-neutron emission stays negligible until ≈ 20.6 MeV)."""

BOUND_STATE_STRENGTH = 4.0
"""κ = B(F) + g_A² B(GT) summed over bound ²⁰⁸Bi states (effective; see the module docstring)."""

_BOUND_STATE_EXCITATION_MEV = 3.0
_Z_BISMUTH = 83
_SIGMA_OVER_E_UNIT_CM2_PER_MEV = 1.0e-38 / GEV_MEV

# (E_ν [MeV], σ/E [1e-38 cm²/GeV]) knots, Engel–McLaughlin–Volpe 2003 via SNOwGLoBES.
_KNOTS_1N = (
    (10.2, 0.0), (11.36, 0.0813), (12.58, 0.200), (13.93, 0.392), (15.42, 0.689),
    (17.08, 1.147), (18.91, 1.874), (20.93, 3.002), (23.18, 4.529), (25.66, 6.239),
    (27.01, 7.061), (28.42, 7.769), (29.90, 8.280), (31.46, 8.522), (33.11, 8.552),
    (36.66, 8.411), (40.59, 8.364), (49.76, 8.477), (61.00, 8.650), (71.07, 8.591),
    (82.80, 8.265), (100.0, 7.391),
)  # fmt: skip
_KNOTS_2N = (
    (20.6, 0.0), (21.83, 0.0216), (22.97, 0.0550), (24.17, 0.1147), (25.43, 0.2106),
    (26.76, 0.3588), (28.16, 0.5853), (29.63, 0.9202), (31.18, 1.395), (32.81, 2.022),
    (34.52, 2.802), (36.33, 3.735), (38.23, 4.800), (40.22, 5.963), (42.33, 7.177),
    (44.54, 8.348), (46.86, 9.385), (49.31, 10.375), (51.89, 11.499), (57.45, 13.936),
    (63.61, 16.144), (70.43, 18.469), (77.98, 20.732), (86.35, 22.661), (95.60, 24.188),
    (100.0, 23.125),
)  # fmt: skip


def _interpolator(knots: tuple[tuple[float, float], ...]) -> PchipInterpolator:
    energies, values = np.array(knots).T
    return PchipInterpolator(energies, values, extrapolate=False)


_SIGMA_OVER_E_1N = _interpolator(_KNOTS_1N)
_SIGMA_OVER_E_2N = _interpolator(_KNOTS_2N)


def _tabulated_xsec(
    interpolator: PchipInterpolator, knots: tuple[tuple[float, float], ...], enu_mev: ArrayLike
) -> NDArray[np.float64]:
    e = np.asarray(enu_mev, dtype=np.float64)
    e_threshold, e_last = knots[0][0], knots[-1][0]
    sigma_over_e = interpolator(np.clip(e, e_threshold, e_last))
    value = np.maximum(sigma_over_e, 0.0) * _SIGMA_OVER_E_UNIT_CM2_PER_MEV * e
    return np.where(e > e_threshold, value, 0.0)


def cc_1n_xsec(enu_mev: ArrayLike) -> NDArray[np.float64]:
    """σ(ν_e ²⁰⁸Pb → e⁻ n X) in cm² per nucleus: exactly one neutron emitted; 0 below 10.2 MeV."""
    return _tabulated_xsec(_SIGMA_OVER_E_1N, _KNOTS_1N, enu_mev)


def cc_2n_xsec(enu_mev: ArrayLike) -> NDArray[np.float64]:
    """σ(ν_e ²⁰⁸Pb → e⁻ 2n X) in cm² per nucleus: two neutrons emitted; 0 below 20.6 MeV."""
    return _tabulated_xsec(_SIGMA_OVER_E_2N, _KNOTS_2N, enu_mev)


def _fermi_function(z_daughter: int, ee_mev: NDArray[np.float64]) -> NDArray[np.float64]:
    """Non-relativistic Fermi function for an electron, F = 2πη/(1 − e^{−2πη}), η = Zα E/p."""
    pe = np.sqrt(np.maximum(ee_mev**2 - MASS_ELECTRON_MEV**2, 1.0e-12))
    two_pi_eta = 2.0 * np.pi * z_daughter * ALPHA_EM * ee_mev / pe
    return two_pi_eta / -np.expm1(-two_pi_eta)


def cc_0n_xsec(enu_mev: ArrayLike) -> NDArray[np.float64]:
    """CC to bound ²⁰⁸Bi states (no neutron), cm² per nucleus (allowed approximation).

    σ = κ G_F² cos²θ_C (ħc)²/π · p_e E_e F(83, E_e),   E_e = E_ν − Q − 3 MeV
    """
    e = np.asarray(enu_mev, dtype=np.float64)
    ee = e - Q_VALUE_MEV - _BOUND_STATE_EXCITATION_MEV
    open_ = ee > MASS_ELECTRON_MEV
    ee_safe = np.where(open_, ee, 2.0 * MASS_ELECTRON_MEV)
    pe = np.sqrt(ee_safe**2 - MASS_ELECTRON_MEV**2)
    sigma0 = FERMI_CONSTANT_MEV2**2 * V_UD**2 * HBARC2_MEV2_CM2 / np.pi
    value = BOUND_STATE_STRENGTH * sigma0 * pe * ee_safe * _fermi_function(_Z_BISMUTH, ee_safe)
    return np.where(open_, value, 0.0)


def total_cc_xsec(enu_mev: ArrayLike) -> NDArray[np.float64]:
    """Total ν_e ²⁰⁸Pb charged-current cross section in cm² per nucleus: σ_0n + σ_1n + σ_2n."""
    return cc_0n_xsec(enu_mev) + cc_1n_xsec(enu_mev) + cc_2n_xsec(enu_mev)


def neutron_yield_xsec(enu_mev: ArrayLike) -> NDArray[np.float64]:
    """Neutrons per nucleus per unit fluence, σ_1n + 2σ_2n (cm²): what a NIN rate scales with."""
    return cc_1n_xsec(enu_mev) + 2.0 * cc_2n_xsec(enu_mev)
