"""Issue 7, item 2: bad input is refused through the CLI with a clear error and no partial output.

Every case runs a real command (``farm run``, ``farm refresh`` or ``farm inspect``) through
typer's CliRunner in a working directory that holds a published result (``results/r.zarr``, one
version) and whatever the case gives. Each asserts the exit status, that the message names the
file and the field, column or key at fault and says what to do, and that the working directory is
byte for byte as it was: no new store, result, version, checkpoint, lock or temporary file, and
nothing half-overwritten. ``docs/bad-input.md`` tabulates the same cases.

The event store is an SNS CsI sample of 40 000 events in three shards (16 384, 16 384 and 7 232
rows), generated once; each store case damages a copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import Result
from conftest import example, farm_cli, toml_text
from store_surgery import flip_byte, forge_values

from farm.store import SCHEMA_VERSION, ChecksumError, EventStore, StoreWriter
from farm.store.writer import LAYOUT_ATTRS

EVENTS = 40_000
SHARD_ROWS = 16_384
UNIVERSES = "2"
MODULE = "farm_bad_input_models"
MODELS = """
import numpy as np


def constant(enu_mev, flavor):
    return np.full(np.shape(enu_mev), 1e-39)


def raises(enu_mev, flavor):
    raise ZeroDivisionError("no cross section below threshold")


def nan(enu_mev, flavor):
    return np.full(np.shape(enu_mev), np.nan)


def wrong_shape(enu_mev, flavor):
    return np.ones(3)


def negative_ratio(enu_mev, flavor):
    return -np.ones(np.shape(enu_mev))
"""


# --- the shared inputs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    store: Path
    published: Path
    """A folder holding ``r.zarr`` (a link) and ``r.zarr.versions/v0001.zarr``."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inputs]:
    root = tmp_path_factory.mktemp("bad-input")
    (root / f"{MODULE}.py").write_text(MODELS)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        mp.chdir(root)
        store = root / "good.zarr"
        config = root / "good.toml"
        config.write_text(toml_text(_config_data(store)))
        result = farm_cli("generate", config, "--out", store, "--shard-size", SHARD_ROWS)
        assert result.exit_code == 0, result.output
        published = root / "published"
        out = published / "r.zarr"
        result = farm_cli("run", config, "--out", out, "--cluster", "inprocess", "-u", UNIVERSES)
        assert result.exit_code == 0, result.output
        shutil.rmtree(published / "r.zarr.checkpoints")
        yield Inputs(store=store, published=published)


def _config_data(store: Path, **sections: Any) -> dict[str, Any]:
    data = example(sample={"store": str(store)}, generation={"events": EVENTS})
    for section, values in sections.items():
        if isinstance(values, list) or values is None:
            data[section] = values
        else:
            data.setdefault(section, {}).update(values)
    return {k: v for k, v in data.items() if v is not None}


# --- one case ----------------------------------------------------------------------------------


@dataclass
class Case:
    """A working directory with a copy of the published result; ``run`` refuses in it."""

    root: Path
    store: Path
    out: Path
    config: Path
    before: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def write_config(self, text: str | None = None, **sections: Any) -> Path:
        self.config.write_text(text if text is not None else toml_text(self._data(**sections)))
        return self.config

    def _data(self, **sections: Any) -> dict[str, Any]:
        return _config_data(self.store, **sections)

    def farm(self, *args: Any) -> Result:
        self.before = _tree(self.root)
        return farm_cli(*args)

    def run(self, *extra: Any, command: str = "run") -> Result:
        return self.farm(
            command,
            self.config,
            "--out",
            self.out,
            "--cluster",
            "inprocess",
            "-u",
            UNIVERSES,
            *extra,
        )


@pytest.fixture
def case(inputs: Inputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    monkeypatch.syspath_prepend(str(inputs.store.parent))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(inputs.published, tmp_path / "results", symlinks=True)
    c = Case(
        root=tmp_path,
        store=inputs.store,
        out=tmp_path / "results" / "r.zarr",
        config=tmp_path / "analysis.toml",
    )
    c.write_config()
    return c


def _tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root``: a folder, a link's target, or a file's size and mtime.

    (A folder's own mtime changes when the lock file beside the output comes and goes.)
    """
    out: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("folder",)
            else:
                st = path.stat()
                out[rel] = (st.st_size, st.st_mtime_ns)
    return out


def assert_refused(case: Case, result: Result, code: int, *patterns: str) -> str:
    """Exit ``code``, a message matching every pattern, and the working directory unchanged."""
    message = " ".join(result.output.split())
    if os.environ.get("FARM_SHOW_MESSAGES"):  # to tabulate them in docs/bad-input.md
        print(f"\nMESSAGE exit {result.exit_code}: {message}")
    assert result.exit_code == code, message
    assert "Traceback" not in message
    assert message.startswith("error: ") or "error: " in message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    assert _tree(case.root) == case.before
    assert os.readlink(case.out) == "r.zarr.versions/v0001.zarr"  # the published result is current
    return message


def _name(path: Path) -> str:
    return re.escape(path.name)


# --- stores: damaged copies of the good store ---------------------------------------------------


def copy_store(case: Case, name: str = "store.zarr") -> Path:
    path = case.root / name
    shutil.copytree(case.store, path)
    case.store = path
    case.write_config()
    return path


def shard_file(store: Path, column: str, shard: int) -> Path:
    return store / column / "c" / str(shard)


def edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def rewrite_store(
    case: Case,
    mutate: Callable[[dict[str, np.ndarray]], None],
    *,
    n_events: int | None = None,
) -> Path:
    """The good store's rows (the first ``n_events``), changed by ``mutate``, in a new store.

    The writer refuses values a column may not hold, so the changed values are forged into the
    written store afterwards with their checksums recorded (tests/store_surgery.py), as a store
    written before farm checked values would be: only validation can catch them.
    """
    good = EventStore.open(case.store)
    n = good.n_events if n_events is None else n_events
    columns = good.read_columns(None, 0, n)
    original = {k: v.copy() for k, v in columns.items()}
    mutate(columns)
    attrs = {k: v for k, v in good.attrs.items() if k not in LAYOUT_ATTRS}
    path = case.root / "store.zarr"
    with StoreWriter.create(
        path, n_events=n, columns=good.columns, shard_rows=SHARD_ROWS, attrs=attrs
    ) as writer:
        for index, (start, stop) in enumerate(writer.shard_ranges):
            writer.write_shard(index, {k: v[start:stop] for k, v in original.items()})
    changes = {}
    for name, values in columns.items() if n else ():
        same = original[name].view(np.uint8) == values.view(np.uint8)
        changed = np.flatnonzero(~same.reshape(len(values), -1).all(axis=1))
        if changed.size:
            changes[name] = {int(i): values[i] for i in changed}
    if changes:
        forge_values(path, changes)
    case.store = path
    case.write_config()
    return path


def test_a_truncated_shard_is_refused_naming_the_store_shard_and_column(case: Case) -> None:
    store = copy_store(case)
    path = shard_file(store, "w_nominal", 1)
    os.truncate(path, path.stat().st_size - 100)
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), r"shard 1, column 'w_nominal'", "truncated",
        r"farm inspect --verify", "regenerate the store",
    )  # fmt: skip


def test_a_flipped_byte_fails_verification_by_farm_inspect(case: Case) -> None:
    store = copy_store(case)
    flip_byte(shard_file(store, "w_nominal", 1), 8 * 1000)  # the lowest bit of one weight
    result = case.farm("inspect", store, "--verify")
    assert_refused(
        case, result, 1, r"shard 1: FAILED", "checksum [0-9a-f]{32} differs from the recorded",
        r"1 of 3 shard\(s\) failed verification", "regenerate the store with `farm generate`",
    )  # fmt: skip


def test_a_flipped_byte_stops_farm_run_before_it_gives_numbers(case: Case) -> None:
    store = copy_store(case)
    flip_byte(shard_file(store, "enu_true", 2), 8 * 5)
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), "shard 2:", "checksum [0-9a-f]{32} differs",
        "the data changed since it was written", r"farm inspect --verify",
    )  # fmt: skip


def test_a_shard_verified_once_is_verified_again_after_its_file_changes(case: Case) -> None:
    """A long-lived worker keeps its opened store: its first read of a shard recomputes the
    checksum, later reads do not, unless a file of the shard changed since (inode, size, mtime)."""
    store = copy_store(case)
    opened = EventStore.open(store, verify_checksums=True)
    first = opened.read_columns(["w_nominal"], 0, 100)
    again = opened.read_columns(["w_nominal"], 0, 100)
    assert sorted(opened._verified) == [0]
    np.testing.assert_array_equal(first["w_nominal"], again["w_nominal"])

    flip_byte(shard_file(store, "time_us", 0), 4 * 50)  # a column the read does not ask for
    with pytest.raises(ChecksumError, match=r"shard 0: checksum [0-9a-f]{32} differs"):
        opened.read_columns(["w_nominal"], 0, 100)


def test_a_missing_shard_file_is_refused(case: Case) -> None:
    store = copy_store(case)
    shard_file(store, "flavor", 2).unlink()
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), r"shard 2, column 'flavor'", "the shard file is missing",
        "regenerate",
    )  # fmt: skip


def test_a_damaged_shard_index_is_refused(case: Case) -> None:
    store = copy_store(case)
    path = shard_file(store, "channel", 0)
    flip_byte(path, path.stat().st_size - 10)  # inside the chunk index, before its crc32c
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), r"shard 0, column 'channel'", "fails its crc32c check",
        "regenerate",
    )  # fmt: skip


def test_a_store_without_a_required_column_is_refused(case: Case) -> None:
    store = copy_store(case)
    shutil.rmtree(store / "w_nominal")
    edit_json(store / "zarr.json", lambda m: m["attributes"]["columns"].pop("w_nominal"))
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), r"column 'w_nominal'", "required column 'w_nominal' is missing",
        "regenerate the store with `farm generate`",
    )  # fmt: skip


def test_a_column_listed_without_its_array_is_refused(case: Case) -> None:
    store = copy_store(case)
    shutil.rmtree(store / "reco_pe")
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), r"column 'reco_pe'", "listed in the attributes but has no array",
        "regenerate",
    )  # fmt: skip


def test_a_column_of_the_wrong_dtype_is_refused(case: Case) -> None:
    store = copy_store(case)
    edit_json(store / "w_nominal" / "zarr.json", lambda m: m.update(data_type="float32"))
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), r"column 'w_nominal'", "dtype float32, the schema stores float64",
        "regenerate",
    )  # fmt: skip


def test_columns_of_mismatched_lengths_are_refused(case: Case) -> None:
    store = copy_store(case)
    edit_json(store / "reco_pe" / "zarr.json", lambda m: m.update(shape=[EVENTS - 7]))
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), r"column 'reco_pe'",
        rf"shape \({EVENTS - 7},\), the store holds {EVENTS} events", "regenerate",
    )  # fmt: skip


def test_a_store_of_another_schema_version_is_refused(case: Case) -> None:
    store = copy_store(case)
    edit_json(store / "zarr.json", lambda m: m["attributes"].update(farm_schema_version=99))
    result = case.run()
    assert_refused(
        case, result, 2, _name(store), f"schema version 99; this farm reads version {SCHEMA_VERSION}",
        "regenerate the store with `farm generate`, or read it with the farm release that wrote it",
    )  # fmt: skip


def test_a_directory_that_is_not_a_farm_store_is_refused(case: Case) -> None:
    path = case.root / "notes.zarr"
    path.mkdir()
    (path / "readme.txt").write_text("not a store")
    case.store = path
    case.write_config()
    result = case.run()
    assert_refused(case, result, 2, _name(path), "not a farm event store", "regenerate it")


def test_a_store_whose_writer_never_committed_is_refused(case: Case) -> None:
    store = copy_store(case)
    edit_json(store / "zarr.json", lambda m: m["attributes"].pop("shards"))
    result = case.run()
    assert_refused(
        case,
        result,
        2,
        _name(store),
        "never committed",
        "regenerate the store with `farm generate`",
    )


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [
        ("w_nominal", 20_000, np.nan),
        ("w_nominal", 17, np.inf),
        ("w_nominal", 39_999, -1.0e-3),
        ("enu_true", 123, -5.0),
        ("enu_true", 35_000, np.nan),
    ],
    ids=["nan-weight", "inf-weight", "negative-weight", "negative-enu", "nan-enu"],
)
def test_a_weight_or_energy_that_is_not_finite_and_non_negative_is_refused_naming_its_row(
    case: Case, column: str, row: int, value: float
) -> None:
    def poke(columns: dict[str, np.ndarray]) -> None:
        columns[column][row] = value

    store = rewrite_store(case, poke)
    result = case.run()
    shard = row // SHARD_ROWS
    assert_refused(
        case, result, 2, _name(store), rf"shard {shard}, column '{column}'",
        rf"row {row} has {column} = {re.escape(str(value))}; it must be finite and >= 0",
        "regenerate the store with `farm generate`",
    )  # fmt: skip


def test_an_empty_store_is_refused(case: Case) -> None:
    store = rewrite_store(case, lambda _: None, n_events=0)
    result = case.run()
    assert_refused(case, result, 2, _name(store), "holds no events", r"--events N")


def test_an_observable_that_is_not_a_column_of_the_store_is_refused(case: Case) -> None:
    flux_only = case._data()["systematics"][:1]  # the readout knobs would object first
    case.write_config(binning={"observable": "reco_kevee"}, systematics=flux_only)
    result = case.run()
    assert_refused(
        case, result, 2, r"\[binning.observable\] 'reco_kevee' is not a column of",
        _name(case.store), "set it to one of its columns: event_id",
    )  # fmt: skip


# --- configurations ----------------------------------------------------------------------------


def test_a_missing_configuration_file_is_refused(case: Case) -> None:
    case.config = case.root / "absent.toml"
    result = case.run()
    assert_refused(
        case,
        result,
        2,
        r"absent\.toml: configuration file not found",
        "give a TOML file or one of: .*sns-csi",
    )


def test_an_unknown_sample_name_is_refused(case: Case) -> None:
    result = case.farm("run", "sns-cs", "--out", case.out, "--cluster", "inprocess")
    assert_refused(
        case,
        result,
        2,
        "'sns-cs' is neither a TOML file nor a known sample",
        "known samples: .*sns-csi",
    )


def test_a_file_that_is_not_toml_is_refused(case: Case) -> None:
    case.write_config("[sample\nname = 'x'\n")
    result = case.run()
    assert_refused(case, result, 2, r"analysis\.toml: not valid TOML", "line 1")


def config_error(case: Case, *patterns: str, **sections: Any) -> None:
    case.write_config(**sections)
    result = case.run()
    assert_refused(case, result, 2, r"analysis\.toml", *patterns)


def test_an_unknown_key_is_refused(case: Case) -> None:
    config_error(
        case,
        r"\[detector.mas_kg\] unknown key; remove it or check its spelling",
        detector={"mas_kg": 3},
    )


def test_a_value_of_the_wrong_type_is_refused(case: Case) -> None:
    config_error(
        case, r"\[source.distance_m\] Input should be a valid number", "got 'far'",
        source={"distance_m": "far"},
    )  # fmt: skip


def test_a_missing_required_key_is_refused(case: Case) -> None:
    data = case._data()
    del data["source"]["distance_m"]
    case.write_config(toml_text(data))
    result = case.run()
    assert_refused(
        case, result, 2, r"analysis\.toml", r"\[source.distance_m\] required key is missing; add it"
    )


def test_an_unknown_generator_is_refused(case: Case) -> None:
    config_error(
        case, r"\[sample.generator\] must be one of sns-cevns, reactor-cevns", "got 'sns'",
        sample={"generator": "sns"},
    )  # fmt: skip


def _systematics(case: Case, **changes: Any) -> list[dict[str, Any]]:
    """The example's systematics with the first one (flux_normalization) changed."""
    systematics = case._data()["systematics"]
    systematics[0] = {**systematics[0], **changes}
    return systematics


def test_a_negative_universe_count_in_the_configuration_is_refused(case: Case) -> None:
    config_error(
        case, r"\[systematics.0.throws\] Input should be greater than 0", "got -5",
        systematics=_systematics(case, throws=-5),
    )  # fmt: skip


def test_a_negative_universe_count_on_the_command_line_is_refused(case: Case) -> None:
    result = case.farm("run", case.config, "--out", case.out, "--cluster", "inprocess", "-u", "-3")
    assert_refused(
        case,
        result,
        2,
        r"analysis\.toml",
        "must be at least 1 \\(got -3\\)",
        "give --universes N with N >= 1",
    )


def test_an_unknown_systematic_kind_is_refused(case: Case) -> None:
    config_error(
        case, r"\[systematics.0.kind\] Input should be 'flux', 'knob', 'bootstrap' or 'weights'", "got 'fluxx'",
        systematics=_systematics(case, kind="fluxx"),
    )  # fmt: skip


def test_an_unknown_knob_parameter_is_refused(case: Case) -> None:
    systematics = case._data()["systematics"]
    systematics[1]["parameter"] = "neutron_skin"
    config_error(
        case, "systematic 'neutron_radius': parameter must be one of cevns_rms_radius",
        "got 'neutron_skin'", systematics=systematics,
    )  # fmt: skip


def test_a_knob_without_an_uncertainty_is_refused(case: Case) -> None:
    systematics = case._data()["systematics"]
    systematics[1]["sigma"] = 0.0
    config_error(
        case, "systematic 'neutron_radius': a knob needs sigma > 0", systematics=systematics
    )


def test_two_systematics_of_one_name_are_refused(case: Case) -> None:
    systematics = case._data()["systematics"]
    systematics[2]["name"] = systematics[1]["name"]
    config_error(
        case,
        r"\[systematics\] names must be unique; repeated: neutron_radius",
        systematics=systematics,
    )


def test_a_flux_systematic_of_an_unknown_flavour_is_refused(case: Case) -> None:
    config_error(
        case, "systematic 'flux_normalization': flavours numu_bar have no flux_edges_mev in \\[binning\\]",
        "give flavors among nue, numu, numubar, or add their edges",
        systematics=_systematics(case, flavors=["numu_bar"]),
    )  # fmt: skip


def test_reco_edges_that_do_not_increase_are_refused(case: Case) -> None:
    config_error(
        case, r"\[binning.reco_edges\]", "at least two strictly increasing bin edges",
        binning={"reco_edges": [5, 10, 10, 20]},
    )  # fmt: skip


def test_truth_edges_with_a_total_truth_bin_are_refused(case: Case) -> None:
    config_error(
        case, r"\[binning\]", "truth = 'total' is one bin: remove truth_edges or name a truth column",
        binning={"truth_edges": [0, 20, 53]},
    )  # fmt: skip


def test_a_truth_column_without_truth_edges_is_refused(case: Case) -> None:
    config_error(
        case, r"\[binning\]", "truth = 'enu_true' needs truth_edges", binning={"truth": "enu_true"}
    )


def test_signal_flavours_without_flux_edges_are_refused(case: Case) -> None:
    config_error(
        case, r"\[binning\]", "signal_flavors nuebar need flux_edges_mev entries",
        binning={"signal_flavors": ["nue", "nuebar"]},
    )  # fmt: skip


def test_flux_edges_of_an_unknown_flavour_are_refused(case: Case) -> None:
    config_error(
        case, r"\[binning.flux_edges_mev\]", "unknown flavour 'nutau'; allowed: nue, nuebar, numu, numubar",
        binning={"flux_edges_mev": {"nutau": [0, 10]}},
    )  # fmt: skip


def test_blocks_per_task_that_is_not_a_power_of_eight_is_refused(case: Case) -> None:
    config_error(
        case, r"\[analysis.blocks_per_task\] blocks_per_task must be a power of 8 \(1, 8, 64, 512, …\) \(got 3\)",
        analysis={"blocks_per_task": 3},
    )  # fmt: skip


def test_a_weight_clamp_whose_bounds_are_reversed_is_refused(case: Case) -> None:
    config_error(
        case, r"\[analysis.weight_clamp\] weight_clamp must be \[lo, hi\] with 0 <= lo <= hi; got \[2.0, 0.5\]",
        analysis={"weight_clamp": [2.0, 0.5]},
    )  # fmt: skip


def test_fake_data_from_a_universe_that_does_not_exist_is_refused(case: Case) -> None:
    config_error(
        case, r"\[data.universe\] 999 does not exist: the run has 21 universes",
        "give 0 \\(the central value\\) or an index below 21", data={"universe": 999},
    )  # fmt: skip


# --- a flux covariance given as a matrix file ----------------------------------------------------


def covariance_case(case: Case, matrix: np.ndarray | None, name: str = "flux_cov.npy") -> Path:
    """flux_normalization replaced by a covariance_file over the 11 flux bins (1 + 5 + 5)."""
    path = case.root / name
    if matrix is not None:
        np.save(path, matrix)
    systematics = _systematics(case, normalization=0.0, covariance_file=str(path))
    case.write_config(systematics=systematics)
    return path


def _correlated(n: int, sigma: float, rho: float) -> np.ndarray:
    return sigma**2 * (rho * np.ones((n, n)) + (1 - rho) * np.eye(n))


def test_a_flux_covariance_file_that_is_not_positive_semi_definite_is_refused(case: Case) -> None:
    matrix = _correlated(11, 0.1, 0.5)
    matrix[0, 1] = matrix[1, 0] = 0.02  # correlation 2 between two bins
    path = covariance_case(case, matrix)
    result = case.run()
    assert_refused(
        case, result, 2, r"analysis\.toml", r"\[\[systematics\]\] 'flux_normalization'", _name(path),
        r"not positive semi-definite \(smallest eigenvalue -0\.0\d+", r"\|rho\| <= 1",
    )  # fmt: skip


def test_a_flux_covariance_file_that_is_not_symmetric_is_refused(case: Case) -> None:
    matrix = _correlated(11, 0.1, 0.5)
    matrix[2, 7] += 1e-4
    path = covariance_case(case, matrix)
    result = case.run()
    assert_refused(
        case,
        result,
        2,
        _name(path),
        r"not symmetric \(largest \|V - Vᵀ\| = 0\.0001\)",
        r"V\[i, j\] = V\[j, i\]",
    )


def test_a_flux_covariance_file_of_the_wrong_size_is_refused(case: Case) -> None:
    path = covariance_case(case, _correlated(10, 0.1, 0.5))
    result = case.run()
    assert_refused(
        case,
        result,
        2,
        _name(path),
        r"shape \(10, 10\)",
        "give a .npy 11×11 fractional covariance over the flux bins of nue, numu, numubar",
    )


def test_a_missing_flux_covariance_file_is_refused(case: Case) -> None:
    path = covariance_case(case, None, name="absent_cov.npy")
    result = case.run()
    assert_refused(
        case, result, 2, r"analysis\.toml", _name(path), "not found", "give a .npy 11×11"
    )


def test_a_valid_flux_covariance_file_throws_universes_with_that_covariance(case: Case) -> None:
    """The file is used, not just checked: 400 throws of a 10% fully correlated normalisation
    have a fractional spread of 0.10 ± 0.10/√800 ≈ 0.0035 (standard error of a standard deviation)."""
    import xarray as xr

    path = covariance_case(case, _correlated(11, 0.1, 1.0))
    flux_only = [{"name": "flux", "kind": "flux", "covariance_file": str(path), "throws": 400}]
    case.write_config(systematics=flux_only)
    result = case.farm("run", case.config, "--out", case.out, "--cluster", "inprocess")
    assert result.exit_code == 0, result.output
    with xr.open_zarr(case.out) as ds:
        ratio = ds["flux_ratio"].values[ds["universe_systematic"].values == "flux"][:, :-1]
    assert ratio.shape == (400, 11)
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, 11)), rtol=1e-9)  # one shift
    assert abs(ratio[:, 0].std() - 0.10) < 3 * 0.0035


# --- plug-in models ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "patterns"),
    [
        ("raises", ["raised ZeroDivisionError: no cross section below threshold"]),
        ("nan", ["returned NaN or inf for nue; a cross section must be finite"]),
        (
            "wrong_shape",
            [r"returned shape \(3,\) for \w+; expected \(\d+,\) \(one value per energy\)"],
        ),
    ],
    ids=["raises", "returns-nan", "wrong-shape"],
)
def test_a_plugged_in_model_that_misbehaves_is_refused_before_any_event_is_read(
    case: Case, function: str, patterns: list[str]
) -> None:
    spec = f"{MODULE}:{function}"
    case.write_config(models=[{"name": "theory", "callable": spec}])
    result = case.run()
    assert_refused(
        case, result, 2, r"analysis\.toml", rf"\[\[models\]\] 'theory' \({spec}\)", *patterns,
        r"fix the model or remove it from \[\[models\]\]",
    )  # fmt: skip


def test_a_model_that_cannot_be_imported_is_refused(case: Case) -> None:
    case.write_config(models=[{"name": "theory", "callable": "no_such_module:sigma"}])
    result = case.run()
    assert_refused(
        case, result, 2, r"analysis\.toml", "cannot load model 'no_such_module:sigma'",
        "give module:callable importable on this machine",
    )  # fmt: skip


def test_a_differential_model_for_a_total_truth_bin_is_refused(case: Case) -> None:
    case.write_config(
        models=[{"name": "theory", "callable": f"{MODULE}:constant", "kind": "dxsec"}]
    )
    result = case.run()
    assert_refused(
        case,
        result,
        2,
        r"analysis\.toml",
        r"\[\[models\]\] 'theory' gives dσ/dX",
        "not 'total'",
        "use kind = 'xsec' for σ",
    )


def test_a_fake_data_model_giving_negative_ratios_is_refused(case: Case) -> None:
    case.write_config(data={"model": f"{MODULE}:negative_ratio"})
    result = case.run()
    assert_refused(
        case, result, 2, r"analysis\.toml", rf"\[data.model\] {MODULE}:negative_ratio",
        "returned -1.0 for numu; it must return one finite, non-negative ratio per energy",
    )  # fmt: skip


# --- data files ----------------------------------------------------------------------------------


def test_a_missing_data_file_is_refused(case: Case) -> None:
    config_error(
        case, r"\[data.file\] .*absent\.npy not found", "give the observed counts per reco bin",
        data={"kind": "file", "file": str(case.root / "absent.npy")},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("counts", "got"),
    [([10.0, 20.0, 30.0], "got 3 values"), ([10.0, -1, 5, 5, 5, 5, 5], "reco bin 1 holds -1.0")],
    ids=["wrong-length", "negative-count"],
)
def test_a_data_file_of_the_wrong_length_or_with_negative_counts_is_refused(
    case: Case, counts: list[float], got: str
) -> None:
    path = case.root / "counts.txt"
    path.write_text("\n".join(map(str, counts)))
    config_error(
        case, r"\[data.file\] .*counts\.txt: need 7 finite, non-negative counts \(one per reco bin\)",
        got, data={"kind": "file", "file": str(path)},
    )  # fmt: skip


def test_a_data_file_that_is_not_numbers_is_refused(case: Case) -> None:
    path = case.root / "counts.txt"
    path.write_text("ten\ntwenty\n")
    config_error(
        case, r"\[data.file\] .*counts\.txt: cannot read counts", "give one number per reco bin",
        data={"kind": "file", "file": str(path)},
    )  # fmt: skip


# --- command-line options ------------------------------------------------------------------------


def test_zero_workers_are_refused(case: Case) -> None:
    result = case.farm("run", case.config, "--out", case.out, "--workers", "0")
    assert_refused(case, result, 2, "--workers must be at least 1")


def test_an_unknown_cluster_kind_is_refused(case: Case) -> None:
    result = case.farm("run", case.config, "--out", case.out, "--cluster", "cloud")
    assert_refused(case, result, 2, "--cluster 'cloud' is unknown; choose one of local, inprocess")


def test_a_refresh_of_an_output_never_published_is_refused(case: Case) -> None:
    other = case.root / "results" / "other.zarr"
    result = case.farm("refresh", case.config, "--out", other, "--cluster", "inprocess")
    assert_refused(
        case,
        result,
        2,
        r"other\.zarr: nothing published yet",
        "run `farm run .*analysis.toml --out",
    )


def test_a_negative_wait_is_refused(case: Case) -> None:
    result = case.run("--wait", "-1")
    assert_refused(case, result, 2, r"--wait must be >= 0 seconds \(got -1\)")


# --- a task that keeps failing (issue 7, item 1c) -------------------------------------------------


def test_a_corrupt_shard_stops_a_run_on_a_local_cluster_naming_it_and_touches_no_result(
    case: Case,
) -> None:
    """``farm run`` on its default embedded LocalCluster (two worker processes): every work item
    reads shard 1, fails its checksum on a worker, fails again on both retries, and the run stops
    with the workers' error."""
    store = copy_store(case)
    flip_byte(shard_file(store, "reco_pe", 1), 4 * 321)
    result = case.farm("run", case.config, "--out", case.out, "--workers", "2", "-u", UNIVERSES)
    assert_refused(
        case, result, 2, _name(store), "shard 1:", "checksum [0-9a-f]{32} differs from the recorded",
        r"run `farm inspect --verify .*store\.zarr` to list the damaged shards",
    )  # fmt: skip
