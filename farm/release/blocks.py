"""Building blocks of a HEPData release: hepdata_lib, what a result is about, axes and variables.

Every dependent variable is typed and qualified by the NUISANCE HEPData conventions
(docs/hepdata.md): ``variable_type`` (``cross_section_measurement``, ``cross_section_prediction``,
``error_table``, ``smearing_table``, ``probe_flux``; and farm's own ``probe_flux_node``,
``event_count``, ``statistic_at``, which other readers skip), ``measurement_type``,
``cross_section_units``, ``target``, ``probe_flux``, ``errors``, ``smearing``, ``selectfunc`` and
``<axis>:projectfunc``. Table names are their data files' stems, so that a reference
``table:variable`` resolves to ``table.yaml`` as the conventions' readers look it up. Numbers are
rounded by the caller (:mod:`farm.release.rounding`); hepdata_lib writes them as given.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import xarray as xr

from farm.release.rounding import Precision
from farm.release.snippet import FunctionNames, function_names
from farm.store.schema import COLUMNS

__all__ = [
    "CONVENTION_TEXT",
    "About",
    "about_result",
    "axis",
    "bin_label",
    "hepdata_lib",
    "in_total_groups",
    "index_axis",
    "table",
    "table_names",
    "truth_axis",
    "universe_axes",
    "variable",
]

CONVENTION_TEXT = {
    "real": (
        "real-flux-averaged: S_j = unfold(d - B_u; R_u)_j / (T Phi_u), an estimate of "
        "int_j F sigma dE / Phi with F the true flux; a prediction folds the model with the flux "
        "of every universe (tables 'flux-<flavour>', 'flux_universes-<flavour>') and is "
        "correlated with the measurement through it"
    ),
    "nominal": (
        "nominal-flux-averaged: S~_j = unfold(d - B_u; M_u)_j / (T Phi_nominal), an estimate of "
        "int_j Fbar sigma dE / Phi with Fbar the nominal flux; all flux uncertainty is in the "
        "measurement, and a prediction needs only the nominal flux"
    ),
}
_FLAVOR_LABEL = {"nue": "NUE", "nuebar": "NUEBAR", "numu": "NUMU", "numubar": "NUMUBAR"}


def hepdata_lib() -> ModuleType:
    """hepdata_lib, imported without its dependencies' deprecation warnings leaking out.

    hepdata_validator imports ``jsonschema.RefResolver`` (deprecated), and hepdata_lib sets a
    global warnings filter on import; both stay inside this call.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import hepdata_lib as lib
        except ImportError:
            msg = "the HEPData export needs hepdata_lib: pip install 'farm[hepdata]'"
            raise ImportError(msg) from None
    return lib


# --- what the result is about ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class About:
    sample: str
    reactions: tuple[str, ...]
    phrases: tuple[str, ...]
    target: str
    location: str
    signal_flavors: tuple[str, ...]
    flux_flavors: tuple[str, ...]
    truth: str
    n_truth: int
    precision: Precision
    target_code: str
    """The ``target`` qualifier: nuclear PDG codes of the target nuclei (NUISANCE reads them)."""
    target_text: str
    """What one target is, in words (``Ar nucleus``, ``free proton``)."""
    names: FunctionNames
    flux_range_mev: tuple[float, float]
    """The signal flux's E_ν range: the one bin of a flux-averaged total cross section."""

    @property
    def axis_kind(self) -> str:
        return (
            "total" if self.truth == "total" else "enu" if self.truth == "enu_true" else "kinematic"
        )


def _reactions(config: dict[str, Any], flavors: Sequence[str]) -> tuple[tuple[str, ...], str, str]:
    """(reactions, target, process phrase) in HEPData's notation."""
    generator = config.get("sample", {}).get("generator", "")
    material = str(config.get("detector", {}).get("material", ""))
    if generator.endswith("cevns"):
        target = material.upper() or "NUCLEUS"
        return (
            tuple(f"{_FLAVOR_LABEL[f]} {target} --> {_FLAVOR_LABEL[f]} {target}" for f in flavors),
            material,
            "Coherent elastic neutrino-nucleus scattering",
        )
    if generator.endswith("ibd"):
        return ("NUEBAR P --> E+ N",), "H", "Inverse beta decay"
    lepton = {"numu": "MU-", "nue": "E-", "numubar": "MU+", "nuebar": "E+"}
    return (
        tuple(f"{_FLAVOR_LABEL[f]} AR --> {lepton[f]} X" for f in flavors),
        "Ar",
        "Charged-current neutrino-argon scattering",
    )


_TARGET_CODES = {
    "Ar": "1000180400",
    "CsI": "1000551330,1000531270",
    "Ge": "1000320740",
    "NaI": "1000110230,1000531270",
    "Xe": "1000541320",
    "H": "1000010010",
}


def about_result(
    ds: xr.Dataset, precision: Precision, *, inspire: str | None = None, year: int | None = None
) -> About:
    from farm.analysis.quoted import target_text

    config = json.loads(ds.attrs.get("config", "{}"))
    flavors = tuple(f for f in str(ds.attrs.get("signal_flavors", "")).split(",") if f)
    reactions, target, process = _reactions(config, flavors)
    flux_flavors = tuple(dict.fromkeys(str(f) for f in ds["flux_bin_flavor"].values[:-1]))
    energy = np.asarray(ds["flux_rule_enu"].values, dtype=np.float64)
    sample = str(ds.attrs.get("sample", ""))
    return About(
        sample=sample,
        reactions=reactions,
        phrases=("Neutrino", process, "Flux-averaged cross section"),
        target=target,
        location=(
            f"farm result for {ds.attrs.get('sample', '?')} (config {ds.attrs.get('config_hash', '?')}, "
            f"farm {ds.attrs.get('software_version', '?')})"
        ),
        signal_flavors=flavors,
        flux_flavors=flux_flavors,
        truth=str(ds.attrs.get("truth_variable", "total")),
        n_truth=int(ds.sizes["truth_bin"]),
        precision=precision,
        target_code=_TARGET_CODES.get(target, target),
        target_text=target_text(config),
        names=function_names(sample, str(ds.attrs.get("truth_variable", "total")), inspire, year),
        flux_range_mev=(0.0, float(np.nextafter(energy.max(), np.inf)) * 1.001),
    )


_AXIS_NAMES = {
    "enu_true": "E_nu (true)",
    "recoil_mev": "T_recoil (true)",
    "q2_mev2": "Q^2 (true)",
    "plep_mev": "p_lepton (true)",
    "coslep": "cos theta_lepton (true)",
    "reco_pe": "Reconstructed PE",
    "reco_kevee": "E_ee (reconstructed)",
    "reco_energy_mev": "E (reconstructed)",
    "etag_mev": "E_nu (tagged)",
    "vertex_r_cm": "Vertex radius (reconstructed)",
}


def axis(column: str) -> tuple[str, str]:
    """(name, units) of a store column for an axis header."""
    spec = COLUMNS.get(column)
    return _AXIS_NAMES.get(column, column), spec.unit if spec is not None else ""


# --- building blocks ---------------------------------------------------------------------------


def variable(
    lib: ModuleType,
    name: str,
    values: Sequence[Any],
    about: About,
    *,
    units: str = "",
    independent: bool = False,
    binned: bool = False,
    qualifiers: Sequence[tuple[str, Any]] = (),
    errors: Sequence[tuple[str, np.ndarray]] = (),
) -> Any:
    variable = lib.Variable(
        name,
        is_independent=independent,
        is_binned=binned,
        units=units,
        zero_uncertainties_warning=False,
    )
    variable.values = list(values)
    variable.digits = 17  # already rounded by about.precision: written as given
    for key, value in qualifiers:
        variable.add_qualifier(key, value)
    for label, error in errors:
        uncertainty = lib.Uncertainty(label, is_symmetric=True)
        uncertainty.values = [float(x) for x in error]
        variable.add_uncertainty(uncertainty)
    return variable


def table(
    lib: ModuleType,
    name: str,
    description: str,
    variables: Sequence[Any],
    about: About,
    *,
    observables: Sequence[str] = (),
    phrases: Sequence[str] = (),
) -> Any:
    out = lib.Table(name)
    out.description = description
    out.location = about.location
    out.keywords = {
        "reactions": list(about.reactions),
        "observables": list(observables),
        "phrases": [*about.phrases, *phrases],
    }
    for v in variables:
        out.add_variable(v)
    return out


def truth_axis(lib: ModuleType, ds: xr.Dataset, about: About, repeat: int = 1) -> Any:
    """The truth bins as an independent variable (each bin ``repeat`` times, row-major). One
    flux-averaged total bin is the E_ν range of the whole signal flux."""
    if about.truth == "total":
        lo, hi = about.flux_range_mev
        return variable(
            lib, "E_nu", [(lo, hi)] * repeat, about, units="MeV", independent=True, binned=True
        )
    edges = np.asarray(ds["truth_edges"].values, dtype=np.float64)
    name, units = axis(about.truth)
    bins = [(float(lo), float(hi)) for lo, hi in itertools.pairwise(edges)]
    return variable(lib, name, bins * repeat, about, units=units, independent=True, binned=True)


def index_axis(lib: ModuleType, name: str, values: Sequence[int], about: About) -> Any:
    return variable(lib, name, [int(v) for v in values], about, independent=True)


def universe_axes(lib: ModuleType, ds: xr.Dataset, about: About) -> list[Any]:
    return [
        index_axis(lib, "Universe", ds["universe"].values.tolist(), about),
        variable(
            lib,
            "Systematic",
            [str(s) for s in ds["universe_systematic"].values],
            about,
            independent=True,
        ),
    ]


def bin_label(ds: xr.Dataset, about: About, j: int) -> str:
    if about.truth == "total":
        return "total"
    edges = ds["truth_edges"].values
    return f"{about.truth} {edges[j]:g}-{edges[j + 1]:g}"


def table_names(convention: str, quantity: str = "sigma") -> dict[str, str]:
    """Table names (= data-file stems) of one convention and quantity: ``sigma`` (what is quoted)
    or ``share`` (the seed's flux share S_j, released beside ⟨σ⟩ for truth binned in E_ν)."""
    stem = "" if quantity == "sigma" else "flux_share_"
    return {
        "xsec": f"{'cross_section' if quantity == 'sigma' else 'flux_share'}-{convention}",
        "cov": f"{stem}covariance-{convention}",
        "universes": f"{stem}universes-{convention}",
        "smearing": f"response-{convention}",
        "ac": f"{stem}additional_smearing-{convention}",
    }


def in_total_groups(ds: xr.Dataset) -> list[str]:
    kinds = [str(k) for k in ds["systematic_kind"].values]
    groups = [str(g) for g in ds["systematic_group"].values]
    return list(dict.fromkeys(g for g, k in zip(groups, kinds, strict=True) if k != "all"))
