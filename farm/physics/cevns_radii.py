"""CEvNS with separate neutron and proton form factors: the cross section a fit of R_n needs.

The weak charge of a nucleus is carried almost entirely by its neutrons, so CEvNS measures the
neutron distribution (Amanik & McLaughlin, J. Phys. G 36, 015105 (2009); Cadeddu et al., PRL 120,
072501 (2018), arXiv:1710.02730). Written with a neutron and a proton form factor,

    dσ/dT = G_F² M/(4π) · [Q_n F_n(q) + Q_p F_p(q)]² · (1 − T/E − M T/(2E²)),

    corrected:  Q_n = −2 N g_V^n,   Q_p = −2 Z g_V^p(sin²θ_W),  g_V^p = 0.0227 − 2 (sin²θ_W − 0.23857)
    tree level: Q_n = N,            Q_p = −(1 − 4 sin²θ_W) Z

(the couplings of :func:`farm.physics.cevns.weak_charge`; Q_n + Q_p = Q_W). Each form factor is
Helm's (or Klein–Nystrand's) with its own rms radius R_n, R_p (fm), the default being the
A^(1/3) radius of :func:`farm.physics.cevns.helm_rms_radius_fm` for both, at which this module
gives :func:`farm.physics.cevns.total_xsec` (same quadrature, tests/test_fit_model.py).

Integration as in :mod:`farm.physics.cevns`: 64-point Gauss–Legendre in u = √(T/T_max), stopped
at q = 16 fm⁻¹. Cross sections per nucleus in cm², energies in MeV.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from farm.physics.cevns import (
    Couplings,
    FormFactorModel,
    max_recoil_mev,
    momentum_transfer_mev,
    nuclear_form_factor,
)
from farm.physics.constants import (
    FERMI_CONSTANT_MEV2,
    GV_NEUTRON,
    GV_PROTON,
    HBARC2_MEV2_CM2,
    HBARC_MEV_FM,
    SIN2W_LOW_Q2,
)
from farm.physics.nuclei import Target, get_target

__all__ = ["nucleon_charges", "total_xsec_radii"]

_NODES = 64
_X, _W = np.polynomial.legendre.leggauss(_NODES)
_U = 0.5 * (_X + 1.0)
_WU = 0.5 * _W
_Q_CUT_FM = 16.0
_BLOCK = max(1, (1 << 14) // _NODES)


def nucleon_charges(
    target: str | Target, couplings: Couplings = "corrected", sin2w: float = SIN2W_LOW_Q2
) -> tuple[float, float]:
    """(Q_n, Q_p), the neutron and proton parts of the weak charge, Q_n + Q_p = Q_W.

    Examples
    --------
    >>> qn, qp = nucleon_charges("Ar40", "tree", 0.2312)
    >>> round(qn + qp, 4)
    20.6464
    """
    nucleus = get_target(target)
    if couplings == "corrected":
        gv_proton = GV_PROTON - 2.0 * (sin2w - SIN2W_LOW_Q2)
        return -2.0 * nucleus.n * GV_NEUTRON, -2.0 * nucleus.z * gv_proton
    if couplings == "tree":
        return float(nucleus.n), -(1.0 - 4.0 * sin2w) * nucleus.z
    msg = f"unknown couplings {couplings!r}; allowed: 'corrected', 'tree'"
    raise ValueError(msg)


def total_xsec_radii(
    enu_mev: ArrayLike,
    target: str | Target,
    *,
    couplings: Couplings = "corrected",
    sin2w: float = SIN2W_LOW_Q2,
    form_factor: FormFactorModel = "helm",
    rn_fm: float | None = None,
    rp_fm: float | None = None,
) -> NDArray[np.float64]:
    """Total CEvNS cross section per nucleus in cm² with neutron radius ``rn_fm``.

    σ(E) = G_F² M/(4π) (ħc)² ∫₀^T_max [Q_n F_n(q) + Q_p F_p(q)]² (1 − T/E − MT/(2E²)) dT,
    F_n with rms radius ``rn_fm`` and F_p with ``rp_fm`` (None: the model's default radius).
    ``form_factor=None`` sets F_n = F_p = 1, where the radii do not matter.

    Raises
    ------
    ValueError
        For negative or NaN energies, an unknown target or couplings, or a radius at or below
        the smearing's own (√3 s = 1.559 fm for Helm).
    """
    enu = np.asarray(enu_mev, dtype=np.float64)
    if np.any(~(enu >= 0.0)):
        msg = "enu_mev must be >= 0 (MeV) and not NaN"
        raise ValueError(msg)
    nucleus = get_target(target)
    qn, qp = nucleon_charges(nucleus, couplings, sin2w)
    mass = nucleus.mass_mev
    flat = enu.ravel()
    out = np.empty(flat.shape)
    t_cut = (
        np.inf if form_factor is None else np.sqrt(mass**2 + (_Q_CUT_FM * HBARC_MEV_FM) ** 2) - mass
    )
    for start in range(0, flat.size, _BLOCK):
        e = flat[start : start + _BLOCK, None]
        t_max = max_recoil_mev(e, mass)
        u_max = np.sqrt(np.minimum(t_max, t_cut) / np.where(t_max > 0.0, t_max, 1.0))
        u = u_max * _U
        t = t_max * u * u
        e_safe = np.where(e > 0.0, e, 1.0)
        kinematic = np.maximum(1.0 - t * (1.0 / e_safe + mass / (2.0 * e_safe * e_safe)), 0.0)
        if form_factor is None:
            amplitude = np.full(t.shape, qn + qp)
        else:
            q = momentum_transfer_mev(t, mass)
            fn = nuclear_form_factor(q, nucleus.a, model=form_factor, rms_radius_fm=rn_fm)
            fp = (
                fn
                if rp_fm == rn_fm
                else nuclear_form_factor(q, nucleus.a, model=form_factor, rms_radius_fm=rp_fm)
            )
            amplitude = qn * fn + qp * fp
        integrand = amplitude * amplitude * kinematic
        out[start : start + _BLOCK] = ((integrand * u) @ _WU) * 2.0 * t_max[:, 0] * u_max[:, 0]
    prefactor = FERMI_CONSTANT_MEV2**2 * mass / (4.0 * np.pi) * HBARC2_MEV2_CM2
    return (out * prefactor).reshape(enu.shape)
