"""Issue 4, item 5: a lost worker or a killed ``farm run`` changes no bit of the result.

A worker process of a real LocalCluster is killed with SIGKILL while it computes a work item;
the driving ``farm run`` process is killed with SIGKILL (its whole process group) while it
writes checkpoints, and a second ``farm run`` recomputes exactly the items that have none.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import xarray as xr
from conftest import (
    EVENTS,
    N_BLOCKS,
    N_CHUNKS,
    UNIVERSES,
    assert_bit_identical,
    dist_config,
    example,
    farm_cli,
    run_quietly,
    write_config,
)

from farm.checkpoint import CheckpointStore
from farm.cluster import ClusterOptions
from farm.publish import open_published, publish_dataset
from farm.runner import checkpoint_dir_for, plan_for
from farm.store.reader import EventStore
from workers.tasks import compute_item

LAYOUT = frozenset({"config", "config_hash", "run_overrides"})
"""Attributes that record the work-item sizes (and the command line's --universes, which the
CLI records for `farm refresh`), which the numbers do not depend on."""
ONE_BLOCK_ITEMS = N_CHUNKS * N_BLOCKS  # 90 items of ≈ 30 ms with blocks_per_task = 1


class _KillOneWorker:
    """A progress callback that SIGKILLs a worker busy with a work item once ``after`` are done."""

    def __init__(self, client: Any, after: int) -> None:
        self.client = client
        self.after = after
        self.pids: dict[str, int] = client.run(os.getpid)
        self.killed: dict[str, Any] = {}

    def __call__(self, done: int, total: int) -> None:
        if self.killed or done < self.after:
            return
        busy = [
            worker
            for worker, keys in self.client.processing().items()
            if any(str(k).startswith("farm-item-") for k in keys)
        ]
        pid = self.pids[busy[0]]
        os.kill(pid, signal.SIGKILL)
        self.killed = {"pid": pid, "done": done, "total": total}


def test_a_worker_killed_while_computing_changes_no_bit_of_the_result(
    sample_store: Path, reference: xr.Dataset, client: Any, on_cluster: ClusterOptions
) -> None:
    kill = _KillOneWorker(client, after=1)
    ds, stats = run_quietly(dist_config(sample_store, blocks_per_task=1), on_cluster, progress=kill)
    assert kill.killed["done"] < kill.killed["total"] == ONE_BLOCK_ITEMS  # killed mid-run
    assert stats.computed == ONE_BLOCK_ITEMS
    assert_bit_identical(ds, reference, provenance=LAYOUT)
    client.wait_for_workers(2, timeout=60)  # the nanny has started a new worker process
    assert kill.killed["pid"] not in client.run(os.getpid).values()


def test_a_worker_killed_during_a_resumed_run_reloads_its_checkpoints(
    tmp_path: Path,
    sample_store: Path,
    reference: xr.Dataset,
    client: Any,
    on_cluster: ClusterOptions,
) -> None:
    # checkpoints of every other item: half of the run is loaded, half computed
    cfg = dist_config(sample_store, blocks_per_task=1)
    prep, plan = plan_for(cfg, EventStore.open(sample_store), universes=UNIVERSES)
    for item in plan.items[::2]:
        compute_item(str(sample_store), prep.spec, item, prep.block_rows, str(tmp_path))
    loaded = len(plan.items[::2])
    # killed after one computed item, when the loaded results are spread over both workers
    kill = _KillOneWorker(client, after=loaded + 1)
    ds, stats = run_quietly(cfg, on_cluster, progress=kill, checkpoint_dir=tmp_path)
    assert kill.killed["done"] < ONE_BLOCK_ITEMS
    assert (stats.computed, stats.from_checkpoint) == (ONE_BLOCK_ITEMS - loaded, loaded)
    assert_bit_identical(ds, reference, provenance=LAYOUT)


def _checkpoints(out: Path) -> int:
    return len(CheckpointStore(checkpoint_dir_for(out)).keys())


def test_farm_run_killed_mid_run_resumes_and_recomputes_only_the_missing_items(
    tmp_path: Path, sample_store: Path, reference: xr.Dataset
) -> None:
    # 22 chunks of at most 4 universes (flux; 5 knobs × 3; 3 unisims; bootstrap × 3) × 9 blocks
    total = 22 * N_BLOCKS
    analysis = {"universes_per_task": 4, "knob_universes_per_task": 4, "blocks_per_task": 1}
    data = example(
        sample={"store": str(sample_store)}, generation={"events": EVENTS}, analysis=analysis
    )
    config = write_config(tmp_path / "sns-csi.toml", data)
    out = tmp_path / "result.zarr"
    args = ["run", str(config), "--cluster", "inprocess", "-u", str(UNIVERSES), "--out", str(out)]
    with (tmp_path / "driver.err").open("wb") as stderr:  # the child keeps its own copy
        driver = subprocess.Popen(
            [sys.executable, "-c", "from farm.cli import main; main()", *args],
            cwd=tmp_path,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 120
        while _checkpoints(out) < 20:
            if driver.poll() is not None:
                err = (tmp_path / "driver.err").read_text()
                pytest.fail(f"farm run ended before it could be killed: {err}")
            assert time.monotonic() < deadline, "farm run wrote no checkpoints in 120 s"
            time.sleep(0.005)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    saved = _checkpoints(out)
    assert 20 <= saved < total
    assert not out.exists()  # killed before publishing

    result = farm_cli(*args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"computed {total - saved} of {total} work items ({saved} from checkpoints)" in text
    expected = tmp_path / "uninterrupted.zarr"
    publish_dataset(reference, expected)
    with open_published(out) as resumed, open_published(expected) as uninterrupted:
        assert_bit_identical(resumed.load(), uninterrupted.load(), provenance=LAYOUT)


def _kill(client: Any, name: str) -> str:
    """SIGKILL the worker process called ``name`` (once it is registered); return its address."""
    deadline = time.monotonic() + 60
    while not (victims := [a for a, n in _names(client).items() if n == name]):
        assert time.monotonic() < deadline, f"no worker {name} registered in 60 s"
        time.sleep(0.05)
    (victim,) = victims
    os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
    return victim


def _names(client: Any) -> dict[str, str]:
    return {a: str(w["name"]) for a, w in client.scheduler_info()["workers"].items()}


def test_the_embedded_cluster_restarts_a_worker_killed_again_and_again() -> None:
    """A SpecCluster closes a nanny whose worker name is not back ``lost-worker-timeout`` after
    the worker left (judged by the name alone, so a worker killed again as the timer fires loses
    its nanny for good). The timeout is cut to 50 ms here so that every kill hits that window:
    the stock LocalCluster is left one worker short, the farm's restarts the worker each time."""
    import dask
    from distributed import Client, LocalCluster

    from farm.cluster.local import local_cluster

    options = ClusterOptions(kind="local", workers=2, dashboard=False)
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "50ms"}):
        with local_cluster(options) as cluster, Client(cluster) as client:
            assert type(cluster) is not LocalCluster
            client.wait_for_workers(2, timeout=60)
            for _ in range(3):
                killed = _kill(client, "1")
                deadline = time.monotonic() + 60
                while sorted(_names(client).values()) != ["0", "1"] or killed in _names(client):
                    assert time.monotonic() < deadline, "the killed worker never came back"
                    time.sleep(0.05)
                time.sleep(0.2)  # well past the 50 ms timer
            assert sorted(cluster.workers) == [0, 1]  # no nanny was closed
            # and worker 1 is there, or comes back: on a loaded machine it was seen gone again
            # 0.2 s after its restart (3 runs in 10 with two busy processes beside the test) and
            # back a moment later, its nanny still there; that it comes back is what counts
            deadline = time.monotonic() + 60
            while sorted(_names(client).values()) != ["0", "1"]:
                assert time.monotonic() < deadline, "worker 1 never came back"
                time.sleep(0.05)
            assert sorted(cluster.workers) == [0, 1]

        # the control: the same kill on dask's own LocalCluster closes the nanny of worker 1
        stock = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
            silence_logs=40,
        )  # fmt: skip
        with stock, Client(stock) as client:
            client.wait_for_workers(2, timeout=60)
            _kill(client, "1")
            deadline = time.monotonic() + 30
            while 1 in stock.workers:
                assert time.monotonic() < deadline, "dask's LocalCluster kept the nanny this time"
                time.sleep(0.05)
            time.sleep(1.0)
            assert sorted(_names(client).values()) == ["0"]
