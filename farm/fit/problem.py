"""χ²(θ) of a model with parameters against a farm result, with the joint covariance at every θ.

At each θ the model is folded with the result's flux exactly as :func:`farm.compare` folds a
plug-in model (docs/guide-theorists.md): G(θ)[f, j] = Σ_k∈f,j fluence_k σ_j(E_k; θ), and predicted
in every universe u,

    real:    p_u(θ) = A_C,u (R_u G(θ))_j / Φ_u        nominal:  p̃_u(θ) = A_C,u Σ_f G_fj(θ) / Φ̄.

The measurement m_u and the prediction p_u(θ) move together in the shared flux universes, so the
covariance of Δ = m − p(θ) is taken over the universes of the difference itself,

    V_syst(θ) = Σ_s 1/K_s Σ_u∈s (Δ_u − r_s)(Δ_u − r_s)ᵀ = V_mm + V_pp(θ) − V_mp(θ) − V_pm(θ)

(r_s the central value or the systematic's mean, K_s = N_s or N_s − 1, as the result's covariances
are taken), and

    χ²(θ) = Δ₀(θ)ᵀ [V_syst(θ) + V_stat]⁻¹ Δ₀(θ),

the statistic ``farm run`` and ``farm compare`` store as ``chi2_<convention>_joint``, now a
function of θ. There is no ln det V(θ) term: χ² is zero where the prediction meets the data, so
an Asimov fit returns its input exactly. Internally cross sections are divided by ``scale`` (the
measured central value) so that χ² is built from O(1) numbers. Pure numpy: no dask, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from farm.analysis.chi2 import chi2 as chi2_value
from farm.fit.counts import CountsModel
from farm.fit.params import BoundModel

__all__ = ["CONVENTIONS", "Evaluation", "FitProblem", "ResultInputs", "stratified_covariance"]

CONVENTIONS = ("real", "nominal")


def stratified_covariance(
    values: np.ndarray, strata: Sequence[np.ndarray], *, center: str, normalization: str
) -> np.ndarray:
    """Σ_s 1/K_s Σ_u∈s (x_u − r_s)(x_u − r_s)ᵀ over ``values[..., u, j]``, batched over ``...``.

    r_s is universe 0 (``center="cv"``) or the mean of stratum s (``"mean"``); K_s = N_s
    (``normalization="n"``) or N_s − 1 — :func:`farm.analysis.covariance.universe_covariance`
    summed over systematics, as :func:`farm.analysis.covariances.covariances` sums them.
    """
    n = values.shape[-1]
    out = np.zeros((*values.shape[:-2], n, n))
    for rows in strata:
        x = values[..., rows, :]
        ref = values[..., :1, :] if center == "cv" else x.mean(axis=-2, keepdims=True)
        dev = x - ref
        k = rows.size if normalization == "n" else rows.size - 1
        out += np.swapaxes(dev, -1, -2) @ dev / k
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class ResultInputs:
    """What a fit reads from a farm result in one flux convention, as numpy arrays."""

    convention: str
    sample: str
    measured: np.ndarray
    """(U, J) measured flux share in every universe, cm² per target."""
    stat_cov: np.ndarray
    """(J, J) data-statistics covariance of the measured central value, cm⁴."""
    flux_ratio: np.ndarray
    """(U, F) each universe's flux over the nominal, per flux bin."""
    phi: np.ndarray
    """(U,) integrated signal flux of each universe."""
    smearing: np.ndarray
    """(U, J, J) additional smearing A_C of each universe (identity unless Wiener-SVD)."""
    rule: Mapping[str, tuple[np.ndarray, np.ndarray]]
    bins: Any
    signal_flavors: tuple[str, ...]
    truth: str
    truth_edges: np.ndarray | None
    strata: tuple[np.ndarray, ...]
    """Universe rows of each systematic that adds into the total covariance."""
    center: str
    normalization: str
    counts: CountsModel | None = None
    """The data as counts and the extraction, for Poisson pseudo-experiments (None: Gaussian)."""
    counts_note: str = ""
    """Why ``counts`` is None, when it is."""
    provenance: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_bins(self) -> int:
        return int(self.measured.shape[1])

    @property
    def n_universes(self) -> int:
        return int(self.phi.size)

    def __repr__(self) -> str:
        statistics = "Poisson counts" if self.counts is not None else "Gaussian statistics"
        return (
            f"ResultInputs({self.sample}, {self.convention} flux, {self.n_bins} bins, "
            f"{self.measured.shape[0]} universes, {statistics})"
        )


def read_inputs(ds: Any, convention: str = "real", *, kind: str = "xsec") -> ResultInputs:
    """The arrays of a result dataset the fit needs (see :mod:`farm.compare` for their meaning)."""
    from farm.compare import _contributing, _published
    from farm.fit.counts import counts_model

    if convention not in CONVENTIONS:
        msg = f"unknown convention {convention!r}; choose real or nominal"
        raise ValueError(msg)
    pub = _published(ds)
    names, totals = pub.universes.names, pub.universes.in_total()
    strata = tuple(
        pub.universes.universes_of(n) for n, counted in zip(names, totals, strict=True) if counted
    )
    counts, note = counts_model(ds, convention, pub.xsec[convention], pub.phi)
    provenance = {
        key: str(ds.attrs[key])
        for key in ("sample", "config_hash", "universe_set_checksum", "input_checksums")
        if key in ds.attrs
    }
    return ResultInputs(
        convention=convention,
        sample=str(ds.attrs.get("sample", "")),
        measured=np.asarray(pub.xsec[convention], dtype=np.float64),
        stat_cov=np.asarray(pub.stat[convention], dtype=np.float64),
        flux_ratio=np.asarray(pub.universes.flux_ratio, dtype=np.float64),
        phi=np.asarray(pub.phi, dtype=np.float64),
        smearing=np.asarray(pub.smearing[convention], dtype=np.float64),
        rule=_contributing(pub.rule, pub.truth_edges) if kind == "xsec" else pub.rule,
        bins=pub.bins,
        signal_flavors=pub.signal_flavors,
        truth=pub.truth,
        truth_edges=pub.truth_edges,
        strata=strata,
        center=pub.center,
        normalization=pub.normalization,
        counts=counts,
        counts_note=note,
        provenance=provenance,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class Evaluation:
    """The model at one θ: its prediction, the covariance of Δ and χ² (scaled units)."""

    theta: np.ndarray
    raw: np.ndarray
    """(J,) central prediction before A_C, cm² per target (what truth-level counts follow)."""
    pred: np.ndarray
    """(J,) central prediction p₀(θ) / scale."""
    v_syst: np.ndarray
    """(J, J) V_syst(θ) / scale²."""
    chi2: float


@dataclass(frozen=True, kw_only=True, eq=False)
class FitProblem:
    """χ²(θ) of ``model`` with free keywords ``names`` (the others ``fixed``) against ``inputs``."""

    inputs: ResultInputs
    model: Callable[..., np.ndarray]
    names: tuple[str, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "xsec"
    label: str = "model"

    def __repr__(self) -> str:
        free = ", ".join(self.names)
        fixed = f", fixed {dict(self.fixed)}" if self.fixed else ""
        return f"FitProblem({self.label!r}: free {free}{fixed}; {self.inputs!r})"

    @property
    def scale(self) -> float:
        """The unit of the internal numbers: |measured central value| (largest bin), cm²."""
        value = float(np.max(np.abs(self.inputs.measured[0])))
        return value if value > 0 else 1.0

    @property
    def n_bins(self) -> int:
        return self.inputs.n_bins

    @property
    def measured_cv(self) -> np.ndarray:
        """(J,) the measured central value, cm² per target."""
        return self.inputs.measured[0]

    def bound(self, theta: Sequence[float]) -> BoundModel:
        if len(theta) != len(self.names):
            msg = f"θ has {len(theta)} values for the {len(self.names)} parameters {', '.join(self.names)}"
            raise ValueError(msg)
        values = {name: float(v) for name, v in zip(self.names, theta, strict=True)}
        return BoundModel(self.model, {**self.fixed, **values})

    def raw(self, theta: Sequence[float]) -> np.ndarray:
        """(U, J) the prediction in every universe before A_C, cm² per target."""
        from farm.analysis.predict import fold_model

        i = self.inputs
        g = fold_model(
            self.bound(theta),
            i.rule,
            i.bins,
            i.signal_flavors,
            i.truth,
            i.truth_edges,
            kind=self.kind,
            name=self.label,
        )
        if i.convention == "real":  # farm.analysis.predict.model_predictions, before A_C
            return (i.flux_ratio @ g) / i.phi[:, None]
        return np.broadcast_to(g.sum(axis=0) / i.phi[0], (i.phi.size, g.shape[1]))

    def predicted(self, theta: Sequence[float]) -> np.ndarray:
        """(U, J) the prediction in every universe, A_C applied, cm² per target."""
        return np.einsum("ujk,uk->uj", self.inputs.smearing, self.raw(theta))

    def evaluate(self, theta: Sequence[float]) -> Evaluation:
        raw = self.raw(theta)
        pred = np.einsum("ujk,uk->uj", self.inputs.smearing, raw) / self.scale
        delta = self.inputs.measured / self.scale - pred
        v_syst = stratified_covariance(
            delta,
            self.inputs.strata,
            center=self.inputs.center,
            normalization=self.inputs.normalization,
        )
        v = v_syst + self.inputs.stat_cov / self.scale**2
        return Evaluation(
            theta=np.asarray(theta, dtype=np.float64),
            raw=raw[0].copy(),
            pred=pred[0].copy(),
            v_syst=v_syst,
            chi2=float(chi2_value(delta[0], v)),
        )

    def chi2(self, theta: Sequence[float]) -> float:
        """χ²(θ) = Δ₀ᵀ (V_syst(θ) + V_stat)⁻¹ Δ₀ with Δ = m − p(θ)."""
        return self.evaluate(theta).chi2

    def with_data(self, measured_cv: np.ndarray, stat_cov: np.ndarray | None = None) -> FitProblem:
        """The same problem with another measured central value (cm²), e.g. an Asimov dataset.

        Every universe moves with the central value, m'_u = m_u − m_0 + m', so the measurement's
        systematic spread (V_mm and V_mp) is the result's.
        """
        m = self.inputs.measured
        shifted = m - m[0] + np.asarray(measured_cv, dtype=np.float64)[None, :]
        inputs = replace(
            self.inputs,
            measured=shifted,
            stat_cov=self.inputs.stat_cov if stat_cov is None else np.asarray(stat_cov),
        )
        return replace(self, inputs=inputs)

    def asimov(self, theta: Sequence[float]) -> FitProblem:
        """The problem whose data is the model's own prediction at θ (the Asimov dataset).

        Where the data are counts with a linear extraction, the statistics covariance is that of
        the expected counts at θ (J diag(ν(θ)) Jᵀ); otherwise the result's.
        """
        raw0 = self.raw(theta)[0]
        cv = self.inputs.smearing[0] @ raw0
        stat = None
        counts = self.inputs.counts
        if counts is not None and counts.linear:
            expected = counts.expected(raw0)
            stat = counts.stat_cov(expected[None, :])[0]
        return self.with_data(cv, stat)
