"""Coherent elastic neutrino–nucleus scattering (CEvNS) cross sections (docs/physics.md).

Differential cross section in the nuclear recoil kinetic energy T (Freedman, PRD 9, 1389
(1974); Drukier & Stodolsky, PRD 30, 2295 (1984); e.g. COHERENT, Science 357, 1123 (2017)):

    dσ/dT = G_F² M / (4π) · Q_W² · F²(q) · (1 − T/E − M T / (2E²)),   0 ≤ T ≤ T_max,

    T_max = 2E² / (M + 2E),    q = √(2MT + T²),

with the weak charge in the normalisation Q_W ≈ N (not N/2):

    tree level:   Q_W = N − (1 − 4 sin²θ_W) Z,
    corrected:    Q_W = −2 (Z g_V^p + N g_V^n),  g_V^p = 0.0227, g_V^n = −0.5117 (PDG).

With F = 1, σ = G_F² M Q_W²/(4π) · [T_max − T_max²/(2E) − M T_max²/(4E²)] ≈ G_F² E² Q_W²/(4π)
for E ≪ M. Reference value (docs/physics.md §4): ⁴⁰Ar, tree level with sin²θ_W = 0.2312, Helm:
σ(30 MeV) = 1.44 × 10⁻³⁹ cm²; this normalisation gives 1.438 × 10⁻³⁹ cm².

Cross sections are per nucleus in cm² (dσ/dT in cm²/MeV); energies in MeV.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from farm.physics.constants import (
    FERMI_CONSTANT_MEV2,
    GV_NEUTRON,
    GV_PROTON,
    HBARC2_MEV2_CM2,
    HBARC_MEV_FM,
    SIN2W_LOW_Q2,
)
from farm.physics.nuclei import Target, get_target

__all__ = [
    "COUPLINGS",
    "FORM_FACTORS",
    "HELM_SKIN_FM",
    "KLEIN_NYSTRAND_RANGE_FM",
    "QUADRATURE_NODES",
    "Couplings",
    "FormFactorModel",
    "dxsec_dT",
    "helm_form_factor",
    "helm_rms_radius_fm",
    "klein_nystrand_form_factor",
    "max_recoil_mev",
    "min_enu_mev",
    "momentum_transfer_mev",
    "nuclear_form_factor",
    "total_xsec",
    "weak_charge",
]

Couplings = Literal["corrected", "tree"]
FormFactorModel = Literal["helm", "klein"] | None

COUPLINGS: tuple[str, ...] = ("corrected", "tree")
FORM_FACTORS: tuple[str | None, ...] = ("helm", "klein", None)

HELM_SKIN_FM = 0.9
"""Helm surface thickness s (Lewin & Smith, Astropart. Phys. 6, 87 (1996))."""
_HELM_A_FM = 0.52
_HELM_C_SLOPE_FM = 1.23
_HELM_C_OFFSET_FM = 0.60

KLEIN_NYSTRAND_RANGE_FM = 0.7
"""Range a_k of the Yukawa potential folded with the hard sphere (Klein & Nystrand 1999)."""
_KN_RADIUS_SLOPE_FM = 1.2

QUADRATURE_NODES = 64
"""Gauss–Legendre nodes of :func:`total_xsec` in u = √(T/T_max)."""
_GL_X, _GL_W = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
_GL_U = 0.5 * (_GL_X + 1.0)
_GL_WU = 0.5 * _GL_W
_EVALUATIONS_PER_BLOCK = 1 << 14  # ~128 kB temporaries stay in cache

# Form-factor integrals stop at q = 16 fm⁻¹ (3.2 GeV): beyond it Helm's F² is below e⁻²⁰⁰ and
# Klein–Nystrand's q⁻⁸ tail holds < 4e-8 of σ (worst case A = 1).
_Q_CUT_FM = 16.0

# Below this argument 3 j₁(x)/x is summed as a series: the closed form loses ~eps/x² there.
_SERIES_BELOW = 0.05


def _float_array(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def _check_nonnegative(name: str, x: NDArray[np.float64]) -> None:
    if np.any(x < 0) or np.any(np.isnan(x)):
        msg = f"{name} must be >= 0 (MeV) and not NaN"
        raise ValueError(msg)


def weak_charge(
    target: str | Target, couplings: Couplings = "corrected", sin2w: float = SIN2W_LOW_Q2
) -> float:
    """Weak nuclear charge Q_W in the normalisation Q_W ≈ N.

    ``"tree"``: Q_W = N − (1 − 4 sin²θ_W) Z. ``"corrected"``: Q_W = −2 (Z g_V^p + N g_V^n)
    with the radiatively corrected g_V^p = 0.0227, g_V^n = −0.5117 (Erler & Su; PDG) at the
    low-Q² sin²θ_W = 0.23857; another ``sin2w`` moves g_V^p by its tree-level dependence,
    g_V^p → g_V^p − 2 (sin2w − 0.23857) (g_V^n does not depend on sin²θ_W at tree level), so
    dQ_W/d sin²θ_W = 4Z in both schemes.

    Examples
    --------
    >>> round(weak_charge("Ar40", "tree", 0.2312), 4)
    20.6464
    """
    nucleus = get_target(target)
    if couplings == "corrected":
        gv_proton = GV_PROTON - 2.0 * (sin2w - SIN2W_LOW_Q2)
        return -2.0 * (nucleus.z * gv_proton + nucleus.n * GV_NEUTRON)
    if couplings == "tree":
        return nucleus.n - (1.0 - 4.0 * sin2w) * nucleus.z
    msg = f"unknown couplings {couplings!r}; allowed: {', '.join(map(repr, COUPLINGS))}"
    raise ValueError(msg)


def max_recoil_mev(enu_mev: ArrayLike, mass_mev: ArrayLike) -> NDArray[np.float64]:
    """Largest nuclear recoil kinetic energy, T_max = 2E² / (M + 2E)."""
    enu = _float_array(enu_mev)
    return 2.0 * enu * enu / (_float_array(mass_mev) + 2.0 * enu)


def min_enu_mev(t_mev: ArrayLike, mass_mev: ArrayLike) -> NDArray[np.float64]:
    """Smallest neutrino energy that can give a recoil T: E_min = (T + √(T² + 2MT)) / 2.

    The inverse of :func:`max_recoil_mev`. For ⁴⁰Ar and T = 10 keV, E_min = 13.65 MeV: a
    10 keV recoil cap truncates the argon cross section above that energy.
    """
    t = _float_array(t_mev)
    return 0.5 * (t + np.sqrt(t * t + 2.0 * _float_array(mass_mev) * t))


def momentum_transfer_mev(t_mev: ArrayLike, mass_mev: ArrayLike) -> NDArray[np.float64]:
    """Three-momentum transfer to a nucleus at rest recoiling with T: q = √(2MT + T²)."""
    t = _float_array(t_mev)
    return np.sqrt(2.0 * _float_array(mass_mev) * t + t * t)


def _spherical_bessel_ratio(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """3 j₁(x)/x = 3 (sin x − x cos x)/x³, by its Taylor series near x = 0."""
    x2 = x * x
    small = x < _SERIES_BELOW
    safe = np.where(small, 1.0, x)
    closed = 3.0 * (np.sin(safe) - safe * np.cos(safe)) / (safe * safe * safe)
    series = 1.0 - x2 / 10.0 + x2 * x2 / 280.0 - x2 * x2 * x2 / 15120.0
    return np.where(small, series, closed)


def _check_rms_radius(rms_fm: NDArray[np.float64], minimum_fm2: float, model: str) -> None:
    if np.any(~(rms_fm * rms_fm > minimum_fm2)):
        msg = (
            f"rms_radius_fm must exceed {np.sqrt(minimum_fm2):.4f} fm for the {model} form "
            f"factor (its smearing alone has that rms radius)"
        )
        raise ValueError(msg)


def helm_rms_radius_fm(a: ArrayLike) -> NDArray[np.float64]:
    """Default rms radius of the Helm distribution: R² = (3/5) R₀² + 3s² with the standard R₀.

    The neutron-radius systematic scales this value.

    >>> round(float(helm_rms_radius_fm(40)), 3)
    3.397
    """
    c_fm = _HELM_C_SLOPE_FM * np.cbrt(_float_array(a)) - _HELM_C_OFFSET_FM
    r0_sq = c_fm**2 + (7.0 / 3.0) * np.pi**2 * _HELM_A_FM**2 - 5.0 * HELM_SKIN_FM**2
    return np.sqrt(0.6 * r0_sq + 3.0 * HELM_SKIN_FM**2)


def helm_r0_fm(a: ArrayLike, rms_radius_fm: ArrayLike | None = None) -> NDArray[np.float64]:
    """The Helm box radius R₀: standard (c, a, s) or from an rms radius, R₀² = (5/3)(R² − 3s²)."""
    if rms_radius_fm is None:
        c_fm = _HELM_C_SLOPE_FM * np.cbrt(_float_array(a)) - _HELM_C_OFFSET_FM
        return np.sqrt(c_fm**2 + (7.0 / 3.0) * np.pi**2 * _HELM_A_FM**2 - 5.0 * HELM_SKIN_FM**2)
    rms = _float_array(rms_radius_fm)
    _check_rms_radius(rms, 3.0 * HELM_SKIN_FM**2, "Helm")
    return np.sqrt((5.0 / 3.0) * (rms * rms - 3.0 * HELM_SKIN_FM**2))


def helm_radius_weight(
    q_mev: ArrayLike, a: ArrayLike, rms_radius_fm: ArrayLike
) -> NDArray[np.float64]:
    """F²(q; R)/F²(q; R_default) for the Helm form factor: the Gaussian skin cancels, leaving
    [j(q R₀')/j(q R₀)]² with j(x) = 3 j₁(x)/x; 1 where F(q; R_default) = 0.
    """
    q_fm = _float_array(q_mev) / HBARC_MEV_FM
    nominal = _spherical_bessel_ratio(q_fm * helm_r0_fm(a))
    shifted = _spherical_bessel_ratio(q_fm * helm_r0_fm(a, rms_radius_fm))
    out = np.ones_like(nominal)
    np.divide(shifted, nominal, out=out, where=nominal != 0.0)
    return out * out


def helm_form_factor(
    q_mev: ArrayLike, a: ArrayLike, *, rms_radius_fm: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Helm form factor (Helm, Phys. Rev. 104, 1466 (1956); Lewin & Smith 1996).

    F(q) = 3 j₁(qR₀)/(qR₀) · exp(−q²s²/2), s = 0.9 fm,
    R₀² = c² + (7/3)π²a² − 5s², c = 1.23 A^(1/3) − 0.60 fm, a = 0.52 fm.

    The Helm rms radius is R² = (3/5) R₀² + 3s². When ``rms_radius_fm`` (the rms radius of
    the neutron distribution, a systematic) is given, R₀² = (5/3)(R² − 3s²) instead.

    Parameters
    ----------
    q_mev : array_like
        Momentum transfer in MeV (converted with ħc to fm⁻¹).
    a : array_like
        Mass number A.
    rms_radius_fm : array_like, optional
        rms radius in fm; must exceed √3 s = 1.559 fm.
    """
    q_fm = _float_array(q_mev) / HBARC_MEV_FM
    if rms_radius_fm is None:
        c_fm = _HELM_C_SLOPE_FM * np.cbrt(_float_array(a)) - _HELM_C_OFFSET_FM
        r0_sq = c_fm**2 + (7.0 / 3.0) * np.pi**2 * _HELM_A_FM**2 - 5.0 * HELM_SKIN_FM**2
    else:
        rms = _float_array(rms_radius_fm)
        _check_rms_radius(rms, 3.0 * HELM_SKIN_FM**2, "Helm")
        r0_sq = (5.0 / 3.0) * (rms * rms - 3.0 * HELM_SKIN_FM**2)
    x = q_fm * np.sqrt(r0_sq)
    return _spherical_bessel_ratio(x) * np.exp(-0.5 * (q_fm * HELM_SKIN_FM) ** 2)


def klein_nystrand_form_factor(
    q_mev: ArrayLike, a: ArrayLike, *, rms_radius_fm: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Klein–Nystrand form factor (S. R. Klein & J. Nystrand, PRC 60, 014903 (1999)).

    A hard sphere of radius R_A folded with a Yukawa potential of range a_k = 0.7 fm:

    F(q) = 3 j₁(qR_A)/(qR_A) · 1/(1 + q²a_k²),  R_A = 1.2 A^(1/3) fm.

    Its rms radius is R² = (3/5) R_A² + 6 a_k² (hard sphere plus Yukawa, whose ⟨r²⟩ = 6a_k²).
    When ``rms_radius_fm`` is given, R_A² = (5/3)(R² − 6a_k²) with a_k fixed, so that both
    form factors move with the same physical radius.

    Parameters
    ----------
    q_mev : array_like
        Momentum transfer in MeV.
    a : array_like
        Mass number A.
    rms_radius_fm : array_like, optional
        rms radius in fm; must exceed √6 a_k = 1.715 fm.
    """
    q_fm = _float_array(q_mev) / HBARC_MEV_FM
    if rms_radius_fm is None:
        r_a = _KN_RADIUS_SLOPE_FM * np.cbrt(_float_array(a))
    else:
        rms = _float_array(rms_radius_fm)
        _check_rms_radius(rms, 6.0 * KLEIN_NYSTRAND_RANGE_FM**2, "Klein-Nystrand")
        r_a = np.sqrt((5.0 / 3.0) * (rms * rms - 6.0 * KLEIN_NYSTRAND_RANGE_FM**2))
    yukawa = 1.0 / (1.0 + (q_fm * KLEIN_NYSTRAND_RANGE_FM) ** 2)
    return _spherical_bessel_ratio(q_fm * r_a) * yukawa


def _check_form_factor(model: FormFactorModel) -> None:
    if model not in FORM_FACTORS:
        msg = f"unknown form_factor {model!r}; allowed: {', '.join(map(repr, FORM_FACTORS))}"
        raise ValueError(msg)


def nuclear_form_factor(
    q_mev: ArrayLike,
    a: ArrayLike,
    *,
    model: FormFactorModel = "helm",
    rms_radius_fm: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Form factor F(q) by model name: ``"helm"``, ``"klein"`` or None (F = 1)."""
    _check_form_factor(model)
    if model == "helm":
        return helm_form_factor(q_mev, a, rms_radius_fm=rms_radius_fm)
    if model == "klein":
        return klein_nystrand_form_factor(q_mev, a, rms_radius_fm=rms_radius_fm)
    return np.ones(np.broadcast_shapes(np.shape(q_mev), np.shape(a)))


def _prefactor_mev3(nucleus: Target, qw: float) -> float:
    """G_F² M Q_W² / (4π) in MeV⁻³."""
    return FERMI_CONSTANT_MEV2**2 * nucleus.mass_mev * qw * qw / (4.0 * np.pi)


def _recoil_shape(
    enu: NDArray[np.float64],
    t: NDArray[np.float64],
    nucleus: Target,
    model: FormFactorModel,
    rms_radius_fm: ArrayLike | None,
) -> NDArray[np.float64]:
    """F²(q) · (1 − T/E − MT/(2E²)) for E > 0 and 0 ≤ T ≤ T_max (not checked)."""
    mass = nucleus.mass_mev
    kinematic = np.maximum(1.0 - t * (1.0 / enu + mass / (2.0 * enu * enu)), 0.0)
    if model is None:
        return kinematic
    q = momentum_transfer_mev(t, mass)
    ff = nuclear_form_factor(q, nucleus.a, model=model, rms_radius_fm=rms_radius_fm)
    return ff * ff * kinematic


def dxsec_dT(
    enu_mev: ArrayLike,
    t_mev: ArrayLike,
    target: str | Target,
    *,
    couplings: Couplings = "corrected",
    sin2w: float = SIN2W_LOW_Q2,
    form_factor: FormFactorModel = "helm",
    rms_radius_fm: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """CEvNS dσ/dT per nucleus in cm²/MeV.

    dσ/dT = G_F² M/(4π) · Q_W² · F²(q) · (1 − T/E − MT/(2E²)) · (ħc)², zero for T < 0 or
    T > T_max = 2E²/(M + 2E). ``enu_mev``, ``t_mev`` (and an array ``rms_radius_fm``)
    broadcast against each other.

    Parameters
    ----------
    enu_mev : array_like
        Neutrino energy in MeV, ≥ 0.
    t_mev : array_like
        Nuclear recoil kinetic energy in MeV.
    target : str or Target
        A key of :data:`farm.physics.nuclei.TARGETS`.
    couplings : {"corrected", "tree"}
        Weak charge, see :func:`weak_charge`.
    sin2w : float
        sin²θ_W for tree-level couplings.
    form_factor : {"helm", "klein", None}
        Nuclear form factor; None for F = 1.
    rms_radius_fm : array_like, optional
        Neutron rms radius in fm (default: the model's A-scaling radius).

    Raises
    ------
    ValueError
        For negative or NaN energies and unknown target, couplings or form factor.
    """
    enu = _float_array(enu_mev)
    _check_nonnegative("enu_mev", enu)
    _check_form_factor(form_factor)
    nucleus = get_target(target)
    qw = weak_charge(nucleus, couplings, sin2w)
    t = _float_array(t_mev)
    allowed = (t >= 0.0) & (t <= max_recoil_mev(enu, nucleus.mass_mev)) & (enu > 0.0)
    e_safe = np.where(enu > 0.0, enu, 1.0)
    shape = _recoil_shape(e_safe, np.where(allowed, t, 0.0), nucleus, form_factor, rms_radius_fm)
    return np.where(allowed, shape * (_prefactor_mev3(nucleus, qw) * HBARC2_MEV2_CM2), 0.0)


def total_xsec(
    enu_mev: ArrayLike,
    target: str | Target,
    *,
    couplings: Couplings = "corrected",
    sin2w: float = SIN2W_LOW_Q2,
    form_factor: FormFactorModel = "helm",
    rms_radius_fm: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Total CEvNS cross section per nucleus in cm², σ(E) = ∫₀^T_max dσ/dT dT.

    Integrated with a fixed Gauss–Legendre rule of :data:`QUADRATURE_NODES` nodes in
    u = √(T/T_max), σ = ∫₀¹ dσ/dT · 2 T_max u du, so that q ∝ u and the form factor's
    diffraction pattern is evenly sampled however small the coherent region is against T_max.
    The integrand is a polynomial in u for F = 1 (the rule is then exact); with a form factor
    the rule stops at q = 16 fm⁻¹ and agrees with adaptive quadrature to < 1e-7 relative for
    every target here and 0.1 MeV ≤ E ≤ 20 GeV (< 1e-12 for Helm).
    Keywords as in :func:`dxsec_dT`; ``enu_mev`` and an array ``rms_radius_fm`` broadcast.

    Examples
    --------
    >>> f"{total_xsec(30.0, 'Ar40', couplings='tree', sin2w=0.2312):.3e}"
    '1.438e-39'
    """
    enu = _float_array(enu_mev)
    _check_nonnegative("enu_mev", enu)
    _check_form_factor(form_factor)
    nucleus = get_target(target)
    qw = weak_charge(nucleus, couplings, sin2w)
    if rms_radius_fm is None:
        shape = enu.shape
        radius_flat = None
    else:
        radius = _float_array(rms_radius_fm)
        shape = np.broadcast_shapes(enu.shape, radius.shape)
        radius_flat = np.broadcast_to(radius, shape).ravel()
    enu_flat = np.broadcast_to(enu, shape).ravel()
    out = np.empty(enu_flat.shape)
    mass = nucleus.mass_mev
    q_cut_mev = _Q_CUT_FM * HBARC_MEV_FM
    # With F = 1 the integrand is a polynomial in u and the rule is exact on [0, T_max].
    t_cut = np.inf if form_factor is None else np.sqrt(mass * mass + q_cut_mev**2) - mass
    block = max(1, _EVALUATIONS_PER_BLOCK // QUADRATURE_NODES)
    for start in range(0, enu_flat.size, block):
        e = enu_flat[start : start + block, None]
        r = None if radius_flat is None else radius_flat[start : start + block, None]
        t_max = max_recoil_mev(e, mass)
        u_max = np.sqrt(np.minimum(t_max, t_cut) / np.where(t_max > 0.0, t_max, 1.0))
        u = u_max * _GL_U
        e_safe = np.where(e > 0.0, e, 1.0)
        integrand = _recoil_shape(e_safe, t_max * u * u, nucleus, form_factor, r)
        jacobian = 2.0 * t_max[:, 0] * u_max[:, 0]
        out[start : start + block] = ((integrand * u) @ _GL_WU) * jacobian
    return (out * (_prefactor_mev3(nucleus, qw) * HBARC2_MEV2_CM2)).reshape(shape)
