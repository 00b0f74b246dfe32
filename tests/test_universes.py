"""Specifications of universe sets (issue 3 item 1, docs/internals.md §2 "Universe set").

A throw depends only on (base seed, systematic name, universe index); universe 0 is the central
value; unisim knobs sit exactly at ±σ; flux multisim throws follow the declared fractional
covariance; the set's checksum moves with anything that changes a number and nothing else.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from farm.config import SystematicSection
from farm.systematics.fluxbins import FluxBins
from farm.systematics.universes import (
    UniverseSet,
    build_universe_set,
    flux_fractional_covariance,
    throw_rng,
)

SEED = 4242
BINS = FluxBins.from_mapping({"nue": [0.0, 10.0, 20.0, 30.0, 40.0, 53.0], "numu": [29.0, 30.5]})

FLUX_NORM = SystematicSection(name="flux_normalization", kind="flux", normalization=0.10, throws=30)
RADIUS = SystematicSection(
    name="neutron_radius", kind="knob", parameter="cevns_rms_radius", sigma=0.03, throws=25
)
BRN = SystematicSection(
    name="brn_normalization", kind="knob", parameter="brn_norm", mode="unisim", sigma=0.25
)
BOOT = SystematicSection(name="mc_statistics", kind="bootstrap", throws=12)
SIN2W = SystematicSection(
    name="weak_mixing_angle", kind="knob", parameter="sin2w", sigma=0.002, throws=7
)


def _knob_throws(universes: UniverseSet, name: str, parameter: str) -> np.ndarray:
    return universes.knobs[parameter][universes.universes_of(name)]


def _flux_throws(universes: UniverseSet, name: str) -> np.ndarray:
    return universes.flux_ratio[universes.universes_of(name)]


# ---------------------------------------------------------------------------------------------
# layout of a set
# ---------------------------------------------------------------------------------------------


def test_universe_zero_is_the_central_value_and_each_systematic_owns_a_consecutive_range() -> None:
    u = build_universe_set([FLUX_NORM, RADIUS, BRN, BOOT], BINS, seed=SEED)
    assert u.n_universes == 1 + 30 + 25 + 2 + 12
    assert u.systematic_index[0] == -1
    assert_array_equal(u.flux_ratio[0], np.ones(BINS.n_bins))
    assert all(values[0] == 0.0 for values in u.knobs.values())
    assert u.bootstrap[0] == -1
    assert_array_equal(u.universes_of("flux_normalization"), np.arange(1, 31))
    assert_array_equal(u.universes_of("neutron_radius"), np.arange(31, 56))
    assert_array_equal(u.universes_of("brn_normalization"), [56, 57])
    assert_array_equal(u.universes_of("mc_statistics"), np.arange(58, 70))
    index = np.arange(70)
    assert_array_equal(u.is_flux(), (index >= 1) & (index < 31))
    assert u.groups == ("flux", "xsec", "background", "mcstat")


def test_non_flux_universes_keep_the_nominal_flux_and_bootstrap_replicas_are_consecutive() -> None:
    u = build_universe_set([FLUX_NORM, RADIUS, BRN, BOOT], BINS, seed=SEED)
    assert_array_equal(u.flux_ratio[~u.is_flux()], 1.0)
    replicas = u.bootstrap[u.universes_of("mc_statistics")]
    assert_array_equal(replicas - replicas[0], np.arange(12))
    assert replicas[0] >= 0
    assert_array_equal(np.delete(u.bootstrap, u.universes_of("mc_statistics")), -1)
    assert_array_equal(u.knobs["cevns_rms_radius"][u.universes_of("mc_statistics")], 0.0)


def test_unisim_knob_sits_at_exactly_plus_and_minus_sigma() -> None:
    u = build_universe_set([BRN], BINS, seed=SEED)
    assert _knob_throws(u, "brn_normalization", "brn_norm").tolist() == [0.25, -0.25]


def test_flux_systematics_refuse_unisim() -> None:
    flux_unisim = SystematicSection(name="f", kind="flux", normalization=0.1, mode="unisim")
    with pytest.raises(ValueError, match="multisim"):
        build_universe_set([flux_unisim], BINS, seed=SEED)


def test_a_flux_uncertainty_large_enough_to_throw_negative_fluxes_is_refused() -> None:
    huge = SystematicSection(name="f", kind="flux", normalization=0.6, throws=200)
    with pytest.raises(ValueError, match="negative flux"):
        build_universe_set([huge], BINS, seed=SEED)


# ---------------------------------------------------------------------------------------------
# a throw depends only on (seed, name, index)
# ---------------------------------------------------------------------------------------------


def test_knob_throws_do_not_depend_on_the_other_systematics_or_their_order() -> None:
    alone = build_universe_set([RADIUS], BINS, seed=SEED)
    everything = build_universe_set([FLUX_NORM, RADIUS, BRN, BOOT], BINS, seed=SEED)
    reordered = build_universe_set([BOOT, SIN2W, BRN, RADIUS, FLUX_NORM], BINS, seed=SEED)
    reference = _knob_throws(alone, "neutron_radius", "cevns_rms_radius")
    assert np.unique(reference).size == 25
    for u in (everything, reordered):
        assert_array_equal(_knob_throws(u, "neutron_radius", "cevns_rms_radius"), reference)


def test_flux_throws_do_not_depend_on_the_other_systematics_or_their_order() -> None:
    alone = build_universe_set([FLUX_NORM], BINS, seed=SEED)
    reordered = build_universe_set([SIN2W, BOOT, FLUX_NORM, RADIUS], BINS, seed=SEED)
    assert_array_equal(
        _flux_throws(reordered, "flux_normalization"), _flux_throws(alone, "flux_normalization")
    )


def test_a_throw_is_the_normal_draw_of_its_own_seeded_stream() -> None:
    # universe i of a multisim knob is σ · z with z the first normal of throw_rng(seed, name, i)
    u = build_universe_set([SIN2W], BINS, seed=SEED)
    expected = [0.002 * throw_rng(SEED, "weak_mixing_angle", i).standard_normal() for i in range(7)]
    assert_array_equal(_knob_throws(u, "weak_mixing_angle", "sin2w"), expected)


def test_fewer_universes_reproduce_the_first_throws_of_more() -> None:
    full = build_universe_set([FLUX_NORM, RADIUS], BINS, seed=SEED)
    short = build_universe_set([FLUX_NORM, RADIUS], BINS, seed=SEED, universes=10)
    assert short.n_universes == 21
    assert_array_equal(
        _knob_throws(short, "neutron_radius", "cevns_rms_radius"),
        _knob_throws(full, "neutron_radius", "cevns_rms_radius")[:10],
    )
    assert_array_equal(
        _flux_throws(short, "flux_normalization"), _flux_throws(full, "flux_normalization")[:10]
    )


def test_another_seed_or_another_name_gives_other_throws() -> None:
    base = _knob_throws(
        build_universe_set([RADIUS], BINS, seed=SEED), "neutron_radius", "cevns_rms_radius"
    )
    reseeded = _knob_throws(
        build_universe_set([RADIUS], BINS, seed=SEED + 1), "neutron_radius", "cevns_rms_radius"
    )
    renamed_syst = RADIUS.model_copy(update={"name": "neutron_radius_2"})
    renamed = _knob_throws(
        build_universe_set([renamed_syst], BINS, seed=SEED), "neutron_radius_2", "cevns_rms_radius"
    )
    assert np.all(base != reseeded)
    assert np.all(base != renamed)
    flux_a = _flux_throws(build_universe_set([FLUX_NORM], BINS, seed=1), "flux_normalization")
    flux_b = _flux_throws(build_universe_set([FLUX_NORM], BINS, seed=2), "flux_normalization")
    assert np.all(flux_a[:, 0] != flux_b[:, 0])


def test_throw_rng_streams_are_independent_across_indices() -> None:
    draws = np.array([throw_rng(SEED, "x", i).standard_normal() for i in range(4000)])
    # lag-1 autocorrelation of consecutive universes' draws vanishes within 5/sqrt(N)
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 5.0 / math.sqrt(4000)
    assert abs(draws.std() - 1.0) < 5.0 / math.sqrt(2 * 4000)


# ---------------------------------------------------------------------------------------------
# priors: multisim spreads and the flux covariance
# ---------------------------------------------------------------------------------------------


def test_multisim_knob_throws_have_the_declared_sigma() -> None:
    n = 20_000
    knob = SystematicSection(name="ma", kind="knob", parameter="ccqe_ma_mev", sigma=50.0, throws=n)
    values = _knob_throws(build_universe_set([knob], BINS, seed=SEED), "ma", "ccqe_ma_mev")
    # σ of the sample standard deviation ≈ σ/sqrt(2N) = 0.25 MeV; of the mean σ/sqrt(N) = 0.35 MeV
    assert abs(values.std() - 50.0) < 5 * 50.0 / math.sqrt(2 * n)
    assert abs(values.mean()) < 5 * 50.0 / math.sqrt(n)


def _expected_flux_covariance(
    normalization: float, shape: float, length: float, flavors: list[str]
) -> np.ndarray:
    """n² on every pair of touched bins plus s² exp(−Δ²/2ℓ²) within a flavour, Δ between the bins'
    ln geometric centres (a lower edge of 0 taken as 1 keV); written out bin by bin."""
    cells = []  # (flavour, ln centre) of every touched-or-not bin, in the global flux-bin order
    for flavor, edges in zip(BINS.flavors, BINS.edges, strict=True):
        for lo, hi in itertools.pairwise(edges):
            cells.append((flavor, math.log(math.sqrt(max(lo, 1e-3) * hi))))
    n = len(cells)
    cov = np.zeros((n, n))
    for a, (fa, xa) in enumerate(cells):
        for b, (fb, xb) in enumerate(cells):
            if fa in flavors and fb in flavors:
                cov[a, b] = normalization**2
                if fa == fb:
                    cov[a, b] += shape**2 * math.exp(-0.5 * ((xa - xb) / length) ** 2)
    return cov


def test_flux_fractional_covariance_is_normalisation_plus_a_gaussian_shape_kernel() -> None:
    syst = SystematicSection(
        name="f", kind="flux", normalization=0.05, shape=0.08, shape_correlation_length=0.4
    )
    assert_allclose(
        flux_fractional_covariance(syst, BINS),
        _expected_flux_covariance(0.05, 0.08, 0.4, ["nue", "numu"]),
        rtol=1e-14,
    )
    only_nue = syst.model_copy(update={"flavors": ["nue"]})
    assert_allclose(
        flux_fractional_covariance(only_nue, BINS),
        _expected_flux_covariance(0.05, 0.08, 0.4, ["nue"]),
        rtol=1e-14,
    )


def test_flux_covariance_of_an_undeclared_flavour_names_the_missing_edges() -> None:
    syst = SystematicSection(name="f", kind="flux", normalization=0.05, flavors=["nuebar"])
    with pytest.raises(ValueError, match="nuebar have no flux_edges_mev"):
        flux_fractional_covariance(syst, BINS)


def _assert_sample_covariance(ratio: np.ndarray, expected: np.ndarray) -> None:
    """Sample covariance of the throws about the nominal ratio 1, element by element within 5σ,
    σ_ab = sqrt((V_aa V_bb + V_ab²)/N) for Gaussian throws."""
    n = ratio.shape[0]
    dev = ratio - 1.0
    sample = dev.T @ dev / n
    sigma = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected**2) / n)
    assert np.all(np.abs(sample - expected) <= 5.0 * sigma + 1e-15)


def test_flux_normalisation_throws_move_every_bin_together_with_variance_normalisation_squared() -> (
    None
):
    syst = FLUX_NORM.model_copy(update={"throws": 20_000})
    ratio = build_universe_set([syst], BINS, seed=SEED).flux_ratio[1:]
    assert_array_equal(ratio[:, -1], 1.0)  # the untouched bin never moves
    touched = ratio[:, :-1]
    # one common factor per universe; the eigen-factor of the rank-1 covariance leaves round-off
    # eigenvalues (~1e-18) whose square roots add ~1e-9 per bin, so equality holds to 1e-7 only
    assert_allclose(touched, np.broadcast_to(touched[:, :1], touched.shape), rtol=1e-7)
    var = np.mean((touched[:, 0] - 1.0) ** 2)
    assert abs(var - 0.01) < 5 * 0.01 * math.sqrt(2 / 20_000)  # 0.01 ± 0.0005 (5σ)
    _assert_sample_covariance(touched, _expected_flux_covariance(0.10, 0.0, 1.0, ["nue", "numu"]))


def test_flux_shape_throws_have_the_declared_covariance() -> None:
    syst = SystematicSection(
        name="shape",
        kind="flux",
        normalization=0.03,
        shape=0.08,
        shape_correlation_length=0.5,
        flavors=["nue"],
        throws=20_000,
    )
    ratio = build_universe_set([syst], BINS, seed=SEED).flux_ratio[1:]
    assert_array_equal(
        ratio[:, BINS.flavor_slice("numu")], 1.0
    )  # an undeclared flavour is untouched
    expected = _expected_flux_covariance(0.03, 0.08, 0.5, ["nue"])
    _assert_sample_covariance(ratio[:, :-1], expected)
    # the throws are not a normalisation alone: neighbouring bins decorrelate
    corr = np.corrcoef(ratio[:, :5], rowvar=False)
    assert corr[0, 4] < 0.6 < corr[3, 4]


# ---------------------------------------------------------------------------------------------
# checksum
# ---------------------------------------------------------------------------------------------


def test_checksum_is_stable_for_the_same_definitions() -> None:
    a = build_universe_set([FLUX_NORM, RADIUS, BRN, BOOT], BINS, seed=SEED)
    b = build_universe_set([FLUX_NORM, RADIUS, BRN, BOOT], BINS, seed=SEED)
    assert a.checksum() == b.checksum()
    assert len(a.checksum()) == 32


def test_checksum_changes_when_anything_that_defines_a_number_changes() -> None:
    base = [FLUX_NORM, RADIUS, BRN, BOOT]
    variants = {
        "base": build_universe_set(base, BINS, seed=SEED),
        "seed": build_universe_set(base, BINS, seed=SEED + 1),
        "universes": build_universe_set(base, BINS, seed=SEED, universes=29),
        "sigma": build_universe_set(
            [FLUX_NORM, RADIUS.model_copy(update={"sigma": 0.031}), BRN, BOOT], BINS, seed=SEED
        ),
        "unisim sigma": build_universe_set(
            [FLUX_NORM, RADIUS, BRN.model_copy(update={"sigma": 0.2}), BOOT], BINS, seed=SEED
        ),
        "normalization": build_universe_set(
            [FLUX_NORM.model_copy(update={"normalization": 0.11}), RADIUS, BRN, BOOT],
            BINS,
            seed=SEED,
        ),
        "name": build_universe_set(
            [FLUX_NORM, RADIUS, BRN.model_copy(update={"name": "brn"}), BOOT], BINS, seed=SEED
        ),
        "group": build_universe_set(
            [FLUX_NORM, RADIUS, BRN.model_copy(update={"group": "beam"}), BOOT],
            BINS,
            seed=SEED,
        ),
        "parameter": build_universe_set(
            [FLUX_NORM, RADIUS, BRN.model_copy(update={"parameter": "nin_norm"}), BOOT],
            BINS,
            seed=SEED,
        ),
        "order": build_universe_set([RADIUS, FLUX_NORM, BRN, BOOT], BINS, seed=SEED),
        "bootstrap throws": build_universe_set(
            [FLUX_NORM, RADIUS, BRN, BOOT.model_copy(update={"throws": 13})], BINS, seed=SEED
        ),
        "one more": build_universe_set([*base, SIN2W], BINS, seed=SEED),
        "flux bins": build_universe_set(
            base, FluxBins.from_mapping({"nue": [0.0, 20.0, 53.0], "numu": [29.0, 30.5]}), seed=SEED
        ),
    }
    checksums = {name: u.checksum() for name, u in variants.items()}
    assert len(set(checksums.values())) == len(checksums), checksums


def test_two_bootstrap_systematics_draw_independent_replicas() -> None:
    other = BOOT.model_copy(update={"name": "mc_statistics_2"})
    u = build_universe_set([BOOT, other], BINS, seed=SEED)
    first = u.bootstrap[u.universes_of("mc_statistics")]
    second = u.bootstrap[u.universes_of("mc_statistics_2")]
    assert not np.intersect1d(first, second).size


def test_all_knob_universe_i_throws_every_knob_as_its_per_knob_universe_i() -> None:
    u = build_universe_set([FLUX_NORM, RADIUS, BRN, BOOT], BINS, seed=SEED, all_knob_universes=10)
    joint = u.universes_of("all_knobs")
    assert joint.size == 10
    per_knob = u.universes_of("neutron_radius")[:10]
    assert_array_equal(u.knobs["cevns_rms_radius"][joint], u.knobs["cevns_rms_radius"][per_knob])
    flux = u.universes_of("flux_normalization")[:10]
    assert_array_equal(u.flux_ratio[joint], u.flux_ratio[flux])
    assert u.in_total() == (True, True, True, True, False)
    assert not u.is_flux()[joint].any()
