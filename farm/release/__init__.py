"""Release formats for farm results: a HEPData submission (``farm export hepdata``).

Needs the optional extra ``farm[hepdata]`` (hepdata_lib, hepdata-validator).
"""

from __future__ import annotations

from farm.release.hepdata import HepdataRelease, validate_submission, write_hepdata

__all__ = ["HepdataRelease", "validate_submission", "write_hepdata"]
