"""Properties of the reweighting and covariance kernels that hold for any input (hypothesis).

Histograms are linear in the event weights and additive over events; the factorised flux path
equals per-event weighting; the flux tensors conserve the selected-signal weight; covariances over
universes are symmetric and positive semi-definite; bootstrap weights follow the event id.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from farm.analysis.covariance import joint_covariance, universe_covariance
from farm.analysis.covariances import covariances, joint_covariances
from farm.reweight.bootstrap import poisson_weights
from farm.reweight.flux import FluxTensors, apply_flux_universes, flux_tensors
from farm.systematics.universes import UniverseSet

PROPERTY = settings(max_examples=50, deadline=None)

seeds = st.integers(min_value=0, max_value=2**32 - 1)
n_events = st.integers(min_value=0, max_value=3_000)
shapes = st.tuples(st.integers(1, 8), st.integers(1, 6), st.integers(1, 4))  # (flux, reco, truth)


def _events(seed: int, n: int, n_flux: int, n_reco: int, n_truth: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w0": rng.lognormal(0.0, 2.0, n),
        "flux_bin": rng.integers(0, n_flux, n).astype(np.int32),
        "reco_bin": rng.integers(-1, n_reco, n),
        "truth_bin": rng.integers(-1, n_truth, n),
        "is_signal": rng.random(n) < 0.6,
        "selected": rng.random(n) < 0.7,
    }


def _tensors(ev: dict[str, np.ndarray], shape: tuple[int, int, int]) -> FluxTensors:
    n_flux, n_reco, n_truth = shape
    return flux_tensors(**ev, n_flux=n_flux, n_reco=n_reco, n_truth=n_truth)


def _ratio(seed: int, n_universes: int, n_flux: int) -> np.ndarray:
    return np.abs(
        1.0 + 0.3 * np.random.default_rng(seed + 1).standard_normal((n_universes, n_flux))
    )


@PROPERTY
@given(seed=seeds, n=n_events, shape=shapes, factor=st.floats(1e-6, 1e6))
def test_histograms_are_linear_in_the_event_weights(seed, n, shape, factor) -> None:
    ev = _events(seed, n, *shape)
    ratio = _ratio(seed, 5, shape[0])
    base = apply_flux_universes(ratio, _tensors(ev, shape))
    scaled = apply_flux_universes(ratio, _tensors({**ev, "w0": factor * ev["w0"]}, shape))
    for b, s in zip(base, scaled, strict=True):
        assert_allclose(s, factor * b, rtol=1e-12, atol=0.0)


@PROPERTY
@given(seed=seeds, n=n_events, shape=shapes, cut=st.floats(0.0, 1.0))
def test_flux_tensors_add_over_any_split_of_the_events(seed, n, shape, cut) -> None:
    ev = _events(seed, n, *shape)
    k = int(cut * n)
    whole = _tensors(ev, shape)
    parts = _tensors({c: v[:k] for c, v in ev.items()}, shape) + _tensors(
        {c: v[k:] for c, v in ev.items()}, shape
    )
    for name in ("signal", "background", "truth"):
        assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-12, atol=1e-300)


@PROPERTY
@given(seed=seeds, n=n_events, shape=shapes)
def test_flux_tensors_conserve_the_weight_of_what_they_select(seed, n, shape) -> None:
    ev = _events(seed, n, *shape)
    t = _tensors(ev, shape)
    in_reco = ev["selected"] & (ev["reco_bin"] >= 0)
    measured = ev["is_signal"] & (ev["truth_bin"] >= 0)
    w = ev["w0"]
    assert np.isclose(t.signal.sum(), w[in_reco & measured].sum(), rtol=1e-12, atol=0.0)
    assert np.isclose(t.background.sum(), w[in_reco & ~ev["is_signal"]].sum(), rtol=1e-12, atol=0.0)
    assert np.isclose(t.truth.sum(), w[measured].sum(), rtol=1e-12, atol=0.0)
    # the nominal universe (R = 1) is the unweighted sum over flux bins
    sig, bkg, truth = apply_flux_universes(np.ones((1, shape[0])), t)
    assert_allclose(sig[0], t.signal.sum(axis=0), rtol=1e-12, atol=0.0)
    assert_allclose(truth[0], t.truth.sum(axis=0), rtol=1e-12, atol=0.0)
    assert_allclose(bkg[0], t.background.sum(axis=0), rtol=1e-12, atol=0.0)


@PROPERTY
@given(seed=seeds, n=n_events, shape=shapes, n_universes=st.integers(1, 12))
def test_factorised_flux_path_equals_per_event_weights(seed, n, shape, n_universes) -> None:
    n_flux, n_reco, n_truth = shape
    ev = _events(seed, n, *shape)
    ratio = _ratio(seed, n_universes, n_flux)
    sig_f, bkg_f, truth_f = apply_flux_universes(ratio, _tensors(ev, shape))
    in_reco = ev["selected"] & (ev["reco_bin"] >= 0)
    measured = ev["is_signal"] & (ev["truth_bin"] >= 0)
    s, b = in_reco & measured, in_reco & ~ev["is_signal"]
    for u in range(n_universes):
        w = ev["w0"] * ratio[u, ev["flux_bin"]]
        sig = np.bincount(
            ev["reco_bin"][s] * n_truth + ev["truth_bin"][s],
            weights=w[s],
            minlength=n_reco * n_truth,
        )
        assert_allclose(sig_f[u].ravel(), sig, rtol=1e-12, atol=1e-300)
        assert_allclose(
            bkg_f[u],
            np.bincount(ev["reco_bin"][b], weights=w[b], minlength=n_reco),
            rtol=1e-12,
            atol=1e-300,
        )
        assert_allclose(
            truth_f[u],
            np.bincount(ev["truth_bin"][measured], weights=w[measured], minlength=n_truth),
            rtol=1e-12,
            atol=1e-300,
        )


def _assert_symmetric_psd(cov: np.ndarray) -> None:
    assert_array_equal(cov, cov.T)
    eigenvalues = np.linalg.eigvalsh(cov)
    assert eigenvalues.min() >= -1e-10 * max(np.abs(eigenvalues).max(), 1e-300)


universe_values = st.integers(3, 40).flatmap(
    lambda n_u: st.integers(1, 6).flatmap(
        lambda n_bin: arrays(
            np.float64, (n_u, n_bin), elements=st.floats(-1e3, 1e3, allow_subnormal=False)
        )
    )
)


@PROPERTY
@given(
    values=universe_values,
    center=st.sampled_from(["cv", "mean"]),
    normalization=st.sampled_from(["n", "n-1"]),
)
def test_universe_covariance_is_symmetric_positive_semidefinite(
    values, center, normalization
) -> None:
    cov = universe_covariance(
        values[1:], central=values[0], center=center, normalization=normalization
    )
    _assert_symmetric_psd(cov)


@PROPERTY
@given(values=universe_values, shift=st.floats(-1e3, 1e3))
def test_joint_covariance_is_symmetric_psd_and_its_blocks_are_the_single_covariances(
    values, shift
) -> None:
    measured, predicted = values, values[:, ::-1] * 0.5 + shift
    joint = joint_covariance(
        measured[1:], predicted[1:], central_measured=measured[0], central_predicted=predicted[0]
    )
    _assert_symmetric_psd(joint)
    n = values.shape[1]
    assert_allclose(
        joint[:n, :n], universe_covariance(measured[1:], central=measured[0]), rtol=1e-12, atol=1e-9
    )
    assert_allclose(
        joint[n:, n:],
        universe_covariance(predicted[1:], central=predicted[0]),
        rtol=1e-12,
        atol=1e-9,
    )


@PROPERTY
@given(
    seed=seeds, counts=st.lists(st.integers(1, 15), min_size=1, max_size=4), n_bin=st.integers(1, 5)
)
def test_per_group_total_and_joint_covariances_over_a_universe_set_are_symmetric_psd(
    seed, counts, n_bin
) -> None:
    rng = np.random.default_rng(seed)
    index = np.concatenate([[-1], *[np.full(c, k) for k, c in enumerate(counts)]]).astype(np.int32)
    names = tuple(f"s{k}" for k in range(len(counts)))
    universes = UniverseSet(
        seed=seed,
        names=names,
        groups=tuple("ab"[k % 2] for k in range(len(counts))),
        kinds=("knob",) * len(counts),
        systematic_index=index,
        flux_ratio=np.ones((index.size, 2)),
        bootstrap=np.full(index.size, -1),
    )
    measured = 1.0 + 0.1 * rng.standard_normal((index.size, n_bin))
    predicted = measured * 0.9 + 0.05 * rng.standard_normal((index.size, n_bin))
    cov = covariances(measured, universes, center="cv", normalization="n")
    for matrix in (*cov.per_group, cov.total):
        _assert_symmetric_psd(matrix)
    assert_allclose(cov.per_group.sum(axis=0), cov.total, rtol=1e-12, atol=1e-15)
    _assert_symmetric_psd(
        joint_covariances(measured, predicted, universes, center="cv", normalization="n")
    )


@PROPERTY
@given(seed=seeds, key=st.integers(0, 2**63), n=st.integers(1, 500))
def test_bootstrap_weights_follow_the_event_id_not_its_position(seed, key, n) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 2**64 - 1, n, dtype=np.uint64)
    replicas = np.arange(8)
    weights = poisson_weights(ids, replicas, key)
    perm = rng.permutation(n)
    assert_array_equal(poisson_weights(ids[perm], replicas, key), weights[:, perm])
    assert np.all((weights >= 0) & (weights == np.round(weights)))
