"""The models :func:`farm.compare` accepts, and how each becomes a callable ``σ(E_ν, flavor)``.

A model is a callable ``model(enu_mev, flavor)`` (or ``model(enu_mev, x, flavor)`` for dσ/dX), a
``"module:callable"`` string, or a table of σ(E_ν) interpolated linearly: a
:class:`ModelTable`, a mapping of columns (a pandas DataFrame works) or a CSV file with columns
``enu_mev``, ``xsec_cm2`` and optionally ``flavor``. :func:`resolve_model` turns any of them into
the callable that :mod:`farm.compare` folds with the published flux. Pure numpy and the standard
library: no xarray, no dask.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TABLE_COLUMNS",
    "ModelTable",
    "read_model_table",
    "resolve_model",
]

TABLE_COLUMNS = ("enu_mev", "xsec_cm2", "flavor")
_TABLE_SUFFIXES = (".csv", ".txt", ".dat")
_ALL_FLAVORS = "*"


def _flavor_name(value: object) -> str:
    """A flavour as the farm names it, from its name (``numu``) or its PDG code (``14``)."""
    from farm.store.schema import FLAVOR_PDG

    text = str(value).strip()
    by_code = {str(code): name for name, code in FLAVOR_PDG.items() if code}
    if text in by_code:
        return by_code[text]
    if text in FLAVOR_PDG and text != "none":
        return text
    allowed = ", ".join(f"{n} ({c})" for n, c in FLAVOR_PDG.items() if c)
    msg = f"unknown flavour {text!r} in the model table; allowed: {allowed}"
    raise ValueError(msg)


@dataclass(frozen=True, kw_only=True, eq=False)
class ModelTable:
    """σ(E_ν) tabulated per flavour (or for every flavour), interpolated linearly.

    Called like any plug-in model, ``table(enu_mev, flavor) -> σ`` in cm² per target. Energies
    outside the table are refused rather than extrapolated: a comparison names the range its flux
    needs, and a table that starts at threshold should carry a row with ``xsec_cm2 = 0`` there.
    """

    curves: Mapping[str, tuple[np.ndarray, np.ndarray]]
    """Per flavour (or ``"*"`` for all), increasing energies in MeV and σ in cm² per target."""

    @classmethod
    def from_columns(
        cls,
        enu_mev: Any,
        xsec_cm2: Any,
        flavor: Any = None,
    ) -> ModelTable:
        """A table from its columns; without ``flavor`` the curve serves every flavour."""
        energy = np.asarray(enu_mev, dtype=np.float64).ravel()
        sigma = np.asarray(xsec_cm2, dtype=np.float64).ravel()
        if energy.size != sigma.size or energy.size < 2:
            msg = f"a model table needs at least two rows with enu_mev and xsec_cm2 each; got {energy.size} and {sigma.size} values"
            raise ValueError(msg)
        if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(sigma))):
            msg = "the model table has NaN or infinite values; give finite enu_mev and xsec_cm2"
            raise ValueError(msg)
        if (sigma < 0).any():
            msg = "the model table has a negative xsec_cm2; a cross section is >= 0"
            raise ValueError(msg)
        if flavor is None:
            labels = np.full(energy.size, _ALL_FLAVORS, dtype=object)
        else:
            labels = np.array([_flavor_name(f) for f in np.asarray(flavor).ravel()], dtype=object)
            if labels.size != energy.size:
                msg = f"the model table's flavor column has {labels.size} values for {energy.size} rows"
                raise ValueError(msg)
        curves = {}
        for name in dict.fromkeys(labels):
            rows = labels == name
            order = np.argsort(energy[rows], kind="stable")
            e, s = energy[rows][order], sigma[rows][order]
            if e.size < 2 or np.any(np.diff(e) <= 0):
                msg = f"the model table for {name if name != _ALL_FLAVORS else 'all flavours'} needs at least two distinct energies and no repeated enu_mev"
                raise ValueError(msg)
            curves[name] = (e, s)
        return cls(curves=curves)

    def curve(self, flavor: str) -> tuple[np.ndarray, np.ndarray]:
        if flavor in self.curves:
            return self.curves[flavor]
        if _ALL_FLAVORS in self.curves:
            return self.curves[_ALL_FLAVORS]
        msg = f"the model table has no rows for flavour {flavor!r} (it has {', '.join(sorted(self.curves))}); add rows with flavor = {flavor}"
        raise ValueError(msg)

    def __call__(self, enu_mev: np.ndarray, flavor: str) -> np.ndarray:
        e, s = self.curve(flavor)
        x = np.asarray(enu_mev, dtype=np.float64)
        outside = (x < e[0]) | (x > e[-1])
        if outside.any():
            msg = (
                f"the table covers {e[0]:g}–{e[-1]:g} MeV for {flavor}, but the flux needs σ at "
                f"{x[outside].min():g}–{x[outside].max():g} MeV: extend the table (a row at "
                "threshold with xsec_cm2 = 0 where the cross section vanishes)"
            )
            raise ValueError(msg)
        return np.interp(x, e, s)


def read_model_table(path: str | Path) -> ModelTable:
    """Read a CSV model table: columns ``enu_mev``, ``xsec_cm2`` and optionally ``flavor``.

    Lines starting with ``#`` are comments. ``flavor`` holds farm names (``nue``, ``numu``,
    ``numubar``, ``nuebar``) or PDG codes; without it one curve serves every flavour.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"model table {path} not found; give a CSV file with columns enu_mev, xsec_cm2[, flavor]"
        raise FileNotFoundError(msg)
    with path.open(newline="", encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    header = [h.strip() for h in reader.fieldnames or ()]
    unknown = sorted(set(header) - set(TABLE_COLUMNS))
    missing = [c for c in TABLE_COLUMNS[:2] if c not in header]
    if unknown or missing:
        msg = f"model table {path}: columns must be enu_mev, xsec_cm2 and optionally flavor; got {', '.join(header) or 'none'}"
        raise ValueError(msg)
    rows = [{k.strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    energy, sigma = [], []
    for number, r in enumerate(rows, start=1):
        try:
            energy.append(float(r["enu_mev"]))
            sigma.append(float(r["xsec_cm2"]))
        except ValueError:  # float()'s message quotes the text: not shown
            msg = f"model table {path}: data row {number}: enu_mev and xsec_cm2 must be numbers"
            raise ValueError(msg) from None
    flavor = [r["flavor"] for r in rows] if "flavor" in header else None
    try:
        return ModelTable.from_columns(energy, sigma, flavor)
    except ValueError as err:
        msg = f"model table {path}: {err}"
        raise ValueError(msg) from None


def resolve_model(model: object) -> tuple[Callable[..., np.ndarray], str]:
    """(the callable, a default name) from a callable, ``"module:callable"`` or a table.

    A table is a :class:`ModelTable`, a mapping of columns (``enu_mev``, ``xsec_cm2`` and
    optionally ``flavor``; a pandas DataFrame works), or the path of a CSV file.
    """
    from farm.analysis.predict import load_model

    if isinstance(model, ModelTable):
        return model, "table"
    if isinstance(model, Path) or (
        isinstance(model, str) and (model.endswith(_TABLE_SUFFIXES) or Path(model).is_file())
    ):
        return read_model_table(model), Path(model).stem
    if isinstance(model, str):
        if ":" not in model:
            msg = f"model {model!r}: give module:callable (e.g. farm.models:cevns_csi_tree_helm), a callable, or a CSV table"
            raise ValueError(msg)
        return load_model(model), model.rpartition(":")[2]
    if isinstance(model, Mapping) or hasattr(model, "columns"):
        columns = model  # a mapping or a DataFrame: both index by column name
        present = [c for c in TABLE_COLUMNS if c in columns]
        return ModelTable.from_columns(
            *(columns[c] for c in present[:2]),  # type: ignore[index]
            columns["flavor"] if "flavor" in present else None,  # type: ignore[index]
        ), "table"
    if callable(model):
        return model, str(getattr(model, "__name__", "model"))  # type: ignore[return-value]
    msg = f"cannot use {type(model).__name__} as a model: give a callable model(enu_mev, flavor), module:callable, or a table"
    raise ValueError(msg)
