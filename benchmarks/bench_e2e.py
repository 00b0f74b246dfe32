"""End to end: `farm run` on a 2-worker LocalCluster, wall time and peak memory per worker.

    python3 benchmarks/bench_e2e.py --events 100000000 --flux 1000 --continuous 200 --bootstrap 100
    python3 benchmarks/bench_e2e.py --events 10000000 --scale 1 10      # cost against universes

sns-csi with the issue-6 universe mix: ``--flux`` flux universes (10% normalisation and 5% shape),
``--continuous`` continuous-parameter universes split between the neutron radius (a weight knob)
and the quenching (a lateral shift), ``--bootstrap`` MC-statistics replicas. The store is
generated first (timed separately). Peak memory is each worker process's maximum resident set
size (getrusage), read after the run.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import tomllib
from pathlib import Path

from farm.cluster import ClusterOptions, connect
from farm.config import parse_config, resolve_config_path
from farm.runner import ensure_store, run


def _config(events: int, store: Path, flux: int, continuous: int, bootstrap: int):
    data = tomllib.loads(resolve_config_path("sns-csi").read_text())
    data["generation"] |= {"events": events}
    data["sample"]["store"] = str(store)
    half = max(continuous // 2, 1)
    data["systematics"] = [
        {"name": "flux", "kind": "flux", "normalization": 0.10, "shape": 0.05, "throws": flux},
        {
            "name": "radius",
            "kind": "knob",
            "parameter": "cevns_rms_radius",
            "sigma": 0.03,
            "throws": half,
        },
        {
            "name": "quenching",
            "kind": "knob",
            "parameter": "quenching",
            "sigma": 0.05,
            "throws": continuous - half,
        },
        {"name": "mc_statistics", "kind": "bootstrap", "throws": bootstrap},
    ]
    return parse_config(data, source="bench_e2e")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--flux", type=int, default=1000)
    parser.add_argument("--continuous", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", type=float, nargs="*", default=[1.0])
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = Path(tmp) / "store.zarr"
        # the run's own records of verified shards (farm.store.trust), which its workers inherit:
        # a shard one worker verified, the other trusts; never the user's records
        os.environ["FARM_VERIFIED_DIR"] = str(Path(tmp) / "verified")
        t0 = time.perf_counter()
        ensure_store(_config(args.events, store, 1, 2, 1), log=lambda m: None)
        print(f"generated {args.events:,} events in {time.perf_counter() - t0:.0f} s\n")
        print(
            "| events | flux + continuous + bootstrap universes | work items | wall (s) | peak RSS per worker (MiB) |"
        )
        print("| ---: | --- | ---: | ---: | ---: |")
        for scale in args.scale:
            n_flux, n_cont, n_boot = (
                max(round(x * scale), 2) for x in (args.flux, args.continuous, args.bootstrap)
            )
            cfg = _config(args.events, store, n_flux, n_cont, n_boot)
            with connect(
                ClusterOptions(kind="local", workers=args.workers, dashboard=False)
            ) as client:
                t0 = time.perf_counter()
                ds, stats = run(
                    cfg,
                    ClusterOptions(
                        kind="local", scheduler_address=client.scheduler.address, dashboard=False
                    ),
                    log=lambda m: None,
                )
                wall = time.perf_counter() - t0
                peaks = client.run(_peak_rss_mib)
            peak = max(peaks.values())
            print(
                f"| {args.events:,} | {n_flux} + {n_cont} + {n_boot} = {ds.sizes['universe']} | {stats.items} | "
                f"{wall:.1f} | {peak:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
