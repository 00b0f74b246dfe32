"""What every variable and coordinate of the result dataset is: the registry that
:mod:`farm.analysis.metadata` applies when the dataset is built.

Each name of :data:`VARIABLES` maps to ``(long_name, units, description)``; ``{c}`` in a name
stands for the flux convention (``real``, ``nominal``) and ``{t}`` for the chi-square test
(``joint``, ``uncorrelated``). Units that depend on the result are placeholders filled from the
dataset itself (:func:`farm.analysis.metadata.describe`):

- ``{share}``: the seed's flux share S_j and its predictions, ``cm2 per target``;
  ``{share2}``, its covariances, ``cm4`` (``(cm2 per target)^2``);
- ``{sigma}``: the cross section as quoted (``cm2 per Ar nucleus``, ``cm2/MeV per CsI nucleus
  …``; farm.analysis.quoted), ``{sigma2}`` its square;
- ``{truth}``, ``{reco}``: the units of the truth variable and of the reconstructed observable
  (farm.store.schema); ``{fluence}``: ``nu / cm2 over the exposure``.

``1`` is a dimensionless number (a ratio, an index, a count of universes, a flag), ``text`` a
label. :func:`farm.analysis.metadata.describe` refuses a dataset with a variable the registry does not know, so that
a new variable cannot be published without its metadata; the README's dataset table is
generated from the same registry (:mod:`farm.analysis.dataset_table`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONVENTIONS", "FLUENCE", "TESTS", "VARIABLES", "Meta", "var_meta"]

CONVENTIONS = ("real", "nominal")
TESTS = ("joint", "uncorrelated")
FLUENCE = "nu / cm2 over the exposure"


@dataclass(frozen=True)
class Meta:
    long_name: str
    units: str
    description: str


def var_meta(long_name: str, units: str, description: str) -> Meta:
    return Meta(long_name, units, description)


VARIABLES: dict[str, Meta] = {
    # --- coordinates ---------------------------------------------------------------------------
    "universe": var_meta(
        "universe",
        "1",
        "universe index: 0 is the central value, then the throws of every systematic in order",
    ),
    "universe_systematic": var_meta(
        "systematic of the universe", "text", "the systematic each universe throws (cv for 0)"
    ),
    "universe_group": var_meta(
        "group of the universe", "text", "the systematic group of each universe (cv for 0)"
    ),
    "reco_bin": var_meta(
        "reco bin", "1", "index of the bin of the reconstructed observable (edges reco_lo, reco_hi)"
    ),
    "reco_lo": var_meta(
        "reconstructed {observable}, lower bin edge",
        "{reco}",
        "lower edge of each reco bin, in the observable's units",
    ),
    "reco_hi": var_meta(
        "reconstructed {observable}, upper bin edge",
        "{reco}",
        "upper edge of each reco bin, in the observable's units",
    ),
    "truth_bin": var_meta(
        "true {truth_variable}, bin centre",
        "{truth}",
        "centre of each truth bin (edges truth_lo, truth_hi); the index 0 for one total bin",
    ),
    "truth_bin_2": var_meta(
        "true {truth_variable}, bin centre (second axis)",
        "{truth}",
        "the truth bins again, as the second axis of a covariance or correlation matrix",
    ),
    "truth_lo": var_meta(
        "true {truth_variable}, lower bin edge", "{truth}", "lower edge of each truth bin"
    ),
    "truth_hi": var_meta(
        "true {truth_variable}, upper bin edge", "{truth}", "upper edge of each truth bin"
    ),
    "flux_bin": var_meta(
        "flux bin",
        "text",
        "flavour:lo-hi (MeV) of each E_nu bin of the flux systematics; the last, untouched, "
        "holds all flux outside them",
    ),
    "flux_bin_flavor": var_meta("flux bin flavour", "text", "neutrino flavour of each flux bin"),
    "flux_bin_lo_mev": var_meta(
        "flux bin, lower E_nu edge", "MeV", "lower E_nu edge of each flux bin (NaN: untouched)"
    ),
    "flux_bin_hi_mev": var_meta(
        "flux bin, upper E_nu edge", "MeV", "upper E_nu edge of each flux bin (NaN: untouched)"
    ),
    "group": var_meta(
        "systematic group",
        "text",
        "groups whose covariances add into the total (flux, xsec, detector, background, mcstat, "
        "or a configured one); all_knobs is a cross-check kept out of the total",
    ),
    "systematic": var_meta("systematic", "text", "name of each [[systematics]] entry"),
    "systematic_kind": var_meta(
        "kind of systematic", "text", "flux, knob, bootstrap or weights, and how it was thrown"
    ),
    "systematic_group": var_meta(
        "group of the systematic", "text", "the group each systematic adds into"
    ),
    "model": var_meta(
        "model",
        "text",
        "cross-section model: generator (the generator's own) first, then every [[models]] entry",
    ),
    "joint_bin": var_meta(
        "joint bin",
        "1",
        "index into (measured truth bins, then predicted truth bins) of a joint covariance",
    ),
    "joint_bin_2": var_meta(
        "joint bin (second axis)", "1", "the joint bins again, as the second axis of the matrix"
    ),
    # --- raw per-universe vectors --------------------------------------------------------------
    "data_counts": var_meta(
        "data counts",
        "events",
        "measured (or fake-data) events per reco bin, before any subtraction",
    ),
    "signal_reco": var_meta(
        "expected selected signal",
        "events",
        "selected signal events per reco bin in each universe (the MC, scaled to the exposure)",
    ),
    "background_reco": var_meta(
        "expected selected background", "events", "selected background events per reco bin"
    ),
    "truth_counts": var_meta(
        "signal events per truth bin",
        "events",
        "all signal interactions per truth bin, selected or not, in each universe",
    ),
    "response": var_meta(
        "response matrix R",
        "1",
        "P(reco bin i, selected | truth bin j) in each universe (real-flux convention)",
    ),
    "efficiency": var_meta(
        "selection efficiency",
        "1",
        "P(selected | truth bin j) in each universe: the response summed over reco bins",
    ),
    "smearing_nominal": var_meta(
        "smearing matrix M (nominal flux)",
        "1",
        "selected signal in the universe over the signal at the nominal flux per truth bin: the "
        "nominal-flux convention's smearing",
    ),
    "flux": var_meta(
        "flux per flux bin",
        "{fluence}",
        "neutrinos per cm2 over the exposure in each flux bin and universe (not per MeV)",
    ),
    "flux_ratio": var_meta(
        "flux ratio", "1", "the universe's flux over the nominal flux, per flux bin"
    ),
    "integrated_flux": var_meta(
        "integrated signal flux Phi",
        "{fluence}",
        "flux of the signal flavours integrated over energy, per universe; it normalises S_j",
    ),
    "weight_clamped": var_meta(
        "clamped weights",
        "1",
        "number of events whose weight the weight policy changed, per universe",
    ),
    "reco_edges": var_meta(
        "reco bin edges", "{reco}", "edges of the reco bins of [binning] reco_edges"
    ),
    "truth_edges": var_meta(
        "truth bin edges",
        "{truth}",
        "edges of the truth bins of [binning] truth_edges (-inf, inf for one total bin)",
    ),
    "bootstrap_replica": var_meta(
        "bootstrap replica",
        "1",
        "replica number of a Poisson-bootstrap universe (-1 where no bootstrap)",
    ),
    "throw_index": var_meta(
        "throw index",
        "1",
        "index of the universe within its systematic; a throw's seed is (seed, name, index)",
    ),
    "flux_rule_enu": var_meta(
        "flux rule node energy",
        "MeV",
        "E_nu of each node of the nominal flux of the signal flavours, with which a model is "
        "folded (farm compare)",
    ),
    "flux_rule_fluence": var_meta(
        "flux rule node fluence", "{fluence}", "nominal fluence carried by each node"
    ),
    "flux_rule_flavor": var_meta("flux rule node flavour", "1", "PDG code of each node's flavour"),
    "knob_{knob}": var_meta(
        "knob shift: {knob}",
        "{knob_units}",
        "shift of the knob parameter in each universe (0 where not thrown): {knob_text}",
    ),
    # --- the flux share S_j, its covariances and tests -----------------------------------------
    "xsec_{c}": var_meta(
        "S_j, the seed's flux share ({c}-flux convention)",
        "{share}",
        "int_j F sigma dE / Phi extracted in every universe: bin j's share of the flux-averaged "
        "total cross section (not sigma at E_j; sigma_{c} is what is quoted)",
    ),
    "pred_{c}": var_meta(
        "generator's prediction of xsec_{c}",
        "{share}",
        "the generator's own cross section folded like the measurement, in every universe",
    ),
    "model_pred_{c}": var_meta(
        "every model's prediction of xsec_{c}",
        "{share}",
        "each model folded with the flux of each universe (and A_C), in every universe",
    ),
    "additional_smearing_{c}": var_meta(
        "additional smearing A_C ({c}), central value",
        "1",
        "the Wiener-SVD additional smearing applied to every prediction (identity otherwise)",
    ),
    "additional_smearing_universes_{c}": var_meta(
        "additional smearing A_C ({c}), per universe",
        "1",
        "the additional smearing of every universe's extraction",
    ),
    "cov_{c}": var_meta(
        "systematic covariance of xsec_{c}",
        "{share2}",
        "covariance over the universes of the systematics in the total, (cm2 per target)^2",
    ),
    "cov_stat_{c}": var_meta(
        "data-statistics covariance of xsec_{c}",
        "{share2}",
        "from the data's Poisson fluctuations (exact linear propagation, or toys: see the "
        "stat_covariance_{c} attribute)",
    ),
    "cov_group_{c}": var_meta(
        "covariance of xsec_{c} per group",
        "{share2}",
        "the systematic covariance of each group; the groups in the total add up to cov_{c}",
    ),
    "cov_systematic_{c}": var_meta(
        "covariance of xsec_{c} per systematic",
        "{share2}",
        "the covariance of each systematic over its own universes",
    ),
    "cov_total_{c}": var_meta(
        "total covariance of xsec_{c}",
        "{share2}",
        "systematics + data statistics (cov_{c} + cov_stat_{c}): what a chi-square uses",
    ),
    "corr_{c}": var_meta("correlation of xsec_{c}", "1", "correlation matrix of cov_total_{c}"),
    "joint_cov_{c}": var_meta(
        "joint covariance of (measured, predicted), {c}",
        "{share2}",
        "per model, the covariance of (xsec_{c}, model_pred_{c}) over the shared universes "
        "(the systematics in the total); the blocks V_mm, V_mp, V_pm, V_pp",
    ),
    "chi2_{c}_joint": var_meta(
        "chi-square with the measured-predicted correlation ({c})",
        "1",
        "D^T (V_mm + V_pp - V_mp - V_pm + cov_stat_{c})^-1 D, D = measured - predicted of "
        "universe 0: the right one when measurement and prediction share the flux",
    ),
    "chi2_{c}_uncorrelated": var_meta(
        "chi-square ignoring the measured-predicted correlation ({c})",
        "1",
        "as chi2_{c}_joint with V_mp and V_pm dropped",
    ),
    "pvalue_{c}_{t}": var_meta(
        "p-value of chi2_{c}_{t}", "1", "chi-square probability of chi2_{c}_{t} for chi2_dof"
    ),
    "chi2_{c}_{t}_mc_error": var_meta(
        "Monte-Carlo error of chi2_{c}_{t}",
        "1",
        "root-mean-square Monte-Carlo error of the chi-square from the finite universes: "
        "sqrt(jackknife variance + bias^2), delete-one-universe jackknife stratified by "
        "multisim systematic (unisim are exact), at least the Gaussian delta-method error; inf "
        "when a systematic's covariance has the rank its universes allow below the number of "
        "bins (the chi-square then depends on directions no universe reached)",
    ),
    "chi2_{c}_{t}_mc_bias": var_meta(
        "Monte-Carlo bias of chi2_{c}_{t}",
        "1",
        "jackknife estimate of the shift of the chi-square due to the finite universes (too few "
        "universes leave directions of the covariance empty: a positive bias)",
    ),
    "chi2_dof": var_meta(
        "degrees of freedom", "1", "number of truth bins compared by each chi-square"
    ),
    # --- is the covariance usable, were enough universes thrown --------------------------------
    "positive_definite_{c}": var_meta(
        "cov_total_{c} is positive definite",
        "1",
        "cov_total_{c} (systematics + data statistics) has a Cholesky factor. The statistical "
        "covariance makes it definite whatever the universes: it says nothing about whether "
        "enough were thrown (see rank_limited_{c}, mc_rel_error_{c}, universes_converged)",
    ),
    "condition_number_{c}": var_meta(
        "condition number of cov_total_{c}",
        "1",
        "largest over smallest eigenvalue: how much the inverse amplifies rounding",
    ),
    "cov_mc_error_{c}": var_meta(
        "Monte-Carlo error of cov_{c}",
        "{share2}",
        "Monte-Carlo standard error of each element of cov_{c} from the finite universes "
        "(multisim systematics, added in quadrature)",
    ),
    "mc_rel_error_{c}": var_meta(
        "relative Monte-Carlo error of each systematic's covariance ({c})",
        "1",
        "largest relative Monte-Carlo standard error of a variance of the systematic's "
        "covariance from its universes (sqrt(2/N) for N Gaussian throws, more for heavier "
        "tails; 0 for an exact ±1 sigma unisim)",
    ),
    "cov_rank_{c}": var_meta(
        "rank of each systematic's covariance ({c})",
        "1",
        "numerical rank of each systematic's covariance; one from N universes has rank <= N "
        "(N - 1 about the mean)",
    ),
    "rank_limited_{c}": var_meta(
        "rank limited by the universes ({c})",
        "1",
        "the rank reached the number of universes below the number of truth bins: the "
        "covariance lacks directions because too few universes were thrown",
    ),
    "n_universes": var_meta("universes thrown", "1", "number of universes of each systematic"),
    "universes_needed": var_meta(
        "universes needed",
        "1",
        "universes each systematic needs for [analysis] universe_precision (its own count for "
        "an exact unisim)",
    ),
    "universes_converged": var_meta(
        "universes converged",
        "1",
        "the systematic's covariance is known to universe_precision and its rank is not "
        "limited by the universes",
    ),
    # --- the cross section as quoted (farm.analysis.quoted) ------------------------------------
    "sigma_{c}": var_meta(
        "{quantity}, {c}-flux convention",
        "{sigma}",
        "the cross section as physicists quote it, in every universe: <sigma>_j in E_nu bins, "
        "dsigma/dx_j = S_j / dx_j in kinematic bins, the flux-averaged total for one bin",
    ),
    "sigma_factor_{c}": var_meta(
        "sigma_{c} / xsec_{c}",
        "{sigma_factor}",
        "the factor D that takes the seed's flux share S_j to sigma (Phi_u / Phi_j,u, 1 / dx_j "
        "or 1)",
    ),
    "model_sigma_{c}": var_meta(
        "every model's prediction of sigma_{c}",
        "{sigma}",
        "model_pred_{c} times sigma_factor_{c}, in every universe",
    ),
    "cov_sigma_{c}": var_meta(
        "systematic covariance of sigma_{c} over the universes",
        "{sigma2}",
        "covariance over the universes of the systematics in the total",
    ),
    "cov_stat_sigma_{c}": var_meta(
        "data-statistics covariance of sigma_{c}",
        "{sigma2}",
        "D_0 cov_stat_{c} D_0 with D_0 = sigma_factor_{c} of universe 0",
    ),
    "cov_total_sigma_{c}": var_meta(
        "total covariance of sigma_{c} (systematics + data statistics)",
        "{sigma2}",
        "cov_sigma_{c} + cov_stat_sigma_{c}: the uncertainty to quote with sigma_{c}",
    ),
    "cov_group_sigma_{c}": var_meta(
        "covariance of sigma_{c} per systematic group",
        "{sigma2}",
        "the systematic covariance of sigma_{c} of each group",
    ),
}
"""Name (with ``{c}``, ``{t}``, ``{knob}`` placeholders) → metadata; see the module docstring."""
