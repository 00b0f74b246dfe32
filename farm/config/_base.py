"""Shared pydantic base for configuration sections: strict, frozen, unknown keys rejected.

Strict: a boolean is not a count (``throws = true`` is refused, not read as 1), a string is not a
number (``throws = "100"`` is refused), and an integer is not a string; NaN and ±inf are refused
in every number. TOML has arrays and no tuples, so fixed-length keys are annotated with
:data:`AsTuple`, which turns the array into a tuple before the strict check.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = ["AsTuple", "Section"]


def _list_to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


AsTuple = BeforeValidator(_list_to_tuple)
"""``Annotated[tuple[float, float], AsTuple]``: a TOML array of fixed length."""


class Section(BaseModel):
    """A configuration table. Unknown keys are errors, values are validated once and frozen."""

    # a key's docstring (its description, units in brackets at the end) is its schema
    # description: docs/config.md is generated from it (farm.config.reference)
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        strict=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )
