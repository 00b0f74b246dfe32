"""An in-process run computes its work items on a few threads (farm.execute.inprocess_threads)
and reduces them in item order: the same bits on one thread as on several, the same errors, and
a stop (an error, Ctrl-C) that drops the items not started and never waits for a running one."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import xarray as xr
from conftest import PROVENANCE_ATTRS, assert_bit_identical, dist_config, farm_cli, run_quietly

from farm import execute
from farm.cluster import ClusterOptions
from farm.execute import _in_item_order, inprocess_threads


@pytest.mark.parametrize(
    "analysis",
    [{}, {"blocks_per_task": 1}],
    ids=["default-items", "1-block-items"],
)
def test_one_thread_and_several_give_the_same_result_bit_for_bit(
    sample_store: Path, reference: xr.Dataset, analysis: dict[str, int]
) -> None:
    cfg = dist_config(sample_store, **analysis)
    one, one_stats = run_quietly(cfg, ClusterOptions(kind="inprocess", workers=1))
    # 3 threads on 2 items a chunk (default) or 9 (1-block items): items of one chunk and of the
    # next end in another order than the plan's
    many, many_stats = run_quietly(cfg, ClusterOptions(kind="inprocess", workers=3))
    assert one_stats == many_stats
    assert many_stats.computed == many_stats.items > 2 * 3  # more items than the window
    assert_bit_identical(one, many)
    assert_bit_identical(one, reference, provenance=PROVENANCE_ATTRS)


def test_results_come_in_item_order_whatever_order_the_items_end_in() -> None:
    items = list(range(12))
    ended: list[int] = []

    def compute(item: int) -> int:
        time.sleep(0.005 * (12 - item))  # later items end sooner
        ended.append(item)
        return item * item

    results = list(_in_item_order(compute, items, 4))  # type: ignore[arg-type]
    assert results == [k * k for k in items]
    assert ended != sorted(ended)  # they did end out of order


def test_the_first_failing_item_in_item_order_raises_even_when_a_later_one_fails_sooner() -> None:
    def compute(item: int) -> int:
        if item == 3:
            time.sleep(0.05)
            msg = f"work item {item} failed"
            raise RuntimeError(msg)
        if item == 4:
            msg = f"work item {item} failed"
            raise RuntimeError(msg)
        return item

    with pytest.raises(RuntimeError, match="work item 3 failed"):
        list(_in_item_order(compute, list(range(40)), 2))  # type: ignore[arg-type]


def test_the_threads_run_at_most_twice_their_number_of_items_ahead_of_the_reduction() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def compute(item: int) -> int:
        with lock:
            started.append(item)
        return item

    ahead = []
    for taken, _ in enumerate(_in_item_order(compute, list(range(40)), 2), 1):  # type: ignore[arg-type]
        time.sleep(0.005)  # a slow reduction: the threads would run ahead if let
        with lock:
            ahead.append(len(started) - taken)
    assert max(ahead) <= 2 * 2 and len(started) == 40


def _item_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("farm-item")]


def test_ctrl_c_while_an_item_runs_stops_at_once_and_the_threads_end_after_it() -> None:
    # SIGINT as a terminal's Ctrl-C meets it: Python's own handler, even where pytest was
    # started with SIGINT ignored (a background job of a non-interactive shell: `cmd &`, some
    # CI runners), where the signal never becomes KeyboardInterrupt
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_while_an_item_runs()
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_while_an_item_runs() -> None:
    stuck = threading.Event()
    started: list[int] = []

    def compute(item: int) -> int:
        started.append(item)
        if item == 2:
            stuck.wait(30)  # an item still running when Ctrl-C arrives
        return item

    main = threading.main_thread().ident
    ctrl_c = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    ctrl_c.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        list(_in_item_order(compute, list(range(30)), 2))  # type: ignore[arg-type]
    assert time.perf_counter() - t0 < 5  # not the 30 s the item would take
    stuck.set()
    for _ in range(500):  # the threads end after their item, never starting another
        if not _item_threads():
            break
        time.sleep(0.01)
    assert not _item_threads()
    # items 0 and 1 taken, at most 2 × 2 threads beyond them: none started after the stop
    assert len(started) <= 2 + 2 * 2


@pytest.mark.parametrize(
    ("env", "flags", "says"),
    [
        ("two", [], "FARM_INPROCESS_THREADS='two': give a whole number >= 1"),
        ("0", ["--cluster", "auto"], "FARM_INPROCESS_THREADS='0': give a whole number >= 1"),
    ],
)
def test_a_bad_thread_count_is_refused_before_any_event_is_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, flags: list[str], says: str
) -> None:
    monkeypatch.chdir(tmp_path)  # FARM_STORE_DIR is ./stores (tests/conftest.py)
    monkeypatch.setenv("FARM_INPROCESS_THREADS", env)
    cluster = flags or ["--cluster", "inprocess"]
    result = farm_cli("run", "sns-csi", "--out", "r.zarr", "-n", "2e5", "-u", "2", *cluster)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.stderr.split())
    assert not (tmp_path / "stores").exists() and not (tmp_path / "r.zarr").exists()


def test_the_thread_count_is_asked_for_else_the_environments_else_the_cpus_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FARM_INPROCESS_THREADS", raising=False)
    assert 1 <= inprocess_threads() <= execute.MAX_INPROCESS_THREADS
    monkeypatch.setattr(execute.os, "sched_getaffinity", lambda _: set(range(64)), raising=False)
    assert inprocess_threads() == execute.MAX_INPROCESS_THREADS
    monkeypatch.setattr(execute.os, "sched_getaffinity", lambda _: {0}, raising=False)
    assert inprocess_threads() == 1
    monkeypatch.setenv("FARM_INPROCESS_THREADS", "3")
    assert inprocess_threads() == 3
    assert inprocess_threads(5) == 5  # --workers with --cluster inprocess wins
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("FARM_INPROCESS_THREADS", bad)
        with pytest.raises(ValueError, match=rf"FARM_INPROCESS_THREADS='{bad}': give a whole"):
            inprocess_threads()
    with pytest.raises(ValueError, match="0 threads for the work items"):
        inprocess_threads(0)
