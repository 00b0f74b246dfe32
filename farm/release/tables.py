"""Every table of a HEPData release of a farm result, built with hepdata_lib (no file I/O here).

Per flux convention (:mod:`farm.release.measurement`): the measured cross section, its
covariances, the cross section in every universe, the smearing (and A_C). Shared
(:mod:`farm.release.inputs`): the nominal flux per flavour, the flux of every universe, event
counts and the attached models' chi-square.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from farm.release.blocks import about_result, hepdata_lib
from farm.release.inputs import input_tables
from farm.release.measurement import measurement_tables

__all__ = ["release_tables"]


def release_tables(ds: xr.Dataset, *, digits: int = 17) -> list[Any]:
    """Every table of the release, as hepdata_lib ``Table`` objects, in release order.

    ``digits`` significant digits are kept (17, the default, keeps every float64 exactly).
    """
    if not 1 <= digits <= 17:
        msg = f"digits must be between 1 and 17 (17 keeps every number exactly); got {digits}"
        raise ValueError(msg)
    lib = hepdata_lib()
    about = about_result(ds, digits)
    return [
        *measurement_tables(lib, ds, about, "real"),
        *measurement_tables(lib, ds, about, "nominal"),
        *input_tables(lib, ds, about),
    ]
