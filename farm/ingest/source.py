"""What every input reader of ``farm ingest`` provides, and the error it raises.

A reader opens one input file (a GENIE gst ROOT tree, a HepMC3 event file) and exposes it as
*fields*: flat per-event numeric arrays under names such as ``Ev``, ``neu`` or ``wght``. The
mapping file turns fields into event-store columns; readers know nothing about the store.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["EventFile", "IngestError", "SourceInfo", "file_checksum"]

CHECKSUM_ALGORITHM = "blake2b-128"


class IngestError(ValueError):
    """An input file cannot be ingested: unreadable, missing a tree or branches, or bad values.

    The message names the file and, where there is one, the tree.
    """

    def __init__(self, detail: str, *, path: str | os.PathLike[str], tree: str | None = None):
        self.detail = detail
        self.path = os.fspath(path)
        self.tree = tree
        where = self.path if tree is None else f"{self.path}, tree {tree!r}"
        super().__init__(f"{where}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.detail, self.path, self.tree))


def _rebuild(detail: str, path: str, tree: str | None) -> IngestError:
    return IngestError(detail, path=path, tree=tree)


@dataclass(frozen=True, kw_only=True)
class SourceInfo:
    """What a reader learned about one input file before reading its events."""

    path: Path
    format: str
    """``gst`` or ``hepmc3``."""
    container: str | None
    """The tree read (gst); ``None`` where the file is one stream of events (HepMC3)."""
    n_events: int
    fields: tuple[str, ...]
    """Every field the file offers."""
    field_units: Mapping[str, str] = field(default_factory=dict)
    """Units the file itself declares for some fields (HepMC3 events carry theirs)."""
    generator: Mapping[str, str] = field(default_factory=dict)
    """Generator name and version where the file records them."""
    flux_averaged_xsec: float | None = None
    """Flux-averaged total cross section as the file records it (NuHepMC G.C.5), in ``xsec_unit``
    per ``xsec_target_scale``."""
    xsec_unit: str | None = None
    """NuHepMC.Units.CrossSection.Unit where the file states it (pb, 1e-38 cm2, …)."""
    xsec_target_scale: str | None = None
    """NuHepMC.Units.CrossSection.TargetScale where the file states it (PerTargetNucleon, …)."""
    beam_histograms: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    """NuHepMC G.C.7 beam energy distributions per beam PDG code: ``edges``, ``contents``,
    ``energy_unit``, ``rate_unit``, ``per_width``."""


class EventFile(Protocol):
    """One opened input file: its description, and its fields for any range of events."""

    @property
    def info(self) -> SourceInfo: ...

    def read(self, fields: Sequence[str], start: int, stop: int) -> dict[str, np.ndarray]:
        """``{field: 1-D array}`` of events ``[start, stop)``."""
        ...

    def close(self) -> None: ...


def file_checksum(path: str | os.PathLike[str], block_bytes: int = 1 << 23) -> str:
    """BLAKE2b-128 of a file's bytes (RFC 7693), read in blocks: the identity of an input file.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "x"
    ...     _ = p.write_bytes(b"")
    ...     file_checksum(p)
    'cae66941d9efbd404e4d88758ea67670'
    """
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        while block := file.read(block_bytes):
            digest.update(block)
    return digest.hexdigest()
