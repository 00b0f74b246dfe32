"""``farm ingest``: GENIE gst trees and NuHepMC/HepMC3 files become event stores, as the mapping says."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import farm_cli, toml_text

from farm.config import ConfigError
from farm.ingest import IngestError, guess_format, ingest, load_mapping
from farm.ingest.kernels import condition_mask, cosine_to_direction
from farm.ingest.mapping import Range
from farm.ingest.units import unit_factor
from farm.physics.constants import MASS_MUON_MEV
from farm.store import EventStore, StoreError
from farm.store.schema import Channel

uproot = pytest.importorskip("uproot")

ROOT = Path(__file__).resolve().parents[1]
N = 12
MUON_MASS_GEV = MASS_MUON_MEV / 1000.0


def gst_branches(n: int = N, offset: int = 0) -> dict[str, np.ndarray]:
    """A gst-like event list in GENIE's units (GeV, GeV²): ν_μ, ν̄_μ and ν_e CC, two NC coherent."""
    i = np.arange(n) + offset
    s = (i % N) + 1.0
    neu = np.array([14, 14, 14, 14, -14, -14, 12, 12, 14, 14, 14, 14], dtype=np.int32)[i % N]
    cc = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)[i % N]
    qel = np.array([1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0], dtype=bool)[i % N]
    pxl, pyl, pzl = 0.3 * s, np.zeros(n), 0.4 * s  # |p| = 0.5 s GeV at cos θ = 0.8
    last = (i % N) == N - 1
    pxl[last], pzl[last] = 0.0, -0.2  # backwards: |p| = 0.2 GeV, cos θ = -1
    pl = np.sqrt(pxl**2 + pyl**2 + pzl**2)
    ev = 0.5 + 0.15 * (i % N)
    return {
        "iev": i.astype(np.int32),
        "neu": neu,
        "tgt": np.full(n, 1000180400, dtype=np.int32),
        "A": np.full(n, 40, dtype=np.int32),
        "cc": cc,
        "nc": ~cc,
        "qel": qel,
        "coh": ~cc,
        "Ev": ev,
        "El": np.sqrt(pl**2 + MUON_MASS_GEV**2),
        "pxl": pxl,
        "pyl": pyl,
        "pzl": pzl,
        "pl": pl,
        "Q2": 0.1 * s,
        "wght": 1.0 + (i % 2),
        "Erec": 0.9 * ev,
    }


def write_gst(path: Path, branches: dict[str, np.ndarray], tree: str = "gst") -> Path:
    with uproot.recreate(path) as file:
        file.mktree(
            tree, {k: v.dtype for k, v in branches.items()}, title="GENIE Summary Event Tree"
        )
        file[tree].extend(branches)
    return path


MAPPING: dict[str, Any] = {
    "ingest": {"format": "gst", "tree": "gst"},
    "store": {"sample": "gst-test"},
    "generator": {"name": "GENIE", "version": "3.04.02"},
    "exposure": {"value": 1.0e20, "unit": "POT", "seconds": 3.0e7},
    # no flux here: these tests are about mapping columns, so the normalisation is unchecked
    "normalization": {"weight": "wght", "expected_events": 250.0, "cross_check": False},
    "columns": {
        "enu_true": {"branch": "Ev", "unit": "GeV"},
        "flavor": {"branch": "neu"},
        "target_a": {"branch": "A"},
        "q2_mev2": {"branch": "Q2", "unit": "GeV^2"},
        "elep_mev": {"branch": "El", "unit": "GeV"},
        "plep_mev": {"magnitude": ["pxl", "pyl", "pzl"], "unit": "GeV"},
        "coslep": {"cosine": ["pxl", "pyl", "pzl"]},
        "reco_energy_mev": {"branch": "Erec", "unit": "GeV"},
    },
    "channel": {
        "rules": [
            {"channel": "CEVNS", "when": {"nc": True, "coh": True}},
            {"channel": "CCQE", "when": {"cc": True, "qel": True}},
            {"channel": "CC_OTHER", "when": {"cc": True}},
        ]
    },
    "signal": {"channels": ["CCQE"], "flavors": ["numu"]},
    "selection": {"when": {"pl": {"min": 0.6}}},
}


def mapping_with(**tables: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(MAPPING)
    for table, values in tables.items():
        data.setdefault(table, {}).update(values)
    return data


def write_mapping(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(toml_text(data))
    return path


@pytest.fixture
def gst(tmp_path: Path) -> Path:
    return write_gst(tmp_path / "numu.gst.root", gst_branches())


def ingested(tmp_path: Path, inputs: list[Path], mapping: dict[str, Any], **kw: Any) -> EventStore:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "store.zarr"
    ingest(inputs, write_mapping(tmp_path / "mapping.toml", mapping), out, **kw)
    return EventStore.open(out)


def read_all(store: EventStore) -> dict[str, np.ndarray]:
    return store.read_columns(None, 0, store.n_events)


# --- conversions ---------------------------------------------------------------------------------


def test_gst_energies_in_gev_are_stored_in_mev_and_q2_in_mev2(tmp_path: Path, gst: Path) -> None:
    cols = read_all(ingested(tmp_path, [gst], MAPPING))
    b = gst_branches()
    np.testing.assert_allclose(cols["enu_true"], 1000.0 * b["Ev"], rtol=1e-15)
    np.testing.assert_allclose(cols["elep_mev"], 1000.0 * b["El"], rtol=1e-15)
    np.testing.assert_allclose(cols["q2_mev2"], 1.0e6 * b["Q2"], rtol=1e-15)
    np.testing.assert_allclose(cols["reco_energy_mev"], 900.0 * b["Ev"], rtol=1e-6)  # float32


def test_lepton_momentum_and_angle_are_derived_from_its_components(
    tmp_path: Path, gst: Path
) -> None:
    cols = read_all(ingested(tmp_path, [gst], MAPPING))
    # (0.3 s, 0, 0.4 s) GeV: |p| = 500 s MeV at cos θ = 0.8; the last event goes backwards at 200 MeV
    expected_p = 500.0 * np.arange(1, N + 1)
    expected_p[-1] = 200.0
    np.testing.assert_allclose(cols["plep_mev"], expected_p, rtol=1e-14)
    np.testing.assert_allclose(cols["coslep"], [0.8] * (N - 1) + [-1.0], rtol=1e-6)


def test_flavor_is_the_neutrino_pdg_code_and_target_a_the_mass_number(
    tmp_path: Path, gst: Path
) -> None:
    cols = read_all(ingested(tmp_path, [gst], MAPPING))
    assert cols["flavor"].tolist() == gst_branches()["neu"].tolist()
    assert set(cols["target_a"].tolist()) == {40}


def test_channel_rules_apply_in_order_and_the_first_that_holds_wins(
    tmp_path: Path, gst: Path
) -> None:
    cols = read_all(ingested(tmp_path, [gst], MAPPING))
    q, o, c = Channel.CCQE, Channel.CC_OTHER, Channel.CEVNS
    assert cols["channel"].tolist() == [q, o, q, o, q, o, q, o, c, c, q, o]


def test_signal_is_numu_ccqe_and_selection_follows_its_rule(tmp_path: Path, gst: Path) -> None:
    cols = read_all(ingested(tmp_path, [gst], MAPPING))
    # ν_μ CCQE: events 0, 2, 10 (4 is ν̄_μ, 6 is ν_e)
    assert np.flatnonzero(cols["is_signal"]).tolist() == [0, 2, 10]
    # pl >= 0.6 GeV: all but event 0 (0.5 GeV) and the backwards one (0.2 GeV)
    assert np.flatnonzero(~cols["selected"]).tolist() == [0, 11]


def test_expected_events_are_shared_in_proportion_to_the_generator_weight(
    tmp_path: Path, gst: Path
) -> None:
    w = read_all(ingested(tmp_path, [gst], MAPPING))["w_nominal"]
    # wght alternates 1, 2: Σ wght = 18, so 250/18 events per unit weight
    assert w.sum() == pytest.approx(250.0, rel=1e-14, abs=0)
    np.testing.assert_allclose(w, 250.0 / 18.0 * gst_branches()["wght"], rtol=1e-14)


def test_flux_normalisation_gives_sigma_times_fluence_times_targets(
    tmp_path: Path, gst: Path
) -> None:
    norm = {"weight": "wght", "expected_events": None, "cross_check": False}
    norm |= {"flux_averaged_xsec_cm2": 1.0e-38, "fluence_per_cm2": 2.0e12, "targets": 5.0e27}
    norm |= {"xsec_target_scale": "nucleus"}
    data = mapping_with()
    data["normalization"] = {k: v for k, v in norm.items() if v is not None}
    w = read_all(ingested(tmp_path, [gst], data))["w_nominal"]
    # N = σ̄ Φ N_T = 100
    assert w.sum() == pytest.approx(1.0e-38 * 2.0e12 * 5.0e27, rel=1e-14, abs=0)


def test_events_per_weight_multiplies_each_weight(tmp_path: Path, gst: Path) -> None:
    data = mapping_with()
    data["normalization"] = {"weight": "wght", "events_per_weight": 0.25, "cross_check": False}
    w = read_all(ingested(tmp_path, [gst], data))["w_nominal"]
    np.testing.assert_array_equal(w, 0.25 * gst_branches()["wght"])


def test_exposure_option_rescales_weights_and_the_recorded_exposure(
    tmp_path: Path, gst: Path
) -> None:
    store = ingested(tmp_path, [gst], MAPPING, exposure=3.0e20)
    assert read_all(store)["w_nominal"].sum() == pytest.approx(750.0, rel=1e-14, abs=0)
    assert store.attrs["exposure"] == {
        "value": 3.0e20,
        "unit": "POT",
        "seconds": pytest.approx(9.0e7, abs=0),
    }


# --- identity, layout and provenance ---------------------------------------------------------


def test_event_ids_number_the_events_of_all_inputs_in_order(tmp_path: Path) -> None:
    first = write_gst(tmp_path / "a.root", gst_branches())
    second = write_gst(tmp_path / "b.root", gst_branches(offset=N))
    store = ingested(tmp_path, [first, second], MAPPING, shard_rows=5)
    ids = read_all(store)["event_id"]
    assert ids.tolist() == list(range(2 * N))
    inputs = store.attrs["ingest"]["inputs"]
    assert [i["event_ids"] for i in inputs] == [[0, N], [N, 2 * N]]
    assert [i["checksum"] for i in inputs] == [
        hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest() for p in (first, second)
    ]


def test_shards_cut_across_read_chunks_hold_the_same_events(tmp_path: Path, gst: Path) -> None:
    whole = read_all(ingested(tmp_path / "one", [gst], MAPPING))
    small = mapping_with(ingest={"format": "gst", "tree": "gst", "read_rows": 5})
    store = ingested(tmp_path / "many", [gst], small, shard_rows=4)
    assert store.n_shards == 3
    assert all(c.ok for c in store.verify())
    for name, values in read_all(store).items():
        np.testing.assert_array_equal(values, whole[name], err_msg=name)


def test_keep_drops_events_but_they_keep_their_share_of_the_normalisation(
    tmp_path: Path, gst: Path
) -> None:
    data = mapping_with(ingest={"format": "gst", "tree": "gst", "keep": {"cc": True}})
    store = ingested(tmp_path, [gst], data)
    cols = read_all(store)
    assert store.n_events == 10  # the two NC events are dropped
    assert cols["event_id"].tolist() == list(range(10))
    # the NC events (weights 1 and 2 of Σ wght = 18) take 3/18 of the 250 expected events along
    assert cols["w_nominal"].sum() == pytest.approx(250.0 * 15.0 / 18.0, rel=1e-14, abs=0)
    assert store.attrs["ingest"]["inputs"][0]["dropped"] == 2


def test_store_records_its_source_family_generator_mapping_and_exposure(
    tmp_path: Path, gst: Path
) -> None:
    attrs = ingested(tmp_path, [gst], MAPPING).attrs
    assert attrs["source_family"] == "external"
    assert attrs["generator"] == {"name": "GENIE", "version": "3.04.02", "format": "gst"}
    assert attrs["ingest"]["mapping"]["columns"]["enu_true"] == {"branch": "Ev", "unit": "GeV"}
    assert attrs["ingest"]["inputs"][0]["tree"] == "gst"
    assert attrs["exposure"] == {"value": 1.0e20, "unit": "POT", "seconds": 3.0e7}


def test_the_example_genie_mapping_ingests_a_gst_tree(tmp_path: Path, gst: Path) -> None:
    store_path = tmp_path / "genie.zarr"
    ingest([gst], ROOT / "examples" / "genie-mapping.toml", store_path)
    store = EventStore.open(store_path)
    w = read_all(store)["w_nominal"]
    assert store.n_events == 10  # its [ingest] keep = { cc = true }
    # σ̄ Φ N_T = 3e-37 · 1e12 · 7.5348e30, of which the CC events carry Σ wght 15 of 18
    assert w.sum() == pytest.approx(3.0e-37 * 1.0e12 * 7.5348e30 * 15.0 / 18.0, rel=1e-12, abs=0)


def test_farm_ingest_writes_a_store_that_inspect_verify_accepts(tmp_path: Path, gst: Path) -> None:
    mapping = write_mapping(tmp_path / "m.toml", MAPPING)
    out = tmp_path / "cli.zarr"

    made = farm_cli("ingest", gst, "--mapping", mapping, "--out", out, "--shard-size", 5)
    assert made.exit_code == 0, made.output
    assert "wrote 12 events" in made.output

    checked = farm_cli("inspect", out, "--verify")
    assert checked.exit_code == 0, checked.output
    assert "all 3 shard(s) OK" in checked.output


# --- errors ----------------------------------------------------------------------------------------


def test_a_missing_branch_is_named_with_the_file_tree_and_mapping_key(tmp_path: Path) -> None:
    branches = gst_branches()
    del branches["El"], branches["Erec"]
    path = write_gst(tmp_path / "old.root", branches)
    mapping = write_mapping(tmp_path / "m.toml", MAPPING)
    with pytest.raises(IngestError) as info:
        ingest([path], mapping, tmp_path / "s.zarr")
    message = str(info.value)
    assert f"{path}, tree 'gst'" in message
    assert "no branch(es) 'El', 'Erec'" in message
    assert "'El' for columns.elep_mev" in message
    assert "'Erec' for columns.reco_energy_mev" in message
    assert not list(tmp_path.glob("*.zarr")) and not list(tmp_path.glob(".s.zarr*"))


def test_a_missing_tree_is_named_with_the_trees_the_file_holds(tmp_path: Path) -> None:
    path = write_gst(tmp_path / "flat.root", gst_branches(), tree="flat")
    mapping = write_mapping(tmp_path / "m.toml", MAPPING)
    with pytest.raises(IngestError, match=r"no tree 'gst'; the file holds flat"):
        ingest([path], mapping, tmp_path / "s.zarr")


def test_an_unknown_mapping_key_is_a_config_error_naming_it_and_the_allowed_keys(
    tmp_path: Path,
) -> None:
    data = mapping_with(normalization={"expected_event": 3.0})
    with pytest.raises(ConfigError) as info:
        load_mapping(write_mapping(tmp_path / "typo.toml", data))
    message = str(info.value)
    assert str(tmp_path / "typo.toml") in message
    assert "[normalization.expected_event] unknown key" in message
    assert "allowed here: weight, events_per_weight, expected_events" in message


def test_an_unknown_column_is_refused_naming_the_mappable_ones(tmp_path: Path) -> None:
    data = mapping_with(columns={"enu": {"branch": "Ev", "unit": "GeV"}})
    with pytest.raises(ConfigError, match=r"\[columns\] column 'enu' cannot be mapped; mappable"):
        load_mapping(write_mapping(tmp_path / "m.toml", data))


def test_a_gst_energy_without_a_unit_is_refused(tmp_path: Path, gst: Path) -> None:
    data = mapping_with(columns={"enu_true": {"branch": "Ev"}})
    with pytest.raises(ConfigError, match=r"\[columns.enu_true\] give the unit of Ev.*GeV"):
        ingested(tmp_path, [gst], data)


def test_events_that_no_channel_rule_matches_are_an_error(tmp_path: Path, gst: Path) -> None:
    data = mapping_with()
    data["channel"] = {"rules": MAPPING["channel"]["rules"][1:]}  # no rule for the NC events
    with pytest.raises(IngestError, match=r"2 event\(s\) match no \[\[channel.rules\]\]"):
        ingested(tmp_path, [gst], data)


def test_a_flavor_branch_that_is_not_a_neutrino_pdg_code_is_refused(
    tmp_path: Path, gst: Path
) -> None:
    data = mapping_with(columns={"flavor": {"branch": "A"}})
    with pytest.raises(IngestError, match=r"PDG code .* has 40"):
        ingested(tmp_path, [gst], data)


def test_a_negative_neutrino_energy_is_refused_naming_the_events(tmp_path: Path) -> None:
    branches = gst_branches()
    branches["Ev"][3] = -1.0
    path = write_gst(tmp_path / "bad.root", branches)
    with pytest.raises(
        IngestError, match=r"bad.root, tree 'gst': events 0..11: row 3 has enu_true"
    ):
        ingested(tmp_path, [path], MAPPING)


def test_an_existing_store_is_refused_before_the_inputs_are_read(tmp_path: Path, gst: Path) -> None:
    mapping = write_mapping(tmp_path / "m.toml", MAPPING)
    (tmp_path / "s.zarr").mkdir()
    with pytest.raises(StoreError, match=r"already exists.*--overwrite"):
        ingest([tmp_path / "absent.root"], mapping, tmp_path / "s.zarr")


def test_a_file_that_is_not_root_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.root"
    path.write_text("not a ROOT file")
    mapping = write_mapping(tmp_path / "m.toml", MAPPING)
    with pytest.raises(IngestError, match=r"notes.root: cannot be read as a ROOT file"):
        ingest([path], mapping, tmp_path / "s.zarr")


def test_farm_ingest_reports_a_missing_branch_and_exits_2(tmp_path: Path) -> None:
    branches = gst_branches()
    del branches["pl"]
    path = write_gst(tmp_path / "x.root", branches)
    mapping = write_mapping(tmp_path / "m.toml", MAPPING)
    result = farm_cli("ingest", path, "--mapping", mapping, "--out", tmp_path / "s.zarr")
    assert result.exit_code == 2
    assert "no branch(es) 'pl'" in result.output and "selection.when" in result.output


# --- kernels -------------------------------------------------------------------------------------


def test_units_convert_to_mev_mev2_cm_and_microseconds() -> None:
    assert unit_factor("GeV", "MeV") == 1000.0
    assert unit_factor("GeV^2", "MeV^2") == 1.0e6
    assert unit_factor("m", "cm") == 100.0
    assert unit_factor("ns", "us") == 1.0e-3
    with pytest.raises(ValueError, match="allowed: eV, keV, MeV, GeV, TeV"):
        unit_factor("GeV^2", "MeV")


def test_conditions_test_equality_membership_and_inclusive_ranges() -> None:
    pdg = np.array([12, 14, -14, 16])
    assert condition_mask(pdg, 14).tolist() == [False, True, False, False]
    assert condition_mask(pdg, [14, -14]).tolist() == [False, True, True, False]
    ids = np.array([199, 200, 249, 250])
    assert condition_mask(ids, Range(min=200, max=249)).tolist() == [False, True, True, False]


def test_a_lepton_at_rest_has_no_direction() -> None:
    cos = cosine_to_direction(np.zeros(1), np.zeros(1), np.zeros(1), (0.0, 0.0, 1.0))
    assert np.isnan(cos).all()


def test_the_format_follows_the_file_suffix() -> None:
    assert guess_format("genie.gst.root") == "gst"
    assert guess_format("nuwro.hepmc3.gz") == "hepmc3"
    assert guess_format("events.dat") is None


# --- NuHepMC / HepMC3 ------------------------------------------------------------------------------

HEPMC3_MAPPING: dict[str, Any] = {
    "ingest": {"format": "hepmc3"},
    "store": {"sample": "nuhepmc-test"},
    "exposure": {"value": 1.0e20, "unit": "POT"},
    "normalization": {
        "weight": "wght",
        "flux_averaged_xsec_cm2": "file",
        "xsec_target_scale": "nucleus",  # the test file does not say (NuHepMC G.C.4)
        "fluence_per_cm2": 1.0e12,
        "targets": 1.0e25,
        "cross_check": False,
    },
    "columns": {
        "enu_true": {"branch": "Ev"},
        "flavor": {"branch": "neu"},
        "target_a": {"branch": "A"},
        "q2_mev2": {"branch": "Q2"},
        "plep_mev": {"branch": "pl"},
        "coslep": {"branch": "cthl"},
    },
    "channel": {
        "rules": [  # NuHepMC E.C.1: 200-249 CC quasielastic, 400-449 CC resonant
            {"channel": "CCQE", "when": {"process_id": {"min": 200, "max": 249}}},
            {"channel": "CC_OTHER", "when": {"cc": True}},
        ]
    },
    "signal": {"channels": ["CCQE"], "flavors": ["numu"]},
}

# (unit, E_ν, muon (px, pz), process id, CV weight): one event in GeV, the others in MeV
HEPMC3_EVENTS = [
    ("MEV", 1000.0, (400.0, 300.0), 200, 1.0),
    ("GEV", 2.0, (0.6, 0.8), 400, 2.0),
    ("MEV", 600.0, (0.0, 250.0), 200, 1.0),
]


def write_nuhepmc(path: Path) -> Path:
    pyhepmc = pytest.importorskip("pyhepmc")
    run = pyhepmc.GenRunInfo()
    run.tools = [pyhepmc.GenRunInfo.ToolInfo("NEUT", "5.8.0", "test events")]
    run.weight_names = ["CV"]
    run.attributes["NuHepMC.FluxAveragedTotalCrossSection"] = 4.0  # pb per nucleus
    run.attributes["NuHepMC.Units.CrossSection.Unit"] = "pb"
    with pyhepmc.open(path, "w") as writer:
        for number, (unit, enu, (px, pz), process, weight) in enumerate(HEPMC3_EVENTS, 1):
            to_unit = 1.0 if unit == "MEV" else 1e-3
            mass = MASS_MUON_MEV * to_unit
            event = pyhepmc.GenEvent(getattr(pyhepmc.Units, unit), pyhepmc.Units.CM)
            event.run_info = run
            event.event_number = number
            event.weights = [weight]
            event.attributes["signal_process_id"] = process
            vertex = pyhepmc.GenVertex()
            vertex.status = 1
            vertex.add_particle_in(pyhepmc.GenParticle((0.0, 0.0, enu, enu), 14, 4))
            target_mass = 37.2155 * (1.0 if unit == "GEV" else 1e3)  # ⁴⁰Ar nucleus
            vertex.add_particle_in(
                pyhepmc.GenParticle((0.0, 0.0, 0.0, target_mass), 1000180400, 20)
            )
            e_mu = float(np.sqrt(px**2 + pz**2 + mass**2))
            vertex.add_particle_out(pyhepmc.GenParticle((px, 0.0, pz, e_mu), 13, 1))
            event.add_vertex(vertex)
            writer.write(event)
    return path


def test_nuhepmc_events_are_read_in_mev_whatever_unit_each_declares(tmp_path: Path) -> None:
    path = write_nuhepmc(tmp_path / "neut.hepmc3")
    cols = read_all(ingested(tmp_path, [path], HEPMC3_MAPPING))
    np.testing.assert_allclose(cols["enu_true"], [1000.0, 2000.0, 600.0], rtol=1e-12)
    np.testing.assert_allclose(cols["plep_mev"], [500.0, 1000.0, 250.0], rtol=1e-12)
    np.testing.assert_allclose(cols["coslep"], [0.6, 0.8, 1.0], rtol=1e-6)
    assert cols["target_a"].tolist() == [40, 40, 40]
    assert cols["channel"].tolist() == [Channel.CCQE, Channel.CC_OTHER, Channel.CCQE]


def test_nuhepmc_q2_follows_the_two_body_formula(tmp_path: Path) -> None:
    path = write_nuhepmc(tmp_path / "neut.hepmc3")
    q2 = read_all(ingested(tmp_path, [path], HEPMC3_MAPPING))["q2_mev2"]
    # Q² = 2 E_ν (E_μ − p_μ cos θ) − m_μ² for a neutrino along z (e.g. Formaggio & Zeller 2012)
    enu = np.array([1000.0, 2000.0, 600.0])
    p = np.array([500.0, 1000.0, 250.0])
    cos = np.array([0.6, 0.8, 1.0])
    e_mu = np.sqrt(p**2 + MASS_MUON_MEV**2)
    np.testing.assert_allclose(q2, 2 * enu * (e_mu - p * cos) - MASS_MUON_MEV**2, rtol=1e-9)


def test_nuhepmc_flux_averaged_cross_section_and_cv_weights_normalise(tmp_path: Path) -> None:
    path = write_nuhepmc(tmp_path / "neut.hepmc3")
    store = ingested(tmp_path, [path], HEPMC3_MAPPING)
    w = read_all(store)["w_nominal"]
    # 4 pb = 4e-36 cm²: N = 4e-36 · 1e12 · 1e25 = 40, shared by CV weights 1 : 2 : 1
    np.testing.assert_allclose(w, [10.0, 20.0, 10.0], rtol=1e-12)
    assert store.attrs["generator"] == {"name": "NEUT", "version": "5.8.0", "format": "hepmc3"}
    assert store.attrs["ingest"]["normalization"]["flux_averaged_xsec_cm2"] == 4.0e-36


def test_a_unit_contradicting_what_hepmc3_declares_is_refused(tmp_path: Path) -> None:
    path = write_nuhepmc(tmp_path / "neut.hepmc3")
    data = copy.deepcopy(HEPMC3_MAPPING)
    data["columns"]["enu_true"] = {"branch": "Ev", "unit": "GeV"}
    with pytest.raises(ConfigError, match=r"\[columns.enu_true\] unit = 'GeV'.*remove `unit`"):
        ingested(tmp_path, [path], data)


def test_a_missing_hepmc3_field_names_the_fields_the_reader_gives(tmp_path: Path) -> None:
    path = write_nuhepmc(tmp_path / "neut.hepmc3")
    data = copy.deepcopy(HEPMC3_MAPPING)
    data["columns"]["elep_mev"] = {"branch": "Elep"}
    with pytest.raises(IngestError, match=r"no field\(s\) 'Elep'.*The file has: iev, neu"):
        ingested(tmp_path, [path], data)
