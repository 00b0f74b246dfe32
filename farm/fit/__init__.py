"""``farm fit``: named parameters of a model from a farm result, with the joint covariance.

A model with parameters, ``model(enu_mev, flavor, **params) -> σ`` (e.g.
:func:`farm.models.cevns` with ``sin2w`` and ``rn``), is re-predicted in every flux universe at
each θ and compared with the measurement through the covariance of their difference over the
shared universes (:mod:`farm.fit.problem`); MINUIT gives the best fit, Hesse errors and Wilks
intervals (:mod:`farm.fit.minimize`); Feldman–Cousins intervals come from pseudo-experiments run
as dask tasks (:mod:`farm.fit.toys`, :mod:`farm.fit.fc`). docs/fit.md has the formulas, the
validation and the outputs.

    >>> from farm.fit import fit  # doctest: +SKIP
    >>> r = fit("results/sns-csi.zarr", "farm.models:cevns", ["sin2w"])  # doctest: +SKIP
    >>> r.best.values, r.fc[0].intervals  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from farm.fit.params import BoundModel, Parameter, parse_parameter
from farm.fit.problem import FitProblem, read_inputs
from farm.fit.run import FitResult, FitSettings, run_fit

__all__ = [
    "BoundModel",
    "FitProblem",
    "FitResult",
    "FitSettings",
    "Parameter",
    "fit",
    "read_inputs",
]


def fit(
    result: str | Path | Any,
    model: object,
    params: Sequence[str | Parameter],
    *,
    fixed: Mapping[str, Any] | None = None,
    convention: str = "real",
    kind: str = "xsec",
    settings: FitSettings | None = None,
    asimov: bool = False,
    options: Any = None,
    checkpoint_dir: str | Path | None = None,
    sample: str | None = None,
) -> FitResult:
    """Fit ``params`` of ``model`` to a farm result (a path or the dataset).

    Parameters
    ----------
    result : path or xarray.Dataset
        A result of ``farm run``. A multi-sample measurement's path fits all its samples
        together with the covariance across them (:mod:`farm.fit.joint`); ``sample`` fits one.
    model : callable or str
        ``model(enu_mev, flavor, **params)`` in cm² per target, or ``"module:callable"``.
    params : sequence of str or Parameter
        One or two free parameters: ``"sin2w"``, ``"rn=4.8:3:8"`` (NAME[=START][:LO:HI]) or
        :class:`Parameter`.
    fixed : mapping, optional
        Keywords of the model held fixed (e.g. ``{"material": "Ar"}``).
    convention : {"real", "nominal"}
    settings : FitSettings, optional
        Confidence levels, grid, toys (default 1000 per point; 0 for Wilks only), seed, ...
    asimov : bool
        Fit the model's own prediction at the parameters' start values instead of the data.
    options : farm.cluster.ClusterOptions, optional
        Where the toys run (default: in this process).
    checkpoint_dir : path, optional
        Checkpoint the toy blocks here (resume).
    sample : str, optional
        For a multi-sample measurement: fit this sample's own result alone.
    """
    from farm.compare_models import resolve_model
    from farm.fit.joint import open_problem

    function, name = resolve_model(model)
    parsed = [p if isinstance(p, Parameter) else parse_parameter(p, function, name) for p in params]
    problem = open_problem(
        result,
        function,
        [p.name for p in parsed],
        fixed=fixed,
        convention=convention,
        kind=kind,
        label=name,
        sample=sample,
    )
    if asimov:
        problem = problem.asimov([p.start for p in parsed])
    return run_fit(
        problem, parsed, settings or FitSettings(), options=options, checkpoint_dir=checkpoint_dir
    )
