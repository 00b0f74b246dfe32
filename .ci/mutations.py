#!/usr/bin/env python3
"""Mutation check of the physics and statistics modules: can the tests fail?

Each mutation is a careless edit that a reviewer could miss (F instead of F², a swapped isotope,
1/N for 1/(N − 1), a dropped covariance term, ...). For each one this script

1. copies the working tree (without .git, caches, stores and results) to a temporary directory,
2. asserts that the original snippet occurs exactly once in the named module, and applies the
   mutation,
3. runs the named test files there with ``pytest -x -q`` and ``PYTHONPATH`` pointing at the copy
   (after checking that ``import farm`` really resolves to the copy, not to the editable install),
4. records whether the tests failed ("caught", with the first failing test id) or passed
   ("SURVIVED").

Before the mutations it runs every named test file once on an unmutated copy: a test that already
fails would make a mutation look caught, so such tests are deselected from the mutation runs (and
counted in the table); a test file that fails as a whole (collection error) makes its mutations
errors.

It prints a markdown table (mutation | module | caught by) and exits non-zero if any mutation
survives, a snippet is missing or ambiguous, or a named test file cannot even be collected.
Whole run: about 3–5 minutes on 2 cores with the default 2 jobs.

    python3 .ci/mutations.py                 # everything, 2 jobs
    python3 .ci/mutations.py --jobs 1 -k ibd # only mutations whose description or module has "ibd"
    python3 .ci/mutations.py --list          # the mutations, without running anything

Not collected by pytest (it lives in .ci/ and is not named test_*).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns(
    ".git",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
    "*.egg-info",
    "*.zarr",
    "stores",
    "results",
    ".venv",
    "build",
    "dist",
)
PER_RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Mutation:
    module: str
    original: str
    mutated: str
    description: str
    tests: tuple[str, ...]


def m(module: str, original: str, mutated: str, description: str, *tests: str) -> Mutation:
    return Mutation(module, original, mutated, description, tuple(f"tests/{t}" for t in tests))


CEVNS = "farm/physics/cevns.py"
FLUX = "farm/physics/flux.py"
REACTOR = "farm/physics/reactor.py"
IBD = "farm/physics/ibd.py"
CCQE = "farm/physics/ccqe.py"
DETECTOR = "farm/physics/detector.py"
EXTRACT = "farm/analysis/extract.py"
COV = "farm/analysis/covariance.py"
COVS = "farm/analysis/covariances.py"
CHI2 = "farm/analysis/chi2.py"

# fmt: off
# one entry per mutation: module, original snippet, mutated snippet, description, test files
MUTATIONS: list[Mutation] = [
    # --- CEvNS ----------------------------------------------------------------------------------
    m(CEVNS, "    return ff * ff * kinematic",
      "    return ff * kinematic",
      "CEvNS with the form factor F instead of F²", "test_physics_cevns.py"),
    m(CEVNS, "nucleus.mass_mev * qw * qw / (4.0 * np.pi)",
      "nucleus.mass_mev * qw / (4.0 * np.pi)",
      "CEvNS ∝ Q_W instead of Q_W²", "test_physics_cevns.py"),
    m(CEVNS, "1.0 - t * (1.0 / enu + mass / (2.0 * enu * enu))",
      "1.0 - t * (1.0 / enu - mass / (2.0 * enu * enu))",
      "sign of MT/2E² in the kinematic factor (1 − T/E − MT/2E²)", "test_physics_cevns.py"),
    m(CEVNS, "1.0 - t * (1.0 / enu + mass / (2.0 * enu * enu))",
      "1.0 + t * (1.0 / enu + mass / (2.0 * enu * enu))",
      "kinematic factor 1 + T/E + MT/2E²", "test_physics_cevns.py"),
    m(CEVNS, "return nucleus.n - (1.0 - 4.0 * sin2w) * nucleus.z",
      "return nucleus.n + (1.0 - 4.0 * sin2w) * nucleus.z",
      "tree-level weak charge N + (1 − 4 sin²θ_W) Z", "test_physics_cevns.py"),
    m(CEVNS, "+ nucleus.n * GV_NEUTRON)",
      "- nucleus.n * GV_NEUTRON)",
      "corrected weak charge −2(Z g_V^p − N g_V^n)", "test_physics_cevns.py"),
    m(CEVNS, "HELM_SKIN_FM = 0.9\n",
      "HELM_SKIN_FM = 0.8\n",
      "Helm skin thickness s = 0.8 fm instead of 0.9 fm", "test_physics_cevns.py"),
    m(CEVNS, "_HELM_C_OFFSET_FM = 0.60",
      "_HELM_C_OFFSET_FM = 0.50",
      "Helm c = 1.23 A^⅓ − 0.50 fm instead of − 0.60 fm", "test_physics_cevns.py"),
    m(CEVNS, "KLEIN_NYSTRAND_RANGE_FM = 0.7\n",
      "KLEIN_NYSTRAND_RANGE_FM = 0.6\n",
      "Klein–Nystrand Yukawa range 0.6 fm instead of 0.7 fm", "test_physics_cevns.py"),
    m(CEVNS, "return 2.0 * enu * enu / (_float_array(mass_mev) + 2.0 * enu)",
      "return 2.0 * enu * enu / _float_array(mass_mev)",
      "T_max = 2E²/M (recoil term 2E dropped)", "test_physics_cevns.py"),
    # --- π-DAR and reactor fluxes ---------------------------------------------------------------
    m(FLUX, '    if flavor == "nue":\n        density = 192.0',
      '    if flavor == "numubar":\n        density = 192.0',
      "π-DAR ν_e and ν̄_μ Michel spectra swapped", "test_physics_flux.py"),
    m(FLUX, '    if flavor == "nue":\n        return x**3 * (4.0 - 3.0 * x)',
      '    if flavor == "numubar":\n        return x**3 * (4.0 - 3.0 * x)',
      "π-DAR sampler: ν_e and ν̄_μ Michel CDFs swapped", "test_physics_flux.py"),
    m(FLUX, "(MASS_PION_MEV**2 - MASS_MUON_MEV**2) / (2.0 * MASS_PION_MEV)",
      "(MASS_PION_MEV**2 - MASS_MUON_MEV**2) / (2.0 * MASS_MUON_MEV)",
      "prompt ν_μ line (m_π² − m_μ²)/(2m_μ) instead of /(2m_π)", "test_physics_flux.py"),
    m(FLUX, "return (0.28 * e**2 - 1.12 * e + 1.79 - 0.68 / e) / 3.0",
      "return 0.28 * e**2 - 1.12 * e + 1.79 - 0.68 / e",
      "SNS yield of all flavours used as the yield per flavour", "test_physics_flux.py"),
    m(FLUX, "/ (4.0 * np.pi * distance_cm**2)",
      "/ (2.0 * np.pi * distance_cm**2)",
      "SNS fluence over 2πL² instead of 4πL² (physics.flux)", "test_physics_flux.py"),
    m("farm/flux/sources.py", "return sns_pot(source) * per_pot / (4.0 * math.pi * distance_cm**2)",
      "return sns_pot(source) * per_pot / (2.0 * math.pi * distance_cm**2)",
      "SNS fluence over 2πL² instead of 4πL² (the run's flux and the sample weights)",
      "test_samples.py"),
    m("farm/flux/sources.py",
      "return reactor_fissions(source) * _spectrum_integral(source) / (4.0 * math.pi * distance_cm**2)",
      "return reactor_fissions(source) * _spectrum_integral(source) / (2.0 * math.pi * distance_cm**2)",
      "reactor fluence over 2πL² instead of 4πL² (sample weights)", "test_samples.py"),
    m("farm/flux/sources.py",
      "scale = reactor_fissions(source) / (4.0 * math.pi * (source.distance_m * 100.0) ** 2)",
      "scale = reactor_fissions(source) / (2.0 * math.pi * (source.distance_m * 100.0) ** 2)",
      "reactor fluence over 2πL² instead of 4πL² (the run's flux spectrum)", "test_samples.py"),
    m("farm/flux/model.py",
      "(lo[b] + within * (hi[b] - lo[b])) ** (1.0 / (power + 1.0)),",
      "(lo[b] + within * (hi[b] - lo[b])) ** (1.0 / power),",
      "tilted draw from a flux histogram inverts E^p instead of E^(p+1) within a bin",
      "test_flux_generation.py"),
    m("farm/flux/model.py",
      "np.divide(moment, energies**power, out=factor, where=energies > 0)",
      "np.divide(1.0, energies**power, out=factor, where=energies > 0)",
      "importance-sampling factor without the moment M_p/Φ", "test_flux_generation.py"),
    m("farm/ingest/pipeline.py",
      "                source_entries=start + (np.arange(kept) if kept_rows is None else kept_rows),",
      "                source_entries=start + np.arange(kept),",
      "ingest numbers the kept events' input entries without the gaps keep leaves",
      "test_weights.py"),
    m(FLUX, "u, e = cdf[rising] / cdf[-1], e_fine[rising]",
      "u, e = cdf[rising] / cdf[-1], np.sqrt(e_fine[rising] * e_fine[-1])",
      "reactor energies drawn from a distorted inverse CDF", "test_physics_flux.py"),
    m(FLUX, '    if flavor != "numu":\n        t += rng.exponential(MUON_LIFETIME_S',
      '    if flavor == "numubar":\n        t += rng.exponential(MUON_LIFETIME_S',
      "ν_e produced without the muon lifetime delay", "test_physics_flux.py"),
    m(FLUX, '    "U235": (4.367, -4.577, 2.100, -0.5294, 0.06186, -0.002777),\n    "U238": (0.4833, 0.1927, -0.1283, -0.006762, 0.002233, -0.0001536),\n    "Pu239": (4.757, -5.392, 2.563, -0.6596, 0.07820, -0.003536),\n',
      '    "U235": (4.757, -5.392, 2.563, -0.6596, 0.07820, -0.003536),\n    "U238": (0.4833, 0.1927, -0.1283, -0.006762, 0.002233, -0.0001536),\n    "Pu239": (4.367, -4.577, 2.100, -0.5294, 0.06186, -0.002777),\n',
      "Huber coefficients of ²³⁵U and ²³⁹Pu swapped", "test_physics_flux.py"),
    m(FLUX, '"U238": (0.4833, 0.1927, -0.1283,',
      '"U238": (0.4833, -0.1927, -0.1283,',
      "Mueller ²³⁸U coefficient a₁ with the wrong sign", "test_physics_flux.py"),
    m(REACTOR, '    "U235": 202.36,\n    "U238": 205.99,\n    "Pu239": 211.12,\n',
      '    "U235": 211.12,\n    "U238": 205.99,\n    "Pu239": 202.36,\n',
      "energy per fission of ²³⁵U and ²³⁹Pu swapped", "test_physics_flux.py"),
    m(REACTOR, "lo, hi = IBD_THRESHOLD_MEV, REACTOR_MAX_ENERGY_MEV",
      "lo, hi = 2.0, REACTOR_MAX_ENERGY_MEV",
      "IBD yield per fission integrated from 2 MeV instead of the threshold", "test_physics_xsec.py"),
    # --- IBD and CCQE ---------------------------------------------------------------------------
    m(IBD, "IBD_THRESHOLD_MEV = ((MASS_NEUTRON_MEV + MASS_ELECTRON_MEV) ** 2",
      "IBD_THRESHOLD_MEV = ((MASS_NEUTRON_MEV - MASS_ELECTRON_MEV) ** 2",
      "IBD threshold with (m_n − m_e)² instead of (m_n + m_e)²", "test_physics_xsec.py"),
    m(IBD, "1.0e-43 * pe * ee * e_safe**exponent",
      "1.0e-43 * ee * ee * e_safe**exponent",
      "IBD σ ∝ E_e² instead of p_e E_e (Strumia–Vissani fit)", "test_physics_xsec.py"),
    m(IBD, "    return 1.0 + ALPHA_EM / np.pi * (",
      "    return 1.0 - ALPHA_EM / np.pi * (",
      "IBD radiative correction with the wrong sign", "test_physics_xsec.py"),
    m(IBD, "        * SV_COS_CABIBBO**2\n",
      "        * SV_COS_CABIBBO\n",
      "IBD ∝ cos θ_C instead of cos² θ_C", "test_physics_xsec.py"),
    m(IBD, "e - DELTA_NP_MEV + _M_E, 0.0)",
      "e - DELTA_NP_MEV - _M_E, 0.0)",
      "IBD prompt energy E_e − m_e instead of E_e + m_e", "test_physics_xsec.py"),
    m(CCQE, "sign = 1.0 if antineutrino else -1.0",
      "sign = -1.0 if antineutrino else 1.0",
      "CCQE interference term (B) sign flipped", "test_physics_xsec.py"),
    m(CCQE, "FERMI_CONSTANT_MEV2**2 * V_UD**2 / (8.0 * np.pi",
      "FERMI_CONSTANT_MEV2**2 * V_UD / (8.0 * np.pi",
      "CCQE ∝ V_ud instead of V_ud²", "test_physics_xsec.py"),
    m(CCQE, "f_a = GA_NUCLEON / (1.0 + q2_safe / ma_mev**2) ** 2",
      "f_a = GA_NUCLEON / (1.0 + q2_safe / ma_mev**2)",
      "CCQE axial form factor a monopole instead of a dipole", "test_physics_xsec.py"),
    m(CCQE, "f_p = 2.0 * m2 * f_a / (MASS_PION_MEV**2 + q2_safe)",
      "f_p = 2.0 * m2 * f_a / (MASS_PION_MEV**2 - q2_safe)",
      "CCQE pseudoscalar pion pole at Q² = +m_π² instead of −m_π²", "test_physics_xsec.py"),
    # --- detector response ----------------------------------------------------------------------
    m(DETECTOR, "(0.0554628, 4.30681, -111.707, 840.384)",
      "(0.0554628, 4.30681, -111.707, 804.384)",
      "CsI quenching coefficient c₄ = 804.384 instead of 840.384", "test_physics_detector.py"),
    m(DETECTOR, "k_value = 0.133 * z ** (2.0 / 3.0) / np.sqrt(a)",
      "k_value = 0.157 * z ** (2.0 / 3.0) / np.sqrt(a)",
      "Lindhard k = 0.157 Z^⅔/√A instead of 0.133 Z^⅔/√A", "test_physics_detector.py"),
    m(DETECTOR, "eps = 11.5 * z ** (-7.0 / 3.0) * e_kev",
      "eps = 11.5 * z ** (-3.0 / 7.0) * e_kev",
      "Lindhard ε with Z^(−3/7) instead of Z^(−7/3)", "test_physics_detector.py"),
    m(DETECTOR, "LAR_QF_SLOPE_PER_KEVNR = 0.00078\n",
      "LAR_QF_SLOPE_PER_KEVNR = 0.00087\n",
      "LAr quenching slope 0.00087/keVnr instead of 0.00078", "test_physics_detector.py"),
    m(DETECTOR, "return enr * lar_quenching_factor(enr * 1.0e3, **params)",
      "return enr * lar_quenching_factor(enr, **params)",
      "LAr quenching factor evaluated at T in MeV instead of keV", "test_physics_detector.py"),
    # --- extraction and flux conventions --------------------------------------------------------
    m("farm/analysis/pipeline.py", "phi_bins = binned_flux(prep.rule, prep.flux_bins, signal_flavors)",
      "phi_bins = binned_flux(prep.rule, prep.flux_bins)",
      "Φ summed over all flavours instead of the signal flavours", "test_flux_conventions.py"),
    m(EXTRACT, "    return np.maximum(data, 0.0)\n",
      "    return 0.5 * np.maximum(data, 0.0)\n",
      "statistical covariance halved (Poisson variance of the data d/2)", "test_flux_conventions.py"),
    m(EXTRACT, "cov = weighted @ weighted.T",
      "cov = 0.5 * weighted @ weighted.T",
      "statistical covariance halved (linear extraction)", "test_flux_conventions.py"),
    m(EXTRACT, "cov=np.atleast_2d(np.cov(values, rowvar=False)),",
      "cov=0.5 * np.atleast_2d(np.cov(values, rowvar=False)),",
      "statistical covariance halved (Poisson toys)", "test_flux_conventions.py"),
    m(EXTRACT, "    signal_reco = data[None, :] - hists.background",
      "    signal_reco = data[None, :] + hists.background",
      "background added to the data instead of subtracted", "test_flux_conventions.py"),
    m(EXTRACT, "        xsec_real=truth_real / scale_real[:, None],",
      "        xsec_real=truth_real / scale_nominal,",
      "real-flux convention divided by the nominal Φ", "test_flux_conventions.py"),
    m(EXTRACT, "    scale_nominal = n_targets * phi[0]\n",
      "    scale_nominal = n_targets * phi[-1]\n",
      "nominal-flux convention divided by a universe's Φ instead of the nominal", "test_flux_conventions.py"),
    m("farm/analysis/histograms.py", "    truth_nominal[universes.is_flux()] = truth[0]\n",
      "    truth_nominal[universes.is_flux()] = truth[universes.is_flux()]\n",
      "nominal-flux smearing denominator at the universe flux instead of the nominal", "test_flux_conventions.py"),
    m("farm/analysis/pipeline.py", "hists.truth_nominal_flux / (prep.n_targets * phi[0]),",
      "hists.truth_nominal_flux / (prep.n_targets * phi[:, None]),",
      "generator's nominal-flux prediction divided by each universe's Φ", "test_flux_conventions.py"),
    m("farm/analysis/predict.py", "    real = (flux_ratio @ g) / phi[:, None]\n",
      "    real = (flux_ratio @ g) / phi[0]\n",
      "real-flux model prediction divided by the nominal Φ", "test_flux_conventions.py"),
    m("farm/analysis/predict.py", "    nominal = np.broadcast_to(g.sum(axis=0) / phi[0], real.shape)",
      "    nominal = (flux_ratio @ g) / phi[:, None]",
      "nominal-flux model prediction folded with each universe's flux", "test_flux_conventions.py"),
    # --- covariances and chi-square -------------------------------------------------------------
    m(COV, '    return n_universe if normalization == "n" else n_universe - 1',
      '    return n_universe - 1 if normalization == "n" else n_universe',
      "covariance normalisation 1/N and 1/(N − 1) swapped", "test_covariance.py"),
    m(COV, '    if center == "mean":\n        return values.mean(axis=0)',
      '    if center == "cv":\n        return values.mean(axis=0)',
      "covariance centre CV and universe mean swapped", "test_covariance.py"),
    m(COVS, "    central = values[0]\n",
      "    central = values[1:].mean(axis=0)\n",
      "per-systematic covariance about the universe mean instead of the CV", "test_flux_conventions.py"),
    m(COVS, "        total=per_syst[in_total].sum(axis=0),",
      "        total=per_syst.sum(axis=0),",
      "total covariance includes systematics not counted in the total", "test_dataset.py"),
    m(COVS, "        if not counted:\n            continue\n",
      "",
      "joint covariance includes systematics not counted in the total", "test_dataset.py"),
    m(COVS, "            central_predicted=predicted[0],",
      "            central_predicted=measured[0],",
      "joint covariance: prediction deviations about the measured CV", "test_flux_conventions.py"),
    m("farm/analysis/dataset.py", "    total = cov.total + stat\n",
      "    total = cov.total\n",
      "published total covariance without the statistical part", "test_dataset.py"),
    m("farm/analysis/joint.py", "        central=np.concatenate([x_a[0], x_b[0]]),",
      "        central=np.concatenate([x_a[0], x_b[1]]),",
      "cross-sample covariance about universe 1 of the second sample, not its CV",
      "test_joint.py"),
    m("farm/analysis/joint.py",
      "                joint[m][np.ix_(ia, ib)] += block\n                joint[m][np.ix_(ib, ia)] += block.T\n",
      "                pass\n",
      "joint χ² without the cross-sample measured–predicted blocks", "test_joint.py"),
    m("farm/fit/joint.py", "    cross: bool = True\n",
      "    cross: bool = False\n",
      "joint fit without the cross-sample blocks", "test_joint_fit.py"),
    m("farm/fit/joint.py",
      "                (k, shared_universe_rows(samples[first], samples[k], n)[1]) for k in owners[1:]",
      "                (k, shared_universe_rows(samples[first], samples[k], n)[1][::-1]) for k in owners[1:]",
      "joint fit pairs a shared systematic's universes of different throws", "test_joint_fit.py"),
    m(CHI2, "        cholesky = np.linalg.cholesky(matrix)",
      "        cholesky = np.sqrt(matrix * np.eye(matrix.shape[-1]))",
      "χ² with only the diagonal of the covariance", "test_chi2.py"),
    m(CHI2, "        result = result + stat\n",
      "        result = result + 0.0 * stat\n",
      "χ² drops the statistical covariance", "test_chi2.py"),
    m(CHI2, "        result = result - matrix[:n, n:] - matrix[n:, :n]",
      "        result = result + 0.0 * matrix[:n, n:]",
      "joint χ² drops the measured–predicted cross term", "test_chi2.py"),
    m(CHI2, "        result = result - matrix[:n, n:] - matrix[n:, :n]",
      "        result = result + matrix[:n, n:] + matrix[n:, :n]",
      "joint χ² adds the measured–predicted cross term", "test_chi2.py"),
    m(CHI2, "        result = result - matrix[:n, n:] - matrix[n:, :n]",
      "        result = result - 2.0 * matrix[:n, n:]",
      "joint χ² uses V_mp twice instead of V_mp + V_pm", "test_chi2.py"),
    m(CHI2, "    dof = measured.size\n",
      "    dof = measured.size - 1\n",
      "χ² degrees of freedom n − 1 instead of n", "test_chi2.py"),
    # --- reweighting and bootstrap --------------------------------------------------------------
    m("farm/reweight/flux.py", "out += ratio[:, f, None] * flat[f][None, :]",
      "out += ratio[:, f - 1, None] * flat[f][None, :]",
      "factorised flux reweighting uses the neighbouring flux bin", "test_reweight.py"),
    m("farm/systematics/fluxbins.py", "out[np.flatnonzero(sel)[inside]] = self.offsets[k] + b[inside]",
      "out[np.flatnonzero(sel)[inside]] = self.offsets[0] + b[inside]",
      "flux bin of every flavour taken from the first flavour's bins", "test_reweight.py"),
    m("farm/systematics/fluxbins.py", 'b = np.searchsorted(edges, enu_mev[sel], side="right") - 1',
      'b = np.searchsorted(edges, enu_mev[sel], side="left") - 1',
      "flux bins closed on the right instead of the left", "test_reweight.py"),
    m("farm/reweight/binning.py", "b += flux_edges[row, k] <= energy",
      "b += flux_edges[row, k] < energy",
      "compiled flux bins closed on the right instead of the left", "test_binning.py"),
    m("farm/reweight/binning.py", "r = lut[np.int64(x)]  # a count",
      "r = lut[max(np.int64(x) - 1, 0)]  # a count",
      "photoelectron lookup table read one count low", "test_binning.py"),
    m("farm/reweight/bootstrap.py", "return math.exp(-1.0) * math.fsum(",
      "return math.exp(-1.05) * math.fsum(1.05**i * ",
      "bootstrap Poisson weights with mean 1.05 instead of 1", "test_reweight.py"),
    m("farm/reweight/compiled.py", "            if high >= _T5:",
      "            if high >= _T6:",
      "compiled bootstrap counts a draw past the fifth threshold as five", "test_compiled.py"),
    m("farm/reweight/compiled.py", "                current[st] = 1 - current[st]",
      "                pass",
      "compiled bootstrap adds a truth row's next event to its stale copy", "test_compiled.py"),
    m("farm/reweight/helm.py", "                        row[i] = ratio * ratio if nominal[i] != 0.0 else 1.0",
      "                        row[i] = ratio if nominal[i] != 0.0 else 1.0",
      "fused neutron-radius pass weights by F'/F instead of (F'/F)²", "test_compiled.py"),
    m("farm/reweight/helm.py", "                            out[s, k] += w * 1.0",
      "                            out[s, k] += 1.0",
      "fused neutron-radius pass fills other channels' events unweighted", "test_compiled.py"),
    m("farm/reweight/helm.py", "                    q[p] = np.sqrt(two_m[g] * t + t * t) / hbarc",
      "                    q[p] = np.sqrt(two_m[g] * t) / hbarc",
      "fused neutron-radius pass takes q = √(2MT), dropping T²", "test_compiled.py"),
    m("farm/reweight/slots.py", "            slot_truth[e] = n_sig + n_reco + truth_bin[e] if truth and signal[e] else -1",
      "            slot_truth[e] = n_sig + truth_bin[e] if truth and signal[e] else -1",
      "compiled block slots put the truth bins over the background's", "test_compiled.py"),
    m("farm/reweight/slots.py", "            if n_seen > 0 and seen[last] == k:",
      "            if n_seen > 0:",
      "compiled classes give every event the class of the one before", "test_compiled.py"),
    m("farm/reweight/slots.py", "            if c < 0:\n                c = n_cat",
      "            if c < 0:\n                c = 0",
      "compiled class fill adds the unit class's events to the first class", "test_compiled.py"),
    m("farm/reweight/slots.py", "                    row[s] += factor * products[s]",
      "                    row[s] = factor * products[s]",
      "compiled class products keep only the last class", "test_compiled.py"),
    m("farm/reweight/shortcuts.py", '_NODES_OF = {"ccqe_ma_mev": 16}',
      '_NODES_OF = {"ccqe_ma_mev": 12}',
      "axial-mass expansion back on 12 nodes (one event in six filled exactly)", "test_fastpaths.py"),
    m("farm/reweight/ccqe_ratio.py", "                f_p = two_m2 * f_a / (pion2 + q2)",
      "                f_p = two_m2 * f_a / (pion2 - q2)",
      "compiled axial-mass ratio with the pion pole at −m_π² instead of +m_π²", "test_compiled.py"),
    m("farm/reweight/ccqe_ratio.py", "            el_cm = (s + lep2 - m_f2) / (2.0 * root_s)",
      "            el_cm = (s - lep2 - m_f2) / (2.0 * root_s)",
      "compiled axial-mass ratio with the muon's energy in the CM frame of the wrong sign of m²",
      "test_compiled.py"),
    # detector knobs (issue 10): the response the generator and the knobs share
    m("farm/physics/response.py", "return np.exp(kk * np.log(f) - (f - 1.0) * lam)",
      "return np.exp(kk * np.log(f) - f * lam)",
      "photoelectron likelihood ratio without the −λ normalisation term", "test_response.py"),
    m("farm/physics/response.py", "return np.exp(kk * np.log(f) - (f - 1.0) * lam)",
      "return np.exp(kk * f - (f - 1.0) * lam)",
      "photoelectron likelihood ratio with f^k written as e^{k f}", "test_response.py"),
    m("farm/physics/response.py",
      "theta = self.threshold - np.sqrt(2.0) * self.width * erfcinv(2.0 * v / self.plateau)",
      "theta = self.threshold + np.sqrt(2.0) * self.width * erfcinv(2.0 * v / self.plateau)",
      "own selection threshold: erf turn-on inverted with the wrong sign", "test_response.py"),
    m("farm/physics/response.py",
      "return (y - (self.efficiency_shift + shift)) >= np.asarray(theta, dtype=np.float64)",
      "return (y + (self.efficiency_shift + shift)) >= np.asarray(theta, dtype=np.float64)",
      "turn-on shift moves the threshold the wrong way", "test_reweight.py", "test_closure.py"),
    m("farm/physics/response.py",
      "return self.energy_scale * np.maximum(mu + self.sigma_kevee(mu) * zz, 0.0)",
      "return self.energy_scale * np.maximum(mu + self.sigma_kevee(mu) * np.abs(zz), 0.0)",
      "keVee resolution smears upwards only", "test_response.py"),
    m("farm/reweight/readout_shift.py",
      "        return np.isin(channel, _NUCLEAR_RECOIL)",
      "        return np.ones(channel.shape, dtype=bool)",
      "quenching also moves the steady-state background", "test_response.py", "test_fastpaths.py"),
    m("farm/reweight/readout_shift.py", "            mu = mu * (1.0 + dq)",
      "            mu = mu * (1.0 - dq)",
      "keVee quenching shift applied with the wrong sign", "test_response.py", "test_closure.py"),
    m("farm/reweight/transitions.py", "STEP_TOLERANCE = 1e-9", "STEP_TOLERANCE = 0.0",
      "crossing steps without the exact check of universes on a step", "test_fastpaths.py"),
    m("farm/reweight/shortcuts.py",
      "g = np.exp(classes[None, :] * (np.log1p(values)[:, None] - values[:, None]))",
      "g = np.exp(classes[None, :] * (np.log1p(values)[:, None] + values[:, None]))",
      "photoelectron class factor e^{k(ln(1+δ) − δ)} with the wrong sign", "test_fastpaths.py"),
    m("farm/closure.py", "        if abs(self.pull(kind)) > FAIL_PULL:",
      "        if abs(self.pull(kind)) > 10 * FAIL_PULL:",
      "closure tolerates a total off by 30 standard errors", "test_closure.py"),
    # real inputs (issue 12): a per-nucleon cross section normalised per nucleus
    m("farm/ingest/normalise.py",
      "nucleons = sum(c * a for (_, a), (_, c) in by.items()) if by else None",
      "nucleons = sum(c for (_, a), (_, c) in by.items()) if by else None",
      "NuHepMC per-nucleon cross section normalised by nuclei (A× too few events)",
      "test_ingest_normalisation.py"),
    # shards trusted once verified (issue 16): a record must not outlive a change of the bytes
    m("farm/store/trust.py", "    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)",
      "    return (st.st_ino, st.st_size, st.st_mtime_ns, 0)",
      "a verified shard trusted on its modification time alone (touch -d hides a change)",
      "test_store_trust.py"),
    m("farm/store/trust.py", "any(max(s[2], s[3]) > started_ns - SETTLE_NS for s in stamps)",
      "any(max(s[2], s[3]) > started_ns + SETTLE_NS for s in stamps)",
      "files written just before their verification recorded as verified", "test_store_trust.py"),
    # configuration keys described by their docstrings, read by farm itself (issue 15 start-up)
    m("farm/config/_base.py", '                value._attributes_set["description"] = doc\n', "",
      "a key declared with Field(...) loses its docstring description",
      "test_config_reference.py"),
    # bin once per run on a cluster (issue 16): a block's items prefer the block's worker
    m("farm/execute.py",
      "workers=None if homes is None else [homes[item.first_block + item.n_blocks // 2]],\n"
      "            allow_other_workers=homes is not None,",
      "workers=None,\n            allow_other_workers=False,",
      "a block's items sent to any worker (each worker bins every block again)",
      "test_distributed.py"),
]
# fmt: on


# --------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    mutation: Mutation
    status: str  # "caught", "SURVIVED", "ERROR"
    detail: str
    seconds: float
    deselected: int = 0


def _copy_tree(dest: Path) -> Path:
    work = dest / "tree"
    shutil.copytree(ROOT, work, ignore=IGNORE, symlinks=True)
    return work


def _env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(work), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("FARM_EXAMPLES", None)
    return env


def _check_import(work: Path, env: dict[str, str]) -> str | None:
    probe = subprocess.run(
        [sys.executable, "-c", "import farm; print(farm.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    where = probe.stdout.strip()
    if probe.returncode != 0 or not Path(where).resolve().is_relative_to(work.resolve()):
        return f"import farm resolved to {where or probe.stderr.strip()!r}, not the copy {work}"
    return None


_FAILURES = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def _run_tests(
    work: Path, tests: tuple[str, ...], env: dict[str, str], deselect: tuple[str, ...] = ()
) -> tuple[bool, str]:
    """(passed, first failing test id or the reason)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rfE", *tests]
    for test_id in deselect:
        cmd += ["--deselect", test_id]
    try:
        done = subprocess.run(
            cmd,
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=PER_RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"timeout after {PER_RUN_TIMEOUT_S} s"
    if done.returncode == 0:
        return True, ""
    found = _FAILURES.search(done.stdout)
    if found:
        return False, found.group(1)
    tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["?"]
    return False, f"pytest exit {done.returncode}: {tail[0]}"


def run_mutation(mutation: Mutation, deselect: tuple[str, ...] = ()) -> Outcome:
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="farm-mutation-") as tmp:
        work = _copy_tree(Path(tmp))
        target = work / mutation.module
        if not target.exists():
            return Outcome(mutation, "ERROR", f"{mutation.module} does not exist", 0.0)
        text = target.read_text(encoding="utf-8")
        count = text.count(mutation.original)
        if count != 1:
            return Outcome(
                mutation,
                "ERROR",
                f"original snippet found {count} times in {mutation.module} (must be exactly once): "
                "update .ci/mutations.py",
                time.monotonic() - start,
            )
        target.write_text(text.replace(mutation.original, mutation.mutated), encoding="utf-8")
        env = _env(work)
        problem = _check_import(work, env)
        if problem:
            return Outcome(mutation, "ERROR", problem, time.monotonic() - start)
        passed, detail = _run_tests(work, mutation.tests, env, deselect)
    status = "SURVIVED" if passed else "caught"
    return Outcome(mutation, status, detail, time.monotonic() - start, len(deselect))


def run_baseline(tests: list[str]) -> dict[str, list[str]]:
    """{test file: ids of its tests that fail on the unmutated tree}; an id without "::" means the
    whole file fails (collection error, crash)."""
    with tempfile.TemporaryDirectory(prefix="farm-mutation-baseline-") as tmp:
        work = _copy_tree(Path(tmp))
        env = _env(work)
        problem = _check_import(work, env)
        if problem:
            return {t: [f"{t} ({problem})"] for t in tests}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *tests]
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    failing: dict[str, list[str]] = {}
    for test_id in _FAILURES.findall(done.stdout):
        failing.setdefault(test_id.split("::")[0], []).append(test_id)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not failing):
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["?"]
        failing = {t: [f"{t} (pytest exit {done.returncode}: {tail[0]})"] for t in tests}
    return failing


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(outcomes: list[Outcome]) -> str:
    lines = ["| mutation | module | caught by |", "| --- | --- | --- |"]
    for o in outcomes:
        if o.status == "caught":
            by = f"`{o.detail}`"
            if o.deselected:
                by += f" ({o.deselected} test(s) failing without the mutation deselected)"
        elif o.status == "SURVIVED":
            by = f"**SURVIVED** ({', '.join(Path(t).name for t in o.mutation.tests)})"
            if o.deselected:
                by += f" ({o.deselected} test(s) failing without the mutation deselected)"
        else:
            by = f"**ERROR**: {o.detail}"
        lines.append(f"| {_cell(o.mutation.description)} | `{o.mutation.module}` | {_cell(by)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", "-j", type=int, default=2, help="parallel mutations (default 2)")
    parser.add_argument(
        "-k",
        dest="select",
        default=None,
        help="only mutations whose description or module has this",
    )
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the unmutated run of the test files"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the tree to copy and mutate (default: this checkout)",
    )
    args = parser.parse_args(argv)
    global ROOT
    if args.root is not None:
        ROOT = args.root.resolve()

    chosen = [
        mu
        for mu in MUTATIONS
        if args.select is None or args.select.lower() in (mu.description + " " + mu.module).lower()
    ]
    if args.list:
        for mu in chosen:
            print(f"{mu.module}: {mu.description}  [{', '.join(mu.tests)}]")
        return 0
    if not chosen:
        print("no mutation matches", file=sys.stderr)
        return 2

    started = time.monotonic()
    broken: dict[str, list[str]] = {}
    if not args.no_baseline:
        tests = sorted({t for mu in chosen for t in mu.tests})
        print(f"baseline: {len(tests)} test files on the unmutated tree ...", file=sys.stderr)
        broken = run_baseline(tests)
        for path, ids in broken.items():
            print(f"baseline: {len(ids)} failing in {path}: {', '.join(ids)}", file=sys.stderr)

    def judge(mutation: Mutation) -> Outcome:
        # A test that fails without the mutation would make the mutation look caught: such tests
        # are deselected (and counted in the table); a file that fails as a whole is an error.
        failing = [i for t in mutation.tests for i in broken.get(t, [])]
        whole = [i for i in failing if "::" not in i]
        if whole:
            return Outcome(mutation, "ERROR", f"fails without the mutation: {whole[0]}", 0.0)
        return run_mutation(mutation, tuple(failing))

    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for outcome in pool.map(judge, chosen):
            outcomes.append(outcome)
            print(
                f"[{len(outcomes)}/{len(chosen)}] {outcome.status:8s} {outcome.seconds:5.1f}s "
                f"{outcome.mutation.description}",
                file=sys.stderr,
                flush=True,
            )
    print(table(outcomes))
    survived = sum(o.status == "SURVIVED" for o in outcomes)
    errors = sum(o.status == "ERROR" for o in outcomes)
    caught = len(outcomes) - survived - errors
    n_broken = sum(len(ids) for ids in broken.values())
    print(
        f"\n{caught} caught, {survived} survived, {errors} errors, "
        f"{len(outcomes)} mutations in {time.monotonic() - started:.0f} s"
        + (f"; {n_broken} test(s) failed without any mutation (deselected)" if n_broken else "")
    )
    return 1 if survived or errors else 0


if __name__ == "__main__":
    sys.exit(main())
