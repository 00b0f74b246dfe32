"""Write a farm result as a HEPData submission, and validate it with hepdata-validator.

The submission is a directory with ``submission.yaml`` (the record's metadata and one document
per table), one YAML data file per table (named after its table, so that the NUISANCE HEPData
conventions' references ``table:variable`` resolve; docs/hepdata.md), ``analysis.cxx`` (the truth
definition as ProSelecta functions) and ``farm_provenance.json`` (the configuration and the
provenance of the result), plus the same files as a ``.tar.gz`` beside it, ready for upload. The
record links its INSPIRE and arXiv entries (placeholders until ``--inspire`` / ``--arxiv`` give
them). It is written under a temporary name and renamed into place once complete and valid.

hepdata_lib builds the tables (:mod:`farm.release.tables`) and their YAML form; the files are
written here rather than by ``Submission.create_files``, which writes its archive into the current
directory, and with libyaml's emitter where available (pure-Python YAML is ≈10× slower on the
per-universe tables).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tarfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr
import yaml

from farm.release.blocks import About, hepdata_lib
from farm.release.rounding import Precision
from farm.release.snippet import SNIPPET_FILE, snippet
from farm.release.tables import release_tables

__all__ = ["HepdataRelease", "data_file_name", "validate_submission", "write_hepdata"]

PROVENANCE_FILE = "farm_provenance.json"
CONVENTIONS_URL = "https://github.com/NUISANCEMC/HEPData"
ARXIV_PLACEHOLDER = "YYMM.NNNNN"
_PROVENANCE_ATTRS = (
    "sample",
    "config_hash",
    "universe_set_checksum",
    "input_checksums",
    "store_generation_hash",
    "software_version",
    "extraction_method",
    "covariance_center",
    "covariance_normalization",
    "weight_policy",
    "n_events",
    "universe_seed",
)


@dataclass(frozen=True, kw_only=True)
class HepdataRelease:
    directory: Path
    archive: Path | None
    tables: tuple[str, ...]
    """Table names, in the order of ``submission.yaml``."""


def _comment(ds: xr.Dataset) -> str:
    return (
        f"{ds.attrs.get('title', 'farm result')}: cross section extracted in "
        f"{ds.sizes['universe']} systematic universes ({ds.sizes['systematic']} systematics) with "
        f"{ds.attrs.get('extraction_method', '?')}, in two flux conventions (real- and "
        "nominal-flux-averaged), each with its covariances and the values in every universe, "
        "so that a prediction computed with the flux of every universe gets the joint "
        "measured-predicted covariance. Produced by farm "
        f"{ds.attrs.get('software_version', '?')}; configuration and provenance in "
        f"{PROVENANCE_FILE}."
    )


def _provenance(ds: xr.Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {k: ds.attrs[k] for k in _PROVENANCE_ATTRS if k in ds.attrs}
    out["config"] = json.loads(ds.attrs.get("config", "{}"))
    return json.loads(json.dumps(out, default=str))


def _write_files(
    ds: xr.Dataset, tables: list[Any], about: About, directory: Path, arxiv: str | None
) -> None:
    lib = hepdata_lib()
    directory.mkdir(parents=True)
    submission = lib.Submission()
    submission.comment = _comment(ds)
    submission.add_additional_resource(
        "Configuration and provenance of the farm result (JSON)", PROVENANCE_FILE
    )
    submission.add_additional_resource(
        "Truth definition: the selection and projection functions (ProSelecta, C++) that every "
        "measurement's selectfunc and projectfunc qualifiers name",
        SNIPPET_FILE,
        file_type="ProSelecta",
    )
    placeholder = (
        ""
        if about.names.inspire != "INSPIRE"
        else " (placeholder: farm export hepdata --inspire ID)"
    )
    submission.add_link(
        f"INSPIRE record{placeholder}", f"https://inspirehep.net/literature/{about.names.inspire}"
    )
    paper = arxiv or ARXIV_PLACEHOLDER
    submission.add_link(
        f"arXiv:{paper}{'' if arxiv else ' (placeholder: farm export hepdata --arxiv ID)'}",
        f"https://arxiv.org/abs/{paper}",
    )
    submission.add_link("Follows the NUISANCE HEPData conventions", CONVENTIONS_URL)
    (directory / PROVENANCE_FILE).write_text(json.dumps(_provenance(ds), indent=2) + "\n")
    config = json.loads(ds.attrs.get("config", "{}"))
    generator = str(config.get("sample", {}).get("generator", ""))
    (directory / SNIPPET_FILE).write_text(
        snippet(
            about.sample,
            generator,
            about.target,
            about.truth,
            list(about.signal_flavors),
            about.names,
        )
    )
    header = {
        "comment": submission.comment,
        "data_license": submission.get_license(),
        "additional_resources": submission.additional_resources,
        "record_ids": [
            {"type": "inspire", "id": about.names.inspire},
            {"type": "arXiv", "id": f"arXiv:{paper}"},
        ],
    }
    with (directory / "submission.yaml").open("w", encoding="utf-8") as handle:
        _dump(header, handle, explicit_start=True, allow_unicode=True)
    for table in tables:
        _write_table(table, directory)


def _dump(data: Any, handle: Any, **options: Any) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    # make_dict builds defaultdicts; a JSON round trip keeps plain dicts, lists and the same floats
    plain = json.loads(json.dumps(data))
    yaml.dump(plain, handle, Dumper=dumper, default_flow_style=False, sort_keys=False, **options)


def data_file_name(table_name: str) -> str:
    """The data file of a table: its name in lower case, runs of other characters as ``_``."""
    return re.sub(r"[^a-z0-9.-]+", "_", table_name.lower()).strip("_") + ".yaml"


def _write_table(table: Any, directory: Path) -> None:
    """One data file, and the table's document appended to submission.yaml."""
    data: dict[str, list[Any]] = {"independent_variables": [], "dependent_variables": []}
    for variable in table.variables:
        side = "independent_variables" if variable.is_independent else "dependent_variables"
        data[side].append(variable.make_dict())
    name = data_file_name(table.name)
    with (directory / name).open("w", encoding="utf-8") as handle:
        _dump(data, handle)
    document = {
        "name": table.name,
        "description": table.description,
        "location": table.location,
        "keywords": [{"name": k, "values": v} for k, v in table.keywords.items()],
        "data_file": name,
    }
    with (directory / "submission.yaml").open("a", encoding="utf-8") as handle:
        _dump(document, handle, explicit_start=True, allow_unicode=True)


def _archive(directory: Path, archive: Path) -> None:
    tmp = archive.with_name(f".{archive.name}.tmp-{uuid.uuid4().hex[:8]}")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(directory.iterdir()):
            tar.add(path, arcname=path.name)
    os.replace(tmp, archive)


def validate_submission(path: str | Path) -> list[str]:
    """hepdata-validator's messages for a submission directory or archive (empty when valid).

    Checks ``submission.yaml`` against the submission schema and every data file it names
    against the data schema (lengths, errors, independent-variable values), and that every file
    in the directory is referenced.
    """
    hepdata_lib()  # imports hepdata_validator with its deprecation warnings contained
    from hepdata_validator.full_submission_validator import FullSubmissionValidator

    path = Path(path)
    validator = FullSubmissionValidator()
    with warnings.catch_warnings():
        # jsonschema's RefResolver is deprecated; the validator leaves the data files it reads open
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", ResourceWarning)
        if path.is_dir():
            valid = validator.validate(directory=str(path))
        else:
            valid = validator.validate(archive=str(path))
    messages = [f"{file}: {m.message}" for file, found in validator.messages.items() for m in found]
    if not valid and not messages:
        messages = [f"{path}: invalid (no message from hepdata-validator)"]
    return messages


def write_hepdata(
    ds: xr.Dataset,
    out: str | Path,
    *,
    digits: int | None = None,
    error_digits: int = 3,
    inspire: str | None = None,
    arxiv: str | None = None,
    overwrite: bool = False,
    archive: bool = True,
) -> HepdataRelease:
    """Write the HEPData submission of ``ds`` to directory ``out`` (and ``out.tar.gz``).

    ``digits`` None rounds every number to what its uncertainty justifies (``error_digits``
    significant digits of each bin's uncertainty, :mod:`farm.release.rounding`); an integer keeps
    that many significant digits of every number (17: exactly). ``inspire`` and ``arxiv`` replace
    the placeholders of the record's links and of the snippet's function names.

    Refuses an existing ``out`` unless ``overwrite``. The submission is validated with
    hepdata-validator before it is moved into place; a failure raises ValueError with the
    validator's messages and leaves ``out`` as it was.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        msg = f"{out} exists; choose another --out or pass --overwrite"
        raise FileExistsError(msg)
    precision = Precision(digits=digits, error_digits=error_digits)
    tables, about = release_tables(ds, precision=precision, inspire=inspire)
    with staged_submission(out) as staging:
        _write_files(ds, tables, about, staging, arxiv)
    return released(out, [t.name for t in tables], archive=archive)


@contextlib.contextmanager
def staged_submission(out: Path) -> Iterator[Path]:
    """A staging folder beside ``out``: what the block writes there is validated with
    hepdata-validator and then replaces ``out``; on any failure ``out`` is left as it was and the
    staging folder is removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield staging
        problems = validate_submission(staging)
        if problems:
            msg = "the HEPData submission is not valid:\n" + "\n".join(problems)
            raise ValueError(msg)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(out, old)
            os.rename(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def released(out: Path, tables: list[str], *, archive: bool) -> HepdataRelease:
    """The release written to ``out``, archived as ``out.tar.gz`` if ``archive``."""
    archive_path = out.with_name(f"{out.name}.tar.gz") if archive else None
    if archive_path is not None:
        _archive(out, archive_path)
    return HepdataRelease(directory=out, archive=archive_path, tables=tuple(tables))
