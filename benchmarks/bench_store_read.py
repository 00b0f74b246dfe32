"""Read throughput of an event store against ``np.load``, both from page cache.

Writes a CEvNS-like store of N events (the columns an SNS CEvNS sample has: event_id, enu_true,
flavor, channel, is_signal, selected, w_nominal, recoil_mev, time_us, reco_pe; 47 bytes/event) in a
temporary directory with :class:`farm.store.StoreWriter`, saves the same columns as ``.npy``,
reads everything once to warm the page cache, then times (best of ``--repeat``) reading all
columns through :class:`farm.store.EventStore` and through ``np.load``, in the same run.
With ``--codecs`` it also writes Blosc-compressed copies with zarr and times zarr's own reader
on each, to show why farm stores columns uncompressed.

Why uncompressed. Measured here (2-core VM, 10^7 events = 470 MB, page cache, best of 7):

    | read path                                    | GB/s | vs np.load |
    |----------------------------------------------|------|------------|
    | np.load                                      | 3.7  | 1.00       |
    | EventStore.iter_shards (validate=True)       | 3.1  | 0.84       |
    | EventStore.read_columns (validate=False)     | 3.7  | 1.00       |
    | zarr arr[:], uncompressed                    | 1.1  | 0.29       |
    | zarr arr[:], Blosc lz4 + shuffle (0.66 size) | 0.9  | 0.25       |
    | zarr arr[:], Blosc zstd-1 + shuffle (0.61)   | 0.8  | 0.22       |
    | Blosc lz4 decode alone, 2 threads, no I/O    | 3.7  | 1.01       |

    StoreWriter wrote 0.2–0.5 GB/s (5–11 M events/s), well above generation (≈1 M/s/core).

From page cache, reading is a memory copy. Blosc lz4 decompression alone costs as much as
``np.load``'s whole read while keeping both cores busy, and saves only a third of the bytes (the
float64 energies and weights barely compress), so no codec can beat storing the bytes as they
are. zarr's generic read path copies each chunk three times (file → bytes → chunk → output) and
reaches under a third of ``np.load`` with any codec, so ``EventStore`` bypasses it: it takes
each chunk's offset from the zarr v3 ``sharding_indexed`` index (crc32c-checked) and reads the
chunk with one ``readinto`` straight into the output array, as ``np.load`` does. Validation
(finite, non-negative ``enu_true`` and ``w_nominal``) costs the remaining 15%. On a network
filesystem, where bytes cost more than CPU, Blosc may win; ``EventStore.open``'s layout check is
the one place to extend.

Run from the repository root: ``PYTHONPATH=. python3 benchmarks/bench_store_read.py --events 1e7 --codecs``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc, blosc

from farm.store import EventStore, StoreWriter
from farm.store.schema import DEFAULT_CHUNK_ROWS, DEFAULT_SHARD_ROWS, FLAVOR_PDG, Channel

__all__ = ["cevns_columns", "main"]

_MUON_MASS_MEV = 105.6583755


def cevns_columns(n_events: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Columns shaped like an SNS CEvNS sample (values plausible, not physics-accurate)."""
    rng = np.random.default_rng(seed)
    flavor = rng.choice(
        np.array([FLAVOR_PDG["numu"], FLAVOR_PDG["nue"], FLAVOR_PDG["numubar"]], dtype=np.int32),
        n_events,
    )
    enu = np.where(
        flavor == FLAVOR_PDG["numu"], 29.79, rng.uniform(0.0, _MUON_MASS_MEV / 2, n_events)
    )
    recoil = rng.exponential(0.012, n_events)
    return {
        "event_id": np.arange(n_events, dtype=np.uint64),
        "enu_true": enu,
        "flavor": flavor,
        "channel": np.full(n_events, Channel.CEVNS, dtype=np.int8),
        "is_signal": np.ones(n_events, dtype=bool),
        "selected": rng.random(n_events) < 0.6,
        "w_nominal": rng.uniform(0.5, 1.5, n_events) * 1e-6,
        "recoil_mev": recoil,
        "time_us": rng.exponential(2.197, n_events).astype(np.float32),
        "reco_pe": np.maximum(recoil * 1e3 * 13.35 * 0.08 + rng.normal(0, 2, n_events), 0.0).astype(
            np.float32
        ),  # photoelectrons are >= 0 (farm.store.values)
    }


def best_of(repeat: int, read: Callable[[], object]) -> float:
    """Fastest wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return min(times)


def write_store(
    path: Path, columns: dict[str, np.ndarray], shard_rows: int, chunk_rows: int
) -> float:
    n_events = len(columns["event_id"])
    start = time.perf_counter()
    with StoreWriter.create(
        path, n_events=n_events, columns=list(columns), shard_rows=shard_rows, chunk_rows=chunk_rows
    ) as writer:
        for index, (lo, hi) in enumerate(writer.shard_ranges):
            writer.write_shard(index, {name: values[lo:hi] for name, values in columns.items()})
    return time.perf_counter() - start


def write_zarr_copy(
    path: Path, columns: dict[str, np.ndarray], compressor: object, shard_rows: int, chunk_rows: int
) -> None:
    group = zarr.open_group(path, mode="w")
    for name, values in columns.items():
        array = group.create_array(
            name,
            shape=values.shape,
            dtype=values.dtype,
            chunks=(chunk_rows,),
            shards=(shard_rows,),
            compressors=compressor,
            fill_value=0,
        )
        array[:] = values


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


Row = tuple[str, float]
"""A measured read path: label and best time in seconds for all columns."""


def time_farm_and_numpy(root: Path, columns: dict[str, np.ndarray], repeat: int) -> list[Row]:
    """np.load against EventStore on the same columns, both warm in page cache."""
    names = list(columns)
    n_events = len(columns["event_id"])
    for name, values in columns.items():
        np.save(root / f"{name}.npy", values)
    store = EventStore.open(root / "cevns.zarr")
    unvalidated = EventStore.open(root / "cevns.zarr", validate=False)

    def read_npy() -> dict[str, np.ndarray]:
        # all columns held at once, like the read_columns result it is compared with
        return {name: np.load(root / f"{name}.npy") for name in names}

    def iter_shards() -> None:
        for _ in store.iter_shards():
            pass

    def read_all() -> dict[str, np.ndarray]:
        return unvalidated.read_columns(None, 0, n_events)

    # warm the page cache, and check the store returns what was written
    got = unvalidated.read_columns(None, 0, n_events)
    assert all(np.array_equal(got[name], columns[name]) for name in names)
    del got
    read_npy()
    return [
        ("np.load", best_of(repeat, read_npy)),
        ("EventStore.iter_shards (validate=True)", best_of(repeat, iter_shards)),
        ("EventStore.read_columns (validate=False)", best_of(repeat, read_all)),
        ("np.load (again, same run)", best_of(repeat, read_npy)),
    ]


def time_codecs(
    root: Path, columns: dict[str, np.ndarray], repeat: int, shard_rows: int, chunk_rows: int
) -> tuple[list[Row], dict[str, int]]:
    """zarr's own reader on the farm store and on Blosc-compressed copies; their sizes."""

    def zarr_reader(path: Path) -> Callable[[], None]:
        arrays = [zarr.open_array(path / name, mode="r") for name in columns]

        def read() -> None:
            for array in arrays:
                array[:]

        read()  # warm
        return read

    rows = [("zarr arr[:], uncompressed", best_of(repeat, zarr_reader(root / "cevns.zarr")))]
    sizes = {}
    for label, cname, level in [
        ("Blosc lz4 + shuffle", "lz4", 5),
        ("Blosc zstd-1 + shuffle", "zstd", 1),
    ]:
        codec = zarr.codecs.BloscCodec(cname=cname, clevel=level, shuffle="shuffle")
        path = root / f"{cname}.zarr"
        write_zarr_copy(path, columns, codec, shard_rows, chunk_rows)
        sizes[label] = directory_bytes(path)
        rows.append((f"zarr arr[:], {label}", best_of(repeat, zarr_reader(path))))
    label = f"Blosc lz4 decode alone, {blosc.get_nthreads()} threads, no I/O"
    rows.append((label, best_of(repeat, blosc_decoder(columns, chunk_rows))))
    return rows, sizes


def blosc_decoder(columns: dict[str, np.ndarray], chunk_rows: int) -> Callable[[], None]:
    """Decompression alone: Blosc lz4 chunks decoded into preallocated arrays (no I/O)."""
    codec = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
    encoded = {
        name: [codec.encode(values[i : i + chunk_rows]) for i in range(0, len(values), chunk_rows)]
        for name, values in columns.items()
    }
    outputs = {name: np.empty_like(values) for name, values in columns.items()}

    def decode() -> None:
        for name, chunks in encoded.items():
            out = outputs[name]
            for k, chunk in enumerate(chunks):
                codec.decode(chunk, out=out[k * chunk_rows : (k + 1) * chunk_rows])

    return decode


def print_report(
    n_events: int, total: int, write_s: float, rows: list[Row], sizes: dict[str, int]
) -> None:
    reference = min(seconds for label, seconds in rows if label.startswith("np.load"))
    print(
        f"{n_events:.3g} events, {total / 1e6:.0f} MB; StoreWriter wrote "
        f"{total / write_s / 1e9:.2f} GB/s ({n_events / write_s / 1e6:.1f} M events/s)\n"
    )
    print("| read path | time (s) | GB/s | vs np.load |")
    print("|---|---|---|---|")
    for label, seconds in rows:
        gbps = total / seconds / 1e9
        print(f"| {label} | {seconds:.3f} | {gbps:.2f} | {reference / seconds:.2f} |")
    print("\n| layout | size / raw bytes |")
    print("|---|---|")
    for label, nbytes in sizes.items():
        print(f"| {label} | {nbytes / total:.3f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, default=1e7)
    parser.add_argument("--shard-rows", type=int, default=DEFAULT_SHARD_ROWS)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--codecs", action="store_true", help="also time Blosc-compressed copies")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary directory")
    args = parser.parse_args(argv)

    n_events = int(args.events)
    columns = cevns_columns(n_events)
    total = sum(values.nbytes for values in columns.values())
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        write_s = write_store(root / "cevns.zarr", columns, args.shard_rows, args.chunk_rows)
        sizes = {"farm (uncompressed)": directory_bytes(root / "cevns.zarr")}
        rows = time_farm_and_numpy(root, columns, args.repeat)
        if args.codecs:
            codec_rows, codec_sizes = time_codecs(
                root, columns, args.repeat, args.shard_rows, args.chunk_rows
            )
            rows += codec_rows
            sizes |= codec_sizes
    print_report(n_events, total, write_s, rows, sizes)


if __name__ == "__main__":
    main()
