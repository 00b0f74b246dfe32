"""Flux systematics declared Φ-preserving: ``preserve_integral = true`` (issue 10 item 6).

Such a systematic throws pure shape changes: the declared throw δ (ratio r = 1 + δ per flux bin)
minus one uniform shift over the bins it touches, chosen so that the integrated flux of the signal
flavours, Φ_u = Σ_b F̄_b r_b (the Φ that normalises the real-flux-averaged cross section), stays
Φ̄ in every universe. The throws stay a function of (seed, name, index); a systematic without the
key throws exactly what it threw before it existed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import farm_cli, toml_text
from numpy.testing import assert_array_equal

from farm.analysis.nominal_flux import flux_rule
from farm.analysis.pipeline import check_before_running
from farm.analysis.predict import binned_flux
from farm.analysis.run_inputs import run_universe_set
from farm.config import SystematicSection, examples_dir, parse_config
from farm.systematics.fluxbins import FluxBins
from farm.systematics.universes import (
    _cholesky_like,
    build_universe_set,
    flux_fractional_covariance,
    integral_preserving_projector,
    throw_rng,
)

SEED = 4242
BINS = FluxBins.from_mapping({"nue": [0.0, 10.0, 20.0, 30.0, 40.0, 53.0], "numu": [29.0, 30.5]})
SIGNAL_FLUX = np.array([1e14, 5e14, 9e14, 7e14, 2e14, 3e14, 1e13])
"""Nominal fluence per flux bin (ν/cm²): nue's five bins, numu's one, and what lies outside."""

SHAPE = SystematicSection(
    name="flux_shape",
    kind="flux",
    shape=0.10,
    shape_correlation_length=0.5,
    throws=40,
    preserve_integral=True,
)


def _phi(flux_ratio: np.ndarray, signal_flux: np.ndarray) -> np.ndarray:
    """Φ_u = Σ_b F̄_b r_ub, exactly as farm.analysis.pipeline.finish computes it."""
    return flux_ratio @ signal_flux


def _relative_phi_change(flux_ratio: np.ndarray, signal_flux: np.ndarray) -> float:
    phi = _phi(flux_ratio, signal_flux)
    return float(np.max(np.abs(phi / phi[0] - 1.0)))


def _sample(
    name: str, systematics: list[dict[str, Any]], **binning: Any
) -> tuple[Any, FluxBins, np.ndarray]:
    """An example configuration with these systematics, its flux bins and its signal flux."""
    data = tomllib.loads((examples_dir() / f"{name}.toml").read_text())
    data["systematics"] = systematics
    data["binning"].update(binning)
    cfg = parse_config(data, source=f"{name}-preserving")
    bins = FluxBins.from_mapping(cfg.binning.flux_edges_mev)
    signal = binned_flux(flux_rule(cfg), bins, cfg.binning.flux_normalising_flavors)
    return cfg, bins, signal


# --- Φ is kept ---------------------------------------------------------------------------------


def test_every_universe_keeps_the_nominal_integrated_flux_to_1e_12() -> None:
    u = build_universe_set([SHAPE], BINS, seed=SEED, signal_flux=SIGNAL_FLUX)
    assert u.n_universes == 41
    assert _relative_phi_change(u.flux_ratio, SIGNAL_FLUX) <= 1e-12
    # the same throws without the key move Φ by several per cent
    moving = SHAPE.model_copy(update={"preserve_integral": False})
    free = build_universe_set([moving], BINS, seed=SEED, signal_flux=SIGNAL_FLUX)
    assert _relative_phi_change(free.flux_ratio, SIGNAL_FLUX) > 0.05


@pytest.mark.parametrize(
    ("sample", "systematic", "binning"),
    [
        ("sns-csi", {"shape": 0.1, "shape_correlation_length": 0.3}, {}),
        # Φ of ν_e only; the shape also moves ν̄_μ and the prompt ν_μ, which keep no integral
        ("sns-csi", {"shape": 0.1}, {"signal_flavors": ["nue"]}),
        ("nuscope-lar", {"shape": 0.15, "shape_correlation_length": 0.2}, {}),
        ("reactor-ibd", {"shape": 0.05, "fission_fraction_sigma": 0.03}, {}),
    ],
    ids=["sns-all-flavours", "sns-nue-signal", "nuscope", "reactor-fission"],
)
def test_examples_keep_phi_of_their_signal_flavours_in_every_universe(
    sample: str, systematic: dict[str, Any], binning: dict[str, Any]
) -> None:
    declared = {"name": "shape", "kind": "flux", "throws": 200, "preserve_integral": True}
    cfg, bins, signal = _sample(sample, [declared | systematic], **binning)
    u = run_universe_set(cfg, flux_rule(cfg), bins, None)
    assert _relative_phi_change(u.flux_ratio, signal) <= 1e-12
    moved = u.flux_ratio[1:, :-1] - 1.0
    assert np.std(moved, axis=0).max() > 0.01  # the shape still varies


def test_the_all_knob_set_keeps_phi_and_repeats_the_per_systematic_throws() -> None:
    radius = SystematicSection(
        name="neutron_radius", kind="knob", parameter="cevns_rms_radius", sigma=0.03, throws=10
    )
    u = build_universe_set(
        [SHAPE, radius], BINS, seed=SEED, signal_flux=SIGNAL_FLUX, all_knob_universes=10
    )
    joint = u.universes_of("all_knobs")
    assert _relative_phi_change(u.flux_ratio, SIGNAL_FLUX) <= 1e-12
    assert_array_equal(u.flux_ratio[joint], u.flux_ratio[u.universes_of("flux_shape")[:10]])


def test_a_run_publishes_one_integrated_flux_for_every_universe(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A real farm run (the sns-csi example with its normalisation made a Φ-preserving shape):
    the dataset's ``integrated_flux`` is Φ̄ in every universe, while the flux ratios vary."""
    from farm.config import load_config
    from farm.runner import run_inprocess

    # the store of tests/test_compare.py (conftest.run_example), generated here if it is missing
    store = tmp_path_factory.getbasetemp() / "compare-stores" / "sns-csi-65536.zarr"
    data = load_config("sns-csi", **{"sample.store": str(store)}).model_dump(mode="json")
    data["generation"]["events"] = 65_536
    data["systematics"] = [
        {"name": "flux_shape", "kind": "flux", "shape": 0.1, "preserve_integral": True},
        {"name": "mc_statistics", "kind": "bootstrap"},
    ]
    cfg = parse_config(data, source="sns-csi-preserving")
    ds = run_inprocess(cfg, universes=20, log=lambda _: None)
    phi = ds["integrated_flux"].values
    np.testing.assert_allclose(phi / phi[0], 1.0, rtol=0, atol=1e-12)
    flux = ds["flux_ratio"].values[ds["universe_systematic"].values == "flux_shape"]
    assert flux.shape[0] == 20 and np.std(flux[:, :-1], axis=0).max() > 0.02
    assert '"preserve_integral":true' in ds.attrs["config"]


# --- what the throws are -----------------------------------------------------------------------


def test_the_projector_removes_a_uniform_shift_and_keeps_phi() -> None:
    p = integral_preserving_projector(SHAPE, BINS, SIGNAL_FLUX)
    w = SIGNAL_FLUX[:-1]
    np.testing.assert_allclose(w @ p, 0.0, rtol=0, atol=1e-12 * w.sum())
    np.testing.assert_allclose(p @ p, p, rtol=0, atol=1e-14)  # a projection
    tilt = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 0.0])
    tilt -= (w @ tilt) / w.sum()  # already keeps Φ: left as it is
    np.testing.assert_allclose(p @ tilt, tilt, rtol=0, atol=1e-15)
    uniform = np.full(6, 0.07)  # a pure normalisation: removed entirely
    np.testing.assert_allclose(p @ uniform, 0.0, rtol=0, atol=1e-15)


def test_the_throws_are_the_declared_throws_projected_and_their_covariance_is_pvpt() -> None:
    syst = SHAPE.model_copy(update={"throws": 20_000})
    u = build_universe_set([syst], BINS, seed=SEED, signal_flux=SIGNAL_FLUX)
    free = build_universe_set(
        [syst.model_copy(update={"preserve_integral": False})], BINS, seed=SEED
    )
    p = integral_preserving_projector(syst, BINS, SIGNAL_FLUX)
    delta, declared = u.flux_ratio[1:, :-1] - 1.0, free.flux_ratio[1:, :-1] - 1.0
    # the same random numbers: each throw is the declared throw minus its normalisation part
    np.testing.assert_allclose(delta, declared @ p.T, rtol=0, atol=1e-14)
    expected = p @ flux_fractional_covariance(syst, BINS) @ p.T
    sample = delta.T @ delta / delta.shape[0]
    sigma = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected**2) / delta.shape[0])
    assert np.all(np.abs(sample - expected) <= 5.0 * sigma + 1e-15)
    assert np.sqrt(np.diag(expected)).min() > 0.03  # every bin's shape still varies


def test_throws_depend_only_on_seed_name_and_index() -> None:
    radius = SystematicSection(
        name="neutron_radius", kind="knob", parameter="cevns_rms_radius", sigma=0.03, throws=5
    )
    alone = build_universe_set([SHAPE], BINS, seed=SEED, signal_flux=SIGNAL_FLUX)
    again = build_universe_set([SHAPE], BINS, seed=SEED, signal_flux=SIGNAL_FLUX)
    among = build_universe_set([radius, SHAPE], BINS, seed=SEED, signal_flux=SIGNAL_FLUX)
    fewer = build_universe_set([SHAPE], BINS, seed=SEED, signal_flux=SIGNAL_FLUX, universes=7)
    rows = alone.universes_of("flux_shape")
    assert alone.flux_ratio.tobytes() == again.flux_ratio.tobytes()
    assert alone.checksum() == again.checksum()
    assert_array_equal(among.flux_ratio[among.universes_of("flux_shape")], alone.flux_ratio[rows])
    assert_array_equal(
        fewer.flux_ratio[fewer.universes_of("flux_shape")], alone.flux_ratio[rows[:7]]
    )
    renamed = SHAPE.model_copy(update={"name": "other"})
    other = build_universe_set([renamed], BINS, seed=SEED, signal_flux=SIGNAL_FLUX)
    assert not np.array_equal(other.flux_ratio[1:], alone.flux_ratio[1:])
    changed = build_universe_set([SHAPE], BINS, seed=SEED + 1, signal_flux=SIGNAL_FLUX)
    assert changed.checksum() != alone.checksum()
    free = SHAPE.model_copy(update={"preserve_integral": False})
    assert build_universe_set([free], BINS, seed=SEED).checksum() != alone.checksum()


# --- the default is unchanged ------------------------------------------------------------------


@pytest.mark.parametrize(
    "syst",
    [
        SystematicSection(name="norm", kind="flux", normalization=0.1, throws=30),
        SystematicSection(
            name="shape", kind="flux", normalization=0.05, shape=0.08, throws=30, flavors=["nue"]
        ),
    ],
    ids=["normalisation", "normalisation-and-shape"],
)
def test_without_the_key_the_throws_are_bit_for_bit_those_of_the_declared_covariance(
    syst: SystematicSection,
) -> None:
    """1 + L z, L the eigen-factor of the declared covariance and z the throw's normals: the
    formula the farm used before ``preserve_integral`` existed, whether or not the signal flux is
    given, and whether or not the key is written out."""
    default = build_universe_set([syst], BINS, seed=SEED)
    with_flux = build_universe_set([syst], BINS, seed=SEED, signal_flux=SIGNAL_FLUX)
    written = build_universe_set(
        [syst.model_copy(update={"preserve_integral": False})], BINS, seed=SEED
    )
    factor = _cholesky_like(flux_fractional_covariance(syst, BINS))
    expected = np.ones((31, BINS.n_bins))
    for i in range(30):
        z = throw_rng(SEED, syst.name, i).standard_normal(factor.shape[1])
        expected[1 + i, :-1] += factor @ z
    for u in (default, with_flux, written):
        assert u.flux_ratio.tobytes() == expected.tobytes()
        assert u.checksum() == default.checksum()


# --- what is refused ---------------------------------------------------------------------------


def _check(tmp_path: Path, systematic: dict[str, Any]) -> str:
    data = tomllib.loads((examples_dir() / "sns-csi.toml").read_text())
    data["systematics"] = [systematic]
    path = tmp_path / "analysis.toml"
    path.write_text(toml_text(data))
    result = farm_cli("config", "check", path)
    assert result.exit_code == 2, result.output  # bad input (docs/bad-input.md)
    return " ".join(result.output.split())


def test_preserve_integral_with_a_normalization_is_refused_saying_what_to_do(
    tmp_path: Path,
) -> None:
    message = _check(
        tmp_path,
        {"name": "flux", "kind": "flux", "normalization": 0.1, "preserve_integral": True},
    )
    assert (
        "systematic 'flux': preserve_integral = true keeps the integrated flux Φ fixed" in message
    )
    assert "normalization = 0.1 only moves Φ" in message
    assert "declare the normalisation as a separate flux systematic" in message


def test_preserve_integral_on_a_knob_is_refused(tmp_path: Path) -> None:
    message = _check(
        tmp_path,
        {
            "name": "r",
            "kind": "knob",
            "parameter": "cevns_rms_radius",
            "sigma": 0.03,
            "preserve_integral": True,
        },
    )
    assert "systematic 'r': `preserve_integral` only applies to kind = 'flux'" in message


def test_a_covariance_that_only_moves_phi_is_refused() -> None:
    syst = SystematicSection(
        name="all_norm", kind="flux", covariance_file="norm.npy", preserve_integral=True
    )
    with pytest.raises(ValueError, match="nothing of its covariance is left: it only moves"):
        build_universe_set(
            [syst],
            BINS,
            seed=SEED,
            signal_flux=SIGNAL_FLUX,
            flux_covariances={"all_norm": np.full((6, 6), 0.01)},
        )


def test_a_shape_of_flavours_that_do_not_normalise_the_cross_section_is_refused() -> None:
    def config(preserve: bool) -> Any:
        shape = {"name": "numu_shape", "kind": "flux", "shape": 0.1, "flavors": ["numubar"]}
        table = shape | {"preserve_integral": preserve}
        return _sample("sns-csi", [table], signal_flavors=["nue"])[0]

    check_before_running(config(False))  # without the key it is fine
    with pytest.raises(ValueError, match="touches no flux bin of a signal flavour") as err:
        check_before_running(config(True))
    assert "remove preserve_integral, or give it flavors among [binning] signal_flavors" in str(
        err.value
    )


def test_building_without_the_signal_flux_is_refused() -> None:
    with pytest.raises(ValueError, match="preserve_integral needs the nominal flux"):
        build_universe_set([SHAPE], BINS, seed=SEED)
