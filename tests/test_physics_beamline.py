"""Specifications of the nuSCOPE π/K decay-tunnel neutrino beam."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from farm.physics import beamline as bl
from farm.physics.constants import MASS_KAON_MEV, MASS_MUON_MEV, MASS_PION_MEV

P_CENTRAL = 8500.0


def test_forward_pion_neutrino_carries_0_427_of_the_pion_energy():
    # E_ν(cos θ = 1) ≈ (1 − m_μ²/m_π²) E_π
    e_pion = np.hypot(MASS_PION_MEV, P_CENTRAL)
    fraction = float(bl.enu_two_body(MASS_PION_MEV, P_CENTRAL, 1.0)) / e_pion
    assert fraction == pytest.approx(1.0 - MASS_MUON_MEV**2 / MASS_PION_MEV**2, abs=1e-4)
    assert fraction == pytest.approx(0.427, abs=0.001)


def test_forward_kaon_neutrino_carries_0_954_of_the_kaon_energy():
    e_kaon = np.hypot(MASS_KAON_MEV, P_CENTRAL)
    fraction = float(bl.enu_two_body(MASS_KAON_MEV, P_CENTRAL, 1.0)) / e_kaon
    assert fraction == pytest.approx(0.954, abs=0.001)


def test_two_body_energy_falls_with_the_decay_angle():
    cos_theta = np.cos(np.array([0.0, 5e-3, 2e-2, 5e-2]))
    enu = bl.enu_two_body(MASS_PION_MEV, P_CENTRAL, cos_theta)
    assert np.all(np.diff(enu) < 0.0)
    # at θ = 1/γ the energy is half the forward one
    gamma = np.hypot(MASS_PION_MEV, P_CENTRAL) / MASS_PION_MEV
    half = bl.enu_two_body(MASS_PION_MEV, P_CENTRAL, np.cos(1.0 / gamma))
    assert float(half / enu[0]) == pytest.approx(0.5, rel=1e-3, abs=0)


def test_decay_probabilities_in_the_40_m_tunnel():
    # 1 − exp(−L m/(p cτ)): π 8.1 % (cτ = 7.80 m), K 46.6 % (cτ = 3.71 m) at 8.5 GeV/c
    assert bl.mean_decay_probability(bl.PDG_PION) == pytest.approx(0.0810, abs=0.0005)
    assert bl.mean_decay_probability(bl.PDG_KAON) == pytest.approx(0.466, abs=0.002)


def test_detector_geometry():
    beam = bl.NUSCOPE_BEAMLINE
    assert beam.face_z_m == 65.0
    assert beam.face_area_cm2 == pytest.approx(4.0e2 * 4.0e2, abs=0)
    # 500 t / (1.396 t/m³ · 16 m²) = 22.4 m of LAr
    assert beam.detector_length_m == pytest.approx(22.4, abs=0.05)


def test_neutrino_yield_per_pot_from_documented_parameters():
    beam = bl.NUSCOPE_BEAMLINE
    pions = beam.secondaries_per_pot / (1 + beam.kaon_to_pion_ratio)
    kaons = beam.secondaries_per_pot - pions
    expected_numu = (
        pions * bl.mean_decay_probability(211) * bl.BR_PI_MU2
        + kaons * bl.mean_decay_probability(321) * bl.BR_K_MU2
    )
    assert bl.neutrinos_per_pot("numu") == pytest.approx(expected_numu, rel=1e-12, abs=0)
    assert bl.neutrinos_per_pot("nue") == pytest.approx(
        kaons * bl.mean_decay_probability(321) * bl.BR_K_E3, rel=1e-12, abs=0
    )


def test_sampler_returns_the_documented_columns():
    sample = bl.sample_beam_neutrinos(np.random.default_rng(0), 10_000, flavor="numu")
    keys = {
        "enu_mev",
        "x_cm",
        "y_cm",
        "radius_cm",
        "parent",
        "parent_momentum_mev",
        "decay_z_m",
        "weight",
    }
    assert keys <= set(sample)
    assert all(len(v) == 10_000 for v in sample.values())
    assert set(np.unique(sample["parent"])) == {211, 321}
    assert np.all(np.abs(sample["x_cm"]) <= 200.0)
    assert np.all(np.abs(sample["y_cm"]) <= 200.0)
    assert np.all((sample["decay_z_m"] >= 0.0) & (sample["decay_z_m"] <= 40.0))
    assert np.all(np.abs(sample["parent_momentum_mev"] / P_CENTRAL - 1.0) <= 0.1)
    assert np.all(sample["weight"] > 0.0)


@pytest.mark.parametrize(("parent", "mass"), [(211, MASS_PION_MEV), (321, MASS_KAON_MEV)])
def test_sampled_energies_respect_the_two_body_endpoint(parent, mass):
    sample = bl.sample_beam_neutrinos(np.random.default_rng(1), 200_000, flavor="numu")
    chosen = sample["parent"] == parent
    endpoint = float(bl.enu_two_body(mass, 1.1 * P_CENTRAL, 1.0))
    assert sample["enu_mev"][chosen].max() <= endpoint
    assert sample["enu_mev"][chosen].max() > 0.95 * endpoint


def test_off_axis_neutrinos_are_softer():
    # Narrow-band off-axis: larger radius on the face → lower E_ν (π parents).
    sample = bl.sample_beam_neutrinos(np.random.default_rng(2), 400_000, flavor="numu")
    pions = sample["parent"] == bl.PDG_PION
    radius, enu, w = sample["radius_cm"], sample["enu_mev"], sample["weight"]
    means = [
        np.average(
            enu[pions & (radius >= lo) & (radius < hi)],
            weights=w[pions & (radius >= lo) & (radius < hi)],
        )
        for lo, hi in [(0, 50), (50, 100), (100, 150), (150, 200)]
    ]
    assert np.all(np.diff(means) < 0.0)
    assert means[0] > 2.0 * means[-1]


def _brute_force_acceptance(
    rng: np.random.Generator, beam: bl.Beamline, mass: float, n: int
) -> float:
    """Fraction of tunnel decays whose ν crosses the face, by boosting isotropic rest-frame ν."""
    ctau_m = {MASS_PION_MEV: 7.8045, MASS_KAON_MEV: 3.7115}[mass]
    p = P_CENTRAL * (1.0 + beam.momentum_bite * (2.0 * rng.random(n) - 1.0))
    decay_length = p / mass * ctau_m
    p_decay = -np.expm1(-beam.tunnel_length_m / decay_length)
    z = -decay_length * np.log1p(-rng.random(n) * p_decay)
    beta = p / np.hypot(p, mass)
    cos_rest = 2.0 * rng.random(n) - 1.0
    cos_lab = (cos_rest + beta) / (1.0 + beta * cos_rest)
    phi = 2.0 * np.pi * rng.random(n)
    tan_lab = np.sqrt(1.0 - cos_lab**2) / cos_lab
    r = (beam.face_z_m - z) * 100.0 * tan_lab
    hit = (
        (cos_lab > 0)
        & (np.abs(r * np.cos(phi)) <= beam.face_half_width_cm)
        & (np.abs(r * np.sin(phi)) <= beam.face_half_width_cm)
    )
    return float(np.mean(hit * p_decay) / np.mean(p_decay))


@pytest.mark.parametrize(
    ("flavor", "kaon_to_pion", "mass"),
    [("numu", 0.0, MASS_PION_MEV), ("nue", 0.085, MASS_KAON_MEV)],
)
def test_forced_direction_weights_equal_the_plain_acceptance(flavor, kaon_to_pion, mass):
    beam = replace(
        bl.NUSCOPE_BEAMLINE,
        beam_sigma_cm=0.0,
        beam_divergence_mrad=0.0,
        kaon_to_pion_ratio=kaon_to_pion,
    )
    weights = bl.sample_beam_neutrinos(
        np.random.default_rng(3), 1_000_000, flavor=flavor, beamline=beam
    )["weight"]
    acceptance = _brute_force_acceptance(np.random.default_rng(4), beam, mass, 2_000_000)
    error = weights.std() / np.sqrt(weights.size) + np.sqrt(acceptance / 2_000_000)
    assert weights.mean() == pytest.approx(acceptance, abs=5.0 * error)


def test_ke3_rest_frame_spectrum_is_normalised_and_ends_at_the_kinematic_limit():
    # E_max = (M_K² − m_π0²)/(2 M_K) = 228.4 MeV for m_e → 0
    e_max = (MASS_KAON_MEV**2 - 134.9768**2) / (2 * MASS_KAON_MEV)
    e = np.linspace(0.0, e_max, 20001)
    pdf = bl.ke3_rest_frame_pdf(e)
    assert np.trapezoid(pdf, e) == pytest.approx(1.0, abs=2e-3)
    assert float(bl.ke3_rest_frame_pdf(e_max + 1.0)) == 0.0
    draws = bl.sample_ke3_rest_frame_enu(np.random.default_rng(5), 500_000)
    assert draws.max() <= e_max
    assert draws.mean() == pytest.approx(np.trapezoid(e * pdf, e), abs=0.3)


def test_ke3_neutrinos_come_only_from_kaons():
    sample = bl.sample_beam_neutrinos(np.random.default_rng(6), 10_000, flavor="nue")
    assert np.all(sample["parent"] == bl.PDG_KAON)


def test_unknown_beam_flavour_is_rejected():
    with pytest.raises(ValueError, match="numu, nue"):
        bl.sample_beam_neutrinos(np.random.default_rng(0), 10, flavor="nutau")


def test_invalid_beamline_is_rejected():
    with pytest.raises(ValueError, match="momentum_bite"):
        bl.Beamline(momentum_bite=1.5)
