"""Background normalisations form their own systematic group, ``background`` (issue 10 item 6).

The knobs brn_norm, nin_norm, ssb_norm and accidental_norm scale backgrounds, not the signal
cross section: by default they add into the group "background", which then appears in the result,
the report (its own fixed colour, its own column) and the HEPData release (a ``sys,background``
error and a ``Covariance group background`` column), like every other group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from conftest import run_example
from numpy.testing import assert_array_equal

from farm.config import SystematicSection
from farm.config.analysis import KNOBS
from farm.release import write_hepdata
from farm.release.hepdata import data_file_name
from farm.report import FIGURES, render_page
from farm.report.quantities import breakdown
from farm.report.style import GROUP_COLORS, group_colors, model_colors

BACKGROUND_KNOBS = ("brn_norm", "nin_norm", "ssb_norm", "accidental_norm")
DETECTOR_KNOBS = ("energy_scale", "quenching", "light_yield", "threshold", "efficiency")
CSI_BACKGROUND = ("brn_normalization", "nin_normalization", "steady_state_normalization")
"""The background systematics of examples/sns-csi.toml."""


def _knob(parameter: str, **extra: object) -> SystematicSection:
    return SystematicSection(name="k", kind="knob", parameter=parameter, sigma=0.1, **extra)


@pytest.mark.parametrize("parameter", sorted(KNOBS))
def test_every_knob_has_its_default_group(parameter: str) -> None:
    if parameter in BACKGROUND_KNOBS:
        expected = "background"
    elif parameter in DETECTOR_KNOBS:
        expected = "detector"
    else:
        expected = "xsec"
    extra = {"channels": ["CC_RES"]} if parameter == "channel_norm" else {}  # the channels it normalises
    assert _knob(parameter, **extra).group_name == expected


def test_a_declared_group_still_wins_over_the_default() -> None:
    assert _knob("brn_norm", group="beam").group_name == "beam"
    assert _knob("sin2w", group="background").group_name == "background"


def test_the_background_group_has_its_own_colour_never_a_spare_nor_a_models() -> None:
    groups = ["flux", "xsec", "detector", "background", "mcstat"]
    colors = group_colors([*groups, "beam"])
    assert colors["background"] == GROUP_COLORS["background"]
    assert len(set(colors.values())) == len(groups) + 1  # a custom group gets a spare colour
    defaults = {colors[g] for g in groups}
    assert not defaults & set(model_colors([f"m{k}" for k in range(6)]).values())


@pytest.fixture(scope="module")
def csi(tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    # the store is shared with tests/test_compare.py and tests/test_hepdata.py (same size)
    return run_example(tmp_path_factory, "sns-csi", events=65_536, universes=10)


def test_the_csi_example_has_a_background_group_summing_its_three_normalisations(
    csi: xr.Dataset,
) -> None:
    ds = csi
    assert [str(g) for g in ds["group"].values] == [
        "flux",
        "xsec",
        "detector",
        "background",
        "mcstat",
    ]
    groups = dict(zip(ds["systematic"].values, ds["systematic_group"].values, strict=True))
    assert [s for s, g in groups.items() if g == "background"] == list(CSI_BACKGROUND)
    assert groups["neutron_radius"] == groups["weak_mixing_angle"] == "xsec"
    for convention in ("real", "nominal"):
        per_systematic = ds[f"cov_systematic_{convention}"].sel(systematic=list(CSI_BACKGROUND))
        background = ds[f"cov_group_{convention}"].sel(group="background").values
        np.testing.assert_allclose(
            background, per_systematic.sum("systematic").values, rtol=1e-12, atol=0
        )
        assert background[0, 0] > 0  # the unisim ±1σ move the background, hence the measurement


def test_the_report_shows_a_background_column(csi: xr.Dataset) -> None:
    for convention in ("real", "nominal"):
        b = breakdown(csi, convention)
        assert b.groups == ("flux", "xsec", "detector", "background", "mcstat")
        assert b.group_sigma_cm2[b.groups.index("background")][0] > 0
    page = render_page(csi, dict.fromkeys(FIGURES, "x.png"), result="r.zarr")
    assert '<th class="">background</th>' in page  # a column of the uncertainty table


def test_the_hepdata_release_carries_the_background_error_and_covariance(
    csi: xr.Dataset, tmp_path: Path
) -> None:
    write_hepdata(csi, tmp_path / "release", digits=17, archive=False)  # every digit kept
    for convention in ("real", "nominal"):
        with (tmp_path / "release" / data_file_name(f"cross_section-{convention}")).open() as f:
            table = yaml.safe_load(f)
        measured = next(
            v for v in table["dependent_variables"] if v["header"]["name"] == "cross_section"
        )
        errors = {e["label"]: e["symerror"] for e in measured["values"][0]["errors"]}
        cov = csi[f"cov_group_{convention}"].sel(group="background").values
        assert errors["sys,background"] == np.sqrt(cov[0, 0])
        with (tmp_path / "release" / data_file_name(f"covariance-{convention}")).open() as f:
            table = yaml.safe_load(f)
        column = next(
            v for v in table["dependent_variables"] if v["header"]["name"] == "group background"
        )
        assert_array_equal([v["value"] for v in column["values"]], cov.ravel())
