"""Precomputed per-event universe weights (``kind = "weights"`` systematics).

Stored beside an event store's columns as weight sets (:mod:`farm.store.weights`), attached at
ingest (``[[weights]]``) or later without rewriting the store (:mod:`farm.weights.attach`,
``farm weights add``), and filled in one compiled pass per block
(:mod:`farm.reweight.weightsets`).
"""

from __future__ import annotations

from farm.weights.attach import add_weight_set, read_friend

__all__ = ["add_weight_set", "read_friend"]
