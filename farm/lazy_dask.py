"""Build xarray datasets without importing ``dask.array`` when no dask array can exist.

xarray asks, for every array put into a dataset, whether it is a ``dask.array.Array``; to get
that class it imports ``dask.array`` the first time (0.2–0.5 s, a tenth of a warm in-process
``farm run``, which holds only numpy arrays). :func:`defer_dask_array_import` gives xarray a
stand-in class whose ``isinstance`` check answers exactly as ``dask.array.Array``'s: false while
``dask.array`` is not imported (no dask array can exist then), and ``dask.array.Array``'s own
answer once it is. Nothing else changes: xarray still sees dask as installed, with its version,
and a dataset of dask arrays (``xr.open_zarr`` with chunks, a LocalCluster run) stays lazy.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["defer_dask_array_import"]


class _DaskArrayType(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        dask_array = sys.modules.get("dask.array")
        return dask_array is not None and isinstance(obj, dask_array.Array)

    def __subclasscheck__(cls, sub: type) -> bool:
        dask_array = sys.modules.get("dask.array")
        return dask_array is not None and issubclass(sub, dask_array.Array)


class DaskArray(metaclass=_DaskArrayType):
    """Stands for ``dask.array.Array`` in ``isinstance`` checks, without importing it."""


def defer_dask_array_import() -> None:
    """Let xarray recognise dask arrays without importing ``dask.array`` until one exists.

    Does nothing where xarray already looked dask up, where ``dask.array`` is imported, where
    dask is not installed, or where xarray keeps its lookups otherwise than this knows.
    """
    if "dask.array" in sys.modules:
        return
    try:
        import dask
        from packaging.version import Version
        from xarray.namedarray import pycompat
    except ImportError:
        return
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    kind = getattr(pycompat, "DuckArrayModule", None)
    if not isinstance(cache, dict) or not isinstance(kind, type) or "dask" in cache:
        return
    entry = kind.__new__(kind)
    entry.module = dask
    entry.version = Version(dask.__version__)
    entry.type = (DaskArray,)
    entry.available = True
    cache["dask"] = entry
