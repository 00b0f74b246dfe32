"""``farm config``: check a configuration or ingest mapping, and print their JSON schemas."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from farm.cli._common import fail, out, user_errors

__all__ = ["app", "check", "schema"]

app = typer.Typer(
    name="config",
    help="Check configuration files and ingest mappings; print their JSON schemas.\n\n"
    "Example: farm config check examples/sns-csi.toml",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts are literal: [generation] stays [generation]
    pretty_exceptions_enable=False,
)

MAPPING_SCHEMA = "ingest-mapping"


@app.command("check")
def check(
    file: Annotated[
        str,
        typer.Argument(
            help="A sample configuration (TOML file or example name such as sns-csi) or an ingest mapping."
        ),
    ],
) -> None:
    """Validate a configuration as `farm run` and `farm generate` would, or an ingest mapping.

    Prints OK and a summary (sample, generator, events, systematics, universes), or every
    problem with its file, key and what is allowed there, and exits 2 (bad input, as
    `farm run` would).

    Example: farm config check examples/sns-csi.toml
    """
    from farm.config import ConfigError, load_config, resolve_config_path
    from farm.ingest.mapping import load_mapping

    with user_errors():
        path = resolve_config_path(file)
    is_mapping = _is_mapping(path)
    try:
        if is_mapping:
            lines = _mapping_summary(load_mapping(path))
        else:
            lines = _config_summary(load_config(path))
    except ConfigError as err:
        hints = [] if is_mapping else _allowed_key_hints(path)
        raise fail("\n".join([str(err), *hints])) from None  # bad input: 2, as for run
    out.print(f"OK {escape(str(path))}" + (" (ingest mapping)" if is_mapping else ""))
    for label, text in lines:
        out.print(f"  {label:<12} {escape(text)}")


@app.command("schema")
def schema(
    name: Annotated[
        str | None,
        typer.Argument(
            help="A generator (sns-cevns, reactor-cevns, reactor-ibd, nuscope-cc) or "
            "ingest-mapping; default: any sample configuration."
        ),
    ] = None,
) -> None:
    """Print the JSON schema of a configuration file (or an ingest mapping) to stdout.

    Editors that validate TOML against a JSON schema (taplo, Even Better TOML) use it to
    complete and check keys as you type.

    Example: farm config schema sns-cevns > sns-cevns.schema.json
    """
    typer.echo(json.dumps(config_schema(name), indent=2))


def config_schema(name: str | None = None) -> dict[str, Any]:
    """JSON schema (pydantic ``model_json_schema``) of one generator's configuration, of any
    configuration (``None``), or of the ingest mapping."""
    from pydantic import TypeAdapter

    from farm.config import _BY_GENERATOR, FarmConfig
    from farm.ingest.mapping import IngestMapping

    if name is None:
        return TypeAdapter(FarmConfig).json_schema()
    if name == MAPPING_SCHEMA:
        return IngestMapping.model_json_schema()
    if name not in _BY_GENERATOR:
        known = ", ".join([*_BY_GENERATOR, MAPPING_SCHEMA])
        raise fail(f"no schema named {name!r}; known: {known}")
    return _BY_GENERATOR[name].model_json_schema()


# --- helpers -------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None  # load_config reports it, naming the file


def _is_mapping(path: Path) -> bool:
    """A mapping has [columns]/[normalization]/[ingest]; a configuration names its generator."""
    data = _read_toml(path) or {}
    sample = data.get("sample")
    if isinstance(sample, dict) and "generator" in sample:
        return False
    return any(key in data for key in ("ingest", "columns", "normalization", "channel"))


def _allowed_key_hints(path: Path) -> list[str]:
    """For each unknown key, the keys its table accepts (load_config says only that it is unknown)."""
    from pydantic import ValidationError

    from farm.config import _BY_GENERATOR
    from farm.ingest.validation_errors import allowed_keys

    data = _read_toml(path)
    sample = data.get("sample") if data else None
    model = _BY_GENERATOR.get(sample.get("generator")) if isinstance(sample, dict) else None
    if data is None or model is None:
        return []
    try:
        model.model_validate(data)
    except ValidationError as err:
        hints = []
        for e in err.errors():
            if e["type"] != "extra_forbidden":
                continue
            table = tuple(e["loc"][:-1])
            where = ".".join(map(str, table)) or "top level"
            hints.append(f"  allowed in [{where}]: {', '.join(allowed_keys(model, table))}")
        return list(dict.fromkeys(hints))
    return []


def _config_summary(cfg: Any) -> list[tuple[str, str]]:
    from farm.config import store_path

    systematics = cfg.systematics
    kinds = {
        kind: sum(s.kind == kind for s in systematics)
        for kind in ("flux", "knob", "bootstrap", "weights")
    }
    universes = sum(s.n_universes for s in systematics) + cfg.analysis.all_knob_universes
    by_kind = ", ".join(f"{k} {n}" for k, n in kinds.items() if n)
    lines = [
        (
            "sample",
            f"{cfg.sample.name} (generator {cfg.sample.generator}) {cfg.sample.description}",
        ),
        (
            "events",
            f"ingested (farm ingest), store {store_path(cfg)}; flux, target and exposure the store's"
            if cfg.sample.generator == "external"
            else f"{cfg.generation.events:,} generated, seed {cfg.generation.seed}, store {store_path(cfg)}",
        ),
        (
            "systematics",
            f"{len(systematics)} ({by_kind or 'none'}): {universes} universes + the central value"
            + (" (weight sets and flux files bring their own count)" if kinds["weights"] else ""),
        ),
    ]
    if cfg.flux is not None:
        lines.append(("flux", f"file {cfg.flux.file} ({', '.join(cfg.flux.flavors)})"))
    if cfg.binning is not None:
        b = cfg.binning
        truth = "total" if b.truth == "total" else f"{b.truth}, {b.n_truth} bins"
        lines.append(("binning", f"{b.observable}, {b.n_reco} reco bins; truth {truth}"))
    a = cfg.analysis
    lines.append(
        (
            "analysis",
            f"{a.method}, covariance about {a.covariance_center}, 1/{a.covariance_normalization.upper()}",
        )
    )
    if cfg.models:
        lines.append(("models", ", ".join(m.name for m in cfg.models)))
    return lines


def _mapping_summary(mapping: Any) -> list[tuple[str, str]]:
    ing, gen, norm = mapping.ingest, mapping.generator, mapping.normalization
    columns = ", ".join(mapping.columns)
    rules = ", ".join(r.channel for r in mapping.channel.rules) or "none"
    if mapping.channel.preset:
        rules += f", then preset {mapping.channel.preset}"
    if mapping.channel.declare:
        rules += f" (declared: {', '.join(mapping.channel.declare)})"
    if norm.events_per_weight is not None:
        how = f"{norm.events_per_weight:g} events per unit weight"
    elif norm.expected_events is not None:
        how = f"{norm.expected_events:g} expected events shared by weight"
    else:
        how = "σ̄ · Φ · N_T shared by weight"
    flavors = ", ".join(mapping.signal.flavors or ["any flavour"])
    return [
        (
            "sample",
            f"{mapping.store.sample}: format {ing.format or 'from --format'}, tree {ing.tree}",
        ),
        (
            "generator",
            " ".join(v for v in (gen.name, gen.version, gen.tune) if v) or "from the file",
        ),
        ("columns", f"{len(mapping.columns)} mapped: {columns}"),
        ("channels", f"rules {rules}; default {mapping.channel.default or 'none (an error)'}"),
        ("signal", f"{', '.join(mapping.signal.channels)}; {flavors}"),
        ("exposure", f"{mapping.exposure.value:g} {mapping.exposure.unit}; {how}"),
        (
            "target",
            "none declared"
            if mapping.target is None
            else ", ".join(mapping.target.nuclei)
            + ("" if mapping.target.check else " (unchecked)"),
        ),
        (
            "flux",
            "none (the store records no flux)"
            if mapping.flux is None
            else f"file {mapping.flux.file} ({', '.join(mapping.flux.flavors)})",
        ),
        (
            "cross-check",
            "σ̄ · Φ · N_T against the declared events, 1 %"
            if norm.cross_check
            else "off (cross_check = false)",
        ),
    ]
