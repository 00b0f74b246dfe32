"""Generated samples against physics (issue 2, item 6): counts, spectra, reproducibility, schema.

The references here are computed independently of the generators: flux × dσ/dT × targets is
integrated by Gauss–Legendre quadrature over E_ν and the recoil T (splitting the integrals where
the integrands have kinks), while the generators importance-sample one event at a time. The two
must agree within the Monte-Carlo error of Σw.

Every generator component draws a fixed number of events n, so the MC error of a component's Σw
is √(n · Var w) (sample variance of its weights). The Poisson estimate √(Σw²) = √(Σ(w − w̄)² + n w̄²)
adds the fluctuation of n that fixed-n sampling does not have; for the nearly flat weights of the
prompt ν_μ it is six times too large and would let a 1.5 % error pass unseen.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray
from scipy import integrate, stats

from farm.analysis.nominal_flux import flux_rule
from farm.config import FarmConfig, load_config
from farm.physics import cevns, detector, flux, ibd, lead, nuclei, reactor
from farm.physics.constants import (
    DELTA_NP_MEV,
    MASS_ELECTRON_MEV,
    MUON_LIFETIME_S,
    PION_LIFETIME_S,
)
from farm.samples.generate import generate_rows, generate_store, sample_model
from farm.store import COLUMNS, REQUIRED_COLUMNS, EventStore
from farm.store.schema import FLAVOR_PDG, Channel

Array = NDArray[np.float64]
Rows = dict[str, np.ndarray]

N_EVENTS = 200_000
N_IBD_EVENTS = 100_000  # the full Strumia–Vissani σ per event makes IBD the slowest generator
PIDAR_FLAVORS = ("numu", "nue", "numubar")
N_SIGMA = 4.0
"""Agreement required between Σw and the integral, in MC standard errors (seeds are fixed)."""

_GL_X, _GL_W = np.polynomial.legendre.leggauss(48)


# --- independent numerical references -----------------------------------------------------------


def gauss_legendre(lo: Array, hi: Array) -> tuple[Array, Array]:
    """48-node Gauss–Legendre nodes and weights on [lo, hi] for every element of lo, hi."""
    lo = np.asarray(lo, dtype=np.float64)[..., None]
    hi = np.asarray(hi, dtype=np.float64)[..., None]
    half = 0.5 * (hi - lo)
    return lo + half * (_GL_X + 1.0), half * _GL_W


def integrate_piecewise(f: Callable[[Array], Array], points: list[float], pieces: int = 8) -> float:
    """∫ f over [points[0], points[-1]], each interval between breakpoints cut into ``pieces``."""
    total = 0.0
    for lo, hi in itertools.pairwise(points):
        if hi > lo:
            edges = np.linspace(lo, hi, pieces + 1)
            t, w = gauss_legendre(edges[:-1], edges[1:])
            total += float(np.sum(w * f(t)))
    return total


def max_recoil(enu_mev: float, nucleus: str) -> float:
    return float(cevns.max_recoil_mev(enu_mev, nuclei.get_target(nucleus).mass_mev))


def pidar_fold(t_mev: Array, nucleus: str, flavor: str, form_factor: str | None = "helm") -> Array:
    """∫ dN/dE dσ/dT dE per stopped-π decay per nucleus, cm²/MeV.

    The prompt ν_μ is the line at 29.79 MeV; ν_e and ν̄_μ follow the Michel spectra from
    E_min(T) = (T + √(T² + 2MT))/2 to m_μ/2, where dσ/dT ≠ 0 and the integrand is smooth.
    """
    t = np.asarray(t_mev, dtype=np.float64)
    if flavor == "numu":
        return cevns.dxsec_dT(flux.PIDAR_NUMU_LINE_MEV, t, nucleus, form_factor=form_factor)
    emax = flux.MICHEL_ENDPOINT_MEV
    emin = np.minimum(cevns.min_enu_mev(t, nuclei.get_target(nucleus).mass_mev), emax)
    e, w = gauss_legendre(emin, np.full_like(t, emax))
    xsec = cevns.dxsec_dT(e, t[..., None], nucleus, form_factor=form_factor)
    return np.sum(w * flux.pidar_spectrum(flavor, e) * xsec, axis=-1)


def pidar_endpoint(flavor: str) -> float:
    return flux.PIDAR_NUMU_LINE_MEV if flavor == "numu" else flux.MICHEL_ENDPOINT_MEV


def sns_fluence(cfg: FarmConfig) -> float:
    src = cfg.source
    return float(
        flux.sns_fluence_per_cm2(
            src.distance_m,
            power_mw=src.beam_power_mw,
            proton_kinetic_gev=src.proton_kinetic_gev,
            seconds=src.seconds,
        )
    )


def target_nuclei(cfg: FarmConfig) -> dict[str, float]:
    """Number of nuclei of each nuclide in the detector: mass × nuclei per kg."""
    per_kg = nuclei.targets_per_kg(cfg.detector.material)
    return {name: count * cfg.detector.mass_kg for name, count in per_kg.items()}


def sns_expected(
    cfg: FarmConfig,
    flavor: str,
    lo: float,
    hi: float,
    efficiency: Callable[[Array], Array] | None = None,
    *,
    form_factor: str | None = "helm",
) -> float:
    """Φ · Σ_nuclei N ∫_lo^hi ε(T) ∫ dN/dE dσ/dT dE dT for one π-DAR flavour (ε = 1 if None)."""
    eff = efficiency or (lambda t: np.ones_like(t))
    total = 0.0
    for nucleus, count in target_nuclei(cfg).items():
        tmax = max_recoil(pidar_endpoint(flavor), nucleus)
        fold = lambda t, n=nucleus: pidar_fold(t, n, flavor, form_factor) * eff(t)  # noqa: E731
        total += count * integrate_piecewise(fold, [lo, min(hi, tmax)])
    return sns_fluence(cfg) * total


def csi_detection_efficiency(cfg: FarmConfig) -> Callable[[Array], Array]:
    """ε(T) = Σ_k Poisson(k; LY · E_ee(T)) · ε_CsI(k): quenching, PE statistics and acceptance."""
    k = np.arange(0, 400)
    eff_k = detector.csi_efficiency(k)

    def eff(t_mev: Array) -> Array:
        mean_pe = (
            detector.csi_quenched_energy_mev(t_mev) * 1e3 * cfg.detector.light_yield_pe_per_kevee
        )
        return np.sum(stats.poisson.pmf(k, mean_pe[..., None]) * eff_k, axis=-1)

    return eff


def time_window_efficiency(cfg: FarmConfig, flavor: str) -> float:
    """P(lo ≤ t < hi) for t = t_p + t_π (+ t_μ for the delayed flavours).

    t_p is Gaussian with the pulse FWHM, centred one FWHM after t = 0 (the window's zero is the
    onset of the proton pulse), t_π ~ Exp(26.0 ns), t_μ ~ Exp(2.197 µs). The prompt part is an
    exponentially modified Gaussian; the muon decay is folded in by quadrature.
    """
    fwhm = cfg.source.pulse_fwhm_us
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    tau_pi, tau_mu = PION_LIFETIME_S * 1e6, MUON_LIFETIME_S * 1e6
    lo, hi = cfg.detector.time_window_us
    prompt = stats.exponnorm(tau_pi / sigma, loc=fwhm, scale=sigma)
    if flavor == "numu":
        return float(prompt.cdf(hi) - prompt.cdf(lo))

    def muon_cdf(x: float) -> float:
        return float(-np.expm1(-max(x, 0.0) / tau_mu))

    value, _ = integrate.quad(
        lambda s: prompt.pdf(s) * (muon_cdf(hi - s) - muon_cdf(lo - s)),
        fwhm - 8.0 * sigma,
        fwhm + 8.0 * sigma + 30.0 * tau_pi,
        points=[lo, hi],
        limit=200,
    )
    return value


REACTOR_PIECES_MEV = (0.0, 2.0, 8.0, flux.REACTOR_MAX_ENERGY_MEV)
"""The spectrum changes model at 2 MeV (extension below the Huber–Mueller range)."""


def reactor_fluence(cfg: FarmConfig) -> float:
    """Fissions over the exposure / (4π L²), per cm²."""
    src = cfg.source
    fissions = (
        float(reactor.fission_rate_per_s(src.thermal_power_mw, src.fission_fractions)) * src.seconds
    )
    return fissions / (4.0 * np.pi * (src.distance_m * 100.0) ** 2)


def reactor_fold(t_mev: Array, nucleus: str, fractions: Mapping[str, float]) -> Array:
    """∫ S(E) dσ/dT dE per fission per nucleus (cm²/MeV), from E_min(T) to 12 MeV."""
    t = np.asarray(t_mev, dtype=np.float64)
    emin = cevns.min_enu_mev(t, nuclei.get_target(nucleus).mass_mev)
    total = np.zeros_like(t)
    for a, b in itertools.pairwise(REACTOR_PIECES_MEV):
        lo = np.clip(emin, a, b)
        e, w = gauss_legendre(lo, np.full_like(lo, b))
        integrand = flux.reactor_spectrum(e, fractions) * cevns.dxsec_dT(e, t[..., None], nucleus)
        total += np.sum(w * integrand, axis=-1)
    return total


def reactor_cevns_expected(cfg: FarmConfig, lo: float, hi: float) -> float:
    total = 0.0
    for nucleus, count in target_nuclei(cfg).items():
        tmax = max_recoil(flux.REACTOR_MAX_ENERGY_MEV, nucleus)
        if lo < tmax:
            fold = lambda t, n=nucleus: reactor_fold(t, n, cfg.source.fission_fractions)  # noqa: E731
            total += count * integrate_piecewise(fold, [lo, min(hi, tmax)], pieces=16)
    return reactor_fluence(cfg) * total


# --- Monte-Carlo errors ---------------------------------------------------------------------------


def sum_and_error(w: np.ndarray) -> tuple[float, float]:
    """Σw and its MC standard error √(n/(n−1) Σ(w − w̄)²) for a fixed number n of draws."""
    return float(w.sum()), float(np.sqrt(w.size) * w.std(ddof=1))


def binned_sums_and_covariance(
    x: np.ndarray, w: np.ndarray, groups: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted histogram and its MC covariance, summed over groups of fixed size (components).

    For n draws of y_i = w_i 1[x_i ∈ bin]: Cov(h) = n/(n−1) (diag Σ w² 1_b − h hᵀ/n) per group.
    """
    nbins = len(edges) - 1
    h_total = np.zeros(nbins)
    cov = np.zeros((nbins, nbins))
    for g in np.unique(groups):
        m = groups == g
        n = int(m.sum())
        h, _ = np.histogram(x[m], edges, weights=w[m])
        h2, _ = np.histogram(x[m], edges, weights=w[m] ** 2)
        h_total += h
        cov += n / (n - 1) * (np.diag(h2) - np.outer(h, h) / n)
    return h_total, cov


def chi2_pvalue(observed: np.ndarray, expected: np.ndarray, cov: np.ndarray) -> float:
    r = observed - expected
    chi2 = float(r @ np.linalg.solve(cov, r))
    return float(stats.chi2.sf(chi2, r.size))


# --- generated samples (module-scoped: each is generated once) ------------------------------------


def rows_of(name: str, events: int = N_EVENTS, **overrides: object) -> tuple[FarmConfig, Rows]:
    cfg = load_config(name, **{"generation.events": events, **overrides})
    return cfg, generate_rows(cfg, 0, events)


@pytest.fixture(scope="module")
def sns_csi() -> tuple[FarmConfig, Rows]:
    return rows_of("sns-csi")


@pytest.fixture(scope="module")
def sns_lar() -> tuple[FarmConfig, Rows]:
    return rows_of("sns-lar")


@pytest.fixture(scope="module")
def reactor_ge() -> tuple[FarmConfig, Rows]:
    return rows_of("reactor-ge")


@pytest.fixture(scope="module")
def reactor_ibd() -> tuple[FarmConfig, Rows]:
    return rows_of("reactor-ibd", N_IBD_EVENTS)


def cevns_of(rows: Rows, flavor: str) -> np.ndarray:
    return (rows["channel"] == Channel.CEVNS) & (rows["flavor"] == FLAVOR_PDG[flavor])


# --- SNS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", PIDAR_FLAVORS)
@pytest.mark.parametrize("sample", ["sns_csi", "sns_lar"])
def test_sns_cevns_sum_of_weights_equals_flux_times_xsec_times_nuclei(
    sample: str, flavor: str, request: pytest.FixtureRequest
) -> None:
    # Produced events (no efficiency): Φ_flavour · Σ_nuclei N_nuclei ∫∫ dN/dE dσ/dT dE dT
    cfg, rows = request.getfixturevalue(sample)
    expected = sns_expected(cfg, flavor, 0.0, np.inf)
    total, error = sum_and_error(rows["w_nominal"][cevns_of(rows, flavor)])
    assert error < 0.005 * expected  # the check is sharp: < 0.5 % per flavour
    assert abs(total - expected) < N_SIGMA * error, (total, expected, error)


def test_reference_fold_of_the_prompt_line_reproduces_total_xsec(sns_csi) -> None:
    # ∫ dσ/dT dT by this file's quadrature against farm.physics.cevns.total_xsec (its own rule)
    cfg, _ = sns_csi
    prompt_xsec = sum(
        count * float(cevns.total_xsec(flux.PIDAR_NUMU_LINE_MEV, nucleus))
        for nucleus, count in target_nuclei(cfg).items()
    )
    assert sns_expected(cfg, "numu", 0.0, np.inf) == pytest.approx(
        sns_fluence(cfg) * prompt_xsec, rel=1e-9, abs=0
    )


def test_sns_csi_flux_averaged_cevns_cross_section_is_the_standard_model_value(sns_csi) -> None:
    # COHERENT, PRL 129, 081801 (2022): SM flux-averaged CEvNS cross section on CsI
    # 189 ± 6 × 10⁻⁴⁰ cm² per nucleus. Σw / (3 flavours · Φ · N_nuclei) of the generated events;
    # Helm gives 196.6, Klein–Nystrand 190.7 (× 10⁻⁴⁰ cm²)
    cfg, rows = sns_csi
    produced = rows["w_nominal"][rows["channel"] == Channel.CEVNS].sum()
    averaged = produced / (3 * sns_fluence(cfg) * sum(target_nuclei(cfg).values()))
    assert averaged == pytest.approx(189e-40, rel=0.05, abs=0)


@pytest.mark.parametrize("flavor", PIDAR_FLAVORS)
def test_sns_csi_selected_cevns_equals_integral_with_quenching_pe_efficiency_and_time_window(
    sns_csi, flavor: str
) -> None:
    # CsI[Na] quenching polynomial → Poisson PE at 13.35 PE/keVee → COHERENT 2021 acceptance,
    # times the probability that the neutrino time falls in the configured window
    cfg, rows = sns_csi
    efficiency = csi_detection_efficiency(cfg)
    expected = time_window_efficiency(cfg, flavor) * sns_expected(
        cfg, flavor, 0.0, np.inf, efficiency
    )
    m = cevns_of(rows, flavor)
    total, error = sum_and_error(rows["w_nominal"][m] * rows["selected"][m])
    assert abs(total - expected) < N_SIGMA * error, (total, expected, error)


def test_sns_time_window_keeps_the_prompt_pulse(sns_csi) -> None:
    # t = 0 is the onset of the proton pulse (centred 0.38 µs later): > 97 % of prompt ν_μ and
    # 1 − e^{−(6 − 0.38)/2.197} = 92.3 % of delayed neutrinos fall in the 0–6 µs window
    cfg, rows = sns_csi
    assert time_window_efficiency(cfg, "numu") > 0.97
    assert time_window_efficiency(cfg, "nue") == pytest.approx(-np.expm1(-5.62 / 2.197), abs=0.002)
    prompt = rows["time_us"][cevns_of(rows, "numu")]
    assert np.mean((prompt >= 0.0) & (prompt < 6.0)) == pytest.approx(
        time_window_efficiency(cfg, "numu"), abs=0.003
    )


def test_sns_selected_events_lie_in_the_time_window(sns_csi) -> None:
    cfg, rows = sns_csi
    lo, hi = cfg.detector.time_window_us
    beam_related = rows["channel"] != Channel.SSB
    t = rows["time_us"][rows["selected"] & beam_related]
    assert t.size > 10_000
    assert np.all((t >= lo) & (t < hi))


def test_sns_csi_recoil_spectrum_matches_dsigma_dT_folded_with_the_pidar_flux(sns_csi) -> None:
    cfg, rows = sns_csi
    m = rows["channel"] == Channel.CEVNS
    edges = np.concatenate([np.linspace(0.0, 0.040, 21), [0.048]])  # MeV; I-127 ends at 47.2 keV
    observed, cov = binned_sums_and_covariance(
        rows["recoil_mev"][m], rows["w_nominal"][m], rows["flavor"][m], edges
    )
    expected = np.array(
        [
            sum(sns_expected(cfg, f, lo, hi) for f in PIDAR_FLAVORS)
            for lo, hi in itertools.pairwise(edges)
        ]
    )
    assert chi2_pvalue(observed, expected, cov) > 0.001


def test_sns_csi_recoil_spectrum_test_rejects_a_missing_form_factor(sns_csi) -> None:
    # the goodness-of-fit above has power: without F²(q) the fold is 10–40 % high above 20 keV
    cfg, rows = sns_csi
    m = rows["channel"] == Channel.CEVNS
    edges = np.concatenate([np.linspace(0.0, 0.040, 21), [0.048]])
    observed, cov = binned_sums_and_covariance(
        rows["recoil_mev"][m], rows["w_nominal"][m], rows["flavor"][m], edges
    )
    point_nucleus = np.array(
        [
            sum(sns_expected(cfg, f, lo, hi, form_factor=None) for f in PIDAR_FLAVORS)
            for lo, hi in itertools.pairwise(edges)
        ]
    )
    assert chi2_pvalue(observed, point_nucleus, cov) < 1e-6


def test_sns_csi_nin_sum_of_weights_equals_lead_neutron_yield_integral(sns_csi) -> None:
    # NIN = Φ_νe · N_Pb · P_detect · ∫ dN/dE (σ_1n + 2σ_2n) dE  (ν_e CC on ²⁰⁸Pb in the shielding)
    cfg, rows = sns_csi
    bkg = cfg.backgrounds
    lead_nuclei = bkg.lead_mass_kg * 1e3 * 6.02214076e23 / 207.2
    e, w = gauss_legendre(np.array([0.0, 20.6]), np.array([20.6, flux.MICHEL_ENDPOINT_MEV]))
    folded = float(np.sum(w * flux.pidar_spectrum("nue", e) * lead.neutron_yield_xsec(e)))
    expected = sns_fluence(cfg) * lead_nuclei * bkg.nin_detection_probability * folded
    total, error = sum_and_error(rows["w_nominal"][rows["channel"] == Channel.NIN])
    assert abs(total - expected) < N_SIGMA * error, (total, expected, error)


@pytest.mark.parametrize(
    ("sample", "channel", "expected"),
    [
        ("sns_csi", Channel.BRN, 15.0),
        ("sns_csi", Channel.SSB, 1100.0),
        ("sns_lar", Channel.BRN, 200.0),
        ("reactor_ge", Channel.SSB, 1800.0),
        ("reactor_ibd", Channel.ACCIDENTAL, 5000.0),
    ],
)
def test_backgrounds_of_fixed_size_sum_to_the_configured_expectation(
    sample: str, channel: Channel, expected: float, request: pytest.FixtureRequest
) -> None:
    _, rows = request.getfixturevalue(sample)
    assert rows["w_nominal"][rows["channel"] == channel].sum() == pytest.approx(
        expected, rel=1e-12, abs=0
    )


@pytest.mark.parametrize("sample", ["sns-csi", "sns-lar", "reactor-ge", "reactor-ibd"])
def test_the_analysis_flux_rule_carries_the_fluence_the_events_were_generated_with(
    sample: str,
) -> None:
    # The cross section is normalised by Φ from the analysis' nominal flux rule: per flavour it
    # must be POT · Y / (4π L²) (π-DAR) or fissions · ∫S dE / (4π L²) (reactor), here computed
    # with this file's own fluences and quadrature.
    cfg = load_config(sample)
    if sample.startswith("sns"):
        expected = dict.fromkeys(PIDAR_FLAVORS, sns_fluence(cfg))
    else:
        lo, hi = cfg.source.enu_min_mev, cfg.source.enu_max_mev
        knots = sorted({lo, hi, *(k for k in REACTOR_PIECES_MEV if lo < k < hi)})
        e, w = gauss_legendre(np.array(knots[:-1]), np.array(knots[1:]))
        per_fission = float(np.sum(w * flux.reactor_spectrum(e, cfg.source.fission_fractions)))
        expected = {"nuebar": reactor_fluence(cfg) * per_fission}
    rule = flux_rule(cfg)
    assert sorted(rule) == sorted(expected)
    for flavor, (_, fluence) in rule.items():
        assert fluence.sum() / expected[flavor] == pytest.approx(1.0, rel=1e-9, abs=0), flavor


# --- reactor -------------------------------------------------------------------------------------


def test_reactor_ge_cevns_sum_of_weights_equals_fission_flux_integral(reactor_ge) -> None:
    # fissions = P_th / Σ f_i E_i · t; Φ = fissions · S(E) / (4π L²); Σ over the five Ge isotopes
    cfg, rows = reactor_ge
    expected = reactor_cevns_expected(cfg, 0.0, np.inf)
    e, w = gauss_legendre(np.array(REACTOR_PIECES_MEV[:-1]), np.array(REACTOR_PIECES_MEV[1:]))
    spectrum = flux.reactor_spectrum(e, cfg.source.fission_fractions)
    by_energy = reactor_fluence(cfg) * sum(
        n * float(np.sum(w * spectrum * cevns.total_xsec(e, nucleus)))
        for nucleus, n in target_nuclei(cfg).items()
    )
    # recoil-first and energy-first agree
    assert expected == pytest.approx(by_energy, rel=1e-6, abs=0)
    total, error = sum_and_error(rows["w_nominal"][rows["channel"] == Channel.CEVNS])
    assert error < 0.01 * expected
    assert abs(total - expected) < N_SIGMA * error, (total, expected, error)


def test_reactor_ge_recoil_spectrum_matches_dsigma_dT_folded_with_the_reactor_spectrum(
    reactor_ge,
) -> None:
    cfg, rows = reactor_ge
    m = rows["channel"] == Channel.CEVNS
    # keVnr; recoils above 1.3 keV need E_ν > 6.5 MeV and are pooled into the last bin
    edges = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.3, 4.5]) * 1e-3
    observed, cov = binned_sums_and_covariance(
        rows["recoil_mev"][m], rows["w_nominal"][m], rows["channel"][m], edges
    )
    expected = np.array(
        [reactor_cevns_expected(cfg, lo, hi) for lo, hi in itertools.pairwise(edges)]
    )
    assert chi2_pvalue(observed, expected, cov) > 0.001


def test_reactor_ibd_sum_of_weights_equals_fissions_times_ibd_yield_times_protons(
    reactor_ibd,
) -> None:
    # N = fissions · ∫ S σ_IBD dE / (4π L²) · N_p  (σ: Strumia–Vissani; from 1.806 MeV to 12 MeV)
    cfg, rows = reactor_ibd
    det, src = cfg.detector, cfg.source
    e, w = gauss_legendre(np.array([src.enu_min_mev, 8.0]), np.array([8.0, src.enu_max_mev]))
    yield_per_fission = float(
        np.sum(w * flux.reactor_spectrum(e, src.fission_fractions) * ibd.total_xsec(e))
    )
    assert yield_per_fission == pytest.approx(
        reactor.ibd_yield_per_fission(src.fission_fractions), rel=1e-5, abs=0
    )
    expected = reactor_fluence(cfg) * yield_per_fission * det.mass_kg * det.free_protons_per_kg
    total, error = sum_and_error(rows["w_nominal"][rows["channel"] == Channel.IBD])
    assert error < 0.005 * expected
    assert abs(total - expected) < N_SIGMA * error, (total, expected, error)


def test_reactor_ibd_selects_the_configured_efficiency_of_the_expected_events(reactor_ibd) -> None:
    cfg, rows = reactor_ibd
    m = rows["channel"] == Channel.IBD
    w, selected = rows["w_nominal"][m], rows["selected"][m]
    fraction = w[selected].sum() / w.sum()
    # binomial error of a weighted fraction: √(Σ w² ε(1−ε)) / Σw
    eff = cfg.detector.efficiency
    error = np.sqrt(np.sum(w**2) * eff * (1 - eff)) / w.sum()
    assert abs(fraction - eff) < N_SIGMA * error


def test_reactor_ibd_prompt_energy_is_enu_minus_0p782_mev_smeared_by_3_percent_over_root_e(
    reactor_ibd,
) -> None:
    # E_prompt = E_ν − (m_n − m_p) + m_e = E_ν − 0.782 MeV, σ = 0.03 √(E/MeV) MeV
    cfg, rows = reactor_ibd
    # events drawn below the 1.8061 MeV threshold (from enu_min_mev = 1.806) have w = 0, no positron
    m = (rows["channel"] == Channel.IBD) & (rows["w_nominal"] > 0)
    evis = rows["enu_true"][m] - DELTA_NP_MEV + MASS_ELECTRON_MEV
    sigma = cfg.detector.resolution_stochastic * np.sqrt(evis)
    pulls = (rows["reco_energy_mev"][m] - evis) / sigma
    assert abs(np.mean(pulls)) < 0.02
    assert np.std(pulls) == pytest.approx(1.0, abs=0.02)


# --- reproducibility and the store ---------------------------------------------------------------


def write(tmp_path: Path, name: str, *, events: int = 150_000, **generation: int) -> EventStore:
    overrides = {f"generation.{k}": v for k, v in {"events": events, **generation}.items()}
    cfg = load_config("sns-csi", **overrides)
    path = tmp_path / f"{name}.zarr"
    generate_store(cfg, path)
    return EventStore.open(path)


def all_rows(store: EventStore) -> Rows:
    return store.read_columns(None, 0, store.n_events)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, EventStore]:
    tmp = tmp_path_factory.mktemp("stores")
    return {
        "a": write(tmp, "a", seed=11, shard_size=65_536),
        "again": write(tmp, "again", seed=11, shard_size=65_536),
        "other_seed": write(tmp, "other_seed", seed=12, shard_size=65_536),
        "other_shards": write(tmp, "other_shards", seed=11, shard_size=100_000),
    }


def test_same_config_and_seed_give_identical_stores(stores) -> None:
    a, again = stores["a"], stores["again"]
    assert a.n_shards == 3
    assert a.shard_checksums == again.shard_checksums
    rows_a, rows_again = all_rows(a), all_rows(again)
    for name in a.columns:
        assert np.array_equal(rows_a[name], rows_again[name], equal_nan=True), name


def test_another_seed_gives_other_events(stores) -> None:
    a, other = stores["a"], stores["other_seed"]
    assert set(a.shard_checksums).isdisjoint(other.shard_checksums)
    rows_a, rows_other = all_rows(a), all_rows(other)
    for name in ("recoil_mev", "w_nominal", "time_us"):
        assert not np.array_equal(rows_a[name], rows_other[name]), name
    assert np.array_equal(rows_a["event_id"], rows_other["event_id"])


def test_another_shard_size_gives_the_same_events_row_for_row(stores) -> None:
    a, other = stores["a"], stores["other_shards"]
    assert (a.n_shards, other.n_shards) == (3, 2)
    rows_a, rows_other = all_rows(a), all_rows(other)
    assert set(rows_a) == set(rows_other)
    for name in a.columns:
        assert np.array_equal(rows_a[name], rows_other[name], equal_nan=True), name


def test_rows_generated_in_pieces_equal_the_rows_generated_at_once(sns_csi) -> None:
    cfg, rows = sns_csi
    start, stop = 60_000, 140_000  # crosses the 65 536-row generation block boundaries
    piece = generate_rows(cfg, start, stop)
    for name, values in piece.items():
        assert np.array_equal(values, rows[name][start:stop]), name


def test_event_ids_are_unique_and_increasing_across_shards(stores) -> None:
    store = stores["a"]
    ids = np.concatenate([cols["event_id"] for _, cols in store.iter_shards(["event_id"])])
    assert ids.size == store.n_events
    assert np.all(np.diff(ids.astype(np.int64)) > 0)
    assert np.array_equal(ids, np.arange(store.n_events, dtype=np.uint64))


def test_store_sum_of_weights_equals_the_generated_rows(stores) -> None:
    store = stores["a"]
    cfg = load_config("sns-csi", **{"generation.events": 150_000, "generation.seed": 11})
    rows = generate_rows(cfg, 0, 150_000)
    stored = sum(float(cols["w_nominal"].sum()) for _, cols in store.iter_shards(["w_nominal"]))
    assert stored == pytest.approx(float(rows["w_nominal"].sum()), rel=1e-12, abs=0)


def test_every_store_column_has_the_schema_dtype(stores) -> None:
    store = stores["a"]
    group = zarr.open_group(store.path, mode="r")
    assert set(REQUIRED_COLUMNS) <= set(store.columns)
    for name, values in all_rows(store).items():
        assert values.dtype == COLUMNS[name].dtype, name
        assert group[name].dtype == COLUMNS[name].dtype, name


@pytest.mark.parametrize("sample", ["sns-csi", "sns-lar", "reactor-ge", "reactor-ibd"])
def test_every_generated_column_has_the_schema_dtype(sample: str) -> None:
    cfg = load_config(sample, **{"generation.events": 2_000})
    rows = generate_rows(cfg, 0, 2_000)
    assert set(REQUIRED_COLUMNS) <= set(rows)
    assert set(rows) == {"event_id", *sample_model(cfg).columns}
    for name, values in rows.items():
        assert values.dtype == COLUMNS[name].dtype, name
        assert values.shape == (2_000,), name


# --- Σw per component is a property of the configuration, not of the generation --------------------


def component_sums(rows: Rows) -> dict[str, tuple[float, float]]:
    out = {f: sum_and_error(rows["w_nominal"][cevns_of(rows, f)]) for f in PIDAR_FLAVORS}
    for channel in (Channel.BRN, Channel.NIN, Channel.SSB):
        out[channel.name] = sum_and_error(rows["w_nominal"][rows["channel"] == channel])
    return out


def test_sum_of_weights_per_component_is_stable_across_seeds_and_event_shares(sns_csi) -> None:
    _, rows = sns_csi
    _, reshared = rows_of(
        "sns-csi",
        100_000,
        **{
            "generation.seed": 5,
            "generation.component_fractions": {"cevns_numu": 0.1, "cevns_nue": 0.5, "ssb": 0.01},
        },
    )
    base, other = component_sums(rows), component_sums(reshared)
    for name in ("BRN", "SSB"):  # fixed expectations: exact whatever the events
        assert other[name][0] == pytest.approx(base[name][0], rel=1e-12, abs=0)
    for name in (*PIDAR_FLAVORS, "NIN"):
        (s1, e1), (s2, e2) = base[name], other[name]
        assert abs(s1 - s2) < N_SIGMA * np.hypot(e1, e2), (name, s1, s2)


def test_component_shares_follow_the_configured_fractions(sns_csi) -> None:
    # defaults 0.28 per CEvNS flavour, 0.05 BRN, 0.05 NIN, 0.06 SSB, allocated per 65 536-row block
    cfg, rows = sns_csi
    n_blocks = -(-N_EVENTS // 65_536)
    shares = {
        "numu": cevns_of(rows, "numu"),
        "nue": cevns_of(rows, "nue"),
        "numubar": cevns_of(rows, "numubar"),
        "brn": rows["channel"] == Channel.BRN,
        "nin": rows["channel"] == Channel.NIN,
        "ssb": rows["channel"] == Channel.SSB,
    }
    fractions = dict(sample_model(cfg).fractions({}))
    assert fractions == {
        "cevns_numu": 0.28,
        "cevns_nue": 0.28,
        "cevns_numubar": 0.28,
        "brn": 0.05,
        "nin": 0.05,
        "ssb": 0.06,
    }
    for name, m in shares.items():
        fraction = fractions.get(name, fractions.get(f"cevns_{name}"))
        assert abs(int(m.sum()) - fraction * N_EVENTS) <= n_blocks, name
