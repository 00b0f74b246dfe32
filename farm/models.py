"""Ready-made cross-section models to plug into ``[[models]]`` or ``farm compare``.

A model is ``model(enu_mev, flavor) -> σ`` in cm² per target, where the target is what the
sample counts (a nucleus of the detector material, averaged over its composition, for CEvNS; a
free proton for IBD; an argon nucleus for nuSCOPE charged current).
"""

from __future__ import annotations

import numpy as np

from farm.physics import ccqe, ibd, nuclei
from farm.physics import cevns as cevns_physics

__all__ = [
    "cevns_ar_corrected_helm",
    "cevns_csi_corrected_klein",
    "cevns_csi_tree_helm",
    "cevns_material",
    "ibd_strumia_vissani",
    "numu_cc_argon",
    "ratio_csi_tree_to_corrected",
]


def cevns_material(material: str, **keywords: object):
    """CEvNS per nucleus averaged over the material's composition, with farm.physics.cevns keywords."""
    per_kg = nuclei.targets_per_kg(material)
    total = sum(per_kg.values())

    def model(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
        del flavor  # CEvNS is flavour blind at tree level
        return sum(
            count / total * cevns_physics.total_xsec(enu_mev, name, **keywords)
            for name, count in per_kg.items()
        )

    return model


cevns_csi_tree_helm = cevns_material("CsI", couplings="tree", sin2w=0.23857, form_factor="helm")
cevns_csi_corrected_klein = cevns_material("CsI", couplings="corrected", form_factor="klein")
cevns_ar_corrected_helm = cevns_material("Ar", couplings="corrected", form_factor="helm")


def ibd_strumia_vissani(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
    del flavor
    return ibd.total_xsec(enu_mev)


def numu_cc_argon(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
    """ν CC per argon nucleus: 22 free-neutron CCQE plus 40 × the non-QE per-nucleon parametrisation."""
    del flavor
    return 22.0 * ccqe.total_xsec(enu_mev) + 40.0 * ccqe.noqe_xsec_per_nucleon(enu_mev)


_CSI_CORRECTED_HELM = cevns_material("CsI", couplings="corrected", form_factor="helm")


def ratio_csi_tree_to_corrected(enu_mev: np.ndarray, flavor: str) -> np.ndarray:
    """A fake-data recipe (``[data] model``): per-event weight turning the generator's CsI CEvNS
    (corrected couplings, Helm) into tree-level couplings, a ≈ 5% lower cross section."""
    return cevns_csi_tree_helm(enu_mev, flavor) / _CSI_CORRECTED_HELM(enu_mev, flavor)


# --- models with named parameters (farm fit; docs/fit.md) --------------------------------------

_RADIUS_RANGE_FM = (2.0, 8.0)


def cevns(
    enu_mev: np.ndarray,
    flavor: str,
    *,
    material: str = "CsI",
    sin2w: float = 0.23857,
    rn: float | None = None,
    rn_cs: float | None = None,
    rn_i: float | None = None,
    rn_na: float | None = None,
    rn_ar: float | None = None,
    rn_ge: float | None = None,
    couplings: str = "corrected",
    form_factor: str | None = "helm",
) -> np.ndarray:
    """CEvNS per nucleus of ``material`` (averaged over its composition) with named parameters.

    σ(E) = Σ_i w_i σ_i(E; sin²θ_W, R_n,i), w_i the share of nuclide i among the material's nuclei
    and σ_i of :func:`farm.physics.cevns_radii.total_xsec_radii`: neutron and proton form factors
    apart, the proton one at the Helm A^(1/3) radius (docs/physics.md §4).

    Parameters
    ----------
    material : str
        A key of ``farm.physics.nuclei.MATERIALS`` (CsI, NaI, Ar, Ge, ...): the detector's.
    sin2w : float
        Low-Q² sin²θ_W; enters the proton coupling (dQ_W/d sin²θ_W = 4Z in both schemes).
    rn : float, optional
        Neutron rms radius in fm of every nucleus of the material (an average radius, as fitted
        to COHERENT CsI data, arXiv:1710.02730); None keeps each nucleus's Helm A^(1/3) radius.
    rn_cs, rn_i, rn_na, rn_ar, rn_ge : float, optional
        Neutron rms radius in fm of every isotope of that element, taking precedence over ``rn``.
    couplings : {"corrected", "tree"}
    form_factor : {"helm", "klein", None}

    The ranges ``farm fit`` scans when none is given are in ``cevns.fit_ranges``.
    """
    del flavor  # flavour blind at tree level
    from farm.physics.cevns_radii import total_xsec_radii

    element_radius = {"cs": rn_cs, "i": rn_i, "na": rn_na, "ar": rn_ar, "ge": rn_ge}
    per_kg = nuclei.targets_per_kg(material)
    total = sum(per_kg.values())
    out = np.zeros(np.shape(enu_mev))
    for name, count in per_kg.items():
        element = name.rstrip("0123456789").lower()
        radius = element_radius.get(element)
        out = out + count / total * total_xsec_radii(
            enu_mev,
            name,
            couplings=couplings,  # type: ignore[arg-type]
            sin2w=sin2w,
            form_factor=form_factor,  # type: ignore[arg-type]
            rn_fm=rn if radius is None else radius,
        )
    return out


cevns.fit_ranges = {  # type: ignore[attr-defined]
    "sin2w": (0.1, 0.4),
    **{name: _RADIUS_RANGE_FM for name in ("rn", "rn_cs", "rn_i", "rn_na", "rn_ar", "rn_ge")},
}

__all__ += ["cevns"]
