"""A prediction given as bin values (``farm compare RECORD --prediction FILE``).

CSV: one value per bin, in a column ``value`` (optionally beside ``bin``; other columns are
ignored), lines starting with ``#`` are comments, and a comment ``# units: <cross_section_units>``
states the units. YAML: ``{values: [...], units: "...", pre_smeared: false}`` or a plain list.

Values are in the record's units (its ``cross_section_units``); stated units must be the
record's, or the file is refused. The values are the prediction before the record's additional
smearing A_C, which is applied (``pre_smeared: true`` says it already was).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from farm.release.units import parse_units

if TYPE_CHECKING:
    from farm.release.nuisance import Measurement

__all__ = ["read_prediction"]


def _csv(path: Path) -> tuple[np.ndarray, str | None, bool]:
    units = None
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("#"):
            key, _, value = text.lstrip("#").partition(":")
            if key.strip().lower() == "units":
                units = value.strip()
            continue
        if text:
            rows.append(text)
    reader = csv.DictReader(rows)
    header = [h.strip() for h in reader.fieldnames or ()]
    if "value" not in header:
        msg = f"prediction {path}: needs a column 'value' (one row per bin); got {', '.join(header) or 'no header'}"
        raise ValueError(msg)
    records = [{k.strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    if "bin" in header:
        records.sort(key=lambda r: int(r["bin"]))
    try:
        values = np.array([float(r["value"]) for r in records])
    except ValueError as err:
        msg = f"prediction {path}: {err}; every value must be a number"
        raise ValueError(msg) from None
    return values, units, False


def _yaml(path: Path) -> tuple[np.ndarray, str | None, bool]:
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, list):
        data = {"values": data}
    if not isinstance(data, dict) or "values" not in data:
        msg = f"prediction {path}: give a list of values or a mapping with 'values' (and optionally 'units', 'pre_smeared')"
        raise ValueError(msg)
    try:
        values = np.array([float(v) for v in data["values"]])
    except (TypeError, ValueError):
        msg = f"prediction {path}: every entry of 'values' must be a number"
        raise ValueError(msg) from None
    units = data.get("units")
    return values, None if units is None else str(units), bool(data.get("pre_smeared", False))


def read_prediction(path: str | Path, m: Measurement) -> np.ndarray:
    """The prediction of ``m``'s bins from ``path``, A_C applied unless it says pre-smeared.

    Raises
    ------
    ValueError
        For another number of values than bins, units other than the record's, or a file that
        is not a prediction.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"prediction {path} not found; give a CSV (column value) or YAML (values: [...]) file"
        raise FileNotFoundError(msg)
    values, units, pre_smeared = _yaml(path) if path.suffix in (".yaml", ".yml") else _csv(path)
    if values.size != m.n_bins:
        msg = f"prediction {path} has {values.size} values but {m.table} has {m.n_bins} bins; the bin counts do not match"
        raise ValueError(msg)
    if units is not None and not parse_units(units, where=f"prediction {path}: units").same(
        m.units
    ):
        msg = f"prediction {path} is in {units!r} but {m.table} is in {m.units.text!r}; the units do not match: convert the prediction to the record's units"
        raise ValueError(msg)
    if not np.all(np.isfinite(values)):
        msg = f"prediction {path} holds a value that is not finite"
        raise ValueError(msg)
    if m.smearing is not None and not pre_smeared:
        return m.smearing @ values
    return values
