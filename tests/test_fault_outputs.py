"""Issue 11, item 4: an output is only ever a result, of one analysis, and its lock is never a link.

Every case runs the real command in the working directory of tests/test_bad_input.py (a published
``results/r.zarr`` of one version, the 40 000-event store) and asserts the exit status, that the
message names the path at fault and what to give instead, and that the directory is byte for
byte as it was (nothing new published, nothing old lost: ``results/r.zarr`` still at v0001).
Before this, ``--out store.zarr`` moved the store into ``store.zarr.versions/v0000.zarr`` and
``--out notes.txt`` adopted the file as version v0000. ``docs/bad-input.md`` lists the cases.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import test_bad_input
from conftest import toml_text
from test_bad_input import (
    UNIVERSES,
    Case,
    _config_data,
    assert_refused,
    copy_store,
)

from farm.lock import lock_path
from farm.publish import list_versions

pytestmark = pytest.mark.faults

# the working directory of tests/test_bad_input.py (a published result, the store)
inputs = test_bad_input.inputs
case = test_bad_input.case

NEW_PATH = re.escape("give --out a new path (or a result published by `farm run`)")


def _store(case: Case) -> tuple[Path, str]:
    store = copy_store(case)
    return store, "store.zarr: --out is this run's own event store"


def _store_to_be_generated(case: Case) -> tuple[Path, str]:
    case.write_config(toml_text(_config_data(case.root / "new.zarr")))
    return case.root / "new.zarr", "new.zarr: --out is this run's own event store"


def _another_store(case: Case) -> tuple[Path, str]:
    other = case.root / "other.zarr"
    shutil.copytree(case.store, other)
    return other, "other.zarr: is an event store .*, not a result; " + NEW_PATH


def _file(case: Case) -> tuple[Path, str]:
    (case.root / "notes.txt").write_text("my notes\n")
    return case.root / "notes.txt", "notes.txt: is a file, not a farm result; " + NEW_PATH


def _folder(case: Case) -> tuple[Path, str]:
    (case.root / "mine").mkdir()
    (case.root / "mine" / "thesis.tex").write_text("\\begin{document}")
    return case.root / "mine", "mine: is a folder holding 1 entry that is not a farm result"


def _empty_folder(case: Case) -> tuple[Path, str]:
    (case.root / "empty.zarr").mkdir()
    return case.root / "empty.zarr", "empty.zarr: is an empty folder that is not a farm result"


def _link_elsewhere(case: Case) -> tuple[Path, str]:
    (case.root / "data").mkdir()
    os.symlink("data", case.root / "r2.zarr")
    return (
        case.root / "r2.zarr",
        "r2.zarr: is a link to data, not to a version in r2.zarr.versions/",
    )


def _a_version(case: Case) -> tuple[Path, str]:
    out = case.root / "results" / "r.zarr.versions" / "v0001.zarr"
    return out, "is inside the folder .*r.zarr.versions that holds the published versions of"


def _versions_folder(case: Case) -> tuple[Path, str]:
    out = case.root / "results" / "r.zarr.versions"
    return out, "is the folder .*r.zarr.versions that holds the published versions of"


def _checkpoints_folder(case: Case) -> tuple[Path, str]:
    out = case.root / "results" / "r.zarr.checkpoints"
    return out, "r.zarr.checkpoints: is the work-item checkpoint folder of a result"


def _inside_a_store(case: Case) -> tuple[Path, str]:
    store = copy_store(case)
    return store / "r.zarr", "r.zarr: is inside the event store .*store.zarr"


def _under_a_file(case: Case) -> tuple[Path, str]:
    (case.root / "notes.txt").write_text("my notes\n")
    out = case.root / "notes.txt" / "r.zarr"
    return out, "notes.txt is a file, so nothing can be published under it"


OUTS: dict[str, Callable[[Case], tuple[Path, str]]] = {
    "the run's event store": _store,
    "the run's store, not generated yet": _store_to_be_generated,
    "another event store": _another_store,
    "a file": _file,
    "a foreign folder": _folder,
    "an empty folder": _empty_folder,
    "a link elsewhere": _link_elsewhere,
    "a published version": _a_version,
    "a versions folder": _versions_folder,
    "a checkpoint folder": _checkpoints_folder,
    "inside an event store": _inside_a_store,
    "under a file": _under_a_file,
}


@pytest.mark.parametrize("command", ["run", "refresh"])
@pytest.mark.parametrize("what", list(OUTS))
def test_an_out_that_is_not_a_result_is_refused_and_left_as_it_is(
    case: Case, what: str, command: str
) -> None:
    out, pattern = OUTS[what](case)
    result = case.farm(
        command, case.config, "--out", out, "--cluster", "inprocess", "-u", UNIVERSES
    )
    assert_refused(case, result, 2, pattern)


# --- another analysis ---------------------------------------------------------------------------


def _other_sample(case: Case) -> Path:
    """A configuration of another sample (same physics, another [sample] name) and its store."""
    data = _config_data(case.root / "other.zarr")
    data["sample"]["name"] = "sns-csi-2"
    config = case.root / "other.toml"
    config.write_text(toml_text(data))
    return config


def test_a_result_of_another_sample_needs_new_analysis(case: Case) -> None:
    config = _other_sample(case)
    result = case.farm("run", config, "--out", case.out, "--cluster", "inprocess", "-u", UNIVERSES)
    assert_refused(
        case, result, 2,
        r"r.zarr: holds the results of sample 'sns-csi' \(current version v0001.zarr, config "
        r"[0-9a-f]{12}\); this run is of sample 'sns-csi-2'",
        "Give it another --out, or pass --new-analysis to publish it as the next version",
        r"earlier versions are kept: `farm versions",
    )  # fmt: skip


def test_new_analysis_publishes_it_as_the_next_version_and_versions_tell_them_apart(
    case: Case,
) -> None:
    config = _other_sample(case)
    generated = case.farm("generate", config, "--out", case.root / "other.zarr")
    assert generated.exit_code == 0, generated.output
    args = ("--out", case.out, "--cluster", "inprocess", "-u", UNIVERSES, "--new-analysis")
    result = case.farm("run", config, *args)
    assert result.exit_code == 0, result.output
    assert [(v.number, v.current) for v in list_versions(case.out)] == [(1, False), (2, True)]
    listing = case.farm("versions", case.out)
    rows = [line for line in listing.output.splitlines() if re.match(r"^\W*v000\d", line)]
    assert len(rows) == 2, listing.output
    assert "sns-csi " in rows[0] and "sns-csi-2" in rows[1] and "*" in rows[1]
    for row in rows:
        assert "40,000" in row  # events
        assert re.search(r"\b[0-9a-f]{12}\b", row)  # the configuration's hash
    hashes = [re.search(r"\b([0-9a-f]{12})\b", row).group(1) for row in rows]  # type: ignore[union-attr]
    assert hashes[0] != hashes[1]


def test_a_changed_configuration_of_the_same_sample_is_the_next_version(case: Case) -> None:
    data = _config_data(case.store)
    data["data"]["seed"] = 99
    case.write_config(toml_text(data))
    result = case.run(command="refresh")
    assert result.exit_code == 0, result.output
    assert [v.number for v in list_versions(case.out)] == [1, 2]


# --- the lock file (CWE-59) ----------------------------------------------------------------------


def _symlink_to_a_victim(case: Case, lock: Path) -> str:
    os.symlink(case.root / "victim.txt", lock)
    return r"r.zarr.lock: the lock file of .*r.zarr is a symbolic link \(to .*victim.txt\); " \
        r"the farm never follows a link at its lock path.*CWE-59"  # fmt: skip


def _dangling_symlink(case: Case, lock: Path) -> str:
    os.symlink(case.root / "created-by-the-farm.txt", lock)
    return "is a symbolic link .*CWE-59"


def _hard_link(case: Case, lock: Path) -> str:
    os.link(case.root / "victim.txt", lock)
    return r"r.zarr.lock: the lock file of .*r.zarr has other hard links; .* Remove it"


def _fifo(case: Case, lock: Path) -> str:
    os.mkfifo(lock)
    return r"r.zarr.lock: the lock file of .*r.zarr is not a plain file"


def _folder_lock(case: Case, lock: Path) -> str:
    lock.mkdir()
    return r"r.zarr.lock: the lock file of .*r.zarr is not a plain file"


LOCKS = {
    "a symlink to another file": _symlink_to_a_victim,
    "a dangling symlink": _dangling_symlink,
    "a hard link": _hard_link,
    "a FIFO": _fifo,
    "a folder": _folder_lock,
}


@pytest.mark.parametrize("what", list(LOCKS))
def test_a_lock_path_that_is_not_a_plain_file_of_its_own_is_refused_never_followed(
    case: Case, what: str
) -> None:
    victim = case.root / "victim.txt"
    victim.write_text("precious\n")
    pattern = LOCKS[what](case, lock_path(case.out))
    result = case.run()
    assert_refused(case, result, 1, pattern)
    assert victim.read_text() == "precious\n"
    assert not (case.root / "created-by-the-farm.txt").exists()
