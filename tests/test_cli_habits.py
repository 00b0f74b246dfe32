"""The command line follows its ecosystem's habits (issue 15, items 1, 2 and 4).

``--version``, ``-q``/``-v``, ``--json`` on stdout with nothing else there, one exit-code
convention (0 ok, 1 the analysis failed, 2 usage or bad input, 75 locked, 130 interrupted),
literal help texts, counts written as 2e5 or 200_000, no wrapping when not a terminal; labelled
stages and the Ctrl-C message; a refresh that keeps the published run's --events/--universes
and says what changed; ``farm stores list|clean``; a store folder that does not depend on the
working folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import scipy.stats
from conftest import example, farm_cli, write_config
from typer.testing import CliRunner

import farm
from farm.cli import app
from farm.cli._common import parse_count
from farm.config import load_config, store_dir, store_path
from farm.publish import open_published

SAMPLE = "sns-csi"
EVENTS = 200_000
UNIVERSES = 4


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- a small published run, shared by the module --------------------------------------------------


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """FARM_STORE_DIR for this module: an absolute folder, away from every working folder."""
    folder = tmp_path_factory.mktemp("habits-stores")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FARM_STORE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, stores: Path) -> Iterator[Path]:
    """``farm run sns-csi --events 2e5 --universes 4 --json`` published in a working folder."""
    root = tmp_path_factory.mktemp("habits")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        result = farm_cli(
            "run", SAMPLE, "--out", "r.zarr", "--cluster", "inprocess",
            "--events", "2e5", "--universes", UNIVERSES, "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        (root / "run.json").write_text(result.stdout)
        (root / "run.stderr").write_text(result.stderr)
        yield root


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    return project


# --- item 1: habits --------------------------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    result = farm_cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"farm {farm.__version__}\n"


def _commands() -> list[list[str]]:
    """Every command and sub-command, as the words that name it."""
    import typer.main

    group = typer.main.get_command(app)
    out = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        if subs:
            out += [[name, sub] for sub in subs]
        else:
            out.append([name])
    return out


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_help_is_literal_and_flags_take_no_value(words: list[str]) -> None:
    result = farm_cli(*words, "--help")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    # a flag is listed bare: "--overwrite   Replace …", never "--overwrite BOOLEAN"
    assert not re.search(r"--[a-z-]+ (BOOLEAN|<bool>)", result.output)


@pytest.mark.parametrize("words", [["generate"], ["run"], ["refresh"], ["plan"]])
def test_help_keeps_square_brackets(words: list[str]) -> None:
    # rich markup used to swallow "[generation]": "Override  events"
    result = farm_cli(*words, "--help")
    assert "[generation] events" in one_line(result.output)


def test_the_top_level_help_states_the_exit_codes() -> None:
    text = one_line(farm_cli("--help").output)
    for code in ("0 ok", "1 the analysis failed", "2 usage or bad input", "75", "130"):
        assert code in text


@pytest.mark.parametrize(
    ("text", "value"),
    [("200000", 200_000), ("200_000", 200_000), ("2e5", 200_000), ("2.0E5", 200_000),
     ("2_000e2", 200_000), ("1e0", 1), (" 7 ", 7)],
)  # fmt: skip
def test_counts_take_exponents_and_underscores(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize(
    ("text", "says"),
    [("2.5e0", "is not a whole number (2.5)"), ("1e-3", "is not a whole number (0.001)"),
     ("2.5", "is not a whole number"), ("abc", "is not a number"), ("2__0", "is not a number"),
     ("inf", "is not a count"), ("1e400", "is not a count")],
)  # fmt: skip
def test_counts_that_are_not_exact_integers_are_refused(
    text: str, says: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_count(text)
    result = farm_cli("generate", "reactor-ge", "--events", text, "--out", tmp_path / "x.zarr")
    assert result.exit_code == 2
    assert says in one_line(result.stderr)
    assert not (tmp_path / "x.zarr").exists()


def test_generate_takes_events_as_2e3(tmp_path: Path) -> None:
    from farm.store import EventStore

    result = farm_cli("generate", "reactor-ge", "--events", "2e3", "--out", tmp_path / "g.zarr")
    assert result.exit_code == 0, result.output
    assert EventStore.open(tmp_path / "g.zarr").n_events == 2_000
    assert result.stdout.startswith("wrote 2,000 events")  # the result on stdout


# the same bad input exits 2 from every command that reads it (docs/bad-input.md, README)
_BAD_INPUTS = {
    "missing file": lambda d: d / "absent.toml",
    "not TOML": lambda d: _text(d / "broken.toml", "[sample\nname = 1\n"),
    "invalid value": lambda d: write_config(d / "zero.toml", example(generation={"events": 0})),
    "unknown key": lambda d: write_config(d / "key.toml", example(detector={"colour": "red"})),
}
_COMMANDS = {
    "config check": lambda f, d: ["config", "check", f],
    "run": lambda f, d: ["run", f, "--out", d / "r.zarr", "--cluster", "inprocess"],
    "refresh": lambda f, d: ["refresh", f, "--out", d / "r.zarr", "--cluster", "inprocess"],
    "plan": lambda f, d: ["plan", f],
    "generate": lambda f, d: ["generate", f, "--out", d / "s.zarr"],
    "validate closure": lambda f, d: ["validate", "closure", f, "--knob", "quenching"],
}


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("bad", list(_BAD_INPUTS))
@pytest.mark.parametrize("command", list(_COMMANDS))
def test_bad_input_exits_2_from_every_command(
    command: str, bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _BAD_INPUTS[bad](tmp_path)
    result = farm_cli(*_COMMANDS[command](path, tmp_path))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") or "Error:" in result.stderr, result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "r.zarr").exists() and not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize(
    "args",
    [["run", SAMPLE, "--cluster", "inprocess"],  # --out missing
     ["run", SAMPLE, "--out", "r.zarr", "--bogus"],
     ["run", SAMPLE, "--out", "r.zarr", "--cluster", "cloud"],
     ["inspect", "missing.zarr"], ["versions", "missing.zarr"],
     ["stores", "clean"],  # says which: --all, --sample or --older-than
     ["cluster", "certs"]],
    ids=["missing-flag", "unknown-flag", "unknown-cluster", "inspect", "versions", "stores-clean",
         "certs-no-dir"],
)  # fmt: skip
def test_usage_errors_exit_2(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FARM_STORE_DIR", str(tmp_path / "stores"))
    assert farm_cli(*args).exit_code == 2


def test_certs_twice_names_the_flag_not_the_python_argument(tmp_path: Path) -> None:
    assert farm_cli("cluster", "certs", tmp_path / "tls").exit_code == 0
    again = farm_cli("cluster", "certs", tmp_path / "tls")
    assert again.exit_code == 2
    text = one_line(again.stderr)
    assert "Pass --overwrite" in text
    assert "overwrite=True" not in text


def test_a_long_error_stays_one_line_when_not_a_terminal(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 6) / "absent.toml"
    result = CliRunner(env={"COLUMNS": None}).invoke(app, ["config", "check", str(deep)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(deep) in lines[0], result.stderr


# --- item 2: stages, p-values, --json, -q/-v, Ctrl-C ---------------------------------------------


def test_run_json_is_the_only_thing_on_stdout(project: Path) -> None:
    record = json.loads((project / "run.json").read_text())
    assert record["version"] == "v0001.zarr" and record["up_to_date"] is False
    assert record["work_items"]["computed"] == record["work_items"]["items"] > 0
    with open_published(project / "r.zarr") as ds:
        assert record["universes"] == ds.sizes["universe"]
        assert [m["model"] for m in record["models"]] == [str(v) for v in ds["model"].values]


def test_the_p_values_are_those_of_the_chi_squares(project: Path) -> None:
    record = json.loads((project / "run.json").read_text())
    for m in record["models"]:
        for name in ("real_joint", "real_uncorrelated", "nominal_joint", "nominal_uncorrelated"):
            expected = scipy.stats.chi2.sf(m[f"chi2_{name}"], m["dof"])
            assert m[f"pvalue_{name}"] == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_the_summary_prints_chi2_per_dof_with_its_p_value(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plain = farm_cli("run", SAMPLE, "--out", "p.zarr", "--cluster", "inprocess",
                     "--events", "2e5", "-u", UNIVERSES)  # fmt: skip
    assert plain.exit_code == 0, plain.output
    with open_published("p.zarr") as ds:
        dof = int(ds["chi2_dof"].values)
        chi2 = ds["chi2_real_joint"].values
        models = [str(v) for v in ds["model"].values]
    assert models
    for k, model in enumerate(models):
        p = scipy.stats.chi2.sf(chi2[k], dof)
        shown = f"p = {p:.2g}" if p < 0.01 else f"p = {p:.2f}"
        assert re.search(rf"{model}: chi2/dof real [\d.]+ ± [\d.e-]+/{dof}, {shown} ", plain.stdout)


def test_stages_are_labelled_on_stderr(project: Path) -> None:
    text = (project / "run.stderr").read_text()
    for label in ("generating 200,000 events", "computing", "work items", "reducing", "publishing"):
        assert label in text
    assert text.index("generating") < text.index("computing") < text.index("publishing")


def test_quiet_leaves_stderr_empty_and_verbose_adds_stage_times(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "run",
        SAMPLE,
        "--out",
        "q.zarr",
        "--cluster",
        "inprocess",
        "-n",
        "2e5",
        "-u",
        UNIVERSES,
    ]
    quiet = farm_cli("-q", *args)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert "published q.zarr" in quiet.stdout
    assert farm_cli(*args, "-q").stderr == ""  # after the command too
    verbose = farm_cli(*args, "-v")
    assert re.search(r"^computing \d+ work items: \d+\.\d s$", verbose.stderr, re.MULTILINE)
    assert re.search(r"^publishing: \d+\.\d s$", verbose.stderr, re.MULTILINE)
    errors = farm_cli("-q", "run", "absent.toml", "--out", "x.zarr")
    assert errors.exit_code == 2 and errors.stderr.startswith("error: ")  # errors still show


@pytest.mark.parametrize(
    "words",
    [["versions", "r.zarr"], ["plan", SAMPLE, "-n", "2e5", "-u", "4"],
     ["compare", "r.zarr", "--model", "farm.models:cevns_csi_tree_helm"]],
    ids=["versions", "plan", "compare"],
)  # fmt: skip
def test_json_of_versions_plan_and_compare_is_all_of_stdout(
    in_project: Path, words: list[str]
) -> None:
    result = farm_cli(*words, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)  # the whole of stdout is one JSON document


def test_inspect_json_matches_the_store(in_project: Path) -> None:
    cfg = load_config(SAMPLE, **{"generation.events": EVENTS})
    result = farm_cli("inspect", store_path(cfg), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["sample"], record["events"]) == (SAMPLE, EVENTS)
    assert sum(t["generated"] for t in record["by_channel"].values()) == EVENTS


def test_ctrl_c_says_what_is_checkpointed_exits_130_and_the_rerun_resumes(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import farm.execute

    monkeypatch.chdir(tmp_path)
    real = farm.execute.compute_item
    calls = []

    def interrupted_at_the_fifth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(farm.execute, "compute_item", interrupted_at_the_fifth)
    args = [
        "run",
        SAMPLE,
        "--out",
        "i.zarr",
        "--cluster",
        "inprocess",
        "-n",
        "2e5",
        "-u",
        UNIVERSES,
    ]
    result = farm_cli(*args)
    assert result.exit_code == 130
    total = json.loads((project / "run.json").read_text())["work_items"]["items"]
    said = re.search(
        rf"interrupted: (\d+) of {total} work items checkpointed; rerun the same command to resume",
        one_line(result.stderr),
    )
    assert said is not None, result.stderr
    # the items taken before the interrupted one, in item order (farm.execute: the threads may
    # call compute_item out of order, so the fifth call can be any item after the first, which
    # runs alone); what it says is what is on disk
    kept = int(said.group(1))
    assert 1 <= kept < total
    assert len(list((tmp_path / "i.zarr.checkpoints").glob("*.npz"))) == kept
    assert not (tmp_path / "i.zarr").exists()
    monkeypatch.setattr(farm.execute, "compute_item", real)
    again = farm_cli(*args)
    assert again.exit_code == 0, again.output
    assert (
        f"computed {total - kept} of {total} work items ({kept} from checkpoints)" in again.stdout
    )


# --- item 4: refresh, stores -----------------------------------------------------------------------


def test_refresh_keeps_the_published_events_and_universes_and_says_what_changed(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    monkeypatch.chdir(copy)
    data = example()
    for s in data["systematics"]:
        if s["name"] == "weak_mixing_angle":
            s["sigma"] *= 1.5
    write_config(copy / "changed.toml", data)

    result = farm_cli("refresh", "changed.toml", "--out", "r.zarr", "--cluster", "inprocess")

    assert result.exit_code == 0, result.output
    text = one_line(result.stderr)
    assert "keeping the 200,000 events of v0001 (pass --events to change them)" in text
    assert f"keeping the {UNIVERSES} universes per systematic of v0001" in text
    assert "changed since v0001: systematics ~weak_mixing_angle (sigma)" in text
    first = json.loads((project / "run.json").read_text())
    computed, items = map(int, re.search(r"computed (\d+) of (\d+)", result.stdout).groups())  # type: ignore[union-attr]
    assert items == first["work_items"]["items"]
    assert 0 < computed < items  # only the changed knob's items
    # … and said so before computing them
    assert f"{computed} of {items} work items to compute, {items - computed} checkpointed" in text
    versions = json.loads(farm_cli("versions", "r.zarr", "--json").stdout)
    assert [v["universes"] for v in versions] == [first["universes"]] * 2
    assert [v["events"] for v in versions] == [EVENTS] * 2


def test_refresh_with_nothing_changed_says_so(in_project: Path) -> None:
    result = farm_cli("refresh", SAMPLE, "--out", "r.zarr", "--cluster", "inprocess", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["up_to_date"] is True
    assert "nothing changed in the configuration or the event store since" in result.stderr


def test_the_store_folder_does_not_depend_on_the_working_folder(
    project: Path, stores: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # another folder: the store generated by the project is found
    result = farm_cli("run", SAMPLE, "--out", "elsewhere.zarr", "--cluster", "inprocess",
                      "-n", "2e5", "-u", UNIVERSES)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "does not exist: generating" not in result.stderr
    assert not (tmp_path / "stores").exists()


def test_the_default_store_folder_is_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FARM_STORE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = load_config(SAMPLE)
    here = store_path(cfg)
    monkeypatch.chdir(tmp_path)
    assert store_path(cfg) == here == tmp_path / "cache" / "farm" / "stores" / here.name
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store_dir() == tmp_path / "home" / ".cache" / "farm" / "stores"
    monkeypatch.setenv("FARM_STORE_DIR", str(tmp_path / "mine"))
    assert store_path(cfg) == tmp_path / "mine" / here.name


def _fake_ingested(path: Path, source: Path) -> None:
    """A copy of a generated store whose metadata says it was not generated by the farm."""
    shutil.copytree(source, path)
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["generator"] = {"name": "external"}
    (path / "zarr.json").write_text(json.dumps(meta))


def test_stores_list_and_clean_remove_only_generated_stores(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "stores"
    folder.mkdir()
    generated = store_path(load_config(SAMPLE, **{"generation.events": EVENTS}))
    shutil.copytree(generated, folder / generated.name)
    _fake_ingested(folder / "ingested.zarr", generated)
    shutil.copytree(project / "r.zarr.versions" / "v0001.zarr", folder / "a-result.zarr")
    (folder / "notes.txt").write_text("mine")
    (folder / "link.zarr").symlink_to(generated)

    listed = farm_cli("stores", "list", "--dir", folder, "--json")
    assert listed.exit_code == 0, listed.output
    stores = {Path(s["path"]).name: s for s in json.loads(listed.stdout)["stores"]}
    assert set(stores) == {generated.name, "ingested.zarr"}
    assert stores[generated.name]["removable"] and not stores["ingested.zarr"]["removable"]
    assert stores[generated.name]["events"] == EVENTS

    dry = farm_cli("stores", "clean", "--dir", folder, "--all", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would remove {folder / generated.name}" in dry.stdout
    assert (folder / generated.name).is_dir()

    other = farm_cli("stores", "clean", "--dir", folder, "--sample", "sns-lar")
    assert other.exit_code == 0 and (folder / generated.name).is_dir()

    done = farm_cli("stores", "clean", "--dir", folder, "--all")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in folder.iterdir()) == [
        "a-result.zarr", "ingested.zarr", "link.zarr", "notes.txt",
    ]  # fmt: skip
    assert "kept" in done.stderr and "cannot be regenerated" in done.stderr
    assert generated.is_dir()  # the link's target is not the folder's


def test_stores_clean_older_than_keeps_newer_stores(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "stores"
    folder.mkdir()
    generated = store_path(load_config(SAMPLE, **{"generation.events": EVENTS}))
    shutil.copytree(generated, folder / "old.zarr")
    shutil.copytree(generated, folder / "new.zarr")
    ten_days = 10 * 86400
    meta = folder / "old.zarr" / "zarr.json"
    os.utime(meta, (meta.stat().st_atime - ten_days, meta.stat().st_mtime - ten_days))
    result = farm_cli("stores", "clean", "--dir", folder, "--older-than", "7")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["new.zarr"]


# --- item 1: every command's result on stdout, its progress and warnings on stderr -----------------


def _store_with_weights(tmp: Path) -> list[object]:
    """A small generated store and a weight file with a row for each of its events."""
    import numpy as np

    from farm.store import EventStore

    made = farm_cli("generate", "reactor-ge", "--events", "2e3", "--out", tmp / "g.zarr")
    assert made.exit_code == 0, made.output
    store = EventStore.open(tmp / "g.zarr")
    ids = store.read_columns(["event_id"], 0, store.n_events)["event_id"]
    np.savez(tmp / "w.npz", event_id=ids, weights=np.ones((ids.size, 3)))
    return [tmp / "g.zarr", tmp / "w.npz"]


def _with_a_weight_set(tmp: Path) -> Path:
    store, weights = _store_with_weights(tmp)
    assert farm_cli("weights", "add", store, weights, "--name", "w").exit_code == 0
    return store


def _gst(tmp: Path) -> list[object]:
    pytest.importorskip("uproot")
    from test_ingest import MAPPING, gst_branches, write_gst, write_mapping

    return [write_gst(tmp / "numu.gst.root", gst_branches()), "--mapping",
            write_mapping(tmp / "m.toml", MAPPING)]  # fmt: skip


def _stale(tmp: Path) -> Path:
    from test_fault_temporaries import make

    make(tmp / "c", "checkpoint", "dead")  # its writer no longer runs: stale at once
    return tmp / "c"


_RESULTS = {
    # command: (its words, given a fresh folder; what its result on stdout says)
    "report": (lambda t: ["report", "r.zarr", "--out", t / "rep"], r"^wrote \d+ plots and .*index\.html$"),
    "export hepdata": (lambda t: ["export", "hepdata", "r.zarr", "--out", t / "hd", "--no-archive"],
                       r"^wrote \d+ tables to .*\(valid HEPData\)$"),
    "fit": (lambda t: ["fit", "r.zarr", "--model", "farm.models:cevns", "--param", "sin2w",
                       "--grid", 11, "--toys", 0, "--out", t / "f.zarr"], r"^wrote .*f\.zarr in "),
    "ingest": (lambda t: ["ingest", *_gst(t), "--out", t / "i.zarr"], r"^wrote 12 events of GENIE"),
    "weights add": (lambda t: ["weights", "add", *_store_with_weights(t), "--name", "w"],
                    r"^added weight set 'w' to .*2,000 events × 3 universes"),
    "weights list": (lambda t: ["weights", "list", _with_a_weight_set(t)], r"^\W*w\W+3\W+float64\b"),
    "clean": (lambda t: ["clean", _stale(t), "--dry-run"],
              r"^would remove .*checkpoints.*\n.*: 1 stale temporary\(ies\), would free"),
    "clean (nothing)": (lambda t: ["clean", t], r"nothing stale to remove$"),
    "stores list": (lambda t: ["stores", "list", "--dir", t], r": no event stores$"),
    "stores clean": (lambda t: ["stores", "clean", "--dir", t, "--all", "--dry-run"],
                     r": 0 store\(s\) to remove, would free 0 B$"),
    "cluster certs": (lambda t: ["cluster", "certs", t / "tls"], r"^wrote ca\.pem, ca-key\.pem"),
    "config check": (lambda t: ["config", "check", SAMPLE], rf"^OK .*{SAMPLE}\.toml"),
    "validate closure": (lambda t: ["validate", "closure", SAMPLE, "--events", "2e4", "--knob",
                                    "quenching", "--out", t / "cl"],
                         r"│ quenching +│ -1σ(?s:.*)closure\.json\nclosure passes for all 1 knobs$"),
    "compare": (lambda t: ["compare", "r.zarr", "--model", "farm.models:cevns_csi_tree_helm"],
                rf"against {SAMPLE} \(\d+ universes, r\.zarr"),
}  # fmt: skip


@pytest.mark.parametrize("command", list(_RESULTS))
def test_results_go_to_stdout_and_diagnostics_to_stderr(
    command: str, in_project: Path, tmp_path: Path
) -> None:
    words, says = _RESULTS[command]
    result = farm_cli(*words(tmp_path))
    assert result.exit_code == 0, result.output
    assert re.search(says, result.stdout, re.MULTILINE), result.stdout
    assert not re.search(says, result.stderr, re.MULTILINE), result.stderr
    assert not re.search(r"^(wrote|published|added|would remove|OK) ", result.stderr, re.MULTILINE)
