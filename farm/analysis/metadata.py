"""Apply the registry of :mod:`farm.analysis.variables` to a result dataset: every variable and
coordinate gets its ``long_name``, ``units`` and ``description``, the unit placeholders filled from
the dataset itself (:func:`units_context`). :func:`describe` refuses a dataset with a variable the
registry does not know, so that a new variable cannot be published without its metadata.
"""

from __future__ import annotations

import json
import re

import xarray as xr

from farm.analysis.variables import CONVENTIONS, FLUENCE, TESTS, VARIABLES, Meta, var_meta

__all__ = [
    "CONVENTIONS",
    "VARIABLES",
    "Meta",
    "annotate",
    "describe",
    "lookup",
    "units_context",
    "var_meta",
]


def _expand() -> dict[str, tuple[str, Meta, dict[str, str]]]:
    """Every concrete name (knobs aside) → (registry key, metadata, placeholder values)."""
    out: dict[str, tuple[str, Meta, dict[str, str]]] = {}
    for key, meta in VARIABLES.items():
        if "{knob}" in key:
            continue
        for c in CONVENTIONS if "{c}" in key else ("",):
            for t in TESTS if "{t}" in key else ("",):
                values = {"c": c, "t": t}
                out[key.format(**values)] = (key, meta, values)
    return out


_CONCRETE = _expand()
_KNOB = re.compile(r"^knob_(?P<knob>.+)$")


def lookup(name: str) -> tuple[Meta, dict[str, str]] | None:
    """The metadata of a concrete variable name and its placeholder values (None if unknown)."""
    if name in _CONCRETE:
        _, meta, values = _CONCRETE[name]
        return meta, values
    match = _KNOB.match(name)
    if match:
        return VARIABLES["knob_{knob}"], {"knob": match["knob"]}
    return None


def _column_unit(column: str) -> str:
    from farm.store.schema import COLUMNS

    spec = COLUMNS.get(column)
    return spec.unit if spec is not None and spec.unit else "1"


def _knob(knob: str, reco_units: str) -> tuple[str, str]:
    """(units, text) of a knob's shift, from farm.config.analysis.KNOBS."""
    from farm.config.analysis import KNOBS

    text = KNOBS.get(knob.split(":")[0], "a knob parameter")  # channel_norm:CC_RES+CC_DIS
    if "in MeV" in text:
        return "MeV", text
    if "readout units" in text:
        return reco_units, text
    return "1", text


def units_context(ds: xr.Dataset) -> dict[str, str]:
    """The dataset's own values of the unit placeholders of :data:`VARIABLES`."""
    from farm.analysis.quoted import QUANTITY_TEXT, _kind, _units

    truth = str(ds.attrs.get("truth_variable", "total"))
    config = json.loads(ds.attrs.get("config", "{}") or "{}")
    observable = str(ds.attrs.get("observable", config.get("binning", {}).get("observable", "")))
    sigma, axis_units, _ = _units(ds)
    kind = _kind(truth)
    return {
        "share": "cm2 per target",
        "share2": "cm4",
        "sigma": sigma,
        "sigma2": f"({sigma})^2",
        "sigma_factor": f"1/{axis_units}" if kind == "kinematic" else "1",
        "truth": "1" if kind == "total" else (axis_units or "1"),
        "truth_variable": "total (one flux-averaged bin)" if kind == "total" else truth,
        "reco": _column_unit(observable),
        "observable": observable or "observable",
        "fluence": FLUENCE,
        "quantity": QUANTITY_TEXT[kind],
    }


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def annotate(attrs: dict, meta: Meta, values: dict[str, str]) -> None:
    """Set ``long_name``, ``units`` and ``description`` of one variable from ``meta``, its
    placeholders filled from ``values``."""
    attrs["long_name"] = _fill(meta.long_name, values)
    attrs["units"] = _fill(meta.units, values)
    attrs["description"] = _fill(meta.description, values)


def describe(ds: xr.Dataset, *, strict: bool = True) -> xr.Dataset:
    """Set ``long_name``, ``units`` and ``description`` of every variable and coordinate of
    ``ds`` from :data:`VARIABLES`, in place; returns ``ds``. Not ``strict``: variables the
    registry does not know are left as they are.

    Raises
    ------
    KeyError
        If ``strict`` and ``ds`` holds a variable the registry does not describe (add it to
        VARIABLES).
    """
    context = units_context(ds)
    unknown = [name for name in ds.variables if lookup(str(name)) is None]
    if unknown and strict:
        msg = (
            f"no metadata for {', '.join(map(str, unknown))}: add them to "
            "farm.analysis.variables.VARIABLES"
        )
        raise KeyError(msg)
    for name in ds.variables:
        found = lookup(str(name))
        if found is None:
            continue
        meta, values = found
        values = values | context
        if "knob" in values:
            values["knob_units"], values["knob_text"] = _knob(values["knob"], context["reco"])
        attrs = ds[name].attrs
        if name in ("truth_bin", "truth_bin_2") and "truth_lo" not in ds.coords:
            attrs |= {
                "long_name": "truth bin",
                "units": "1",
                "description": "index of the one flux-averaged total bin",
            }
            continue
        annotate(attrs, meta, values)
    return ds
