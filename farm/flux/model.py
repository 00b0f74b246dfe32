"""The flux of a run: per-flavour spectra over the exposure, nominal and with its uncertainty.

A :class:`Flux` is built once, at the boundary (``farm.flux.sources`` from a source model,
``farm.flux.files`` from a flux file, ``farm.flux.record`` from an event store), and every later
step takes it: generation (:meth:`Flux.draw` gives its neutrinos) and ingest (its integral
normalises events), reweighting (its bins
carry the flux universes), extraction (Φ) and prediction (models are folded with it).

Each flavour's spectrum is one of four forms, all in neutrinos per cm² over the exposure:

- a **line** at E₀ carrying Φ₀ (the π-DAR ν_μ);
- a **density** S(E) on [lo, hi] times a scale c: F(E) = c · S(E) (π-DAR ν_e, ν̄_μ; reactor ν̄_e);
- a **sample** of weighted energies (E_k, Φ_k) (the nuSCOPE beamline Monte Carlo);
- a **histogram** (edges e_0 < … < e_n, contents Φ_b per bin), flat within each bin (a file).

All four give a quadrature *rule* (energies, fluences) with ∫ F g dE ≈ Σ_k Φ_k g(E_k): the rule
of a density or histogram is Gauss–Legendre on every interval between knots (the spectrum's own
and the analysis bin edges), so summing nodes by flux or truth bin integrates every bin exactly.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DensitySpectrum",
    "Flux",
    "FluxRule",
    "FluxUniverses",
    "HistogramSpectrum",
    "LineSpectrum",
    "SampledSpectrum",
    "Spectrum",
    "gauss_legendre",
]

FluxRule = dict[str, tuple[np.ndarray, np.ndarray]]
"""Per flavour, (energies in MeV, ν/cm² over the exposure carried by each node)."""

_NODES = 48
_HISTOGRAM_NODES = 16


@functools.cache
def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    # numpy refines the roots by Newton steps on every call (≈ 0.3 ms at n = 48)
    x, w = np.polynomial.legendre.leggauss(n)
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def gauss_legendre(lo: float, hi: float, n: int = _NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the n-point Gauss–Legendre rule on [lo, hi]."""
    x, w = _leggauss(n)
    return 0.5 * (hi - lo) * x + 0.5 * (hi + lo), 0.5 * (hi - lo) * w


def _piecewise(
    lo: float, hi: float, knots: Iterable[float], nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre on every interval between the knots inside [lo, hi]."""
    points = sorted(k for k in {lo, hi, *knots} if lo <= k <= hi)
    parts = [gauss_legendre(a, b, nodes) for a, b in itertools.pairwise(points) if b > a]
    if not parts:
        return np.zeros(0), np.zeros(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@dataclass(frozen=True, kw_only=True, eq=False)
class LineSpectrum:
    """A mono-energetic line: Φ₀ neutrinos per cm² at E₀ MeV."""

    energy_mev: float
    fluence: float
    kind: str = field(default="line", init=False)

    def rule(self, knots: Iterable[float] = ()) -> tuple[np.ndarray, np.ndarray]:
        del knots
        return np.array([self.energy_mev]), np.array([self.fluence])

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
        """``n`` energies from the spectrum and its Φ (see :meth:`Flux.draw`)."""
        del rng
        return np.full(n, self.energy_mev), self.fluence

    def draw_tilted(
        self, rng: np.random.Generator, n: int, power: float
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """See :meth:`Flux.draw_tilted` (a line has nothing to tilt: factors are 1)."""
        del power
        return _untilted(self, rng, n)

    @property
    def support(self) -> tuple[float, float]:
        return self.energy_mev, self.energy_mev


@dataclass(frozen=True, kw_only=True, eq=False)
class DensitySpectrum:
    """F(E) = scale · density(E) on [lo, hi] (density per MeV, e.g. per decay or fission).

    ``density`` must pickle (a module-level function or a ``functools.partial`` of one): the
    flux travels to workers with the run.
    """

    density: Callable[[np.ndarray], np.ndarray]
    scale: float
    lo: float
    hi: float
    knots: tuple[float, ...] = ()
    """Where the density has kinks (e.g. where a fit joins its extension): always knots."""
    sampler: Callable[..., np.ndarray] | None = None
    """``sampler(rng, n=n)`` draws n energies from the density; without one the spectrum cannot
    be drawn from. Must pickle, like ``density``."""
    fluence: float | None = None
    """Φ of a drawn sample, scale · ∫ density over [lo, hi], as the source model computes it;
    None for a density of unit integral (Φ is then ``scale``)."""
    kind: str = field(default="density", init=False)
    _tables: dict = field(default_factory=dict, init=False, repr=False)

    def rule(self, knots: Iterable[float] = ()) -> tuple[np.ndarray, np.ndarray]:
        e, w = _piecewise(self.lo, self.hi, {*self.knots, *knots}, _NODES)
        return e, self.scale * w * self.density(e)

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
        """``n`` energies from the spectrum and its Φ (see :meth:`Flux.draw`)."""
        if self.sampler is None:
            msg = "this density spectrum has no sampler: events cannot be drawn from it"
            raise ValueError(msg)
        return self.sampler(rng, n=n), self._phi

    @property
    def _phi(self) -> float:
        return self.scale if self.fluence is None else self.fluence

    def draw_tilted(
        self, rng: np.random.Generator, n: int, power: float
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """See :meth:`Flux.draw_tilted`: the inverse CDF of density · E^k tabulated on 2¹⁶
        equally spaced energies (trapezoids), one uniform per event."""
        if power == 0.0:
            return _untilted(self, rng, n)
        if power not in self._tables:
            grid = np.linspace(self.lo, self.hi, 1 << 16)
            density = self.density(grid)
            tilted = density * grid**power
            dx = np.diff(grid)
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (tilted[1:] + tilted[:-1]) * dx)])
            norm = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * dx)])
            self._tables[power] = (grid, cdf / cdf[-1], float(cdf[-1] / norm[-1]))
        grid, cdf, moment = self._tables[power]
        energies = np.interp(rng.random(n), cdf, grid)
        return energies, self._phi, _tilt_factor(moment, energies, power)

    @property
    def support(self) -> tuple[float, float]:
        return self.lo, self.hi


@dataclass(frozen=True, kw_only=True, eq=False)
class SampledSpectrum:
    """A weighted sample: energies E_k (MeV) carrying Φ_k neutrinos per cm² each."""

    energies: np.ndarray
    fluences: np.ndarray
    simulate: Callable[..., dict[str, np.ndarray]] | None = None
    """The Monte Carlo the sample was made with, when there is one: ``simulate(rng, n=n)`` draws
    n fresh neutrinos, a dict of per-event arrays with ``enu_mev``, ``fluence`` (ν/cm² carried by
    each draw over the exposure, so the mean of n estimates Φ) and the simulation's own columns
    (e.g. where and in which direction a beam neutrino crosses the detector face). Must pickle."""
    kind: str = field(default="sample", init=False)

    def rule(self, knots: Iterable[float] = ()) -> tuple[np.ndarray, np.ndarray]:
        del knots
        return self.energies, self.fluences

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
        """``n`` energies from the sample by their fluences, and its Φ (see :meth:`Flux.draw`)."""
        cumulative = np.cumsum(self.fluences)
        k = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
        return self.energies[np.minimum(k, self.energies.size - 1)], float(cumulative[-1])

    def draw_tilted(
        self, rng: np.random.Generator, n: int, power: float
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """See :meth:`Flux.draw_tilted`: the sample drawn by Φ_k E_k^p."""
        if power == 0.0:
            return _untilted(self, rng, n)
        tilted = self.fluences * self.energies**power
        cumulative = np.cumsum(tilted)
        k = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
        energies = self.energies[np.minimum(k, self.energies.size - 1)]
        phi = float(self.fluences.sum())
        return energies, phi, _tilt_factor(float(cumulative[-1]) / phi, energies, power)

    @property
    def support(self) -> tuple[float, float]:
        live = self.energies[self.fluences > 0]
        return (float(live.min()), float(live.max())) if live.size else (0.0, 0.0)


@dataclass(frozen=True, kw_only=True, eq=False)
class HistogramSpectrum:
    """Φ_b neutrinos per cm² in each bin [e_b, e_b+1) MeV, spread evenly within the bin."""

    edges: np.ndarray
    contents: np.ndarray
    kind: str = field(default="histogram", init=False)

    def __post_init__(self) -> None:
        edges = np.asarray(self.edges, dtype=np.float64)
        contents = np.asarray(self.contents, dtype=np.float64)
        if edges.ndim != 1 or contents.shape != (edges.size - 1,) or edges.size < 2:
            msg = f"a histogram needs n + 1 edges for n contents; got {edges.size} edges, {contents.size} contents"
            raise ValueError(msg)
        if np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
            msg = "histogram edges must be finite and strictly increasing"
            raise ValueError(msg)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "contents", contents)

    def rule(self, knots: Iterable[float] = ()) -> tuple[np.ndarray, np.ndarray]:
        """16 Gauss–Legendre nodes on each piece between the histogram's edges and the knots:
        Σ of a bin's node weights is its content (to rounding), for any knots."""
        e, w = _piecewise(self.edges[0], self.edges[-1], {*self.edges, *knots}, _HISTOGRAM_NODES)
        b = np.clip(np.searchsorted(self.edges, e, side="right") - 1, 0, self.contents.size - 1)
        density = self.contents / np.diff(self.edges)
        return e, w * density[b]

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
        """``n`` energies by the inverse CDF (one uniform each: a bin by its content, then flat
        within it), and its Φ (see :meth:`Flux.draw`)."""
        cumulative = np.cumsum(self.contents)
        total = float(cumulative[-1])
        if not total > 0:
            msg = "a histogram with no content: events cannot be drawn from it"
            raise ValueError(msg)
        x = rng.random(n) * total
        last = int(np.flatnonzero(self.contents > 0)[-1])
        b = np.minimum(np.searchsorted(cumulative, x, side="right"), last)
        below = cumulative[b] - self.contents[b]
        within = np.clip((x - below) / self.contents[b], 0.0, 1.0)
        return self.edges[b] + within * np.diff(self.edges)[b], total

    def draw_tilted(
        self, rng: np.random.Generator, n: int, power: float
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """See :meth:`Flux.draw_tilted`: a bin by its ∫ E^p (content / width times
        (e₊^{p+1} − e₋^{p+1}) / (p + 1)), then E^{p+1} uniform within it (the exact inverse CDF
        of a flat bin times E^p)."""
        if power == 0.0:
            return _untilted(self, rng, n)
        lo, hi = self.edges[:-1] ** (power + 1.0), self.edges[1:] ** (power + 1.0)
        moments = self.contents / np.diff(self.edges) * (hi - lo) / (power + 1.0)
        cumulative = np.cumsum(moments)
        phi = float(self.contents.sum())
        if not (phi > 0 and cumulative[-1] > 0):
            msg = "a histogram with no content: events cannot be drawn from it"
            raise ValueError(msg)
        last = int(np.flatnonzero(moments > 0)[-1])
        x = rng.random(n) * cumulative[-1]
        b = np.minimum(np.searchsorted(cumulative, x, side="right"), last)
        within = np.clip((x - (cumulative[b] - moments[b])) / moments[b], 0.0, 1.0)
        energies = np.clip(
            (lo[b] + within * (hi[b] - lo[b])) ** (1.0 / (power + 1.0)),
            self.edges[b],
            self.edges[b + 1],
        )
        return energies, phi, _tilt_factor(float(cumulative[-1]) / phi, energies, power)

    @property
    def support(self) -> tuple[float, float]:
        return float(self.edges[0]), float(self.edges[-1])


Spectrum = LineSpectrum | DensitySpectrum | SampledSpectrum | HistogramSpectrum


@dataclass(frozen=True, kw_only=True, eq=False)
class FluxUniverses:
    """The flux's own uncertainty: a fractional covariance on its bins, or N universe histograms.

    Bins run over ``flavors`` in that order, then by energy (``edges`` per flavour). A PPFX-style
    publication gives ``histograms`` (N, bins): ν/cm² per bin in each universe, over the same
    exposure as the nominal; a covariance file gives ``covariance`` (bins, bins), fractional.
    """

    flavors: tuple[str, ...]
    edges: tuple[np.ndarray, ...]
    nominal: np.ndarray
    """ν/cm² per bin at the nominal flux (the universes' reference)."""
    covariance: np.ndarray | None = None
    histograms: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = sum(e.size - 1 for e in self.edges)
        if (self.covariance is None) == (self.histograms is None):
            msg = "flux universes are either a covariance or histograms, exactly one"
            raise ValueError(msg)
        if self.nominal.shape != (n,):
            msg = f"flux universes: the nominal holds {self.nominal.shape} values for {n} bins"
            raise ValueError(msg)
        if self.covariance is not None and self.covariance.shape != (n, n):
            msg = f"flux universes: the covariance has shape {self.covariance.shape}, the bins are {n}"
            raise ValueError(msg)
        if self.histograms is not None and (
            self.histograms.ndim != 2 or self.histograms.shape[1] != n
        ):
            msg = (
                f"flux universes: the histograms have shape {self.histograms.shape}, need (N, {n})"
            )
            raise ValueError(msg)

    @property
    def n_universes(self) -> int | None:
        """N for histograms, None for a covariance (which throws as many as asked)."""
        return None if self.histograms is None else int(self.histograms.shape[0])

    def checksum(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(",".join(self.flavors).encode())
        for array in (*self.edges, self.nominal, self.covariance, self.histograms):
            if array is not None:
                h.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return h.hexdigest()


@dataclass(frozen=True, kw_only=True, eq=False)
class Flux:
    """The nominal flux of a run per flavour, over its exposure, and its uncertainty model.

    ``exposure`` is what the fluences are over, e.g. ``{"value": 1e20, "unit": "POT"}``;
    ``source`` says where the flux comes from in words (a model, a file and its checksum).
    """

    spectra: Mapping[str, Spectrum]
    exposure: Mapping[str, float | str]
    source: str
    universes: FluxUniverses | None = None

    @property
    def flavors(self) -> tuple[str, ...]:
        return tuple(self.spectra)

    def rule(self, knots: Mapping[str, Sequence[float]] | None = None) -> FluxRule:
        """The quadrature rule per flavour; ``knots`` per flavour are the analysis bin edges
        (flux bins, and truth bins in E_ν) that no node may straddle."""
        knots = knots or {}
        return {f: s.rule(knots.get(f, ())) for f, s in self.spectra.items()}

    def draw(self, flavor: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
        """``n`` energies (MeV) of ``flavor`` drawn from its spectrum, and the spectrum's Φ
        (ν/cm² over the exposure): each of N drawn events carries Φ / N (a generator's weights).

        Raises
        ------
        ValueError
            A flavour the flux does not have, or a density without a sampler.
        """
        if flavor not in self.spectra:
            msg = f"the flux ({self.source}) has no {flavor} spectrum to draw events from"
            raise ValueError(msg)
        return self.spectra[flavor].draw(rng, n)

    def draw_tilted(
        self, flavor: str, rng: np.random.Generator, n: int, power: float
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """Importance sampling: ``n`` energies drawn from F(E)·E^p instead of F(E), Φ, and each
        event's factor (F/Φ)/(F E^p/M_p) = (M_p/Φ)/E^p (M_p = ∫F E^p) that restores F: each
        event carries Φ · factor / N. p > 0 spends the events where a rising cross section is
        large (CEvNS grows as E², and only the high-energy tail passes a keV threshold). At
        p = 0 this is :meth:`draw` with factors 1.

        Raises
        ------
        ValueError
            As :meth:`draw`.
        """
        if flavor not in self.spectra:
            msg = f"the flux ({self.source}) has no {flavor} spectrum to draw events from"
            raise ValueError(msg)
        return self.spectra[flavor].draw_tilted(rng, n, power)

    def simulate(self, flavor: str, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """``n`` fresh neutrinos of ``flavor`` from the Monte Carlo the spectrum was made with,
        with each one's fluence and the simulation's own columns (:attr:`SampledSpectrum.simulate`).

        Raises
        ------
        ValueError
            A flavour the flux does not have, or a spectrum that is not a simulation's (a file's
            histogram, a model's density): it gives energies only.
        """
        spectrum = self.spectra.get(flavor)
        if spectrum is None:
            msg = f"the flux ({self.source}) has no {flavor} spectrum to draw events from"
            raise ValueError(msg)
        if not isinstance(spectrum, SampledSpectrum) or spectrum.simulate is None:
            msg = (
                f"the {flavor} flux ({self.source}) is a {spectrum.kind} of energies, not a "
                "simulation that also gives where each neutrino enters the detector"
            )
            raise ValueError(msg)
        return spectrum.simulate(rng, n=n)

    def integral(self, flavors: Iterable[str] | None = None) -> float:
        """Φ: neutrinos per cm² over the exposure, summed over ``flavors`` (default all)."""
        chosen = self.flavors if flavors is None else tuple(flavors)
        return float(
            sum(float(self.spectra[f].rule()[1].sum()) for f in chosen if f in self.spectra)
        )

    def histogram(self, flavor: str, edges: Sequence[float]) -> np.ndarray:
        """ν/cm² of one flavour in each bin of ``edges`` (MeV), integrated exactly per bin."""
        edges = np.asarray(edges, dtype=np.float64)
        e, w = self.spectra[flavor].rule(edges)
        b = np.searchsorted(edges, e, side="right") - 1
        keep = (b >= 0) & (b < edges.size - 1)
        return np.bincount(b[keep], weights=w[keep], minlength=edges.size - 1)

    def checksum(self) -> str:
        """Identity of the nominal flux (its rule with no extra knots) and its universes."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr(sorted((str(k), str(v)) for k, v in self.exposure.items())).encode())
        for flavor in sorted(self.spectra):
            e, w = self.spectra[flavor].rule()
            h.update(flavor.encode())
            h.update(np.ascontiguousarray(e, dtype=np.float64).tobytes())
            h.update(np.ascontiguousarray(w, dtype=np.float64).tobytes())
        if self.universes is not None:
            h.update(self.universes.checksum().encode())
        return h.hexdigest()

    def scaled(self, factor: float, exposure: Mapping[str, float | str]) -> Flux:
        """The same spectra times ``factor``, over ``exposure`` (e.g. a longer run)."""
        return Flux(
            spectra={f: _scale(s, factor) for f, s in self.spectra.items()},
            exposure=dict(exposure),
            source=self.source,
            universes=None if self.universes is None else _scale_universes(self.universes, factor),
        )


def _untilted(spectrum: Spectrum, rng: np.random.Generator, n: int) -> tuple:
    """A draw at power 0: the plain draw, every factor 1."""
    energies, phi = spectrum.draw(rng, n)
    return energies, phi, np.ones(n)


def _tilt_factor(moment: float, energies: np.ndarray, power: float) -> np.ndarray:
    """(M_p/Φ) / E^p per event (0 at E = 0, which a tilted draw reaches with probability 0)."""
    factor = np.zeros(energies.size)
    np.divide(moment, energies**power, out=factor, where=energies > 0)
    return factor


def _scale(s: Spectrum, factor: float) -> Spectrum:
    if isinstance(s, LineSpectrum):
        return LineSpectrum(energy_mev=s.energy_mev, fluence=s.fluence * factor)
    if isinstance(s, DensitySpectrum):
        return DensitySpectrum(
            density=s.density,
            scale=s.scale * factor,
            lo=s.lo,
            hi=s.hi,
            knots=s.knots,
            sampler=s.sampler,
            fluence=None if s.fluence is None else s.fluence * factor,
        )
    if isinstance(s, SampledSpectrum):
        return SampledSpectrum(energies=s.energies, fluences=s.fluences * factor)
    return HistogramSpectrum(edges=s.edges, contents=s.contents * factor)


def _scale_universes(u: FluxUniverses, factor: float) -> FluxUniverses:
    return FluxUniverses(
        flavors=u.flavors,
        edges=u.edges,
        nominal=u.nominal * factor,
        covariance=u.covariance,
        histograms=None if u.histograms is None else u.histograms * factor,
    )
