"""Every table of a HEPData release of a farm result, built with hepdata_lib (no file I/O here).

Per flux convention (:mod:`farm.release.measurement`): the measured cross section as quoted (and
the seed's flux share for truth binned in E_ν), its covariances, its universes, the response
(and A_C). Shared (:mod:`farm.release.inputs`): the nominal flux of each flavour at the run's
resolution, the flux of every universe, event counts and the attached models' chi-square.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from farm.release.blocks import About, about_result, hepdata_lib
from farm.release.inputs import flux_references, input_tables
from farm.release.measurement import measurement_tables
from farm.release.rounding import Precision

__all__ = ["release_tables"]


def release_tables(
    ds: xr.Dataset,
    *,
    precision: Precision | None = None,
    inspire: str | None = None,
    year: int | None = None,
) -> tuple[list[Any], About]:
    """Every table of the release, as hepdata_lib ``Table`` objects in release order, and what
    the release is about (its names, target, precision)."""
    from farm.analysis.quoted import with_quoted

    ds = with_quoted(ds)
    lib = hepdata_lib()
    about = about_result(ds, precision or Precision(), inspire=inspire, year=year)
    refs = flux_references(ds, about)
    tables = [
        *measurement_tables(lib, ds, about, "real", refs),
        *measurement_tables(lib, ds, about, "nominal", refs),
        *input_tables(lib, ds, about),
    ]
    return tables, about
