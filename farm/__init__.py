"""farm: a distributed Monte-Carlo systematics farm for neutrino cross-section measurements."""

from __future__ import annotations

# the theorist's one-line call, farm.compare(result, model); its module keeps heavy imports lazy
from farm.compare import compare

# and against a published HEPData record (NUISANCE conventions): farm.compare_record(record, model)
from farm.compare_record import compare_record

__version__ = "0.1.0"
__all__ = ["__version__", "compare", "compare_record"]
