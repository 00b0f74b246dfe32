"""The compiled kernels give the same bits as the numpy versions they replace."""

from __future__ import annotations

import numpy as np
import pytest

from farm.reweight import compiled, helm, slots
from farm.reweight.bootstrap import poisson_weights

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
    from farm.reweight.fastpaths import BlockLayout

    rng = np.random.default_rng(5)
    n, n_reco, n_truth = 20_000, 3, 2
    # 67 replicas (not a multiple of the vector width), numbered as a chunk's are: 1.3 M draws,
    # the tail k ≥ 8 among them
    replicas = np.uint64(7 << 40) + np.arange(67, dtype=np.uint64)
    ids = np.arange(1000, 1000 + n, dtype=np.uint64)
    w0 = rng.random(n) * 10.0 ** rng.integers(-3, 3, n)
    reco_bin = rng.integers(-1, n_reco, n)
    truth_bin = rng.integers(0, n_truth, n)
    signal = rng.random(n) < 0.6
    selected = rng.random(n) < 0.7
    table = compiled.bootstrap_fill(
        w0, ids, 17, replicas, reco_bin, truth_bin, signal, selected, n_reco, n_truth
    )
    poisson = poisson_weights(ids, replicas, 17)
    layout = BlockLayout.build(reco_bin, truth_bin, signal, selected, n_reco, n_truth)
    slot, slot_truth = layout.slots(n)
    both = (slot >= 0) & (slot_truth >= 0)
    # the kernel redoes the replicas of an event with a draw past the fifth threshold: events
    # that fill one row and events that fill two both do
    assert (poisson[:, both] >= 6).any() and (poisson[:, ~both] >= 6).any()
    assert (poisson >= 8).any()
    weights = poisson * w0
    n_slots = layout.n_slots
    expected = np.zeros((replicas.size, n_slots))
    for u in range(replicas.size):
        keep = slot >= 0
        expected[u] += np.bincount(slot[keep], weights=weights[u, keep], minlength=n_slots)
        keep = slot_truth >= 0
        expected[u] += np.bincount(slot_truth[keep], weights=weights[u, keep], minlength=n_slots)
    np.testing.assert_array_equal(table, expected)  # each bin summed in event order, both ways
    assert table.shape == (replicas.size, n_slots) and (table > 0).all()


def test_compiled_helm_ratio_equals_numpy_and_the_physics_form_factor() -> None:
    from farm.physics import cevns, nuclei
    from farm.physics.constants import HBARC_MEV_FM

    rng = np.random.default_rng(11)
    n = 50_000
    names = ("Cs133", "I127")
    a = np.array([nuclei.get_target(t).a for t in names])
    group = rng.integers(0, 3, n)  # 0: not a CEvNS event (q = 0)
    recoil = rng.uniform(0.0, 0.06, n)  # MeV; the far tail reaches q·R₀ > 4
    mass = np.array([1.0] + [nuclei.get_target(t).mass_mev for t in names])
    q_mev = np.where(group > 0, cevns.momentum_transfer_mev(recoil, mass[group]), 0.0)
    shifts = np.linspace(-0.1, 0.1, 7)
    nominal = np.concatenate([[1.0], cevns.helm_r0_fm(a)])
    radii = np.stack(
        [np.ones(shifts.size)]
        + [cevns.helm_r0_fm(ai, cevns.helm_rms_radius_fm(ai) * (1.0 + shifts)) for ai in a]
    )
    q_fm = q_mev / HBARC_MEV_FM
    table = helm.helm_ratio_table(q_fm, group, nominal, radii)
    assert (q_fm * radii[group].max(axis=1) > helm.HELM_SERIES_MAX_X).any()  # far events too
    near = q_fm * radii[group].max(axis=1) <= helm.HELM_SERIES_MAX_X
    numpy_table = helm._helm_ratio_numpy(q_fm, group, nominal, radii)
    np.testing.assert_array_equal(table[:, near], numpy_table[:, near])
    np.testing.assert_allclose(table, numpy_table, rtol=1e-12)
    assert (table[:, group == 0] == 1.0).all()
    for k, shift in enumerate(shifts):
        for g, ai in enumerate(a, start=1):
            sel = group == g
            physics = cevns.helm_radius_weight(
                q_mev[sel], ai, cevns.helm_rms_radius_fm(ai) * (1.0 + shift)
            )
            np.testing.assert_allclose(table[k, sel], physics, rtol=1e-9)


@pytest.mark.parametrize(("scale", "tolerance"), [(1.0, 1e-9), (1.04, 1e-9), (1.0, 0.0)])
def test_the_fused_radius_pass_equals_the_table_then_the_check_then_the_fill(
    scale: float, tolerance: float
) -> None:
    """helm_expansion_fill against knob_weight → interpolation_error → slot_fill, bit for bit, on
    events that take every branch: other channels and a nucleus not in the sample (ratio 1,
    group 0), q = 0, the closed form beyond q·R₀ = 4, a shift of zero, events with only a reco
    or only a truth slot, inactive events, and a range wide enough that some events miss the
    check (tolerance 0: even a row of ones may miss it)."""
    from farm.physics import nuclei
    from farm.reweight.fastpaths import chebyshev_interpolation_matrix, chebyshev_nodes
    from farm.reweight.knobs import KnobContext, knob_weight, radius_expansion
    from farm.store.schema import Channel

    rng = np.random.default_rng(14)
    n = 40_000
    ctx = KnobContext(
        observable="reco_pe",
        nuclei_by_a={nuclei.get_target(t).a: t for t in ("Cs133", "I127")},
        neutron_radius_scale=scale,
    )
    cevns = rng.random(n) < 0.8
    cols = {
        "channel": np.where(cevns, int(Channel.CEVNS), int(Channel.BRN)).astype(np.int8),
        "target_a": rng.choice(np.array([133, 127, 40], dtype=np.int16), n, p=[0.45, 0.45, 0.1]),
        "recoil_mev": rng.uniform(0.0, 0.06, n),  # the tail reaches q·R₀ > 4
    }
    cols["recoil_mev"][rng.random(n) < 0.02] = 0.0
    w0 = rng.random(n) * 10.0 ** rng.integers(-3, 3, n)
    slot = np.where(rng.random(n) < 0.6, rng.integers(0, 7, n), -1)
    slot_truth = np.where(rng.random(n) < 0.5, 7 + rng.integers(0, 3, n), -1)
    lo, hi, k = -0.6, 0.6, 12
    checks = np.array([lo, hi, 0.0])
    points = np.concatenate([chebyshev_nodes(lo, hi, k), checks])
    lagrange = chebyshev_interpolation_matrix(checks, lo, hi, k)

    fused = radius_expansion(points, cols, ctx, (w0, slot, slot_truth, 10), lagrange, tolerance)
    assert fused is not None
    filled, rest = fused

    table = knob_weight("cevns_rms_radius", points, cols, ctx)
    active = (slot >= 0) | (slot_truth >= 0)
    good = compiled.interpolation_error(table, k, lagrange, active) <= tolerance
    expected = compiled.slot_fill(
        table[:k], w0, np.where(good, slot, -1), np.where(good, slot_truth, -1), 10
    )
    assert filled.shape == expected.shape == (k, 10)
    assert filled.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(rest, np.flatnonzero(active & ~good))
    # every branch was taken
    group0 = active & ((cols["channel"] != Channel.CEVNS) | (cols["target_a"] == 40))
    assert group0.any() and (table[:, group0] == 1.0).all()
    assert (table[-1] == 1.0).all()  # the shift of zero
    missed = np.isin(np.flatnonzero(group0), rest)
    if tolerance > 0:  # some events miss, not the rows of ones
        assert 0 < rest.size < active.sum() and not missed.any()
    else:  # the interpolant of a row of ones is 1 only to rounding: every event misses
        assert rest.size == active.sum() and missed.all()
    r0_top = 1.2 * 5.6  # fm: R₀ of Cs at R (1 + 0.6), generous
    q_fm = np.sqrt(2 * 124_000 * cols["recoil_mev"]) / 197.3
    assert (active & ~group0 & (q_fm * r0_top > helm.HELM_SERIES_MAX_X)).any()
    assert ((slot >= 0) & (slot_truth < 0)).any() and ((slot < 0) & (slot_truth >= 0)).any()


def test_compiled_block_slots_equal_the_layouts_scatter() -> None:
    """A block's slots in one compiled pass: the numpy scatter's integers, truth slots or not."""
    rng = np.random.default_rng(15)
    n, n_reco, n_truth = 50_000, 7, 3
    reco = rng.integers(-1, n_reco, n)
    truth = rng.integers(0, n_truth, n)
    signal = rng.random(n) < 0.6
    selected = rng.random(n) < 0.5
    for with_truth in (True, False):
        got = slots.block_slots(reco, truth, signal, selected, n_reco, n_truth, truth=with_truth)
        want = slots._block_slots_numpy(
            reco, truth, signal, selected, n_reco, n_truth, with_truth
        )
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype == np.int64
            np.testing.assert_array_equal(a, b)
    slot, slot_truth = got[0], slots.block_slots(
        reco, truth, signal, selected, n_reco, n_truth, truth=True
    )[1]
    n_sig = n_reco * n_truth
    sig = selected & (reco >= 0) & signal
    bkg = selected & (reco >= 0) & ~signal
    np.testing.assert_array_equal(slot[sig], reco[sig] * n_truth + truth[sig])
    np.testing.assert_array_equal(slot[bkg], n_sig + reco[bkg])
    assert (slot[~(sig | bkg)] == -1).all() and (got[1] == -1).all()
    np.testing.assert_array_equal(slot_truth[signal], n_sig + n_reco + truth[signal])
    assert (slot_truth[~signal] == -1).all()


@pytest.mark.parametrize("n_classes", [0, 1, 5, slots.CLASS_LIMIT, slots.CLASS_LIMIT + 1])
def test_compiled_classes_are_numpy_uniques_index_and_inverse(n_classes: int) -> None:
    """One pass instead of a sort: the classes in increasing key order, each one's first event,
    each event's class; past CLASS_LIMIT classes np.unique itself."""
    rng = np.random.default_rng(16)
    n = 20_000 if n_classes else 0
    keys = rng.choice(2**40, max(n_classes, 1), replace=False) - 2**39  # negative keys too
    key = keys[rng.integers(0, max(n_classes, 1), n)]
    if n:
        key[:100] = key[0]  # a run of one class
    first, category = slots.classes(key)
    _, want_first, want_category = np.unique(key, return_index=True, return_inverse=True)
    np.testing.assert_array_equal(first, want_first)
    np.testing.assert_array_equal(category, want_category.ravel())
    assert first.size == len(set(key.tolist()))


def test_compiled_class_fill_equals_the_two_bincounts() -> None:
    rng = np.random.default_rng(17)
    n, n_cat, n_slots = 60_000, 4, 11
    category = rng.integers(-1, n_cat, n)
    slot = np.where(rng.random(n) < 0.7, rng.integers(0, 8, n), -1)
    slot_truth = np.where(rng.random(n) < 0.5, 8 + rng.integers(0, 3, n), -1)
    w0 = rng.random(n) * 10.0 ** rng.integers(-3, 3, n)
    table = slots.class_slot_fill(category, n_cat, slot, slot_truth, w0, n_slots)
    want = slots._class_slot_fill_numpy(category, n_cat, slot, slot_truth, w0, n_slots)
    assert table.shape == (n_cat + 1, n_slots)
    assert table.tobytes() == want.tobytes()
    unit = category < 0  # the unit class is the last row
    keep = unit & (slot >= 0)
    np.testing.assert_allclose(
        table[-1, :8], np.bincount(slot[keep], weights=w0[keep], minlength=8), rtol=1e-13, atol=0
    )


def test_compiled_class_products_add_the_classes_in_order_as_numpy_does() -> None:
    rng = np.random.default_rng(18)
    n_u, n_c, n_s = 37, 23, 19
    start = rng.random((n_u, n_s)) * 10.0 ** rng.integers(-3, 3, (n_u, n_s))
    factors = rng.random((n_u, n_c)) * 10.0 ** rng.integers(-3, 3, (n_u, n_c))
    per_class = rng.standard_normal((n_u, n_c, n_s)) * 10.0 ** rng.integers(-3, 3, (n_u, n_c, n_s))
    got, want = start.copy(), start.copy()
    slots.add_class_products(got, factors, per_class)
    slots._add_class_products_numpy(want, factors, per_class)
    assert got.tobytes() == want.tobytes()
    np.testing.assert_allclose(
        got, start + np.einsum("uc,ucs->us", factors, per_class), rtol=1e-12, atol=1e-12
    )
    with pytest.raises(ValueError, match="C-contiguous float64"):
        slots.add_class_products(start.T, factors, per_class)


def test_compiled_ccqe_ratios_are_the_llewellyn_smith_formulas_bits() -> None:
    """The axial-mass weights with each event's kinematics computed once: every ratio is
    dxsec_dq2(M_A')/dxsec_dq2(M_A) bit for bit, inside and outside the kinematic range, below
    threshold, at Q² = 0, for any M_A' (Llewellyn Smith, Phys. Rep. 3 (1972) 261)."""
    from farm.physics import ccqe
    from farm.reweight.ccqe_ratio import _ccqe_ratio_numpy, ccqe_ratio_table

    rng = np.random.default_rng(19)
    n = 40_000
    enu = np.concatenate([rng.uniform(0.0, 400.0, n // 4), 10 ** rng.uniform(1.5, 5.0, 3 * n // 4)])
    q2_max = np.nan_to_num(ccqe.q2_range_mev2(enu)[1], nan=1e5)
    q2 = rng.random(n) * q2_max * 1.05  # one in twenty beyond the range
    q2[:50] = 0.0
    enu[50:60] = 0.0
    ma = 1000.0 + rng.normal(0.0, 150.0, 25)
    ma[4] = 1000.0
    table = ccqe_ratio_table(enu, q2, 1000.0, ma)
    want = _ccqe_ratio_numpy(enu, q2, 1000.0, ma)
    assert table.shape == (25, n)
    np.testing.assert_array_equal(table.view(np.uint64), want.view(np.uint64))  # bit for bit
    inside = ccqe.dxsec_dq2(enu, q2) > 0
    assert 0.6 < inside.mean() < 0.97 and (table[:, ~inside] == 1.0).all()
    assert (table[4] == 1.0).all() and np.ptp(np.delete(table, 4, 0)[:, inside], axis=1).min() > 0
    # F_A falls faster for a smaller M_A: fewer events at high Q²
    high = inside & (q2 > 1e6)
    assert (table[np.argmin(ma), high] < 1.0).all() and (table[np.argmax(ma), high] > 1.0).all()


def test_compiled_slot_fill_equals_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(12)
    n, k = 30_000, 5
    values = rng.random((k, n)) * 10.0 ** rng.integers(-3, 3, (k, n))
    w0 = rng.random(n)
    slot = rng.integers(-1, 6, n)
    slot_truth = np.where(rng.random(n) < 0.5, 6 + rng.integers(0, 3, n), -1)
    table = compiled.slot_fill(values, w0, slot, slot_truth, 9)
    np.testing.assert_array_equal(table, compiled._slot_fill_numpy(values, w0, slot, slot_truth, 9))
    expected = np.zeros((k, 9))
    for j in range(k):
        for targets in (slot, slot_truth):
            keep = targets >= 0
            expected[j] += np.bincount(targets[keep], weights=(w0 * values[j])[keep], minlength=9)
    np.testing.assert_allclose(table, expected, rtol=1e-13)


def test_compiled_interpolation_error_and_ordered_matmul_equal_numpy() -> None:
    rng = np.random.default_rng(13)
    values = rng.random((15, 4000))
    values[12, 7] = np.nan
    lagrange = rng.random((3, 12))
    active = rng.random(4000) < 0.8
    active[7] = True
    err = compiled.interpolation_error(values, 12, lagrange, active)
    np.testing.assert_array_equal(
        err, compiled._interpolation_error_numpy(values, 12, lagrange, active)
    )
    assert err[7] == np.inf and (err[~active] == 0).all() and (err[active] > 0).all()
    a, b = rng.random((40, 60)), rng.random((60, 90))
    product = compiled.ordered_matmul(a, b)
    np.testing.assert_array_equal(product, compiled._ordered_matmul_numpy(a, b))
    np.testing.assert_allclose(product, a @ b, rtol=1e-13)


def test_kernels_are_cached_on_disk_in_a_folder_only_this_user_can_write(tmp_path) -> None:
    """Compiled once per machine (numba's cache, keyed on source and types); a fallback folder
    that someone else could write (its index is a pickle) is never used."""
    from farm.reweight import compiled

    if not compiled.HAVE_NUMBA:
        return
    private = tmp_path / "mine"
    assert compiled._private(private) and oct(private.stat().st_mode & 0o777) == "0o700"
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert not compiled._private(shared)
    link = tmp_path / "link"
    link.symlink_to(private)
    assert not compiled._private(link)  # a symlink planted in /tmp is not our folder
