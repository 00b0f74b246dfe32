"""Issue 11, item 6: operating-system and network failures in words; file contents never echoed.

Before: ``[Errno 30] Read-only file system: 'r.zarr.lock'``, ``[Errno 28] No space left on
device`` without a path, "Connection reset by peer" for a ``tcp://`` client of a TLS scheduler, a
data file's text (a secret) quoted in the error, numpy's advice to set ``allow_pickle`` for a text
``covariance_file``. Each case runs the real command in the working directory of
tests/test_bad_input.py and asserts the exit status, that the path and the fix are named, and
that nothing was written; the secret cases assert that the secret is nowhere in the message.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import re
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_bad_input
import zarr.storage._local
from conftest import toml_text
from store_surgery import flip_byte
from test_bad_input import (
    UNIVERSES,
    Case,
    _config_data,
    assert_refused,
    copy_store,
    shard_file,
)

pytestmark = pytest.mark.faults

# the working directory of tests/test_bad_input.py (a published result, the store)
inputs = test_bad_input.inputs
case = test_bad_input.case

SECRET = "hunter2-s3cr3t-t0ken"


def one_line(result: Any) -> str:
    return " ".join(result.output.split())


# --- the file system ----------------------------------------------------------------------------


def test_a_read_only_file_system_at_the_lock_names_the_lock_and_the_fix(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".lock") and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    result = case.run()
    monkeypatch.undo()
    assert_refused(
        case, result, 1,
        r"results/r.zarr.lock: cannot create the lock file of .*results/r.zarr: the file system "
        r"is read-only \(errno EROFS\); write to a folder on a writable file system",
    )  # fmt: skip
    assert "[Errno" not in one_line(result)


def test_a_full_disk_without_a_path_while_generating_names_the_store(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    put, count = zarr.storage._local._put, {"n": 0}

    def full(path: Path, value: Any, exclusive: bool = False) -> int:
        count["n"] += 1
        if count["n"] > 30:
            raise OSError(errno.ENOSPC, "No space left on device")  # no file name, as a flush
        return put(path, value, exclusive=exclusive)

    monkeypatch.setattr(zarr.storage._local, "_put", full)
    out = case.root / "fresh.zarr"
    result = case.farm("generate", case.config, "--out", out, "--shard-size", 16_384)
    monkeypatch.undo()
    assert_refused(
        case, result, 1,
        r"fresh.zarr: cannot write shard \d of the event store: no space is left on its device "
        r"\(errno ENOSPC\); free space there \(`df -h` shows how much is left\), or write "
        r"elsewhere; nothing was published at .*fresh.zarr \(its temporary folder is removed\)",
    )  # fmt: skip


def test_a_bare_os_error_of_a_command_is_named_after_what_it_writes(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("farm.report.write_report", full)
    result = case.farm("report", case.out, "--out", case.root / "report")
    assert_refused(
        case, result, 1,
        r"report: cannot write: no space is left on its device \(errno ENOSPC\); free space",
    )  # fmt: skip


# --- the network: a scheduler reached the wrong way ---------------------------------------------


@pytest.fixture(scope="module")
def schedulers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A TLS scheduler and a plain TCP one (no workers: nothing gets that far), and certs."""
    from distributed import LocalCluster

    from farm.cluster.security import generate_certs, security_from_dir

    certs = generate_certs(tmp_path_factory.mktemp("tls") / "certs", hosts=("127.0.0.1",), days=1)
    common = {"n_workers": 0, "processes": False, "host": "127.0.0.1"}
    common |= {"dashboard_address": "127.0.0.1:0", "scheduler_kwargs": {"dashboard": False}}
    sec = security_from_dir(certs.cert.parent)
    with (
        LocalCluster(protocol="tls://", security=sec, **common) as tls,
        LocalCluster(protocol="tcp://", **common) as tcp,
    ):
        yield {"tls": tls.scheduler_address, "tcp": tcp.scheduler_address, "dir": certs.cert.parent}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NETWORK: dict[str, tuple[Callable[[dict[str, Any], Path], list[str]], str]] = {
    "tcp:// to a TLS scheduler": (
        lambda s, _: ["--scheduler", s["tls"].replace("tls://", "tcp://")],
        r"--scheduler tcp://127.0.0.1:(\d+): the scheduler at 127.0.0.1:\1 speaks TLS, but tcp:// "
        r"asks for plain TCP, so it closed the connection; connect with --scheduler "
        r"tls://127.0.0.1:\1 --tls-dir DIR",
    ),
    "tls:// without --tls-dir": (
        lambda s, _: ["--scheduler", s["tls"]],
        r"--scheduler tls://.*: a tls:// scheduler needs the cluster's certificates; add "
        r"--tls-dir DIR",
    ),
    "tcp:// with --tls-dir": (
        lambda s, _: ["--scheduler", s["tls"].replace("tls://", "tcp://"), "--tls-dir", s["dir"]],
        r"with --tls-dir every connection is encrypted, so the address must be tls://127.0.0.1:",
    ),
    "tls:// to a plain scheduler": (
        lambda s, _: ["--scheduler", s["tcp"].replace("tcp://", "tls://"), "--tls-dir", s["dir"]],
        r"the scheduler at 127.0.0.1:(\d+) does not speak TLS; connect with tcp://127.0.0.1:\1 "
        r"and without --tls-dir",
    ),
    "a scheduler file of a TLS scheduler": (
        lambda s, root: ["--scheduler-file", _scheduler_file(root, s["tls"])],
        r"the address in --scheduler-file .*-scheduler.json: tcp://127.0.0.1:\d+: the scheduler "
        r"at .* speaks TLS",
    ),
    "nothing listening": (
        lambda s, _: ["--scheduler", f"tcp://127.0.0.1:{_closed_port()}"],
        r"nothing accepts connections at 127.0.0.1:\d+ \(is the scheduler running\?",
    ),
}


def _scheduler_file(root: Path, tls_address: str) -> str:
    path = root.parent / f"{root.name}-scheduler.json"  # outside the compared tree
    path.write_text(json.dumps({"address": tls_address.replace("tls://", "tcp://")}))
    return str(path)


@pytest.mark.parametrize("what", list(NETWORK))
def test_a_scheduler_reached_the_wrong_way_is_explained(
    case: Case, schedulers: dict[str, Any], what: str
) -> None:
    import dask

    flags, pattern = NETWORK[what]
    args = [str(a) for a in flags(schedulers, case.root)]
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        result = case.farm("run", case.config, "--out", case.out, "-u", UNIVERSES, *args)
    with warnings.catch_warnings():
        # dask's client leaves the socket of a TLS handshake that timed out (against a plain
        # scheduler) to the garbage collector: collected here, not in a later test
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    message = assert_refused(case, result, 2, pattern)
    assert "Connection reset by peer" not in message and "ssl_context" not in message


def test_the_probe_tells_tls_from_plain_tcp_and_from_nothing(schedulers: dict[str, Any]) -> None:
    from farm.cluster.probe import speaks_tls, split_address

    def probe(address: str) -> bool | None:
        _, host, port = split_address(address)  # type: ignore[misc]
        return speaks_tls(host, port)

    assert probe(schedulers["tls"]) is True
    assert probe(schedulers["tcp"]) is False
    assert probe(f"tcp://127.0.0.1:{_closed_port()}") is None


# --- file contents are never echoed ------------------------------------------------------------


def _counts_text(case: Case) -> tuple[list[str], str]:
    path = case.root / "counts.txt"
    path.write_text(f"12\n{SECRET}\n")
    case.write_config(data={"kind": "file", "file": str(path)})
    return [], r"\[data.file\] .*counts.txt: cannot read counts: line 2, entry 1 is not a number"


def _counts_npy_of_text(case: Case) -> tuple[list[str], str]:
    path = case.root / "counts.npy"
    path.write_text(f"{SECRET}\n")
    case.write_config(data={"kind": "file", "file": str(path)})
    return [], r"counts.npy: cannot read counts: it is not a .npy file \(it does not start with"


def _covariance_text(case: Case) -> tuple[list[str], str]:
    path = case.root / "flux_cov.npy"
    path.write_text(f"0.01 0 {SECRET}\n")
    data = _config_data(case.store)
    data["systematics"][0]["covariance_file"] = str(path)
    case.write_config(toml_text(data))
    return [], (
        r"covariance_file .*flux_cov.npy: cannot read it as a .npy array: it is not a .npy file "
        r"\(it does not start with NumPy's \\x93NUMPY header: a text file, or another format\); "
        r"write the array with numpy.save"
    )


def _model_table(case: Case) -> tuple[list[str], str]:
    path = case.root / "table.csv"
    path.write_text(f"enu_mev,xsec_cm2\n10,1e-40\n20,{SECRET}\n")
    return ["compare", case.out, "--model-table", path], (
        r"model table .*table.csv: data row 2: enu_mev and xsec_cm2 must be numbers"
    )


SECRETS = {
    "a text data file": _counts_text,
    "a .npy data file that is text": _counts_npy_of_text,
    "a text covariance_file": _covariance_text,
    "a model table": _model_table,
}


@pytest.mark.parametrize("what", list(SECRETS))
def test_a_bad_input_file_is_refused_without_quoting_it(case: Case, what: str) -> None:
    command, pattern = SECRETS[what](case)
    result = case.farm(*command) if command else case.run()
    message = assert_refused(case, result, 2, pattern)
    assert SECRET not in message and "allow_pickle" not in message


@pytest.mark.parametrize("kind", ["slurm", "kubernetes"])
def test_a_broken_settings_yaml_is_refused_without_quoting_it(tmp_path: Path, kind: str) -> None:
    if kind == "slurm":
        from farm.cluster.slurm import read_settings
    else:
        from farm.cluster.k8s_spec import read_settings
    path = tmp_path / "settings.yaml"
    path.write_text(f"jobqueue:\n  password: {SECRET}: x\n")
    with pytest.raises(ValueError, match="is not valid YAML") as refused:
        read_settings(path)
    message = str(refused.value)
    assert SECRET not in message
    assert re.search(r"mapping values are not allowed here at line 2, column \d+", message)


def test_a_gst_file_that_is_not_root_is_refused_without_quoting_it(tmp_path: Path) -> None:
    pytest.importorskip("uproot")
    from farm.ingest.gst import GstFile
    from farm.ingest.source import IngestError

    path = tmp_path / "events.gst.root"
    path.write_text(SECRET * 40)
    with pytest.raises(IngestError, match="cannot be read as a ROOT file") as refused:
        GstFile.open(path)
    assert SECRET[:4] not in str(refused.value)


def test_no_module_reads_text_with_numpy_whose_errors_quote_it() -> None:
    root = Path(__file__).resolve().parents[1]
    found = [
        str(path.relative_to(root))
        for folder in ("farm", "workers")
        for path in sorted((root / folder).rglob("*.py"))
        if re.search(r"\b(loadtxt|genfromtxt|fromstring)\(", path.read_text())
    ]
    assert found == []


# --- a store where a result belongs -------------------------------------------------------------


@pytest.mark.parametrize("given", ["an event store", "a file"])
@pytest.mark.parametrize("command", ["report", "compare", "export"])
def test_a_command_that_reads_a_result_says_what_it_was_given(
    case: Case, command: str, given: str
) -> None:
    if given == "a file":
        target = case.root / "notes.txt"
        target.write_text(SECRET)
        pattern = (
            r"notes.txt: is a file, not a result; give the --out of `farm run`|"
            r"notes.txt is neither a farm result \(no zarr.json"  # farm compare also reads HEPData
        )
    else:
        target = copy_store(case)
        pattern = (
            r"store.zarr: is an event store, not a result: it holds events, and this command "
            r"reads what `farm run` published. Give the --out of `farm run CONFIG --out RESULT`"
        )
    args = {
        "report": ["report", target, "--out", case.root / "report"],
        "compare": ["compare", target, "--model", "farm.models:cevns_csi_tree_helm"],
        "export": ["export", "hepdata", target, "--out", case.root / "hepdata"],
    }[command]
    result = case.farm(*args)
    message = assert_refused(case, result, 2, pattern)
    assert SECRET not in message


# --- farm inspect --verify ----------------------------------------------------------------------


def test_inspect_verify_lists_every_damaged_shard_and_does_not_send_you_to_itself(
    case: Case,
) -> None:
    store = copy_store(case)
    flip_byte(shard_file(store, "w_nominal", 0), 8 * 10)
    (shard_file(store, "flavor", 2)).unlink()
    result = case.farm("inspect", store, "--verify")
    message = assert_refused(
        case, result, 1, r"shard 0: FAILED .*checksum", r"shard 2: FAILED .*the shard file is missing",
        r"2 of 3 shard\(s\) failed verification \(shard\(s\) 0, 2\)",
    )  # fmt: skip
    assert "run `farm inspect --verify" not in message
    assert "shard 1: FAILED" not in message
