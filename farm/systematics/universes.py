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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from farm.config.analysis import SystematicSection
from farm.systematics.fluxbins import FluxBins

__all__ = [
    "ALL_KNOBS",
    "UniverseSet",
    "build_universe_set",
    "flux_fractional_covariance",
    "integral_preserving_projector",
    "knob_key",
    "throw_rng",
    "touched_flavors",
]


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def throw_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """The random stream of one throw of one systematic."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, _name_key(name), index]))
    )


def touched_flavors(syst: SystematicSection, bins: FluxBins) -> list[str]:
    """The flavours a flux systematic varies (its ``flavors``, default all), each checked to have
    flux bins; a :class:`ValueError` names the unknown ones and what to give instead."""
    flavors = list(syst.flavors or bins.flavors)
    unknown = sorted(set(flavors) - set(bins.flavors))
    if unknown:
        msg = (
            f"systematic {syst.name!r}: flavours {', '.join(unknown)} have no flux_edges_mev in "
            f"[binning]; give flavors among {', '.join(bins.flavors)}, or add their edges"
        )
        raise ValueError(msg)
    return flavors


def flux_fractional_covariance(
    syst: SystematicSection,
    bins: FluxBins,
    fission_jacobian: np.ndarray | None = None,
    external: np.ndarray | None = None,
) -> np.ndarray:
    """Fractional covariance of the flux on the touched flux bins.

    V = n² (fully correlated normalisation) + s² exp(−Δ²/2ℓ²) (shape, Δ the distance of the bins'
    ln E_ν centres within a flavour) + J Σ_f Jᵀ (fission fractions, J the relative change of each
    bin per unit fraction) + V_ext (``external``: a given fractional covariance over the touched
    bins in flux-bin order, from ``covariance_file``).
    """
    n = bins.n_bins - 1
    flavors = touched_flavors(syst, bins)
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
                f"systematic {syst.name!r}: fission_fraction_sigma moves the fission fractions of "
                "a reactor's Huber-Mueller model, and this run's flux is no such model (another "
                "sample, or a [flux] file): drop fission_fraction_sigma (a file's own universes "
                "are from_flux = true), or remove [flux]"
            )
            raise ValueError(msg)
        jac = fission_jacobian * touched[:, None]
        cov += syst.fission_fraction_sigma**2 * (jac @ jac.T)
    if external is not None:
        k = int(touched.sum())
        if external.shape != (k, k):
            msg = f"systematic {syst.name!r}: the covariance_file matrix has shape {external.shape}; it needs ({k}, {k}), one row per touched flux bin"
            raise ValueError(msg)
        cov[np.ix_(touched, touched)] += external
    return cov


def integral_preserving_projector(
    syst: SystematicSection, bins: FluxBins, signal_flux: np.ndarray
) -> np.ndarray:
    """The projection that removes the part of a flux throw which moves Φ (``preserve_integral``).

    A throw is a fractional change δ_b of each flux bin b (ratio r_b = 1 + δ_b). With w_b = F̄_b
    the nominal fluence of the signal flavours in bin b (``signal_flux``, zero for other
    flavours) and u_b = 1 on the bins the systematic touches (0 elsewhere), the projected throw

        δ' = Π δ,    Π = I − u wᵀ / (wᵀ u),

    is δ minus one uniform fractional shift c = wᵀδ / wᵀu over the touched bins: its
    normalisation part, measured on the signal flavours. Then wᵀδ' = 0, so every universe keeps
    Φ_u = Σ_b F̄_b r_b = Φ̄ while the shape varies with covariance Π V Πᵀ (V the declared one).
    Π is idempotent and leaves a throw that already keeps Φ unchanged.

    Raises
    ------
    ValueError
        If the systematic touches no bin of a signal flavour with nominal flux (it never moves Φ).
    """
    n = bins.n_bins - 1
    touched = np.zeros(n)
    for f in touched_flavors(syst, bins):
        touched[bins.flavor_slice(f)] = 1.0
    if np.shape(signal_flux) != (n + 1,):
        msg = f"signal_flux has shape {np.shape(signal_flux)}; give one value per flux bin ({n + 1}, the last the untouched bin)"
        raise ValueError(msg)
    weights = np.asarray(signal_flux, dtype=np.float64)[:n]
    overlap = float(weights @ touched)
    if not overlap > 0:
        msg = (
            f"systematic {syst.name!r}: preserve_integral keeps the integrated flux Φ of the signal "
            "flavours fixed, but the systematic touches no flux bin of a signal flavour with "
            "nominal flux, so it never moves Φ; remove preserve_integral, or give it flavors "
            "among [binning] signal_flavors"
        )
        raise ValueError(msg)
    return np.eye(n) - np.outer(touched, weights) / overlap


def _cholesky_like(cov: np.ndarray) -> np.ndarray:
    """A factor L with L Lᵀ = cov for a positive semi-definite cov (eigen-decomposition)."""
    vals, vecs = np.linalg.eigh(cov)
    if vals.min() < -1e-10 * max(vals.max(), 1e-300):
        msg = (
            "a flux covariance is not positive semi-definite; check its normalization/shape inputs"
        )
        raise ValueError(msg)
    # eigenvalues at round-off level are zero: keeps a pure normalisation exactly uniform
    vals = np.where(vals > 1e-12 * max(vals.max(), 0.0), vals, 0.0)
    return vecs * np.sqrt(vals)


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
    throw_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Per universe, its index within its systematic: the throw's seed is (seed, name, index)."""

    def __post_init__(self) -> None:
        if self.throw_index.size == 0 and self.systematic_index.size:
            object.__setattr__(self, "throw_index", np.zeros(self.systematic_index.size, np.int64))

    @property
    def n_universes(self) -> int:
        return int(self.systematic_index.size)

    def universes_of(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.systematic_index == self.names.index(name))

    def is_flux(self) -> np.ndarray:
        """Universes that differ from the central value only by their flux (factorised path)."""
        kinds = np.array([*self.kinds, "cv"])
        return kinds[self.systematic_index] == "flux"

    def in_total(self) -> tuple[bool, ...]:
        """Which systematics add into the total covariance (not the joint all-knob set)."""
        return tuple(kind != "all" for kind in self.kinds)

    def checksum(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(
            json.dumps({"seed": self.seed, "names": self.names, "groups": self.groups}).encode()
        )
        for array in (self.systematic_index, self.throw_index, self.flux_ratio, self.bootstrap):
            h.update(np.ascontiguousarray(array).tobytes())
        for key in sorted(self.knobs):
            h.update(key.encode())
            h.update(np.ascontiguousarray(self.knobs[key]).tobytes())
        return h.hexdigest()


ALL_KNOBS = "all_knobs"
"""Name (and group) of the joint set in which every flux systematic and knob is thrown at once."""


def _flux_factor(
    syst: SystematicSection,
    bins: FluxBins,
    jacobian: np.ndarray | None,
    external: np.ndarray | None = None,
    signal_flux: np.ndarray | None = None,
) -> np.ndarray:
    """A factor L of the systematic's fractional covariance (throws L z), projected by
    :func:`integral_preserving_projector` when it declares ``preserve_integral``."""
    if syst.mode == "unisim":
        msg = f"systematic {syst.name!r}: flux systematics are covariances; use mode = 'multisim'"
        raise ValueError(msg)
    if syst.covariance_file is not None and external is None:
        msg = f"systematic {syst.name!r}: covariance_file {syst.covariance_file} was not read; pass its matrix in flux_covariances"
        raise ValueError(msg)
    factor = _cholesky_like(flux_fractional_covariance(syst, bins, jacobian, external))
    if not syst.preserve_integral:
        return factor
    if signal_flux is None:
        msg = f"systematic {syst.name!r}: preserve_integral needs the nominal flux of the signal flavours per flux bin; pass signal_flux"
        raise ValueError(msg)
    projected = integral_preserving_projector(syst, bins, signal_flux) @ factor
    if not np.abs(projected).max(initial=0.0) > 1e-9 * np.abs(factor).max(initial=0.0):
        msg = (
            f"systematic {syst.name!r}: with preserve_integral nothing of its covariance is left: "
            "it only moves the integrated flux Φ; declare a shape (shape, fission_fraction_sigma "
            "or a covariance_file with a shape part), or set preserve_integral = false"
        )
        raise ValueError(msg)
    return projected


def _flux_shift(syst: SystematicSection, factor: np.ndarray, seed: int, index: int) -> np.ndarray:
    """Fractional flux change per touched bin in throw ``index`` of ``syst``: L z."""
    return factor @ throw_rng(seed, syst.name, index).standard_normal(factor.shape[1])


def knob_key(syst: SystematicSection) -> str:
    """The key of a knob's values in :attr:`UniverseSet.knobs`: its parameter, and for
    ``channel_norm`` the channels it normalises (``channel_norm:CC_RES+CC_DIS``), so that two such
    knobs on other channels are two parameters."""
    if syst.parameter == "channel_norm":
        return f"channel_norm:{'+'.join(syst.channels or ())}"
    return str(syst.parameter)


def _count(syst: SystematicSection, universes: int | None, available: Mapping[str, int]) -> int:
    """Universes of one systematic: 2 for a unisim; for one that brings its universes, the first
    ``universes`` (``--universes``) or ``throws`` (when set) of those it has, else all."""
    if syst.name in available:
        have = available[syst.name]
        if syst.mode == "unisim":
            if have != 2:
                msg = f"systematic {syst.name!r}: a unisim needs 2 universes (+1σ, −1σ); its weight set holds {have}"
                raise ValueError(msg)
            return 2
        wanted = universes or (syst.throws if "throws" in syst.model_fields_set else have)
        return min(wanted, have)
    return 2 if syst.mode == "unisim" else (universes or syst.throws)


def _knob_shift(syst: SystematicSection, seed: int, index: int) -> float:
    return syst.sigma * float(throw_rng(seed, syst.name, index).standard_normal())


def build_universe_set(
    systematics: Sequence[SystematicSection],
    bins: FluxBins,
    *,
    seed: int,
    fission_jacobian: np.ndarray | None = None,
    universes: int | None = None,
    all_knob_universes: int = 0,
    flux_covariances: Mapping[str, np.ndarray] | None = None,
    signal_flux: np.ndarray | None = None,
    flux_throws: Mapping[str, np.ndarray] | None = None,
    weight_universes: Mapping[str, int] | None = None,
) -> UniverseSet:
    """Throw every systematic.

    ``universes`` (if given) overrides each multisim's ``throws``. ``all_knob_universes`` appends
    a joint set (systematic ``"all_knobs"``) whose universe i throws every flux systematic and
    knob at once with exactly the values of universe i of its per-knob set. ``flux_covariances``
    gives, per flux systematic with a ``covariance_file``, the matrix read from it
    (``farm.analysis.pipeline.read_flux_covariance``). ``signal_flux`` is the nominal fluence of
    the signal flavours per flux bin (n_bins values, ``farm.analysis.predict.binned_flux``), whose
    sum Φ̄ the flux systematics with ``preserve_integral`` keep in every universe.

    Some systematics bring their universes rather than throwing them: ``flux_throws`` gives, per
    flux systematic with ``from_flux`` universe histograms, each universe's flux ratio per flux
    bin (N, n_bins − 1; farm.flux.universes); ``weight_universes`` gives, per ``weights``
    systematic, the number of universes its weight set holds. Universe i of such a systematic is
    the set's i-th (its throw index); it takes the first ``throws`` of them when ``throws`` is
    set, ``universes`` of them with ``--universes``, else all.
    """
    if universes is not None and universes < 1:
        msg = f"the number of universes per multisim systematic must be at least 1 (got {universes}); give --universes N with N >= 1"
        raise ValueError(msg)
    external = dict(flux_covariances or {})
    given = {name: np.asarray(r, dtype=np.float64) for name, r in (flux_throws or {}).items()}
    available = {name: r.shape[0] for name, r in given.items()} | dict(weight_universes or {})
    counts = [_count(s, universes, available) for s in systematics]
    names = [s.name for s in systematics]
    if all_knob_universes:
        if ALL_KNOBS in names:
            msg = f"the systematic name {ALL_KNOBS!r} is reserved for the joint set"
            raise ValueError(msg)
        counts.append(all_knob_universes)
    total = 1 + sum(counts)
    systematic_index = np.full(total, -1, dtype=np.int32)
    throw_index = np.zeros(total, dtype=np.int64)
    flux_ratio = np.ones((total, bins.n_bins))
    bootstrap = np.full(total, -1, dtype=np.int64)
    knobs: dict[str, np.ndarray] = {}
    factors = {
        s.name: _flux_factor(s, bins, fission_jacobian, external.get(s.name), signal_flux)
        for s in systematics
        if s.kind == "flux" and s.name not in given
    }
    projectors = {
        s.name: integral_preserving_projector(s, bins, signal_flux)  # type: ignore[arg-type]
        for s in systematics
        if s.name in given and s.preserve_integral
    }
    start = 1
    for k, (syst, count) in enumerate(zip(systematics, counts, strict=False)):
        rows = slice(start, start + count)
        systematic_index[rows] = k
        throw_index[rows] = np.arange(count)
        if syst.kind == "flux" and syst.name in given:
            shift = given[syst.name][:count] - 1.0
            if syst.name in projectors:
                shift = shift @ projectors[syst.name].T
            flux_ratio[rows, :-1] += shift
        elif syst.kind == "flux":
            flux_ratio[rows, :-1] += np.stack(
                [_flux_shift(syst, factors[syst.name], seed, i) for i in range(count)]
            )
        elif syst.kind == "weights":
            pass  # per-event universes: column throw_index of the weight set (farm.weights)
        elif syst.kind == "knob":
            values = knobs.setdefault(knob_key(syst), np.zeros(total))
            if syst.mode == "unisim":
                values[rows] = [syst.sigma, -syst.sigma]
            else:
                values[rows] = [_knob_shift(syst, seed, i) for i in range(count)]
        else:
            # replica ids carry the systematic's name, so two bootstrap sets are independent
            bootstrap[rows] = ((_name_key(syst.name) & (2**40 - 1)) << 20) + np.arange(count)
        start += count
    if all_knob_universes:
        rows = slice(start, start + all_knob_universes)
        systematic_index[rows] = len(systematics)
        throw_index[rows] = np.arange(all_knob_universes)
        for syst in systematics:
            if syst.kind == "flux" and syst.name in given:
                have = given[syst.name].shape[0]
                if all_knob_universes > have:
                    msg = (
                        f"[analysis] all_knob_universes = {all_knob_universes}: systematic "
                        f"{syst.name!r} has only {have} flux universes; lower it to at most {have}"
                    )
                    raise ValueError(msg)
                shift = given[syst.name][:all_knob_universes] - 1.0
                if syst.name in projectors:
                    shift = shift @ projectors[syst.name].T
                flux_ratio[rows, :-1] += shift
            elif syst.kind == "flux":
                flux_ratio[rows, :-1] += np.stack(
                    [
                        _flux_shift(syst, factors[syst.name], seed, i)
                        for i in range(all_knob_universes)
                    ]
                )
            elif syst.kind == "knob":
                values = knobs.setdefault(knob_key(syst), np.zeros(total))
                values[rows] += [_knob_shift(syst, seed, i) for i in range(all_knob_universes)]
    if (flux_ratio < 0).any():
        row = int(np.argmax((flux_ratio < 0).any(axis=1)))
        owner = int(systematic_index[row])
        name = names[owner] if owner < len(names) else ALL_KNOBS
        msg = (
            f"[[systematics]] {name!r}: flux universe {int(throw_index[row])} has a negative flux "
            "in some bin; the flux uncertainty is too large for Gaussian throws: lower its "
            "normalization or shape (or give its universes as histograms, from_flux)"
        )
        raise ValueError(msg)
    extra = (ALL_KNOBS,) if all_knob_universes else ()
    return UniverseSet(
        seed=seed,
        names=(*names, *extra),
        groups=(*(s.group_name for s in systematics), *extra),
        kinds=(*(s.kind for s in systematics), *(("all",) if all_knob_universes else ())),
        systematic_index=systematic_index,
        throw_index=throw_index,
        flux_ratio=flux_ratio,
        knobs=knobs,
        bootstrap=bootstrap,
    )
