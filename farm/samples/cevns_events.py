"""CEvNS events for any flux and material: draw the recoil, the nucleus and the detector response.

Shared by the SNS and reactor generators. The recoil T is drawn from q(T|E) = 2(1 − T/T_max)/T_max,
which follows the kinematic factor of dσ/dT, and every event carries σ̂ = (dσ/dT)/q as its
cross-section weight, so the weighted recoil spectrum is exactly dσ/dT folded with the flux.
"""

from __future__ import annotations

import numpy as np

from farm.config.sample import CevnsDetector, CevnsPhysics
from farm.physics import cevns, detector, nuclei
from farm.physics.response import CevnsResponse
from farm.samples.component import Columns

__all__ = [
    "draw_nuclei",
    "draw_recoils",
    "readout",
    "readout_column",
    "readout_columns",
    "response_of",
    "select",
]


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
    rng: np.random.Generator,
    enu_mev: np.ndarray,
    which: np.ndarray,
    names: list[str],
    physics: CevnsPhysics | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recoil energy, mass number and σ̂ = (dσ/dT)/q(T|E) in cm² per nucleus for each event.

    ``physics`` sets the couplings, sin²θ_W, form factor and radius scale of dσ/dT (defaults:
    radiatively corrected couplings, Helm with its standard radius).
    """
    phys = physics or CevnsPhysics()
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
        radius = None
        if phys.neutron_radius_scale != 1.0:
            radius = float(cevns.helm_rms_radius_fm(target.a)) * phys.neutron_radius_scale
        xsec[sel] = (
            cevns.dxsec_dT(
                e,
                t,
                target,
                couplings=phys.couplings,
                sin2w=phys.sin2w,
                form_factor=phys.form_factor,
                rms_radius_fm=radius,
            )
            / proposal
        )
        mass_number[sel] = target.a
    return recoil, mass_number, xsec


def response_of(det: CevnsDetector) -> CevnsResponse:
    """The detector response a CEvNS detector section describes (generator and knobs share it:
    :func:`farm.resolve.detector_response`)."""
    from farm.resolve import detector_response

    return detector_response(det)


def readout(
    rng: np.random.Generator,
    recoil_mev: np.ndarray,
    target_a: np.ndarray,
    response: CevnsResponse,
) -> Columns:
    """The readout column (PE or keVee) of each recoil and, for keVee, the resolution draw.

    PE: k ~ Poisson(LY · μ). keVee: z ~ N(0, 1), stored as float32, and x computed from the
    stored z, so that the knobs recompute x from the same number bit for bit.
    """
    mu = response.quenching.visible_kevee(recoil_mev, target_a)
    if response.readout == "pe":
        return {
            response.column: detector.photoelectrons(
                rng, mu, response.light_yield_pe_per_kevee
            ).astype(np.float32)
        }
    z = rng.standard_normal(mu.shape).astype(np.float32)
    return {response.column: response.smeared_kevee(mu, z), "resolution_z": z}


def select(
    rng: np.random.Generator,
    response: CevnsResponse,
    value: np.ndarray,
    time_us: np.ndarray | None = None,
) -> Columns:
    """Each event's own selection threshold θ = ε⁻¹(u) (+∞ outside the time window), whether it
    passes (value − shift ≥ θ), and the nominal efficiency ε(value − shift)."""
    u = rng.random(value.shape)
    window = None if time_us is None else response.in_window(time_us)
    theta = response.selection_threshold(u, window)
    return {
        "selection_threshold": theta,
        "selected": response.selected(value, theta),
        "eff_nominal": response.efficiency(
            np.asarray(value, dtype=np.float64) - response.efficiency_shift
        ).astype(np.float32),
    }


def readout_column(det: CevnsDetector) -> str:
    """The event-store column holding the detector's readout."""
    return "reco_pe" if det.readout == "pe" else "reco_kevee"


def readout_columns(det: CevnsDetector) -> tuple[str, ...]:
    """The readout column and the stored random numbers the knobs re-evaluate it with."""
    extra = ("resolution_z",) if det.readout == "kevee" else ()
    return (readout_column(det), *extra, "selection_threshold")
