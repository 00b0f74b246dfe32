"""The axial-mass knob's weights, compiled: dσ/dQ²(M_A')/dσ/dQ²(M_A) of ν_μ n → μ⁻ p for every
event and shifted axial mass at once (farm.reweight.knobs), with the kinematics and the vector
form factors of each event computed once instead of once per M_A'.

Every number is the one :func:`farm.physics.ccqe.dxsec_dq2` computes (Llewellyn Smith, Phys.
Rep. 3 (1972) 261; docs/physics.md): the same operations in the same order on the same
constants, squares as products (what numpy's ``x**2`` is), no fused multiply-add; the test
compares the two bit for bit. Without numba the ratios come from ``dxsec_dq2`` itself.
"""

from __future__ import annotations

import numpy as np

from farm.physics import ccqe
from farm.physics.constants import (
    FERMI_CONSTANT_MEV2,
    GA_NUCLEON,
    GEV_MEV,
    HBARC2_MEV2_CM2,
    MASS_MUON_MEV,
    MASS_PION_MEV,
    V_UD,
)
from farm.reweight.compiled import CACHE, HAVE_NUMBA, numba

__all__ = ["ccqe_ratio_table"]

# the scalars dxsec_dq2 forms in Python, formed here by the same expressions
_M_I, _M_F = ccqe._masses(False)
_LEP2 = MASS_MUON_MEV**2
_M = ccqe._M_AVG
_M2 = _M * _M
_SCALARS = np.array(
    [
        ccqe.threshold_mev(lepton_mass_mev=MASS_MUON_MEV),  # 0 threshold
        2.0 * GEV_MEV,  # 1 the energy of an event below threshold (q2_range_mev2)
        _M_I**2,  # 2
        2.0 * _M_I,  # 3
        _LEP2,  # 4
        _M_F**2,  # 5
        -(MASS_MUON_MEV**2),  # 6
        4.0 * _M2,  # 7
        ccqe.MV2_MEV2,  # 8
        1.0 + ccqe.ANOMALOUS_MOMENT_DIFFERENCE,  # 9
        ccqe.ANOMALOUS_MOMENT_DIFFERENCE,  # 10
        GA_NUCLEON,  # 11
        2.0 * _M2,  # 12
        MASS_PION_MEV**2,  # 13
        _M2,  # 14
        _LEP2 / (4.0 * _M2),  # 15
        4.0 * _M,  # 16
        _M2**2,  # 17
        _M2 * FERMI_CONSTANT_MEV2**2 * V_UD**2,  # 18
        8.0 * np.pi,  # 19
        HBARC2_MEV2_CM2,  # 20
    ]
)

if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=CACHE)
    def _ccqe_ratio_numba(enu, q2_mev2, ma2_nominal, ma2, constant):
        threshold, below_e, m_i2, two_m_i, lep2, m_f2, minus_lep2 = constant[:7]
        four_m2, mv2, one_xi, xi, g_a, two_m2, pion2, m2 = constant[7:15]
        lep2_4m2, four_m, m2_2, pre, eight_pi, hbarc2 = constant[15:21]
        n = enu.size
        n_v = ma2.size
        out = np.ones((n_v, n))
        for i in range(n):
            e = enu[i]
            q2 = q2_mev2[i]
            # q2_range_mev2
            above = (e >= threshold) & (e > 0.0)
            e_kin = e if above else below_e
            s = m_i2 + two_m_i * e_kin
            root_s = np.sqrt(s)
            enu_cm = (s - m_i2) / (2.0 * root_s)
            el_cm = (s + lep2 - m_f2) / (2.0 * root_s)
            pl_cm = np.sqrt(max(el_cm * el_cm - lep2, 0.0))
            q2_min = minus_lep2 + 2.0 * enu_cm * (el_cm - pl_cm)
            q2_max = minus_lep2 + 2.0 * enu_cm * (el_cm + pl_cm)
            if not above:
                q2_min = np.nan
                q2_max = np.nan
            inside = (q2 >= q2_min) & (q2 <= q2_max)
            if not inside:
                continue  # zero at every M_A: the ratio is 1 (farm.reweight.knobs._ratio)
            # dxsec_dq2, what does not depend on M_A
            e_safe = e
            tau = q2 / four_m2
            dipole = 1.0 + q2 / mv2
            g_dipole = 1.0 / (dipole * dipole)
            f1 = g_dipole * (1.0 + tau * one_xi) / (1.0 + tau)
            xi_f2 = g_dipole * xi / (1.0 + tau)
            s_minus_u = four_m * e_safe - q2 - lep2
            prefactor = pre / (eight_pi * (e_safe * e_safe))
            nominal = 0.0
            for v in range(-1, n_v):
                big = ma2_nominal if v < 0 else ma2[v]
                axial = 1.0 + q2 / big
                f_a = g_a / (axial * axial)
                f_p = two_m2 * f_a / (pion2 + q2)
                f1_xi = f1 + xi_f2
                fa_fp = f_a + 2.0 * f_p
                inner = (
                    (1.0 + tau) * (f_a * f_a)
                    - (1.0 - tau) * (f1 * f1)
                    + tau * (1.0 - tau) * (xi_f2 * xi_f2)
                    + 4.0 * tau * f1 * xi_f2
                    - lep2_4m2
                    * (f1_xi * f1_xi + fa_fp * fa_fp - (q2 / m2 + 4.0) * (f_p * f_p))
                )
                a_term = (lep2 + q2) / m2 * inner
                b_term = q2 / m2 * f_a * (f1 + xi_f2)
                c_term = 0.25 * (f_a * f_a + f1 * f1 + tau * (xi_f2 * xi_f2))
                bracket = (
                    a_term
                    + -1.0 * b_term * s_minus_u / m2
                    + c_term * (s_minus_u * s_minus_u) / m2_2
                )
                value = prefactor * bracket * hbarc2
                if v < 0:
                    nominal = value
                elif nominal > 0:
                    out[v, i] = value / nominal
        return out


def _ccqe_ratio_numpy(enu, q2_mev2, ma_nominal, ma_values):
    nominal = ccqe.dxsec_dq2(enu, q2_mev2, ma_mev=ma_nominal)
    out = np.ones((ma_values.size, enu.size))
    for v, ma in enumerate(ma_values):
        np.divide(
            ccqe.dxsec_dq2(enu, q2_mev2, ma_mev=ma), nominal, out=out[v], where=nominal > 0
        )
    return out


def ccqe_ratio_table(
    enu_mev: np.ndarray, q2_mev2: np.ndarray, ma_nominal: float, ma_values: np.ndarray
) -> np.ndarray:
    """dσ/dQ²(M_A = ``ma_values[v]``) / dσ/dQ²(M_A = ``ma_nominal``) for each event, shape
    (V, n); 1 where the nominal cross section is 0 (outside the kinematic range). The bits of
    ``farm.physics.ccqe.dxsec_dq2`` (ν_μ, the defaults) divided as ``np.divide`` does."""
    enu = np.ascontiguousarray(enu_mev, dtype=np.float64)
    q2 = np.ascontiguousarray(q2_mev2, dtype=np.float64)
    values = [ma_nominal, *(ma_values.tolist() if isinstance(ma_values, np.ndarray) else ma_values)]
    if not HAVE_NUMBA:
        return _ccqe_ratio_numpy(enu, q2, values[0], np.asarray(values[1:]))
    # M_A² as dxsec_dq2 forms it: ``ma_mev**2`` of the value it is given
    ma2 = np.array([ma**2 for ma in values], dtype=np.float64)
    return _ccqe_ratio_numba(enu, q2, float(ma2[0]), ma2[1:], _SCALARS)
