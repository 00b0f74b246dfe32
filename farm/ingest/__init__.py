"""Events from outside generators into the event-store schema (docs/internals.md §2).

``farm ingest`` reads GENIE gst ROOT trees (uproot) or NuHepMC/HepMC3 files (pyhepmc) and, as a
TOML mapping file says, writes their events into a farm event store that every later step reads
like a generated one::

    from farm.ingest import ingest
    ingest(["genie.gst.root"], "examples/genie-mapping.toml", "stores/genie.zarr")

Before anything is written every event's target is checked against ``[target]``, the
cross-section units and target scale the file declares are applied, and the expected events are
cross-checked against σ̄ · Φ · N_T from the sample's ``[flux]``, which the store records
(:mod:`farm.ingest.normalise`, :mod:`farm.ingest.scan`; docs/ingest.md).

uproot and pyhepmc are optional (``pip install 'farm[ingest]'``); they are imported when a file
of their format is read.
"""

from __future__ import annotations

from farm.ingest.mapping import IngestMapping, load_mapping, parse_mapping
from farm.ingest.pipeline import FORMATS, guess_format, ingest
from farm.ingest.source import IngestError, SourceInfo

__all__ = [
    "FORMATS",
    "IngestError",
    "IngestMapping",
    "SourceInfo",
    "guess_format",
    "ingest",
    "load_mapping",
    "parse_mapping",
]
