"""A multi-sample measurement: every sample's work items in one plan on one cluster.

Each sample is the single-sample run of :mod:`farm.runner` (its store, ``prepare``, its plan, its
fixed reduction tree, ``finish``), with three changes made to its configuration at the boundary
(:func:`load_measurement`):

- every sample throws from the measurement's one ``universe_seed``, so a systematic name means
  the same throws in every sample (a throw depends on (seed, name, index) alone);
- a systematic the measurement does not declare shared is renamed ``SAMPLE/NAME``: its throws
  are then the sample's own (the name is part of the seed), as independent detectors' are;
- the measurement's own ``[[systematics]]`` (shared) and ``flux_edges_mev`` replace the samples'.

All samples' items are submitted together (:func:`farm.execute.execute_dask_many`); the samples'
results are joined by :func:`farm.analysis.joint.joint_dataset`. The checkpoint of a work item is
keyed on its inputs, so a changed shard of one sample recomputes only that sample's items.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

import farm
from farm.analysis.joint import joint_dataset
from farm.analysis.pipeline import check_before_running, finish
from farm.checkpoint import CheckpointStore
from farm.cluster import ClusterOptions
from farm.config import ConfigError, FarmConfig, config_hash, parse_config, resolve_config_path
from farm.config.measurement import MeasurementConfig, read_measurement
from farm.execute import ExecutionStats, execute_dask_many, execute_inprocess
from farm.runner import _client, ensure_store, plan_for

__all__ = ["Measurement", "load_measurement", "run_measurement", "sample_name"]

Log = Callable[[str], None]
Progress = Callable[[int, int], None]


def sample_name(label: str, systematic: str) -> str:
    """The name an independent systematic of sample ``label`` is thrown under."""
    return f"{label}/{systematic}"


@dataclass(frozen=True, kw_only=True)
class Measurement:
    source: Path
    config: MeasurementConfig
    samples: tuple[FarmConfig, ...]
    """The samples' configurations as the measurement runs them (seed, names, shared sections)."""
    shared: frozenset[str]

    @property
    def name(self) -> str:
        return self.config.measurement.name

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(cfg.sample.name for cfg in self.samples)


def _sample_path(entry: str, base: Path) -> Path:
    beside = base / entry
    return beside if beside.is_file() else resolve_config_path(entry)


def _as_member(cfg: FarmConfig, meas: MeasurementConfig, seed: int, source: Path) -> FarmConfig:
    """The sample's configuration inside the measurement (validated again as a whole)."""
    shared = set(meas.shared_names)
    own = {s.name: s for s in meas.systematics}
    label = cfg.sample.name
    systematics = []
    for s in cfg.systematics:
        if s.name in own:
            systematics.append(own.pop(s.name).model_dump())
        elif s.name in shared:
            systematics.append(s.model_dump())
        else:
            systematics.append(s.model_dump() | {"name": sample_name(label, s.name)})
    systematics += [s.model_dump() for s in own.values()]
    data = cfg.model_dump(exclude_unset=True)
    data["systematics"] = systematics
    data.setdefault("analysis", {})["universe_seed"] = seed
    if meas.measurement.flux_edges_mev is not None:
        data.setdefault("binning", {})["flux_edges_mev"] = meas.measurement.flux_edges_mev
    return parse_config(data, source=f"{source} (sample {label})")


def load_measurement(path: str | Path, *, events: int | None = None) -> Measurement:
    """Read a measurement file and its samples; ``events`` overrides every sample's events.

    Refused with a :class:`~farm.config.ConfigError` naming the file: two samples of one name,
    a shared systematic fewer than two samples declare, a shared systematic defined differently
    in two samples, samples whose covariances are taken differently.
    """
    from farm.config import load_config

    source = Path(path)
    meas = read_measurement(source)
    overrides = {"generation.events": events} if events is not None else {}
    originals = [
        load_config(_sample_path(entry.config, source.parent), **overrides)
        for entry in meas.samples
    ]
    labels = [cfg.sample.name for cfg in originals]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        msg = f"{source}: [[samples]] holds sample {', '.join(dupes)} twice; each sample once"
        raise ConfigError(msg)
    seed = meas.measurement.universe_seed
    if seed is None:
        seed = originals[0].analysis.universe_seed
    samples = tuple(_as_member(cfg, meas, seed, source) for cfg in originals)
    for name in meas.measurement.shared:
        declared = [cfg.sample.name for cfg in samples if name in {s.name for s in cfg.systematics}]
        if len(declared) < 2:
            where = f"only {declared[0]} declares it" if declared else "no sample declares it"
            msg = (
                f"{source}: [measurement.shared] {name!r}: {where}; a shared systematic is "
                "thrown once for two or more samples: declare it in them (or under the "
                "measurement's [[systematics]]), or remove it from shared"
            )
            raise ConfigError(msg)
        sections = [
            (cfg.sample.name, s) for cfg in samples for s in cfg.systematics if s.name == name
        ]
        first_label, first = sections[0]
        for label, section in sections[1:]:
            differ = sorted(
                k for k in type(first).model_fields if getattr(first, k) != getattr(section, k)
            )
            if differ:
                msg = (
                    f"{source}: shared systematic {name!r} is defined differently in "
                    f"{first_label} and {label} ({', '.join(differ)}); a shared systematic "
                    "has one definition: make them equal, or define it once under the "
                    "measurement's [[systematics]]"
                )
                raise ConfigError(msg)
    for key in ("covariance_center", "covariance_normalization"):
        seen = {getattr(cfg.analysis, key) for cfg in samples}
        if len(seen) > 1:
            msg = (
                f"{source}: the samples take covariances with different [analysis] {key} "
                f"({', '.join(sorted(seen))}); cross-sample covariances need one: make them equal"
            )
            raise ConfigError(msg)
    return Measurement(
        source=source, config=meas, samples=samples, shared=frozenset(meas.shared_names)
    )


def check_measurement(meas: Measurement, *, universes: int | None = None) -> None:
    """What the samples' configurations alone decide (farm.analysis.pipeline), per sample."""
    for cfg in meas.samples:
        try:
            check_before_running(cfg, universes=universes)
        except (ValueError, FileNotFoundError) as err:
            msg = f"{meas.source} (sample {cfg.sample.name}): {err}"
            raise ConfigError(msg) from None


def _check_shared_throws(meas: Measurement, preps: list[Any]) -> None:
    """A shared flux systematic must move every sample's flux bins alike (same bins)."""
    for name in sorted(meas.shared):
        having = [p for p in preps if name in p.universes.names]
        for other in having[1:]:
            a, b = having[0], other
            ra, rb = a.universes.universes_of(name), b.universes.universes_of(name)
            fa, fb = a.universes.flux_ratio[ra], b.universes.flux_ratio[rb]
            knobs_a = {k: v[ra] for k, v in a.universes.knobs.items() if v[ra].any()}
            knobs_b = {k: v[rb] for k, v in b.universes.knobs.items() if v[rb].any()}
            same_knobs = knobs_a.keys() == knobs_b.keys() and all(
                (knobs_a[k] == knobs_b[k]).all() for k in knobs_a
            )
            if fa.shape != fb.shape or (fa != fb).any() or not same_knobs:
                msg = (
                    f"{meas.source}: shared systematic {name!r} throws different changes in "
                    f"{a.cfg.sample.name} and {b.cfg.sample.name}: a flux systematic throws one "
                    "change per flux bin of the sample (for fission_fraction_sigma, through the "
                    "sample's own spectrum model), so sharing it needs the same [binning] "
                    "flux_edges_mev (give them under [measurement] flux_edges_mev) and the same "
                    "flux model; or keep it independent: remove it from the shared systematics"
                )
                raise ConfigError(msg)


def run_measurement(
    meas: Measurement,
    options: ClusterOptions,
    *,
    universes: int | None = None,
    checkpoint_dir: Path | None = None,
    log: Log = print,
    progress: Progress | None = None,
) -> tuple[xr.Dataset, dict[str, xr.Dataset], ExecutionStats]:
    """Run every sample in one plan; return the joint dataset, the samples' and what ran."""
    check_measurement(meas, universes=universes)
    stores = [ensure_store(cfg, log=log) for cfg in meas.samples]
    planned = [
        plan_for(cfg, store, universes=universes)
        for cfg, store in zip(meas.samples, stores, strict=True)
    ]
    preps = [prep for prep, _ in planned]
    plans = [plan for _, plan in planned]
    _check_shared_throws(meas, preps)
    checkpoints = CheckpointStore(checkpoint_dir, log=log) if checkpoint_dir is not None else None
    total = sum(len(plan.items) for plan in plans)
    with _client(options, log) as client:
        if client is None:
            datasets, runs, done = [], [], 0
            for prep, plan in planned:

                def step(k: int, _n: int, first: int = done) -> None:
                    if progress is not None:
                        progress(first + k, total)

                sums, stats = execute_inprocess(
                    prep,  # type: ignore[arg-type]
                    plan,
                    checkpoints=checkpoints,
                    progress=step,
                    threads=options.workers,
                )
                done += len(plan.items)
                datasets.append(finish(prep, sums))  # type: ignore[arg-type]
                runs.append(stats)
            stats = ExecutionStats(
                items=sum(s.items for s in runs),
                computed=sum(s.computed for s in runs),
                from_checkpoint=sum(s.from_checkpoint for s in runs),
                extended=sum(s.extended for s in runs),
            )
        else:
            sums, stats = execute_dask_many(
                preps,  # type: ignore[arg-type]
                plans,
                client,
                checkpoints=checkpoints,
                progress=progress,
                tags=[f"{label}-" for label in meas.labels],
            )
            futures = [
                client.submit(finish, prep, s, pure=False)
                for prep, s in zip(preps, sums, strict=True)
            ]
            datasets = [f.result() for f in futures]
    per_sample = dict(zip(meas.labels, datasets, strict=True))
    attrs = _attrs(meas) | {"n_events": int(sum(ds.attrs["n_events"] for ds in datasets))}
    return (
        joint_dataset(list(per_sample.items()), meas.shared, attrs=attrs),
        per_sample,
        stats,
    )


def _attrs(meas: Measurement) -> dict[str, Any]:
    config = {
        # "sample" names the measurement as a sample would be named: farm.outputs keeps a
        # result folder to one analysis by it
        "sample": {"name": meas.name, "generator": "measurement"},
        "measurement": meas.config.model_dump(mode="json"),
        "samples": {cfg.sample.name: json.loads(cfg.model_dump_json()) for cfg in meas.samples},
    }
    return {
        "title": f"farm joint result for {meas.name}",
        "kind": "measurement",
        "sample": meas.name,
        "measurement": meas.name,
        "description": meas.config.measurement.description,
        "universe_seed": meas.samples[0].analysis.universe_seed,
        "systematic_names": (
            "a systematic named in [measurement] shared (or defined under its [[systematics]]) "
            "keeps its name and its throws in every sample; every other is renamed SAMPLE/NAME "
            "and thrown for its sample alone"
        ),
        "config_hash": config_hash(meas.config),
        "sample_config_hashes": json.dumps(
            {cfg.sample.name: config_hash(cfg) for cfg in meas.samples}
        ),
        "software_version": farm.__version__,
        "config": json.dumps(config, sort_keys=True),
    }
