"""Small HEPData records in the NUISANCE conventions' layout, written with hepdata_lib (the writer
experiments use), for the tests of ``farm compare RECORD`` and the shipped theorist's record.

A record holds one or more measurements in E_ν bins (GeV), each with its covariance (or per-bin
errors), optionally an additional smearing A_C, its universes and the flux of each universe, and
a ν_μ probe flux given as a density per GeV (``bin_content_type=count_density``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from farm.release.blocks import hepdata_lib


@dataclass(kw_only=True)
class MeasurementSpec:
    name: str
    edges_gev: Sequence[float]
    values: Sequence[float]
    units: str | None = "1e-38 cm2|PerTargetNucleon"
    """``cross_section_units`` (None: none written)."""
    header_units: str = "10^{-38} cm^2 / nucleon"
    measurement_type: str = "total_cross_section"
    target: str = "Ar"
    covariance: np.ndarray | None = None
    error_type: str = "covariance"
    errors: list[dict[str, Any]] | None = None
    """Per-bin errors as hepdata_lib uncertainties: {"label", "values", "symmetric"}."""
    smearing: np.ndarray | None = None
    universes: np.ndarray | None = None
    """(U, n) the measurement in universes 0..U-1 (0 the central value)."""
    universe_systematic: Sequence[str] = ()
    flux_universes: np.ndarray | None = None
    """(U, n_flux) ratio to the nominal flux per flux bin in each universe."""
    axis: str = "E_nu"
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class FluxSpec:
    edges_gev: Sequence[float]
    density_per_gev: Sequence[float]
    particle: str = "numu"
    name: str = "flux-numu"


@contextlib.contextmanager
def _inside(directory: Path) -> Iterator[None]:
    here = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(here)


def _variable(
    lib: Any,
    name: str,
    values: Sequence[Any],
    *,
    units: str = "",
    independent: bool = False,
    binned: bool = False,
    qualifiers: dict[str, Any] | None = None,
) -> Any:
    v = lib.Variable(name, is_independent=independent, is_binned=binned, units=units)
    v.values = list(values)
    v.digits = 15
    for key, value in (qualifiers or {}).items():
        v.add_qualifier(key, value)
    return v


def _pairs(n: int) -> tuple[list[int], list[int]]:
    i, j = np.divmod(np.arange(n * n), n)
    return i.tolist(), j.tolist()


def write_record(directory: Path, measurements: Sequence[MeasurementSpec], flux: FluxSpec) -> Path:
    """Write the record under ``directory`` (created); returns ``directory``."""
    lib = hepdata_lib()
    submission = lib.Submission()
    bins_flux = list(zip(flux.edges_gev[:-1], flux.edges_gev[1:], strict=True))
    table = lib.Table(flux.name)
    table.description = "nu_mu flux per GeV"
    table.add_variable(
        _variable(lib, "E_nu", bins_flux, units="GeV", independent=True, binned=True)
    )
    table.add_variable(
        _variable(
            lib,
            "flux",
            flux.density_per_gev,
            units="nu / cm^2 / GeV / POT",
            qualifiers={
                "variable_type": "probe_flux",
                "probe_particle": flux.particle,
                "bin_content_type": "count_density",
            },
        )
    )
    submission.add_table(table)
    for m in measurements:
        n = len(m.values)
        bins = list(zip(m.edges_gev[:-1], m.edges_gev[1:], strict=True))
        qualifiers = {
            "variable_type": "cross_section_measurement",
            "measurement_type": m.measurement_type,
            "selectfunc": "analysis.cxx:TEST_CCInc_2026_Select_0",
            f"{m.axis}:projectfunc": "analysis.cxx:TEST_CCInc_2026_Enu_0",
            "target": m.target,
            "probe_flux": flux.name,
        }
        if m.units:
            qualifiers["cross_section_units"] = m.units
        if m.covariance is not None:
            qualifiers["errors"] = f"covariance-{m.name}:{m.error_type}"
        if m.smearing is not None:
            qualifiers["smearing"] = f"smearing-{m.name}"
        if m.universes is not None:
            qualifiers["universes"] = f"universes-{m.name}"
        if m.flux_universes is not None:
            qualifiers["flux_universes"] = f"flux_universes-{m.name}"
        qualifiers |= m.extra
        measured = _variable(
            lib, "cross_section", m.values, units=m.header_units, qualifiers=qualifiers
        )
        for err in m.errors or []:
            unc = lib.Uncertainty(err["label"], is_symmetric=err.get("symmetric", True))
            unc.values = err["values"]
            measured.add_uncertainty(unc)
        table = lib.Table(f"cross_section-{m.name}")
        table.description = f"measurement {m.name}"
        table.add_variable(_variable(lib, m.axis, bins, units="GeV", independent=True, binned=True))
        table.add_variable(measured)
        submission.add_table(table)
        if m.covariance is not None:
            i, j = _pairs(len(m.covariance))
            cov = lib.Table(f"covariance-{m.name}")
            cov.description = "covariance"
            cov.add_variable(_variable(lib, "bin i", i, independent=True))
            cov.add_variable(_variable(lib, "bin j", j, independent=True))
            cov.add_variable(
                _variable(
                    lib,
                    m.error_type,
                    np.ravel(m.covariance).tolist(),
                    qualifiers={"variable_type": "error_table", "error_type": m.error_type},
                )
            )
            submission.add_table(cov)
        if m.smearing is not None:
            i, j = _pairs(n)
            smear = lib.Table(f"smearing-{m.name}")
            smear.description = "A_C[i, j]: i the measurement's bin, j the prediction's"
            smear.add_variable(_variable(lib, "bin i", i, independent=True))
            smear.add_variable(_variable(lib, "bin j", j, independent=True))
            smear.add_variable(
                _variable(
                    lib,
                    "A_C",
                    np.ravel(m.smearing).tolist(),
                    qualifiers={
                        "variable_type": "smearing_table",
                        "smearing_type": "smearing_matrix",
                    },
                )
            )
            submission.add_table(smear)
        if m.universes is not None:
            uni = lib.Table(f"universes-{m.name}")
            uni.description = "the measurement in every universe"
            uni.add_variable(
                _variable(lib, m.axis, bins, units="GeV", independent=True, binned=True)
            )
            for u, row in enumerate(m.universes):
                uni.add_variable(
                    _variable(
                        lib,
                        f"universe {u}",
                        row.tolist(),
                        units=m.header_units,
                        qualifiers={
                            "variable_type": "error_table",
                            "error_type": "universes",
                            "universe": u,
                            "systematic": m.universe_systematic[u],
                        },
                    )
                )
            submission.add_table(uni)
        if m.flux_universes is not None:
            fu = lib.Table(f"flux_universes-{m.name}")
            fu.description = "flux of every universe as a ratio per flux bin"
            fu.add_variable(
                _variable(lib, "E_nu", bins_flux, units="GeV", independent=True, binned=True)
            )
            for u, row in enumerate(m.flux_universes):
                fu.add_variable(
                    _variable(
                        lib,
                        f"universe {u}",
                        row.tolist(),
                        qualifiers={
                            "variable_type": "error_table",
                            "error_type": "universes",
                            "universe": u,
                            "bin_content_type": "ratio",
                        },
                    )
                )
            submission.add_table(fu)
    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory.parent / f".{directory.name}-scratch"
    scratch.mkdir(exist_ok=True)
    try:
        with _inside(scratch), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            submission.create_files(str(directory.resolve()), validate=True, remove_old=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return directory
