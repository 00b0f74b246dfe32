"""From a configuration and its event store to the result dataset: the pieces every runner shares.

``prepare`` resolves the analysis against the store (universes, binning, flux, targets) into an
:class:`~farm.accumulate.AccumulationSpec`; a runner (in-process here, dask in ``farm.cluster``)
reduces block partial sums; ``finish`` turns the reduced sums into the dataset. What a run
derives from the configuration alone (binning, targets, efficiency, universes) lives in
:mod:`farm.analysis.run_inputs`; ``read_flux_covariance`` is re-exported from there.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

import farm
from farm.accumulate import AccumulationSpec, PartialSums
from farm.analysis.covariances import covariances, joint_covariances
from farm.analysis.dataset import ModelPrediction, build_dataset
from farm.analysis.extract import ExtractionSettings, extract
from farm.analysis.histograms import UniverseHistograms, assemble_histograms
from farm.analysis.nominal_flux import FluxRule, analysis_rule
from farm.analysis.predict import binned_flux, fold_model, load_model, model_predictions
from farm.analysis.run_inputs import (
    check_knobs,
    knob_context,
    read_flux_covariance,
    required_binning,
    run_universe_set,
    target_count,
)
from farm.binding import check_store_binding
from farm.config import FarmConfig, config_hash
from farm.flux.model import Flux
from farm.limits import check_run_limits
from farm.resolve import run_flux, weight_sets
from farm.reweight.weightsets import weight_columns
from farm.store.blocks import BLOCK_EVENTS
from farm.store.errors import StoreError
from farm.store.reader import EventStore
from farm.systematics.fluxbins import FluxBins
from farm.systematics.universes import UniverseSet

__all__ = [
    "Prepared",
    "check_before_running",
    "fake_data",
    "finish",
    "prepare",
    "read_flux_covariance",
]


@dataclass(frozen=True, kw_only=True, eq=False)
class Prepared:
    cfg: FarmConfig
    store_path: Path
    store_attrs: dict[str, Any]
    store_checksums: tuple[str, ...]
    n_events: int
    spec: AccumulationSpec
    universes: UniverseSet
    flux_bins: FluxBins
    rule: FluxRule
    n_targets: float
    block_rows: int = BLOCK_EVENTS
    flux: Flux | None = None
    """The run's flux (farm.resolve.run_flux): the rule above is its nodes on the analysis bins."""

    @property
    def n_blocks(self) -> int:
        return -(-self.n_events // self.block_rows)


def check_before_running(cfg: FarmConfig, *, universes: int | None = None) -> None:
    """Refuse, before any event is generated or read, what would only fail later.

    Checks what needs no event store: the binning is there; the data file, the plugged-in
    models and the fake-data model load; the universes can be thrown (covariance files are
    valid, ``universes`` >= 1); ``[data] universe`` exists; every model gives a finite
    cross section of the right shape on the nominal flux (it is folded exactly as the run will).

    Raises
    ------
    ValueError, FileNotFoundError
        Naming the configuration key (``[data.file]``, ``[[models]] 'name'``, …) and what to do.
    """
    binning = required_binning(cfg)
    _check_before_running(cfg)
    check_knobs(cfg, binning.observable)
    bins = FluxBins.from_mapping(binning.flux_edges_mev)
    flux = run_flux(cfg)
    rule = analysis_rule(flux, binning)
    check_run_limits(cfg, binning, rule, universes)  # memory, flux coverage (farm.limits)
    sizes = {name: ws.universes for name, ws in weight_sets(cfg).items()}
    universe_set = run_universe_set(cfg, rule, bins, universes, flux=flux, weight_universes=sizes)
    if cfg.data.kind == "fake" and cfg.data.universe >= universe_set.n_universes:
        msg = (
            f"[data.universe] {cfg.data.universe} does not exist: the run has "
            f"{universe_set.n_universes} universes; give 0 (the central value) or an index below "
            f"{universe_set.n_universes}"
        )
        raise ValueError(msg)
    truth_edges = None if binning.truth_edges is None else np.asarray(binning.truth_edges)
    for m in cfg.models:
        try:
            fold_model(
                load_model(m.callable),
                rule,
                bins,
                binning.flux_normalising_flavors,
                binning.truth,
                truth_edges,
                kind=m.kind,
                name=m.name,
            )
        except ValueError as err:
            msg = f"[[models]] {m.name!r} ({m.callable}): {err}; fix the model or remove it from [[models]]"
            raise ValueError(msg) from None
    if cfg.data.model is not None:
        _check_fake_data_model(cfg.data.model, rule)


def _check_fake_data_model(spec: str, rule: FluxRule) -> None:
    model = load_model(spec)
    for flavor, (e, _) in rule.items():
        try:
            ratio = np.asarray(model(e, flavor), dtype=np.float64)
        except Exception as err:
            msg = f"[data.model] {spec} raised {type(err).__name__}: {err} (called for {flavor}); fix the model"
            raise ValueError(msg) from err
        if ratio.shape != e.shape:
            problem = f"returned shape {ratio.shape} for {e.size} {flavor} energies"
        elif not np.all(np.isfinite(ratio) & (ratio >= 0)):
            bad = ratio[~(np.isfinite(ratio) & (ratio >= 0))][0]
            problem = f"returned {bad} for {flavor}"
        else:
            continue
        msg = f"[data.model] {spec} {problem}; it must return one finite, non-negative ratio per energy"
        raise ValueError(msg)


def prepare(cfg: FarmConfig, store: EventStore, *, universes: int | None = None) -> Prepared:
    """Resolve the analysis of ``cfg`` against its event store."""
    binning = required_binning(cfg)
    if store.n_events == 0:
        msg = "the event store holds no events"
        hint = "generate it again with events > 0 (`farm generate --events N`), or point [sample] store at another store"
        raise StoreError(msg, store=store.path, hint=hint)
    check_store_binding(cfg, store)  # the store belongs to this configuration (farm.binding)
    if binning.observable not in store.columns:
        msg = f"[binning.observable] {binning.observable!r} is not a column of {store.path}; set it to one of its columns: {', '.join(store.columns)}"
        raise ValueError(msg)
    if binning.truth != "total" and binning.truth not in store.columns:
        msg = f'[binning.truth] {binning.truth!r} is not a column of {store.path}; set it to "total" or one of its columns: {", ".join(store.columns)}'
        raise ValueError(msg)
    _check_before_running(cfg)
    check_knobs(cfg, binning.observable)
    bins = FluxBins.from_mapping(binning.flux_edges_mev)
    flux = run_flux(cfg, store.attrs, store.path)  # the store's own flux if it was ingested
    rule = analysis_rule(flux, binning)
    check_run_limits(cfg, binning, rule, universes)  # memory, flux coverage (farm.limits)
    sets = weight_sets(cfg, store)
    universe_set = run_universe_set(
        cfg,
        rule,
        bins,
        universes,
        flux=flux,
        weight_universes={name: ws.universes for name, ws in sets.items()},
    )
    event_universes = np.flatnonzero(~universe_set.is_flux() & (universe_set.systematic_index >= 0))
    weights = weight_columns(universe_set, event_universes, sets)
    attrs = store.attrs
    nuclei_by_a = {int(v["a"]): k for k, v in attrs.get("target", {}).get("nuclei", {}).items()}
    spec = AccumulationSpec(
        observable=binning.observable,
        reco_edges=np.asarray(binning.reco_edges, dtype=np.float64),
        truth_column=None if binning.truth == "total" else binning.truth,
        truth_edges=None
        if binning.truth_edges is None
        else np.asarray(binning.truth_edges, dtype=np.float64),
        flux_bins=bins,
        event_universes=event_universes,
        knob_values={k: v[event_universes] for k, v in universe_set.knobs.items()},
        bootstrap_replica=universe_set.bootstrap[event_universes],
        bootstrap_key=cfg.analysis.universe_seed,
        knob_context=knob_context(cfg, binning.observable, nuclei_by_a, attrs.get("channels", {})),
        clamp=cfg.analysis.weight_clamp,
        fake_data_model=cfg.data.model,
        event_flux_ratio=universe_set.flux_ratio[event_universes],
        event_systematic=universe_set.systematic_index[event_universes],
        universes_per_block=cfg.analysis.universes_per_block,
        **weights,
        unphysical_weights=cfg.analysis.unphysical_weights,
    )
    return Prepared(
        cfg=cfg,
        store_path=store.path,
        store_attrs=attrs,
        store_checksums=tuple(store.shard_checksums),
        n_events=store.n_events,
        spec=spec,
        universes=universe_set,
        flux_bins=bins,
        rule=rule,
        n_targets=target_count(attrs),
        flux=flux,
    )


def _check_before_running(cfg: FarmConfig) -> None:
    """The cheap checks: the data file reads, the models load and suit the truth binning."""
    binning = cfg.binning
    assert binning is not None  # checked by prepare()
    if cfg.data.kind == "file":
        _read_counts(Path(str(cfg.data.file)), binning.n_reco)
    for m in cfg.models:
        if m.kind == "xsec" and binning.truth not in ("enu_true", "total"):
            msg = f"[[models]] {m.name!r} gives σ(E_ν), but truth is binned in {binning.truth!r}: use kind = 'dxsec' (dσ/dX)"
            raise ValueError(msg)
        if m.kind == "dxsec" and binning.truth in ("enu_true", "total"):
            msg = f"[[models]] {m.name!r} gives dσ/dX, which needs truth binned in a kinematic variable, not {binning.truth!r}: use kind = 'xsec' for σ(E_ν), or set [binning] truth to a kinematic column with truth_edges"
            raise ValueError(msg)
        load_model(m.callable)
    if cfg.data.model is not None:
        load_model(cfg.data.model)


def _read_counts(path: Path, n_reco: int) -> np.ndarray:
    if not path.is_file():
        msg = f"[data.file] {path} not found: give the observed counts per reco bin (.npy or text)"
        raise FileNotFoundError(msg)
    from farm.inputfiles import is_npy, npy_problem, read_text_numbers

    # numpy's parse errors quote the file's text: never shown (farm.inputfiles)
    hint = "give one number per reco bin (.npy, or text)"
    if path.suffix == ".npy" or is_npy(path):
        problem, counts = npy_problem(path), None
        try:
            counts = np.load(path, allow_pickle=False) if problem is None else None
        except (ValueError, OSError, EOFError):
            problem = "it cannot be read as a .npy array (truncated or damaged)"
        if counts is None:
            msg = f"[data.file] {path}: cannot read counts: {problem}; {hint}"
            raise ValueError(msg)
    else:
        counts = read_text_numbers(path, f"[data.file] {path}: cannot read counts", hint)
    counts = np.asarray(counts, dtype=np.float64).ravel()
    need = f"need {n_reco} finite, non-negative counts (one per reco bin)"
    if counts.size != n_reco:
        msg = f"[data.file] {path}: {need}; got {counts.size} values"
        raise ValueError(msg)
    bad = np.flatnonzero(~(np.isfinite(counts) & (counts >= 0)))
    if bad.size:
        msg = f"[data.file] {path}: {need}; reco bin {bad[0]} holds {counts[bad[0]]}"
        raise ValueError(msg)
    return counts


def fake_data(
    cfg: FarmConfig, hists: UniverseHistograms, fake_signal: np.ndarray | None = None
) -> np.ndarray:
    """Observed counts: from a file, or a fake-data recipe.

    The recipe takes the expected signal of a universe (or, with ``[data] model``, the signal
    reweighted event by event to an alternative model, ``fake_signal``), scales it by
    ``signal_scale``, adds that universe's background and, unless ``poisson = false``, draws
    seeded Poisson counts.
    """
    recipe = cfg.data
    n_reco = hists.background.shape[1]
    if recipe.kind == "file":
        return _read_counts(Path(str(recipe.file)), n_reco)
    if recipe.universe >= hists.signal.shape[0]:
        msg = f"[data.universe] {recipe.universe} does not exist: the run has {hists.signal.shape[0]} universes"
        raise ValueError(msg)
    signal = hists.signal[recipe.universe].sum(axis=1)
    if recipe.model is not None:
        if fake_signal is None:
            msg = "[data.model] needs the reweighted signal of the alternative model"
            raise ValueError(msg)
        signal = fake_signal
    expected = signal * recipe.signal_scale + hists.background[recipe.universe]
    if not recipe.poisson:
        return expected
    return np.random.default_rng(recipe.seed).poisson(expected).astype(np.float64)


def _prediction(
    name: str,
    real: np.ndarray,
    nominal: np.ndarray,
    measured_real: np.ndarray,
    measured_nominal: np.ndarray,
    prep: Prepared,
) -> ModelPrediction:
    a = prep.cfg.analysis
    return ModelPrediction(
        name=name,
        real=real,
        nominal=nominal,
        joint_real=joint_covariances(
            measured_real,
            real,
            prep.universes,
            center=a.covariance_center,
            normalization=a.covariance_normalization,
        ),
        joint_nominal=joint_covariances(
            measured_nominal,
            nominal,
            prep.universes,
            center=a.covariance_center,
            normalization=a.covariance_normalization,
        ),
    )


def finish(prep: Prepared, sums: PartialSums) -> xr.Dataset:
    """Histograms → extraction in both conventions → predictions → covariances → dataset."""
    cfg, a = prep.cfg, prep.cfg.analysis
    signal_flavors = cfg.binning.flux_normalising_flavors  # type: ignore[union-attr]
    phi_bins = binned_flux(prep.rule, prep.flux_bins, signal_flavors)
    hists = assemble_histograms(
        sums, prep.universes, prep.spec.event_universes, binned_flux(prep.rule, prep.flux_bins)
    )
    if not hists.signal[0].sum() > 0:  # nothing to extract: refuse before dividing by it
        edges = ", ".join(f"{e:g}" for e in prep.spec.reco_edges)
        msg = (
            f"[binning.reco_edges] [{edges}] hold no selected signal event of {prep.store_path} "
            f"in {prep.spec.observable}; set reco_edges where its selected signal is"
        )
        raise ValueError(msg)
    phi = prep.universes.flux_ratio @ phi_bins
    data = fake_data(cfg, hists, sums.fake_signal if cfg.data.model else None)
    settings = ExtractionSettings(
        method=a.method,
        iterations=a.iterations,
        wiener_order=a.wiener_order,
        n_stat_toys=a.stat_toys,
        stat_seed=cfg.data.seed,
    )
    ext = extract(hists, data, n_targets=prep.n_targets, phi=phi, settings=settings)

    generator_real = np.einsum(
        "ujk,uk->uj", ext.additional_smearing_real, hists.truth / (prep.n_targets * phi[:, None])
    )
    generator_nominal = np.einsum(
        "ujk,uk->uj",
        ext.additional_smearing_nominal,
        hists.truth_nominal_flux / (prep.n_targets * phi[0]),
    )
    models = [
        _prediction(
            "generator", generator_real, generator_nominal, ext.xsec_real, ext.xsec_nominal, prep
        )
    ]
    binning = cfg.binning
    if binning is None:  # prepare() refuses such configs; this keeps the type checker honest
        msg = "[binning] is missing"
        raise ValueError(msg)
    for m in cfg.models:
        g = fold_model(
            load_model(m.callable),
            prep.rule,
            prep.flux_bins,
            signal_flavors,
            binning.truth,
            prep.spec.truth_edges,
            kind=m.kind,
            name=m.name,
        )
        real, nominal = model_predictions(
            g,
            prep.universes.flux_ratio,
            phi,
            ext.additional_smearing_real,
            ext.additional_smearing_nominal,
        )
        models.append(_prediction(m.name, real, nominal, ext.xsec_real, ext.xsec_nominal, prep))

    unisim = frozenset(s.name for s in cfg.systematics if s.mode == "unisim")
    cov_real = covariances(
        ext.xsec_real,
        prep.universes,
        center=a.covariance_center,
        normalization=a.covariance_normalization,
        exact=unisim,
    )
    cov_nominal = covariances(
        ext.xsec_nominal,
        prep.universes,
        center=a.covariance_center,
        normalization=a.covariance_normalization,
        exact=unisim,
    )
    labels = [
        f"{f}:{lo:g}-{hi:g}"
        for f, edges in zip(prep.flux_bins.flavors, prep.flux_bins.edges, strict=True)
        for lo, hi in itertools.pairwise(edges)
    ]
    attrs = {
        "title": f"farm result for {cfg.sample.name}",
        "sample": cfg.sample.name,
        "extraction_method": a.method,
        "iterations": a.iterations if a.method == "dagostini" else 0,
        "covariance_center": a.covariance_center,
        "covariance_normalization": a.covariance_normalization,
        "weight_policy": "none"
        if a.weight_clamp is None
        else f"clamp universe/nominal weight ratio to [{a.weight_clamp[0]}, {a.weight_clamp[1]}]",
        "weight_clamped_total": int(hists.clamped.sum()),
        "n_targets": prep.n_targets,
        "flux_source": "" if prep.flux is None else prep.flux.source,
        "flux_checksum": "" if prep.flux is None else prep.flux.checksum(),
        "signal_flavors": ",".join(signal_flavors),
        "truth_variable": cfg.binning.truth,  # type: ignore[union-attr]
        "observable": cfg.binning.observable,  # type: ignore[union-attr]
        "data": cfg.data.model_dump_json(),
        "config_hash": config_hash(cfg),
        "universe_set_checksum": prep.universes.checksum(),
        "universe_seed": a.universe_seed,
        "universe_seed_rule": "throw i of systematic s draws from SeedSequence([universe_seed, blake2b64(s), i])",
        "input_store": str(prep.store_path),
        "input_checksums": ",".join(prep.store_checksums),
        "store_generation_hash": str(
            prep.store_attrs.get("generator", {}).get("generation_hash", "")
        ),
        "software_version": farm.__version__,
        "n_events": prep.n_events,
        "block_rows": prep.block_rows,
        "config": cfg.model_dump_json(),
        # universes a weight set's columns or a flux file's histograms bring: none can be added
        "universes_fixed": ",".join(
            s.name
            for s in cfg.systematics
            if s.mode == "multisim" and (s.kind == "weights" or s.from_flux)
        ),
    }
    return build_dataset(
        universes=prep.universes,
        hists=hists,
        extraction=ext,
        data=data,
        phi=phi,
        reco_edges=prep.spec.reco_edges,
        truth_edges=prep.spec.truth_edges,
        flux_labels=[*labels, "untouched"],
        flux_bins=prep.flux_bins,
        flux_rule=prep.rule,
        signal_flavors=signal_flavors,
        cov_real=cov_real,
        cov_nominal=cov_nominal,
        models=models,
        attrs=attrs,
        exact=unisim,
        precision=a.universe_precision,
    )
