"""The user's cache folder for farm: ``$XDG_CACHE_HOME/farm``, else ``~/.cache/farm``.

Generated event stores (:func:`farm.config.store_dir`), the measured rates of the cost model
(:func:`farm.costmodel.cache_file`) and the records of verified shards
(:func:`farm.store.trust.records_dir`) live under it unless their own variable says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["farm_cache_dir"]


def farm_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/farm`` when that is an absolute path (the XDG rule), else ``~/.cache/farm``."""
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache) if cache and Path(cache).is_absolute() else Path.home() / ".cache"
    return base / "farm"
