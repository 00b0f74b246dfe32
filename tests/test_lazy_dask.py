"""A result dataset is built without importing dask.array, and dask arrays still behave.

Each check runs in a fresh interpreter: the test process has long imported dask.array, where
:func:`farm.lazy_dask.defer_dask_array_import` rightly does nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import numpy as np
import xarray as xr
from farm.lazy_dask import defer_dask_array_import

defer_dask_array_import()
xr.Dataset(
    {"a": ("x", np.arange(3.0)), "b": (("x", "y"), np.ones((3, 2)))},
    coords={"x": np.arange(3), "x_lo": ("x", np.zeros(3))},  # an index: xarray asks dask of it
)
imported_before = "dask.array" in sys.modules
dask_imported_before = "dask" in sys.modules

import dask
import dask.array as da
from xarray.namedarray import pycompat

# xarray fills a masked dask array's masked values with NaN only if it knows it for a dask array
masked = da.ma.masked_array(da.arange(4.0, chunks=2), mask=[False, True, False, False])
v = xr.DataArray(masked, dims="x")
print(json.dumps({
    "imported_before": imported_before,
    "dask_imported_before": dask_imported_before,
    "version_seen": str(pycompat.mod_version("dask")) == dask.__version__,
    "lazy": isinstance(v.data, da.Array),
    "values": [None if x != x else x for x in v.values.tolist()],
}))
"""


def _run(script: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_numpy_datasets_do_not_import_dask_array_and_dask_arrays_are_still_recognised() -> None:
    seen = _run(SCRIPT)
    assert seen["imported_before"] is False
    assert seen["dask_imported_before"] is False  # not even dask itself (≈ 0.06 s)
    assert seen["version_seen"] is True  # xarray's version checks still see dask's own
    assert seen["lazy"] is True
    assert seen["values"] == [0.0, None, 2.0, 3.0]  # the masked value became NaN, as without


def test_without_the_deferral_the_same_script_gives_the_same_dask_behaviour() -> None:
    seen = _run(SCRIPT.replace("defer_dask_array_import()\n", "", 1))
    assert seen["imported_before"] is True  # what the deferral saves
    assert seen["version_seen"] is True
    assert seen["lazy"] is True
    assert seen["values"] == [0.0, None, 2.0, 3.0]
