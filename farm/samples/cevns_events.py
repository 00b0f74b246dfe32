"""CEvNS events for any flux and material: draw the recoil, the nucleus and the detector response.

Shared by the SNS and reactor generators. The recoil T is drawn from q(T|E) = 2(1 − T/T_max)/T_max,
which follows the kinematic factor of dσ/dT, and every event carries σ̂ = (dσ/dT)/q as its
cross-section weight, so the weighted recoil spectrum is exactly dσ/dT folded with the flux.
"""

from __future__ import annotations

import numpy as np

from farm.config.sample import CevnsDetector
from farm.physics import cevns, detector, nuclei

__all__ = ["draw_nuclei", "draw_recoils", "efficiency", "readout", "readout_column"]


def draw_nuclei(
    rng: np.random.Generator, material: str, n: int
) -> tuple[np.ndarray, list[str], float]:
    """Pick the struck nucleus per event in proportion to its abundance.

    Returns the index into the returned nucleus names per event and the total number of nuclei
    per kg, the factor that turns a per-nucleus cross section into a per-kg rate.
    """
    per_kg = nuclei.targets_per_kg(material)
    names = sorted(per_kg)
    counts = np.array([per_kg[k] for k in names])
    total = float(counts.sum())
    index = np.searchsorted(np.cumsum(counts / total), rng.random(n), side="right")
    return np.minimum(index, len(names) - 1).astype(np.int8), names, total


def draw_recoils(
    rng: np.random.Generator, enu_mev: np.ndarray, which: np.ndarray, names: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recoil energy, mass number and σ̂ = (dσ/dT)/q(T|E) in cm² per nucleus for each event."""
    recoil = np.empty_like(enu_mev)
    xsec = np.empty_like(enu_mev)
    mass_number = np.empty(enu_mev.shape, dtype=np.int16)
    u = rng.random(enu_mev.shape)
    for k, name in enumerate(names):
        sel = which == k
        target = nuclei.get_target(name)
        e = enu_mev[sel]
        tmax = cevns.max_recoil_mev(e, target.mass_mev)
        t = tmax * (1.0 - np.sqrt(1.0 - u[sel]))
        proposal = 2.0 * (1.0 - t / tmax) / tmax
        recoil[sel] = t
        xsec[sel] = cevns.dxsec_dT(e, t, target) / proposal
        mass_number[sel] = target.a
    return recoil, mass_number, xsec


def readout(
    rng: np.random.Generator,
    recoil_mev: np.ndarray,
    which: np.ndarray,
    names: list[str],
    det: CevnsDetector,
) -> tuple[np.ndarray, np.ndarray]:
    """Visible signal in the detector's readout unit (PE or keVee) and the nominal efficiency."""
    if det.quenching == "csi":
        eee_mev = detector.csi_quenched_energy_mev(recoil_mev)
    elif det.quenching == "lar":
        eee_mev = recoil_mev * detector.lar_quenching_factor(recoil_mev * 1e3)
    else:
        eee_mev = np.zeros_like(recoil_mev)
        for k, name in enumerate(names):
            sel = which == k
            target = nuclei.get_target(name)
            qf = detector.lindhard_quenching_factor(recoil_mev[sel], target.z, target.a)
            eee_mev[sel] = recoil_mev[sel] * qf
    eee_kev = eee_mev * 1e3
    if det.readout == "pe":
        signal = detector.photoelectrons(rng, eee_kev, det.light_yield_pe_per_kevee).astype(
            np.float32
        )
    else:
        signal = detector.gaussian_resolution(
            rng,
            eee_kev,
            stochastic=det.resolution_stochastic,
            constant=det.resolution_constant,
            noise=det.resolution_noise_kevee,
        ).astype(np.float32)
    return signal, efficiency(signal, det)


def efficiency(signal: np.ndarray, det: CevnsDetector) -> np.ndarray:
    """Nominal detection efficiency at the readout value."""
    eff = det.efficiency
    if eff.kind == "csi":
        value = detector.csi_efficiency(signal)
    else:
        value = eff.plateau * detector.threshold_efficiency(
            signal, threshold=eff.threshold, width=eff.width
        )
    return np.asarray(value, dtype=np.float32)


def readout_column(det: CevnsDetector) -> str:
    """The event-store column holding the detector's readout."""
    return "reco_pe" if det.readout == "pe" else "reco_kevee"
