"""Detector response kernels: quenching, light yield, resolution, thresholds, ν tagging.

Pure and vectorised (docs/physics.md §5, §7). Functions that draw random
numbers take a :class:`numpy.random.Generator` as their first argument ``rng`` and draw the
same number of variates per event whatever the parameters, so that universes that change a
parameter reuse the same random numbers (correlated throws, smooth response).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfc, expit

from farm.physics.constants import MASS_MUON_MEV, MASS_NEUTRON_MEV, MASS_PROTON_MEV

__all__ = [
    "ACCIDENTAL_TAG_FRACTION",
    "CSI_EFFICIENCY_COEFFICIENTS",
    "CSI_LIGHT_YIELD_PE_PER_KEVEE",
    "CSI_QUENCHING_COEFFICIENTS",
    "CSI_QUENCHING_MAX_ENR_MEV",
    "LAR_QF_INTERCEPT",
    "LAR_QF_SLOPE_PER_KEVNR",
    "QUENCHING_MODELS",
    "TAG_EFFICIENCY",
    "TAG_REL_RESOLUTION",
    "TAG_TIME_RESOLUTION_PS",
    "accidental_tag_fraction",
    "csi_efficiency",
    "csi_quenched_energy_mev",
    "draw_tags",
    "gaussian_resolution",
    "lar_quenching_factor",
    "lindhard_quenching_factor",
    "photoelectrons",
    "qe_neutrino_energy_mev",
    "quenched_energy_mev",
    "threshold_efficiency",
]

FloatArray = NDArray[np.float64]

# --- Quenching --------------------------------------------------------------------------------

CSI_QUENCHING_COEFFICIENTS = (0.0554628, 4.30681, -111.707, 840.384)
"""CsI[Na] E_ee[MeV] = Σ c_k x^k (k = 1..4), x = E_nr in MeV (COHERENT, PRL 129, 081801 (2022),
from the global fit of arXiv:2111.02477)."""

CSI_QUENCHING_MAX_ENR_MEV = 0.06
"""Upper end of the recoil range the CsI polynomial was fitted to (3–60 keVnr,
arXiv:2111.02477). Above it the quartic turns up (QF 21 % at 100 keVnr against 9 % at
60 keVnr), so :func:`csi_quenched_energy_mev` holds the quenching factor at its 60 keVnr value."""

LAR_QF_INTERCEPT = 0.246
LAR_QF_SLOPE_PER_KEVNR = 0.00078
"""LAr QF = 0.246 + 0.00078 T[keVnr] (COHERENT, PRL 126, 012002 (2021))."""

QUENCHING_MODELS = ("csi", "lar", "lindhard")


def _nonnegative(name: str, x: ArrayLike) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if np.any(arr < 0) or np.any(np.isnan(arr)):
        msg = f"{name} must be >= 0 and not NaN"
        raise ValueError(msg)
    return arr


def _csi_polynomial(x: FloatArray, c: tuple[float, float, float, float]) -> FloatArray:
    return x * (c[0] + x * (c[1] + x * (c[2] + x * c[3])))


def csi_quenched_energy_mev(
    enr_mev: ArrayLike,
    *,
    coefficients: tuple[float, float, float, float] = CSI_QUENCHING_COEFFICIENTS,
) -> FloatArray:
    """Electron-equivalent energy of a CsI[Na] nuclear recoil, in MeVee.

    E_ee = 0.0554628 x + 4.30681 x² − 111.707 x³ + 840.384 x⁴, x = E_nr[MeV] (COHERENT 2021;
    monotonic on the fitted range). For x > 0.06 MeV (:data:`CSI_QUENCHING_MAX_ENR_MEV`) the
    quenching factor is held at its value there: E_ee = x · E_ee(0.06)/0.06. ``coefficients``
    replaces the four polynomial coefficients (quenching systematics).

    Raises
    ------
    ValueError
        For negative or NaN recoil energies.
    """
    x = _nonnegative("enr_mev", enr_mev)
    x_max = CSI_QUENCHING_MAX_ENR_MEV
    qf_at_max = _csi_polynomial(np.float64(x_max), coefficients) / x_max
    return np.where(x <= x_max, _csi_polynomial(np.minimum(x, x_max), coefficients), qf_at_max * x)


def lar_quenching_factor(
    t_kevnr: ArrayLike,
    *,
    intercept: float = LAR_QF_INTERCEPT,
    slope_per_kevnr: float = LAR_QF_SLOPE_PER_KEVNR,
) -> FloatArray:
    """Liquid-argon quenching factor, QF = 0.246 + 0.00078 T[keVnr] (COHERENT, PRL 126, 012002
    (2021), fitted over ≈ 0–125 keVnr; 0.2616 at 20 keVnr)."""
    t = _nonnegative("t_kevnr", t_kevnr)
    return intercept + slope_per_kevnr * t


def lindhard_quenching_factor(
    enr_mev: ArrayLike, z: float, a: float, *, k: float | None = None
) -> FloatArray:
    """Lindhard quenching factor (Lindhard et al., Mat. Fys. Medd. Dan. Vid. Selsk. 33, 10
    (1963); parametrisation of Lewin & Smith, Astropart. Phys. 6, 87 (1996)).

    QF = k g(ε) / (1 + k g(ε)), g = 3ε^0.15 + 0.7ε^0.6 + ε, ε = 11.5 Z^(−7/3) E[keV],
    k = 0.133 Z^(2/3) A^(−1/2) unless given (k = 0.157 for natural Ge; QF(1 keVnr) = 0.171).
    """
    e_kev = _nonnegative("enr_mev", enr_mev) * 1.0e3
    k_value = 0.133 * z ** (2.0 / 3.0) / np.sqrt(a) if k is None else k
    eps = 11.5 * z ** (-7.0 / 3.0) * e_kev
    kg = k_value * (3.0 * eps**0.15 + 0.7 * eps**0.6 + eps)
    return kg / (1.0 + kg)


def quenched_energy_mev(
    enr_mev: ArrayLike, model: Literal["csi", "lar", "lindhard"], **params: Any
) -> FloatArray:
    """Visible (electron-equivalent) energy in MeVee of a nuclear recoil of ``enr_mev``.

    ``"csi"``: :func:`csi_quenched_energy_mev`; ``"lar"``: E · :func:`lar_quenching_factor`;
    ``"lindhard"``: E · :func:`lindhard_quenching_factor` (needs ``z=`` and ``a=``).
    ``params`` go to that function.
    """
    if model == "csi":
        return csi_quenched_energy_mev(enr_mev, **params)
    if model == "lar":
        enr = np.asarray(enr_mev, dtype=np.float64)
        return enr * lar_quenching_factor(enr * 1.0e3, **params)
    if model == "lindhard":
        return np.asarray(enr_mev, dtype=np.float64) * lindhard_quenching_factor(enr_mev, **params)
    msg = f"unknown quenching model {model!r}; allowed: {', '.join(map(repr, QUENCHING_MODELS))}"
    raise ValueError(msg)


# --- Light, resolution, thresholds ------------------------------------------------------------

CSI_LIGHT_YIELD_PE_PER_KEVEE = 13.35
"""COHERENT CsI[Na] light yield (PRL 129, 081801 (2022))."""

CSI_EFFICIENCY_COEFFICIENTS = (1.32045, 0.285979, 10.8646, -0.333322)
"""(a, k, x0, b) of the COHERENT 2021 CsI acceptance in PE (data release of arXiv:2110.07730)."""


def photoelectrons(
    rng: np.random.Generator,
    e_ee_kev: ArrayLike,
    light_yield_pe_per_kevee: float = CSI_LIGHT_YIELD_PE_PER_KEVEE,
) -> NDArray[np.int64]:
    """Number of photoelectrons, Poisson with mean ``light_yield · E_ee[keVee]``."""
    mean_pe = _nonnegative("e_ee_kev", e_ee_kev) * light_yield_pe_per_kevee
    return rng.poisson(mean_pe).astype(np.int64)


def gaussian_resolution(
    rng: np.random.Generator,
    energy: ArrayLike,
    *,
    stochastic: float,
    constant: float,
    noise: float = 0.0,
) -> FloatArray:
    """Smear ``energy`` with σ/E = stochastic/√E ⊕ constant ⊕ noise/E (⊕: in quadrature).

    σ = √(stochastic² E + constant² E² + noise²), in the unit of ``energy`` (``stochastic`` in
    √unit, ``noise`` in unit). The result E + σ·N(0, 1) is clipped at 0.
    """
    e = _nonnegative("energy", energy)
    sigma = np.sqrt(stochastic**2 * e + (constant * e) ** 2 + noise**2)
    return np.maximum(e + sigma * rng.standard_normal(e.shape), 0.0)


def threshold_efficiency(x: ArrayLike, *, threshold: float, width: float) -> FloatArray:
    """Smooth turn-on: a step at ``threshold`` smeared by a Gaussian of sd ``width``.

    ε(x) = ½ erfc((threshold − x)/(√2 width)): 0.5 at the threshold, 0.841 one width above;
    ``width = 0`` gives the hard step ε = [x ≥ threshold].
    """
    if not width >= 0:
        msg = f"width must be >= 0 (a Gaussian sd in the unit of x); got {width}"
        raise ValueError(msg)
    xs = np.asarray(x, dtype=np.float64)
    if width == 0:
        return (xs >= threshold).astype(np.float64)
    return 0.5 * erfc((threshold - xs) / (np.sqrt(2.0) * width))


def csi_efficiency(
    pe: ArrayLike,
    *,
    coefficients: tuple[float, float, float, float] = CSI_EFFICIENCY_COEFFICIENTS,
) -> FloatArray:
    """COHERENT 2021 CsI[Na] signal acceptance versus photoelectrons.

    ε(x) = max(a / (1 + exp(−k (x − x0))) + b, 0), (a, k, x0, b) = (1.32045, 0.285979,
    10.8646, −0.333322): zero below 7.07 PE, 0.327 at 10.86 PE, 0.982 at 30 PE, → 0.987.
    """
    a, k, x0, b = coefficients
    x = np.asarray(pe, dtype=np.float64)
    return np.maximum(a * expit(k * (x - x0)) + b, 0.0)


# --- nuSCOPE tagging ---------------------------------------------------------------------------

TAG_EFFICIENCY = 0.8
"""Fraction of π-decay ν_μ CC events tagged at 300 ps time resolution (docs/physics.md)."""
TAG_REL_RESOLUTION = 0.005
"""Relative E_ν resolution of a correct tag (sub-percent; docs/physics.md)."""
TAG_TIME_RESOLUTION_PS = 300.0
ACCIDENTAL_TAG_FRACTION = 0.01
"""Fraction of tags made with a wrong parent at 300 ps. An assumption of this module, not a
published value: set it from a rate study of the beam line."""


def accidental_tag_fraction(
    time_resolution_ps: float,
    *,
    fraction_at_reference: float = ACCIDENTAL_TAG_FRACTION,
    reference_ps: float = TAG_TIME_RESOLUTION_PS,
) -> float:
    """Accidental-tag fraction at another time resolution.

    Accidental pairings are uncorrelated parents inside the coincidence window, whose width is
    a fixed number of σ_t; at a given beam rate they scale linearly with σ_t:
    f(σ_t) = min(1, f_ref · σ_t / σ_ref). The E_ν resolution of a correct tag is set by the
    spectrometers' momentum and angle resolution and does not scale with σ_t.
    """
    if not time_resolution_ps > 0:
        msg = f"time_resolution_ps must be > 0; got {time_resolution_ps}"
        raise ValueError(msg)
    return min(1.0, fraction_at_reference * time_resolution_ps / reference_ps)


def _check_fraction(name: str, value: ArrayLike) -> None:
    arr = np.asarray(value, dtype=np.float64)
    if np.any(~((arr >= 0) & (arr <= 1))):
        msg = f"{name} must lie in [0, 1]"
        raise ValueError(msg)


def draw_tags(
    rng: np.random.Generator,
    enu_mev: ArrayLike,
    *,
    efficiency: ArrayLike = TAG_EFFICIENCY,
    rel_resolution: float = TAG_REL_RESOLUTION,
    accidental_fraction: float = ACCIDENTAL_TAG_FRACTION,
    accidental_pool_mev: ArrayLike | None = None,
) -> tuple[NDArray[np.bool_], FloatArray]:
    """Tag events with their parent meson and return the tagged neutrino energy.

    An event is tagged with probability ``efficiency`` (scalar or per event, e.g. 0 for
    K-decay ν). Of the tagged events a fraction ``accidental_fraction`` is paired with a wrong
    parent, whose neutrino energy is drawn uniformly from ``accidental_pool_mev`` (e.g. a
    sample of the flux spectrum) or, when it is None, from the true energies of this batch
    (the σ-weighted spectrum). The tagged energy is the parent's E_ν times
    (1 + rel_resolution · N(0, 1)), clipped at 0.

    Returns
    -------
    tagged : ndarray of bool
    etag_mev : ndarray of float
        Tagged neutrino energy in MeV; NaN where untagged.
    """
    enu = _nonnegative("enu_mev", enu_mev)
    _check_fraction("efficiency", efficiency)
    _check_fraction("accidental_fraction", accidental_fraction)
    if not rel_resolution >= 0:
        msg = f"rel_resolution must be >= 0; got {rel_resolution}"
        raise ValueError(msg)
    pool = enu.ravel() if accidental_pool_mev is None else _nonnegative("pool", accidental_pool_mev)
    pool = pool.ravel()
    if pool.size == 0 and enu.size > 0:
        msg = "accidental_pool_mev is empty; pass energies to draw wrong parents from, or None"
        raise ValueError(msg)
    u_tag = rng.random(enu.shape)
    u_accidental = rng.random(enu.shape)
    smear = rng.standard_normal(enu.shape)
    wrong = pool[rng.integers(0, max(pool.size, 1), size=enu.shape)] if enu.size else enu
    tagged = u_tag < efficiency
    parent_enu = np.where(u_accidental < accidental_fraction, wrong, enu)
    etag = np.maximum(parent_enu * (1.0 + rel_resolution * smear), 0.0)
    return tagged, np.where(tagged, etag, np.nan)


# --- Kinematic reconstruction ------------------------------------------------------------------

_INITIAL_FINAL_NUCLEON_MEV = {
    "neutron": (MASS_NEUTRON_MEV, MASS_PROTON_MEV),
    "proton": (MASS_PROTON_MEV, MASS_NEUTRON_MEV),
}


def qe_neutrino_energy_mev(
    plep_mev: ArrayLike,
    coslep: ArrayLike,
    *,
    binding_mev: float = 0.0,
    lepton_mass_mev: float = MASS_MUON_MEV,
    target: Literal["neutron", "proton"] = "neutron",
) -> FloatArray:
    """Neutrino energy from the charged lepton alone, assuming quasi-elastic scattering.

    E_ν = [2(M_i − E_b)E_l − (E_b² − 2M_i E_b + m_l² + ΔM²)] / [2(M_i − E_b − E_l + p_l cos θ)],
    ΔM² = M_i² − M_f², for a nucleon of energy M_i − E_b at rest (MiniBooNE, PRL 100, 032301
    (2008), Eq. 1). ``target="neutron"``: ν n → l⁻ p (M_i = M_n, M_f = M_p);
    ``"proton"``: ν̄ p → l⁺ n. Exact for free-nucleon kinematics (E_b = 0). NaN where the
    denominator is not positive (no quasi-elastic solution, e.g. after smearing).
    """
    try:
        m_i, m_f = _INITIAL_FINAL_NUCLEON_MEV[target]
    except KeyError:
        msg = f"unknown target {target!r}; allowed: 'neutron', 'proton'"
        raise ValueError(msg) from None
    p = _nonnegative("plep_mev", plep_mev)
    cos = np.asarray(coslep, dtype=np.float64)
    e_lep = np.sqrt(p * p + lepton_mass_mev**2)
    m_eff = m_i - binding_mev
    numerator = 2.0 * m_eff * e_lep - (
        binding_mev**2 - 2.0 * m_i * binding_mev + lepton_mass_mev**2 + m_i**2 - m_f**2
    )
    denominator = 2.0 * (m_eff - e_lep + p * cos)
    positive = denominator > 0
    return np.where(positive, numerator / np.where(positive, denominator, 1.0), np.nan)
