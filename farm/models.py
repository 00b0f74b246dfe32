"""Ready-made cross-section models to plug into ``[[models]]`` or ``farm compare``.

A model is ``model(enu_mev, flavor) -> σ`` in cm² per target, where the target is what the
sample counts (a nucleus of the detector material, averaged over its composition, for CEvNS; a
free proton for IBD; an argon nucleus for nuSCOPE charged current).
"""

from __future__ import annotations

import numpy as np

from farm.physics import ccqe, cevns, ibd, nuclei

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
            count / total * cevns.total_xsec(enu_mev, name, **keywords)
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
