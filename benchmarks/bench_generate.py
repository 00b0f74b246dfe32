"""Event-generation speed per core: events generated and written per second, one process.

    python3 benchmarks/bench_generate.py --events 4194304

Prints a markdown table: for each sample, the rate of generating rows in memory and of the
whole ``farm generate`` path (generation + checksums + compressed sharded zarr writes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from farm.config import load_config
from farm.samples.generate import generate_rows, generate_store, sample_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=4_194_304)
    parser.add_argument(
        "--samples",
        nargs="*",
        default=["sns-csi", "sns-lar", "reactor-ge", "reactor-ibd", "nuscope-lar"],
    )
    args = parser.parse_args()
    print("| sample | events | generate rows (M ev/s) | generate + write store (M ev/s) |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.samples:
        cfg = load_config(
            name, **{"generation.events": args.events, "generation.shard_size": 4_194_304}
        )
        model = sample_model(cfg)
        generate_rows(cfg, 0, 65_536, model=model)  # warm caches (tables, imports)
        t0 = time.perf_counter()
        generate_rows(cfg, 0, args.events, model=model)
        rows_rate = args.events / (time.perf_counter() - t0) / 1e6
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate_store(cfg, Path(tmp) / "s.zarr")
            store_rate = args.events / (time.perf_counter() - t0) / 1e6
        print(f"| {name} | {args.events:,} | {rows_rate:.2f} | {store_rate:.2f} |", flush=True)


if __name__ == "__main__":
    main()
