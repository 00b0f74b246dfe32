"""nuSCOPE: ν_μ and ν_e charged current on argon from the monitored, tagged π⁺/K⁺ beam.

Neutrinos come from the run's flux (:meth:`farm.flux.model.Flux.simulate`: the beamline Monte
Carlo, :func:`farm.physics.beamline.sample_beam_neutrinos`, forced onto the 4 × 4 m² face, with
acceptance weights). They interact on a target density uniform behind the
face, so an event's expected-count weight is POT · (ν per POT) · w_beam · σ · N_targets / A_face.

- CCQE on the 22 neutrons of ⁴⁰Ar (free-nucleon Llewellyn-Smith; Fermi motion and binding are
  left to systematics): Q² drawn from q(Q²) ∝ (1 + Q²/Λ²)⁻², Λ = 1 GeV, with σ̂ = (dσ/dQ²)/q, and
  exact lepton kinematics on a neutron at rest.
- CC-other on all 40 nucleons (farm.physics.ccqe.noqe_xsec_per_nucleon), lepton kinematics from
  y ~ U(0, 1 − m_l/E), Q² = 2 M E x y with x ~ U(0.05, 0.5): an approximate inelastic model
  whose total cross section, not its kinematics, is the stated parametrisation.

Reconstruction: tagged E_ν for ν_μ (≈ 80 % tagged at 0.5 % resolution, accidental tags), the
QE-formula E_ν from the smeared lepton, and the vertex radius from the beam axis.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from farm import resolve
from farm.config import NuscopeConfig
from farm.flux import sources
from farm.flux.model import Flux
from farm.physics import beamline, ccqe, detector
from farm.physics.constants import MASS_ELECTRON_MEV, MASS_MUON_MEV, MASS_NEUTRON_MEV
from farm.samples.component import Columns, Component, SampleModel
from farm.store.schema import FLAVOR_PDG, Channel

__all__ = ["argon_nuclei", "beam", "flux_sample", "nuscope_model"]

_LAMBDA2_MEV2 = 1.0e6
_LEPTON_MASS = {"numu": MASS_MUON_MEV, "nue": MASS_ELECTRON_MEV}


def beam(cfg: NuscopeConfig) -> beamline.Beamline:
    return sources.nuscope_beamline(cfg.source, cfg.detector.mass_t)


def argon_nuclei(cfg: NuscopeConfig) -> float:
    return resolve.argon_nuclei(cfg.detector.mass_t)


def _draw_q2_qe(
    rng: np.random.Generator, enu: np.ndarray, m_lepton: float
) -> tuple[np.ndarray, np.ndarray]:
    """Q² from q ∝ (1 + Q²/Λ²)⁻² on the kinematic range, and q itself."""
    lo, hi = ccqe.q2_range_mev2(enu, lepton_mass_mev=m_lepton)
    lo, hi = np.nan_to_num(lo), np.nan_to_num(hi)
    a_lo, a_hi = 1.0 / (1.0 + lo / _LAMBDA2_MEV2), 1.0 / (1.0 + hi / _LAMBDA2_MEV2)
    a = a_lo + rng.random(enu.shape) * (a_hi - a_lo)
    q2 = _LAMBDA2_MEV2 * (1.0 / a - 1.0)
    norm = _LAMBDA2_MEV2 * (a_lo - a_hi)
    density = np.zeros_like(q2)
    np.divide((1.0 + q2 / _LAMBDA2_MEV2) ** -2, norm, out=density, where=norm > 0)
    return q2, density


def _interaction(
    cfg: NuscopeConfig,
    flux: Flux,
    flavor: str,
    channel: Channel,
    rng: np.random.Generator,
    n: int,
) -> Columns:
    det = cfg.detector
    m_l = _LEPTON_MASS[flavor]
    nu = flux.simulate(flavor, rng, n)
    enu = nu["enu_mev"]
    if channel == Channel.CCQE:
        q2, density = _draw_q2_qe(rng, enu, m_l)
        xsec = np.zeros_like(enu)
        np.divide(
            ccqe.dxsec_dq2(enu, q2, lepton_mass_mev=m_l, ma_mev=cfg.physics.ccqe_ma_mev),
            density,
            out=xsec,
            where=density > 0,
        )
        targets = 22.0 * argon_nuclei(cfg)
        elep, cos = ccqe.lepton_kinematics(enu, q2, lepton_mass_mev=m_l)
    else:
        xsec = cfg.physics.noqe_scale * ccqe.noqe_xsec_per_nucleon(enu, lepton_mass_mev=m_l)
        targets = 40.0 * argon_nuclei(cfg)
        y = rng.random(n) * np.clip(1.0 - m_l / enu, 0.0, 1.0)
        elep = np.maximum(enu * (1.0 - y), m_l)
        q2 = 2.0 * MASS_NEUTRON_MEV * enu * rng.uniform(0.05, 0.5, n) * y
        pl = np.sqrt(np.maximum(elep**2 - m_l**2, 0.0))
        cos = np.clip(
            (2.0 * enu * elep - m_l**2 - q2) / np.maximum(2.0 * enu * pl, 1e-300), -1.0, 1.0
        )
    plep = np.sqrt(np.maximum(elep**2 - m_l**2, 0.0))

    # reconstruction: smeared lepton → QE-formula E_ν; tags for ν_μ; vertex radius
    p_reco = plep * (1.0 + det.muon_momentum_resolution * rng.standard_normal(n))
    theta = np.arccos(cos) + det.muon_angle_resolution_rad * rng.standard_normal(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        e_qe = detector.qe_neutrino_energy_mev(np.abs(p_reco), np.cos(theta), lepton_mass_mev=m_l)
    e_qe = np.where(np.isfinite(e_qe), e_qe, -1.0)
    if flavor == "numu":
        tagged, etag = detector.draw_tags(
            rng,
            enu,
            efficiency=det.tagging_efficiency,
            rel_resolution=det.tagging_resolution,
            accidental_fraction=det.accidental_tag_fraction,
        )
    else:
        tagged, etag = np.zeros(n, dtype=bool), np.full(n, np.nan)
        rng.random(n)  # keep the stream layout of both flavours alike
    depth_cm = rng.random(n) * beam(cfg).detector_length_m * 100.0
    vx = nu["x_cm"] + nu["slope_x"] * depth_cm
    vy = nu["y_cm"] + nu["slope_y"] * depth_cm
    p_select = det.numu_selection_efficiency if flavor == "numu" else det.nue_misid_probability
    return {
        "enu_true": enu,
        "flavor": np.full(n, FLAVOR_PDG[flavor], dtype=np.int32),
        "channel": np.full(n, channel, dtype=np.int8),
        "is_signal": np.full(n, flavor == "numu"),
        "q2_mev2": q2,
        "plep_mev": plep,
        "elep_mev": elep,
        "coslep": cos.astype(np.float32),
        "target_a": np.full(n, 0 if channel == Channel.CCQE else 40, dtype=np.int16),
        "reco_energy_mev": e_qe.astype(np.float32),
        "etag_mev": np.asarray(det.energy_scale * etag, dtype=np.float32),
        "tagged": np.asarray(tagged, dtype=bool),
        "vertex_r_cm": np.hypot(vx, vy).astype(np.float32),
        "eff_nominal": np.full(n, p_select, dtype=np.float32),
        "selected": rng.random(n) < p_select,
        "w_unit": nu["fluence"] * targets * xsec,
    }


def flux_sample(cfg: NuscopeConfig, n: int = 400_000) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The nominal flux as a weighted sample (fixed seed): energies and ν/cm² carried by each."""
    return sources.nuscope_flux(cfg.source, cfg.detector.mass_t, n).rule()


def nuscope_model(cfg: NuscopeConfig, nu: Flux) -> SampleModel:
    """The nuSCOPE sample, its neutrinos drawn fresh from the beamline Monte Carlo of ``nu`` (the
    run's flux, :meth:`Flux.simulate`)."""
    components = (
        Component(
            name="numu_ccqe",
            draw=partial(_interaction, cfg, nu, "numu", Channel.CCQE),
            default_fraction=0.5,
        ),
        Component(
            name="numu_ccother",
            draw=partial(_interaction, cfg, nu, "numu", Channel.CC_OTHER),
            default_fraction=0.3,
        ),
        Component(
            name="nue_ccqe",
            draw=partial(_interaction, cfg, nu, "nue", Channel.CCQE),
            default_fraction=0.1,
        ),
        Component(
            name="nue_ccother",
            draw=partial(_interaction, cfg, nu, "nue", Channel.CC_OTHER),
            default_fraction=0.1,
        ),
    )
    b = beam(cfg)
    attrs = {
        "source_family": "nuscope",
        "exposure": {"value": cfg.source.pot, "unit": "POT"},
        "nominal_flux": {
            "model": "pi+/K+ two-body and K_e3 decays in a 40 m tunnel, forced onto the detector face",
            "numu_per_pot": beamline.neutrinos_per_pot("numu", b),
            "nue_per_pot": beamline.neutrinos_per_pot("nue", b),
            "face_area_cm2": b.face_area_cm2,
        },
        "readout_column": "etag_mev",
    }
    columns = (
        "enu_true",
        "flavor",
        "channel",
        "is_signal",
        "selected",
        "w_nominal",
        "eff_nominal",
        "q2_mev2",
        "plep_mev",
        "elep_mev",
        "coslep",
        "target_a",
        "reco_energy_mev",
        "etag_mev",
        "tagged",
        "vertex_r_cm",
    )
    return SampleModel(components=components, columns=columns, attrs=attrs)
