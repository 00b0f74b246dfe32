"""Reading the result dataset the way every part of the report does: conventions, string
coordinates, the recorded configuration."""

from __future__ import annotations

import json
from typing import Any

import xarray as xr

__all__ = ["CONVENTIONS", "config_of", "labels"]

CONVENTIONS: tuple[str, ...] = ("real", "nominal")


def labels(ds: xr.Dataset, name: str) -> list[str]:
    """A string coordinate as ``str`` (zarr gives StringDType, memory gives object)."""
    return [str(v) for v in ds[name].values]


def config_of(ds: xr.Dataset) -> dict[str, Any]:
    """The validated configuration recorded in the ``config`` attribute ({} if absent)."""
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, json.JSONDecodeError):
        return {}
    return config if isinstance(config, dict) else {}
