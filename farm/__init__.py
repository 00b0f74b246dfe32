"""farm: a distributed Monte-Carlo systematics farm for neutrino cross-section measurements."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
