"""Cross sections tabulated once as ln σ against ln(E_ν − E_th), read per event in O(1).

The slow, exact calculations (Strumia–Vissani IBD, Llewellyn-Smith CCQE by quadrature) are
evaluated on a geometric grid of ε = E_ν − E_th and interpolated linearly in (ln ε, ln σ): a
power law between nodes, which is how these cross sections behave near threshold (σ ∝ √ε).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["interpolate_log_table"]


def interpolate_log_table(
    eps_mev: NDArray[np.float64], log_eps0: float, step: float, log_sigma: NDArray[np.float64]
) -> NDArray[np.float64]:
    """σ(ε) from ln σ tabulated at ln ε = ``log_eps0`` + k·``step``; 0 where ε ≤ 0.

    Linear in (ln ε, ln σ) between nodes. Below the first node the clipped index extrapolates the
    first segment, a power law in ε (σ ∝ √ε, as σ ∝ p_l near threshold); beyond the last node it
    extrapolates the last one, so callers evaluate the exact cross section there.
    """
    above = eps_mev > 0.0
    position = (np.log(np.where(above, eps_mev, 1.0)) - log_eps0) / step
    index = np.clip(position.astype(np.intp), 0, log_sigma.size - 2)
    frac = position - index
    value = np.exp(log_sigma[index] + frac * (log_sigma[index + 1] - log_sigma[index]))
    return np.where(above, value, 0.0)
