"""Physical constants in the farm's unit system: MeV, cm, s.

Values from the Review of Particle Physics (PDG 2024) unless noted.
"""

from __future__ import annotations

__all__ = [
    "ALPHA_EM",
    "AMU_MEV",
    "DELTA_NP_MEV",
    "FERMI_CONSTANT_MEV2",
    "GA_NUCLEON",
    "GEV_MEV",
    "GV_NEUTRON",
    "GV_PROTON",
    "HBARC2_MEV2_CM2",
    "HBARC_MEV_CM",
    "HBARC_MEV_FM",
    "MASS_ELECTRON_MEV",
    "MASS_KAON_MEV",
    "MASS_MUON_MEV",
    "MASS_NEUTRON_MEV",
    "MASS_PION_MEV",
    "MASS_PROTON_MEV",
    "MUON_LIFETIME_S",
    "PION_LIFETIME_S",
    "SIN2W_LOW_Q2",
    "SPEED_OF_LIGHT_CM_S",
    "V_UD",
]

FERMI_CONSTANT_MEV2 = 1.1663788e-11
"""G_F / (ħc)^3 in MeV^-2."""

HBARC_MEV_FM = 197.3269804
HBARC_MEV_CM = 197.3269804e-13
HBARC2_MEV2_CM2 = HBARC_MEV_CM**2
"""(ħc)^2 in MeV^2 cm^2: multiply a cross section in MeV^-2 by this to get cm^2."""

ALPHA_EM = 1.0 / 137.035999084
SPEED_OF_LIGHT_CM_S = 2.99792458e10
GEV_MEV = 1000.0

MASS_ELECTRON_MEV = 0.51099895
MASS_MUON_MEV = 105.6583755
MASS_PION_MEV = 139.57039
MASS_KAON_MEV = 493.677
MASS_PROTON_MEV = 938.27208816
MASS_NEUTRON_MEV = 939.56542052
DELTA_NP_MEV = MASS_NEUTRON_MEV - MASS_PROTON_MEV
AMU_MEV = 931.49410242

MUON_LIFETIME_S = 2.1969811e-6
PION_LIFETIME_S = 2.6033e-8

SIN2W_LOW_Q2 = 0.23857
"""Weak mixing angle at low momentum transfer (MS-bar, Q^2 -> 0; PDG)."""

GV_PROTON = 0.0227
GV_NEUTRON = -0.5117
"""Radiatively corrected vector couplings of proton and neutron to the Z (Erler & Su; PDG)."""

GA_NUCLEON = -1.267
"""Axial coupling g_A in the sign convention of Llewellyn-Smith used by farm.physics.ccqe."""

V_UD = 0.97373
