"""What a run derives from its configuration alone, before any event is read.

The binning it needs, the number of targets of the store's target, the detection efficiency the
knobs reweight with, the fission-fraction jacobian of a reactor flux, the external flux
covariances of ``[[systematics]] covariance_file`` and, from all of these, the set of universes
the run throws. :mod:`farm.analysis.pipeline` uses them both to check a configuration before
running and to prepare the accumulation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from farm.analysis.nominal_flux import FluxRule
from farm.analysis.predict import binned_flux
from farm.config import FarmConfig
from farm.config.analysis import BinningSection, SystematicSection
from farm.flux.model import Flux
from farm.flux.universes import universe_covariance, universe_ratios
from farm.physics import flux as flux_physics
from farm.physics.constants import SIN2W_LOW_Q2
from farm.resolve import fission_fractions, readout_of, run_flux
from farm.reweight.knobs import KnobContext
from farm.reweight.readout_shift import (
    RESPONSE_KNOBS,
    Readout,
    check_response_knob,
)
from farm.store.schema import Channel
from farm.systematics.fluxbins import FluxBins
from farm.systematics.universes import UniverseSet, build_universe_set, touched_flavors

__all__ = [
    "check_knobs",
    "fission_jacobian",
    "flux_file_universes",
    "knob_context",
    "read_flux_covariance",
    "readout_model",
    "required_binning",
    "run_universe_set",
    "target_count",
]


def target_count(attrs: dict[str, Any]) -> float:
    """Targets of the store's ``target`` attribute: its free protons, else the sum of its nuclei."""
    target = attrs["target"]
    if "free_protons" in target:
        return float(target["free_protons"])
    return float(sum(n["count"] for n in target["nuclei"].values()))


def readout_model(cfg: FarmConfig, observable: str) -> Readout | None:
    """The readout the detector knobs move: a CEvNS detector's full response; else the binned
    observable, which the ``energy_scale`` knob rescales (the generators' ``[detector]
    energy_scale`` scales the IBD prompt energy and the nuSCOPE tagged energy: `farm validate
    closure` shows whether the analysis bins the column that parameter moves)."""
    return readout_of(cfg, observable)


def knob_context(
    cfg: FarmConfig,
    observable: str,
    nuclei_by_a: dict[int, str],
    declared_channels: Mapping[str, int] | None = None,
) -> KnobContext:
    """What the knobs of ``cfg`` need: its readout, the nominal physical parameters, and the
    channels (built-in, and those the store declares) a ``channel_norm`` knob may name."""
    physics = getattr(cfg, "physics", None)
    channels = {c.name: int(c) for c in Channel} | dict(declared_channels or {})
    return KnobContext(
        channels=channels,
        observable=observable,
        nuclei_by_a=nuclei_by_a,
        readout=readout_model(cfg, observable),
        couplings=getattr(physics, "couplings", "corrected"),
        sin2w=getattr(physics, "sin2w", SIN2W_LOW_Q2),
        neutron_radius_scale=getattr(physics, "neutron_radius_scale", 1.0),
        ccqe_ma_mev=getattr(physics, "ccqe_ma_mev", 1000.0),
    )


def check_knobs(cfg: FarmConfig, observable: str) -> None:
    """Refuse, before reading any event, a knob the sample cannot carry (naming the systematic)."""
    readout = readout_model(cfg, observable)
    for syst in cfg.systematics:
        if syst.kind != "knob" or syst.parameter not in RESPONSE_KNOBS:
            continue
        try:
            check_response_knob(str(syst.parameter), readout, observable)
        except ValueError as err:
            msg = f"[[systematics]] {syst.name!r}: {err}"
            raise ValueError(msg) from None
    physics = getattr(cfg, "physics", None)
    if getattr(physics, "form_factor", "helm") != "helm" and any(
        s.kind == "knob" and s.parameter == "cevns_rms_radius" for s in cfg.systematics
    ):
        msg = (
            "[[systematics]] the cevns_rms_radius knob reweights the Helm form factor; "
            "[physics] form_factor is not 'helm': set it to 'helm' or drop the knob"
        )
        raise ValueError(msg)


def fission_jacobian(
    fractions: Mapping[str, float] | None, rule: FluxRule, bins: FluxBins
) -> np.ndarray | None:
    """Relative change of each flux bin per unit change of each fission fraction, for a reactor
    flux with these ``fractions`` (None: the flux is no reactor model)."""
    if fractions is None or "nuebar" not in bins.flavors:
        return None
    e, w = rule["nuebar"]
    index = bins.index(np.full(e.shape, -12), e)
    nominal = np.bincount(index, weights=w, minlength=bins.n_bins)[:-1]
    total = flux_physics.reactor_spectrum(e, fractions)
    columns = []
    for isotope in flux_physics.REACTOR_ISOTOPES:
        per_isotope = (
            w * flux_physics.reactor_spectrum(e, {isotope: 1.0}) / np.where(total > 0, total, 1.0)
        )
        binned = np.bincount(index, weights=per_isotope, minlength=bins.n_bins)[:-1]
        columns.append(np.divide(binned, nominal, out=np.zeros_like(binned), where=nominal > 0))
    return np.stack(columns, axis=1)


def required_binning(cfg: FarmConfig) -> BinningSection:
    """The ``[binning]`` section, which a run cannot do without."""
    if cfg.binning is None:
        msg = f"[binning] is missing from the configuration of {cfg.sample.name}: a run needs reco and flux bins"
        raise ValueError(msg)
    return cfg.binning


def read_flux_covariance(syst: SystematicSection, bins: FluxBins) -> np.ndarray:
    """The fractional flux covariance of ``[[systematics]] covariance_file`` (a .npy matrix).

    The matrix runs over the flux bins the systematic touches (its ``flavors``, default all, in
    the alphabetical flavour order of ``[binning] flux_edges_mev``, then by energy). It must be
    square of that size, finite, symmetric and positive semi-definite (smallest eigenvalue
    ≥ −1e-10 × the largest), else a :class:`ValueError` names the file and what to fix.
    """
    path = Path(str(syst.covariance_file))
    where = f"[[systematics]] {syst.name!r}: covariance_file {path}"
    flavors = sorted(touched_flavors(syst, bins))
    n = sum(bins.sizes[bins.flavors.index(f)] for f in flavors)
    shape_hint = (
        f"give a .npy {n}×{n} fractional covariance over the flux bins of {', '.join(flavors)}"
    )
    if not path.is_file():
        msg = f"{where} not found; {shape_hint}"
        raise FileNotFoundError(msg)
    from farm.inputfiles import npy_problem

    # a text file is told so, not advised to set allow_pickle; its text is never quoted
    problem = npy_problem(path)
    if problem is not None:
        msg = f"{where}: cannot read it as a .npy array: {problem}; {shape_hint}"
        raise ValueError(msg)
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        msg = f"{where}: cannot read it as a .npy array (truncated or damaged); {shape_hint}"
        raise ValueError(msg) from None
    matrix = np.asarray(matrix)
    if matrix.dtype.kind not in "iuf" or matrix.shape != (n, n):
        msg = f"{where}: holds a {matrix.dtype} array of shape {matrix.shape}; {shape_hint}"
        raise ValueError(msg)
    matrix = matrix.astype(np.float64)
    if not np.all(np.isfinite(matrix)):
        msg = f"{where}: has NaN or infinite entries; {shape_hint}"
        raise ValueError(msg)
    scale = float(np.abs(matrix).max(initial=0.0))
    asymmetry = float(np.abs(matrix - matrix.T).max(initial=0.0))
    if asymmetry > 1e-12 * max(scale, 1e-300):
        msg = f"{where}: is not symmetric (largest |V - Vᵀ| = {asymmetry:.3g}); a covariance has V[i, j] = V[j, i]"
        raise ValueError(msg)
    eigenvalues = np.linalg.eigvalsh(matrix)
    if eigenvalues[0] < -1e-10 * max(eigenvalues[-1], 1e-300):
        msg = (
            f"{where}: is not positive semi-definite (smallest eigenvalue {eigenvalues[0]:.3g}, "
            f"largest {eigenvalues[-1]:.3g}); a covariance needs all eigenvalues >= 0: check the "
            "correlation coefficients (|rho| <= 1, consistent with each other)"
        )
        raise ValueError(msg)
    return matrix


def run_universe_set(
    cfg: FarmConfig,
    rule: FluxRule,
    bins: FluxBins,
    universes: int | None,
    *,
    flux: Flux | None = None,
    weight_universes: Mapping[str, int] | None = None,
) -> UniverseSet:
    """The universes of the run: its systematics thrown with the run's seed and flux inputs
    (covariance files, the fission jacobian, the flux's own universes for ``from_flux``
    systematics, and the nominal flux of the signal flavours per flux bin, which
    ``preserve_integral`` systematics keep integrated); ``weight_universes`` counts the columns
    of each ``weights`` systematic's weight set (farm.weights)."""
    flux = flux if flux is not None else run_flux(cfg)
    external = {
        s.name: read_flux_covariance(s, bins)
        for s in cfg.systematics
        if s.kind == "flux" and s.covariance_file is not None
    }
    own, given = flux_file_universes(cfg.systematics, flux, bins)
    for name, matrix in own.items():
        external[name] = external[name] + matrix if name in external else matrix
    missing = [
        s.name
        for s in cfg.systematics
        if s.kind == "weights" and s.name not in (weight_universes or {})
    ]
    if missing:
        msg = (
            f"[[systematics]] {missing[0]!r}: its weight set is not in the store (farm weights add)"
        )
        raise ValueError(msg)
    return build_universe_set(
        cfg.systematics,
        bins,
        seed=cfg.analysis.universe_seed,
        fission_jacobian=fission_jacobian(fission_fractions(cfg, flux), rule, bins),
        universes=universes,
        all_knob_universes=cfg.analysis.all_knob_universes,
        flux_covariances=external,
        signal_flux=binned_flux(rule, bins, required_binning(cfg).flux_normalising_flavors),
        flux_throws=given,
        weight_universes=weight_universes,
    )


def flux_file_universes(
    systematics: Sequence[SystematicSection], flux: Flux, bins: FluxBins
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """For the ``from_flux`` systematics: (fractional covariances on the touched flux bins, per
    systematic whose flux has one; universe flux ratios (N, bins), per one whose flux has
    universe histograms). A ValueError names the systematic when the flux has no universes."""
    covariances, ratios = {}, {}
    for s in systematics:
        if not (s.kind == "flux" and s.from_flux):
            continue
        if flux.universes is None:
            msg = (
                f"[[systematics]] {s.name!r}: from_flux = true, but the run's flux ({flux.source}) "
                "has no universes; give [flux.universes] (a covariance or universe histograms)"
            )
            raise ValueError(msg)
        try:
            if flux.universes.histograms is not None:
                ratios[s.name] = universe_ratios(flux.universes, bins, name=s.name)
                continue
            full = universe_covariance(flux.universes, bins, name=s.name)
        except ValueError as err:
            raise ValueError(f"[[systematics]] {err}") from None
        touched = np.zeros(bins.n_bins - 1, dtype=bool)
        for f in touched_flavors(s, bins):
            touched[bins.flavor_slice(f)] = True
        covariances[s.name] = full[np.ix_(touched, touched)]
    return covariances, ratios
