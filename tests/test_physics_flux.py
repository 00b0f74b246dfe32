"""Specifications of the SNS π-DAR source, the SNS yield, and the reactor ν̄_e spectrum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from farm.physics import flux, reactor
from farm.physics.constants import MASS_MUON_MEV, MASS_PION_MEV

DAYA_BAY = {"U235": 0.564, "U238": 0.076, "Pu239": 0.304, "Pu241": 0.056}


def _gauss_integral(f, lo: float, hi: float, n: int = 200) -> float:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    x = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
    return float(0.5 * (hi - lo) * weights @ f(x))


# --- π-DAR spectra -------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["nue", "numubar"])
def test_michel_spectrum_integrates_to_one_neutrino_per_decay(flavor):
    total = _gauss_integral(lambda e: flux.pidar_spectrum(flavor, e), 0.0, MASS_MUON_MEV / 2)
    assert total == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("flavor", "mean_mev"), [("nue", 31.70), ("numubar", 36.98)])
def test_michel_spectrum_means_are_the_published_values(flavor, mean_mev):
    # Michel spectra at rest: ⟨E⟩ = 0.6 m_μ/2 = 31.70 MeV (ν_e), 0.7 m_μ/2 = 36.98 MeV (ν̄_μ).
    mean = _gauss_integral(lambda e: e * flux.pidar_spectrum(flavor, e), 0.0, MASS_MUON_MEV / 2)
    assert mean == pytest.approx(mean_mev, abs=0.005)


@pytest.mark.parametrize(("flavor", "mean_mev"), [("nue", 31.70), ("numubar", 36.98)])
def test_sampled_michel_energies_reproduce_the_means(flavor, mean_mev):
    energies = flux.sample_pidar(np.random.default_rng(11), flavor, 2_000_000)
    # rms ≈ 10 MeV, so the standard error of the mean is ≈ 0.007 MeV; 0.035 MeV is 5σ.
    assert energies.mean() == pytest.approx(mean_mev, abs=0.035)
    assert energies.min() >= 0.0
    assert energies.max() <= MASS_MUON_MEV / 2


@pytest.mark.parametrize("flavor", ["nue", "numubar"])
def test_sampled_michel_histogram_follows_the_spectrum(flavor):
    energies = flux.sample_pidar(np.random.default_rng(5), flavor, 1_000_000)
    edges = np.linspace(0.0, MASS_MUON_MEV / 2, 11)
    counts, _ = np.histogram(energies, edges)
    expected = np.array(
        [
            _gauss_integral(lambda e: flux.pidar_spectrum(flavor, e), lo, hi, 20)
            for lo, hi in itertools.pairwise(edges)
        ]
    ) * len(energies)
    pulls = (counts - expected) / np.sqrt(expected)
    assert np.all(np.abs(pulls) < 5.0)


@pytest.mark.parametrize("flavor", ["nue", "numubar"])
def test_michel_sampler_is_the_exact_inverse_cdf(flavor):
    u = np.concatenate([np.linspace(0.0, 1.0, 100_001), [1e-12, 1e-7, 1.0 - 1e-7, 1.0 - 1e-12]])
    x = flux._michel_inverse_cdf(u, flavor)
    assert np.max(np.abs(flux._michel_cdf(x, flavor) - u)) < 1e-9
    assert np.all(np.diff(x[:100_001]) >= 0.0)


def test_prompt_numu_is_the_29_79_mev_line():
    expected = (MASS_PION_MEV**2 - MASS_MUON_MEV**2) / (2 * MASS_PION_MEV)
    assert flux.PIDAR_NUMU_LINE_MEV == pytest.approx(29.79, abs=0.005)
    assert flux.PIDAR_NUMU_LINE_MEV == pytest.approx(expected, rel=1e-15, abs=0)
    draws = flux.sample_pidar(np.random.default_rng(1), "numu", 1000)
    assert np.all(draws == flux.PIDAR_NUMU_LINE_MEV)


def test_asking_for_the_numu_spectrum_explains_it_is_a_line():
    with pytest.raises(ValueError, match="line"):
        flux.pidar_spectrum("numu", 30.0)


def test_unknown_pidar_flavour_is_rejected_with_the_allowed_ones():
    with pytest.raises(ValueError, match="nue"):
        flux.pidar_spectrum("nutau", 30.0)
    with pytest.raises(ValueError, match="numubar"):
        flux.sample_pidar_time_us(np.random.default_rng(0), "nuebar", 10)


def test_michel_spectrum_vanishes_outside_zero_to_the_endpoint():
    values = flux.pidar_spectrum("numubar", [-1.0, 0.0, 52.82, 52.84, 100.0])
    assert values[0] == 0.0
    assert values[1] == 0.0
    assert values[2] > 0.0  # ν̄_μ: 64/m_μ (x²)(3/4 − x) is 16/m_μ · 1/4 > 0 at the endpoint
    assert values[3] == 0.0
    assert values[4] == 0.0


# --- SNS timing ------------------------------------------------------------------------------


def test_prompt_times_follow_the_proton_pulse_and_pion_lifetime():
    times = flux.sample_pidar_time_us(np.random.default_rng(2), "numu", 1_000_000)
    sigma_pulse = 0.38 / (2 * np.sqrt(2 * np.log(2)))
    # mean = τ_π = 0.026 µs; variance = σ_pulse² + τ_π²
    assert times.mean() == pytest.approx(0.0260, abs=0.001)
    assert times.std() == pytest.approx(np.hypot(sigma_pulse, 0.0260), rel=0.01, abs=0)


def test_delayed_times_add_the_muon_lifetime():
    times = flux.sample_pidar_time_us(np.random.default_rng(3), "nue", 1_000_000)
    # mean = τ_π + τ_μ = 0.026 + 2.197 µs; a 2.2 µs exponential dominates the spread.
    assert times.mean() == pytest.approx(2.223, abs=0.01)
    assert np.mean(times > 6.0) == pytest.approx(np.exp(-6.0 / 2.197), abs=0.003)


# --- SNS yield and fluence ---------------------------------------------------------------------


def test_sns_yield_is_0_09_per_flavour_at_1_gev():
    # (0.28 − 1.12 + 1.79 − 0.68)/3 = 0.27/3
    assert float(flux.sns_yield_per_pot(1.0)) == pytest.approx(0.09, rel=1e-12, abs=0)


def test_sns_yield_at_984_mev_matches_coherent_within_the_normalisation_uncertainty():
    # COHERENT's SNS flux simulation: 0.0848 ν per flavour per proton at 0.984 GeV
    # (Phys. Rev. D 106, 032003 (2022)).
    value = float(flux.sns_yield_per_pot(0.984))
    assert abs(value / 0.0848 - 1.0) < flux.SNS_YIELD_UNCERTAINTY
    assert value == pytest.approx(0.08932, abs=1e-5)


def test_protons_per_second_are_power_over_kinetic_energy():
    # 1.4 MW / (1 GeV = 1.602176634e-10 J) = 8.738e15 /s
    assert float(flux.sns_pot_per_second(1.4, 1.0)) == pytest.approx(8.7381e15, rel=1e-4, abs=0)


def test_fluence_at_the_csi_detector_matches_a_hand_calculation():
    # 1.4 MW, 1 GeV, 1e7 s, 19.3 m: 8.7381e22 POT × 0.09 / (4π · 1930² cm²) = 1.6801e14 /cm²
    fluence = flux.sns_fluence_per_cm2(19.3, power_mw=1.4, proton_kinetic_gev=1.0, seconds=1.0e7)
    assert float(fluence) == pytest.approx(1.6801e14, rel=1e-4, abs=0)


def test_fluence_falls_as_inverse_square_of_distance():
    near, far = flux.sns_fluence_per_cm2(
        [10.0, 20.0], power_mw=1.0, proton_kinetic_gev=1.0, seconds=1.0
    )
    assert near / far == pytest.approx(4.0, rel=1e-12, abs=0)


# --- reactor spectrum ----------------------------------------------------------------------------

# Huber, PRC 84, 024617 (2011) for ²³⁵U, ²³⁹Pu, ²⁴¹Pu; Mueller et al., PRC 83, 054615 (2011) for
# ²³⁸U: written out independently of the module.
COEFFS = {
    "U235": [4.367, -4.577, 2.100, -0.5294, 0.06186, -0.002777],
    "Pu239": [4.757, -5.392, 2.563, -0.6596, 0.07820, -0.003536],
    "Pu241": [2.990, -2.882, 1.278, -0.3343, 0.03905, -0.001754],
    "U238": [0.4833, 0.1927, -0.1283, -0.006762, 0.002233, -0.0001536],
}


@pytest.mark.parametrize("enu", [2.0, 4.0, 6.0, 8.0])
def test_reactor_spectrum_is_the_huber_mueller_exponential_polynomial_in_its_range(enu):
    expected = sum(
        DAYA_BAY[iso] * np.exp(sum(a * enu**k for k, a in enumerate(COEFFS[iso]))) for iso in COEFFS
    )
    assert float(flux.reactor_spectrum(enu, DAYA_BAY)) == pytest.approx(expected, rel=1e-12, abs=0)


def test_reactor_extension_is_continuous_at_2_mev_and_vanishes_at_zero():
    below, at = flux.reactor_spectrum([2.0 - 1e-9, 2.0], DAYA_BAY)
    assert below == pytest.approx(at, rel=1e-8, abs=0)
    low = flux.reactor_spectrum([0.0, 0.01, 0.5, 1.0, 1.5], DAYA_BAY)
    assert low[0] == 0.0
    assert np.all(low[1:] > 0.0)
    # E² phase-space behaviour near zero: S(0.01)/S(0.02) ≈ 1/4
    ratio = flux.reactor_spectrum(0.01, DAYA_BAY) / flux.reactor_spectrum(0.02, DAYA_BAY)
    assert float(ratio) == pytest.approx(0.25, rel=0.01, abs=0)


def test_u235_spectrum_holds_about_six_antineutrinos_per_fission_two_above_ibd_threshold():
    # The commonly quoted ≈6 ν̄ per fission, ≈2 of them above the 1.8 MeV IBD threshold; the
    # extension below 2 MeV is calibrated to this (flux.REACTOR_LOW_ENERGY_TAPER_MEV).
    total = _gauss_integral(lambda e: flux.reactor_spectrum(e, {"U235": 1.0}), 0.0, 12.0, 400)
    above = _gauss_integral(lambda e: flux.reactor_spectrum(e, {"U235": 1.0}), 1.8, 12.0, 400)
    assert total == pytest.approx(6.1, abs=0.15)
    assert above == pytest.approx(1.95, abs=0.1)


def test_reactor_spectrum_falls_steadily_above_8_mev_and_stops_at_12():
    e = np.linspace(8.0, 12.0, 41)
    s = flux.reactor_spectrum(e, DAYA_BAY)
    assert np.all(np.diff(s) < 0.0)
    assert float(flux.reactor_spectrum(12.01, DAYA_BAY)) == 0.0


def test_fission_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        flux.reactor_spectrum(3.0, {"U235": 0.5, "Pu239": 0.3})


def test_unknown_isotope_error_lists_the_allowed_isotopes():
    with pytest.raises(ValueError, match="U235, U238, Pu239, Pu241"):
        flux.reactor_spectrum(3.0, {"U235": 0.9, "Th232": 0.1})


def test_negative_fission_fraction_is_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        flux.reactor_spectrum(3.0, {"U235": 1.1, "Pu239": -0.1})


def test_single_isotope_fractions_may_leave_the_others_out():
    assert float(flux.reactor_spectrum(3.0, {"U235": 1.0})) == pytest.approx(
        np.exp(sum(a * 3.0**k for k, a in enumerate(COEFFS["U235"]))), rel=1e-12, abs=0
    )


def test_spectrum_uncertainty_is_a_few_percent_in_the_fit_range_and_larger_outside():
    inside = flux.reactor_spectrum_uncertainty(np.linspace(2.0, 7.0, 11))
    assert np.all(inside <= 0.06)
    assert np.all(flux.reactor_spectrum_uncertainty([0.5, 1.0, 1.5]) > 0.1)
    assert np.all(flux.reactor_spectrum_uncertainty([9.0, 11.0]) > 0.1)


def test_sampled_reactor_energies_follow_the_spectrum_mean():
    rng = np.random.default_rng(7)
    draws = flux.sample_reactor(rng, DAYA_BAY, 1_000_000, 1.8, 10.0)
    norm = _gauss_integral(lambda e: flux.reactor_spectrum(e, DAYA_BAY), 1.8, 10.0)
    mean = _gauss_integral(lambda e: e * flux.reactor_spectrum(e, DAYA_BAY), 1.8, 10.0) / norm
    # rms ≈ 1.2 MeV: standard error 0.0012 MeV
    assert draws.mean() == pytest.approx(mean, abs=0.006)
    assert draws.min() >= 1.8
    assert draws.max() <= 10.0


def test_sampled_reactor_energies_follow_the_spectrum_in_its_far_tail():
    """Above 9 MeV the spectrum carries 3e-6 of the ν̄_e (Huber–Mueller continued): an inverse
    CDF tabulated in equal CDF steps put its last step's 1/8192 evenly up to 12 MeV, 27× too many
    draws there and ⟨E⁴⟩ (CEvNS-weighted energies) 1.4 % high."""
    n = 4_000_000
    draws = flux.sample_reactor(np.random.default_rng(9), DAYA_BAY, n, 0.0, 12.0)
    total = _gauss_integral(lambda e: flux.reactor_spectrum(e, DAYA_BAY), 0.0, 12.0, 400)
    for cut in (8.0, 9.0):
        above = _gauss_integral(lambda e: flux.reactor_spectrum(e, DAYA_BAY), cut, 12.0, 200)
        expected = n * above / total
        assert abs(np.count_nonzero(draws > cut) - expected) < 5.0 * np.sqrt(expected) + 1.0, cut
    e4 = _gauss_integral(lambda e: e**4 * flux.reactor_spectrum(e, DAYA_BAY), 0.0, 12.0, 400)
    error = np.std(draws**4) / np.sqrt(n)
    assert abs(np.mean(draws**4) - e4 / total) < 5.0 * error


def test_sampled_reactor_energies_below_2_mev_follow_the_extension():
    draws = flux.sample_reactor(np.random.default_rng(8), DAYA_BAY, 1_000_000, 0.0, 12.0)
    total = _gauss_integral(lambda e: flux.reactor_spectrum(e, DAYA_BAY), 0.0, 12.0, 400)
    below = _gauss_integral(lambda e: flux.reactor_spectrum(e, DAYA_BAY), 0.0, 1.0, 200)
    assert np.mean(draws < 1.0) == pytest.approx(below / total, abs=0.003)


# --- reactor power ---------------------------------------------------------------------------


def test_energy_per_fission_values():
    # Ma et al., PRC 88 (2013) 014605
    assert reactor.ENERGY_PER_FISSION_MEV == {
        "U235": 202.36,
        "U238": 205.99,
        "Pu239": 211.12,
        "Pu241": 214.26,
    }


def test_fission_rate_of_a_3_9_gw_core():
    # Σ f_i E_i = 0.564·202.36 + 0.076·205.99 + 0.304·211.12 + 0.056·214.26 = 205.965 MeV
    # 3.9e9 W / (205.965 MeV · 1.602176634e-13 J/MeV) = 1.18184e20 /s
    assert float(reactor.fission_rate_per_s(3900.0, DAYA_BAY)) == pytest.approx(
        1.18184e20, rel=1e-5, abs=0
    )
