"""Short ``repr`` of the public result objects: what a reader of a notebook cell wants to see
(names, sizes, chi-squares, intervals), never the arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["chi2_text", "interval_text", "lines", "shape_text"]


def chi2_text(r: Any) -> str:
    """``17.84 / 12 (p = 0.121)`` from a :class:`~farm.analysis.chi2.Chi2Result`."""
    if r is None:
        return "—"
    return f"{r.chi2:.4g} / {r.dof} (p = {r.pvalue:.3g})"


def interval_text(lo: float, hi: float) -> str:
    return f"[{lo:.4g}, {hi:.4g}]"


def shape_text(array: Any) -> str:
    """``(123, 12) float64`` for an array, so a repr names it without printing it."""
    a = np.asarray(array)
    return f"{tuple(a.shape)} {a.dtype}"


def lines(head: str, body: Sequence[str]) -> str:
    return "\n".join([head, *(f"  {line}" for line in body)])
