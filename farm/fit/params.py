"""Models with named parameters and the parameters a fit varies.

A model with parameters is ``model(enu_mev, flavor, **params) -> σ`` in cm² per target (for dσ/dX
``model(enu_mev, x, flavor, **params)``), e.g. :func:`farm.models.cevns` with ``sin2w`` and
``rn_cs``. :class:`BoundModel` fixes every keyword and is then an ordinary plug-in model that
:func:`farm.analysis.predict.fold_model` folds with a result's flux. Pure Python and numpy.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BoundModel",
    "Parameter",
    "keyword_defaults",
    "parse_fixed",
    "parse_parameter",
]


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """A parameter the fit varies: its name (a keyword of the model), start and allowed range.

    The range [lower, upper] is where χ²(θ) is scanned, where the Feldman–Cousins toys refit,
    and the physical region: an interval that reaches an end of it stops there.
    """

    name: str
    start: float
    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            msg = (
                f"parameter {self.name!r} is not a Python keyword name; give a keyword of the model"
            )
            raise ValueError(msg)
        values = (self.start, self.lower, self.upper)
        if not all(math.isfinite(v) for v in values):
            msg = f"parameter {self.name}: start and range must be finite numbers; got {values}"
            raise ValueError(msg)
        if not self.lower < self.upper:
            msg = f"parameter {self.name}: its range needs lower < upper; got {self.lower:g}:{self.upper:g}"
            raise ValueError(msg)
        if not self.lower <= self.start <= self.upper:
            msg = f"parameter {self.name}: start {self.start:g} lies outside its range {self.lower:g}:{self.upper:g}; give NAME=START:LO:HI with LO <= START <= HI"
            raise ValueError(msg)

    def grid(self, points: int) -> np.ndarray:
        """``points`` evenly spaced values from lower to upper, both included."""
        if points < 3:
            msg = f"a scan of {self.name} needs at least 3 points; got {points}"
            raise ValueError(msg)
        return np.linspace(self.lower, self.upper, points)


def keyword_defaults(model: Callable[..., Any]) -> dict[str, Any]:
    """The model's parameters and their defaults: its keyword-only arguments and those with a
    default, beyond the data arguments ``(enu_mev, flavor)`` or ``(enu_mev, x, flavor)``.

    A keyword-only parameter without a default maps to ``inspect.Parameter.empty``; a model
    taking ``**kwargs`` adds the key ``"**"``.
    """
    try:
        signature = inspect.signature(model)
    except (TypeError, ValueError):
        return {"**": inspect.Parameter.empty}
    out: dict[str, Any] = {}
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            out["**"] = p.empty
        elif p.kind is p.KEYWORD_ONLY or (
            p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty
        ):
            out[p.name] = p.default
    return out


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        msg = f"{what}: {text!r} is not a number"
        raise ValueError(msg) from None


def parse_parameter(text: str, model: Callable[..., Any], name: str = "model") -> Parameter:
    """A :class:`Parameter` from ``NAME``, ``NAME=START``, ``NAME=LO:HI`` or ``NAME=START:LO:HI``.

    A missing range comes from the model's ``fit_ranges`` attribute (a mapping name → (lo, hi));
    a missing start from the keyword's default in the model's signature, else the range's middle.
    """
    key, _, spec = text.partition("=")
    key = key.strip()
    defaults = keyword_defaults(model)
    if key not in defaults and "**" not in defaults:
        known = ", ".join(k for k in defaults if k != "**") or "none"
        msg = f"{name} has no keyword parameter {key!r} (its keywords: {known}); give --param NAME with one of them"
        raise ValueError(msg)
    parts = [p.strip() for p in spec.split(":")] if spec.strip() else []
    what = f"--param {text}"
    if len(parts) > 3:
        msg = f"{what}: give NAME, NAME=START, NAME=LO:HI or NAME=START:LO:HI"
        raise ValueError(msg)
    numbers = [_number(p, what) for p in parts]
    ranges = getattr(model, "fit_ranges", {}) or {}
    if len(numbers) >= 2:
        lower, upper = numbers[-2], numbers[-1]
    elif key in ranges:
        lower, upper = (float(v) for v in ranges[key])
    else:
        msg = f"{what}: {name} declares no range for {key}; give NAME=LO:HI or NAME=START:LO:HI"
        raise ValueError(msg)
    if len(numbers) in (1, 3):
        start = numbers[0]
    else:
        default = defaults.get(key, inspect.Parameter.empty)
        usable = isinstance(default, int | float) and not isinstance(default, bool)
        start = float(default) if usable and lower <= default <= upper else 0.5 * (lower + upper)
    return Parameter(name=key, start=start, lower=lower, upper=upper)


def parse_fixed(
    items: Sequence[str], model: Callable[..., Any], name: str = "model"
) -> dict[str, Any]:
    """``KEY=VALUE`` settings of keywords the fit keeps fixed; VALUE a number if it reads as one."""
    defaults = keyword_defaults(model)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            msg = f"--set {item!r}: give KEY=VALUE"
            raise ValueError(msg)
        if key not in defaults and "**" not in defaults:
            known = ", ".join(k for k in defaults if k != "**") or "none"
            msg = f"--set {item}: {name} has no keyword {key!r} (its keywords: {known})"
            raise ValueError(msg)
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = {"none": None, "true": True, "false": False}.get(value.lower(), value)
    return out


@dataclass(frozen=True, eq=False)
class BoundModel:
    """``model`` with every keyword fixed: a plug-in ``σ(enu_mev, flavor)`` (or dσ/dX)."""

    function: Callable[..., np.ndarray]
    keywords: Mapping[str, Any]

    def __call__(self, *args: Any) -> np.ndarray:
        return self.function(*args, **self.keywords)
