"""Read a HEPData record: a submission directory, its ``submission.yaml``, or a ``.zip`` /
``.tar.gz`` / ``.tgz`` archive of one (as hepdata.net serves it, or as ``farm export`` writes it).

Tables are read as they are written: independent and dependent variables, their qualifiers, bins,
values and errors. References between tables follow the NUISANCE HEPData conventions
(docs/hepdata.md): ``[<type>:][<id>][/]<resource>[:<qualifier>]``, where a reference without a
record id points into the same record, ``resource`` names a table (its file stem, or its name in
``submission.yaml``) and ``qualifier`` names one dependent variable of it.
"""

from __future__ import annotations

import re
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = ["Column", "Record", "Table", "open_record", "split_reference"]

_ARCHIVES = (".zip", ".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True, kw_only=True, eq=False)
class Column:
    """One variable of a table: header, qualifiers, and its values row by row."""

    name: str
    units: str
    qualifiers: dict[str, str]
    rows: list[dict[str, Any]]

    @property
    def binned(self) -> bool:
        return bool(self.rows) and "low" in self.rows[0] and "high" in self.rows[0]

    def numbers(self, what: str) -> np.ndarray:
        """The values as float64, naming the table's column on anything that is not a number."""
        out = np.empty(len(self.rows))
        for k, row in enumerate(self.rows):
            try:
                out[k] = float(row["value"])
            except (KeyError, TypeError, ValueError):
                msg = f"{what}: row {k} of '{self.name}' holds {row.get('value')!r}, not a number"
                raise ValueError(msg) from None
        return out

    def edges(self, what: str) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of a binned variable."""
        if not self.binned:
            msg = f"{what}: '{self.name}' is not binned (no low/high)"
            raise ValueError(msg)
        lo = np.array([float(r["low"]) for r in self.rows])
        hi = np.array([float(r["high"]) for r in self.rows])
        return lo, hi

    def errors(self, what: str) -> np.ndarray:
        """(rows,) per-row uncertainty, every listed error added in quadrature (an asymmetric
        one as the mean of its two sides; ``"5%"`` relative to the value)."""
        values = self.numbers(what)
        out = np.zeros(len(self.rows))
        for k, row in enumerate(self.rows):
            for err in row.get("errors", []) or []:
                if "symerror" in err:
                    size = _error_size(err["symerror"], values[k])
                elif "asymerror" in err:
                    both = err["asymerror"]
                    size = 0.5 * (
                        abs(_error_size(both.get("plus", 0), values[k]))
                        + abs(_error_size(both.get("minus", 0), values[k]))
                    )
                else:
                    continue
                out[k] = np.hypot(out[k], size)
        return out

    def has_errors(self) -> bool:
        return any(row.get("errors") for row in self.rows)


def _error_size(value: Any, central: float) -> float:
    text = str(value).strip()
    if text.endswith("%"):
        return abs(float(text[:-1]) * central / 100.0)
    return abs(float(text))


@dataclass(frozen=True, kw_only=True, eq=False)
class Table:
    name: str
    description: str
    data_file: str
    independent: list[Column]
    dependent: list[Column]

    def column(self, name: str) -> Column:
        for col in self.dependent:
            if col.name == name:
                return col
        names = ", ".join(repr(c.name) for c in self.dependent)
        msg = f"table '{self.name}' ({self.data_file}) has no variable '{name}'; it has {names}"
        raise ValueError(msg)

    def typed(self, variable_type: str) -> list[Column]:
        return [c for c in self.dependent if c.qualifiers.get("variable_type") == variable_type]


@dataclass(frozen=True, kw_only=True, eq=False)
class Record:
    """A HEPData record read from disk: its tables by name and by data file."""

    source: Path
    directory: Path
    header: dict[str, Any]
    tables: dict[str, Table]
    _by_stem: dict[str, str] = field(default_factory=dict)

    def table(self, resource: str) -> Table:
        """A table by name, data file, or data-file stem (what a reference's resource names)."""
        if resource in self.tables:
            return self.tables[resource]
        key = self._by_stem.get(resource) or self._by_stem.get(Path(resource).stem)
        if key is not None:
            return self.tables[key]
        names = ", ".join(repr(n) for n in self.tables)
        msg = f"{self.source}: no table '{resource}' in the record; its tables are {names}"
        raise ValueError(msg)

    def resolve(self, reference: str, *, want: str) -> tuple[Table, Column]:
        """The table and variable a reference points to: the named variable, else the first whose
        ``variable_type`` is ``want``."""
        resource, qualifier = split_reference(reference, source=str(self.source))
        table = self.table(resource)
        if qualifier:
            return table, table.column(qualifier)
        typed = table.typed(want)
        if not typed:
            msg = (
                f"{self.source}: reference '{reference}' points to table '{table.name}', which has "
                f"no variable with variable_type={want}"
            )
            raise ValueError(msg)
        return table, typed[0]

    def measurements(self) -> list[tuple[Table, Column]]:
        """Every (table, variable) typed as a cross-section measurement, in record order."""
        kinds = ("cross_section_measurement", "composite_cross_section_measurement")
        return [
            (t, c)
            for t in self.tables.values()
            for c in t.dependent
            if c.qualifiers.get("variable_type") in kinds
        ]


_REFERENCE = re.compile(r"^(?:(?P<type>[A-Za-z-]+):)?(?P<id>\d+(?:v\d+)?)$")


def split_reference(reference: str, *, source: str = "record") -> tuple[str, str]:
    """(resource, qualifier) of an intra-record reference; another record is refused."""
    text = reference.strip()
    if "/" in text:
        head, _, text = text.partition("/")
        if head:
            msg = (
                f"{source}: reference '{reference}' points into another record ({head}); "
                "download that record and give the tables it needs in this one"
            )
            raise ValueError(msg)
    elif _REFERENCE.match(text):
        msg = f"{source}: reference '{reference}' names a whole record, not a table in it"
        raise ValueError(msg)
    resource, _, qualifier = text.partition(":")
    return resource.strip(), qualifier.strip()


def _columns(items: list[dict[str, Any]] | None) -> list[Column]:
    out = []
    for item in items or []:
        header = item.get("header", {}) or {}
        qualifiers = {}
        for q in item.get("qualifiers", []) or []:
            qualifiers[str(q["name"])] = str(q["value"])
        out.append(
            Column(
                name=str(header.get("name", "")),
                units=str(header.get("units", "") or ""),
                qualifiers=qualifiers,
                rows=list(item.get("values", []) or []),
            )
        )
    return out


def _locate(path: Path, scratch: Path) -> Path:
    """The directory holding submission.yaml, unpacking an archive under ``scratch``."""
    if path.is_file() and path.name.endswith(_ARCHIVES):
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                archive.extractall(scratch)  # a record the user chose to read
        else:
            with tarfile.open(path) as archive:
                archive.extractall(scratch, filter="data")
        found = sorted(scratch.rglob("submission.yaml"), key=lambda p: len(p.parts))
        if not found:
            msg = f"{path}: the archive holds no submission.yaml; give a HEPData submission"
            raise ValueError(msg)
        return found[0].parent
    if path.is_file() and path.name.endswith((".yaml", ".yml")):
        return path.parent
    if path.is_dir() and (path / "submission.yaml").is_file():
        return path
    msg = (
        f"{path} is not a HEPData record: give a directory with submission.yaml, the "
        "submission.yaml itself, or a .zip/.tar.gz archive of one"
    )
    raise ValueError(msg)


def open_record(path: str | Path) -> Record:
    """Read every table of a HEPData record (directory, submission.yaml or archive).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not a HEPData submission, or a data file it names is missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        msg = f"{path} not found; give a HEPData record (directory, submission.yaml or archive)"
        raise FileNotFoundError(msg)
    with tempfile.TemporaryDirectory(prefix="farm-record-") as scratch:
        return _read(path, _locate(path, Path(scratch)))


def _read(path: Path, directory: Path) -> Record:
    submission = (
        directory / "submission.yaml" if path.is_dir() or path.name.endswith(_ARCHIVES) else path
    )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with submission.open(encoding="utf-8") as handle:
        documents = [d for d in yaml.load_all(handle, Loader=loader) if d]
    header: dict[str, Any] = {}
    tables: dict[str, Table] = {}
    by_stem: dict[str, str] = {}
    for document in documents:
        if "data_file" not in document:
            header |= document
            continue
        name = str(document.get("name", ""))
        data_path = directory / str(document["data_file"])
        if not data_path.is_file():
            msg = f"{submission}: table '{name}' names data file {document['data_file']}, which is missing"
            raise ValueError(msg)
        with data_path.open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=loader) or {}
        tables[name] = Table(
            name=name,
            description=str(document.get("description", "")),
            data_file=str(document["data_file"]),
            independent=_columns(data.get("independent_variables")),
            dependent=_columns(data.get("dependent_variables")),
        )
        by_stem[Path(str(document["data_file"])).stem] = name
        by_stem[str(document["data_file"])] = name
    if not tables:
        msg = f"{submission}: the record has no tables"
        raise ValueError(msg)
    home = directory if path.is_dir() or not path.name.endswith(_ARCHIVES) else path.parent
    return Record(source=path, directory=home, header=header, tables=tables, _by_stem=by_stem)
