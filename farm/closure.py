"""Closure of knob systematics: a knob universe against the sample regenerated with the shift.

A knob universe predicts what the sample would look like with one physical parameter shifted.
For every knob systematic this module regenerates the sample with that parameter moved by ±Kσ
(same seed, same number of events), fills the nominal sample's knob universes at the same shift
through the path a run takes (farm.accumulate, with its shortcuts), and compares the selected
signal and background per reco bin:

    χ² = Σ_i (a_i − b_i)² / (σ²_a,i + σ²_b,i),   σ² = Σ w²  (MC statistics of each sample)

with a p-value from the χ² distribution with one degree of freedom per compared bin, and the
total selected signal and background as pulls (a − b)/√(σ²_a + σ²_b). A knob fails when
p < 0.01, a total differs by more than 3 standard errors, or the shortcut disagrees with exact
per-event weights. The two samples share their seed, so their MC fluctuations are partly common:
treating them as independent makes the test conservative (it never fails by that), at the cost
of some power.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from farm.accumulate import AccumulationSpec, bin_events, block_partial_sums, columns_needed
from farm.config import FarmConfig, NuscopeConfig, ReactorIbdConfig, config_hash
from farm.reweight.per_event import event_universes
from farm.samples.generate import generate_store
from farm.store.blocks import iter_blocks
from farm.store.reader import EventStore

__all__ = [
    "FAIL_PULL",
    "FAIL_P_VALUE",
    "FAST_PATH_TOLERANCE",
    "KnobClosure",
    "closure",
    "shifted_config",
]

FAIL_P_VALUE = 0.01
FAIL_PULL = 3.0
FAST_PATH_TOLERANCE = 1e-8
"""Largest relative difference between the shortcut a run takes and exact per-event weights."""

Log = Callable[[str], None]


def _scaled(value: float, shift: float) -> float:
    return value * (1.0 + shift)


def shifted_config(cfg: FarmConfig, parameter: str, shift: float) -> FarmConfig:
    """``cfg`` with the physical parameter that knob ``parameter`` models moved by ``shift``
    (the knob's own unit: a fraction for scales and normalisations, readout units for the
    turn-on, absolute for sin²θ_W and M_A), everything else (the seed included) unchanged."""
    data = cfg.model_dump(mode="python")
    det = data["detector"]
    moves: dict[str, Callable[[], None]] = {
        "cevns_rms_radius": lambda: _set(
            data,
            "physics",
            "neutron_radius_scale",
            _scaled(data["physics"]["neutron_radius_scale"], shift),
        ),
        "sin2w": lambda: _set(data, "physics", "sin2w", data["physics"]["sin2w"] + shift),
        "ccqe_ma_mev": lambda: _set(
            data, "physics", "ccqe_ma_mev", data["physics"]["ccqe_ma_mev"] + shift
        ),
        "noqe_norm": lambda: _set(
            data, "physics", "noqe_scale", _scaled(data["physics"]["noqe_scale"], shift)
        ),
        "ibd_norm": lambda: _set(
            data, "physics", "xsec_scale", _scaled(data["physics"]["xsec_scale"], shift)
        ),
        "brn_norm": lambda: _set(
            data, "backgrounds", "brn_events", _scaled(data["backgrounds"]["brn_events"], shift)
        ),
        "nin_norm": lambda: _set(
            data,
            "backgrounds",
            "nin_detection_probability",
            _scaled(data["backgrounds"]["nin_detection_probability"], shift),
        ),
        "ssb_norm": lambda: data["backgrounds"]["steady_state"].__setitem__(
            "events", _scaled(data["backgrounds"]["steady_state"]["events"], shift)
        ),
        "accidental_norm": lambda: det.__setitem__(
            "accidental_events", _scaled(det["accidental_events"], shift)
        ),
        "energy_scale": lambda: det.__setitem__(
            "energy_scale", _scaled(det["energy_scale"], shift)
        ),
        "quenching": lambda: det.__setitem__(
            "quenching_scale", _scaled(det["quenching_scale"], shift)
        ),
        "light_yield": lambda: det.__setitem__(
            "light_yield_pe_per_kevee", _scaled(det["light_yield_pe_per_kevee"], shift)
        ),
        "threshold": lambda: det["efficiency"].__setitem__(
            "shift", det["efficiency"]["shift"] + shift
        ),
        "efficiency": lambda: _efficiency(cfg, data, shift),
    }
    if parameter not in moves:
        msg = f"no physical parameter of the sample corresponds to the knob {parameter!r}"
        raise ValueError(msg)
    try:
        moves[parameter]()
    except KeyError as err:
        msg = (
            f"the {cfg.sample.generator} generator has no parameter {err} for the knob "
            f"{parameter!r}: this knob cannot be closed against a regenerated sample"
        )
        raise ValueError(msg) from None
    return type(cfg).model_validate(data)


def _set(data: dict[str, Any], section: str, key: str, value: float) -> None:
    data[section][key] = value


def _efficiency(cfg: FarmConfig, data: dict[str, Any], shift: float) -> None:
    det = data["detector"]
    if isinstance(cfg, ReactorIbdConfig):
        det["efficiency"] = _scaled(det["efficiency"], shift)
    elif isinstance(cfg, NuscopeConfig):
        det["numu_selection_efficiency"] = _scaled(det["numu_selection_efficiency"], shift)
        det["nue_misid_probability"] = _scaled(det["nue_misid_probability"], shift)
    else:
        det["efficiency"]["scale"] = _scaled(det["efficiency"]["scale"], shift)


@dataclass(frozen=True, kw_only=True)
class Moments:
    """Σw and Σw² per reco bin of the selected signal and background."""

    signal: np.ndarray
    signal_var: np.ndarray
    background: np.ndarray
    background_var: np.ndarray

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            signal=self.signal + other.signal,
            signal_var=self.signal_var + other.signal_var,
            background=self.background + other.background,
            background_var=self.background_var + other.background_var,
        )


def _moments(
    weight: np.ndarray, reco: np.ndarray, keep: np.ndarray, signal: np.ndarray, n: int
) -> Moments:
    sig, bkg = keep & signal, keep & ~signal
    return Moments(
        signal=np.bincount(reco[sig], weights=weight[sig], minlength=n),
        signal_var=np.bincount(reco[sig], weights=weight[sig] ** 2, minlength=n),
        background=np.bincount(reco[bkg], weights=weight[bkg], minlength=n),
        background_var=np.bincount(reco[bkg], weights=weight[bkg] ** 2, minlength=n),
    )


@dataclass(frozen=True, kw_only=True)
class KnobClosure:
    """One knob at one shift: knob universe (a) against the regenerated sample (b)."""

    systematic: str
    parameter: str
    n_sigma: float
    shift: float
    knob: Moments
    regenerated: Moments
    nominal: Moments
    """The nominal sample (no shift): how far the shift moves the sample at all."""
    fast_path_difference: float
    """Largest |fast − exact| / max|exact| of the shortcut against exact per-event weights."""

    @property
    def chi2(self) -> tuple[float, int]:
        a = np.concatenate([self.knob.signal, self.knob.background])
        b = np.concatenate([self.regenerated.signal, self.regenerated.background])
        var = np.concatenate(
            [
                self.knob.signal_var + self.regenerated.signal_var,
                self.knob.background_var + self.regenerated.background_var,
            ]
        )
        used = var > 0
        return float(np.sum((a[used] - b[used]) ** 2 / var[used])), int(used.sum())

    @property
    def p_value(self) -> float:
        chi2, ndof = self.chi2
        return float(stats.chi2.sf(chi2, ndof)) if ndof else 1.0

    def pull(self, kind: str) -> float:
        a = float(getattr(self.knob, kind).sum())
        b = float(getattr(self.regenerated, kind).sum())
        var = float(
            getattr(self.knob, f"{kind}_var").sum() + getattr(self.regenerated, f"{kind}_var").sum()
        )
        return 0.0 if var == 0 else (a - b) / np.sqrt(var)

    def total_ratio(self, kind: str) -> tuple[float, float]:
        """(Σa / Σb, its MC-statistics error)."""
        a = float(getattr(self.knob, kind).sum())
        b = float(getattr(self.regenerated, kind).sum())
        var = float(
            getattr(self.knob, f"{kind}_var").sum() + getattr(self.regenerated, f"{kind}_var").sum()
        )
        return (a / b, np.sqrt(var) / b) if b > 0 else (float("nan"), float("nan"))

    def effect(self, kind: str) -> float:
        """Relative change of the total that the shift makes in the regenerated sample."""
        b = float(getattr(self.regenerated, kind).sum())
        n = float(getattr(self.nominal, kind).sum())
        return b / n - 1.0 if n > 0 else float("nan")

    def ratio(self, kind: str) -> np.ndarray:
        a, b = getattr(self.knob, kind), getattr(self.regenerated, kind)
        return np.divide(a, b, out=np.full(a.shape, np.nan), where=b > 0)

    @property
    def failures(self) -> list[str]:
        out = []
        if self.p_value < FAIL_P_VALUE:
            out.append(f"p = {self.p_value:.2g} < {FAIL_P_VALUE}")
        for kind in ("signal", "background"):
            if abs(self.pull(kind)) > FAIL_PULL:
                out.append(f"total {kind} off by {self.pull(kind):+.1f} σ")
        if not self.fast_path_difference <= FAST_PATH_TOLERANCE:
            out.append(f"shortcut differs from exact weights by {self.fast_path_difference:.1e}")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures


def _knob_spec(spec: AccumulationSpec, parameter: str, values: np.ndarray) -> AccumulationSpec:
    return replace(
        spec,
        event_universes=np.arange(values.size),
        knob_values={parameter: values},
        bootstrap_replica=np.full(values.size, -1, dtype=np.int64),
        event_flux_ratio=None,
        fake_data_model=None,
        with_flux=False,
        clamp=None,
    )


def _knob_moments(
    store: EventStore, spec: AccumulationSpec, block_rows: int, shifts: np.ndarray
) -> tuple[list[Moments], float]:
    """Per shift: the knob universe's moments through the run's path (sums) and exact per-event
    weights (squares); and the largest relative difference between the two sums."""
    n_reco = spec.n_reco
    totals: list[Moments | None] = [None] * shifts.size
    fast_sig = np.zeros((shifts.size, n_reco))
    fast_bkg = np.zeros((shifts.size, n_reco))
    for _, cols in iter_blocks(store, columns_needed(spec), block_rows):
        sums = block_partial_sums(cols, spec)
        fast_sig += sums.signal[: shifts.size].sum(axis=2)
        fast_bkg += sums.background[: shifts.size]
        reco_bin, _, signal = bin_events(cols, spec)
        ev = event_universes(cols, spec, slice(0, shifts.size), reco_bin, np.zeros_like(reco_bin))
        for k in range(shifts.size):
            part = _moments(ev.weight[k], ev.reco[k], ev.selected[k], signal, n_reco)
            totals[k] = part if totals[k] is None else totals[k] + part  # type: ignore[operator]
    done = [t for t in totals if t is not None]
    exact_sig = np.stack([t.signal for t in done])
    exact_bkg = np.stack([t.background for t in done])
    scale = max(
        float(np.abs(exact_sig).max(initial=0.0)), float(np.abs(exact_bkg).max(initial=0.0)), 1e-300
    )
    diff = (
        max(float(np.abs(fast_sig - exact_sig).max()), float(np.abs(fast_bkg - exact_bkg).max()))
        / scale
    )
    return done, diff


def _nominal_moments(store: EventStore, spec: AccumulationSpec, block_rows: int) -> Moments:
    total: Moments | None = None
    names = sorted({*columns_needed(spec), "selected", "w_nominal", "is_signal"})
    for _, cols in iter_blocks(store, names, block_rows):
        reco_bin, _, signal = bin_events(cols, spec)
        keep = cols["selected"] & (reco_bin >= 0)
        part = _moments(cols["w_nominal"], reco_bin, keep, signal, spec.n_reco)
        total = part if total is None else total + part
    assert total is not None
    return total


def closure(
    cfg: FarmConfig,
    store: EventStore,
    *,
    systematics: Sequence[str] | None = None,
    n_sigma: float = 1.0,
    work_dir: Path | None = None,
    log: Log = print,
) -> list[KnobClosure]:
    """Close every knob systematic of ``cfg`` (or those named) at ±``n_sigma`` σ against samples
    regenerated from ``cfg`` with the parameter shifted; ``store`` holds the nominal sample."""
    from farm.analysis.pipeline import prepare
    from farm.samples.blocks import BLOCK_EVENTS

    knobs = [s for s in cfg.systematics if s.kind == "knob"]
    if systematics:
        unknown = sorted(set(systematics) - {s.name for s in knobs})
        if unknown:
            msg = (
                f"no knob systematic named {', '.join(unknown)} in {cfg.sample.name}; its knobs: "
                f"{', '.join(s.name for s in knobs) or 'none'}"
            )
            raise ValueError(msg)
        knobs = [s for s in knobs if s.name in systematics]
    if not n_sigma > 0:
        msg = f"--sigma must be a positive number of standard deviations; got {n_sigma}"
        raise ValueError(msg)
    prep = prepare(cfg, store)
    nominal = _nominal_moments(store, prep.spec, BLOCK_EVENTS)
    results = []
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="farm-closure-") as tmp:
        for syst in knobs:
            parameter = str(syst.parameter)
            shifts = np.array([-n_sigma * syst.sigma, n_sigma * syst.sigma])
            thrown = prep.universes.knobs[parameter][prep.universes.universes_of(syst.name)]
            # the thrown values come along so the shortcut is the one a run takes
            spec = _knob_spec(prep.spec, parameter, np.concatenate([shifts, thrown]))
            log(f"{syst.name}: knob universes at {shifts[0]:+g} and {shifts[1]:+g} ({parameter})")
            knob, difference = _knob_moments(store, spec, BLOCK_EVENTS, shifts)
            for k, shift in enumerate(shifts):
                shifted = shifted_config(cfg, parameter, float(shift))
                path = Path(tmp) / f"{syst.name}-{k}-{config_hash(shifted)[:8]}.zarr"
                log(
                    f"{syst.name}: regenerating {cfg.generation.events:,} events with {parameter} {shift:+g}"
                )
                generate_store(shifted, path)
                regenerated = _nominal_moments(EventStore.open(path), prep.spec, BLOCK_EVENTS)
                results.append(
                    KnobClosure(
                        systematic=syst.name,
                        parameter=parameter,
                        n_sigma=float(np.sign(shift) * n_sigma),
                        shift=float(shift),
                        knob=knob[k],
                        regenerated=regenerated,
                        nominal=nominal,
                        fast_path_difference=difference,
                    )
                )
    return results
