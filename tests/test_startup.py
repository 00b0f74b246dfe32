"""Quick runs are quick (issues 15 and 16): lazy imports, plans that stay small at any size, a
cost model from measured rates, and the default cluster chosen from it.

Nothing here is timed against a target (the figures are in BENCHMARKS.md,
``benchmarks/bench_startup.py``); what is checked is what makes them hold.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import N_CHUNKS, UNIVERSES, assert_bit_identical, dist_config, run_quietly

from farm import costmodel
from farm.cluster import ClusterOptions
from farm.config import load_config
from farm.plan import MAX_ITEMS, _rows_checksums
from farm.runner import plan_for, resolve_auto, synthetic_plan_for
from farm.store.reader import EventStore

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("dask", "distributed", "xarray", "zarr", "numba", "matplotlib", "scipy", "pandas")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


def test_the_command_line_imports_no_heavy_module_until_a_command_needs_one() -> None:
    loaded = _modules_after("import farm.cli")
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []


def test_a_worker_imports_what_a_work_item_needs_and_not_the_analysis() -> None:
    loaded = _modules_after("import workers.tasks")
    for name in ("xarray", "pandas", "scipy.stats", "distributed", "farm.analysis.pipeline"):
        assert name not in loaded, name
    assert "numba" in loaded  # the kernels themselves


def test_only_farms_own_processes_skip_other_packages_numba_extensions() -> None:
    # awkward's extension costs every process ≈ 0.2 s; a library user's process may need it
    pytest.importorskip("numba")
    probe = "from farm.reweight import compiled; import numba.core.entrypoints as e; "
    probe += "print(e._already_initialized)"
    env = {k: v for k, v in os.environ.items() if k != "FARM_NUMBA_EXTENSIONS"}

    def skipped(code: str, **extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert skipped(probe) == "False"  # a library user's process
    assert skipped("import farm.cli; " + probe) == "True"  # the command line
    assert skipped(probe, FARM_NUMBA_EXTENSIONS="0") == "True"  # its local workers inherit it


# --- plans at any size -------------------------------------------------------------------------


def test_shard_checksums_of_an_item_are_those_a_scan_of_every_shard_finds() -> None:
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, 5_000), rng.randint(0, 12)))
        edges = [0, *cuts, 5_000]
        ranges = list(itertools.pairwise(edges))
        prep = type("P", (), {"store_checksums": [f"c{i}" for i in range(len(ranges))]})()
        start = rng.randrange(0, 5_000)
        stop = rng.randint(start + 1, 5_000)
        scan = [[lo, hi, f"c{i}"] for i, (lo, hi) in enumerate(ranges) if lo < stop and hi > start]
        assert _rows_checksums(prep, ranges, start, stop) == scan  # type: ignore[arg-type]


def test_item_keys_hashed_from_a_shared_prefix_are_the_keys_of_the_whole_payload() -> None:
    # the keys earlier runs checkpointed under: a faster plan must not orphan them
    from farm.plan import _digest, _item_hasher, _item_key

    common = {"kernel": "3", "reco_edges": np.linspace(0.0, 60.0, 8), "clamp": None}
    part = {"knobs": {"sin2w": np.arange(5.0)}, "bootstrap": np.full(5, -1), "flux": False}
    rows = [[0, 8_388_608, "0f3a"], [8_388_608, 16_777_216, "9b1c"]]
    prefix = _item_hasher(common, part)
    for start, stop in ((0, 524_288), (8_126_464, 8_650_752)):
        assert _item_key(prefix, start, stop, rows) == _digest([common, part, start, stop, rows])
    assert _item_key(prefix, 0, 1, rows) != _item_key(prefix, 0, 2, rows)


@pytest.fixture
def private_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FARM_STORE_DIR", str(tmp_path / "stores"))
    monkeypatch.setenv("FARM_RATES_FILE", str(tmp_path / "rates.json"))
    return tmp_path


def test_a_plan_of_1e10_events_and_1e4_universes_stays_within_1e5_work_items(
    private_caches: Path,
) -> None:
    cfg = load_config("sns-csi", **{"generation.events": 10**10})
    prep, plan, ranges = synthetic_plan_for(cfg, universes=10_000, log=lambda _: None)
    assert prep.n_events == 10**10 and ranges[-1][1] == 10**10  # type: ignore[attr-defined]
    assert prep.universes.n_universes > 60_000  # type: ignore[attr-defined]
    assert len(plan.items) <= MAX_ITEMS
    # every chunk covers every row exactly once, in its own items
    for chunk in range(len(plan.chunks)):
        items = plan.items_of_chunk(chunk)
        assert items[0].start == 0 and items[-1].stop == 10**10
        assert all(a.stop == b.start for a, b in itertools.pairwise(items))
    # the costly chunks took smaller items than the flux chunk where the budget allowed
    assert min(plan.chunk_levels) < plan.chunk_levels[0] == plan.level


def test_chunks_at_different_levels_reduce_to_the_same_bits(
    sample_store: Path, reference: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # items of one block for the per-event chunks, of eight for the flux chunk
    monkeypatch.setattr("farm.plan.MAX_ITEM_S", 1e-9)
    monkeypatch.setattr("farm.plan.NOMINAL_ROW_S", 0.0)
    cfg = dist_config(sample_store)
    _, plan = plan_for(cfg, EventStore.open(sample_store), universes=UNIVERSES)
    assert plan.chunk_levels[0] == 1 and set(plan.chunk_levels[1:]) == {0}
    ds, stats = run_quietly(cfg, ClusterOptions(kind="inprocess"))
    assert stats.items == 2 + (N_CHUNKS - 1) * 9
    assert_bit_identical(ds, reference)  # type: ignore[arg-type]


# --- the cost model ----------------------------------------------------------------------------


def test_rates_are_measured_once_per_machine_and_again_after_an_upgrade(
    sample_store: Path, private_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = dist_config(sample_store)
    prep, plan = plan_for(cfg, EventStore.open(sample_store), universes=UNIVERSES)
    first = costmodel.measure_rates(prep, plan)  # type: ignore[arg-type]
    assert first.measured == N_CHUNKS  # one class per chunk here
    assert all(r > 0 for r in first.per_row_s)
    again = costmodel.measure_rates(prep, plan)  # type: ignore[arg-type]
    assert again.measured == 0 and again.per_row_s == first.per_row_s
    monkeypatch.setattr("farm.plan.KERNEL_VERSION", "upgraded")
    assert costmodel.measure_rates(prep, plan).measured == N_CHUNKS  # type: ignore[arg-type]
    cached = json.loads((private_caches / "rates.json").read_text())
    assert len(cached) == 2 and any("kernels upgraded" in key for key in cached)


def test_a_run_whose_items_are_all_checkpointed_measures_nothing(
    sample_store: Path, private_caches: Path
) -> None:
    prep, plan = plan_for(dist_config(sample_store), EventStore.open(sample_store), universes=3)
    rates = costmodel.measure_rates(prep, dataclasses.replace(plan, items=()))  # type: ignore[arg-type]
    assert rates.measured == 0 and not (private_caches / "rates.json").exists()


def test_a_busy_machine_never_raises_a_cached_figure_but_a_calibration_replaces_it(
    private_caches: Path,
) -> None:
    costmodel._save_cache({"startup": {"driver_s": 1.5, "worker_s": 0.7}})
    costmodel._save_cache({"startup": {"driver_s": 6.0, "worker_s": 0.6}})  # measured while busy
    assert costmodel._load_cache()["startup"] == {"driver_s": 1.5, "worker_s": 0.6}
    costmodel._save_cache({"startup": {"driver_s": 2.0}}, replace=True)  # farm plan --calibrate
    assert costmodel._load_cache()["startup"] == {"driver_s": 2.0, "worker_s": 0.6}


def _estimate(work_s: float, items: int = 20) -> costmodel.Estimate:
    startup = costmodel.StartupCosts(driver_s=1.0, dask_s=0.5, worker_s=1.0, measured=True)
    return costmodel.Estimate(item_s=np.full(items, work_s / items), finish_s=0.5, startup=startup)


def test_a_small_plan_runs_in_process_and_says_why() -> None:
    kind, why = costmodel.choose_cluster(_estimate(1.2), workers=2, cores=2)
    assert kind == "inprocess"
    # 2 workers on 2 cores: dask 0.5 + 1.0 + one round of (0.5 + 1.0)
    assert "estimated 1.2 s of work is less than starting 2 worker(s) (≈ 3.0 s)" in why
    assert "--cluster local" in why


def test_a_plan_that_workers_shorten_goes_to_a_local_cluster() -> None:
    # here 20 s; on two workers 3.0 s of start-up + 10 s
    kind, why = costmodel.choose_cluster(_estimate(20.0), workers=2, cores=2)
    assert kind == "local"
    assert "≈ 13.0 s there" in why and "--cluster inprocess" in why


def test_the_break_even_is_where_sharing_the_work_pays_for_the_start_up() -> None:
    # inprocess while work ≤ start (3.0) + work / 2, i.e. work ≤ 6.0 s
    assert costmodel.choose_cluster(_estimate(5.9), workers=2, cores=2)[0] == "inprocess"
    assert costmodel.choose_cluster(_estimate(6.1), workers=2, cores=2)[0] == "local"


def test_auto_keeps_what_was_asked_for_explicitly() -> None:
    auto = ClusterOptions(kind="auto")
    logged: list[str] = []

    def keep(options: ClusterOptions) -> ClusterOptions:
        return resolve_auto(
            None,  # type: ignore[arg-type]  # not planned: decided by the flags alone
            None,  # type: ignore[arg-type]
            options,
            universes=None,
            checkpoints=None,
            log=logged.append,
        )

    for kind in ("local", "inprocess", "slurm"):
        assert keep(dataclasses.replace(auto, kind=kind)).kind == kind  # type: ignore[arg-type]
    assert keep(dataclasses.replace(auto, workers=3)).kind == "local"
    assert keep(dataclasses.replace(auto, processes=False)).kind == "local"
    joined = keep(dataclasses.replace(auto, scheduler_address="tcp://127.0.0.1:8786"))
    assert joined.kind == "auto" and joined.scheduler_address == "tcp://127.0.0.1:8786"
    assert logged == []


def test_a_default_run_of_the_small_sample_runs_in_process(
    sample_store: Path, private_caches: Path
) -> None:
    logged: list[str] = []
    cfg = dist_config(sample_store)
    store = EventStore.open(sample_store)
    options = resolve_auto(
        cfg,
        store,
        ClusterOptions(kind="auto"),
        universes=UNIVERSES,
        checkpoints=None,
        log=logged.append,
    )
    assert options.kind == "inprocess"
    assert any(line.startswith("in-process: the plan's estimated") for line in logged)


# --- compile once ------------------------------------------------------------------------------

_KERNEL_STATS = """
from farm.reweight import compiled, helm
from workers.warmup import warm_up_kernels

warm_up_kernels()
kernels = (compiled._bootstrap_fill_numba, compiled._slot_fill_numba, helm._helm_ratio_numba)
print(sum(sum(k.stats.cache_hits.values()) for k in kernels),
      sum(sum(k.stats.cache_misses.values()) for k in kernels))
"""


def _kernel_stats() -> tuple[int, int]:
    """(cache hits, cache misses) of three kernels after a worker's warm-up, in this process."""
    import contextlib
    import io

    namespace: dict[str, object] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(_KERNEL_STATS, namespace)
    hits, misses = (int(v) for v in printed.getvalue().split())
    return hits, misses


@pytest.mark.slow
def test_kernels_compile_once_and_a_dask_worker_process_loads_them_from_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client

    from farm.cluster.local import local_cluster

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))  # an empty cache
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(
        [sys.executable, "-c", _KERNEL_STATS], env=env, capture_output=True, text=True, check=True
    )
    assert first.stdout.split() == ["0", "3"]  # compiled, and written to the cache
    options = ClusterOptions(kind="local", workers=1, dashboard=False)
    with local_cluster(options) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(1, timeout=60)
        ((hits, misses),) = client.run(_kernel_stats).values()
    assert (hits, misses) == (3, 0)


def test_a_read_only_install_caches_its_kernels_in_a_private_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from farm.reweight import compiled

    if not compiled.HAVE_NUMBA:
        pytest.skip("numba is not installed: nothing is compiled")
    package = Path(compiled.__file__).resolve().parent / "__pycache__"
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    real = compiled._writable
    monkeypatch.setattr(compiled, "_writable", lambda folder: folder != package and real(folder))
    assert compiled._cache_kernels()
    fallback = Path(os.environ["NUMBA_CACHE_DIR"])
    assert fallback.parent == tmp_path and fallback.name == f"farm-numba-cache-{os.getuid()}"
    assert oct(fallback.stat().st_mode & 0o777) == "0o700"
