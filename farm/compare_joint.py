"""A model against every sample of a multi-sample measurement, with the covariance across them.

Each sample is compared as :func:`farm.compare.compare` compares it alone. The combined χ² is the
joint fit's statistic (:mod:`farm.fit.joint`) with nothing free: the model folded with each
sample's flux in each of its universes, Δ = measured − predicted over the concatenated truth bins,
its covariance over every systematic's universes with a shared systematic's throws lined up
across the samples (the cross-sample blocks), and V_stat block diagonal,

    χ² = Δ₀ᵀ (V_mm + V_pp − V_mp − V_pm + V_stat)⁻¹ Δ₀,   dof = the bins of all samples.

For the models ``farm run`` attached to every sample this is the measurement's stored
``chi2_<convention>_joint``. Without the cross-sample blocks it is the sum of the samples' own χ²;
both are reported. The flux share S_j only (``quantity="share"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scipy.stats

from farm.analysis.chi2 import Chi2Result
from farm.compare import ComparisonResult

__all__ = ["JointComparison", "compare_joint"]


def _result(value: float, dof: int) -> Chi2Result:
    return Chi2Result(chi2=value, dof=dof, pvalue=float(scipy.stats.chi2.sf(value, dof)))


@dataclass(frozen=True, kw_only=True, eq=False)
class JointComparison:
    """A model against a measurement: combined χ² per convention and each sample's comparison."""

    name: str
    measurement: str
    samples: tuple[str, ...]
    shared: tuple[str, ...]
    per_sample: tuple[ComparisonResult, ...]
    combined: dict[str, Chi2Result]
    """Per convention, χ² with the joint covariance (cross-sample blocks included)."""
    separate: dict[str, Chi2Result]
    """Per convention, the same without the cross-sample blocks (the sum of the samples' χ²)."""

    def __repr__(self) -> str:
        from farm._repr import chi2_text, lines

        head = (
            f"JointComparison({self.name!r} against {self.measurement}: "
            f"{', '.join(self.samples)}; shared {', '.join(self.shared) or 'none'})"
        )
        body = [
            f"{c + ':':<8} combined {chi2_text(self.combined[c])}, "
            f"samples as independent {chi2_text(self.separate[c])}"
            for c in ("real", "nominal")
        ]
        return lines(head, body)


def compare_joint(
    result: str | Path,
    model: object,
    *,
    kind: str = "xsec",
    name: str | None = None,
) -> JointComparison:
    """Compare a model with every sample of a published measurement, and with all together.

    ``model`` as for :func:`farm.compare.compare` (callable, ``"module:callable"``, a table).
    """
    from farm.compare import compare
    from farm.compare_models import resolve_model
    from farm.fit.joint import JointFitProblem, open_measurement, read_joint_inputs

    if kind not in ("xsec", "dxsec"):
        msg = f"kind must be 'xsec' (σ(E_ν)) or 'dxsec' (dσ/dX); got {kind!r}"
        raise ValueError(msg)
    function, default_name = resolve_model(model)
    label = name or default_name
    samples, shared, ds = open_measurement(result)
    per_sample = tuple(compare(s, function, kind=kind, name=label) for _, s in samples)
    combined: dict[str, Chi2Result] = {}
    separate: dict[str, Chi2Result] = {}
    inputs: Any = None
    for c in ("real", "nominal"):
        inputs = read_joint_inputs(samples, shared, c, kind=kind)
        problem = JointFitProblem(inputs=inputs, model=function, names=(), kind=kind, label=label)
        dof = problem.n_bins
        combined[c] = _result(problem.chi2(()), dof)
        alone = JointFitProblem(
            inputs=inputs, model=function, names=(), kind=kind, label=label, cross=False
        )
        separate[c] = _result(alone.chi2(()), dof)
    return JointComparison(
        name=label,
        measurement=str(ds.attrs.get("measurement", ds.attrs.get("sample", ""))),
        samples=tuple(label for label, _ in samples),
        shared=tuple(n for n, _ in inputs.shared),
        per_sample=per_sample,
        combined=combined,
        separate=separate,
    )
