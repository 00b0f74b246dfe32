"""A multi-sample measurement as one HEPData submission, in the NUISANCE conventions' multi-table
form (their "meta-measurement": sub-measurements and one covariance covering them all).

Every sample's own release (:func:`farm.release.tables.release_tables`) is written with its table
names prefixed ``SAMPLE-`` (and every reference to them rewritten; its snippet is
``analysis-SAMPLE.cxx``). Per flux convention ``c`` two tables join them:

- ``covariance-joint-c``: the covariance of the concatenated cross sections as quoted, over the
  global bins (``bin i``, ``bin j``: the samples' bins in the order of ``sub_measurements``),
  with ``total`` (systematics ⊕ statistics), ``stat``, ``syst`` and ``cross_sample`` (the blocks
  between samples, from the shared systematics);
- ``cross_section-joint-c``: ``variable_type = composite_cross_section_measurement`` naming the
  samples' ``SAMPLE-cross_section-c`` tables in ``sub_measurements`` and
  ``covariance-joint-c:total`` in ``errors``; its values are the sub-measurements' concatenated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from farm.release.blocks import hepdata_lib
from farm.release.hepdata import (
    CONVENTIONS_URL,
    PROVENANCE_FILE,
    HepdataRelease,
    _dump,
    _write_table,
    released,
    staged_submission,
)
from farm.release.rounding import Precision
from farm.release.snippet import SNIPPET_FILE, snippet
from farm.release.tables import release_tables

__all__ = ["joint_table_names", "write_joint_hepdata"]

_REFERENCE = re.compile(r"^([^:\[\s]+)(.*)$")


def joint_table_names(convention: str) -> dict[str, str]:
    return {"xsec": f"cross_section-joint-{convention}", "cov": f"covariance-joint-{convention}"}


def _snippet_file(label: str) -> str:
    return f"{SNIPPET_FILE.removesuffix('.cxx')}-{label}.cxx"


def _renamed(value: Any, names: set[str], label: str) -> Any:
    """A qualifier's references to the sample's tables (and its snippet) under their new names."""
    if not isinstance(value, str) or any(ch.isspace() for ch in value):
        return value
    parts = []
    for part in value.split(","):
        m = _REFERENCE.match(part)
        if m is None:
            parts.append(part)
            continue
        head, rest = m.groups()
        if head in names:
            head = f"{label}-{head}"
        elif head == SNIPPET_FILE:
            head = _snippet_file(label)
        parts.append(head + rest)
    return ",".join(parts)


def _sample_tables(
    ds: xr.Dataset, label: str, precision: Precision, inspire: str | None
) -> tuple[list[Any], Any]:
    tables, about = release_tables(ds, precision=precision, inspire=inspire)
    names = {t.name for t in tables}
    for t in tables:
        t.name = f"{label}-{t.name}"
        for v in t.variables:
            for q in v.qualifiers:
                q["value"] = _renamed(q["value"], names, label)
    return tables, about


def _joint_tables(lib: Any, ds: xr.Dataset, about: Any, labels: list[str]) -> list[Any]:
    from farm.release.blocks import index_axis, table, variable

    n = ds.sizes["truth_bin"]
    i, j = np.divmod(np.arange(n * n), n)
    out = []
    for c in ("real", "nominal"):
        names = joint_table_names(c)
        total = np.asarray(ds[f"cov_total_sigma_{c}"].values)
        stat = np.asarray(ds[f"cov_stat_sigma_{c}"].values)
        syst = np.asarray(ds[f"cov_sigma_{c}"].values)
        cross = syst.copy()
        for first, size in zip(
            ds["sample_first_bin"].values, ds["sample_bins"].values, strict=True
        ):
            cross[first : first + size, first : first + size] = 0.0
        scale = float(np.abs(total).max()) or 1.0
        matrices = [
            variable(
                lib,
                label,
                about.precision.matrix(matrix, scale).ravel().tolist(),
                about,
                units="cm^4",
                qualifiers=[("variable_type", "error_table"), ("error_type", "covariance")],
            )
            for label, matrix in (
                ("total", total),
                ("stat", stat),
                ("syst", syst),
                ("cross_sample", cross),
            )
        ]
        out.append(
            table(
                lib,
                names["cov"],
                f"Covariance of the samples' cross sections as quoted ({c}-flux convention), over "
                f"the global bins of {', '.join(labels)} in that order: total (systematics and "
                "statistics), stat, syst, and cross_sample, the blocks between samples (from the "
                "systematics the samples share, thrown once for all).",
                [
                    index_axis(lib, "bin i", i.tolist(), about),
                    index_axis(lib, "bin j", j.tolist(), about),
                    *matrices,
                ],
                about,
            )
        )
        sigma = np.asarray(ds[f"sigma_{c}"].values)
        sub = ",".join(f"{label}-cross_section-{c}" for label in labels)
        measured = variable(
            lib,
            "cross_section",
            about.precision.values(sigma, np.sqrt(np.diag(total))).tolist(),
            about,
            qualifiers=[
                ("variable_type", "composite_cross_section_measurement"),
                ("measurement_type", "flux_averaged_differential_cross_section"),
                ("sub_measurements", sub),
                ("errors", f"{names['cov']}:total"),
            ],
        )
        out.append(
            table(
                lib,
                names["xsec"],
                f"The joint measurement ({c}-flux convention): the sub-measurements {sub} "
                f"concatenated, bin k of this table being global bin k of '{names['cov']}'.",
                [index_axis(lib, "bin", list(range(n)), about), measured],
                about,
            )
        )
    return out


def write_joint_hepdata(
    ds: xr.Dataset,
    samples: dict[str, xr.Dataset],
    out: str | Path,
    *,
    digits: int | None = None,
    error_digits: int = 3,
    inspire: str | None = None,
    arxiv: str | None = None,
    overwrite: bool = False,
    archive: bool = True,
) -> HepdataRelease:
    """The HEPData submission of a multi-sample measurement ``ds`` and its samples' results;
    validated with hepdata-validator before it is moved into place (as
    :func:`farm.release.write_hepdata`)."""
    out = Path(out)
    if out.exists() and not overwrite:
        msg = f"{out} exists; choose another --out or pass --overwrite"
        raise FileExistsError(msg)
    lib = hepdata_lib()
    precision = Precision(digits=digits, error_digits=error_digits)
    labels = list(samples)
    tables: list[Any] = []
    abouts = {}
    for label, sample in samples.items():
        sample_tables, abouts[label] = _sample_tables(sample, label, precision, inspire)
        tables += sample_tables
    first = abouts[labels[0]]
    tables = _joint_tables(lib, ds, first, labels) + tables
    with staged_submission(out) as staging:
        staging.mkdir(parents=True)
        submission = lib.Submission()
        submission.comment = (
            f"{ds.attrs.get('title', 'farm joint result')}: the samples {', '.join(labels)} "
            "measured together, systematics they share thrown once for all; each sample's own "
            "tables are prefixed with its name, and the joint tables ('cross_section-joint-<c>', "
            "'covariance-joint-<c>') give the covariance across them. Produced by farm "
            f"{ds.attrs.get('software_version', '?')}; configuration in {PROVENANCE_FILE}."
        )
        submission.add_additional_resource("Configuration and provenance (JSON)", PROVENANCE_FILE)
        for label, about in abouts.items():
            config = json.loads(samples[label].attrs.get("config", "{}"))
            generator = str(config.get("sample", {}).get("generator", ""))
            (staging / _snippet_file(label)).write_text(
                snippet(
                    about.sample,
                    generator,
                    about.target,
                    about.truth,
                    list(about.signal_flavors),
                    about.names,
                )
            )
            submission.add_additional_resource(
                f"Truth definition of {label} (ProSelecta, C++)",
                _snippet_file(label),
                file_type="ProSelecta",
            )
        submission.add_link("Follows the NUISANCE HEPData conventions", CONVENTIONS_URL)
        provenance = {
            "measurement": ds.attrs.get("measurement", ""),
            "config": json.loads(ds.attrs.get("config", "{}")),
            "config_hash": ds.attrs.get("config_hash", ""),
            "software_version": ds.attrs.get("software_version", ""),
        }
        (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, default=str) + "\n")
        inspire_id = first.names.inspire
        header = {
            "comment": submission.comment,
            "data_license": submission.get_license(),
            "additional_resources": submission.additional_resources,
            "record_ids": [
                {"type": "inspire", "id": inspire_id},
                {"type": "arXiv", "id": f"arXiv:{arxiv or 'YYMM.NNNNN'}"},
            ],
        }
        with (staging / "submission.yaml").open("w", encoding="utf-8") as handle:
            _dump(header, handle, explicit_start=True, allow_unicode=True)
        for t in tables:
            _write_table(t, staging)
    return released(out, [t.name for t in tables], archive=archive)
