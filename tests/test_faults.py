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

LAYOUT = frozenset({"config", "config_hash"})
"""Attributes that record the work-item sizes, which the numbers do not depend on."""
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
    analysis = {"universes_per_task": 4, "blocks_per_task": 1}
    data = example(
        sample={"store": str(sample_store)}, generation={"events": EVENTS}, analysis=analysis
    )
    config = write_config(tmp_path / "sns-csi.toml", data)
    out = tmp_path / "result.zarr"
    args = ["run", str(config), "--cluster", "inprocess", "-u", str(UNIVERSES), "--out", str(out)]
    driver = subprocess.Popen(
        [sys.executable, "-c", "from farm.cli import main; main()", *args],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while _checkpoints(out) < 20:
            assert driver.poll() is None, "farm run ended before it could be killed"
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
