"""The response of a CEvNS detector as one object: quenching, readout, resolution and selection.

The generator draws every event through :class:`CevnsResponse`, and the detector knobs move an
event through the same object, so a knob universe changes an event exactly as regenerating the
sample with that parameter shifted would change it, with the same random numbers. Two of those
random numbers are stored per event for that purpose:

- ``resolution_z``, the standard-normal draw of the Gaussian resolution (keVee readouts):
  x = E_s · max(μ + σ(μ) z, 0), μ = s_q · Q(T) the quenched energy in keVee, E_s the energy scale;
- ``selection_threshold`` θ, the event's own detection threshold in readout units: the
  efficiency curve ε(y) is read as the distribution function of θ, θ = ε⁻¹(u) with
  u ~ U[0, 1) (θ = +∞ when u is above the curve's plateau, or when the event lies outside the
  time window), and the event is selected when y − shift ≥ θ. Then
  P(selected | y) = P(θ ≤ y − shift) = ε(y − shift): the usual efficiency, drawn once per event
  so that a shifted readout or turn-on re-selects the *same* event consistently.

A photoelectron readout has no stored random number: its count k ~ Poisson(λ), λ = LY · μ,
stays fixed and a shift of λ to λ' reweights the event by the ratio of Poisson probabilities
(:func:`poisson_ratio`), which is unbiased for every function of k (efficiency, ROI, binning).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfc, erfcinv, expit, logit

from farm.physics import detector

__all__ = [
    "CevnsResponse",
    "EfficiencyCurve",
    "Quenching",
    "poisson_ratio",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class EfficiencyCurve:
    """Detection efficiency ε(y) versus readout value y, and its inverse for per-event thresholds.

    ``kind="erf"``: ε(y) = scale · plateau · ½ erfc((threshold − y)/(√2 width)).
    ``kind="csi"``: ε(y) = scale · max(a expit(k (y − x0)) + b, 0) with the COHERENT 2021 CsI[Na]
    acceptance (a, k, x0, b) = (1.32045, 0.285979, 10.8646, −0.333322) (arXiv:2110.07730 data
    release). ``scale`` is the efficiency-normalisation systematic (1 nominal); the curve is
    capped at 1.
    """

    kind: Literal["erf", "csi"] = "erf"
    threshold: float = 0.0
    width: float = 1.0
    plateau: float = 1.0
    scale: float = 1.0
    coefficients: tuple[float, float, float, float] = detector.CSI_EFFICIENCY_COEFFICIENTS

    def __call__(self, y: ArrayLike) -> FloatArray:
        x = np.asarray(y, dtype=np.float64)
        if self.kind == "csi":
            a, k, x0, b = self.coefficients
            base = np.maximum(a * expit(k * (x - x0)) + b, 0.0)
        else:
            base = self.plateau * 0.5 * erfc((self.threshold - x) / (np.sqrt(2.0) * self.width))
        return np.minimum(self.scale * base, 1.0)

    @property
    def maximum(self) -> float:
        """sup ε: the probability that an event far above threshold is selected."""
        if self.kind == "csi":
            a, _, _, b = self.coefficients
            return min(self.scale * (a + b), 1.0)
        return min(self.scale * self.plateau, 1.0)

    def own_threshold(self, u: ArrayLike) -> FloatArray:
        """θ = ε⁻¹(u) for uniform ``u`` in [0, 1): the readout value above which the event is
        selected (+∞ for u ≥ sup ε). P(θ ≤ y) = ε(y) for every y."""
        uu = np.asarray(u, dtype=np.float64)
        below = uu < self.maximum
        v = np.where(below, uu, 0.0) / self.scale
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.kind == "csi":
                a, k, x0, b = self.coefficients
                inside = np.clip((v - b) / a, 0.0, 1.0)
                theta = x0 + logit(inside) / k
            else:
                theta = self.threshold - np.sqrt(2.0) * self.width * erfcinv(2.0 * v / self.plateau)
        return np.where(below, theta, np.inf)


@dataclass(frozen=True, kw_only=True)
class Quenching:
    """Electron-equivalent energy of a nuclear recoil: μ = scale · Q(T), in keVee.

    ``model``: ``"csi"`` (COHERENT CsI[Na] polynomial, PRL 129, 081801 (2022)), ``"lar"``
    (QF = 0.246 + 0.00078 T[keVnr], PRL 126, 012002 (2021)) or ``"lindhard"`` (per nucleus,
    ``nuclei`` maps the mass number A of the ``target_a`` column to (Z, A)).
    """

    model: Literal["csi", "lar", "lindhard"]
    scale: float = 1.0
    nuclei: Mapping[int, tuple[int, int]] = field(default_factory=dict)

    def visible_kevee(self, recoil_mev: ArrayLike, target_a: ArrayLike) -> FloatArray:
        t = np.asarray(recoil_mev, dtype=np.float64)
        if self.model == "csi":
            eee = detector.csi_quenched_energy_mev(t)
        elif self.model == "lar":
            eee = t * detector.lar_quenching_factor(t * 1e3)
        else:
            a_of = np.asarray(target_a)
            eee = np.zeros_like(t)
            for a, (z, a_nucleus) in self.nuclei.items():
                sel = a_of == a
                if sel.any():
                    eee[sel] = t[sel] * detector.lindhard_quenching_factor(t[sel], z, a_nucleus)
        return self.scale * (eee * 1e3)


@dataclass(frozen=True, kw_only=True)
class CevnsResponse:
    """Readout of a CEvNS detector in photoelectrons (``"pe"``) or keVee (``"kevee"``).

    keVee: x = energy_scale · max(μ + σ(μ) z, 0), σ(μ) = √(stochastic² μ + constant² μ² + noise²).
    PE: k ~ Poisson(light_yield · μ). Selection: y − efficiency_shift ≥ θ (module docstring).
    """

    readout: Literal["pe", "kevee"]
    quenching: Quenching
    light_yield_pe_per_kevee: float = detector.CSI_LIGHT_YIELD_PE_PER_KEVEE
    resolution_stochastic: float = 0.0
    resolution_constant: float = 0.0
    resolution_noise_kevee: float = 0.0
    energy_scale: float = 1.0
    efficiency: EfficiencyCurve = EfficiencyCurve()
    efficiency_shift: float = 0.0
    """Shift of the turn-on in readout units (the ``threshold`` systematic)."""
    time_window_us: tuple[float, float] | None = None

    @property
    def column(self) -> str:
        return "reco_pe" if self.readout == "pe" else "reco_kevee"

    def mean_pe(self, recoil_mev: ArrayLike, target_a: ArrayLike) -> FloatArray:
        """λ = LY · μ: the expected photoelectrons of each recoil."""
        return self.light_yield_pe_per_kevee * self.quenching.visible_kevee(recoil_mev, target_a)

    def sigma_kevee(self, mu_kevee: ArrayLike) -> FloatArray:
        mu = np.asarray(mu_kevee, dtype=np.float64)
        return np.sqrt(
            self.resolution_stochastic**2 * mu
            + (self.resolution_constant * mu) ** 2
            + self.resolution_noise_kevee**2
        )

    def smeared_kevee(self, mu_kevee: ArrayLike, z: ArrayLike) -> FloatArray:
        """x = energy_scale · max(μ + σ(μ) z, 0): the keVee readout of an event."""
        mu = np.asarray(mu_kevee, dtype=np.float64)
        zz = np.asarray(z, dtype=np.float64)
        return self.energy_scale * np.maximum(mu + self.sigma_kevee(mu) * zz, 0.0)

    def in_window(self, time_us: ArrayLike) -> NDArray[np.bool_]:
        t = np.asarray(time_us)
        if self.time_window_us is None:
            return np.ones(t.shape, dtype=bool)
        lo, hi = self.time_window_us
        return (t >= lo) & (t < hi)

    def selection_threshold(
        self, u: ArrayLike, in_window: ArrayLike | None = None
    ) -> NDArray[np.float32]:
        """θ per event (float32, as stored): ε⁻¹(u), +∞ outside the time window."""
        theta = self.efficiency.own_threshold(u)
        if in_window is not None:
            theta = np.where(np.asarray(in_window, dtype=bool), theta, np.inf)
        return theta.astype(np.float32)

    def selected(self, value: ArrayLike, theta: ArrayLike, shift: float = 0.0) -> NDArray[np.bool_]:
        """y − (efficiency_shift + shift) ≥ θ, in float64 with θ as stored."""
        y = np.asarray(value, dtype=np.float64)
        return (y - (self.efficiency_shift + shift)) >= np.asarray(theta, dtype=np.float64)


def poisson_ratio(k: ArrayLike, mean: ArrayLike, factor: ArrayLike) -> FloatArray:
    """P(k; f λ) / P(k; λ) = f^k e^{−(f − 1) λ}: the weight that moves a Poisson count of mean
    λ to mean f λ without moving the count (unbiased for any function of k: E_λ[r g(k)] =
    E_{fλ}[g(k)] because P(k; λ) > 0 for every k ≥ 0 when λ > 0). Broadcasts."""
    kk = np.asarray(k, dtype=np.float64)
    lam = np.asarray(mean, dtype=np.float64)
    f = np.asarray(factor, dtype=np.float64)
    return np.exp(kk * np.log(f) - (f - 1.0) * lam)
