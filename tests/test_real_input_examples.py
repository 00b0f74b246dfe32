"""The three ingest-to-result walkthroughs of examples/ run, on files written with the real
writers (uproot, pyhepmc, a HEPData table, weights in a gst branch), and give what they say.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("uproot")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_genie_argon_gives_a_covariance_from_the_flux_file_and_the_genie_weights(
    tmp_path: Path,
) -> None:
    out = load("genie_argon").run(tmp_path, events=12_000)
    assert out["target_check"] == {"done": True, "events_by_nucleus": {"Ar40": 12_000}}
    check = out["normalization"]["cross_check"]
    assert check["done"] and abs(check["ratio"] - 1.0) < 0.01
    assert out["n_universes"]["ppfx"] == 100 and out["n_universes"]["genie_multisim"] == 100
    # both bring their universes (a flux file's histograms, a weight set's columns): a warning
    # about them must not ask for throws that cannot be made
    assert set(out["dataset"].attrs["universes_fixed"].split(",")) == {"ppfx", "genie_multisim"}
    assert out["clamped"] > 0  # the negative GENIE weights, set to 0 and counted
    cov = out["genie_covariance"]
    assert np.all(np.isfinite(cov)) and np.all(
        np.linalg.eigvalsh(cov) >= -1e-12 * np.abs(cov).max()
    )
    assert np.all(np.diag(cov) > 0)
    corr = out["genie_correlation"]
    assert np.all(np.abs(corr) <= 1.0 + 1e-12)
    assert set(out["summary"].by_channel) >= {"CCQE", "CC_RES", "NC_INEL"}
    assert np.all(out["per_systematic"]["ppfx"] > 0.01)  # the flux file's universes move σ


def test_marley_nue_applies_the_files_units_and_target_scale(tmp_path: Path) -> None:
    example = load("marley_nue")
    out = example.run(tmp_path, events=4000)
    norm = out["normalization"]
    assert norm["xsec_target_scale"] == "nucleus"  # "PerTargetAtom" in the file
    assert out["channels"] == {"NUE_AR40_CC": 64}
    # σ × targets × the fluence the mapping states, computed independently of the ingest ...
    expected = example.FATX * 1e-38 * 1.50695e29 * 4.934e14
    assert out["expected_events"] / expected == pytest.approx(1.0, abs=1e-12)
    # ... which is the file's beam histogram (the π-DAR ν_e at 20 m) to its rounding
    phi = example.pidar_flux(example.SOURCE).integral(["nue"])
    assert norm["cross_check"]["fluence_per_cm2_of_flux"] / phi == pytest.approx(1.0, abs=1e-9)
    assert np.all(np.isfinite(out["xsec"])) and np.all(out["total"] > 0)


def test_coherent_csi_runs_on_the_flux_of_its_hepdata_table(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    out = load("coherent_csi").run(tmp_path, events=12_000)
    assert out["phi_store"] / out["phi_model"] == pytest.approx(1.0, abs=1e-12)
    assert out["flux_source"].startswith("file ") and "hepdata" in out["flux_source"]
    assert set(out["target_check"]["events_by_nucleus"]) == {"Cs133", "I127"}
    assert out["xsec"] / out["model_xsec"] == pytest.approx(1.0, abs=0.1)
