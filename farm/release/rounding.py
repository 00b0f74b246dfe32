"""How many digits a HEPData release writes: what the uncertainties justify, or a fixed number.

``Precision(digits=None)`` (the default, "auto"):

- a measured value, its errors and the predictions beside it are rounded at the decimal place of
  the ``error_digits``-th significant digit of the bin's total uncertainty σ_j: 3 by default, the
  Particle Data Group's two digits and one guard digit, so that a value moves by at most 0.5 % of
  its σ and a chi-square read from the release by at most ≈ 0.01 √(χ² n) (with two digits it
  moved by up to 8 % on the examples): with σ = 0.0123, 1.234567 ± 0.0123 is written
  1.2346 ± 0.0123;
- matrices and per-universe values (covariances, universes, smearing, fluxes) keep
  ``error_digits + 4`` significant digits of their own scale (the diagonal √(C_ii C_jj) for a
  covariance element, σ_j for a universe's value in bin j, the largest element of a smearing
  matrix, each flux's largest value): enough that a covariance stays positive definite and a
  chi-square computed from the release moves by far less than its own uncertainty;
- anything below half a unit of that last place is written as an exact 0 (no ±2e-54 noise).

``Precision(digits=N)``: N significant digits of every number, each on its own (17 keeps every
float64 exactly: a release written so reproduces every chi-square of the result to 1e-12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Precision", "round_at", "round_relative"]


@dataclass(frozen=True, kw_only=True)
class Precision:
    digits: int | None = None
    """None: as the uncertainties justify; else that many significant digits of every number."""
    error_digits: int = 3
    """Auto: significant digits kept of each uncertainty."""

    def __post_init__(self) -> None:
        if self.digits is not None and not 1 <= self.digits <= 17:
            msg = f"digits must be between 1 and 17 (17 keeps every number exactly); got {self.digits}"
            raise ValueError(msg)
        if not 1 <= self.error_digits <= 15:
            msg = f"error digits must be between 1 and 15; got {self.error_digits}"
            raise ValueError(msg)

    @property
    def exact(self) -> bool:
        return self.digits == 17

    def values(self, values: np.ndarray, uncertainty: np.ndarray) -> np.ndarray:
        """Values quoted with an uncertainty (broadcast against it): measured, errors, predictions."""
        if self.digits is not None:
            return round_relative(values, self.digits)
        return round_at(values, uncertainty, self.error_digits)

    def matrix(self, values: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
        """Matrix and per-universe entries, against the scale they are read on."""
        if self.digits is not None:
            return round_relative(values, self.digits)
        return round_at(values, scale, self.error_digits + 4)

    def plain(self, values: np.ndarray) -> np.ndarray:
        """Numbers without a natural scale (counts, chi-squares): six significant digits each."""
        return round_relative(values, self.digits if self.digits is not None else 6)


def _shortest(values: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Each value written with its own number of significant digits, back as float64."""
    flat, ndig = np.ravel(values), np.ravel(digits)
    out = np.array(
        [
            0.0 if d < 1 or v == 0 else float(f"{v:.{int(d) - 1}e}")
            for v, d in zip(flat, ndig, strict=True)
        ],
        dtype=np.float64,
    )
    return out.reshape(np.shape(values))


def round_relative(values: np.ndarray, digits: int) -> np.ndarray:
    """``digits`` significant digits of each value (17 returns the values unchanged)."""
    x = np.asarray(values, dtype=np.float64)
    if digits >= 17:
        return x.copy()
    return _shortest(x, np.full(x.shape, digits))


def round_at(values: np.ndarray, scale: np.ndarray | float, digits: int) -> np.ndarray:
    """Each value rounded at the decimal place of the ``digits``-th significant digit of its
    ``scale`` (broadcast); values below half that place become an exact 0. A zero or non-finite
    scale leaves the value with ``digits + 4`` significant digits of its own."""
    x = np.asarray(values, dtype=np.float64)
    s = np.abs(np.broadcast_to(np.asarray(scale, dtype=np.float64), x.shape))
    good = np.isfinite(s) & (s > 0)
    place = np.floor(np.log10(np.where(good, s, 1.0))) - (digits - 1)
    units = np.round(x / 10.0**place)  # the value in units of its last kept place
    with np.errstate(divide="ignore"):
        kept = np.floor(np.log10(np.where(units != 0, np.abs(units), 1.0))) + 1
    out = _shortest(units * 10.0**place, np.where(units != 0, kept, 0))
    return np.where(good, out, round_relative(x, digits + 4))
