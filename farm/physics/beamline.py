"""The nuSCOPE monitored neutrino beam: π⁺/K⁺ decays in an instrumented tunnel (docs/physics.md).

400 GeV protons make secondaries; a transfer line selects π⁺ and K⁺ of 8.5 GeV/c ± 10 % and
sends them into a 40 m decay tunnel whose walls monitor the decay leptons. The hadron dump
closes the tunnel; the detector (500 t of LAr, 4 × 4 m² face) stands 25 m further on.

Neutrinos:

- ν_μ from π⁺ → μ⁺ν_μ (BR 0.99988) and K⁺ → μ⁺ν_μ (BR 0.6356), two-body,
  E_ν = (m_P² − m_μ²) / (2 (E_P − p_P cos θ)).
- ν_e from K⁺ → π⁰e⁺ν_e (K_e3, BR 0.0507). Three-body approximation: the rest-frame ν_e
  energy follows the K_e3 Dalitz density with m_e = 0, ρ ∝ f₊²(t) M_K (2E_e E_ν − M_K E'_π),
  f₊(t) = 1 + λ₊ t/m_π², λ₊ = 0.0297 (PDG), integrated over E_e once and tabulated; the ν_e
  direction is isotropic in the kaon frame (spin-0 parent) and independent of its energy.
- Left out (small, documented): K_μ3 (3.4 %), π_e2 (1.2 × 10⁻⁴), ν from muon decay in flight,
  decays in the transfer line before the tunnel, neutrinos entering through the sides.

Parents: a flat momentum bite (the ±10 % of a momentum-selecting line is closer to a box than
to a Gaussian), Gaussian spot and divergence at the tunnel entrance, decay point from the
exponential law truncated to the tunnel. Normalisation: ``secondaries_per_pot`` (π⁺ + K⁺ per
proton on target entering the tunnel in the bite) and ``kaon_to_pion_ratio``; defaults are
the approximate ENUBET static-line design values (≈ 4.6 × 10⁻³ π⁺ and ≈ 0.4 × 10⁻³ K⁺ per POT;
Acerbi et al., Eur. Phys. J. C 83 (2023) 964) and are meant to be configured.

Acceptance by forced direction: every sampled neutrino is aimed at a point drawn uniformly on
the detector face, and carries the weight

    w = A_face · cos α / d² · (1/4π) · (1 − β²) / (1 − β cos θ)² · P_decay(p)/⟨P_decay⟩,

the lab-frame angular density of an isotropic rest-frame emission times the solid angle of
the face element (d: decay point to face point, α: angle to the face normal, θ: angle to the
parent). The mean weight estimates the fraction of the neutrinos produced in the tunnel that
cross the face; with :func:`neutrinos_per_pot` it gives ν per POT through the face. No draw is
wasted and the radius on the face is covered uniformly (good for off-axis studies); events
near the axis carry the larger weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from farm.physics.constants import (
    MASS_KAON_MEV,
    MASS_MUON_MEV,
    MASS_PION_MEV,
    PION_LIFETIME_S,
    SPEED_OF_LIGHT_CM_S,
)

__all__ = [
    "BR_K_E3",
    "BR_K_MU2",
    "BR_PI_MU2",
    "KAON_LIFETIME_S",
    "KE3_LAMBDA_PLUS",
    "LAR_DENSITY_T_PER_M3",
    "MASS_PI0_MEV",
    "NUSCOPE_BEAMLINE",
    "PDG_KAON",
    "PDG_PION",
    "Beamline",
    "decay_probability",
    "enu_two_body",
    "ke3_rest_frame_pdf",
    "mean_decay_probability",
    "neutrinos_per_pot",
    "sample_beam_neutrinos",
    "sample_ke3_rest_frame_enu",
]

PDG_PION = 211
PDG_KAON = 321

KAON_LIFETIME_S = 1.2380e-8
"""K⁺ mean life (PDG)."""

MASS_PI0_MEV = 134.9768
"""π⁰ mass (PDG); not in farm.physics.constants."""
BR_PI_MU2 = 0.99988
BR_K_MU2 = 0.6356
BR_K_E3 = 0.0507
KE3_LAMBDA_PLUS = 0.0297
"""Linear slope of the K_e3 vector form factor f₊(t) = 1 + λ₊ t/m_π² (PDG)."""

LAR_DENSITY_T_PER_M3 = 1.396
_FLAVORS = ("numu", "nue")
_KE3_GRID = 1200
_BITE_NODES, _BITE_WEIGHTS = np.polynomial.legendre.leggauss(32)


@dataclass(frozen=True, kw_only=True)
class Beamline:
    """Geometry and normalisation of a monitored π/K decay tunnel (defaults: nuSCOPE).

    Coordinates: z along the beam from the tunnel entrance (m); x, y transverse (cm).
    """

    proton_energy_gev: float = 400.0
    secondary_momentum_mev: float = 8500.0
    momentum_bite: float = 0.10
    """Half-width of the flat momentum acceptance, as a fraction of the central momentum."""
    tunnel_length_m: float = 40.0
    dump_to_detector_m: float = 25.0
    face_half_width_cm: float = 200.0
    detector_mass_t: float = 500.0
    beam_sigma_cm: float = 3.0
    """Gaussian rms of the parent spot at the tunnel entrance, each transverse axis."""
    beam_divergence_mrad: float = 3.0
    """Gaussian rms of the parent slopes dx/dz, dy/dz."""
    secondaries_per_pot: float = 5.0e-3
    kaon_to_pion_ratio: float = 0.085

    def __post_init__(self) -> None:
        positive = {
            "secondary_momentum_mev": self.secondary_momentum_mev,
            "tunnel_length_m": self.tunnel_length_m,
            "face_half_width_cm": self.face_half_width_cm,
            "detector_mass_t": self.detector_mass_t,
            "secondaries_per_pot": self.secondaries_per_pot,
        }
        bad = [name for name, value in positive.items() if not value > 0.0]
        if bad:
            msg = f"Beamline fields {bad} must be positive"
            raise ValueError(msg)
        if not 0.0 <= self.momentum_bite < 1.0:
            msg = f"momentum_bite is a fraction in [0, 1), got {self.momentum_bite}"
            raise ValueError(msg)
        if self.dump_to_detector_m < 0.0 or self.kaon_to_pion_ratio < 0.0:
            msg = "dump_to_detector_m and kaon_to_pion_ratio must be non-negative"
            raise ValueError(msg)

    @property
    def face_z_m(self) -> float:
        """z of the detector face: end of the tunnel (dump) plus the dump-to-detector distance."""
        return self.tunnel_length_m + self.dump_to_detector_m

    @property
    def face_area_cm2(self) -> float:
        return (2.0 * self.face_half_width_cm) ** 2

    @property
    def detector_length_m(self) -> float:
        """LAr depth that holds ``detector_mass_t`` behind the face (22.4 m for 500 t, 4 × 4 m²)."""
        return self.detector_mass_t / (LAR_DENSITY_T_PER_M3 * self.face_area_cm2 * 1.0e-4)

    def parents_per_pot(self, parent: int) -> float:
        """π⁺ (211) or K⁺ (321) per POT entering the tunnel within the momentum bite."""
        share = {
            PDG_PION: 1.0 / (1.0 + self.kaon_to_pion_ratio),
            PDG_KAON: self.kaon_to_pion_ratio / (1.0 + self.kaon_to_pion_ratio),
        }
        return self.secondaries_per_pot * share[_check_parent(parent)]


NUSCOPE_BEAMLINE = Beamline()


def _check_parent(parent: int) -> int:
    if parent not in (PDG_PION, PDG_KAON):
        msg = f"parent must be {PDG_PION} (π⁺) or {PDG_KAON} (K⁺), got {parent}"
        raise ValueError(msg)
    return parent


_CTAU_PION_M = PION_LIFETIME_S * SPEED_OF_LIGHT_CM_S / 100.0
_CTAU_KAON_M = KAON_LIFETIME_S * SPEED_OF_LIGHT_CM_S / 100.0


def _mass_and_ctau_m(parent: int) -> tuple[float, float]:
    if _check_parent(parent) == PDG_PION:
        return MASS_PION_MEV, _CTAU_PION_M
    return MASS_KAON_MEV, _CTAU_KAON_M


def enu_two_body(
    m_parent_mev: ArrayLike, p_parent_mev: ArrayLike, cos_theta: ArrayLike
) -> NDArray[np.float64]:
    """Lab ν energy from P → μν in flight: E_ν = (m_P² − m_μ²) / (2 (E_P − p_P cos θ)).

    Forward (cos θ = 1) this is (1 − m_μ²/m_P²) E_P (1 + β)/2: 0.427 E_π, 0.954 E_K.
    """
    m = np.asarray(m_parent_mev, dtype=np.float64)
    p = np.asarray(p_parent_mev, dtype=np.float64)
    c = np.asarray(cos_theta, dtype=np.float64)
    e = np.sqrt(m**2 + p**2)
    # E − p cos θ = m²/(E + p) + p (1 − cos θ), free of cancellation for cos θ → 1.
    return (m**2 - MASS_MUON_MEV**2) / (2.0 * (m**2 / (e + p) + p * (1.0 - c)))


def decay_probability(parent: int, momentum_mev: ArrayLike, length_m: float) -> NDArray[np.float64]:
    """Probability that a parent decays within ``length_m``: 1 − exp(−L m/(p cτ))."""
    mass, ctau_m = _mass_and_ctau_m(parent)
    p = np.asarray(momentum_mev, dtype=np.float64)
    return -np.expm1(-length_m * mass / (p * ctau_m))


def mean_decay_probability(parent: int, beamline: Beamline = NUSCOPE_BEAMLINE) -> float:
    """Decay probability in the tunnel averaged over the flat momentum bite (8.1 % π, 46 % K)."""
    p = beamline.secondary_momentum_mev * (1.0 + beamline.momentum_bite * _BITE_NODES)
    return float(0.5 * _BITE_WEIGHTS @ decay_probability(parent, p, beamline.tunnel_length_m))


def _parent_yields(flavor: str, beamline: Beamline) -> dict[int, float]:
    """ν of ``flavor`` produced in the tunnel per POT, by parent."""
    if flavor not in _FLAVORS:
        msg = f"unknown beam flavour {flavor!r}; allowed: {', '.join(_FLAVORS)}"
        raise ValueError(msg)
    branching = {"numu": {PDG_PION: BR_PI_MU2, PDG_KAON: BR_K_MU2}, "nue": {PDG_KAON: BR_K_E3}}
    return {
        parent: beamline.parents_per_pot(parent) * mean_decay_probability(parent, beamline) * br
        for parent, br in branching[flavor].items()
    }


def neutrinos_per_pot(flavor: str, beamline: Beamline = NUSCOPE_BEAMLINE) -> float:
    """ν_μ (``"numu"``) or ν_e (``"nue"``) produced by decays in the tunnel per POT.

        Σ_P N_P/POT · ⟨P_decay⟩_P · BR(P → ν)

    Multiply by the mean weight of :func:`sample_beam_neutrinos` for ν per POT through the face.
    """
    return sum(_parent_yields(flavor, beamline).values())


# ---------------------------------------------------------------------------------------------
# K_e3 rest-frame ν_e spectrum
# ---------------------------------------------------------------------------------------------

_KE3_ENU_MAX_MEV = (MASS_KAON_MEV**2 - MASS_PI0_MEV**2) / (2.0 * MASS_KAON_MEV)


@lru_cache(maxsize=1)
def _ke3_tables() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(E_ν grid, pdf, inverse-CDF table on a uniform u grid) of the rest-frame K_e3 ν_e."""
    edges = np.linspace(0.0, _KE3_ENU_MAX_MEV, _KE3_GRID + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    ee = centres[:, None]
    enu = centres[None, :]
    e_pi = MASS_KAON_MEV - ee - enu
    e_pi_max = (MASS_KAON_MEV**2 + MASS_PI0_MEV**2) / (2.0 * MASS_KAON_MEV)
    e_pi_prime = e_pi_max - e_pi
    # Physical region (m_e = 0): 0 ≤ E'_π ≤ 2 E_e E_ν / M_K, i.e. −1 ≤ cos θ_eν ≤ 1.
    inside = (e_pi_prime >= 0.0) & (e_pi_prime <= 2.0 * ee * enu / MASS_KAON_MEV)
    t = MASS_KAON_MEV**2 + MASS_PI0_MEV**2 - 2.0 * MASS_KAON_MEV * e_pi
    f_plus = 1.0 + KE3_LAMBDA_PLUS * t / MASS_PI0_MEV**2
    density = np.where(inside, f_plus**2 * (2.0 * ee * enu - MASS_KAON_MEV * e_pi_prime), 0.0)
    pdf = density.sum(axis=0)
    pdf /= pdf.sum() * (edges[1] - edges[0])
    cdf = np.concatenate(([0.0], np.cumsum(pdf) * (edges[1] - edges[0])))
    u_grid = np.linspace(0.0, 1.0, 4 * _KE3_GRID + 1)
    inverse = np.interp(u_grid, cdf, edges)
    for array in (centres, pdf, inverse):
        array.setflags(write=False)
    return centres, pdf, inverse


def ke3_rest_frame_pdf(enu_mev: ArrayLike) -> NDArray[np.float64]:
    """Density (per MeV) of the ν_e energy in the K⁺ rest frame for K_e3 (tabulated; see module)."""
    centres, pdf, _ = _ke3_tables()
    e = np.asarray(enu_mev, dtype=np.float64)
    inside = (e >= 0.0) & (e <= _KE3_ENU_MAX_MEV)
    return np.where(inside, np.interp(e, centres, pdf), 0.0)


def sample_ke3_rest_frame_enu(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Draw rest-frame K_e3 ν_e energies (MeV) by table look-up of the inverse CDF."""
    _, _, inverse = _ke3_tables()
    size = inverse.size - 1
    scaled = rng.random(n) * size
    index = np.minimum(scaled.astype(np.intp), size - 1)
    return inverse[index] + (scaled - index) * (inverse[index + 1] - inverse[index])


# ---------------------------------------------------------------------------------------------
# Sampler
# ---------------------------------------------------------------------------------------------


def _draw_parents(
    rng: np.random.Generator, n: int, flavor: str, beamline: Beamline
) -> NDArray[np.int32]:
    """Parent PDG codes in proportion to their ν yield in the tunnel."""
    yields = _parent_yields(flavor, beamline)
    codes = np.array(list(yields), dtype=np.int32)
    shares = np.array(list(yields.values()))
    edges = np.cumsum(shares / shares.sum())[:-1]
    return codes[np.searchsorted(edges, rng.random(n), side="right")]


def _gaussian(rng: np.random.Generator, sigma: float, n: int) -> NDArray[np.float64]:
    return rng.normal(0.0, sigma, n) if sigma > 0.0 else np.zeros(n)


def sample_beam_neutrinos(
    rng: np.random.Generator,
    n: int,
    *,
    flavor: str = "numu",
    beamline: Beamline = NUSCOPE_BEAMLINE,
) -> dict[str, NDArray[np.float64] | NDArray[np.int32]]:
    """Draw ``n`` beam neutrinos of one flavour aimed at the detector face (forced direction).

    Returns a dict of arrays of length ``n``: ``enu_mev``; ``x_cm``, ``y_cm``, ``radius_cm``
    (crossing point on the face, beam axis at 0); ``slope_x``, ``slope_y`` (dx/dz, dy/dz of the
    neutrino, to carry it into the detector); ``parent`` (211/321); ``parent_momentum_mev``;
    ``decay_z_m`` (from the tunnel entrance); ``weight`` (see the module docstring: the mean
    weight is the fraction of tunnel-produced neutrinos of this flavour that cross the face).

    Parent species are drawn in proportion to their ν yield in the tunnel
    (:func:`neutrinos_per_pot`), so events of both parents share one weight scale.
    """
    parent = _draw_parents(rng, n, flavor, beamline)
    is_kaon = parent == PDG_KAON
    mass = np.where(is_kaon, MASS_KAON_MEV, MASS_PION_MEV)
    ctau_m = np.where(is_kaon, _CTAU_KAON_M, _CTAU_PION_M)
    bite = beamline.momentum_bite * (2.0 * rng.random(n) - 1.0)
    momentum = beamline.secondary_momentum_mev * (1.0 + bite)

    # Decay point: exponential law truncated to the tunnel, by inverse CDF.
    decay_length_m = momentum / mass * ctau_m
    p_decay = -np.expm1(-beamline.tunnel_length_m / decay_length_m)
    mean_p_decay = np.where(
        is_kaon,
        mean_decay_probability(PDG_KAON, beamline),
        mean_decay_probability(PDG_PION, beamline),
    )
    decay_z_m = -decay_length_m * np.log1p(-rng.random(n) * p_decay)

    divergence = beamline.beam_divergence_mrad * 1.0e-3
    parent_slope_x = _gaussian(rng, divergence, n)
    parent_slope_y = _gaussian(rng, divergence, n)
    decay_x_cm = _gaussian(rng, beamline.beam_sigma_cm, n) + parent_slope_x * decay_z_m * 100.0
    decay_y_cm = _gaussian(rng, beamline.beam_sigma_cm, n) + parent_slope_y * decay_z_m * 100.0

    half = beamline.face_half_width_cm
    x_cm = half * (2.0 * rng.random(n) - 1.0)
    y_cm = half * (2.0 * rng.random(n) - 1.0)
    dx = x_cm - decay_x_cm
    dy = y_cm - decay_y_cm
    dz = (beamline.face_z_m - decay_z_m) * 100.0
    distance = np.sqrt(dx * dx + dy * dy + dz * dz)

    # 1 − cos θ between the ν (d̂) and the parent (û), as |d̂ × û|² / (1 + d̂·û): no cancellation.
    norm_u = np.sqrt(1.0 + parent_slope_x**2 + parent_slope_y**2)
    dot = (dx * parent_slope_x + dy * parent_slope_y + dz) / (distance * norm_u)
    cross2 = (
        (dy - dz * parent_slope_y) ** 2
        + (dz * parent_slope_x - dx) ** 2
        + (dx * parent_slope_y - dy * parent_slope_x) ** 2
    ) / (distance * norm_u) ** 2
    one_minus_cos = cross2 / (1.0 + dot)

    energy = np.sqrt(momentum**2 + mass**2)
    beta = momentum / energy
    one_minus_beta_cos = mass**2 / (energy * (energy + momentum)) + beta * one_minus_cos
    if flavor == "nue":
        enu_rest = sample_ke3_rest_frame_enu(rng, n)
    else:
        enu_rest = (mass**2 - MASS_MUON_MEV**2) / (2.0 * mass)
    enu = enu_rest * mass / (energy * one_minus_beta_cos)

    jacobian = beamline.face_area_cm2 * dz / distance**3
    angular = (mass / energy) ** 2 / (4.0 * np.pi * one_minus_beta_cos**2)
    weight = jacobian * angular * p_decay / mean_p_decay

    return {
        "enu_mev": enu,
        "x_cm": x_cm,
        "y_cm": y_cm,
        "radius_cm": np.hypot(x_cm, y_cm),
        "slope_x": dx / dz,
        "slope_y": dy / dz,
        "parent": parent,
        "parent_momentum_mev": momentum,
        "decay_z_m": decay_z_m,
        "weight": weight,
    }
