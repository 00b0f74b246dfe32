"""Channel presets of ``farm ingest``: GENIE's process flags and NuHepMC's process IDs.

``[channel] preset = "genie"`` classifies gst events by their flags (GENIE user manual,
arXiv:1510.05494: ``cc``/``nc`` and ``qel``, ``mec``, ``res``, ``dis``, ``coh``);
``preset = "nuhepmc"`` by the process-ID ranges of NuHepMC E.C.1 (Gardiner, Isaacson &
Pickering, arXiv:2310.13211): hundreds give the process (1 low-energy nuclear, 2 quasi-elastic,
3 MEC, 4 resonance, 5 shallow and 6 deep inelastic), X00–X49 charged and X50–X99 neutral current.
A mapping's own ``[[channel.rules]]`` come first; the preset's rules follow; ``default`` last.

Channels a mapping declares itself (``[channel] declare = ["NAME", …]``) get the codes 64, 65, …
in order (:data:`farm.store.schema.USER_CHANNELS`); the store records name → code.
"""

from __future__ import annotations

from typing import Any

from farm.store.schema import USER_CHANNELS, Channel

__all__ = ["BUILTIN_CHANNELS", "PRESETS", "declared_codes", "preset_rules"]

BUILTIN_CHANNELS = tuple(c.name for c in Channel)

PRESETS: dict[str, list[dict[str, Any]]] = {
    "genie": [
        {"channel": "CCQE", "when": {"cc": True, "qel": True}},
        {"channel": "CC_MEC", "when": {"cc": True, "mec": True}},
        {"channel": "CC_RES", "when": {"cc": True, "res": True}},
        {"channel": "CC_DIS", "when": {"cc": True, "dis": True}},
        {"channel": "CC_COH", "when": {"cc": True, "coh": True}},
        {"channel": "CC_OTHER", "when": {"cc": True}},
        {"channel": "NC_EL", "when": {"nc": True, "qel": True}},
        {"channel": "NC_INEL", "when": {"nc": True}},
    ],
    "nuhepmc": [
        {"channel": "CC_OTHER", "when": {"process_id": {"min": 100, "max": 149}}},
        {"channel": "NC_INEL", "when": {"process_id": {"min": 150, "max": 199}}},
        {"channel": "CCQE", "when": {"process_id": {"min": 200, "max": 249}}},
        {"channel": "NC_EL", "when": {"process_id": {"min": 250, "max": 299}}},
        {"channel": "CC_MEC", "when": {"process_id": {"min": 300, "max": 349}}},
        {"channel": "NC_INEL", "when": {"process_id": {"min": 350, "max": 399}}},
        {"channel": "CC_RES", "when": {"process_id": {"min": 400, "max": 449}}},
        {"channel": "NC_INEL", "when": {"process_id": {"min": 450, "max": 499}}},
        {"channel": "CC_DIS", "when": {"process_id": {"min": 500, "max": 549}}},
        {"channel": "NC_INEL", "when": {"process_id": {"min": 550, "max": 599}}},
        {"channel": "CC_DIS", "when": {"process_id": {"min": 600, "max": 649}}},
        {"channel": "NC_INEL", "when": {"process_id": {"min": 650, "max": 699}}},
    ],
}
"""Rules of each preset, in order (first that holds wins); NuHepMC processes from 700 on are
generator-specific and need a rule of the mapping's own (or ``default``)."""


def preset_rules(name: str | None) -> list[dict[str, Any]]:
    """The rules of a preset as mapping tables (validated by the mapping's ChannelRule)."""
    return [] if name is None else [dict(rule) for rule in PRESETS[name]]


def declared_codes(declared: list[str]) -> dict[str, int]:
    """Codes of the channels a mapping declares: 64, 65, … in the order given.

    >>> declared_codes(["NUE_AR40_CC", "NC_GAMMA"])
    {'NUE_AR40_CC': 64, 'NC_GAMMA': 65}
    """
    lo, hi = USER_CHANNELS
    if len(declared) > hi - lo + 1:
        msg = f"at most {hi - lo + 1} channels can be declared; {len(declared)} are"
        raise ValueError(msg)
    clash = sorted(set(declared) & set(BUILTIN_CHANNELS))
    if clash:
        msg = f"declared channel(s) {', '.join(clash)} are built in already; declare only new names"
        raise ValueError(msg)
    if len(set(declared)) != len(declared):
        msg = "declared channels must be distinct"
        raise ValueError(msg)
    bad = [n for n in declared if not n.replace("_", "").isalnum() or not n[0].isalpha()]
    if bad:
        msg = f"declared channel names are letters, digits and _, starting with a letter: {', '.join(bad)}"
        raise ValueError(msg)
    return {name: lo + k for k, name in enumerate(declared)}
