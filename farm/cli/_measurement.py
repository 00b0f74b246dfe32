"""``farm run`` / ``farm refresh`` of a multi-sample measurement (farm.measurement): every
sample in one plan on one cluster, one published dataset (docs/measurements.md)."""

from __future__ import annotations

import time
from pathlib import Path

from farm.cli._common import console, progress_bar, user_errors
from farm.cli._common import out as out_console

__all__ = ["execute_measurement"]


def execute_measurement(
    config: str,
    out: Path,
    events: int | None,
    universes: int | None,
    checkpoints: bool,
    options,
    *,
    refresh: bool,
    wait: float,
    until_converged: bool,
    new_analysis: bool,
    as_json: bool = False,
) -> None:
    """A multi-sample measurement (farm.measurement): all samples in one plan, one dataset."""
    from farm.cli import _refresh
    from farm.config import store_path
    from farm.lock import output_lock
    from farm.measurement import load_measurement, run_measurement
    from farm.outputs import check_output, check_same_analysis
    from farm.publish import current_version, publish_dataset
    from farm.runner import checkpoint_dir_for
    from farm.stale import clean_stale, temporaries_of

    def say(message: str) -> None:
        console.print(message, markup=False, highlight=False)

    t0 = time.perf_counter()
    with user_errors(writing=out):
        if until_converged:
            msg = (
                f"{config}: --until-converged, --precision and --max-universes are not offered "
                "for a multi-sample measurement yet; give the throws in the samples (or "
                "--universes), or run each sample alone with --until-converged"
            )
            raise ValueError(msg)
        if as_json:
            msg = f"{config}: --json is not offered for a multi-sample measurement yet; drop it"
            raise ValueError(msg)
        if wait < 0:
            msg = f"--wait must be >= 0 seconds (got {wait:g}); 0 refuses at once while another run publishes OUT"
            raise ValueError(msg)
        # a refresh keeps the published run's --events and --universes unless given again
        pub = _refresh.published(out) if refresh and out.exists() else None
        events = _refresh.keep_events(pub, events, say)
        meas = load_measurement(config, events=events)
        pub_samples = _refresh.published_samples(out) if pub is not None else {}
        universes = _refresh.keep_measurement_universes(pub, pub_samples, meas, universes, say)
        check_output(out)
        for cfg in meas.samples:
            check_output(out, store=store_path(cfg))
        check_same_analysis(out, meas.name, "measurement", new_analysis=new_analysis)
        if pub is not None:  # what changed, sample by sample
            for line in _refresh.describe_sample_changes(pub_samples, meas, pub.version):
                say(line)
        with output_lock(out, wait_s=wait, log=lambda m: console.print(m)):
            clean_stale(temporaries_of(out), log=lambda m: console.print(m, markup=False))
            if refresh and current_version(out) is None:
                msg = f"{out}: nothing published yet; run `farm run {config} --out {out}` first"
                raise ValueError(msg)
            with progress_bar() as bar:
                task = bar.add_task("work items", total=None)
                ds, per_sample, stats = run_measurement(
                    meas,
                    options,
                    universes=universes,
                    checkpoint_dir=checkpoint_dir_for(out) if checkpoints else None,
                    log=lambda m: console.print(m, markup=False),
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
            _refresh.record(ds, events, universes)  # what a later refresh keeps
            groups = {f"samples/{name}": sample for name, sample in per_sample.items()}
            if refresh and _refresh.unchanged(out, ds, groups):
                out_console.print(  # the result: stdout
                    f"{out} is up to date: recomputed {stats.computed} of {stats.items} work items, nothing changed",
                    markup=False,
                )
                return
            version = publish_dataset(ds, out, new_analysis=new_analysis, groups=groups)
    dt = time.perf_counter() - t0
    out_console.print(  # the result: stdout
        f"published {out} ({version.name}): measurement {meas.name} of {len(per_sample)} samples "
        f"({', '.join(per_sample)}), {ds.sizes['truth_bin']} truth bin(s), "
        f"{int(ds['systematic_shared'].sum())} shared systematic(s), in {dt:.1f} s; computed "
        f"{stats.computed} of {stats.items} work items ({stats.from_checkpoint} from checkpoints)",
        markup=False,
    )
    for model, value, separate in zip(
        ds["model"].values,
        ds["chi2_real_joint"].values,
        ds["chi2_real_separate_sum"].values,
        strict=True,
    ):
        out_console.print(
            f"  {model}: joint chi2 {value:.4g} over {ds.sizes['truth_bin']} bins "
            f"(samples alone: {separate:.4g} summed)",
            markup=False,
        )
