"""Universe sets: the throws of every systematic, reproducible from (seed, name, index).

Universe 0 is the central value. Each systematic then owns a consecutive range of universes
(``n_universes`` of them: ``throws`` for multisim, 2 for a ±1σ unisim). A throw depends only on
(base seed, systematic name, universe index within the systematic), never on the partitioning,
the worker, or which other systematics are declared: per-knob and all-knob sets come from the same
definitions and agree universe by universe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from farm.config.analysis import SystematicSection
from farm.systematics.fluxbins import FluxBins

__all__ = ["UniverseSet", "build_universe_set", "flux_fractional_covariance", "throw_rng"]


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def throw_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """The random stream of one throw of one systematic."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, _name_key(name), index]))
    )


def flux_fractional_covariance(
    syst: SystematicSection, bins: FluxBins, fission_jacobian: np.ndarray | None = None
) -> np.ndarray:
    """Fractional covariance of the flux on the touched flux bins.

    V = n² (fully correlated normalisation) + s² exp(−Δ²/2ℓ²) (shape, Δ the distance of the bins'
    ln E_ν centres within a flavour) + J Σ_f Jᵀ (fission fractions, J the relative change of each
    bin per unit fraction).
    """
    n = bins.n_bins - 1
    flavors = syst.flavors or list(bins.flavors)
    unknown = sorted(set(flavors) - set(bins.flavors))
    if unknown:
        msg = f"systematic {syst.name!r}: flavours {', '.join(unknown)} have no flux_edges_mev in [binning]"
        raise ValueError(msg)
    touched = np.zeros(n, dtype=bool)
    same_flavor = np.zeros((n, n), dtype=bool)
    for f in flavors:
        s = bins.flavor_slice(f)
        touched[s] = True
        same_flavor[s, s] = True
    mask = np.outer(touched, touched)
    cov = syst.normalization**2 * mask.astype(np.float64)
    if syst.shape:
        x = bins.centers_log()
        delta = x[:, None] - x[None, :]
        kernel = np.exp(-0.5 * (delta / syst.shape_correlation_length) ** 2)
        cov += syst.shape**2 * kernel * same_flavor
    if syst.fission_fraction_sigma:
        if fission_jacobian is None:
            msg = (
                f"systematic {syst.name!r}: fission_fraction_sigma applies to reactor samples only"
            )
            raise ValueError(msg)
        jac = fission_jacobian * touched[:, None]
        cov += syst.fission_fraction_sigma**2 * (jac @ jac.T)
    return cov


def _cholesky_like(cov: np.ndarray) -> np.ndarray:
    """A factor L with L Lᵀ = cov for a positive semi-definite cov (eigen-decomposition)."""
    vals, vecs = np.linalg.eigh(cov)
    if vals.min() < -1e-10 * max(vals.max(), 1e-300):
        msg = (
            "a flux covariance is not positive semi-definite; check its normalization/shape inputs"
        )
        raise ValueError(msg)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


@dataclass(frozen=True, kw_only=True)
class UniverseSet:
    """All universes of an analysis, as arrays over the universe axis (0 = central value)."""

    seed: int
    names: tuple[str, ...]
    groups: tuple[str, ...]
    systematic_index: np.ndarray
    """Per universe, the index into ``names`` of its systematic (−1 for the central value)."""
    flux_ratio: np.ndarray
    """(n_universe, n_flux_bins): flux in the universe over nominal, per flux bin."""
    knobs: dict[str, np.ndarray] = field(default_factory=dict)
    """Per knob parameter, its shift in every universe (0 where not thrown)."""
    bootstrap: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per universe, the bootstrap replica number (−1 where no bootstrap)."""
    kinds: tuple[str, ...] = ()

    @property
    def n_universes(self) -> int:
        return int(self.systematic_index.size)

    def universes_of(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.systematic_index == self.names.index(name))

    def is_flux(self) -> np.ndarray:
        kinds = np.array([*self.kinds, "cv"])
        return kinds[self.systematic_index] == "flux"

    def checksum(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(
            json.dumps({"seed": self.seed, "names": self.names, "groups": self.groups}).encode()
        )
        for array in (self.systematic_index, self.flux_ratio, self.bootstrap):
            h.update(np.ascontiguousarray(array).tobytes())
        for key in sorted(self.knobs):
            h.update(key.encode())
            h.update(np.ascontiguousarray(self.knobs[key]).tobytes())
        return h.hexdigest()


def build_universe_set(
    systematics: Sequence[SystematicSection],
    bins: FluxBins,
    *,
    seed: int,
    fission_jacobian: np.ndarray | None = None,
    universes: int | None = None,
) -> UniverseSet:
    """Throw every systematic. ``universes`` (if given) overrides each multisim's ``throws``."""
    counts = [(2 if s.mode == "unisim" else (universes or s.throws)) for s in systematics]
    total = 1 + sum(counts)
    systematic_index = np.full(total, -1, dtype=np.int32)
    flux_ratio = np.ones((total, bins.n_bins))
    bootstrap = np.full(total, -1, dtype=np.int64)
    knobs: dict[str, np.ndarray] = {}
    start = 1
    for k, (syst, count) in enumerate(zip(systematics, counts, strict=True)):
        rows = slice(start, start + count)
        systematic_index[rows] = k
        if syst.kind == "flux":
            if syst.mode == "unisim":
                msg = f"systematic {syst.name!r}: flux systematics are covariances; use mode = 'multisim'"
                raise ValueError(msg)
            factor = _cholesky_like(flux_fractional_covariance(syst, bins, fission_jacobian))
            z = np.stack(
                [
                    throw_rng(seed, syst.name, i).standard_normal(factor.shape[1])
                    for i in range(count)
                ]
            )
            flux_ratio[rows, :-1] = 1.0 + z @ factor.T
        elif syst.kind == "knob":
            values = knobs.setdefault(str(syst.parameter), np.zeros(total))
            if syst.mode == "unisim":
                values[rows] = [syst.sigma, -syst.sigma]
            else:
                values[rows] = [
                    syst.sigma * throw_rng(seed, syst.name, i).standard_normal()
                    for i in range(count)
                ]
        else:
            bootstrap[rows] = np.arange(count)
        start += count
    if (flux_ratio < 0).any():
        msg = "a flux universe has a negative flux in some bin; the flux uncertainty is too large for Gaussian throws"
        raise ValueError(msg)
    return UniverseSet(
        seed=seed,
        names=tuple(s.name for s in systematics),
        groups=tuple(s.group_name for s in systematics),
        kinds=tuple(s.kind for s in systematics),
        systematic_index=systematic_index,
        flux_ratio=flux_ratio,
        knobs=knobs,
        bootstrap=bootstrap,
    )
