"""The compiled kernels give the same bits as the numpy versions they replace."""

from __future__ import annotations

import numpy as np
import pytest

from farm.reweight import compiled
from farm.reweight.bootstrap import POISSON_THRESHOLDS, event_hash, poisson_weights

pytestmark = pytest.mark.skipif(not compiled.HAVE_NUMBA, reason="numba is not installed")


def _events(n: int = 200_000, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w0": rng.random(n) * 10.0 ** rng.integers(-3, 3, n),
        "flux_bin": rng.integers(0, 13, n),
        "reco_bin": rng.integers(-1, 7, n),
        "truth_bin": rng.integers(-1, 4, n),
        "is_signal": rng.random(n) < 0.7,
        "selected": rng.random(n) < 0.6,
    }


def test_compiled_flux_fill_equals_the_numpy_bincounts_bit_for_bit() -> None:
    e = _events()
    args = (
        e["w0"],
        e["flux_bin"],
        e["reco_bin"],
        e["truth_bin"],
        e["is_signal"],
        e["selected"],
        13,
        7,
        4,
    )
    compiled_table = compiled.flux_fill(*args)
    numpy_table = compiled._flux_fill_numpy(*args)
    assert compiled_table.shape == numpy_table.shape == (13, 7 * 4 + 7 + 4)
    np.testing.assert_array_equal(compiled_table, numpy_table)
    assert compiled_table.sum() > 0


def test_compiled_bootstrap_uses_the_same_poisson_weights_as_numpy() -> None:
    rng = np.random.default_rng(5)
    n, replicas = 20_000, np.arange(9, dtype=np.uint64)
    ids = np.arange(1000, 1000 + n, dtype=np.uint64)
    w0 = rng.random(n)
    slot = rng.integers(-1, 5, n)
    slot_truth = np.where(rng.random(n) < 0.5, 5 + rng.integers(0, 3, n), -1)
    table = compiled.bootstrap_fill(
        w0, event_hash(ids, 17), replicas, POISSON_THRESHOLDS, slot, slot_truth, 8
    )
    weights = poisson_weights(ids, replicas, 17) * w0
    expected = np.zeros((replicas.size, 8))
    for u in range(replicas.size):
        keep = slot >= 0
        expected[u] += np.bincount(slot[keep], weights=weights[u, keep], minlength=8)
        keep = slot_truth >= 0
        expected[u] += np.bincount(slot_truth[keep], weights=weights[u, keep], minlength=8)
    np.testing.assert_allclose(table, expected, rtol=1e-13)
    assert np.unique(poisson_weights(ids, replicas, 17)).size > 3
