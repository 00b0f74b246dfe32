"""Shared pydantic base for configuration sections: strict, frozen, unknown keys rejected."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A configuration table. Unknown keys are errors, values are validated once and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
