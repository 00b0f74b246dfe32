"""The boundary: a configuration (and its event store) resolved into the small domain objects
the lower layers take (docs/architecture.md).

A run's configuration is validated once (:mod:`farm.config`) and then resolved here, once:

- the **flux** (:class:`~farm.flux.model.Flux`): a ``[flux]`` file; else, on an ingested store,
  the flux it was ingested with (its ``flux`` attribute); else the source model of a generated
  sample (π-DAR, reactor, nuSCOPE beamline: :mod:`farm.flux.sources`);
- the **exposure**: what the flux and the weights are over (POT, fissions, seconds);
- the **target**: the nuclei (or free protons) and their numbers, as a store records them;
- the **detector response** the knobs move (:func:`readout_of`);
- the **knob nominals**: the physical parameters the knobs shift, at their nominal values.

Nothing below this module takes a whole configuration to find one of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from farm.config import (
    ExternalConfig,
    FarmConfig,
    NuscopeConfig,
    ReactorCevnsConfig,
    ReactorIbdConfig,
    SnsCevnsConfig,
    store_path,
)
from farm.config.analysis import BinningSection
from farm.config.sample import CevnsDetector
from farm.flux import sources
from farm.flux.files import FluxFileError, read_flux_file
from farm.flux.model import Flux
from farm.flux.record import flux_from_record
from farm.physics.response import CevnsResponse, EfficiencyCurve, Quenching

__all__ = [
    "analysis_knots",
    "argon_nuclei",
    "config_exposure",
    "detector_response",
    "detector_target",
    "fission_fractions",
    "ingested_attrs",
    "readout_of",
    "run_flux",
    "source_flux",
    "weight_sets",
]


def source_flux(cfg: FarmConfig) -> Flux:
    """The flux of a generated sample's source model (the one its events were drawn from)."""
    if isinstance(cfg, SnsCevnsConfig):
        return sources.pidar_flux(cfg.source)
    if isinstance(cfg, ReactorCevnsConfig | ReactorIbdConfig):
        return sources.reactor_flux(cfg.source)
    if isinstance(cfg, NuscopeConfig):
        return sources.nuscope_flux(cfg.source, cfg.detector.mass_t)
    msg = f"{cfg.sample.name}: an external sample has no source model; its flux comes from its store or [flux]"
    raise ValueError(msg)


def ingested_attrs(
    cfg: FarmConfig, store_attrs: Mapping[str, Any] | None = None
) -> Mapping[str, Any] | None:
    """The attributes of the run's store if it was ingested (``farm ingest``), else None.

    ``store_attrs`` are used when the caller has the store open; otherwise the store at
    ``[sample] store`` (or the default path) is read if it exists.
    """
    if store_attrs is None:
        path = store_path(cfg)
        if not (path / "zarr.json").is_file():
            if isinstance(cfg, ExternalConfig):
                msg = (
                    f"[sample] store {path} does not exist: an external sample is ingested, not "
                    "generated; write it with `farm ingest FILE --mapping M --out "
                    f"{path}` first"
                )
                raise FileNotFoundError(msg)
            return None
        from farm.store.reader import EventStore

        store_attrs = EventStore.open(path, check_files=False).attrs
    return store_attrs if "ingest" in store_attrs else None


def config_exposure(
    cfg: FarmConfig, store_attrs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The exposure of the run: the source model's, or an ingested store's."""
    ingested = ingested_attrs(cfg, store_attrs) if isinstance(cfg, ExternalConfig) else None
    if ingested is not None:
        return dict(ingested["exposure"])
    return dict(source_flux(cfg).exposure)


def run_flux(
    cfg: FarmConfig, store_attrs: Mapping[str, Any] | None = None, store: str | Path | None = None
) -> Flux:
    """The flux of the run (see the module docstring), checked against an ingested store's.

    Raises
    ------
    ValueError
        An ingested store that records no flux while the configuration names none, or a
        ``[flux]`` file other than the one the store was ingested with.
    """
    ingested = ingested_attrs(cfg, store_attrs)
    where = Path(store) if store is not None else store_path(cfg)
    recorded = None
    if ingested is not None and "flux" in ingested:
        try:
            recorded = flux_from_record(ingested["flux"], where)
        except ValueError as err:
            msg = f"the store {where}: {err}"
            raise ValueError(msg) from None
    if cfg.flux is not None:
        exposure = dict(ingested["exposure"]) if ingested is not None else config_exposure(cfg)
        try:
            flux = read_flux_file(cfg.flux, exposure, where="[flux]")
        except FluxFileError as err:
            raise ValueError(str(err)) from None
        if recorded is not None and recorded.checksum() != flux.checksum():
            msg = (
                f"[flux] file {cfg.flux.file} is not the flux the store {where} was ingested with "
                f"({recorded.source}): remove [flux] to use the store's, or ingest the events "
                "again with this flux"
            )
            raise ValueError(msg)
        return flux
    if recorded is not None:
        return recorded
    if ingested is not None:
        msg = (
            f"the store {where} was ingested without a flux, and the configuration names none: "
            "a run cannot tell what the events are averaged over. Ingest it again with [flux] in "
            "the mapping, or set [flux] file in the configuration"
        )
        raise ValueError(msg)
    return source_flux(cfg)


def analysis_knots(binning: BinningSection | None) -> dict[str, tuple[float, ...]]:
    """Per flavour, the edges no quadrature node may straddle: its flux bins and, for truth in
    E_ν, the truth bins."""
    if binning is None:
        return {}
    truth = tuple(binning.truth_edges or ()) if binning.truth == "enu_true" else ()
    flavors = {"nue", "nuebar", "numu", "numubar"}
    return {f: (*binning.flux_edges_mev.get(f, ()), *truth) for f in flavors}


def fission_fractions(cfg: FarmConfig, flux: Flux) -> dict[str, float] | None:
    """The reactor's fission fractions when the run's flux is its Huber–Mueller model."""
    if isinstance(cfg, ReactorCevnsConfig | ReactorIbdConfig) and flux.source.startswith(
        "Huber-Mueller"
    ):
        return dict(cfg.source.fission_fractions)
    return None


def detector_target(cfg: FarmConfig) -> dict[str, Any]:
    """The target of a generated sample's detector, as its store records it."""
    from farm.physics import nuclei

    if isinstance(cfg, SnsCevnsConfig | ReactorCevnsConfig):
        det = cfg.detector
        per_kg = nuclei.targets_per_kg(det.material)
        return {
            "material": det.material,
            "mass_kg": det.mass_kg,
            "nuclei": {
                name: {
                    "z": nuclei.get_target(name).z,
                    "n": nuclei.get_target(name).n,
                    "a": nuclei.get_target(name).a,
                    "count": count * det.mass_kg,
                }
                for name, count in per_kg.items()
            },
        }
    if isinstance(cfg, ReactorIbdConfig):
        return {
            "material": "liquid scintillator",
            "mass_kg": cfg.detector.mass_kg,
            "free_protons": cfg.detector.mass_kg * cfg.detector.free_protons_per_kg,
        }
    if isinstance(cfg, NuscopeConfig):
        return {
            "material": "Ar",
            "mass_kg": cfg.detector.mass_t * 1e3,
            "nuclei": {
                "Ar40": {"z": 18, "n": 22, "a": 40, "count": argon_nuclei(cfg.detector.mass_t)}
            },
        }
    msg = f"{cfg.sample.name}: an external sample's target is its store's"
    raise ValueError(msg)


AVOGADRO = 6.02214076e23


def argon_nuclei(mass_t: float) -> float:
    """Nuclei in ``mass_t`` tonnes of natural argon (39.948 g/mol)."""
    return mass_t * 1.0e6 / 39.948 * AVOGADRO


def detector_response(det: CevnsDetector) -> CevnsResponse:
    """The detector response a CEvNS detector section describes (generator and knobs share it)."""
    from farm.physics import nuclei

    targets = [nuclei.get_target(name) for name in nuclei.targets_per_kg(det.material)]
    eff = det.efficiency
    return CevnsResponse(
        readout=det.readout,
        quenching=Quenching(
            model=det.quenching,
            scale=det.quenching_scale,
            nuclei={t.a: (t.z, t.a) for t in targets},
        ),
        light_yield_pe_per_kevee=det.light_yield_pe_per_kevee,
        resolution_stochastic=det.resolution_stochastic,
        resolution_constant=det.resolution_constant,
        resolution_noise_kevee=det.resolution_noise_kevee,
        energy_scale=det.energy_scale,
        efficiency=EfficiencyCurve(
            kind=eff.kind,
            threshold=eff.threshold,
            width=eff.width,
            plateau=eff.plateau,
            scale=eff.scale,
        ),
        efficiency_shift=eff.shift,
        time_window_us=det.time_window_us,
    )


def readout_of(cfg: FarmConfig, observable: str) -> Any:
    """The readout the detector knobs move: a CEvNS detector's full response; else the binned
    observable, which the ``energy_scale`` knob rescales."""
    from farm.reweight.readout_shift import ScaledReadout

    if isinstance(cfg, SnsCevnsConfig | ReactorCevnsConfig):
        return detector_response(cfg.detector)
    return ScaledReadout(column=observable)


def weight_sets(cfg: FarmConfig, store: Any | None = None) -> dict[str, Any]:
    """The weight sets the ``weights`` systematics use, opened (``farm.store.weights.WeightSet``),
    by systematic name; ``store`` is the open event store, else the one at ``[sample] store``.

    Raises
    ------
    ValueError
        A ``weights`` systematic whose store does not exist yet, or lacks its weight set.
    """
    wanted = {s.name: str(s.weight_set) for s in cfg.systematics if s.kind == "weights"}
    modes = {s.name: s.mode for s in cfg.systematics if s.kind == "weights"}
    if not wanted:
        return {}
    from farm.store.errors import StoreError
    from farm.store.reader import EventStore
    from farm.store.weights import WeightSet

    if store is None:
        path = store_path(cfg)
        if not (path / "zarr.json").is_file():
            name = next(iter(wanted))
            msg = (
                f"[[systematics]] {name!r} reweights with the weight set {wanted[name]!r} of the "
                f"store {path}, which does not exist yet: write the store, then attach the "
                f"weights with `farm weights add {path} --name {wanted[name]} FILE`"
            )
            raise ValueError(msg)
        store = EventStore.open(path)
    out = {}
    for name, set_name in wanted.items():
        try:
            out[name] = WeightSet.open(store, set_name)
        except StoreError as err:
            raise ValueError(f"[[systematics]] {name!r}: {err}") from None
        if out[name].mode != modes[name]:
            msg = (
                f"[[systematics]] {name!r} is a {modes[name]}, but the weight set {set_name!r} "
                f"was added as a {out[name].mode}: set mode = {out[name].mode!r}, or add the "
                f"weights again with --mode {modes[name]}"
            )
            raise ValueError(msg)
    return out
