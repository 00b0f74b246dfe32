"""``--model module:callable`` finds a module in the current folder, as ``python -m`` does, without
``PYTHONPATH=.`` (issue 15 item 6), and never lets the folder shadow an installed module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import run_example

import farm
from farm.analysis.predict import load_model


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A fresh current folder; sys.path and sys.modules restored afterwards."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith(("cwd_model_", "cwd_pkg_", "cwd_helper_"))]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def nuscope(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    return run_example(tmp_path_factory, "nuscope-lar", events=40_000, universes=10)


def test_a_model_in_the_current_folder_is_found(isolated: Path) -> None:
    (isolated / "cwd_model_a.py").write_text(
        "import numpy as np\n\ndef sigma(enu_mev, flavor):\n    return 1e-40 * np.asarray(enu_mev)\n"
    )
    model = load_model("cwd_model_a:sigma")
    np.testing.assert_array_equal(model(np.array([2.0]), "numu"), [2e-40])


def test_a_package_in_the_current_folder_and_its_neighbours_are_found(isolated: Path) -> None:
    package = isolated / "cwd_pkg_b"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (isolated / "cwd_helper_b.py").write_text("SCALE = 3e-40\n")
    (package / "models.py").write_text(
        "import cwd_helper_b\n\ndef sigma(enu_mev, flavor):\n    return cwd_helper_b.SCALE + 0 * enu_mev\n"
    )
    assert load_model("cwd_pkg_b.models:sigma")(np.ones(1), "nue")[0] == 3e-40


def test_a_missing_module_still_names_itself_and_the_places_searched(isolated: Path) -> None:
    with pytest.raises(ValueError, match=r"cwd_absent_c.*current folder"):
        load_model("cwd_absent_c:sigma")


def test_the_current_folder_never_shadows_an_installed_module(isolated: Path) -> None:
    (isolated / "json.py").write_text("def dumps(*a, **k):\n    return 'shadow'\n")
    assert load_model("json:dumps")({}) == "{}"


def test_compare_takes_a_model_from_the_current_folder(isolated: Path, nuscope: xr.Dataset) -> None:
    ds = nuscope
    (isolated / "cwd_model_d.py").write_text(
        "from farm.models import numu_cc_argon\n\ndef sigma(enu_mev, flavor):\n"
        "    return numu_cc_argon(enu_mev, flavor)\n"
    )
    here = farm.compare(ds, "cwd_model_d:sigma")
    installed = farm.compare(ds, "farm.models:numu_cc_argon")
    assert here.real.joint.chi2 == installed.real.joint.chi2
