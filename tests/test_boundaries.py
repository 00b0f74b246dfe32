"""Issue 11, items 1–3: a store is bound to its run, every column is validated at the boundary,
and the configuration schema is strict.

Every case runs the real command where there is one (``farm run``, ``farm generate``,
``farm ingest``, ``farm inspect``, ``farm export hepdata``, ``farm report``) in the working
directory of ``tests/test_bad_input.py`` (a published ``results/r.zarr``, one version), and
asserts the exit status (2: bad input; 1: a verification failure), that the message names the
culprit (store, column, shard, row, value; or the configuration key) and says what to do, and
that the working directory is unchanged: nothing new is published and nothing old is lost.
``docs/bad-input.md`` tabulates the same cases. At the end, hypothesis-generated
configurations must either validate or be refused naming a key, never with a traceback.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import test_bad_input
import xarray as xr
from conftest import farm_cli, toml_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_surgery import flip_byte, forge_values, swap_shard_files
from test_bad_input import (
    EVENTS,
    SHARD_ROWS,
    Case,
    _name,
    _systematics,
    assert_refused,
    config_error,
    copy_store,
    edit_json,
    shard_file,
)

from farm.analysis.pipeline import check_before_running
from farm.binding import check_store_binding
from farm.config import ConfigError, examples_dir, load_config, parse_config
from farm.publish import publish_dataset
from farm.store import EventStore, StoreError, StoreWriter

OTHER_EVENTS = 20_000

inputs = test_bad_input.inputs  # the shared store and published result (a fixture)
case = test_bad_input.case  # a working directory holding a copy of it (a fixture)


# --- item 1: a store is bound to the run that uses it ------------------------------------------


@pytest.fixture(scope="module")
def other_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CsI store generated at 30 m and 5 kg, and an argon (sns-lar) store."""
    root = tmp_path_factory.mktemp("other-stores")
    made = {}
    for name, args in {
        "csi30": ("sns-csi", {"source": {"distance_m": 30.0}, "detector": {"mass_kg": 5.0}}),
        "lar": ("sns-lar", {}),
    }.items():
        sample, changes = args
        data = tomllib.loads((examples_dir() / f"{sample}.toml").read_text())
        for section, values in changes.items():
            data[section].update(values)
        config = root / f"{name}.toml"
        config.write_text(toml_text(data))
        made[name] = root / f"{name}.zarr"
        result = farm_cli("generate", config, "--out", made[name], "--events", OTHER_EVENTS)
        assert result.exit_code == 0, result.output
    return made


def _use_store(case: Case, store: Path, **sections: Any) -> None:
    case.store = store
    case.write_config(**sections)


def test_a_store_generated_at_another_distance_and_mass_is_refused_naming_both_values(
    case: Case, other_stores: dict[str, Path]
) -> None:
    _use_store(case, other_stores["csi30"], generation={"events": OTHER_EVENTS})
    result = case.run()
    assert_refused(
        case, result, 2, _name(other_stores["csi30"]), "it was generated from another configuration",
        r"source\.distance_m = 30\.0 in the store, 19\.3 in this configuration",
        r"detector\.mass_kg = 5\.0 in the store, 14\.6 in this configuration",
        r"farm generate CONFIG --out .*csi30\.zarr --overwrite", r"point \[sample\] store",
        "or fix the configuration",
    )  # fmt: skip


def test_an_argon_store_under_the_csi_configuration_is_refused(
    case: Case, other_stores: dict[str, Path]
) -> None:
    flux_only = case._data()["systematics"][:1]
    _use_store(
        case, other_stores["lar"], generation={"events": OTHER_EVENTS},
        binning={"observable": "reco_kevee"}, systematics=flux_only,
    )  # fmt: skip
    result = case.run()
    assert_refused(
        case, result, 2, _name(other_stores["lar"]),
        r"sample\.name = 'sns-lar' in the store, 'sns-csi' in this configuration",
        r"source\.distance_m = 27\.5 in the store", r"detector\.material = 'Ar' in the store",
        r"and \d+ more",
    )  # fmt: skip


def test_events_other_than_the_stores_are_refused_not_ignored(case: Case) -> None:
    result = case.run("--events", 1000)
    assert_refused(
        case, result, 2, _name(case.store),
        f"it holds {EVENTS} events, this configuration asks for 1000",
        r"generation\.events, or --events", "never a subset",
    )  # fmt: skip


def test_a_store_of_another_generator_version_is_refused(case: Case) -> None:
    store = copy_store(case)
    edit_json(
        store / "zarr.json",
        lambda m: m["attributes"]["generator"].update(generation_hash="0" * 32),
    )
    result = case.run()
    assert_refused(case, result, 2, _name(store), "another version of the generator", "regenerate")


def test_a_store_that_records_no_origin_is_refused(case: Case) -> None:
    store = copy_store(case)
    edit_json(store / "zarr.json", lambda m: m["attributes"].pop("generator"))
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), "records neither the configuration it was generated from",
        "farm generate CONFIG",
    )  # fmt: skip


def test_a_store_differing_only_in_shard_size_is_accepted(case: Case) -> None:
    """The good store was generated with --shard-size 16384, the configuration says 8 Mi rows:
    a layout, not other events (every passing run of tests/test_bad_input.py relies on it)."""
    store = EventStore.open(case.store)
    assert store.shard_rows == SHARD_ROWS
    assert store.attrs["generator"]["config"]["generation"]["shard_size"] == SHARD_ROWS
    check_store_binding(load_config(case.config), store)  # the config has the default size
    assert load_config(case.config).generation.shard_size != SHARD_ROWS


def _ingested_store(tmp_path: Path, **mapping_changes: dict[str, Any]) -> Path:
    from test_ingest import MAPPING, gst_branches, write_gst

    from farm.ingest import ingest

    data = copy.deepcopy(MAPPING)
    data["target"] = {
        "material": "Ar",
        "mass_kg": 5.0e5,
        "nuclei": {"Ar40": {"z": 18, "n": 22, "a": 40, "count": 7.5348e30}},
    }
    for table, values in mapping_changes.items():
        if values is None:
            data.pop(table)
        else:
            data[table] = {**data.get(table, {}), **values}
    tmp_path.mkdir(parents=True)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(toml_text(data))
    out = tmp_path / "ingested.zarr"
    ingest([write_gst(tmp_path / "in.gst.root", gst_branches())], mapping, out)
    return out


def test_an_ingested_store_is_checked_for_target_and_exposure(tmp_path: Path) -> None:
    pytest.importorskip("uproot")
    good = EventStore.open(_ingested_store(tmp_path / "good"))
    events = {"generation.events": 12}  # the example says 200 000: a statement about the sample
    check_store_binding(load_config("nuscope-lar", **events), good)  # 500 t of argon, 1e20 POT

    with pytest.raises(StoreError, match=r"its exposure is 1e\+20 POT .*gives 2e\+20 POT"):
        check_store_binding(load_config("nuscope-lar", **events, **{"source.pot": 2e20}), good)
    with pytest.raises(StoreError, match=r"its target holds 7\.5348e\+30 targets.*mass_t = 5"):
        check_store_binding(load_config("nuscope-lar", **events, **{"detector.mass_t": 5.0}), good)
    with pytest.raises(StoreError, match=r"it holds 12 events, this configuration .* asks for 99"):
        check_store_binding(load_config("nuscope-lar", **{"generation.events": 99}), good)

    untargeted = EventStore.open(_ingested_store(tmp_path / "bare", target=None))
    with pytest.raises(StoreError, match="records no target") as info:
        check_store_binding(load_config("nuscope-lar", **events), untargeted)
    assert "add [target] to the ingest mapping" in str(info.value)


# --- item 2: every column is validated once, at the boundary ------------------------------------


@pytest.mark.parametrize(
    ("column", "row", "value", "allowed"),
    [
        ("reco_pe", 20_000, np.nan, "finite and >= 0"),
        ("recoil_mev", 123, np.nan, "finite and >= 0"),
        ("recoil_mev", 39_999, -1.0, "finite and >= 0"),
        ("flavor", 17, 99, r"a neutrino PDG code .*12 \(nue\)"),
        ("channel", 35_000, 42, r"a farm\.store\.schema\.Channel code: 0 \(CEVNS\)"),
        ("selected", 5, 2, r"a boolean \(byte 0 or 1\)"),
        ("time_us", 16_384, np.inf, "finite"),
        ("eff_nominal", 2, 1.5, r"finite and in \[0, 1\]"),
        ("selection_threshold", 7, np.nan, "a number or ±inf, not NaN"),
        ("target_a", 8, -3, r"a mass number in \[0, 300\]"),
    ],
    ids=[
        "nan-observable", "nan-recoil", "negative-recoil", "flavor-99", "channel-42",
        "bool-byte-2", "inf-time", "efficiency-above-1", "nan-threshold", "negative-a",
    ],
)  # fmt: skip
def test_a_value_its_column_may_not_hold_is_refused_naming_store_column_shard_and_row(
    case: Case, column: str, row: int, value: object, allowed: str
) -> None:
    """A store whose checksums verify (written before farm checked values, or edited with its
    checksums recomputed) but whose values break their column's rule."""
    store = copy_store(case)
    forge_values(store, {column: {row: value}})
    result = case.run()
    shard = row // SHARD_ROWS
    shown = "nan" if isinstance(value, float) and math.isnan(value) else str(value)
    assert_refused(
        case, result, 2, _name(store), rf"shard {shard}, column '{column}'",
        rf"row {row} has {column} = {re.escape(shown)}", f"it must be {allowed}",
        "regenerate the store with `farm generate`",
    )  # fmt: skip


def test_the_legitimate_exceptions_pass_and_their_cross_column_limits_hold() -> None:
    from farm.store.values import first_invalid, validate_values

    nan, inf = np.nan, np.inf
    validate_values(
        {
            "etag_mev": np.array([nan, 100.0], dtype=np.float32),  # untagged
            "selection_threshold": np.array([inf, -inf, 3.0], dtype=np.float32),
            "coslep": np.array([nan, -1.0, 1.0], dtype=np.float32),
        }
    )
    assert first_invalid({"etag_mev": np.array([inf], dtype=np.float32)}) is not None
    at_rest = {"coslep": np.array([nan], np.float32), "plep_mev": np.array([0.0])}
    moving = {"coslep": np.array([0.5, nan], np.float32), "plep_mev": np.array([1.0, 2.0])}
    assert first_invalid(at_rest, across=True) is None
    found = first_invalid(moving, across=True)
    assert found is not None and (found.column, found.position) == ("coslep", 1)
    tagged = {"etag_mev": np.array([nan], np.float32), "tagged": np.array([True])}
    assert first_invalid(tagged, across=True) is not None
    assert first_invalid(tagged) is None  # per column only: NaN etag is allowed


def test_a_column_filled_with_nan_is_refused(case: Case) -> None:
    store = copy_store(case)
    forge_values(store, {"w_nominal": dict.fromkeys(range(SHARD_ROWS, 2 * SHARD_ROWS), np.nan)})
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), r"shard 1, column 'w_nominal'",
        f"row {SHARD_ROWS} has w_nominal = nan",
    )  # fmt: skip


def test_farm_inspect_names_a_bad_channel_code_instead_of_failing_to_decode_it(case: Case) -> None:
    store = copy_store(case)
    forge_values(store, {"channel": {100: 42}})
    result = case.farm("inspect", store)
    message = assert_refused(
        case, result, 2, _name(store), r"shard 0, column 'channel'", "row 100 has channel = 42",
        "it must be a farm.store.schema.Channel code",
    )  # fmt: skip
    assert "is not a valid Channel" not in message


def test_inspect_verify_lists_every_damaged_shard_before_decoding_any(case: Case) -> None:
    """Two corrupted channel shards and a forged NaN: checksums first, every failure listed,
    no value of a damaged shard decoded (no 'not a valid Channel'), exit 1."""
    store = copy_store(case)
    forge_values(store, {"recoil_mev": {SHARD_ROWS + 3: np.nan}})  # shard 1: checksum verifies
    for shard in (0, 2):
        flip_byte(shard_file(store, "channel", shard), 10)  # channel 0 → 1: checksum differs
    result = case.farm("inspect", store, "--verify")
    message = assert_refused(
        case, result, 1, r"shard 0: FAILED .*checksum [0-9a-f]{32} differs",
        rf"shard 1: FAILED .*row {SHARD_ROWS + 3} has recoil_mev = nan",
        r"shard 2: FAILED .*checksum [0-9a-f]{32} differs",
        r"3 of 3 shard\(s\) failed verification \(shard\(s\) 0, 1, 2\)",
    )  # fmt: skip
    assert "valid Channel" not in message and "expected events" not in message


def test_inspect_verify_lists_swapped_truncated_and_missing_shards(case: Case) -> None:
    store = copy_store(case)
    swap_shard_files(store, "enu_true", 0, 1)  # two full shards: same sizes, other data
    result = case.farm("inspect", store, "--verify")
    assert_refused(
        case, result, 1, r"shard 0: FAILED", r"shard 1: FAILED",
        r"2 of 3 shard\(s\) failed verification \(shard\(s\) 0, 1\)",
    )  # fmt: skip
    path = shard_file(store, "enu_true", 2)
    os.truncate(path, path.stat().st_size - 8)
    shard_file(store, "flavor", 1).unlink()
    result = case.farm("inspect", store, "--verify")
    assert_refused(
        case, result, 1, r"shard 0: FAILED .*checksum",
        r"shard 1: FAILED .*shard 1, column 'flavor': the shard file is missing",
        r"shard 2: FAILED .*shard 2, column 'enu_true': the shard file has \d+ bytes, \d+ were "
        "written: it is truncated", r"3 of 3 shard\(s\) failed verification \(shard\(s\) 0, 1, 2\)",
    )  # fmt: skip


def test_the_writer_refuses_garbage_and_leaves_no_store(tmp_path: Path, case: Case) -> None:
    good = EventStore.open(case.store)
    columns = good.read_columns(None, 0, 1000)
    columns["recoil_mev"][700] = np.nan
    path = tmp_path / "new.zarr"
    with pytest.raises(StoreError, match="row 700 has recoil_mev = nan") as info:
        with StoreWriter.create(
            path, n_events=1000, columns=good.columns, shard_rows=512
        ) as writer:
            for index, (start, stop) in enumerate(writer.shard_ranges):
                writer.write_shard(index, {k: v[start:stop] for k, v in columns.items()})
    assert (info.value.shard, info.value.column) == (1, "recoil_mev")
    assert "nothing was written" in str(info.value)
    assert not path.exists() and not list(tmp_path.glob(".new.zarr*"))


def test_farm_generate_refuses_a_generator_that_produces_nan(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    from farm.samples import generate

    real = generate.generate_rows

    def broken(cfg: Any, start: int, stop: int, **kw: Any) -> dict[str, np.ndarray]:
        cols = real(cfg, start, stop, **kw)
        cols["recoil_mev"][3] = np.nan
        return cols

    monkeypatch.setattr(generate, "generate_rows", broken)
    out = case.root / "fresh.zarr"
    result = case.farm("generate", case.config, "--out", out, "--events", 5000)
    assert_refused(
        case, result, 2, r"fresh\.zarr, shard 0, column 'recoil_mev'", "row 3 has recoil_mev = nan",
        "nothing was written",
    )  # fmt: skip


def test_farm_ingest_refuses_an_infinite_momentum(case: Case) -> None:
    pytest.importorskip("uproot")
    from test_ingest import MAPPING, gst_branches, write_gst

    branches = gst_branches()
    branches["pxl"][4] = np.inf
    inputs_dir = case.root.parent / f"{case.root.name}-inputs"
    inputs_dir.mkdir()
    gst = write_gst(inputs_dir / "bad.gst.root", branches)
    mapping = inputs_dir / "mapping.toml"
    mapping.write_text(toml_text(MAPPING))
    result = case.farm("ingest", gst, "--mapping", mapping, "--out", case.root / "ing.zarr")
    assert_refused(
        case, result, 2, r"bad\.gst\.root, tree 'gst': events 0\.\.11: row 4 has plep_mev = inf",
        "it must be finite and >= 0", r"\[columns\.plep_mev\]", r"\[ingest\] keep",
    )  # fmt: skip


def test_farm_ingest_refuses_a_shard_size_of_zero(case: Case) -> None:
    result = case.farm(
        "ingest", case.root / "x.root", "--mapping", case.root / "m.toml", "--out",
        case.root / "s.zarr", "--shard-size", 0, "--format", "gst",
    )  # fmt: skip
    assert_refused(case, result, 2, "--shard-size = 0: a shard holds 1 to 67,108,864 rows")


# --- no NaN reaches a published dataset ---------------------------------------------------------


def test_a_nan_result_is_not_published(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    import farm.runner

    real = farm.runner.finish

    def nan_finish(prep: Any, sums: Any) -> xr.Dataset:
        ds = real(prep, sums)
        cov = ds["cov_real"].values.copy()
        cov[0, 0] = np.nan
        return ds.assign(cov_real=(ds["cov_real"].dims, cov))

    monkeypatch.setattr(farm.runner, "finish", nan_finish)
    result = case.run("--no-checkpoints")
    assert_refused(
        case, result, 2, r"r\.zarr: the result holds values that are not finite",
        r"not published \(the current version is unchanged\)",
        r"cov_real holds 1 non-finite value\(s\), NaN \(first at truth_bin=0, truth_bin_2=0\)",
        r"farm inspect --verify STORE",
    )  # fmt: skip


def _nan_result(case: Case) -> Path:
    """A copy of the published result whose current version has a NaN cross section."""
    current = case.out.resolve()
    xsec = xr.open_zarr(current)["xsec_real"].values.copy()
    xsec[0, 0] = np.nan
    import zarr

    zarr.open_array(current / "xsec_real", mode="r+")[:] = xsec
    return case.out


@pytest.mark.parametrize("command", ["export", "report"])
def test_export_and_report_refuse_a_result_holding_nan(case: Case, command: str) -> None:
    result_path = _nan_result(case)
    out = case.root / "release"
    args = ("export", "hepdata") if command == "export" else ("report",)
    result = case.farm(*args, result_path, "--out", out)
    action = "exported" if command == "export" else "reported"
    assert_refused(
        case, result, 2, r"r\.zarr: the result holds values that are not finite",
        f"so it is not {action}", r"xsec_real holds 1 non-finite value\(s\), NaN",
    )  # fmt: skip


def test_publish_dataset_refuses_inf_and_keeps_the_current_version(case: Case) -> None:
    ds = xr.open_zarr(case.out).load()
    bad = ds.assign(xsec_nominal=ds["xsec_nominal"] * np.inf)
    with pytest.raises(ValueError, match=r"xsec_nominal holds \d+ non-finite value\(s\), inf"):
        publish_dataset(bad, case.out)
    assert os.readlink(case.out) == "r.zarr.versions/v0001.zarr"
    assert sorted(p.name for p in (case.root / "results" / "r.zarr.versions").iterdir()) == [
        "v0001.zarr"
    ]


# --- item 3: a strict configuration schema -------------------------------------------------------


@pytest.mark.parametrize(
    ("sections", "patterns"),
    [
        (
            {"binning": {"reco_edges": [5, 10, math.nan, 60]}},
            [r"\[binning\.reco_edges\.2\] Input should be a finite number \(got nan\)"],
        ),
        (
            {"binning": {"reco_edges": [5, 10, math.inf]}},
            [r"\[binning\.reco_edges\.2\] Input should be a finite number \(got inf\)"],
        ),
        (
            {"source": {"running_days": math.inf}},
            [r"\[source\.running_days\] Input should be a finite number \(got inf\)"],
        ),
        (
            {"detector": {"time_window_us": [6.0, 0.0]}},
            [r"\[detector\.time_window_us\] the time window \[6, 0\] must be \[start, stop\]"],
        ),
        (
            {"detector": {"roi_min": 60.0, "roi_max": 5.0}},
            [r"\[detector\] roi_min = 60 must be below roi_max = 5"],
        ),
        ({"analysis": {"wiener_order": True}}, [r"\[analysis\.wiener_order\] wiener_order is 0, 1 or 2"]),
        ({"data": {"poisson": 1}}, [r"\[data\.poisson\] Input should be a valid boolean \(got 1\)"]),
        ({"source": {"distance_m": "19.3"}}, [r"\[source\.distance_m\] Input should be a valid number \(got '19\.3'\)"]),
        (
            {"generation": {"shard_size": 8_388_609}},
            [r"\[generation\.shard_size\] a shard above 1,048,576 rows", "give a multiple of 65,536"],
        ),
    ],
    ids=[
        "nan-edge", "inf-edge", "inf-running-days", "reversed-time-window", "reversed-roi",
        "boolean-wiener-order", "integer-boolean", "string-number", "unchunkable-shard-size",
    ],
)  # fmt: skip
def test_a_value_the_strict_schema_does_not_accept_is_refused(
    case: Case, sections: dict[str, Any], patterns: list[str]
) -> None:
    config_error(case, *patterns, **sections)


@pytest.mark.parametrize(
    ("throws", "got"),
    [(True, "True"), ("100", "'100'"), (2.0, "2.0")],
    ids=["bool", "str", "float"],
)
def test_a_universe_count_must_be_an_integer(case: Case, throws: object, got: str) -> None:
    config_error(
        case, rf"\[systematics\.0\.throws\] Input should be a valid integer \(got {got}\)",
        "write a whole number without quotes", systematics=_systematics(case, throws=throws),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("edges", "pattern"),
    [
        ({"numu": [29.0, 29.5]}, r"π-DAR ν_μ line at 29\.79 MeV"),
        ({"nue": [0, 10, 20, 30, 40]}, r"π-DAR nue spectrum, from 0 to 52\.83 MeV"),
    ],
    ids=["misses-the-numu-line", "misses-the-nue-endpoint"],
)
def test_a_flux_binning_that_misses_part_of_the_source_is_refused(
    case: Case, edges: dict[str, list[float]], pattern: str
) -> None:
    flux = {
        "numu": [29.0, 30.5],
        "nue": [0, 10, 20, 30, 40, 53],
        "numubar": [0, 10, 20, 30, 40, 53],
    }
    flavor = next(iter(edges))
    config_error(
        case, rf"\[binning\.flux_edges_mev\.{flavor}\] edges from", "outside every flux bin",
        pattern, "extend them", binning={"flux_edges_mev": flux | edges},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sample", "overrides", "pattern"),
    [
        (
            "reactor-ge",
            {"binning.flux_edges_mev": {"nuebar": [0, 1, 2, 4, 8]}},
            r"\[binning\.flux_edges_mev\.nuebar\].*reactor ν̄_e spectrum from 0 to 12 MeV "
            r"\(\[source\] enu_min_mev, enu_max_mev\)",
        ),
        (
            "nuscope-lar",
            {"binning.flux_edges_mev": {"numu": [0, 2000, 4000, 8000], "nue": [0, 9000]}},
            r"\[binning\.flux_edges_mev\.numu\].*nuSCOPE beam numu spectrum, from \d+\.?\d* to",
        ),
    ],
    ids=["reactor-range", "beam-range"],
)
def test_the_reactor_and_beam_ranges_are_named(
    sample: str, overrides: dict[str, Any], pattern: str
) -> None:
    cfg = load_config(sample, **overrides)
    with pytest.raises(ValueError, match=pattern):
        check_before_running(cfg)


@pytest.mark.parametrize(
    ("args", "sections", "patterns"),
    [
        (
            ("-u", "1000000000000"),
            {},
            [r"--universes = 1,000,000,000,000",
             r"would hold about [\d.]+ PiB in memory", "more than this machine's"],
        ),
        (
            (),
            {"throws": 1_000_000_000},
            [r"\[systematics\.0\.throws\] \('flux_normalization'\) = 1,000,000,000",
             r"would hold about [\d.]+ TiB", r"lower it \(to at most about [\d,]+\)"],
        ),
    ],
    ids=["universes-option", "throws-key"],
)  # fmt: skip
def test_a_universe_count_the_machine_cannot_hold_is_refused_with_the_estimate(
    case: Case, args: tuple[str, ...], sections: dict[str, Any], patterns: list[str]
) -> None:
    if sections:
        case.write_config(systematics=_systematics(case, **sections))
    result = case.farm("run", case.config, "--out", case.out, "--cluster", "inprocess", *args)
    message = assert_refused(case, result, 2, r"analysis\.toml", *patterns)
    assert "MemoryError" not in message


def test_universes_per_block_the_machine_cannot_hold_is_refused(case: Case) -> None:
    config_error(
        case, r"\[analysis\.universes_per_block\] = 1,000,000,000", "weight matrices",
        "lower it \\(the default is 64\\)", analysis={"universes_per_block": 1_000_000_000},
    )  # fmt: skip


def test_reco_edges_beyond_every_event_are_refused_naming_the_observables_range(
    case: Case,
) -> None:
    store = EventStore.open(case.store)
    lo, hi = store.column_range("reco_pe", selected=True)
    case.write_config(binning={"reco_edges": [1000, 2000, 3000]})
    result = case.run()
    assert_refused(
        case, result, 2, rf"{_name(case.store)}, column 'reco_pe'",
        r"\[binning\.reco_edges\] \[1000, 2000, 3000\] hold no selected event of this store",
        rf"its selected events have reco_pe from {lo:.6g} to {hi:.6g} PE",
        "set reco_edges within that range",
    )  # fmt: skip


def test_reco_edges_beyond_every_event_of_a_store_without_ranges_stop_the_run_cleanly(
    case: Case,
) -> None:
    """A store written before farm recorded column ranges: the histograms tell."""
    store = copy_store(case)

    def drop_ranges(meta: dict[str, Any]) -> None:
        for shard in meta["attributes"]["shards"]:
            shard.pop("ranges", None)

    edit_json(store / "zarr.json", drop_ranges)
    case.write_config(binning={"reco_edges": [1000, 2000, 3000]})
    result = case.run("--no-checkpoints")
    assert_refused(
        case, result, 2, r"\[binning\.reco_edges\] \[1000, 2000, 3000\] hold no selected signal",
        "in reco_pe", "set reco_edges where its selected signal is",
    )  # fmt: skip


def test_generate_refuses_a_store_larger_than_the_disk(case: Case) -> None:
    result = case.farm(
        "generate", case.config, "--out", case.root / "huge.zarr", "--events", 10**15
    )
    assert_refused(
        case, result, 2, r"\[generation\.events\] = 1,000,000,000,000,000 \(or --events\)",
        "the store would take about", "free; lower it",
    )  # fmt: skip


def test_generate_refuses_an_unchunkable_shard_size(case: Case) -> None:
    result = case.farm(
        "generate", case.config, "--out", case.root / "s.zarr", "--shard-size", 8_388_609
    )
    assert_refused(case, result, 2, r"\[generation\.shard_size\]", "give a multiple of 65,536")


# --- hypothesis: any configuration validates, or is refused naming a key -------------------------

_BASE = tomllib.loads((examples_dir() / "sns-csi.toml").read_text())
_KEYS = [
    ("source", "distance_m"), ("source", "running_days"), ("source", "beam_power_mw"),
    ("detector", "mass_kg"), ("detector", "roi_min"), ("detector", "roi_max"),
    ("detector", "time_window_us"), ("detector", "light_yield_pe_per_kevee"),
    ("generation", "events"), ("generation", "seed"), ("generation", "shard_size"),
    ("binning", "reco_edges"), ("binning", "observable"), ("binning", "truth"),
    ("analysis", "iterations"), ("analysis", "universes_per_block"), ("analysis", "weight_clamp"),
    ("analysis", "all_knob_universes"), ("analysis", "wiener_order"), ("data", "universe"),
    ("data", "poisson"), ("data", "signal_scale"), ("systematics", "throws"),
    ("systematics", "normalization"), ("systematics", "sigma"), ("backgrounds", "brn_events"),
    ("source", "no_such_key"),
]  # fmt: skip
_VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5),
    st.lists(st.integers(min_value=-100, max_value=100_000), max_size=5),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    mutations=st.lists(st.tuples(st.sampled_from(_KEYS), _VALUES), min_size=1, max_size=3),
    index=st.integers(min_value=0, max_value=9),
)
def test_any_configuration_validates_or_is_refused_naming_a_key(
    mutations: list[tuple[tuple[str, str], object]], index: int
) -> None:
    with mock.patch.dict(os.environ, {"FARM_MEMORY_BYTES": str(2**30)}):  # refuse, never hold
        _validates_or_names_a_key(mutations, index)


def _validates_or_names_a_key(mutations: list[tuple[tuple[str, str], object]], index: int) -> None:
    data = copy.deepcopy(_BASE)
    sections = set()
    for (section, key), value in mutations:
        if section == "systematics":
            data["systematics"][index][key] = value
            sections.add(f"systematics.{index}")
        else:
            data[section][key] = value
            sections.add(section)
    try:
        cfg = parse_config(data, source="h.toml")
    except ConfigError as err:
        message = str(err)
        assert message.startswith("h.toml: ")
        assert any(f"[{s}" in message for s in sections), message
        return
    try:
        check_before_running(cfg)
    except (ValueError, FileNotFoundError) as err:
        message = str(err)
        assert re.search(r"\[\[?\w|--universes", message), message
        assert "Traceback" not in message


def test_the_examples_validate_and_pass_the_checks_before_running() -> None:
    for path in sorted(examples_dir().glob("*.toml")):
        data = tomllib.loads(path.read_text())
        if "generator" not in data.get("sample", {}):
            continue  # an ingest mapping
        check_before_running(parse_config(data, source=str(path)))


def test_a_published_example_result_is_finite_where_it_must_be(case: Case) -> None:
    from farm.finite import non_finite

    with xr.open_zarr(case.out) as ds:
        assert non_finite(ds.load()) == []
        assert np.isinf(ds["truth_edges"].values).all()  # the one total bin: exempt


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_generated_stores_record_column_ranges_and_generator_version(case: Case) -> None:
    meta = _json(case.store / "zarr.json")["attributes"]
    assert meta["generator"]["generator_version"] >= 2
    ranges = meta["shards"][0]["ranges"]
    assert set(ranges) >= {"enu_true", "w_nominal", "reco_pe", "selection_threshold"}
    lo, hi = ranges["reco_pe"]["selected"]
    assert 0 <= lo <= hi
