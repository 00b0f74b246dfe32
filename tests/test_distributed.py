"""Issue 4, items 1 and 4: the plan, and bit-identical results however the farm runs.

Every run here reduces the same 540 000 SNS CsI events over 77 universes (``--universes 10``)
and must give the in-process result of the default plan bit for bit: on one or two worker
processes, on two worker threads, from stores sharded differently, and with work items of other
sizes. Only the provenance attributes (the configuration and the store's identity) may differ.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import xarray as xr
from conftest import (
    EVENTS,
    N_BLOCKS,
    N_CHUNKS,
    PROVENANCE_ATTRS,
    SAMPLE,
    assert_bit_identical,
    dist_config,
    example,
    farm_cli,
    run_quietly,
    write_config,
)

from farm.accumulate import columns_needed
from farm.cluster import ClusterOptions
from farm.config import load_config
from farm.runner import ensure_store, plan_for
from farm.store.reader import EventStore
from farm.store.schema import COLUMNS

# --- 1. planning -------------------------------------------------------------------------------


def test_farm_plan_prints_the_items_their_cost_and_the_memory_per_task(
    tmp_path: Path, sample_store: Path
) -> None:
    data = example(sample={"store": str(sample_store)}, generation={"events": EVENTS})
    result = farm_cli("plan", write_config(tmp_path / "c.toml", data), "-u", "10", "--items")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "540,000 events in 1 shard(s), 9 blocks of 65,536; 77 universes" in text
    # 10 chunks (flux + 9 per-event) × 2 items (blocks 0–7, then the partial block 8)
    assert "20 work items of up to 8 blocks (524,288 events)" in text
    # cost = Σ rows × universes = 540 000 × (1 flux + 66 per-event universes) = 0.03618 G
    assert "estimated cost 0.0362 G event-universes" in text
    # memory = rows × bytes per event + 4 weight matrices of 64 universes × 65 536 rows × 8 B
    cfg = load_config(SAMPLE, **{"generation.events": EVENTS, "sample.store": str(sample_store)})
    prep, _ = plan_for(cfg, EventStore.open(sample_store), universes=10)
    per_event = sum(COLUMNS[n].dtype.itemsize for n in columns_needed(prep.spec))
    mib = (8 * 65_536 * per_event + 4 * 64 * 65_536 * 8) / 2**20
    assert f"memory per task ≈ {mib:.0f} MiB" in text
    rows = re.findall(r"│ (\d+)\s+│ (\d+)\s+│ ([\d,]+)–([\d,]+)", result.output)
    assert [int(r[0]) for r in rows] == list(range(20))
    assert {(r[2], r[3]) for r in rows} == {("0", "524,288"), ("524,288", "540,000")}


# --- 4. determinism ----------------------------------------------------------------------------


def test_one_worker_process_gives_the_in_process_result_bit_for_bit(
    sample_store: Path, reference: xr.Dataset
) -> None:
    options = ClusterOptions(kind="local", workers=1, dashboard=False)
    ds, stats = run_quietly(dist_config(sample_store), options)
    assert (stats.items, stats.computed) == (N_CHUNKS * 2, N_CHUNKS * 2)
    assert_bit_identical(ds, reference)


def test_two_worker_processes_give_the_in_process_result_bit_for_bit(
    sample_store: Path, reference: xr.Dataset, on_cluster: ClusterOptions
) -> None:
    ds, stats = run_quietly(dist_config(sample_store), on_cluster)
    assert stats.computed == N_CHUNKS * 2
    assert_bit_identical(ds, reference)


def test_two_worker_threads_give_the_in_process_result_bit_for_bit(
    sample_store: Path, reference: xr.Dataset
) -> None:
    options = ClusterOptions(kind="local", workers=2, processes=False, dashboard=False)
    ds, _ = run_quietly(dist_config(sample_store), options)
    assert_bit_identical(ds, reference)


@pytest.mark.parametrize(("shard_size", "n_shards"), [(65_536, 9), (100_000, 6)])
def test_the_same_events_sharded_otherwise_give_the_same_result_bit_for_bit(
    tmp_path: Path,
    reference: xr.Dataset,
    on_cluster: ClusterOptions,
    shard_size: int,
    n_shards: int,
) -> None:
    path = tmp_path / f"sns-csi-{shard_size}.zarr"
    cfg = load_config(
        SAMPLE,
        **{
            "generation.events": EVENTS,
            "generation.shard_size": shard_size,
            "sample.store": str(path),
        },
    )
    assert ensure_store(cfg, log=lambda _: None).n_shards == n_shards
    ds, _ = run_quietly(cfg, on_cluster)
    assert ds.attrs["input_checksums"] != reference.attrs["input_checksums"]
    assert_bit_identical(ds, reference, provenance=PROVENANCE_ATTRS)


@pytest.mark.parametrize(
    ("analysis", "n_items"),
    [
        ({"blocks_per_task": 1}, N_CHUNKS * N_BLOCKS),  # 9 one-block items per chunk
        ({"blocks_per_task": 64}, N_CHUNKS),  # one partial item (9 of 64 blocks) per chunk
        # 5 knobs of 10 throws in chunks of 3 (4 chunks each), 3 unisims, the bootstrap (4)
        ({"universes_per_task": 3, "knob_universes_per_task": 3}, (1 + 5 * 4 + 3 + 4) * 2),
        # the knobs whole (their fast paths cost the same per event for any number of universes)
        ({"universes_per_task": 3}, (1 + 5 + 3 + 4) * 2),
        ({"universes_per_block": 4}, N_CHUNKS * 2),
    ],
    ids=[
        "1-block-items",
        "64-block-items",
        "3-universe-chunks",
        "3-universe-chunks-whole-knobs",
        "4-universe-blocks",
    ],
)
def test_other_work_item_sizes_give_the_same_result_bit_for_bit(
    sample_store: Path,
    reference: xr.Dataset,
    on_cluster: ClusterOptions,
    analysis: dict[str, int],
    n_items: int,
) -> None:
    ds, stats = run_quietly(dist_config(sample_store, **analysis), on_cluster)
    assert stats.items == n_items
    assert_bit_identical(ds, reference, provenance=frozenset({"config", "config_hash"}))


# --- bin once per run: each block's items prefer one worker (issue 16, item 1) -----------------


def test_block_homes_are_consecutive_blocks_in_shares_of_the_workers_threads() -> None:
    from farm.execute import block_homes

    assert block_homes({"tcp://b:1": 1, "tcp://a:1": 1}, 9) == ["tcp://a:1"] * 5 + ["tcp://b:1"] * 4
    # the same cluster whatever order the scheduler lists it in
    assert block_homes({"tcp://a:1": 1, "tcp://b:1": 1}, 9) == block_homes(
        {"tcp://b:1": 1, "tcp://a:1": 1}, 9
    )
    assert block_homes({"a": 1, "b": 2}, 9) == ["a"] * 3 + ["b"] * 6  # twice the threads
    assert block_homes({"a": 1, "b": 1, "c": 1}, 2) == ["a", "c"]  # fewer blocks than workers
    assert block_homes({"a": 4}, 9) is None  # one worker: nothing to prefer
    assert block_homes({}, 9) is None


def test_two_workers_bin_each_block_once_per_run_and_keep_every_bit(
    sample_store: Path, reference: xr.Dataset
) -> None:
    """Every chunk of a block runs on the block's worker, which bins it once for all of them.

    Work stealing is off in this cluster, so that each item runs where the plan prefers; with it
    on (the default), an idle worker may still take an item, which changes no number either.
    """
    import dask
    from distributed import Client

    from farm.cluster.local import local_cluster

    def binned() -> int:  # on each worker: the blocks it binned (its bin cache's misses)
        from farm.reweight.bincache import BIN_CACHE

        return BIN_CACHE.misses

    with dask.config.set({"distributed.scheduler.work-stealing": False}):
        options = ClusterOptions(kind="local", workers=2, dashboard=False)
        with local_cluster(options) as cluster, Client(cluster, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
            joined = ClusterOptions(scheduler_address=cluster.scheduler_address)
            ds, stats = run_quietly(dist_config(sample_store, blocks_per_task=1), joined)
            misses = client.run(binned)
    assert stats.computed == N_CHUNKS * N_BLOCKS  # 90 one-block items, 10 per block
    assert sorted(misses.values()) == [4, 5]  # 9 blocks, each binned once, where its items ran
    assert_bit_identical(ds, reference, provenance=frozenset({"config", "config_hash"}))
