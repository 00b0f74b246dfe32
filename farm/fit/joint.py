"""χ²(θ) of a model against a multi-sample measurement, with the covariance across its samples.

A measurement (docs/measurements.md) holds one result per sample. At each θ the model is folded
with each sample's flux and re-predicted in each of its universes exactly as for that sample alone
(:class:`farm.fit.problem.FitProblem`), so Δ_k,u(θ) = m_k,u − p_k,u(θ) for sample k. The samples'
bins are concatenated, and the covariance of Δ is taken per systematic s over its universes,

    V_syst(θ) = Σ_s 1/K_s Σ_u∈s (Δ_u − r_s)(Δ_u − r_s)ᵀ,

where for a systematic one sample owns, Δ_u is that sample's (its diagonal block, as the sample's
own fit has it) and for a shared systematic Δ_u is the concatenation over the samples declaring
it: their universes of one throw index are the same throw (a throw depends on (seed, name, index)
only; :func:`farm.analysis.joint.shared_universe_rows` checks the indices), so their deviations
line up universe by universe and the cross-sample blocks V_ab follow. Then

    χ²(θ) = Δ₀(θ)ᵀ [V_syst(θ) + V_stat]⁻¹ Δ₀(θ),   V_stat block diagonal,

the statistic ``farm run`` stores as the measurement's ``chi2_<convention>_joint``, as a function
of θ. Without the cross-sample blocks it is the sum of the samples' own χ²(θ).

:class:`JointFitProblem` has the interface of ``FitProblem`` that :func:`farm.fit.run.run_fit`
uses, so the grid, Wilks intervals and Feldman–Cousins toys are the single-sample ones: a toy
throws Poisson counts in every sample (re-extracted per sample, :class:`JointCounts`) or
Gaussian statistics from the block-diagonal V_stat, plus one correlated systematic throw from the
joint V_syst(θ). A keyword of the model that a sample's target does not have (``rn_ar`` for CsI)
does not change that sample's prediction; where the model takes ``material`` and ``--set`` does
not fix it, each sample uses its detector's. Pure numpy: no dask, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from farm.analysis.chi2 import chi2 as chi2_value
from farm.analysis.joint import sample_blocks, shared_universe_rows, universe_rows
from farm.fit.counts import CountsModel
from farm.fit.problem import Evaluation, FitProblem, ResultInputs, read_inputs

__all__ = [
    "JointCounts",
    "JointFitProblem",
    "JointInputs",
    "joint_covariance",
    "joint_problem",
    "read_joint_inputs",
    "sample_keywords",
]


def _block_diagonal(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """(..., ΣJ, ΣJ) with ``blocks`` (..., J_k, J_k) on the diagonal and zeros elsewhere."""
    sizes = [b.shape[-1] for b in blocks]
    lead = blocks[0].shape[:-2]
    out = np.zeros((*lead, sum(sizes), sum(sizes)))
    for b, s in zip(blocks, sample_blocks(sizes), strict=True):
        out[..., s, s] = b
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class JointCounts:
    """Every sample's counts model, on the concatenated reco and truth bins (the interface of
    :class:`~farm.fit.counts.CountsModel` that the pseudo-experiments use)."""

    parts: tuple[CountsModel, ...]

    @property
    def _truth(self) -> list[slice]:
        return sample_blocks([p.prior.size for p in self.parts])

    @property
    def _reco(self) -> list[slice]:
        return sample_blocks([p.data.size for p in self.parts])

    @property
    def linear(self) -> bool:
        return all(p.linear for p in self.parts)

    @property
    def data(self) -> np.ndarray:
        return np.concatenate([p.data for p in self.parts])

    def expected(self, raw: np.ndarray) -> np.ndarray:
        """ν(θ) of every sample, concatenated, from the concatenated central prediction (cm²)."""
        raw = np.asarray(raw)
        return np.concatenate(
            [p.expected(raw[t]) for p, t in zip(self.parts, self._truth, strict=True)]
        )

    def extract(self, counts: np.ndarray) -> np.ndarray:
        """(n, ΣJ) each sample's counts extracted as ``farm run`` extracted that sample."""
        counts = np.atleast_2d(counts)
        return np.concatenate(
            [p.extract(counts[:, r]) for p, r in zip(self.parts, self._reco, strict=True)], axis=1
        )

    def stat_cov(self, counts: np.ndarray) -> np.ndarray:
        """(n, ΣJ, ΣJ) block diagonal: the samples' data are independent."""
        counts = np.atleast_2d(counts)
        return _block_diagonal(
            [p.stat_cov(counts[:, r]) for p, r in zip(self.parts, self._reco, strict=True)]
        )

    def fingerprint_parts(self) -> list[object]:
        return ["joint", *(x for p in self.parts for x in p.fingerprint_parts())]


@dataclass(frozen=True, kw_only=True, eq=False)
class JointInputs:
    """Every sample's :class:`~farm.fit.problem.ResultInputs` and which universes line up."""

    convention: str
    sample: str
    """The measurement's name."""
    labels: tuple[str, ...]
    parts: tuple[ResultInputs, ...]
    own: tuple[tuple[np.ndarray, ...], ...]
    """Per sample, the universe rows of each systematic it alone declares (in its total)."""
    shared: tuple[tuple[str, tuple[tuple[int, np.ndarray], ...]], ...]
    """Per shared systematic, (sample index, its universe rows) of every sample declaring it."""
    center: str
    normalization: str
    provenance: Mapping[str, str] = field(default_factory=dict)

    @property
    def blocks(self) -> list[slice]:
        return sample_blocks([p.n_bins for p in self.parts])

    @property
    def n_bins(self) -> int:
        return int(sum(p.n_bins for p in self.parts))

    @property
    def n_universes(self) -> int:
        """Universes of all samples together (a shared throw counted once per sample)."""
        return int(sum(p.n_universes for p in self.parts))

    @property
    def measured_cv(self) -> np.ndarray:
        return np.concatenate([p.measured[0] for p in self.parts])

    @property
    def stat_cov(self) -> np.ndarray:
        return _block_diagonal([p.stat_cov for p in self.parts])

    @property
    def counts(self) -> JointCounts | None:
        if any(p.counts is None for p in self.parts):
            return None
        return JointCounts(parts=tuple(p.counts for p in self.parts))  # type: ignore[misc]

    @property
    def counts_note(self) -> str:
        return "; ".join(
            f"{label}: {p.counts_note}"
            for label, p in zip(self.labels, self.parts, strict=True)
            if p.counts is None
        )

    def __repr__(self) -> str:
        names = ", ".join(n for n, _ in self.shared) or "none"
        return (
            f"JointInputs({self.sample}: {', '.join(self.labels)}; {self.convention} flux, "
            f"{self.n_bins} bins, shared {names})"
        )


def read_joint_inputs(
    samples: Sequence[tuple[str, Any]],
    shared: Collection[str],
    convention: str = "real",
    *,
    kind: str = "xsec",
    name: str = "",
    provenance: Mapping[str, str] | None = None,
) -> JointInputs:
    """The fit's arrays of every sample (label, dataset), with the shared systematics' rows."""
    parts = tuple(read_inputs(ds, convention, kind=kind) for _, ds in samples)
    centers = {(p.center, p.normalization) for p in parts}
    if len(centers) != 1:
        msg = f"the samples' covariances are taken differently ({sorted(centers)}); a joint fit needs one covariance_center and covariance_normalization"
        raise ValueError(msg)
    in_total = [
        {
            str(n)
            for n, k in zip(ds["systematic"].values, ds["systematic_kind"].values, strict=True)
            if str(k) != "all"
        }
        for _, ds in samples
    ]
    names = list(dict.fromkeys(n for names in in_total for n in sorted(names)))
    joint_names = []
    for n in names:
        owners = [k for k, held in enumerate(in_total) if n in held]
        if n in shared and len(owners) > 1:
            first = owners[0]
            rows = [(first, universe_rows(samples[first][1], n))]
            rows += [
                (k, shared_universe_rows(samples[first], samples[k], n)[1]) for k in owners[1:]
            ]
            joint_names.append((n, tuple(rows)))
    crossing = {n for n, _ in joint_names}
    own = tuple(
        tuple(universe_rows(ds, n) for n in names if n in held and n not in crossing)
        for (_, ds), held in zip(samples, in_total, strict=True)
    )
    center, normalization = next(iter(centers))
    return JointInputs(
        convention=convention,
        sample=name or "+".join(label for label, _ in samples),
        labels=tuple(label for label, _ in samples),
        parts=parts,
        own=own,
        shared=tuple(joint_names),
        center=center,
        normalization=normalization,
        provenance=dict(provenance or {}),
    )


def _deviation(values: np.ndarray, rows: np.ndarray, center: str) -> np.ndarray:
    x = values[rows]
    ref = values[:1] if center == "cv" else x.mean(axis=0, keepdims=True)
    return x - ref


def joint_covariance(
    deltas: Sequence[np.ndarray], inputs: JointInputs, *, cross: bool = True
) -> np.ndarray:
    """(ΣJ, ΣJ) covariance of the concatenated Δ over every systematic's universes.

    ``deltas[k]`` is sample k's (U_k, J_k). ``cross=False`` leaves out the cross-sample blocks
    (the diagonal blocks stay): the samples taken as independent.
    """
    from farm.fit.problem import stratified_covariance

    blocks = inputs.blocks
    out = np.zeros((inputs.n_bins, inputs.n_bins))
    for k, strata in enumerate(inputs.own):
        out[blocks[k], blocks[k]] += stratified_covariance(
            deltas[k], strata, center=inputs.center, normalization=inputs.normalization
        )
    for _, owners in inputs.shared:
        dev = np.concatenate(
            [_deviation(deltas[k], rows, inputs.center) for k, rows in owners], axis=1
        )
        size = owners[0][1].size
        norm = size if inputs.normalization == "n" else size - 1
        index = np.concatenate([np.arange(blocks[k].start, blocks[k].stop) for k, _ in owners])
        block = dev.T @ dev / norm
        if not cross:
            sizes = [blocks[k].stop - blocks[k].start for k, _ in owners]
            keep = _block_diagonal([np.ones((s, s)) for s in sizes]).astype(bool)
            block = np.where(keep, block, 0.0)
        out[np.ix_(index, index)] += block
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class JointFitProblem:
    """χ²(θ) of ``model`` against every sample of a measurement, with the joint covariance."""

    inputs: JointInputs
    model: Callable[..., np.ndarray]
    names: tuple[str, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    sample_fixed: tuple[Mapping[str, Any], ...] = ()
    """Per sample, keywords set for it alone (its detector's ``material``)."""
    kind: str = "xsec"
    label: str = "model"
    cross: bool = True
    """Whether the cross-sample blocks enter (False: the samples as if independent)."""

    def __repr__(self) -> str:
        free = ", ".join(self.names)
        fixed = f", fixed {dict(self.fixed)}" if self.fixed else ""
        return f"JointFitProblem({self.label!r}: free {free}{fixed}; {self.inputs!r})"

    @property
    def parts(self) -> tuple[FitProblem, ...]:
        """Each sample's own problem (its keywords: the common ones and its own)."""
        own = self.sample_fixed or tuple({} for _ in self.inputs.parts)
        return tuple(
            FitProblem(
                inputs=inputs,
                model=self.model,
                names=self.names,
                fixed={**extra, **self.fixed},
                kind=self.kind,
                label=self.label,
            )
            for inputs, extra in zip(self.inputs.parts, own, strict=True)
        )

    @property
    def scale(self) -> float:
        """The unit of the internal numbers: the largest |measured central value| of all samples."""
        value = float(np.max(np.abs(self.inputs.measured_cv)))
        return value if value > 0 else 1.0

    @property
    def measured_cv(self) -> np.ndarray:
        return self.inputs.measured_cv

    @property
    def n_bins(self) -> int:
        return self.inputs.n_bins

    def deltas(
        self, theta: Sequence[float]
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """(raw (U_k, J_k), p_k(θ) / scale, Δ_k = (m_k − p_k(θ)) / scale) of every sample."""
        raws, preds, deltas = [], [], []
        for part in self.parts:
            raw = part.raw(theta)
            pred = np.einsum("ujk,uk->uj", part.inputs.smearing, raw) / self.scale
            raws.append(raw)
            preds.append(pred)
            deltas.append(part.inputs.measured / self.scale - pred)
        return raws, preds, deltas

    def evaluate(self, theta: Sequence[float]) -> Evaluation:
        raws, preds, deltas = self.deltas(theta)
        v_syst = joint_covariance(deltas, self.inputs, cross=self.cross)
        v = v_syst + self.inputs.stat_cov / self.scale**2
        delta = np.concatenate([d[0] for d in deltas])
        return Evaluation(
            theta=np.asarray(theta, dtype=np.float64),
            raw=np.concatenate([r[0] for r in raws]),
            pred=np.concatenate([p[0] for p in preds]),
            v_syst=v_syst,
            chi2=float(chi2_value(delta, v)),
        )

    def chi2(self, theta: Sequence[float]) -> float:
        """χ²(θ) = Δ₀ᵀ (V_syst(θ) + V_stat)⁻¹ Δ₀ over the concatenated bins of every sample."""
        return self.evaluate(theta).chi2

    def _with_parts(self, parts: Sequence[FitProblem]) -> JointFitProblem:
        inputs = replace(self.inputs, parts=tuple(p.inputs for p in parts))
        return replace(self, inputs=inputs)

    def with_data(
        self, measured_cv: np.ndarray, stat_cov: np.ndarray | None = None
    ) -> JointFitProblem:
        """Another concatenated central value (cm²), each sample's universes moved with it."""
        cv = np.asarray(measured_cv, dtype=np.float64)
        blocks = self.inputs.blocks
        return self._with_parts(
            [
                p.with_data(cv[b], None if stat_cov is None else np.asarray(stat_cov)[b, b])
                for p, b in zip(self.parts, blocks, strict=True)
            ]
        )

    def asimov(self, theta: Sequence[float]) -> JointFitProblem:
        """Every sample's data replaced by the model's own prediction at θ."""
        return self._with_parts([p.asimov(theta) for p in self.parts])


def sample_keywords(ds: Any, model: Callable[..., Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """``material`` of the sample's detector, where the model takes it and ``fixed`` does not."""
    from farm.fit.params import keyword_defaults

    if "material" in fixed or "material" not in keyword_defaults(model):
        return {}
    try:
        material = json.loads(str(ds.attrs["config"]))["detector"]["material"]
    except (KeyError, TypeError, ValueError):
        return {}
    return {"material": material} if isinstance(material, str) else {}


def joint_problem(
    samples: Sequence[tuple[str, Any]],
    shared: Collection[str],
    model: Callable[..., np.ndarray],
    names: Sequence[str],
    *,
    fixed: Mapping[str, Any] | None = None,
    convention: str = "real",
    kind: str = "xsec",
    label: str = "model",
    name: str = "",
    provenance: Mapping[str, str] | None = None,
) -> JointFitProblem:
    """The joint problem over ``samples`` (label, dataset), as a measurement stores them."""
    fixed = dict(fixed or {})
    return JointFitProblem(
        inputs=read_joint_inputs(
            samples, shared, convention, kind=kind, name=name, provenance=provenance
        ),
        model=model,
        names=tuple(names),
        fixed=fixed,
        sample_fixed=tuple(sample_keywords(ds, model, fixed) for _, ds in samples),
        kind=kind,
        label=label,
    )


def open_measurement(result: Any) -> tuple[list[tuple[str, Any]], list[str], Any]:
    """(samples (label, dataset), shared systematic names, the joint dataset) of a published
    measurement, every dataset loaded."""
    from farm.publish import open_published, open_sample

    ds = open_published(result).load()
    labels = json.loads(str(ds.attrs["samples"]))
    shared = json.loads(str(ds.attrs.get("shared_systematics", "[]")))
    samples = [(label, open_sample(result, label).load()) for label in labels]
    return samples, shared, ds


def is_measurement(result: Any) -> bool:
    """Whether ``result`` (a path) is a published multi-sample measurement."""
    from pathlib import Path

    from farm.publish import open_published

    path = Path(result)
    if not (path / "zarr.json").is_file():
        return False
    return open_published(path).attrs.get("kind") == "measurement"


def open_problem(
    result: Any,
    model: Callable[..., np.ndarray],
    names: Sequence[str],
    *,
    fixed: Mapping[str, Any] | None = None,
    convention: str = "real",
    kind: str = "xsec",
    label: str = "model",
    sample: str | None = None,
) -> FitProblem | JointFitProblem:
    """The fit problem of a result (a path or a dataset): one sample's, or, for a published
    measurement without ``sample``, the joint one over all its samples."""
    from farm.compare import open_result

    if sample is None and not hasattr(result, "data_vars") and is_measurement(result):
        samples, shared, ds = open_measurement(result)
        provenance = {
            key: str(ds.attrs[key])
            for key in ("measurement", "config_hash", "sample_config_hashes")
            if key in ds.attrs
        }
        return joint_problem(
            samples,
            shared,
            model,
            names,
            fixed=fixed,
            convention=convention,
            kind=kind,
            label=label,
            name=str(ds.attrs.get("measurement", ds.attrs.get("sample", ""))),
            provenance=provenance,
        )
    return FitProblem(
        inputs=read_inputs(open_result(result, sample=sample).load(), convention, kind=kind),
        model=model,
        names=tuple(names),
        fixed=dict(fixed or {}),
        kind=kind,
        label=label,
    )
