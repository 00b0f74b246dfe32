"""The model with named parameters ``farm.models:cevns`` and how ``farm fit`` reads parameters.

Physics of the neutron/proton split: docs/physics.md §4 and farm/physics/cevns_radii.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from farm import models
from farm.fit.params import BoundModel, Parameter, keyword_defaults, parse_fixed, parse_parameter
from farm.physics import cevns
from farm.physics.cevns_radii import nucleon_charges, total_xsec_radii
from farm.physics.nuclei import get_target

ENU = np.linspace(0.0, 55.0, 221)


@pytest.mark.parametrize("couplings", ["corrected", "tree"])
@pytest.mark.parametrize("form_factor", ["helm", "klein", None])
def test_at_the_default_radii_the_split_form_factors_give_the_farm_cross_section(
    couplings: str, form_factor: str | None
) -> None:
    for target in ("Cs133", "I127", "Ar40"):
        expected = cevns.total_xsec(ENU, target, couplings=couplings, form_factor=form_factor)  # type: ignore[arg-type]
        got = total_xsec_radii(ENU, target, couplings=couplings, form_factor=form_factor)  # type: ignore[arg-type]
        assert_allclose(got, expected, rtol=1e-13, atol=0)


def test_the_csi_model_reproduces_the_ready_made_models() -> None:
    corrected = models.cevns_material("CsI", couplings="corrected", form_factor="helm")
    assert_allclose(models.cevns(ENU, "nue"), corrected(ENU, "nue"), rtol=1e-13, atol=0)
    tree = models.cevns(ENU, "numu", couplings="tree", sin2w=0.23857)
    assert_allclose(tree, models.cevns_csi_tree_helm(ENU, "numu"), rtol=1e-13, atol=0)
    argon = models.cevns(ENU, "nue", material="Ar")
    assert_allclose(argon, models.cevns_ar_corrected_helm(ENU, "nue"), rtol=1e-13, atol=0)


def test_nucleon_charges_add_up_to_the_weak_charge() -> None:
    for couplings in ("corrected", "tree"):
        for sin2w in (0.2, 0.23857, 0.3):
            qn, qp = nucleon_charges("Cs133", couplings, sin2w)  # type: ignore[arg-type]
            assert qn + qp == pytest.approx(cevns.weak_charge("Cs133", couplings, sin2w), abs=1e-12)  # type: ignore[arg-type]


def test_sin2w_moves_the_weak_charge_by_4z_without_a_form_factor() -> None:
    """σ ∝ Q_W² and dQ_W/d sin²θ_W = 4Z (docs/physics.md §4): with F = 1 the ratio is exact."""
    cs = get_target("Cs133")
    qw = cevns.weak_charge("Cs133", "corrected", 0.23857)
    ratio = total_xsec_radii(30.0, "Cs133", sin2w=0.25, form_factor=None) / total_xsec_radii(
        30.0, "Cs133", form_factor=None
    )
    assert ratio == pytest.approx(((qw + 4 * cs.z * (0.25 - 0.23857)) / qw) ** 2, abs=1e-13)


def test_a_larger_neutron_radius_suppresses_more_and_the_proton_radius_barely_matters() -> None:
    r_default = float(cevns.helm_rms_radius_fm(133))
    base = total_xsec_radii(50.0, "Cs133")
    bigger = total_xsec_radii(50.0, "Cs133", rn_fm=r_default + 0.5)
    proton = total_xsec_radii(50.0, "Cs133", rp_fm=r_default + 0.5)
    assert bigger < 0.97 * base
    # the proton coupling is ≈ 3 % of the neutrons' (Z g_V^p against N g_V^n)
    assert abs(proton / base - 1) < 0.1 * abs(bigger / base - 1)
    # without a form factor the radii do not enter
    flat = total_xsec_radii(50.0, "Cs133", form_factor=None, rn_fm=6.0, rp_fm=3.0)
    assert flat == total_xsec_radii(50.0, "Cs133", form_factor=None)


def test_an_element_radius_takes_precedence_over_the_common_one() -> None:
    both = models.cevns(ENU, "nue", rn=5.2)
    split = models.cevns(ENU, "nue", rn_cs=5.2, rn_i=5.2)
    assert_allclose(both, split, rtol=0, atol=0)
    only_cs = models.cevns(ENU, "nue", rn=5.2, rn_cs=4.0)
    assert not np.array_equal(only_cs, both)
    with pytest.raises(ValueError, match="rms_radius_fm must exceed"):
        models.cevns(ENU, "nue", rn=1.0)


def test_parameters_are_read_from_the_model_signature_and_its_ranges() -> None:
    assert set(keyword_defaults(models.cevns)) >= {"sin2w", "rn", "rn_cs", "material"}
    p = parse_parameter("sin2w", models.cevns)
    assert p == Parameter(name="sin2w", start=0.23857, lower=0.1, upper=0.4)
    assert parse_parameter("sin2w=0.2", models.cevns).start == 0.2
    assert parse_parameter("rn_cs=4.0:6.0", models.cevns) == Parameter(
        name="rn_cs", start=5.0, lower=4.0, upper=6.0
    )
    assert parse_parameter("rn=4.5:3:7", models.cevns).start == 4.5
    with pytest.raises(ValueError, match="no keyword parameter 'gv'"):
        parse_parameter("gv", models.cevns)
    with pytest.raises(ValueError, match="outside its range"):
        parse_parameter("sin2w=0.5", models.cevns)
    with pytest.raises(ValueError, match="is not a number"):
        parse_parameter("sin2w=low:0.3", models.cevns)

    def plain(enu_mev: np.ndarray, flavor: str, *, norm: float = 1.0) -> np.ndarray:
        return norm * np.ones_like(enu_mev)

    with pytest.raises(ValueError, match="declares no range for norm"):
        parse_parameter("norm", plain)
    assert parse_parameter("norm=0.5:2", plain).start == 1.0


def test_fixed_keywords_are_numbers_where_they_read_as_numbers() -> None:
    fixed = parse_fixed(["material=Ar", "sin2w=0.23", "form_factor=none"], models.cevns)
    assert fixed == {"material": "Ar", "sin2w": 0.23, "form_factor": None}
    with pytest.raises(ValueError, match="no keyword 'mass'"):
        parse_fixed(["mass=3"], models.cevns)
    bound = BoundModel(models.cevns, {"material": "Ar"})
    assert_allclose(
        bound(ENU, "nue"), models.cevns_ar_corrected_helm(ENU, "nue"), rtol=1e-13, atol=0
    )
