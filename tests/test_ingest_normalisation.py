"""``farm ingest`` normalises correctly or refuses (issue 12, item 2).

NuHepMC's cross-section units and target scale are applied (a per-nucleon σ̄ on carbon gives 12×
the events of a per-nucleus one), the mapping's target is checked against every event, several
targets are normalised separately, and the expected events are cross-checked against σ̄ Φ N_T
from the sample's own flux. Inputs are written with the real writers (examples/realfiles.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import toml_text

from farm.flux.record import flux_from_record
from farm.ingest import IngestError, ingest
from farm.store import EventStore
from farm.store.schema import Channel
from farm.store.summary import summarize

pytest.importorskip("uproot")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("realfiles", ROOT / "examples" / "realfiles.py")
realfiles = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(realfiles)  # type: ignore[union-attr]

C12_NUCLEI = 4.0e28
FLUX_EDGES_MEV = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
FLUX_PER_POT = np.array([1.0, 3.0, 4.0, 3.0, 2.0, 1.0]) * 1e-9  # ν_e per cm² per POT per bin
POT = 2.0e20


def nuhepmc_events(n: int, *, seed: int = 3, process: int = 100) -> list[dict[str, Any]]:
    """ν_e CC on ¹²C (MARLEY-like, MeV), CV weights 1 and 2 alternating."""
    rng = np.random.default_rng(seed)
    enu = rng.uniform(8.0, 55.0, n)
    events = []
    for i, e in enumerate(enu):
        ke = 0.8 * e
        events.append(
            {
                "process": process,
                "beam": (12, (0.0, 0.0, e, e)),
                "target": (1000060120, (0.0, 0.0, 0.0, 11177.9)),
                "final": [(11, (0.1 * ke, 0.0, 0.99 * ke, ke))],
                "weights": [1.0 + (i % 2)],
            }
        )
    return events


def write_flux(tmp_path: Path) -> Path:
    return realfiles.write_flux_csv(tmp_path / "flux.csv", FLUX_EDGES_MEV, {"nue": FLUX_PER_POT})


def nuhepmc_mapping(flux: Path, **normalization: Any) -> dict[str, Any]:
    return {
        "ingest": {"format": "hepmc3"},
        "store": {"sample": "marley-c12"},
        "exposure": {"value": POT, "unit": "POT"},
        "target": {
            "material": "C",
            "nuclei": {"C12": {"z": 6, "n": 6, "a": 12, "count": C12_NUCLEI}},
        },
        "flux": {
            "file": str(flux),
            "flavors": {"nue": "nue"},
            "energy_unit": "MeV",
            "unit": "nu/cm2/POT",
        },
        "normalization": {"weight": "wght", "flux_averaged_xsec_cm2": "file", **normalization},
        "columns": {
            "enu_true": {"branch": "Ev"},
            "flavor": {"branch": "neu"},
            "target_a": {"branch": "A"},
        },
        "channel": {"preset": "nuhepmc"},
        "signal": {"channels": ["CC_OTHER"], "flavors": ["nue"]},
    }


def run_ingest(
    tmp_path: Path, inputs: list[Path], mapping: dict[str, Any], **kw: Any
) -> EventStore:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "mapping.toml"
    path.write_text(toml_text(mapping))
    out = tmp_path / "store.zarr"
    ingest(inputs, path, out, **kw)
    return EventStore.open(out)


def total(store: EventStore) -> float:
    return float(store.read_columns(["w_nominal"], 0, store.n_events)["w_nominal"].sum())


# --- NuHepMC: units and target scale -------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "unit", "per_target"),
    [
        ("PerTargetNucleon", "1e-38 cm2", 12.0),
        ("PerNucleon", "pb", 12.0),
        ("PerAtom", "pb", 1.0),
        ("PerTargetAtom", "10-38 cm2", 1.0),
        ("PerTarget", "cm2", 1.0),
    ],
)
def test_a_nuhepmc_cross_section_is_multiplied_by_what_it_is_per(
    tmp_path: Path, scale: str, unit: str, per_target: float
) -> None:
    pytest.importorskip("pyhepmc")
    value = {"1e-38 cm2": 2.5, "10-38 cm2": 2.5, "pb": 0.025, "cm2": 2.5e-38}[unit]
    attrs = {
        "NuHepMC.FluxAveragedTotalCrossSection": value,
        "NuHepMC.Units.CrossSection.Unit": unit,
        "NuHepMC.Units.CrossSection.TargetScale": scale,
    }
    events = realfiles.write_nuhepmc(
        tmp_path / "c12.hepmc3", nuhepmc_events(40), run_attributes=attrs
    )
    store = run_ingest(tmp_path, [events], nuhepmc_mapping(write_flux(tmp_path)))
    # the independent calculation: σ × targets × nucleons per target × fluence
    sigma_cm2 = 2.5e-38
    fluence = FLUX_PER_POT.sum() * POT
    expected = sigma_cm2 * C12_NUCLEI * per_target * fluence
    assert total(store) / expected == pytest.approx(1.0, abs=1e-12)
    record = store.attrs["ingest"]["normalization"]
    assert record["xsec_target_scale"] == ("nucleon" if per_target == 12.0 else "nucleus")
    assert record["cross_check"]["done"] is True
    w = store.read_columns(["w_nominal"], 0, 2)["w_nominal"]
    assert w[1] / w[0] == pytest.approx(2.0, abs=1e-14)  # shared by the CV weights


def test_a_nuhepmc_file_without_target_scale_is_refused_unless_the_mapping_states_it(
    tmp_path: Path,
) -> None:
    pytest.importorskip("pyhepmc")
    attrs = {
        "NuHepMC.FluxAveragedTotalCrossSection": 2.5,
        "NuHepMC.Units.CrossSection.Unit": "1e-38 cm2",
    }
    events = realfiles.write_nuhepmc(
        tmp_path / "c12.hepmc3", nuhepmc_events(10), run_attributes=attrs
    )
    flux = write_flux(tmp_path)
    with pytest.raises(
        IngestError,
        match=r"does not record NuHepMC.Units.CrossSection.TargetScale.*xsec_target_scale",
    ):
        run_ingest(tmp_path / "a", [events], nuhepmc_mapping(flux))
    stated = run_ingest(
        tmp_path / "b", [events], nuhepmc_mapping(flux, xsec_target_scale="nucleon")
    )
    expected = 2.5e-38 * C12_NUCLEI * 12 * FLUX_PER_POT.sum() * POT
    assert total(stated) / expected == pytest.approx(1.0, abs=1e-12)


def test_a_nuhepmc_file_without_a_cross_section_unit_is_refused_unless_stated(
    tmp_path: Path,
) -> None:
    pytest.importorskip("pyhepmc")
    attrs = {
        "NuHepMC.FluxAveragedTotalCrossSection": 2.5,
        "NuHepMC.Units.CrossSection.TargetScale": "PerAtom",
    }
    events = realfiles.write_nuhepmc(
        tmp_path / "c12.hepmc3", nuhepmc_events(10), run_attributes=attrs
    )
    flux = write_flux(tmp_path)
    with pytest.raises(
        IngestError, match=r"does not record NuHepMC.Units.CrossSection.Unit.*xsec_unit"
    ):
        run_ingest(tmp_path / "a", [events], nuhepmc_mapping(flux))
    with pytest.raises(
        IngestError,
        match=r"TargetScale says 'nucleus', \[normalization\] xsec_target_scale says 'nucleon'",
    ):
        run_ingest(
            tmp_path / "b",
            [events],
            nuhepmc_mapping(flux, xsec_unit="1e-38 cm2", xsec_target_scale="nucleon"),
        )
    ok = run_ingest(tmp_path / "c", [events], nuhepmc_mapping(flux, xsec_unit="1e-38 cm2"))
    assert total(ok) / (2.5e-38 * C12_NUCLEI * FLUX_PER_POT.sum() * POT) == pytest.approx(
        1.0, abs=1e-12
    )


# --- targets ----------------------------------------------------------------------------------------


def gst_mapping(**tables: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ingest": {"format": "gst"},
        "store": {"sample": "genie"},
        "exposure": {"value": 1e20, "unit": "POT"},
        "target": {
            "material": "Ar",
            "nuclei": {"Ar40": {"z": 18, "n": 22, "a": 40, "count": 7.5e30}},
        },
        "normalization": {"weight": "wght", "expected_events": 1000.0, "cross_check": False},
        "columns": {
            "enu_true": {"branch": "Ev", "unit": "GeV"},
            "flavor": {"branch": "neu"},
            "target_a": {"branch": "A"},
        },
        "channel": {"preset": "genie"},
        "signal": {"channels": ["CCQE"], "flavors": ["numu"]},
    }
    data.update(tables)
    return data


def test_a_gst_file_on_another_target_is_refused_with_the_counts(tmp_path: Path) -> None:
    carbon = realfiles.gst_branches(50, seed=1, targets=((6, 12, 1.0),))
    path = realfiles.write_gst(tmp_path / "c12.gst.root", carbon)
    with pytest.raises(IngestError) as info:
        run_ingest(tmp_path, [path], gst_mapping())
    message = str(info.value)
    assert "50 of 50 events are on nuclei [target] does not declare" in message
    assert "50 on Z = 6, A = 12 (tgt 1000060120)" in message
    assert "[target] declares Ar40 (Z = 18, A = 40)" in message
    assert not (tmp_path / "store.zarr").exists()


def test_the_target_is_checked_from_z_and_a_when_there_is_no_tgt_branch(tmp_path: Path) -> None:
    branches = realfiles.gst_branches(30, seed=2, targets=((18, 40, 0.9), (6, 12, 0.1)))
    del branches["tgt"]
    path = realfiles.write_gst(tmp_path / "mixed.root", branches)
    with pytest.raises(IngestError, match=r"on Z = 6, A = 12"):
        run_ingest(tmp_path, [path], gst_mapping())
    unchecked = gst_mapping()
    unchecked["target"] = {**unchecked["target"], "check": False}
    store = run_ingest(tmp_path / "unchecked", [path], unchecked)
    assert store.attrs["ingest"]["target_check"] == {
        "done": False,
        "reason": "[target] check = false",
    }


def test_a_file_on_two_targets_is_normalised_per_target(tmp_path: Path) -> None:
    """Ar + H: each nucleus's events share σ̄_t Φ N_t; the store records both targets."""
    branches = realfiles.gst_branches(400, seed=4, targets=((18, 40, 0.8), (1, 1, 0.2)))
    path = realfiles.write_gst(tmp_path / "arh.root", branches)
    flux = realfiles.write_flux_csv(
        tmp_path / "numu.csv",
        np.array([0.0, 1.0, 2.0, 5.0, 100.0]),
        {"numu": np.array([2e-9, 3e-9, 4e-9, 1e-9])},
    )
    mapping = gst_mapping(
        target={
            "material": "Ar + H2",
            "nuclei": {
                "Ar40": {
                    "z": 18,
                    "n": 22,
                    "a": 40,
                    "count": 7.0e30,
                    "flux_averaged_xsec_cm2": 5.0e-37,
                },
                "H1": {"z": 1, "n": 0, "a": 1, "count": 2.0e29, "flux_averaged_xsec_cm2": 8.0e-39},
            },
        },
        flux={
            "file": str(flux),
            "flavors": {"numu": "numu"},
            "energy_unit": "GeV",
            "unit": "nu/cm2/POT",
        },
        normalization={
            "weight": "wght",
            # no global σ̄: each [target] nucleus gives its own
            "xsec_target_scale": "nucleus",
        },
    )
    store = run_ingest(tmp_path, [path], mapping)
    cols = store.read_columns(["w_nominal", "target_a"], 0, store.n_events)
    phi = 1e-8 * 1e20
    for a, sigma, count in ((40, 5.0e-37, 7.0e30), (1, 8.0e-39, 2.0e29)):
        got = cols["w_nominal"][cols["target_a"] == a].sum()
        assert got / (sigma * phi * count) == pytest.approx(1.0, abs=1e-12)
    events = store.attrs["ingest"]["target_check"]["events_by_nucleus"]
    assert set(events) == {"Ar40", "H1"} and sum(events.values()) == 400


# --- the cross-check ---------------------------------------------------------------------------------


def genie_flux_mapping(tmp_path: Path, fluence: float) -> dict[str, Any]:
    flux = realfiles.write_flux_csv(
        tmp_path / "numu.csv",
        np.array([0.0, 1.0, 2.0, 5.0]),
        {"numu": np.array([1.2e-9, 0.8e-9, 0.4e-9])},
    )
    return gst_mapping(
        flux={
            "file": str(flux),
            "flavors": {"numu": "numu"},
            "energy_unit": "GeV",
            "unit": "nu/cm2/POT",
        },
        normalization={
            "weight": "wght",
            "flux_averaged_xsec_cm2": 3.0e-37,
            "xsec_target_scale": "nucleus",
            "fluence_per_cm2": fluence,
            "targets": 7.5e30,
        },
    )


def test_a_fluence_that_disagrees_with_the_flux_file_is_refused_printing_both(
    tmp_path: Path,
) -> None:
    """The issue's case: the mapping says Φ = 1e12 /cm², the flux integrates to 2.4e11."""
    path = realfiles.write_gst(tmp_path / "ar.root", realfiles.gst_branches(20, seed=5))
    with pytest.raises(IngestError) as info:
        run_ingest(tmp_path, [path], genie_flux_mapping(tmp_path, 1.0e12))
    message = str(info.value)
    assert "the mapping declares 2.25e+06" in message  # 3e-37 · 1e12 · 7.5e30
    assert "= 540000 (ratio 4.167" in message  # 3e-37 · 2.4e11 · 7.5e30
    assert "more than 1 % from 1" in message
    ok = run_ingest(tmp_path / "ok", [path], genie_flux_mapping(tmp_path, 2.4e11 * 1.005))
    assert ok.attrs["ingest"]["normalization"]["cross_check"]["ratio"] == pytest.approx(
        1.005, abs=1e-9
    )


def test_expected_events_are_cross_checked_against_sigma_phi_targets(tmp_path: Path) -> None:
    path = realfiles.write_gst(tmp_path / "ar.root", realfiles.gst_branches(20, seed=6))
    mapping = genie_flux_mapping(tmp_path, 2.4e11)
    mapping["normalization"] = {
        "weight": "wght",
        "expected_events": 700_000.0,
        "flux_averaged_xsec_cm2": 3.0e-37,
        "xsec_target_scale": "nucleus",
    }
    with pytest.raises(IngestError, match=r"declares 700000 \(expected_events\).*= 540000"):
        run_ingest(tmp_path, [path], mapping)
    mapping["normalization"]["expected_events"] = 541_000.0
    assert total(run_ingest(tmp_path / "ok", [path], mapping)) / 541_000.0 == pytest.approx(
        1.0, abs=1e-12
    )


def test_without_a_flux_the_normalisation_cannot_be_checked_and_is_refused(tmp_path: Path) -> None:
    path = realfiles.write_gst(tmp_path / "ar.root", realfiles.gst_branches(10, seed=7))
    mapping = gst_mapping(normalization={"weight": "wght", "expected_events": 100.0})
    with pytest.raises(
        IngestError,
        match=r"cannot be cross-checked .* without the sample's flux \(\[flux\]\).*cross_check = false",
    ):
        run_ingest(tmp_path, [path], mapping)


def test_the_store_records_the_flux_it_was_ingested_with(tmp_path: Path) -> None:
    path = realfiles.write_gst(tmp_path / "ar.root", realfiles.gst_branches(20, seed=8))
    store = run_ingest(tmp_path, [path], genie_flux_mapping(tmp_path, 2.4e11), exposure=3e20)
    flux = flux_from_record(store.attrs["flux"], store.path)
    # per POT × the --exposure: 2.4e-9 /cm²/POT × 3e20 POT
    assert flux.integral() / (2.4e-9 * 3e20) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(
        flux.spectra["numu"].edges, [0.0, 1000.0, 2000.0, 5000.0], rtol=0, atol=0
    )
    assert flux.exposure["value"] == 3e20
    assert total(store) / (3.0e-37 * 2.4e-9 * 3e20 * 7.5e30) == pytest.approx(1.0, abs=1e-12)


# --- channels ----------------------------------------------------------------------------------------


def test_the_genie_preset_classifies_every_process(tmp_path: Path) -> None:
    branches = realfiles.gst_branches(300, seed=9, cc_fraction=0.7)
    path = realfiles.write_gst(tmp_path / "ar.root", branches)
    store = run_ingest(tmp_path, [path], gst_mapping())
    channel = store.read_columns(["channel"], 0, store.n_events)["channel"]
    cc, nc = branches["cc"], branches["nc"]
    expect = np.full(300, -1)
    for name, flag in (
        ("qel", Channel.CCQE),
        ("mec", Channel.CC_MEC),
        ("res", Channel.CC_RES),
        ("dis", Channel.CC_DIS),
        ("coh", Channel.CC_COH),
    ):
        expect[cc & branches[name]] = flag
    expect[nc & branches["qel"]] = Channel.NC_EL
    expect[nc & ~branches["qel"]] = Channel.NC_INEL
    np.testing.assert_array_equal(channel, expect)
    assert {"CCQE", "CC_RES", "NC_INEL"} <= set(summarize(store).by_channel)


def test_a_declared_channel_is_stored_with_its_name(tmp_path: Path) -> None:
    pytest.importorskip("pyhepmc")
    attrs = {
        "NuHepMC.FluxAveragedTotalCrossSection": 2.5,
        "NuHepMC.Units.CrossSection.Unit": "1e-38 cm2",
        "NuHepMC.Units.CrossSection.TargetScale": "PerAtom",
    }
    events = realfiles.write_nuhepmc(
        tmp_path / "c12.hepmc3", nuhepmc_events(12, process=101), run_attributes=attrs
    )
    mapping = nuhepmc_mapping(write_flux(tmp_path))
    mapping["channel"] = {
        "declare": ["NUE_C12_CC"],
        "rules": [{"channel": "NUE_C12_CC", "when": {"process_id": {"min": 100, "max": 149}}}],
        "preset": "nuhepmc",
    }
    mapping["signal"] = {"channels": ["NUE_C12_CC"]}
    store = run_ingest(tmp_path, [events], mapping)
    assert store.attrs["channels"] == {"NUE_C12_CC": 64}
    cols = store.read_columns(["channel", "is_signal"], 0, store.n_events)
    assert set(cols["channel"].tolist()) == {64} and cols["is_signal"].all()
    assert set(summarize(store).by_channel) == {"NUE_C12_CC"}
