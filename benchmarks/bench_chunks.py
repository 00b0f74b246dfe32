"""Every universe chunk of a shipped configuration, timed as a worker runs it, optionally against
another tree of farm (issue 16: the real work items, not the kernels alone).

    python3 benchmarks/bench_chunks.py --events 10000000 --repeat 3
    python3 benchmarks/bench_chunks.py --events 10000000 --repeat 3 --baseline /tmp/old-tree

One process per tree and round, on one store generated first (page cache warm, shards verified
once and trusted after, kernels loaded): the flux chunk, then every other chunk in the plan's
order, each chunk's items one after the other (``workers.tasks.compute_item``: read, bin once per
block, fill) — the order of an in-process run on one thread, so the knob and bootstrap chunks
reuse the flux chunk's bins as they do there. Each chunk's figure is the best of ``--repeat``
passes. With ``--baseline DIR`` (a tree with ``farm/`` and ``workers/``, e.g. ``git archive``
of an earlier commit) both trees run in alternating rounds and the table gives each chunk's
time in both and their ratio: the numbers are compared too (every item's sums, bit for bit;
the run fails if they differ while both trees have the same ``farm.plan.KERNEL_VERSION``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _measure(sample: str, events: int, store: Path, repeat: int) -> dict[str, object]:
    """(in this process, with whichever farm PYTHONPATH gives) each chunk's best time and a
    digest of every item's sums."""
    import dataclasses

    import numpy as np

    from farm.config import load_config
    from farm.runner import ensure_store, plan_for
    from workers import tasks
    from workers.warmup import warm_up_kernels

    cfg = load_config(sample, **{"generation.events": events, "sample.store": str(store)})
    opened = ensure_store(cfg, log=lambda _: None)
    warm_up_kernels()
    prep, plan = plan_for(cfg, opened)
    names = prep.universes.names
    owner = prep.universes.systematic_index

    def run(chunk: int) -> list[object]:
        return [
            tasks.compute_item(str(prep.store_path), prep.spec, item, prep.block_rows)
            for item in plan.items_of_chunk(chunk)
        ]

    digest = hashlib.sha256()
    for chunk in range(len(plan.chunks)):  # warm: page cache, bins, verified shards
        for result in run(chunk):
            for field in dataclasses.fields(result):
                value = getattr(result, field.name)
                parts = [value] if isinstance(value, np.ndarray) else []
                if value is not None and dataclasses.is_dataclass(value):
                    parts = [getattr(value, f.name) for f in dataclasses.fields(value)]
                for part in parts:
                    if isinstance(part, np.ndarray):
                        digest.update(part.dtype.str.encode() + part.tobytes())
    rows = []
    for chunk, (lo, hi) in enumerate(plan.chunks):
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            run(chunk)
            best = min(best, time.perf_counter() - start)
        label = "flux" if chunk == 0 else names[owner[prep.spec.event_universes[lo]]]
        rows.append({"chunk": chunk, "systematic": label, "universes": hi - lo, "seconds": best})
    from farm.plan import KERNEL_VERSION

    return {
        "rows": rows,
        "digest": digest.hexdigest(),
        "events": opened.n_events,
        "kernel": KERNEL_VERSION,
    }


def _child(tree: str | None, args: argparse.Namespace, store: Path) -> dict[str, object]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = tree
    command = [sys.executable, str(HERE), "--child", "--sample", args.sample]
    command += ["--events", str(args.events), "--repeat", str(args.repeat), "--store", str(store)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench_chunks child ({tree or 'this tree'}) failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="sns-csi")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="passes per chunk (best of)")
    parser.add_argument("--rounds", type=int, default=2, help="with --baseline: alternations")
    parser.add_argument("--baseline", default=None, help="another tree of farm to compare")
    parser.add_argument("--store", type=Path, default=None, help="reuse (or create) this store")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.sample, args.events, args.store, args.repeat)))
        return
    os.environ.setdefault("FARM_VERIFIED_DIR", tempfile.mkdtemp(prefix="bench-chunks-trust-"))
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or Path(tmp) / f"{args.sample}.zarr"
        trees = [None] if args.baseline is None else [args.baseline, None]
        runs: dict[str | None, list[dict[str, object]]] = {tree: [] for tree in trees}
        loads = []
        for _ in range(args.rounds if args.baseline else 1):
            for tree in trees:
                loads.append(os.getloadavg()[0])
                runs[tree].append(_child(tree, args, store))
    _report(args, runs, loads)


def _report(args, runs, loads) -> None:
    this = runs[None]
    n = this[0]["events"]
    best = {
        tree: [min(r["rows"][c]["seconds"] for r in rs) for c in range(len(rs[0]["rows"]))]
        for tree, rs in runs.items()
    }
    print(
        f"{n:,} {args.sample} events, one process per tree and round, best of {args.repeat} "
        f"passes per chunk; load average {min(loads):.1f}–{max(loads):.1f}\n"
    )
    header = "| chunk | systematic | universes | time (s) | M events/s |"
    rule = "| ---: | --- | ---: | ---: | ---: |"
    if args.baseline:
        header += " baseline (s) | baseline / this |"
        rule += " ---: | ---: |"
    print(header)
    print(rule)
    for c, row in enumerate(this[0]["rows"]):
        t = best[None][c]
        line = f"| {c} | {row['systematic']} | {row['universes']} | {t:.3f} | {n / t / 1e6:.1f} |"
        if args.baseline:
            b = best[args.baseline][c]
            line += f" {b:.3f} | {b / t:.2f} |"
        print(line)
    total = sum(best[None])
    line = f"| | **all chunks** | | **{total:.3f}** | |"
    if args.baseline:
        base = sum(best[args.baseline])
        line += f" **{base:.3f}** | **{base / total:.2f}** |"
    print(line)
    if args.baseline:
        same = {r["digest"] for rs in runs.values() for r in rs}
        kernels = {tree: rs[0]["kernel"] for tree, rs in runs.items()}
        if len(same) == 1:
            print("\nevery item's sums: bit-identical in both trees")
        elif kernels[None] != kernels[args.baseline]:
            print(
                f"\nthe sums differ, as the kernel versions say they may "
                f"({kernels[args.baseline]} → {kernels[None]}: farm.plan.KERNEL_VERSION)"
            )
        else:
            print("\nevery item's sums: DIFFER between the trees, at the same kernel version")
            raise SystemExit(1)


if __name__ == "__main__":
    main()
