"""``farm fit``: the cost of one θ point, and Feldman–Cousins toys per second per worker.

    python3 benchmarks/bench_fit.py --events 200000 --toys 4000 --points 21

The sns-csi example is run in-process once (not timed; its universes as configured). Then:

1. One θ point of χ²(θ): the model folded with the flux rule (σ at every node), the prediction
   in all U universes with A_C, the covariance of Δ over the universes, χ². Timed for
   ``farm.models:cevns`` free in sin²θ_W (one form factor per nucleus) and in R_n (a neutron and
   a proton form factor), the fold alone beside it.
2. Feldman–Cousins throughput: ``--toys`` Poisson toys (counts re-extracted by D'Agostini, a
   correlated systematic throw, a refit on the 201-node grid) at each of ``--points`` points,
   in this process, then on a LocalCluster of 1 and of 2 worker processes already started (the
   start-up is reported apart), blocks of ``--block`` toys. The toys' Δχ² are checked
   bit-identical across the three. The machine's own ceiling is measured as in bench_dask.py:
   the same in-process toys run by two processes at once against one alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from farm import models
from farm.analysis.predict import fold_model
from farm.cluster import ClusterOptions
from farm.config import load_config
from farm.fit.fc import run_toys
from farm.fit.minimize import best_fit
from farm.fit.params import parse_parameter
from farm.fit.problem import FitProblem, read_inputs
from farm.fit.run import _points, _thrower, fc_indices, tabulate
from farm.runner import run_inprocess


def _per_call(function, values) -> float:
    function(values[0])  # warm
    t0 = time.perf_counter()
    for v in values:
        function(v)
    return (time.perf_counter() - t0) / len(values)


def theta_cost(problem: FitProblem, param, n: int = 40) -> tuple[float, float]:
    """(seconds per χ²(θ), seconds per fold alone) over n distinct θ in the parameter's range."""
    values = [[x] for x in np.linspace(param.lower, param.upper, n)]
    i = problem.inputs

    def fold(theta) -> None:
        fold_model(problem.bound(theta), i.rule, i.bins, i.signal_flavors, i.truth, i.truth_edges)

    return _per_call(problem.chi2, values), _per_call(fold, values)


def _child(grid, thrower, points, kwargs, ready, out) -> None:
    ready.wait()
    t0 = time.perf_counter()
    run_toys(grid, thrower, points, ("sin2w",), **kwargs)
    out.put(time.perf_counter() - t0)


def ceiling(grid, thrower, points, kwargs) -> tuple[float, float]:
    """(seconds of one in-process toy run alone, of the slower of two at once in two processes):
    what the machine's cores give to two copies of this work with no dask at all."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    seconds = []
    for copies in (1, 2):
        ready, out = ctx.Barrier(copies), ctx.Queue()
        children = [
            ctx.Process(target=_child, args=(grid, thrower, points, kwargs, ready, out))
            for _ in range(copies)
        ]
        for child in children:
            child.start()
        seconds.append(max(out.get() for _ in children))
        for child in children:
            child.join()
    return seconds[0], seconds[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--toys", type=int, default=4000)
    parser.add_argument("--points", type=int, default=21)
    parser.add_argument("--block", type=int, default=500)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            "sns-csi",
            **{"generation.events": args.events, "sample.store": str(Path(tmp) / "s.zarr")},
        )
        ds = run_inprocess(cfg, log=lambda _: None).load()
    inputs = read_inputs(ds, "real")
    n_u, n_nodes = inputs.phi.size, sum(e.size for e, _ in inputs.rule.values())
    print(f"sns-csi, {args.events} events: {n_u} universes, {n_nodes} flux-rule nodes, 1 bin\n")
    print("| χ²(θ) of farm.models:cevns | per θ point (ms) | of which σ at the nodes (ms) |")
    print("| --- | ---: | ---: |")
    for name in ("sin2w", "rn"):
        param = parse_parameter(name, models.cevns)
        problem = FitProblem(inputs=inputs, model=models.cevns, names=(name,))
        per_theta, per_fold = theta_cost(problem, param)
        print(f"| free {name}, {n_u} universes | {1e3 * per_theta:.2f} | {1e3 * per_fold:.2f} |")

    sin2w = parse_parameter("sin2w", models.cevns)
    problem = FitProblem(inputs=inputs, model=models.cevns, names=("sin2w",))
    t0 = time.perf_counter()
    grid = tabulate(problem, [sin2w], 201)
    t_grid = time.perf_counter() - t0
    fit = best_fit(problem.chi2, [sin2w], problem.n_bins)
    thrower = _thrower(problem, "auto")
    points = _points(problem, [sin2w], fit, grid, thrower, 0, fc_indices(201, args.points))
    total = args.toys * len(points)
    kwargs = {"seed": 1, "toys": args.toys, "block": args.block}
    print(f"\ngrid of 201 θ nodes tabulated in {t_grid:.2f} s\n")

    t0 = time.perf_counter()
    reference, _ = run_toys(grid, thrower, points, ("sin2w",), **kwargs)
    rows = [("in-process (no dask)", 1, time.perf_counter() - t0, 0.0)]
    from farm.cluster.local import local_cluster

    for workers in (1, 2):
        t0 = time.perf_counter()
        cluster = local_cluster(ClusterOptions(kind="local", workers=workers, dashboard=False))
        startup = time.perf_counter() - t0
        with cluster:
            options = ClusterOptions(scheduler_address=cluster.scheduler_address)
            run_toys(
                grid,
                thrower,
                points[:1],
                ("sin2w",),
                seed=99,
                toys=workers,
                block=1,
                options=options,
            )
            t0 = time.perf_counter()
            toys, _ = run_toys(grid, thrower, points, ("sin2w",), **kwargs, options=options)
            seconds = time.perf_counter() - t0
        if toys.tobytes() != reference.tobytes():
            msg = f"the toys on {workers} worker(s) differ from the in-process ones"
            raise SystemExit(msg)
        rows.append((f"LocalCluster, {workers} worker process(es)", workers, seconds, startup))
    print(
        f"| Feldman–Cousins toys ({total} = {len(points)} points × {args.toys}, blocks of {args.block}) | workers | time (s) | toys/s | toys/s per worker | start-up (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, workers, seconds, startup in rows:
        rate = total / seconds
        print(
            f"| {label} | {workers} | {seconds:.2f} | {rate:,.0f} | {rate / workers:,.0f} | {startup:.1f} |"
        )
    one, two = rows[1][2], rows[2][2]
    alone, together = ceiling(grid, thrower, points, kwargs)
    print(
        f"\n1 → 2 workers: {one / two:.2f}× faster; toys bit-identical in-process and on 1 and 2 "
        f"workers. The machine's ceiling now: two in-process copies at once do "
        f"{2 * alone / together:.2f}× the work of one alone ({alone:.2f} s alone, {together:.2f} s together)"
    )


if __name__ == "__main__":
    main()
