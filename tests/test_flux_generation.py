"""A generated sample drawn from the run's flux (issue 12, item 1): a ``[flux]`` file's, else the
source model's.

A flux file holding the π-DAR model's histogram generates the model's expected CEvNS count to
the histogram's binning precision; a file with one flavour doubled doubles exactly that
flavour's events; a store remembers the flux it was drawn from, and a run under another flux is
refused; a generator that cannot draw from a file says so. The reactor generators draw from a
file as the SNS one does (with importance sampling, ``Flux.draw_tilted``), and the nuSCOPE
generator's beamline Monte Carlo is the run flux's own (``Flux.simulate``).
"""

from __future__ import annotations

import tomllib
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import farm_cli, toml_text

from farm.binding import check_store_binding
from farm.config import examples_dir, parse_config
from farm.flux import sources
from farm.flux.model import Flux, HistogramSpectrum, LineSpectrum, SampledSpectrum
from farm.publish import open_published
from farm.resolve import source_flux
from farm.samples.generate import generate_rows, generate_store, sample_model
from farm.store.errors import StoreError
from farm.store.reader import EventStore
from farm.store.schema import FLAVOR_PDG, Channel

EVENTS = 40_000
BIN_MEV = 0.05
"""The file's bin width: each drawn E_ν is within one bin of the model's draw (both invert their
CDFs from the same uniform, and the CDFs agree at every edge)."""


def _config(tmp_path: Path, example: str, flux: dict[str, Any] | None) -> Any:
    data = tomllib.loads((examples_dir() / f"{example}.toml").read_text())
    data["sample"]["store"] = str(tmp_path / f"{example}-{'file' if flux else 'model'}.zarr")
    data["generation"]["events"] = EVENTS
    if flux is not None:
        data["flux"] = flux
    return parse_config(data, source=f"{example} (test)")


def _model_histogram_file(
    tmp_path: Path, cfg: Any, factor: dict[str, float] | None = None
) -> dict[str, Any]:
    """The π-DAR model as an npz flux file: BIN_MEV bins, the ν_μ line in one bin around it."""
    model = source_flux(cfg)
    line = sources.spectra.PIDAR_NUMU_LINE_MEV
    edges = {
        "nue": np.arange(0.0, 52.9, BIN_MEV),
        "numubar": np.arange(0.0, 52.9, BIN_MEV),
        "numu": np.array([line - BIN_MEV / 2, line + BIN_MEV / 2]),
    }
    factor = factor or {}
    path = tmp_path / f"pidar-{'-'.join(sorted(factor)) or 'model'}.npz"
    np.savez(
        path,
        **{f"edges_{f}": e for f, e in edges.items()},
        **{f: model.histogram(f, e) * factor.get(f, 1.0) for f, e in edges.items()},
    )
    return {
        "file": str(path),
        "flavors": {f: f for f in edges},
        "energy_unit": "MeV",
        "unit": "nu/cm2",
    }


def _expected(rows: dict[str, np.ndarray], flavor: str, channel: Channel) -> float:
    """Σ w_nominal of the events of one flavour and channel: their expected count."""
    keep = (rows["flavor"] == FLAVOR_PDG[flavor]) & (rows["channel"] == channel)
    return float(rows["w_nominal"][keep].sum())


def test_a_file_of_the_models_histogram_generates_the_models_count(tmp_path: Path) -> None:
    model_cfg = _config(tmp_path, "sns-csi", None)
    file_cfg = _config(tmp_path, "sns-csi", _model_histogram_file(tmp_path, model_cfg))
    ours, theirs = generate_rows(model_cfg, 0, EVENTS), generate_rows(file_cfg, 0, EVENTS)
    # ν_e, ν̄_μ: the same uniforms draw the same nuclei and recoils, so only the binning differs:
    # a density flat within 0.05 MeV bins moves ⟨σ⟩ (σ ∝ E² below the form factor's fall) at
    # second order, (δ/E)² ≲ 1e-5 over the E ≳ 10 MeV that carry the count (measured: 4e-8).
    # ν_μ: the line's bin spends a uniform per event that the line does not, so the nuclei
    # drawn after it differ: the Cs/I mix's statistical error on 40 000 · 0.28 events, ≈ 5e-4
    # (measured: −6.6e-4), and the spread of a flat bin, + δ²/12E² = 2e-7, is far below it
    for flavor, tolerance in (("nue", 1e-6), ("numubar", 1e-6), ("numu", 3e-3)):
        a, b = _expected(ours, flavor, Channel.CEVNS), _expected(theirs, flavor, Channel.CEVNS)
        assert b / a == pytest.approx(1.0, abs=tolerance), flavor
        moved = np.abs(
            ours["enu_true"][ours["flavor"] == FLAVOR_PDG[flavor]]
            - theirs["enu_true"][theirs["flavor"] == FLAVOR_PDG[flavor]]
        )
        assert moved.max() <= BIN_MEV, flavor
    # the file's spectrum, not the model's, drew them: energies differ, within a bin
    assert not np.array_equal(ours["enu_true"], theirs["enu_true"])


def test_a_file_with_nue_doubled_doubles_the_nue_events(tmp_path: Path) -> None:
    model_cfg = _config(tmp_path, "sns-csi", None)
    plain = _config(tmp_path, "sns-csi", _model_histogram_file(tmp_path, model_cfg))
    doubled = _config(tmp_path, "sns-csi", _model_histogram_file(tmp_path, model_cfg, {"nue": 2.0}))
    ours, theirs = generate_rows(plain, 0, EVENTS), generate_rows(doubled, 0, EVENTS)
    # ν_e CEvNS and the ν_e-induced neutrons scale with Φ_νe; nothing else moves
    for flavor, channel in (("nue", Channel.CEVNS), ("nue", Channel.NIN)):
        ratio = _expected(theirs, flavor, channel) / _expected(ours, flavor, channel)
        assert ratio == pytest.approx(2.0, abs=1e-12), (flavor, channel)
    for flavor in ("numu", "numubar"):
        ratio = _expected(theirs, flavor, Channel.CEVNS) / _expected(ours, flavor, Channel.CEVNS)
        assert ratio == pytest.approx(1.0, abs=1e-12), flavor
    np.testing.assert_array_equal(ours["enu_true"], theirs["enu_true"])


def test_a_store_is_refused_under_a_flux_it_was_not_drawn_from(tmp_path: Path) -> None:
    model_cfg = _config(tmp_path, "sns-csi", None)
    model_cfg = model_cfg.model_copy(
        update={"generation": model_cfg.generation.model_copy(update={"events": 2_000})}
    )
    file_section = _model_histogram_file(tmp_path, model_cfg)
    data = model_cfg.model_dump(mode="json") | {"flux": file_section}
    file_cfg = parse_config(data, source="sns-csi with a flux file (test)")
    generate_store(model_cfg, tmp_path / "model.zarr")
    attrs = generate_store(file_cfg, tmp_path / "file.zarr")
    assert attrs["generated_from_flux"]["source"].startswith("file ")
    check_store_binding(model_cfg, EventStore.open(tmp_path / "model.zarr"))
    check_store_binding(file_cfg, EventStore.open(tmp_path / "file.zarr"))
    with pytest.raises(StoreError, match=r"drawn from the source model .*\[flux\] file"):
        check_store_binding(file_cfg, EventStore.open(tmp_path / "model.zarr"))
    with pytest.raises(StoreError, match=r"drawn from file .*the source model"):
        check_store_binding(model_cfg, EventStore.open(tmp_path / "file.zarr"))


def _reactor_histogram_file(
    tmp_path: Path, cfg: Any, factor: float = 1.0, bin_mev: float = 0.01
) -> dict[str, Any]:
    """The Huber–Mueller model of ``cfg`` as an npz ν̄_e flux file with ``bin_mev`` bins."""
    model = source_flux(cfg)
    lo, hi = model.spectra["nuebar"].support
    edges = np.linspace(lo, hi, round((hi - lo) / bin_mev) + 1)
    path = tmp_path / f"reactor-{cfg.sample.name}-{factor:g}.npz"
    np.savez(path, edges_nuebar=edges, nuebar=model.histogram("nuebar", edges) * factor)
    return {
        "file": str(path),
        "flavors": {"nuebar": "nuebar"},
        "energy_unit": "MeV",
        "unit": "nu/cm2",
    }


@pytest.mark.parametrize(
    ("example", "channel", "tolerance"),
    # reactor-ibd draws E_ν untilted: the model's inverse CDF on 2¹⁸ energy steps and the file's
    # 0.01 MeV bins invert nearly the same CDF from the same uniforms, and σ_IBD ∝ E·p_e is
    # smooth, so the count moves at second order in the bin width: measured 6.4e-6.
    # reactor-ge draws E_ν from F·E⁴ (importance_power 4): the file's tilted inverse CDF is
    # exact per flat bin, the model's a 2¹⁶-point trapezoid table; only the far tail above a
    # keV threshold counts, where a 0.01 MeV bin is ≈ 0.1 % of the energy: measured 4.6e-6.
    [("reactor-ibd", Channel.IBD, 3e-5), ("reactor-ge", Channel.CEVNS, 3e-5)],
)
def test_a_reactor_file_of_the_models_histogram_generates_the_models_count(
    tmp_path: Path, example: str, channel: Channel, tolerance: float
) -> None:
    model_cfg = _config(tmp_path, example, None)
    file_cfg = _config(tmp_path, example, _reactor_histogram_file(tmp_path, model_cfg))
    ours, theirs = generate_rows(model_cfg, 0, EVENTS), generate_rows(file_cfg, 0, EVENTS)
    a, b = _expected(ours, "nuebar", channel), _expected(theirs, "nuebar", channel)
    assert b / a == pytest.approx(1.0, abs=tolerance)
    signal = ours["channel"] == channel
    moved = np.abs(ours["enu_true"][signal] - theirs["enu_true"][signal])
    assert 0 < moved.max() <= 0.02  # the file drew them (they differ), within about a bin


@pytest.mark.parametrize("example", ["reactor-ibd", "reactor-ge"])
def test_a_reactor_file_with_twice_the_flux_doubles_the_signal_and_nothing_else(
    tmp_path: Path, example: str
) -> None:
    model_cfg = _config(tmp_path, example, None)
    plain = _config(tmp_path, example, _reactor_histogram_file(tmp_path, model_cfg))
    doubled = _config(tmp_path, example, _reactor_histogram_file(tmp_path, model_cfg, 2.0))
    ours, theirs = generate_rows(plain, 0, EVENTS), generate_rows(doubled, 0, EVENTS)
    signal = ours["is_signal"]
    np.testing.assert_array_equal(ours["enu_true"], theirs["enu_true"])
    ratio = theirs["w_nominal"][signal].sum() / ours["w_nominal"][signal].sum()
    assert ratio == pytest.approx(2.0, abs=1e-12)
    np.testing.assert_array_equal(ours["w_nominal"][~signal], theirs["w_nominal"][~signal])


def test_a_reactor_store_drawn_from_a_file_is_refused_under_the_model(tmp_path: Path) -> None:
    model_cfg = _config(tmp_path, "reactor-ibd", None)
    model_cfg = model_cfg.model_copy(
        update={"generation": model_cfg.generation.model_copy(update={"events": 2_000})}
    )
    data = model_cfg.model_dump(mode="json") | {
        "flux": _reactor_histogram_file(tmp_path, model_cfg)
    }
    file_cfg = parse_config(data, source="reactor-ibd with a flux file (test)")
    attrs = generate_store(file_cfg, tmp_path / "file.zarr")
    assert attrs["generated_from_flux"]["source"].startswith("file ")
    check_store_binding(file_cfg, EventStore.open(tmp_path / "file.zarr"))
    with pytest.raises(StoreError, match=r"drawn from file .*the source model"):
        check_store_binding(model_cfg, EventStore.open(tmp_path / "file.zarr"))


def test_a_reactor_run_under_a_flux_file_publishes_the_models_cross_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: `farm run` of reactor-ibd with the model's histogram as a [flux] file
    generates from the file and publishes ⟨σ⟩ within the bin migrations of the model's run (the
    same uniforms, energies moved within 0.01 MeV: measured 0.1 % at 200 000 events); the fission
    fractions, which move the model and not a file, are refused with the way out."""
    monkeypatch.setenv("FARM_STORE_DIR", str(tmp_path / "stores"))
    data = tomllib.loads((examples_dir() / "reactor-ibd.toml").read_text())
    model_cfg = parse_config(data, source="reactor-ibd (test)")
    with_file = data | {"flux": _reactor_histogram_file(tmp_path, model_cfg)}
    (tmp_path / "file.toml").write_text(toml_text(with_file))
    refused = farm_cli("run", tmp_path / "file.toml", "--out", tmp_path / "refused.zarr")
    assert refused.exit_code == 2, refused.output
    assert "fission_fraction_sigma" in refused.output and "remove [flux]" in refused.output
    results = {}
    for name, config in (("model", data), ("file", with_file)):
        for syst in config["systematics"]:
            if syst.pop("fission_fraction_sigma", None):
                syst["normalization"] = 0.02
        (tmp_path / f"{name}.toml").write_text(toml_text(config))
        out = tmp_path / f"{name}.zarr"
        args = ("--events", 100_000, "--universes", 10, "--cluster", "inprocess")
        result = farm_cli("run", tmp_path / f"{name}.toml", "--out", out, *args)
        assert result.exit_code == 0, result.output
        results[name] = open_published(out)
    model, file = (results[k].sigma_real.isel(universe=0).values for k in ("model", "file"))
    assert np.all(np.isfinite(file))
    assert np.max(np.abs(file / model - 1.0)) < 0.01
    assert not np.array_equal(file, model)  # drawn from the file, not the model


def test_the_nuscope_generator_draws_from_the_runs_flux(tmp_path: Path) -> None:
    """The beamline Monte Carlo comes from the Flux object: a flux whose simulation carries
    twice the fluence per neutrino doubles every event's weight, with the same neutrinos."""
    cfg = _config(tmp_path, "nuscope-lar", None)
    nominal = source_flux(cfg)

    def doubled(simulate: Any, rng: np.random.Generator, *, n: int) -> dict[str, np.ndarray]:
        nu = simulate(rng, n=n)
        return {**nu, "fluence": 2.0 * nu["fluence"]}

    twice = Flux(
        spectra={
            f: SampledSpectrum(
                energies=s.energies, fluences=s.fluences, simulate=partial(doubled, s.simulate)
            )
            for f, s in nominal.spectra.items()
        },
        exposure=nominal.exposure,
        source="twice the nuSCOPE model (test)",
    )
    n = 4_000
    ours = generate_rows(cfg, 0, n, model=sample_model(cfg, nominal))
    theirs = generate_rows(cfg, 0, n, model=sample_model(cfg, twice))
    np.testing.assert_array_equal(ours["enu_true"], theirs["enu_true"])
    np.testing.assert_array_equal(ours["vertex_r_cm"], theirs["vertex_r_cm"])
    np.testing.assert_array_equal(theirs["w_nominal"], 2.0 * ours["w_nominal"])


def test_a_generator_that_cannot_draw_from_a_file_says_so(tmp_path: Path) -> None:
    sns = _config(tmp_path, "sns-csi", None)
    nuscope = _config(tmp_path, "nuscope-lar", None)
    data = nuscope.model_dump(mode="json") | {"flux": _model_histogram_file(tmp_path, sns)}
    with pytest.raises(ValueError, match=r"\[flux\] file .*a flux file gives energies only"):
        sample_model(parse_config(data, source="nuscope-lar with a flux file (test)"))
    with pytest.raises(ValueError, match=r"not a simulation"):
        Flux(spectra={"numu": sns_line()}, exposure={}, source="a line").simulate(
            "numu", np.random.default_rng(0), 3
        )


def sns_line() -> LineSpectrum:
    return LineSpectrum(energy_mev=29.8, fluence=1.0)


# --- importance-sampled draws from each kind of spectrum ---------------------------------------

DRAWS = 1_000_000


def _tilted_moments(spectrum: Any, power: float, g: Any) -> tuple[float, float]:
    """Σ factor·g(E)/N from a tilted draw of ``spectrum``, and its standard error."""
    energies, _, factor = spectrum.draw_tilted(np.random.default_rng(7), DRAWS, power)
    values = factor * g(energies)
    return float(values.mean()), float(values.std() / np.sqrt(DRAWS))


@pytest.mark.parametrize("power", [1.0, 4.0])
def test_tilted_draws_of_a_histogram_reproduce_its_integrals(power: float) -> None:
    """E[factor · g(E)] over draws from F·E^p is ∫F g / Φ (importance sampling is unbiased):
    checked for the mean energy and for bins that do not line up with the histogram's, where a
    wrong shape within a bin would show (wide bins, strongly tilted)."""
    edges = np.array([0.0, 2.0, 5.0, 6.0, 10.0])
    contents = np.array([3.0, 1.0, 0.0, 2.0])
    spectrum = HistogramSpectrum(edges=edges, contents=contents)
    density = contents / np.diff(edges)
    phi = contents.sum()

    def exact(lo: float, hi: float, k: int) -> float:
        """∫ F E^k over [lo, hi] / Φ for the flat-per-bin histogram."""
        total = 0.0
        for a, b, d in zip(edges[:-1], edges[1:], density, strict=True):
            a, b = max(a, lo), min(b, hi)
            if b > a:
                total += d * (b ** (k + 1) - a ** (k + 1)) / (k + 1)
        return total / phi

    # g vanishes below 1: a factor ∝ E^-p has infinite variance where g(0) ≠ 0
    mean, err = _tilted_moments(spectrum, power, lambda e: e * (e >= 1.0))
    assert abs(mean - exact(1.0, 10.0, 1)) < 5 * err
    for lo, hi in ((1.0, 1.5), (1.5, 3.5), (6.5, 8.0), (8.0, 10.0)):
        share, err = _tilted_moments(spectrum, power, lambda e, lo=lo, hi=hi: (e >= lo) & (e < hi))
        assert abs(share - exact(lo, hi, 0)) < 5 * err, (lo, hi)
    energies, _, _ = spectrum.draw_tilted(np.random.default_rng(1), 10_000, power)
    assert not np.any((energies > 5.0) & (energies < 6.0))  # the empty bin is never drawn


def test_tilted_draws_of_a_weighted_sample_reproduce_its_integrals() -> None:
    energies = np.array([1.0, 2.0, 3.0, 7.0])
    fluences = np.array([4.0, 1.0, 2.0, 0.5])
    spectrum = SampledSpectrum(energies=energies, fluences=fluences)
    for g in (lambda e: e, lambda e: e == 7.0, lambda e: e == 1.0):
        mean, err = _tilted_moments(spectrum, 2.0, g)
        assert abs(mean - (fluences * g(energies)).sum() / fluences.sum()) < 5 * err


def test_an_untilted_draw_is_the_plain_draw() -> None:
    spectrum = HistogramSpectrum(edges=np.array([0.0, 1.0, 3.0]), contents=np.array([1.0, 2.0]))
    plain, phi = spectrum.draw(np.random.default_rng(3), 100)
    tilted, phi_tilted, factor = spectrum.draw_tilted(np.random.default_rng(3), 100, 0.0)
    np.testing.assert_array_equal(plain, tilted)
    assert phi == phi_tilted == 3.0
    np.testing.assert_array_equal(factor, np.ones(100))
