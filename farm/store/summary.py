"""Summaries of an event store: expected events by channel and flavour (used by ``farm inspect``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from farm.store.reader import EventStore
from farm.store.schema import FLAVOR_PDG, Channel

__all__ = ["StoreSummary", "channel_name", "summarize"]

_FLAVOR_NAME = {v: k for k, v in FLAVOR_PDG.items()}


def channel_name(code: int, declared: dict[int, str] | None = None) -> str:
    """The name of a channel code: a :class:`Channel`, or one the store declared (``channels``)."""
    if declared and code in declared:
        return declared[code]
    try:
        return Channel(code).name
    except ValueError:
        return f"channel {code}"


@dataclass
class Tally:
    generated: int = 0
    expected: float = 0.0
    expected_selected: float = 0.0

    def add(self, w: np.ndarray, selected: np.ndarray) -> None:
        self.generated += int(w.size)
        self.expected += float(w.sum())
        self.expected_selected += float(w[selected].sum())


@dataclass
class StoreSummary:
    total: Tally = field(default_factory=Tally)
    by_channel: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_flavor: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))


def summarize(store: EventStore) -> StoreSummary:
    """Expected events overall, per channel and per flavour, before and after the nominal selection."""
    summary = StoreSummary()
    declared = {int(code): name for name, code in store.attrs.get("channels", {}).items()}
    for _, cols in store.iter_shards(columns=["w_nominal", "selected", "channel", "flavor"]):
        w, sel = cols["w_nominal"], cols["selected"]
        summary.total.add(w, sel)
        for code in np.unique(cols["channel"]):
            m = cols["channel"] == code
            summary.by_channel[channel_name(int(code), declared)].add(w[m], sel[m])
        for code in np.unique(cols["flavor"]):
            m = cols["flavor"] == code
            summary.by_flavor[_FLAVOR_NAME.get(int(code), str(int(code)))].add(w[m], sel[m])
    return summary
