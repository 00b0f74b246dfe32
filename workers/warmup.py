"""Load every numba kernel on tiny inputs, before the first work item needs it.

With numba's disk cache (:data:`farm.reweight.compiled.CACHE`) this loads machine code compiled
by an earlier process; only the first process after an install or an upgrade compiles. It imports
nothing of dask, so the driver of an in-process run and the cost model's probe
(:mod:`farm.costmodel`) use it as a dask worker does (:class:`workers.setup.FarmWorkerSetup`).
"""

from __future__ import annotations

__all__ = ["warm_up_kernels"]


def warm_up_kernels() -> None:
    """Compile (or load from the disk cache) the numba kernels now, on tiny inputs, rather than
    inside the first work item."""
    import numpy as np

    from farm.reweight import compiled, helm, slots

    if not compiled.HAVE_NUMBA:
        return
    one = np.ones(1)
    index = np.zeros(1, dtype=np.int64)
    flag = np.ones(1, dtype=bool)
    compiled.flux_fill(one, index, index, index, flag, flag, 1, 1, 1)
    ids = np.zeros(1, dtype=np.uint64)
    compiled.bootstrap_fill(one, ids, 0, ids, index, index, flag, flag, 1, 1)
    helm.helm_ratio_table(one, index, one, one.reshape(1, 1))
    lut = np.ones(1, dtype=np.int64)  # the neutron radius in one pass, the store's dtypes
    helm.helm_expansion_fill(
        (one, np.zeros(1, dtype=np.int8), np.zeros(1, dtype=np.int16)),
        *(one, index, index, 1),
        (0, lut, one, one, one.reshape(1, 1)),
        flag,
        np.ones((0, 1)),
        1.0,
    )
    compiled.slot_fill(one.reshape(1, 1), one, index, index, 1)
    slots.block_slots(index, index, flag, flag, 1, 1, truth=True)
    slots.classes(index)
    slots.class_slot_fill(index, 1, index, index, one, 1)
    slots.add_class_products(np.zeros((1, 1)), np.ones((1, 1)), np.ones((1, 1, 1)))
    compiled.interpolation_error(np.ones((2, 1)), 1, np.ones((1, 1)), flag)
    compiled.ordered_matmul(np.ones((1, 1)), np.ones((1, 1)))
    # not the weight-set kernels (four signatures) nor the axial mass's (farm.reweight.
    # ccqe_ratio): only samples with precomputed weights, or with CCQE events, use them, and
    # they load (or, once per machine, compile) in the first item that does
    from farm.reweight.binning import warm_up

    warm_up()  # a block's bins (farm.reweight.binning)
