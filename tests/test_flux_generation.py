"""A generated sample drawn from the run's flux (issue 12, item 1): a ``[flux]`` file's, else the
source model's.

A flux file holding the π-DAR model's histogram generates the model's expected CEvNS count to
the histogram's binning precision; a file with one flavour doubled doubles exactly that
flavour's events; a store remembers the flux it was drawn from, and a run under another flux is
refused; a generator that cannot draw from a file says so.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from farm.binding import check_store_binding
from farm.config import examples_dir, parse_config
from farm.flux import sources
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


def test_a_generator_that_cannot_draw_from_a_file_says_so(tmp_path: Path) -> None:
    sns = _config(tmp_path, "sns-csi", None)
    reactor = _config(tmp_path, "reactor-ge", None)
    data = reactor.model_dump(mode="json") | {"flux": _model_histogram_file(tmp_path, sns)}
    with pytest.raises(ValueError, match=r"\[flux\] file .* cannot draw them from a flux file"):
        sample_model(parse_config(data, source="reactor-ge with a flux file (test)"))
