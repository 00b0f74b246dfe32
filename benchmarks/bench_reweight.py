"""Factorised flux reweighting against a per-universe reweight-and-histogram loop, same data, same run.

    python3 benchmarks/bench_reweight.py --events 10000000 --universes 100

Events are drawn from the sns-csi generator layout (flux bins over three flavours, 7 reco × 1
truth bins) or synthetic; both paths fill the selected-signal histograms of every universe,
and the benchmark checks they agree to 1e-12 before it reports the speed-up.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from farm.reweight.flux import apply_flux_universes, flux_tensors, reweight_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--universes", type=int, default=100)
    parser.add_argument("--flux-bins", type=int, default=40)
    parser.add_argument("--reco-bins", type=int, default=20)
    parser.add_argument("--truth-bins", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    n, u = args.events, args.universes
    f, i, j = args.flux_bins, args.reco_bins, args.truth_bins
    w0 = rng.random(n)
    flux_bin = rng.integers(0, f, n).astype(np.int32)
    reco = rng.integers(-1, i, n)
    truth = rng.integers(0, j, n)
    signal = rng.random(n) < 0.8
    selected = rng.random(n) < 0.7
    ratio = 1.0 + 0.1 * rng.standard_normal((u, f))

    # warm-up on a few events: compiles the numba kernel outside the timing
    flux_tensors(
        w0[:1000],
        flux_bin[:1000],
        reco[:1000],
        truth[:1000],
        signal[:1000],
        selected[:1000],
        n_flux=f,
        n_reco=i,
        n_truth=j,
    )
    t0 = time.perf_counter()
    tensors = flux_tensors(
        w0, flux_bin, reco, truth, signal, selected, n_flux=f, n_reco=i, n_truth=j
    )
    fact, _, _ = apply_flux_universes(ratio, tensors)
    t_fact = time.perf_counter() - t0

    t0 = time.perf_counter()
    loop = reweight_loop(ratio, w0, flux_bin, reco, truth, signal, selected, n_reco=i, n_truth=j)
    t_loop = time.perf_counter() - t0

    worst = float(np.max(np.abs(fact - loop) / np.maximum(np.abs(loop), 1e-300)))
    assert worst < 1e-12, worst
    print("| path | events × universes | time (s) | G event-universes/s |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| per-universe loop | {n:,} × {u} | {t_loop:.2f} | {n * u / t_loop / 1e9:.2f} |")
    print(
        f"| factorised (tensor once, R @ C) | {n:,} × {u} | {t_fact:.2f} | {n * u / t_fact / 1e9:.2f} |"
    )
    print(f"\nspeed-up {t_loop / t_fact:.0f}×; largest relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
