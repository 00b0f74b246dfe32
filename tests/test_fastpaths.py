"""The shortcuts of the per-event path give the histograms of exact per-universe weights.

Every knob of every example sample is filled twice on real generated blocks: through the
shortcut a worker takes (categories, readout-value classes, Chebyshev expansion with its per-event
check, lateral prefix sums, the compiled bootstrap) and through the generic path that evaluates
each universe's weights exactly. They agree to the expansion's tolerance (1e-9) and, for the exact
shortcuts, to rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import farm.accumulate as acc
from farm.config import load_config
from farm.reweight import shortcuts
from farm.reweight.compiled import interpolation_error
from farm.reweight.fastpaths import BlockLayout, chebyshev_interpolation_matrix, chebyshev_nodes
from farm.reweight.knobs import knob_effect, readout_value_affected
from farm.runner import ensure_store, plan_for
from farm.store.blocks import iter_blocks

SAMPLES = ("sns-csi", "sns-lar", "reactor-ge", "reactor-ibd", "nuscope-lar")
EVENTS = 70_000
"""Two blocks: one full (65 536 rows), one short."""
UNIVERSES = 40
"""Per systematic: more than the expansion's 12 nodes and 3 checks, so the expansion is used."""
FIELDS = ("signal", "background", "truth")


class Sample:
    def __init__(self, name: str, root: Path) -> None:
        cfg = load_config(
            name, **{"generation.events": EVENTS, "sample.store": str(root / f"{name}.zarr")}
        )
        store = ensure_store(cfg, log=lambda _: None)
        self.prep, self.plan = plan_for(cfg, store, universes=UNIVERSES)
        spec = self.prep.spec
        self.blocks = [
            cols for _, cols in iter_blocks(store, acc.columns_needed(spec), self.prep.block_rows)
        ]
        self.chunks: dict[str, acc.AccumulationSpec] = {}
        names = self.prep.universes.names
        owner_of = self.prep.universes.systematic_index
        for lo, hi in self.plan.chunks[1:]:
            owner = names[owner_of[spec.event_universes[lo]]]
            self.chunks.setdefault(owner, spec.for_chunk(lo, hi, with_flux=False))


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Sample]:
    root = tmp_path_factory.mktemp("fastpath-stores")
    return {name: Sample(name, root) for name in SAMPLES}


def _generic(cols: Mapping[str, np.ndarray], chunk: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        m.setattr(acc, "_fast_histograms", lambda *a, **k: None)
        return acc.block_partial_sums(cols, chunk)


def _assert_close(fast: Any, exact: Any, rtol: float) -> None:
    for field in FIELDS:
        a, b = getattr(fast, field), getattr(exact, field)
        assert a.shape == b.shape
        scale = max(float(np.max(np.abs(b))), 1e-300)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=field)


CASES = [
    ("sns-csi", "neutron_radius", 1e-9),
    ("sns-csi", "weak_mixing_angle", 1e-12),
    ("sns-csi", "quenching", 1e-12),
    ("sns-csi", "light_yield", 1e-12),
    ("sns-csi", "efficiency_threshold", 1e-12),
    ("sns-csi", "brn_normalization", 1e-12),
    ("sns-csi", "mc_statistics", 1e-12),
    ("sns-lar", "neutron_radius", 1e-9),
    ("sns-lar", "quenching", 1e-12),
    ("reactor-ge", "threshold", 1e-9),
    ("reactor-ge", "germanium_quenching", 1e-12),
    ("reactor-ibd", "energy_scale", 1e-12),
    ("reactor-ibd", "ibd_normalization", 1e-12),
    ("nuscope-lar", "axial_mass", 1e-9),
    ("nuscope-lar", "non_qe_normalization", 1e-12),
    ("nuscope-lar", "tagged_energy_scale", 1e-12),
    ("nuscope-lar", "selection_efficiency", 1e-12),
]


@pytest.mark.parametrize(("sample", "systematic", "rtol"), CASES)
def test_the_shortcut_fills_the_histograms_of_exact_per_universe_weights(
    samples: dict[str, Sample],
    sample: str,
    systematic: str,
    rtol: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = samples[sample]
    chunk = s.chunks[systematic]
    expanded = rtol > 1e-12
    assert chunk.event_universes.size >= (shortcuts.EXPANSION_NODES + 4 if expanded else 2)
    for cols in s.blocks:
        n, k = cols["w_nominal"].size, chunk.event_universes.size
        assert (
            shortcuts.fast_histograms(  # the shortcut is really taken
                cols, chunk, *acc.bin_events(cols, chunk)
            )
            is not None
        )
        fast = acc.block_partial_sums(cols, chunk)
        exact = _generic(cols, chunk, monkeypatch)
        _assert_close(fast, exact, rtol)
        assert fast.signal.shape[0] == k and n > 0
        seen = np.concatenate([fast.signal.reshape(k, -1), fast.background], axis=1)
        assert float(np.ptp(seen.sum(axis=1))) > 0  # the universes really differ


def test_a_threshold_shift_on_photoelectron_counts_is_filled_by_readout_value(
    samples: dict[str, Sample],
) -> None:
    s = samples["sns-csi"]
    chunk = s.chunks["efficiency_threshold"]
    cols = s.blocks[0]
    reco_bin, truth_bin, signal = acc.bin_events(cols, chunk)
    layout = BlockLayout.build(
        reco_bin, truth_bin, signal, cols["selected"], chunk.n_reco, chunk.n_truth
    )
    reweighted = readout_value_affected("threshold", cols) & (reco_bin >= 0)
    pe = cols["reco_pe"][reweighted]
    assert pe.size > 1000 and np.array_equal(pe, np.round(pe))  # photoelectron counts
    assert shortcuts._by_readout_value(cols, chunk, "threshold", layout) is not None


def test_events_where_the_expansion_fails_its_check_are_filled_exactly(
    samples: dict[str, Sample], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CsI's efficiency is floored at zero below 7.07 PE: with a continuous readout, a shift moves
    some events across that kink, where no polynomial in the shift holds (and near it the ratio
    ε(x − v)/ε(x) is steep enough that 12 nodes miss 1e-9). Those events fail the per-event check
    and take exact weights; the others stay on the expansion."""
    s = samples["sns-csi"]
    chunk = s.chunks["efficiency_threshold"]
    cols = dict(s.blocks[0])
    jitter = np.random.default_rng(1).uniform(-0.5, 0.5, cols["reco_pe"].size)
    cols["reco_pe"] = (cols["reco_pe"] + jitter).astype(cols["reco_pe"].dtype)
    reco_bin, truth_bin, signal = acc.bin_events(cols, chunk)
    layout = BlockLayout.build(
        reco_bin, truth_bin, signal, cols["selected"], chunk.n_reco, chunk.n_truth
    )
    assert shortcuts._by_readout_value(cols, chunk, "threshold", layout) is None  # continuous now

    values = chunk.knob_values["threshold"]
    lo, hi = float(values.min()), float(values.max())
    nodes = chebyshev_nodes(lo, hi, shortcuts.EXPANSION_NODES)
    checks = np.array([lo, hi, float(np.median(values))])
    table, _ = knob_effect("threshold", np.concatenate([nodes, checks]), cols, chunk.knob_context)
    slot, _ = layout.slots(table.shape[1], truth=False)
    error = interpolation_error(
        table,
        shortcuts.EXPANSION_NODES,
        chebyshev_interpolation_matrix(checks, lo, hi, shortcuts.EXPANSION_NODES),
        slot >= 0,
    )
    failing = int(np.count_nonzero(error > shortcuts.EXPANSION_TOLERANCE))
    passing = int(np.count_nonzero((slot >= 0) & (error <= shortcuts.EXPANSION_TOLERANCE)))
    assert failing > 0 and passing > 0

    fast = acc.block_partial_sums(cols, chunk)
    exact = _generic(cols, chunk, monkeypatch)
    _assert_close(fast, exact, 1e-9)

    # and the exact fill of the failing events matters: without it the result is wrong
    with monkeypatch.context() as m:
        m.setattr(shortcuts, "EXPANSION_TOLERANCE", np.inf)
        unchecked = acc.block_partial_sums(cols, chunk)
    assert not np.allclose(unchecked.signal, exact.signal, rtol=1e-6)
