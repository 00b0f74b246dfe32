"""Errors raised by event stores, each naming the store, shard and column it is about.

Every message reads ``<store>: shard <i>, column '<name>': <what is wrong>; <what to do>`` so a
failed work item on a remote worker can be traced to the file that needs attention. The errors
pickle with their fields, so they survive the trip back from a dask worker.
"""

from __future__ import annotations

import os

__all__ = ["ChecksumError", "CorruptShardError", "SchemaError", "StoreError"]


class StoreError(ValueError):
    """An event store is missing, malformed, or was given data it cannot hold.

    Parameters
    ----------
    detail
        What is wrong, without the location (that is added from the fields).
    store
        Path of the store (its final path, also while it is being written).
    shard
        Index of the shard concerned, if any.
    column
        Name of the column concerned, if any.
    hint
        What to do about it; defaults to the class's ``default_hint``.
    """

    default_hint: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        store: str | os.PathLike[str],
        shard: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.detail = detail
        self.store = os.fspath(store)
        self.shard = shard
        self.column = column
        if hint is None and self.default_hint is not None:
            hint = self.default_hint.format(store=self.store)
        self.hint = hint
        super().__init__(self._message())

    def _message(self) -> str:
        where = [self.store]
        if self.shard is not None:
            where.append(f"shard {self.shard}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        message = f"{', '.join(where)}: {self.detail}"
        return f"{message}; {self.hint}" if self.hint else message

    def __reduce__(self) -> tuple[object, ...]:
        fields = {
            "store": self.store,
            "shard": self.shard,
            "column": self.column,
            "hint": self.hint,
        }
        return (_rebuild, (type(self), self.detail, fields))


def _rebuild(cls: type[StoreError], detail: str, fields: dict[str, object]) -> StoreError:
    return cls(detail, **fields)  # type: ignore[arg-type]


class SchemaError(StoreError):
    """The store's layout, version, columns or dtypes do not match what this farm reads."""

    default_hint = "regenerate the store with `farm generate` (or re-ingest it) so it follows this farm's schema"


class CorruptShardError(StoreError):
    """A shard file is missing, truncated or unreadable."""

    default_hint = (
        "run `farm inspect --verify {store}` to list the damaged shards, "
        "then regenerate the store with `farm generate`"
    )


class ChecksumError(CorruptShardError):
    """A shard's data no longer matches the checksum recorded when it was written."""
