"""The in-process runner: config → event store (generated if missing) → partial sums → dataset.

No dask: blocks are processed in order in this process and reduced by the same fixed tree the
distributed runner uses, so both give the same numbers bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

from farm.accumulate import block_partial_sums, columns_needed, tree_reduce
from farm.analysis.pipeline import Prepared, finish, prepare
from farm.config import FarmConfig, store_path
from farm.samples.generate import generate_store
from farm.store.blocks import iter_blocks
from farm.store.reader import EventStore

__all__ = ["REDUCTION_ARITY", "ensure_store", "run_inprocess"]

REDUCTION_ARITY = 8

Log = Callable[[str], None]


def ensure_store(
    cfg: FarmConfig, *, log: Log = print, on_shard: Callable[[int, int], None] | None = None
) -> EventStore:
    """Open the sample's event store, generating it first if it does not exist."""
    path = store_path(cfg)
    if not path.exists():
        log(
            f"event store {path} does not exist: generating {cfg.generation.events:,} events of {cfg.sample.name}"
        )
        generate_store(cfg, path, on_shard=on_shard)
    store = EventStore.open(path)
    return store


def reduce_inprocess(
    prep: Prepared, store: EventStore, *, on_block: Callable[[int], None] | None = None
):
    columns = columns_needed(prep.spec)

    def parts():
        for block, cols in iter_blocks(store, columns, prep.block_rows):
            yield block_partial_sums(cols, prep.spec)
            if on_block is not None:
                on_block(block + 1)

    return tree_reduce(parts(), REDUCTION_ARITY)


def run_inprocess(
    cfg: FarmConfig,
    *,
    universes: int | None = None,
    log: Log = print,
    on_block: Callable[[int, int], None] | None = None,
) -> xr.Dataset:
    """Run the whole analysis of ``cfg`` in this process and return the result dataset."""
    store = ensure_store(cfg, log=log)
    prep = prepare(cfg, store, universes=universes)
    total = prep.n_blocks
    sums = reduce_inprocess(
        prep, store, on_block=(lambda done: on_block(done, total)) if on_block else None
    )
    return finish(prep, sums)
