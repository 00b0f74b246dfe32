"""What the report shows, computed from the result dataset: pure functions, no plotting, no files.

Every function takes the loaded result dataset (farm.analysis.dataset) and returns small frozen
records or arrays. Both flux conventions are handled alike; ``convention`` is ``"real"`` or
``"nominal"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import xarray as xr

from farm.analysis.covariance import correlation, universe_covariance
from farm.report._dataset import CONVENTIONS, config_of, labels
from farm.report.universes import UniverseCheck, universe_checks, universes_verdict
from farm.systematics.universes import ALL_KNOBS

__all__ = [
    "CONVENTIONS",
    "Breakdown",
    "Chi2Row",
    "CovarianceCheck",
    "FluxBand",
    "TruthBins",
    "UniverseCheck",
    "breakdown",
    "chi2_rows",
    "config_of",
    "conventions_coincide",
    "covariance_checks",
    "flux_bands",
    "labels",
    "measured_predicted_correlation",
    "prediction_sigma",
    "provenance",
    "quadrature_layers",
    "truth_bins",
    "universe_checks",
    "universes_verdict",
]

_FLUX_BIN = re.compile(r"^(?P<flavour>[^:]+):(?P<lo>[-+.\deE]+)-(?P<hi>[-+.\deE]+)$")


# --- truth binning -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TruthBins:
    """The measurement's truth bins: E_ν edges in MeV, or one flux-averaged total."""

    edges_mev: np.ndarray | None
    variable: str

    @property
    def is_total(self) -> bool:
        return self.edges_mev is None

    @property
    def n_bins(self) -> int:
        return 1 if self.edges_mev is None else self.edges_mev.size - 1

    def bin_labels(self) -> list[str]:
        if self.edges_mev is None:
            return ["total"]
        e = self.edges_mev
        return [f"{e[j]:g}–{e[j + 1]:g}" for j in range(self.n_bins)]


def truth_bins(ds: xr.Dataset) -> TruthBins:
    edges = np.asarray(ds["truth_edges"].values, dtype=np.float64)
    variable = str(ds.attrs.get("truth_variable", "enu_true"))
    if ds.sizes["truth_bin"] == 1 and not np.all(np.isfinite(edges)):
        return TruthBins(edges_mev=None, variable=variable)
    return TruthBins(edges_mev=edges, variable=variable)


# --- uncertainty breakdown ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Breakdown:
    """One convention's central values and ±1σ per systematic group, stat and in total (cm²)."""

    convention: str
    central_cm2: np.ndarray
    """(J,) the central-value (universe 0) extracted cross section."""
    groups: tuple[str, ...]
    """Groups that add into the total covariance, in the dataset's order."""
    group_sigma_cm2: np.ndarray
    """(G, J)."""
    stat_sigma_cm2: np.ndarray
    total_sigma_cm2: np.ndarray
    """(J,) √diag of ``cov_total_*`` (systematics ⊕ data statistics)."""
    crosscheck_sigma_cm2: dict[str, np.ndarray]
    """Groups not added into the total (the all-knob set): a cross-check of it."""

    def fractional(self, sigma_cm2: np.ndarray) -> np.ndarray:
        """σ / |central value| (0 where the central value is 0)."""
        central = np.abs(self.central_cm2)
        return np.divide(sigma_cm2, central, out=np.zeros_like(sigma_cm2), where=central > 0)


def _sigma(cov: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(np.diagonal(cov, axis1=-2, axis2=-1), 0.0, None))


def breakdown(ds: xr.Dataset, convention: str, quantity: str = "sigma") -> Breakdown:
    """Central values and ±1σ of the cross section as quoted (``quantity="sigma"``: ⟨σ⟩_j in
    E_ν bins, dσ/dx in kinematic bins; farm.analysis.quoted) or of the seed's flux share S_j
    (``"share"``), in cm² (per unit of x for dσ/dx) per target."""
    from farm.analysis.quoted import with_quoted

    ds = with_quoted(ds)
    infix = "sigma_" if quantity == "sigma" else ""
    value = f"sigma_{convention}" if quantity == "sigma" else f"xsec_{convention}"
    groups = labels(ds, "group")
    sigma = _sigma(np.asarray(ds[f"cov_group_{infix}{convention}"].values))
    counted = [g != ALL_KNOBS for g in groups]
    return Breakdown(
        convention=convention,
        central_cm2=np.asarray(ds[value].values[0], dtype=np.float64),
        groups=tuple(g for g, c in zip(groups, counted, strict=True) if c),
        group_sigma_cm2=sigma[np.array(counted, dtype=bool)],
        stat_sigma_cm2=_sigma(np.asarray(ds[f"cov_stat_{infix}{convention}"].values)),
        total_sigma_cm2=_sigma(np.asarray(ds[f"cov_total_{infix}{convention}"].values)),
        crosscheck_sigma_cm2={
            g: sigma[k] for k, (g, c) in enumerate(zip(groups, counted, strict=True)) if not c
        },
    )


def quadrature_layers(b: Breakdown) -> list[tuple[str, np.ndarray]]:
    """Cumulative ±1σ added in quadrature: stat, then each group in order.

        σ_k = √(σ_stat² + Σ_{g ≤ k} σ_g²)

    The last layer is the diagonal of the total covariance (correlations between groups are
    not in a diagonal). Returned as ``[("stat", σ_0), (group_1, σ_1), …]``, innermost first.
    """
    layers = [("stat", b.stat_sigma_cm2)]
    running = b.stat_sigma_cm2**2
    for group, sigma in zip(b.groups, b.group_sigma_cm2, strict=True):
        running = running + sigma**2
        layers.append((group, np.sqrt(running)))
    return layers


_SAME = ("sigma", "cov_total_sigma", "cov_stat_sigma", "cov_group_sigma", "model_sigma")


def conventions_coincide(ds: xr.Dataset) -> bool:
    """Do the real- and nominal-flux-averaged results hold the same numbers (to 1e-12)?

    They do for one flux-averaged total bin whose flux systematics only move the flux (the
    real-flux Φ_u and the nominal Φ̄ then cancel alike): the report then draws one panel."""
    from farm.analysis.quoted import with_quoted

    ds = with_quoted(ds)
    for stem in _SAME:
        real = np.asarray(ds[f"{stem}_real"].values, dtype=np.float64)
        nominal = np.asarray(ds[f"{stem}_nominal"].values, dtype=np.float64)
        scale = float(np.max(np.abs(real), initial=0.0))
        if real.shape != nominal.shape or not np.allclose(
            real, nominal, rtol=1e-12, atol=1e-12 * scale
        ):
            return False
    return True


def prediction_sigma(ds: xr.Dataset, convention: str, quantity: str = "sigma") -> np.ndarray:
    """(M, J) ±1σ of each model's prediction over the shared universes (the predicted block of
    the joint covariance, per systematic in the total as ``joint_cov_*``): in the real-flux
    convention the prediction carries the flux. In σ (default) or in the flux share S_j."""
    from farm.analysis.covariances import covariances
    from farm.analysis.quoted import universe_set_of, with_quoted

    if quantity != "sigma":
        n = ds.sizes["truth_bin"]
        joint = np.asarray(ds[f"joint_cov_{convention}"].values, dtype=np.float64)
        return _sigma(joint[:, n:, n:])
    ds = with_quoted(ds)
    universes = universe_set_of(ds)
    center = str(ds.attrs.get("covariance_center", "cv"))
    normalization = str(ds.attrs.get("covariance_normalization", "n"))
    models = np.asarray(ds[f"model_sigma_{convention}"].values, dtype=np.float64)
    return np.stack(
        [
            _sigma(covariances(m, universes, center=center, normalization=normalization).total)
            for m in models
        ]
    )


_NO_SPREAD = 1e-9
"""A relative ±1σ below this is rounding noise (a quantity no universe moves): ρ is undefined."""


def measured_predicted_correlation(ds: xr.Dataset, convention: str) -> tuple[list[str], np.ndarray]:
    """Correlation of (measured bins ⊕ stat, every model's predicted bins) over the universes.

    The covariance is summed over the systematics in the total, each over its own universes with
    the dataset's convention, exactly as ``joint_cov_*`` (whose 2×2 blocks it reproduces), but
    with all models at once; data statistics are added to the measured block. A quantity with no
    spread (relative ±1σ below 1e-9) has no correlation: its row and column are NaN and its
    name says "(no spread)".
    """
    center = str(ds.attrs.get("covariance_center", "cv"))
    normalization = str(ds.attrs.get("covariance_normalization", "n"))
    models = labels(ds, "model")
    stacked = np.concatenate(
        [
            np.asarray(ds[f"xsec_{convention}"].values),
            *np.asarray(ds[f"model_pred_{convention}"].values),
        ],
        axis=1,
    )
    per_universe = np.array(labels(ds, "universe_systematic"))
    cov = np.zeros((stacked.shape[1], stacked.shape[1]))
    for name in labels(ds, "systematic"):
        rows = np.flatnonzero(per_universe == name)
        if name != ALL_KNOBS and rows.size:
            cov += universe_covariance(
                stacked[rows], central=stacked[0], center=center, normalization=normalization
            )
    n = ds.sizes["truth_bin"]
    cov[:n, :n] += np.asarray(ds[f"cov_stat_{convention}"].values)
    flat = _sigma(cov) <= _NO_SPREAD * np.abs(stacked[0])
    rho = correlation(np.where(flat[:, None] | flat[None, :], 0.0, cov))
    rho[flat, :] = np.nan
    rho[:, flat] = np.nan
    bins = truth_bins(ds).bin_labels()
    names = [f"{who} {b}" if n > 1 else who for who in ["measured", *models] for b in bins]
    names = [f"{name} (no spread)" if f else name for name, f in zip(names, flat, strict=True)]
    return names, rho


# --- flux universes ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FluxBand:
    """The flux of one flavour on its E_ν bins, with its spread over the flux universes."""

    flavour: str
    edges_mev: np.ndarray
    """(B+1,) contiguous bin edges."""
    central_per_mev: np.ndarray
    """(B,) central-value flux per MeV, ν / cm² / MeV over the exposure (NaN in gaps)."""
    sigma_per_mev: dict[str, np.ndarray]
    """Per flux systematic, ±1σ per bin over its universes (same units)."""

    @property
    def total_sigma_per_mev(self) -> np.ndarray:
        """±1σ of all flux systematics together: their variances add."""
        if not self.sigma_per_mev:
            return np.zeros_like(self.central_per_mev)
        return np.sqrt(sum(s**2 for s in self.sigma_per_mev.values()))


def _flux_systematics(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Rows of each systematic whose universes change the flux (not the all-knob set)."""
    ratio = np.asarray(ds["flux_ratio"].values)
    per_universe = np.array(labels(ds, "universe_systematic"))
    out = {}
    for name in labels(ds, "systematic"):
        rows = np.flatnonzero(per_universe == name)
        if name != ALL_KNOBS and rows.size and np.any(ratio[rows] != 1.0):
            out[name] = rows
    return out


def flux_bands(ds: xr.Dataset) -> list[FluxBand]:
    """Per flavour: the central flux per MeV and ±1σ per flux systematic.

    The spread of a systematic is √diag of its covariance over its universes, with the
    dataset's own convention (``covariance_center``, ``covariance_normalization``), as for the
    cross section; for Gaussian throws ±1σ is the central 68 % band.
    """
    flux = np.asarray(ds["flux"].values, dtype=np.float64)
    center = str(ds.attrs.get("covariance_center", "cv"))
    normalization = str(ds.attrs.get("covariance_normalization", "n"))
    sigma = {
        name: _sigma(
            universe_covariance(
                flux[rows], central=flux[0], center=center, normalization=normalization
            )
        )
        for name, rows in _flux_systematics(ds).items()
    }
    by_flavour: dict[str, list[tuple[float, float, int]]] = {}
    for k, label in enumerate(labels(ds, "flux_bin")):
        m = _FLUX_BIN.match(label)
        if m:
            bins = by_flavour.setdefault(m["flavour"], [])
            bins.append((float(m["lo"]), float(m["hi"]), k))
    bands = []
    for flavour, bins in by_flavour.items():
        edges = np.unique([e for lo, hi, _ in bins for e in (lo, hi)])
        central = np.full(edges.size - 1, np.nan)
        spreads = {name: np.full(edges.size - 1, np.nan) for name in sigma}
        for lo, hi, k in bins:
            j = int(np.searchsorted(edges, lo))
            central[j] = flux[0, k] / (hi - lo)
            for name, s in sigma.items():
                spreads[name][j] = s[k] / (hi - lo)
        bands.append(
            FluxBand(
                flavour=flavour, edges_mev=edges, central_per_mev=central, sigma_per_mev=spreads
            )
        )
    return bands


# --- model tests -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Chi2Row:
    model: str
    convention: str
    chi2_joint: float
    pvalue_joint: float
    chi2_uncorrelated: float
    pvalue_uncorrelated: float
    dof: int


def chi2_rows(ds: xr.Dataset) -> list[Chi2Row]:
    """Every attached model (the generator first) in both conventions."""
    dof = int(ds["chi2_dof"].values)
    rows = []
    for k, model in enumerate(labels(ds, "model")):
        for convention in CONVENTIONS:

            def value(kind: str, test: str, k: int = k, convention: str = convention) -> float:
                return float(ds[f"{kind}_{convention}_{test}"].values[k])

            rows.append(
                Chi2Row(
                    model=model,
                    convention=convention,
                    chi2_joint=value("chi2", "joint"),
                    pvalue_joint=value("pvalue", "joint"),
                    chi2_uncorrelated=value("chi2", "uncorrelated"),
                    pvalue_uncorrelated=value("pvalue", "uncorrelated"),
                    dof=dof,
                )
            )
    return rows


# --- diagnostics -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CovarianceCheck:
    convention: str
    positive_definite: bool
    condition_number: float


def covariance_checks(ds: xr.Dataset) -> list[CovarianceCheck]:
    return [
        CovarianceCheck(
            convention=c,
            positive_definite=bool(ds[f"positive_definite_{c}"].values),
            condition_number=float(ds[f"condition_number_{c}"].values),
        )
        for c in CONVENTIONS
    ]


# --- provenance --------------------------------------------------------------------------------

_PROVENANCE = (
    ("sample", "sample"),
    ("config hash", "config_hash"),
    ("input store", "input_store"),
    ("input checksums", "input_checksums"),
    ("store generation hash", "store_generation_hash"),
    ("events", "n_events"),
    ("universe-set checksum", "universe_set_checksum"),
    ("universe seed", "universe_seed"),
    ("software version", "software_version"),
    ("extraction method", "extraction_method"),
    ("iterations", "iterations"),
    ("weight policy", "weight_policy"),
    ("weights clamped", "weight_clamped_total"),
    ("signal flavours", "signal_flavors"),
    ("observable", "observable"),
)


def provenance(ds: xr.Dataset) -> list[tuple[str, str]]:
    """(label, value) pairs: inputs, hashes, versions and the covariance convention."""
    rows = [(label, str(ds.attrs[key])) for label, key in _PROVENANCE if key in ds.attrs]
    center = ds.attrs.get("covariance_center", "cv")
    normalization = ds.attrs.get("covariance_normalization", "n")
    about = "the central value (universe 0)" if center == "cv" else "the universe mean"
    norm = "1/N" if normalization == "n" else "1/(N − 1)"
    rows.append(("covariance convention", f"about {about}, normalised {norm}"))
    n = ds.sizes["universe"]  # as `farm run` counts them, universe 0 included
    rows.append(("universes", f"{n} (the central value and {n - 1} throws)"))
    return rows
