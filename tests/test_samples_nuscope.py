"""The nuSCOPE sample against physics: CC counts, lepton kinematics, tagging and off-axis energy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("farm.samples.nuscope", reason="the nuSCOPE generator is not written yet")

from farm.config import FarmConfig, load_config
from farm.physics import beamline, ccqe, detector, nuclei
from farm.physics.constants import MASS_ELECTRON_MEV, MASS_MUON_MEV
from farm.samples.generate import generate_rows
from farm.samples.nuscope import beam
from farm.store import COLUMNS, REQUIRED_COLUMNS
from farm.store.schema import FLAVOR_PDG, Channel

Rows = dict[str, np.ndarray]

N_EVENTS = 200_000
N_FLUX = 400_000
N_SIGMA = 4.0
LEPTON_MASS_MEV = {"numu": MASS_MUON_MEV, "nue": MASS_ELECTRON_MEV}


@pytest.fixture(scope="module")
def nuscope() -> tuple[FarmConfig, Rows]:
    cfg = load_config("nuscope-lar", **{"generation.events": N_EVENTS})
    return cfg, generate_rows(cfg, 0, N_EVENTS)


def of(rows: Rows, flavor: str, channel: Channel | None = None) -> np.ndarray:
    m = rows["flavor"] == FLAVOR_PDG[flavor]
    return m if channel is None else m & (rows["channel"] == channel)


def sum_and_error(w: np.ndarray) -> tuple[float, float]:
    """Σw and its MC error √(n/(n−1) Σ(w − w̄)²) for a fixed number of draws."""
    return float(w.sum()), float(np.sqrt(w.size) * w.std(ddof=1))


def neutrons_in(cfg: FarmConfig) -> float:
    """Neutrons in the atmospheric-argon target: Σ_isotopes N_nuclei · (A − Z)."""
    per_kg = nuclei.targets_per_kg("Ar")
    mass_kg = cfg.detector.mass_t * 1e3
    return sum(count * mass_kg * nuclei.get_target(name).n for name, count in per_kg.items())


@pytest.mark.parametrize("flavor", ["numu", "nue"])
def test_ccqe_sum_of_weights_equals_flux_through_the_face_times_sigma_times_neutrons(
    nuscope, flavor: str
) -> None:
    # N = POT · (ν/POT) · ⟨w_face σ_QE(E)⟩ / A_face · N_n, with the flux drawn here on its own seed
    # and σ_QE integrated over Q² by quadrature (the generator importance-samples Q²)
    cfg, rows = nuscope
    b = beam(cfg)
    nu = beamline.sample_beam_neutrinos(
        np.random.default_rng(99), N_FLUX, flavor=flavor, beamline=b
    )
    per_draw = (
        cfg.source.pot
        * beamline.neutrinos_per_pot(flavor, b)
        / b.face_area_cm2
        * nu["weight"]
        * ccqe.total_xsec(nu["enu_mev"], lepton_mass_mev=LEPTON_MASS_MEV[flavor])
        * neutrons_in(cfg)
    )
    expected, expected_error = float(per_draw.mean()), float(per_draw.std(ddof=1) / np.sqrt(N_FLUX))
    total, error = sum_and_error(rows["w_nominal"][of(rows, flavor, Channel.CCQE)])
    assert abs(total - expected) < N_SIGMA * np.hypot(error, expected_error), (total, expected)


def test_nue_cc_is_about_one_percent_of_numu_cc(nuscope) -> None:
    # docs/physics.md: ≈ 10⁶ ν_μ CC and ≈ 10⁴ ν_e CC (K_e3) over the reference exposure
    _, rows = nuscope
    ratio = rows["w_nominal"][of(rows, "nue")].sum() / rows["w_nominal"][of(rows, "numu")].sum()
    assert 0.005 < ratio < 0.03


@pytest.mark.parametrize("flavor", ["numu", "nue"])
def test_qe_formula_on_the_true_lepton_gives_back_the_true_energy(nuscope, flavor: str) -> None:
    # CCQE on a neutron at rest: E_ν = (2M_n E_l − (m_l² + M_n² − M_p²)) / (2(M_n − E_l + p_l cos θ))
    _, rows = nuscope
    m = of(rows, flavor, Channel.CCQE) & (rows["w_nominal"] > 0)  # w = 0: drawn below threshold
    enu = detector.qe_neutrino_energy_mev(
        rows["plep_mev"][m],
        rows["coslep"][m].astype(np.float64),
        lepton_mass_mev=LEPTON_MASS_MEV[flavor],
    )
    np.testing.assert_allclose(enu, rows["enu_true"][m], rtol=1e-5)


def test_tagged_energy_resolves_the_true_energy_below_one_percent(nuscope) -> None:
    # docs/physics.md: sub-percent E_ν resolution for ≈ 80 % of ν_μ CC events, plus accidental tags
    cfg, rows = nuscope
    numu = of(rows, "numu")
    tagged = numu & rows["tagged"]
    residual = rows["etag_mev"][tagged] / rows["enu_true"][tagged] - 1.0
    robust_sigma = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    assert robust_sigma < 0.01
    assert robust_sigma == pytest.approx(cfg.detector.tagging_resolution, rel=0.05, abs=0)
    # wrong-parent tags make the tails: the configured 2 % of tags, no more
    tails = np.mean(np.abs(residual) > 6 * cfg.detector.tagging_resolution)
    assert tails < cfg.detector.accidental_tag_fraction


def test_tagging_efficiency_is_the_configured_fraction_of_numu_events(nuscope) -> None:
    cfg, rows = nuscope
    numu = of(rows, "numu")
    eff, n = cfg.detector.tagging_efficiency, int(numu.sum())
    assert abs(rows["tagged"][numu].mean() - eff) < N_SIGMA * np.sqrt(eff * (1 - eff) / n)


def test_only_numu_events_are_tagged_and_untagged_events_have_no_tagged_energy(nuscope) -> None:
    _, rows = nuscope
    assert not rows["tagged"][of(rows, "nue")].any()
    assert np.array_equal(np.isnan(rows["etag_mev"]), ~rows["tagged"])


def test_pion_neutrino_energy_falls_with_vertex_radius(nuscope) -> None:
    # narrow-band off-axis: E_ν = (m_π² − m_μ²)/(2(E_π − p_π cos θ)) falls with the angle; ν_μ from
    # π⁺ of ≤ 9.35 GeV/c stay below 4.5 GeV, where kaon neutrinos are few inside r < 2 m
    _, rows = nuscope
    m = of(rows, "numu") & (rows["enu_true"] < 4500.0)
    radius, w, enu = rows["vertex_r_cm"][m], rows["w_nominal"][m], rows["enu_true"][m]
    edges = [0.0, 50.0, 100.0, 150.0, 200.0]
    means = [
        np.average(enu[(radius >= a) & (radius < b)], weights=w[(radius >= a) & (radius < b)])
        for a, b in itertools.pairwise(edges)
    ]
    assert np.all(np.diff(means) < 0), means
    assert means[0] > 2.0 * means[-1]


def test_every_nuscope_column_has_the_schema_dtype(nuscope) -> None:
    _, rows = nuscope
    assert set(REQUIRED_COLUMNS) <= set(rows)
    for name, values in rows.items():
        assert values.dtype == COLUMNS[name].dtype, name


def test_nuscope_rows_do_not_depend_on_how_they_are_cut(nuscope) -> None:
    cfg, rows = nuscope
    piece = generate_rows(cfg, 100_000, 140_000)
    for name, values in piece.items():
        assert np.array_equal(values, rows[name][100_000:140_000], equal_nan=True), name
