"""SLURM through dask-jobqueue: settings, a real single-node SLURM, and bit-identical farm runs.

The tests marked ``slurm`` need a running SLURM whose partition ``debug`` has an idle node
(``sudo deploy/slurm/local-slurm.sh start``). Without one they are skipped, unless
``FARM_REQUIRE_SLURM=1`` (CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import xarray as xr
import yaml
from conftest import PROVENANCE_ATTRS, assert_bit_identical

from farm.cluster import ClusterOptions, connect
from farm.cluster.slurm import (
    DEFAULTS,
    DEPLOY_SETTINGS,
    check_scheduler_reachable,
    cluster_kwargs,
    merge_settings,
    read_settings,
    scheduler_on_loopback,
    slurm_cluster,
)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "slurm"
LOCAL_SLURM = DEPLOY / "local-slurm.sh"
ALLOCATION = DEPLOY / "farm-allocation.sbatch"
CONFIG = ROOT / "examples" / "sns-csi.toml"
RUN_ARGS = ("--events", "60000", "--universes", "10")
PARTITION = DEFAULTS["queue"]
USABLE_STATES = frozenset({"idle", "mix"})


# ---- settings: no SLURM needed ----------------------------------------------------------------


def test_deploy_jobqueue_yaml_holds_the_packaged_defaults() -> None:
    # a user copies deploy/slurm/jobqueue.yaml as a template: it must say what farm does without it
    assert read_settings(DEPLOY_SETTINGS) == DEFAULTS


def test_later_settings_win_and_scheduler_options_merge_key_by_key() -> None:
    merged = merge_settings(
        DEFAULTS,
        {"memory": "4GiB", "job_extra_directives": ["--qos=short"]},
        {"scheduler_options": {"dashboard_address": ":8787"}},
    )
    assert merged["memory"] == "4GiB"
    assert merged["job-extra-directives"] == ["--qos=short"]
    assert merged["scheduler-options"] == {"host": "127.0.0.1", "dashboard_address": ":8787"}
    assert merged["cores"] == 1


def test_an_unknown_setting_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown SLURM setting 'walltme'; allowed: .*walltime"):
        merge_settings({"walltme": "01:00:00"})


def test_a_deprecated_jobqueue_setting_names_its_replacement() -> None:
    with pytest.raises(ValueError, match=r"'env-extra' is deprecated.*'job-script-prologue'"):
        merge_settings({"env-extra": ["module load python"]})


def test_a_settings_file_without_jobqueue_slurm_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"slurm": {"cores": 2}}))
    with pytest.raises(ValueError, match="jobqueue: slurm:"):
        read_settings(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_settings(tmp_path / "missing.yaml")


def test_an_interface_given_alone_moves_the_scheduler_off_loopback() -> None:
    # dask-jobqueue puts the scheduler on the workers' interface when it has no host of its own
    merged = merge_settings(DEFAULTS, {"interface": "ib0"})
    assert "host" not in merged["scheduler-options"]
    assert scheduler_on_loopback(DEFAULTS)
    assert not scheduler_on_loopback(merged)


def test_a_loopback_scheduler_is_refused_when_jobs_may_start_on_other_nodes() -> None:
    with pytest.raises(ValueError, match=r"loopback only.*node02.*interface: ib0"):
        check_scheduler_reachable(DEFAULTS, ["node01", "node02"], "node01.cluster")
    check_scheduler_reachable(DEFAULTS, ["node01"], "node01.cluster")  # one node: this one
    check_scheduler_reachable({"scheduler-options": {"interface": "ib0"}}, ["node02"], "login1")


def test_the_worker_job_asks_for_one_cpu_2gib_an_hour_in_debug_for_this_python(
    tmp_path: Path,
) -> None:
    pytest.importorskip("dask_jobqueue")
    from dask_jobqueue import SLURMCluster

    kwargs = cluster_kwargs(merge_settings(DEFAULTS, {"log-directory": str(tmp_path)}))
    with SLURMCluster(**kwargs) as cluster:
        script = cluster.job_script()
        address = cluster.scheduler_address
    for line in (
        "#SBATCH -J farm-worker",
        "#SBATCH -p debug",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=2G",
        "#SBATCH -t 01:00:00",
        f"#SBATCH -o {tmp_path}/farm-worker-%J.out",
    ):
        assert line in script.splitlines()
    assert f"{sys.executable} -m distributed.cli.dask_worker" in script
    assert "--nthreads 1 --memory-limit 2.00GiB" in script
    # a loopback scheduler keeps its workers on loopback too (dask's default is every interface)
    assert "--host 127.0.0.1 --dashboard-address 127.0.0.1:0" in script
    assert address.startswith("tcp://127.0.0.1:")


def test_dashboard_off_turns_the_scheduler_dashboard_off() -> None:
    kwargs = cluster_kwargs(DEFAULTS, dashboard=False)
    assert kwargs["scheduler_options"] == {"host": "127.0.0.1", "dashboard": False}


def test_without_sbatch_the_error_says_how_to_get_a_slurm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("dask_jobqueue")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"local-slurm\.sh start"):
        slurm_cluster(ClusterOptions(kind="slurm", workers=1))


def test_without_dask_jobqueue_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(ImportError, match=r"pip install 'farm\[slurm\]'"):
        slurm_cluster(ClusterOptions(kind="slurm", workers=1))


# ---- a real SLURM -------------------------------------------------------------------------------


def _slurm_unavailable() -> str | None:
    """Why the SLURM tests cannot run here, or None when they can."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM is not installed (start one: sudo deploy/slurm/local-slurm.sh start)"
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        return "dask-jobqueue is not installed (pip install 'farm[slurm]')"
    done = subprocess.run(
        ["sinfo", "--noheader", f"--partition={PARTITION}", "--format=%t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        return (
            f"SLURM is not running: {done.stderr.strip()} (sudo deploy/slurm/local-slurm.sh start)"
        )
    states = set(done.stdout.split())
    if not states & USABLE_STATES:
        return f"partition {PARTITION!r} has no idle node (states: {sorted(states) or 'none'})"
    return None


@pytest.fixture(scope="session")
def slurm() -> None:
    reason = _slurm_unavailable()
    if reason is None:
        return
    if os.environ.get("FARM_REQUIRE_SLURM") == "1":
        pytest.fail(f"FARM_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def squeue_ids(*, name: str | None = None) -> set[str]:
    command = ["squeue", "--noheader", "--format=%i"]
    if name is not None:
        command.append(f"--name={name}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    return set(done.stdout.split())


def wait_until_gone(job_ids: set[str], timeout_s: float = 30.0) -> set[str]:
    """Poll squeue until none of the jobs is listed; return those still listed at the timeout."""
    deadline = time.monotonic() + timeout_s
    while (left := job_ids & squeue_ids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def settings_file(directory: Path) -> Path:
    """A --cluster-settings file that sends the workers' logs into the test's directory."""
    path = directory / "jobqueue.yaml"
    logs = directory / "slurm-logs"
    path.write_text(yaml.safe_dump({"jobqueue": {"slurm": {"log-directory": str(logs)}}}))
    return path


def farm_run(cwd: Path, out: Path, *args: str) -> None:
    """``farm run`` in its own directory (each run generates its own sample store there)."""
    from typer.testing import CliRunner

    from farm.cli import app

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        result = CliRunner(env={"COLUMNS": "200"}).invoke(
            app, ["run", str(CONFIG), "--out", str(out), *RUN_ARGS, *args]
        )
    assert result.exit_code == 0, result.output + repr(result.exception)


@pytest.fixture(scope="module")
def inprocess_result(slurm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[xr.Dataset]:
    """The same measurement run in-process, without dask."""
    cwd = tmp_path_factory.mktemp("inprocess")
    farm_run(cwd, cwd / "result.zarr", "--cluster", "inprocess")
    with xr.open_zarr(cwd / "result.zarr") as ds:
        yield ds.load()


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_slurm_cluster_runs_each_worker_as_a_batch_job_and_cancels_them_on_close(
    slurm: None, tmp_path: Path
) -> None:
    import dask.array as da

    def listening_ips() -> list[str]:
        # runs on a worker (defined here so that it travels by value): the addresses the worker
        # and its nanny listen on
        import psutil

        me = psutil.Process()
        return sorted(
            {
                c.laddr.ip
                for process in (me, me.parent())
                for c in process.net_connections("tcp")
                if c.status == psutil.CONN_LISTEN
            }
        )

    options = ClusterOptions(
        kind="slurm", workers=2, overrides={"log-directory": str(tmp_path / "logs")}
    )
    t0 = time.perf_counter()
    with connect(options) as client:
        started_s = time.perf_counter() - t0
        info = client.scheduler_info()
        job_ids = set(client.run(lambda: os.environ["SLURM_JOB_ID"]).values())
        running = squeue_ids(name="farm-worker")
        listening = client.run(listening_ips)
        # n(n-1)/2 in int64: exact
        total = client.compute(da.arange(1_000_000, chunks=100_000).sum()).result()
    print(f"2 SLURM workers joined in {started_s:.1f} s")
    assert info["address"].startswith("tcp://127.0.0.1:")  # docs/guide-operators.md: loopback
    assert all(w.startswith("tcp://127.0.0.1:") for w in info["workers"])
    assert all(ips == ["127.0.0.1"] for ips in listening.values()), listening
    assert len(job_ids) == 2  # two workers, two different batch jobs
    assert job_ids <= running
    assert total == 999_999 * 1_000_000 // 2
    assert {p.name for p in (tmp_path / "logs").iterdir()} >= {
        f"farm-worker-{j}.out" for j in job_ids
    }
    assert not wait_until_gone(job_ids), "jobs still queued after the cluster closed"


@pytest.mark.slurm
@pytest.mark.timeout(90)
def test_with_a_tls_directory_scheduler_and_slurm_workers_speak_tls_only(
    slurm: None, tmp_path: Path
) -> None:
    from farm.cluster.security import generate_certs

    generate_certs(tmp_path / "tls")
    options = ClusterOptions(
        kind="slurm",
        workers=1,
        tls_dir=tmp_path / "tls",
        overrides={"log-directory": str(tmp_path / "logs")},
    )
    with connect(options) as client:
        info = client.scheduler_info()
        assert client.submit(sum, [40, 2]).result() == 42
    assert info["address"].startswith("tls://127.0.0.1:")
    assert [w.split(":")[0] for w in info["workers"]] == ["tls"]


@pytest.mark.slurm
@pytest.mark.timeout(60)
def test_a_job_slurm_would_refuse_fails_before_anything_is_submitted(slurm: None) -> None:
    before = squeue_ids()
    options = ClusterOptions(kind="slurm", workers=1, overrides={"queue": "no-such-partition"})
    with pytest.raises(ValueError, match=r"SLURM refuses the worker job: .*invalid partition"):
        slurm_cluster(options)
    assert squeue_ids() - before == set()


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_farm_run_on_slurm_workers_equals_the_inprocess_run_bit_for_bit(
    slurm: None, inprocess_result: xr.Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "slurm.zarr"
    farm_run(
        tmp_path,
        out,
        "--cluster",
        "slurm",
        "--workers",
        "2",
        "--cluster-settings",
        str(settings_file(tmp_path)),
    )
    logs = list((tmp_path / "slurm-logs").glob("farm-worker-*.out"))
    assert len(logs) == 2, "expected the output files of two sbatch worker jobs"
    with xr.open_zarr(out) as ds:
        assert_bit_identical(inprocess_result, ds.load(), provenance=PROVENANCE_ATTRS)


@pytest.mark.slurm
@pytest.mark.timeout(150)
def test_the_one_allocation_sbatch_script_runs_the_farm_and_equals_the_inprocess_run(
    slurm: None, inprocess_result: xr.Dataset, tmp_path: Path
) -> None:
    out = tmp_path / "allocation.zarr"
    env = {
        **os.environ,
        "FARM_INTERFACE": "lo",  # everything on this host: bind to loopback (docs/guide-operators.md)
        "FARM_DASHBOARD": "127.0.0.1:0",
        "FARM_WORKER_TIMEOUT": "60",
    }
    submitted = subprocess.run(
        [
            "sbatch",
            "--parsable",
            f"--chdir={tmp_path}",
            f"--output={tmp_path}/farm-%j.out",
            "--ntasks=2",
            str(ALLOCATION),
            str(CONFIG),
            str(out),
            *RUN_ARGS,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    )
    job_id = submitted.stdout.strip().split(";")[0]
    left = wait_until_gone({job_id}, timeout_s=120)
    log = (tmp_path / f"farm-{job_id}.out").read_text()
    assert not left, f"job {job_id} still running after 120 s:\n{log[-3000:]}"
    state = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, check=False
    ).stdout
    assert "JobState=COMPLETED" in state and "ExitCode=0:0" in state, log[-3000:]
    assert "farm-allocation: 2 worker(s) joined" in log
    assert not list(tmp_path.glob(".farm-allocation-*")), "scheduler file left behind"
    with xr.open_zarr(out) as ds:
        assert_bit_identical(inprocess_result, ds.load(), provenance=PROVENANCE_ATTRS)


def _daemon_pids() -> dict[str, str]:
    files = {
        "munged": Path("/run/munge/munged.pid"),
        "slurmctld": Path("/run/slurm/slurmctld.pid"),
        "slurmd": Path("/run/slurm/slurmd.pid"),
    }
    return {name: f.read_text().strip() for name, f in files.items() if f.is_file()}


@pytest.mark.slurm
@pytest.mark.timeout(60)
def test_local_slurm_start_on_a_running_cluster_changes_nothing(slurm: None) -> None:
    conf = Path("/etc/slurm/slurm.conf")
    if os.geteuid() != 0 or not conf.is_file() or "local-slurm.sh" not in conf.read_text():
        pytest.skip("needs root and the SLURM that deploy/slurm/local-slurm.sh started")
    before = _daemon_pids()
    done = subprocess.run(
        ["bash", str(LOCAL_SLURM), "start"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already running" in done.stdout
    assert _daemon_pids() == before
    status = subprocess.run(
        ["bash", str(LOCAL_SLURM), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
