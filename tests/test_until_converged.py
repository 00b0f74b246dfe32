"""Too few universes are flagged everywhere a user looks, and ``--until-converged`` throws more
(issue 10 item 4).

A run with 2 universes per multisim systematic: the dataset (``mc_rel_error_*`` = 1, not
converged, ``rank_limited_*``, the ``universes_warning`` attribute, large chi-square MC errors),
the run summary that ``farm run`` prints, and the report (banner, verdict, table) all say so.
``farm run --until-converged`` grows each short systematic, reusing every earlier work item
(flux universes need none, bootstrap items extend their checkpointed replicas, knob items of a
grown systematic are recomputed), and ends bit for bit where a plain run with its final throws
does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import assert_bit_identical, farm_cli

from farm.analysis.convergence import next_throws, universes_warning
from farm.checkpoint import CheckpointStore
from farm.cluster import ClusterOptions
from farm.config import load_config
from farm.plan import make_plan
from farm.publish import open_published, publish_dataset
from farm.report import PAGE
from farm.report.universes import universe_checks
from farm.runner import ensure_store, run_inprocess, run_until_converged, with_throws
from farm.store.reader import EventStore
from workers.tasks import compute_item

EVENTS = 20_000
PRECISION = 0.3
CONV = ("real", "nominal")


def _labels(ds: xr.Dataset, name: str) -> list[str]:
    return [str(v) for v in ds[name].values]


def _in(workdir: Path, *args: object):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        return farm_cli(*args)


# --- two universes per systematic ---------------------------------------------------------------


@pytest.fixture(scope="module")
def two_universes(tmp_path_factory: pytest.TempPathFactory) -> tuple[xr.Dataset, str, Path]:
    """nuscope-lar (12 truth bins) published with 2 universes per multisim systematic, its
    run output and its report."""
    work = tmp_path_factory.mktemp("two-universes")
    out = work / "r.zarr"
    args = ["run", "nuscope-lar", "--cluster", "inprocess", "--events", EVENTS, "-u", 2]
    result = _in(work, *args, "--out", out)
    assert result.exit_code == 0, result.output
    report = _in(work, "report", out, "--out", work / "report")
    assert report.exit_code == 0, report.output
    return open_published(out).load(), " ".join(result.output.split()), work / "report" / PAGE


def test_the_dataset_flags_every_multisim_systematic(two_universes) -> None:
    ds, _, _ = two_universes
    unisim = np.array([name == "selection_efficiency" for name in _labels(ds, "systematic")])
    for c in ("real", "nominal"):
        # √(2/2): two universes know a variance to 100 %, whatever they hold
        assert np.all(ds[f"mc_rel_error_{c}"].values[~unisim] == 1.0)
        assert np.all(ds[f"mc_rel_error_{c}"].values[unisim] == 0.0)
        assert np.all(ds[f"cov_rank_{c}"].values <= 2)
        assert ds[f"rank_limited_{c}"].values.sum() >= 4  # rank 2 of 12 bins
        assert not np.any(ds[f"rank_limited_{c}"].values[unisim])
        # definite thanks to the statistics, and the variable says it means nothing more
        assert bool(ds[f"positive_definite_{c}"].values)
        assert "says nothing about" in ds[f"positive_definite_{c}"].attrs["description"]
    assert np.array_equal(ds["universes_converged"].values, unisim)
    assert np.all(ds["universes_needed"].values[~unisim] == 200)  # 2 / 0.1²
    assert np.all(ds["n_universes"].values == 2)
    warning = ds.attrs["universes_warning"]
    for name in np.array(_labels(ds, "systematic"))[~unisim]:
        assert f"{name} (2 thrown: MC error 100 %, ≈200 needed" in warning
    assert "limited by the universes" in warning


def test_the_chi2_monte_carlo_error_is_unknown(two_universes) -> None:
    # rank 2 of 12 bins: the χ² depends on directions no universe reached (7.3 for the
    # generator here, 0.03 with 200 universes), which no estimate from the universes can bound
    ds, _, _ = two_universes
    for c in ("real", "nominal"):
        for test in ("joint", "uncorrelated"):
            assert np.all(np.isinf(ds[f"chi2_{c}_{test}_mc_error"].values))
            assert np.all(np.isnan(ds[f"chi2_{c}_{test}_mc_bias"].values))
        assert "rank" in ds[f"chi2_{c}_joint_mc_error"].attrs["description"]


def test_the_run_summary_warns(two_universes) -> None:
    _, output, _ = two_universes
    assert "warning: Too few universes for a 10 % Monte-Carlo precision" in output
    assert re.search(r"generator: chi2/dof real [\d.]+ \(± \?\)/12", output)


def test_the_report_warns_at_the_top_and_in_the_diagnostics(two_universes) -> None:
    _, _, page = two_universes
    html = page.read_text()
    assert html.index('<div class="verdict bad">Too few universes.') < html.index("<nav>")
    assert "No: the Monte-Carlo error of the covariance exceeds 10 %" in html
    assert "more: ≈200 universes, rank 2 of 12" in html
    assert 'data-value="inf">± ∞</td>' in html  # the χ² MC error column
    assert "yes, thanks to stat" in html  # positive definite, but not reassuring
    assert "Rank limited by the universes" in html


def test_flags_follow_the_precision_target(two_universes) -> None:
    ds, _, _ = two_universes
    worst = np.maximum(ds["mc_rel_error_real"].values, ds["mc_rel_error_nominal"].values)
    limited = ds["rank_limited_real"].values | ds["rank_limited_nominal"].values
    assert np.array_equal(
        ds["universes_converged"].values, (worst <= ds.attrs["universe_precision"]) & ~limited
    )


# --- until converged ----------------------------------------------------------------------------


def _stats_line(output: str) -> tuple[int, int, int]:
    text = " ".join(output.split())
    found = re.search(r"computed (\d+) of (\d+) work items \((\d+) from checkpoints", text)
    assert found, text
    return tuple(int(v) for v in found.groups())  # type: ignore[return-value]


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    work = tmp_path_factory.mktemp("until-converged")
    out = work / "r.zarr"
    args = ["run", "sns-csi", "--events", EVENTS, "--universes", 4, "--until-converged"]
    result = _in(work, *args, "--precision", PRECISION, "--cluster", "inprocess", "--out", out)
    assert result.exit_code == 0, result.output
    return out, result.output, work


def test_until_converged_reaches_the_precision_and_records_the_counts(converged) -> None:
    out, output, _ = converged
    ds = open_published(out).load()
    record = json.loads(ds.attrs["until_converged"])
    assert record["converged"] and record["precision"] == PRECISION
    assert record["history"][0] == dict.fromkeys(record["throws"], 4)
    assert len(record["history"]) == record["iterations"] >= 2
    assert all(record["throws"][k] >= 23 for k in record["throws"])  # 2 / 0.3² = 22.2
    assert ds.attrs["universes_warning"] == ""
    assert bool(ds["universes_converged"].values.all())
    counts = dict(zip(_labels(ds, "systematic"), ds["n_universes"].values, strict=True))
    assert {k: int(counts[k]) for k in record["throws"]} == record["throws"]
    assert "until converged: converged after" in " ".join(output.split())
    assert "warning" not in output


def test_until_converged_equals_a_plain_run_with_the_final_throws(converged) -> None:
    out, _, work = converged
    ds = open_published(out).load()
    throws = json.loads(ds.attrs["until_converged"])["throws"]
    cfg = with_throws(load_config("sns-csi", **{"generation.events": EVENTS}), throws, PRECISION)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)  # the same generated store
        publish_dataset(run_inprocess(cfg, log=lambda _: None), work / "plain.zarr")
    plain = open_published(work / "plain.zarr").load()
    # the command line's --events/--universes (for a later refresh) and the iterations
    assert_bit_identical(ds, plain, provenance=frozenset({"until_converged", "run_overrides"}))


def test_until_converged_reuses_every_earlier_item(converged, tmp_path: Path) -> None:
    _, output, work = converged
    computed, items, reused = _stats_line(output)
    assert computed + reused == items and reused > 0
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        cfg = load_config("sns-csi", **{"generation.events": EVENTS})
        result = run_until_converged(
            cfg,
            ClusterOptions(kind="inprocess"),
            precision=PRECISION,
            universes=4,
            checkpoint_dir=tmp_path / "checkpoints",
            log=lambda _: None,
        )
    kinds = {s.name: s.kind for s in cfg.systematics}
    first = result.steps[0][1]
    assert first.computed == first.items and first.from_checkpoint == 0
    for (before, _), (after, stats) in zip(result.steps, result.steps[1:], strict=False):
        grown = [name for name in after if after[name] != before[name]]
        # one item per chunk at this size; flux universes need none (R @ C), a grown knob
        # recomputes its chunk, a grown bootstrap extends its checkpointed replicas
        per_event = [name for name in grown if kinds[name] != "flux"]
        assert stats.computed == len(per_event)
        assert stats.extended == sum(kinds[name] == "bootstrap" for name in grown)
        assert stats.from_checkpoint == stats.items - stats.computed


def test_until_converged_needs_checkpoints_and_precision_needs_it(tmp_path: Path) -> None:
    base = ["run", "sns-csi", "--cluster", "inprocess", "--out", tmp_path / "r.zarr"]
    refused = farm_cli(*base, "--until-converged", "--no-checkpoints")
    assert refused.exit_code != 0 and "drop --no-checkpoints" in refused.output
    refused = farm_cli(*base, "--precision", "0.2")
    assert refused.exit_code != 0 and "apply to --until-converged" in refused.output


# --- prefix-stable bootstrap items --------------------------------------------------------------


@pytest.mark.parametrize("numba", [True, False])
def test_a_bootstrap_item_extends_its_checkpointed_replicas_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, numba: bool
) -> None:
    from farm.analysis.pipeline import prepare

    if not numba:
        monkeypatch.setattr("farm.reweight.compiled.HAVE_NUMBA", False)
    cfg = load_config(
        "sns-csi", **{"generation.events": 70_000, "sample.store": str(tmp_path / "s")}
    )
    store = ensure_store(cfg, log=lambda _: None)
    opened = EventStore.open(store.path)

    def bootstrap_items(universes: int):
        prep = prepare(cfg, opened, universes=universes)
        plan = make_plan(prep, opened.shard_ranges)
        return prep, [item for item in plan.items if item.prefix_family]

    checkpoints = tmp_path / "checkpoints"
    prep, few = bootstrap_items(10)
    for item in few:
        compute_item(str(opened.path), prep.spec, item, prep.block_rows, str(checkpoints))
    prep, more = bootstrap_items(25)
    assert [i.prefix_family for i in more] == [i.prefix_family for i in few]
    assert [i.key for i in more] == [f"{i.prefix_family}-0-25" for i in more]
    for item in more:
        found = CheckpointStore(checkpoints).prefix_of(item.prefix_family, *item.throws)
        assert found is not None and found[0] == 10
        extended = compute_item(
            str(opened.path), prep.spec, item, prep.block_rows, str(checkpoints)
        )
        fresh = compute_item(str(opened.path), prep.spec, item, prep.block_rows)
        for name in ("signal", "background", "truth", "truth_nominal", "clamped"):
            assert getattr(extended, name).tobytes() == getattr(fresh, name).tobytes(), name
        assert CheckpointStore(checkpoints).has(item.key)


def test_the_cap_stops_the_loop_and_the_result_says_it_did_not_converge(converged) -> None:
    _, _, work = converged  # its generated store
    out = work / "capped.zarr"
    args = ["run", "sns-csi", "--events", EVENTS, "-u", 4, "--until-converged", "--precision"]
    result = _in(work, *args, 0.05, "--max-universes", 8, "--cluster", "inprocess", "--out", out)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "NOT converged (cap 8) after 2 iteration(s)" in text
    assert "warning: Too few universes for a 5 % Monte-Carlo precision" in text
    record = json.loads(open_published(out).attrs["until_converged"])
    assert not record["converged"] and set(record["throws"].values()) == {8}


def _verdicts(names: list[str], converged: list[bool], needed: list[int]) -> xr.Dataset:
    return xr.Dataset(
        {
            "universes_converged": (("systematic",), np.array(converged)),
            "universes_needed": (("systematic",), np.array(needed)),
        },
        coords={"systematic": np.array(names, dtype=object)},
    )


def test_next_throws_grow_at_least_geometrically_up_to_the_cap() -> None:
    ds = _verdicts(["a", "b", "c", "d"], [True, False, False, False], [10, 30, 12, 5000])
    throws = {"a": 10, "b": 10, "c": 10, "d": 10}
    # to what it needs, at least twice what it has, at most the cap; converged ones stay
    assert next_throws(ds, throws, 1000) == {"a": 10, "b": 30, "c": 20, "d": 1000}
    assert next_throws(ds, {"a": 10, "b": 1000, "c": 1000, "d": 1000}, 1000) is None


def test_older_results_get_the_estimate_from_their_universes(two_universes) -> None:
    ds, _, _ = two_universes
    stored = {c.systematic: c.rel_error for c in universe_checks(ds)}
    names = [f"{v}_{c}" for v in ("mc_rel_error", "cov_rank", "rank_limited") for c in CONV]
    recomputed = {c.systematic: c.rel_error for c in universe_checks(ds.drop_vars(names))}
    assert recomputed == stored


@pytest.mark.parametrize(
    ("key", "value"), [("universe_precision", 0.0), ("universe_precision", 1.0), ("stat_toys", 1)]
)
def test_the_precision_and_the_toys_are_checked(key: str, value: float) -> None:
    with pytest.raises(Exception, match=key):
        load_config("sns-csi", **{f"analysis.{key}": value})


def test_the_warning_does_not_ask_to_throw_universes_that_come_with_their_source(
    two_universes,
) -> None:
    """A weight set's columns or a flux file's histograms are a fixed number of universes:
    the warning names them as short but says none can be thrown, and keeps --until-converged
    for the others."""
    ds, _, _ = two_universes
    names = [str(n) for n in np.array(_labels(ds, "systematic"))[~ds["universes_converged"].values]]
    ds = ds.copy()
    ds.attrs["universes_fixed"] = names[0]
    warning = universes_warning(ds)
    assert f"{names[0]} (2 thrown" in warning
    assert f"The universes of {names[0]} come with their source" in warning
    assert "`farm run --until-converged`" in warning  # the others can still be thrown
    ds.attrs["universes_fixed"] = ",".join(names)
    warning = universes_warning(ds)
    assert "--until-converged" not in warning
    assert all(name in warning.split("The universes of ", 1)[1] for name in names)
