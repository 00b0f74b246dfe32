"""The event-store schema: columns, dtypes, units and channel codes (docs/internals.md §2).

A store is one zarr v3 group per sample. Every column is 1-D, of equal length, chunked and
sharded along events. The columns below are the vocabulary; a store holds all *required*
columns and whichever optional ones its source family produces.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COLUMNS",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_SHARD_ROWS",
    "FLAVOR_PDG",
    "MAX_SHARD_ROWS",
    "REQUIRED_COLUMNS",
    "SCHEMA_VERSION",
    "USER_CHANNELS",
    "Channel",
    "ColumnSpec",
    "check_shard_rows",
    "column_spec",
    "default_chunk_rows",
    "shard_ranges",
]

SCHEMA_VERSION = 2
"""Bump when a column changes meaning, unit or dtype; readers refuse other versions.
2: ``reco_kevee`` in float64; ``selection_threshold`` and ``resolution_z`` added."""


class Channel(enum.IntEnum):
    """Interaction or background kind stored in the ``channel`` column (int8)."""

    CEVNS = 0
    IBD = 1
    CCQE = 2
    """Charged-current quasi-elastic."""
    CC_OTHER = 3
    """Charged current not classified further (the farm's own nuSCOPE generator)."""
    CC_MEC = 4
    """Charged-current meson exchange (2p2h)."""
    CC_RES = 5
    """Charged-current resonance production."""
    CC_DIS = 6
    """Charged-current deep (and shallow) inelastic scattering."""
    CC_COH = 7
    """Charged-current coherent pion production."""
    NC_EL = 8
    """Neutral-current elastic on nucleons (CEvNS, coherent on the nucleus, is ``CEVNS``)."""
    NC_INEL = 9
    """Neutral-current inelastic: resonances, DIS, coherent pions, nuclear excitation."""
    BRN = 10
    """Beam-related (prompt) neutrons."""
    NIN = 11
    """Neutrino-induced neutrons: ν_e CC on the lead shielding."""
    SSB = 12
    """Steady-state, beam-unrelated background (measured off-beam)."""
    ACCIDENTAL = 13
    """Accidental coincidences (reactor IBD, random tags)."""


USER_CHANNELS = (64, 127)
"""Codes a store may give to channels its ingest mapping declares (``[channel.user]``), inclusive;
their names are in the store's ``channels`` attribute."""

FLAVOR_PDG = {"nue": 12, "nuebar": -12, "numu": 14, "numubar": -14, "none": 0}
"""PDG codes in the ``flavor`` column; 0 marks events with no neutrino (BRN, SSB)."""


@dataclass(frozen=True, kw_only=True)
class ColumnSpec:
    name: str
    dtype: np.dtype
    unit: str
    description: str
    required: bool = False


def _spec(
    name: str, dtype: str, unit: str, description: str, *, required: bool = False
) -> ColumnSpec:
    return ColumnSpec(
        name=name, dtype=np.dtype(dtype), unit=unit, description=description, required=required
    )


COLUMNS: dict[str, ColumnSpec] = {
    s.name: s
    for s in (
        _spec("event_id", "uint64", "", "unique, stable event identifier", required=True),
        _spec(
            "source_file",
            "uint16",
            "",
            "ingested stores: the index of the event's input file, in the order given to ingest",
        ),
        _spec(
            "source_entry",
            "uint64",
            "",
            "ingested stores: the event's entry number in its input file (0-based, counting the "
            "events [ingest] keep dropped), which keys friend weight files (--key entry)",
        ),
        _spec(
            "enu_true",
            "float64",
            "MeV",
            "true neutrino energy (0 for non-neutrino events)",
            required=True,
        ),
        _spec("flavor", "int32", "", "PDG code of the neutrino (0: none)", required=True),
        _spec("channel", "int8", "", "farm.store.schema.Channel code", required=True),
        _spec("is_signal", "bool", "", "event belongs to the measured signal", required=True),
        _spec(
            "selected",
            "bool",
            "",
            "passed the nominal efficiency draw and event-level cuts (the observable range is the analysis binning)",
            required=True,
        ),
        _spec(
            "w_nominal",
            "float64",
            "events",
            "expected events for the store's exposure; sum = expected count",
            required=True,
        ),
        _spec("eff_nominal", "float32", "", "nominal detection efficiency used to draw `selected`"),
        # truth kinematics
        _spec(
            "target_a", "int16", "", "mass number of the struck nucleus (0: free nucleon or none)"
        ),
        _spec("recoil_mev", "float64", "MeV", "true nuclear recoil kinetic energy (CEvNS)"),
        _spec("q2_mev2", "float64", "MeV^2", "true four-momentum transfer squared"),
        _spec("plep_mev", "float64", "MeV", "true outgoing charged-lepton momentum"),
        _spec("coslep", "float32", "", "cosine of the lepton angle to the beam"),
        _spec("elep_mev", "float64", "MeV", "true outgoing charged-lepton total energy"),
        # reconstructed observables
        _spec("time_us", "float32", "us", "event time relative to the proton-on-target pulse"),
        _spec("reco_pe", "float32", "PE", "reconstructed photoelectrons"),
        _spec("reco_kevee", "float64", "keVee", "reconstructed electron-equivalent energy"),
        _spec(
            "selection_threshold",
            "float32",
            "readout",
            "the event's own detection threshold in readout units (PE or keVee), drawn from the "
            "efficiency curve: selected when readout − shift >= it (+inf: never, e.g. outside the "
            "time window; −inf: measured off-beam, always)",
        ),
        _spec(
            "resolution_z",
            "float32",
            "",
            "standard-normal draw of the Gaussian energy resolution (keVee readouts)",
        ),
        _spec(
            "reco_energy_mev",
            "float32",
            "MeV",
            "reconstructed energy (visible, or QE-formula E_nu)",
        ),
        _spec("etag_mev", "float32", "MeV", "tagged neutrino energy (nuSCOPE; NaN when untagged)"),
        _spec("tagged", "bool", "", "a parent meson and muon were associated with the event"),
        _spec("vertex_r_cm", "float32", "cm", "radial distance of the vertex from the beam axis"),
    )
}

REQUIRED_COLUMNS = tuple(name for name, s in COLUMNS.items() if s.required)


def column_spec(name: str) -> ColumnSpec:
    """Return the spec of a column, or raise naming the known columns."""
    try:
        return COLUMNS[name]
    except KeyError:
        msg = f"unknown event-store column {name!r}; known columns: {', '.join(COLUMNS)}"
        raise ValueError(msg) from None


# --- layout: how rows are cut into shards and chunks -------------------------------------------

DEFAULT_SHARD_ROWS = 2**23
"""Rows per shard (8 388 608): the unit of work and of writing."""

DEFAULT_CHUNK_ROWS = 2**20
"""Rows per chunk inside a shard (1 048 576): the unit zarr encodes."""

_MIN_DEFAULT_CHUNK_ROWS = 2**16


def shard_ranges(n_events: int, shard_rows: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of the shards of a store; the last one may be short.

    >>> shard_ranges(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    if n_events < 0 or shard_rows < 1:
        msg = f"need n_events >= 0 and shard_rows >= 1, got n_events={n_events}, shard_rows={shard_rows}"
        raise ValueError(msg)
    return [(start, min(start + shard_rows, n_events)) for start in range(0, n_events, shard_rows)]


MAX_SHARD_ROWS = 2**26
"""Most rows per shard (67 108 864): a shard is generated, checked and checksummed in memory,
which at the widest schema row (~100 bytes) is already several GiB."""


def check_shard_rows(shard_rows: int, key: str | None = None) -> int:
    """``shard_rows`` if it is a usable shard size, else a ValueError naming ``key`` (if given:
    a configuration error names its key itself).

    A shard holds 1 to :data:`MAX_SHARD_ROWS` rows, and above 2**20 rows it must be cut into
    chunks of 2**16 to 2**20 rows (a multiple of 65 536 always is).

    >>> check_shard_rows(16_384, "--shard-size")
    16384
    """
    given = "" if key is None else f"{key} = {shard_rows!r}: "
    if isinstance(shard_rows, bool) or not 1 <= shard_rows <= MAX_SHARD_ROWS:
        msg = (
            f"{given}a shard holds 1 to {MAX_SHARD_ROWS:,} rows (it is held in "
            f"memory while written); give a size in that range (the default is {DEFAULT_SHARD_ROWS:,})"
        )
        raise ValueError(msg)
    try:
        default_chunk_rows(shard_rows)
    except ValueError:
        msg = (
            f"{given}a shard above {DEFAULT_CHUNK_ROWS:,} rows is cut into chunks "
            f"of {_MIN_DEFAULT_CHUNK_ROWS:,} to {DEFAULT_CHUNK_ROWS:,} rows, and {shard_rows:,} has no "
            f"divisor in that range; give a multiple of {_MIN_DEFAULT_CHUNK_ROWS:,} (the default is "
            f"{DEFAULT_SHARD_ROWS:,})"
        )
        raise ValueError(msg) from None
    return shard_rows


def default_chunk_rows(shard_rows: int) -> int:
    """The largest divisor of ``shard_rows`` not above ``DEFAULT_CHUNK_ROWS``.

    Chunks must tile a shard exactly. Refuses shard sizes whose best divisor is so small that
    per-chunk overhead would dominate reading (e.g. a large prime).

    >>> default_chunk_rows(2**23), default_chunk_rows(5_000_000), default_chunk_rows(1000)
    (1048576, 1000000, 1000)
    """
    if shard_rows < 1:
        msg = f"shard_rows must be >= 1, got {shard_rows}"
        raise ValueError(msg)
    if shard_rows <= DEFAULT_CHUNK_ROWS:
        return shard_rows
    best = 1
    for d in range(1, int(shard_rows**0.5) + 1):
        if shard_rows % d == 0:
            for divisor in (d, shard_rows // d):
                if best < divisor <= DEFAULT_CHUNK_ROWS:
                    best = divisor
    if best < _MIN_DEFAULT_CHUNK_ROWS:
        msg = (
            f"shard_rows={shard_rows} has no divisor between {_MIN_DEFAULT_CHUNK_ROWS} and "
            f"{DEFAULT_CHUNK_ROWS}; choose a shard size that is a multiple of a power of two "
            f"(the default is {DEFAULT_SHARD_ROWS}) or pass chunk_rows explicitly"
        )
        raise ValueError(msg)
    return best
