"""`farm validate closure`: every knob against a sample regenerated with its parameter shifted.

CI closes every knob of every example sample at small size; a knob broken on purpose (the
light-yield shift of COHERENT CsI moving the readout but not the selection, as before issue 10)
fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import farm_cli

import farm.reweight.readout_shift as readout_shift
from farm.closure import KnobClosure, Moments, closure, shifted_config
from farm.config import load_config
from farm.runner import ensure_store

SAMPLES = ("sns-csi", "sns-lar", "reactor-ge", "reactor-ibd", "nuscope-lar")


@pytest.mark.slow
@pytest.mark.parametrize("sample", SAMPLES)
def test_every_knob_of_every_example_closes(
    sample: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = farm_cli(
        "validate", "closure", sample, "--events", "60000", "--out", str(tmp_path / "out")
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "closure.json").read_text())
    knobs = {s.name for s in load_config(sample).systematics if s.kind == "knob"}
    assert {r["systematic"] for r in summary} == knobs
    assert all(r["passed"] for r in summary)
    assert (tmp_path / "out" / "closure.png").stat().st_size > 10_000
    # the shifts really move the samples (else closure would be trivially true)
    moving = [r for r in summary if abs(r["effect_signal"]) + abs(r["effect_background"]) > 1e-3]
    assert len(moving) >= len(summary) - 2


def test_a_knob_that_forgets_the_selection_fails_closure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before issue 10 the CsI light-yield knob moved the readout but not the efficiency, ROI and
    binning that depend on it: a 3 % shift moved the selected signal by 0.06 %. Break the knob
    that way (the photoelectron weight dropped) and closure must fail."""
    cfg = load_config(
        "sns-csi",
        **{"generation.events": 60_000, "sample.store": str(tmp_path / "csi.zarr")},
    )
    store = ensure_store(cfg, log=lambda _: None)
    good = closure(cfg, store, systematics=["light_yield"], n_sigma=2.0, log=lambda _: None)
    assert all(r.passed for r in good)

    real = readout_shift.poisson_ratio
    monkeypatch.setattr(
        readout_shift, "poisson_ratio", lambda k, mean, factor: np.ones_like(real(k, mean, factor))
    )
    broken = closure(cfg, store, systematics=["light_yield"], n_sigma=2.0, log=lambda _: None)
    assert not any(r.passed for r in broken)
    assert all(abs(r.pull("signal")) > 3 for r in broken)


def test_closure_names_an_unknown_knob_and_its_knobs(tmp_path: Path) -> None:
    cfg = load_config(
        "reactor-ibd", **{"generation.events": 2000, "sample.store": str(tmp_path / "s.zarr")}
    )
    store = ensure_store(cfg, log=lambda _: None)
    with pytest.raises(ValueError, match=r"no knob systematic named bogus.*energy_scale"):
        closure(cfg, store, systematics=["bogus"], log=lambda _: None)


@pytest.mark.parametrize(
    ("sample", "parameter", "shift", "section", "key", "expected"),
    [
        ("sns-csi", "light_yield", 0.03, "detector", "light_yield_pe_per_kevee", 13.35 * 1.03),
        ("sns-csi", "quenching", -0.05, "detector", "quenching_scale", 0.95),
        ("sns-csi", "threshold", 0.5, "detector.efficiency", "shift", 0.5),
        ("sns-csi", "sin2w", 0.002, "physics", "sin2w", 0.23857 + 0.002),
        ("sns-csi", "cevns_rms_radius", 0.03, "physics", "neutron_radius_scale", 1.03),
        ("sns-csi", "brn_norm", 0.25, "backgrounds", "brn_events", 15.0 * 1.25),
        ("sns-csi", "ssb_norm", 0.02, "backgrounds.steady_state", "events", 1100.0 * 1.02),
        ("reactor-ibd", "energy_scale", 0.01, "detector", "energy_scale", 1.01),
        ("reactor-ibd", "ibd_norm", -0.01, "physics", "xsec_scale", 0.99),
        ("nuscope-lar", "ccqe_ma_mev", 100.0, "physics", "ccqe_ma_mev", 1100.0),
        ("nuscope-lar", "noqe_norm", 0.2, "physics", "noqe_scale", 1.2),
        ("nuscope-lar", "efficiency", 0.02, "detector", "numu_selection_efficiency", 0.9 * 1.02),
    ],
)
def test_a_knob_shift_moves_its_physical_parameter_and_nothing_else(
    sample: str, parameter: str, shift: float, section: str, key: str, expected: float
) -> None:
    cfg = load_config(sample)
    moved = shifted_config(cfg, parameter, shift)
    node = moved
    for part in section.split("."):
        node = getattr(node, part)
    assert getattr(node, key) == pytest.approx(expected, rel=1e-12, abs=0)
    before, after = cfg.model_dump(), moved.model_dump()
    changed = [k for k in before if before[k] != after[k]]
    assert changed == [section.split(".")[0]]
    assert moved.generation.seed == cfg.generation.seed


def test_a_knob_without_a_physical_parameter_in_the_generator_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no parameter .* for the knob 'brn_norm'"):
        shifted_config(load_config("reactor-ibd"), "brn_norm", 0.1)


def _verdict(
    knob_signal: np.ndarray, regenerated_signal: np.ndarray, *, fast: float = 0.0
) -> KnobClosure:
    """A closure of 20 signal bins of variance 1 each in both samples (no background)."""
    ones, zeros = np.ones(20), np.zeros(20)
    return KnobClosure(
        systematic="s",
        parameter="quenching",
        n_sigma=1.0,
        shift=0.05,
        knob=Moments(signal=knob_signal, signal_var=ones, background=zeros, background_var=zeros),
        regenerated=Moments(
            signal=regenerated_signal, signal_var=ones, background=zeros, background_var=zeros
        ),
        nominal=Moments(signal=ones, signal_var=ones, background=zeros, background_var=zeros),
        fast_path_difference=fast,
    )


def test_closure_fails_a_total_off_by_more_than_three_standard_errors_even_when_bins_agree() -> (
    None
):
    """Every bin 0.9·√2 high (σ² = 1 + 1): χ² = 20 · 0.81 = 16.2 for 20 bins (p = 0.71), but the
    total is 20 · 0.9·√2 / √40 = 4.0 σ high: a coherent shift the bin-by-bin χ² hardly sees."""
    regenerated = np.full(20, 50.0)
    result = _verdict(regenerated + 0.9 * np.sqrt(2.0), regenerated)
    chi2, ndof = result.chi2
    np.testing.assert_allclose(chi2, 16.2, rtol=1e-12, atol=0)
    assert ndof == 20 and result.p_value > 0.5
    np.testing.assert_allclose(result.pull("signal"), 18.0 / np.sqrt(20.0), rtol=1e-12, atol=0)
    assert not result.passed and "total signal off by +4.0 σ" in result.failures[0]
    assert _verdict(regenerated + 0.6 * np.sqrt(2.0), regenerated).passed  # 2.7 σ


def test_closure_fails_bin_by_bin_disagreement_and_a_shortcut_off_exact_weights() -> None:
    regenerated = np.full(20, 50.0)
    alternating = regenerated + np.where(np.arange(20) % 2, 2.0, -2.0) * np.sqrt(2.0)
    result = _verdict(alternating, regenerated)  # χ² = 80/20, total exact
    assert result.pull("signal") == 0.0 and result.p_value < 1e-6 and not result.passed
    assert not _verdict(regenerated, regenerated, fast=1e-6).passed
    assert _verdict(regenerated, regenerated, fast=1e-12).passed
