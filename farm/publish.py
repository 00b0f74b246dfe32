"""Publish a result dataset atomically: written beside the target, then renamed into place.

A reader sees the previous complete result or the new complete one, never a mix; if writing
fails (full disk, error while encoding), the previous result is untouched.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from pathlib import Path

import xarray as xr

__all__ = ["publish_dataset"]


def publish_dataset(ds: xr.Dataset, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        with warnings.catch_warnings():
            # consolidated metadata is not in the zarr v3 spec yet; xarray readers expect it
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            ds.to_zarr(tmp, mode="w-", consolidated=True, zarr_format=3)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:12]}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)
    return out
