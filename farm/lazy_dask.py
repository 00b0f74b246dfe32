"""Build xarray datasets without importing ``dask.array`` when no dask array can exist.

xarray asks, for every array put into a dataset, whether it is a ``dask.array.Array``; to get
that class it imports ``dask.array`` the first time (0.2–0.5 s, a tenth of a warm in-process
``farm run``, which holds only numpy arrays). :func:`defer_dask_array_import` gives xarray a
stand-in class whose ``isinstance`` check answers exactly as ``dask.array.Array``'s: false while
``dask.array`` is not imported (no dask array can exist then), and ``dask.array.Array``'s own
answer once it is. Nothing else changes: xarray still sees dask as installed, with its version,
and a dataset of dask arrays (``xr.open_zarr`` with chunks, a LocalCluster run) stays lazy.
Nor is dask itself imported (≈ 0.06 s more) to learn that a numpy array is not a dask
collection, which xarray asks of every index it builds.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import numpy as np

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
    dask is not installed, or where xarray keeps its lookups otherwise than this knows. dask
    itself is not imported either (≈ 0.06 s): xarray's entry asks for its module and version
    only to handle dask arrays, and imports it then.
    """
    if "dask.array" in sys.modules:
        return
    try:
        from xarray.namedarray import pycompat
    except ImportError:
        return
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    kind = getattr(pycompat, "DuckArrayModule", None)
    if not isinstance(cache, dict) or not isinstance(kind, type) or "dask" in cache:
        return
    if importlib.util.find_spec("dask") is None:
        return

    class _LazyDask(kind):  # type: ignore[misc,valid-type]
        """xarray's entry for dask, importing dask only when its module or version is asked."""

        @property
        def module(self) -> Any:
            return importlib.import_module("dask")

        @property
        def version(self) -> Any:
            from packaging.version import Version

            return Version(importlib.import_module("dask").__version__)

    entry = _LazyDask.__new__(_LazyDask)
    entry.type = (DaskArray,)
    entry.available = True
    cache["dask"] = entry
    _answer_numpy_arrays_without_dask()


def _answer_numpy_arrays_without_dask() -> None:
    """xarray asks ``dask.base.is_dask_collection`` about every index it builds, importing dask
    (≈ 0.06 s) to be told that a numpy array is not one; the answer for ``numpy.ndarray`` itself
    is given here (it has no ``__dask_graph__``), anything else still goes to dask."""
    from xarray.namedarray import utils

    original = getattr(utils, "is_dask_collection", None)
    if original is None or getattr(original, "_farm_numpy_answered", False):
        return

    def is_dask_collection(x: object) -> bool:
        if type(x) is np.ndarray:
            return False
        return bool(original(x))

    is_dask_collection._farm_numpy_answered = True  # type: ignore[attr-defined]
    utils.is_dask_collection = is_dask_collection
