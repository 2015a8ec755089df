"""SignalEngine: hedge/z-score against a numpy reference, and the entry/exit/stop/time state machine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.analytics.kalman import KalmanHedge
from shared.analytics.pair_stream import PairSignalStream
from shared.errors import InvalidInput
from shared.research.pair_bars import PairBars
from shared.research.signals import SignalEngine, SignalParams


def _reference_z(y: np.ndarray, x: np.ndarray, window: int, t: int) -> float:
    """numpy.linalg.lstsq of y on [1, x] over the window ending at t; z of the spread y - beta x."""
    ys, xs = y[t - window + 1 : t + 1], x[t - window + 1 : t + 1]
    (alpha, beta), *_ = np.linalg.lstsq(np.column_stack([np.ones(window), xs]), ys, rcond=None)
    s = ys - beta * xs
    return float((s[-1] - s.mean()) / s.std(ddof=1))


def test_ols_zscore_matches_a_numpy_least_squares_reference(planted_bars: PairBars) -> None:
    window = 60
    y, x = planted_bars.y.close, planted_bars.x.close
    eng = SignalEngine(SignalParams(window=window))
    zs = [eng.update(float(a), float(b)).z for a, b in zip(y[:400], x[:400], strict=True)]
    assert all(math.isnan(z) for z in zs[: window - 1])
    ref = [_reference_z(y, x, window, t) for t in range(window - 1, 400)]
    # Tolerance: streaming co-moments vs a fresh lstsq per window differ by rounding only.
    np.testing.assert_allclose(zs[window - 1 :], ref, rtol=1e-7, atol=1e-9)


def test_fixed_beta_uses_rolling_zscore_of_the_spread() -> None:
    # beta 2: spreads y - 2x = 1, 2, 3, 10. Bar 2: z of [1, 2, 3] = 1.0 < entry 1.05 -> flat.
    # Bar 3: z of [2, 3, 10] = (10 - 5) / std([2, 3, 10], ddof=1) = 1.1 -> short the spread.
    eng = SignalEngine(SignalParams(window=3, entry=1.05, exit=0.0, stop=5.0, method="fixed", fixed_beta=2.0))
    out = [eng.update(2 * x + s, x) for x, s in ((10, 1), (11, 2), (12, 3), (13, 10))]
    assert out[-1].z == pytest.approx(5.0 / np.std([2, 3, 10], ddof=1), rel=1e-12)
    assert out[2].z == pytest.approx(1.0, rel=1e-12) and out[2].target == 0
    assert (out[-1].target, out[-1].reason) == (-1, "entry")


def _drive(params: SignalParams, spreads: list[float]) -> tuple[list[tuple[int, str]], np.ndarray]:
    """Feed x = 100, y = 1000 + spread (fixed beta 1); return transitions and the numpy z of the spread."""
    eng = SignalEngine(params)
    out = [(s.target, s.reason) for s in (eng.update(1000.0 + v, 100.0) for v in spreads)]
    w = params.window
    z = np.full(len(spreads), np.nan)
    for t in range(w - 1, len(spreads)):
        win = np.asarray(spreads[t - w + 1 : t + 1], dtype=float)
        z[t] = (win[-1] - win.mean()) / win.std(ddof=1)
    return out, z


FIXED = dict(window=5, method="fixed", fixed_beta=1.0)


def test_stop_blocks_reentry_until_z_is_back_inside_the_entry_band() -> None:
    p = SignalParams(entry=1.0, exit=0.2, stop=1.55, **FIXED)  # type: ignore[arg-type]
    out, z = _drive(p, [0, 1, 0, 1, 0, -1, -3, -9, -9, -9, 0, 1, -1, 0, -4])
    # The scenario (z from numpy): entry at bar 5, stop at bar 6, |z| >= entry through bar 8,
    # back inside at bar 9, a short entry at bar 10, held until z <= exit band at bar 14.
    assert -1.55 < z[5] <= -1.0 and z[6] <= -1.55
    assert abs(z[7]) >= 1.0 and abs(z[8]) >= 1.0 and abs(z[9]) < 1.0 and 1.0 <= z[10] < 1.55
    assert all(z[t] > 0.2 for t in (11, 12, 13)) and z[14] <= 0.2
    assert out[5] == (1, "entry")
    assert out[6] == (0, "stop")
    assert out[7:10] == [(0, "")] * 3  # blocked at bars 7-8 although |z| >= entry
    assert out[10] == (-1, "entry")
    assert out[11:14] == [(-1, "")] * 3
    assert out[14] == (0, "exit")


def test_time_exit_after_max_hold_bars_then_blocked() -> None:
    p = SignalParams(entry=1.0, exit=0.2, stop=1.7, max_hold_bars=2, **FIXED)  # type: ignore[arg-type]
    out, z = _drive(p, [0, 1, 0, 1, 0, -1.5, -2, -2.5, -3, -3.5, -4, 0, 1, -1, 0, -4])
    assert z[5] <= -1.0 and z[6] <= -1.0 and z[7] <= -1.0  # never reverts: only the clock ends it
    assert out[5] == (1, "entry") and out[6] == (1, "") and out[7] == (0, "time")
    assert all(abs(z[t]) >= 1.0 for t in range(8, 13)) and abs(z[13]) < 1.0
    assert out[8:15] == [(0, "")] * 7  # blocked through bar 12; bar 13 unblocks; bar 14 |z| < 1
    assert -1.7 < z[15] <= -1.0 and out[15] == (1, "entry")


def test_short_entry_and_exit_on_reversion() -> None:
    p = SignalParams(entry=1.0, exit=0.5, stop=3.0, **FIXED)  # type: ignore[arg-type]
    out, z = _drive(p, [0, 0, 0, 0, 1, 0.9, 0])
    assert z[4] >= 1.0 and z[5] > 0.5 and z[6] <= 0.5
    assert out == [(0, "")] * 4 + [(-1, "entry"), (-1, ""), (0, "exit")]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(entry=1.0, exit=1.0), "0 <= exit < entry < stop"),
        (dict(entry=5.0, stop=4.0), "0 <= exit < entry < stop"),
        (dict(window=2), "window"),
        (dict(method="garch"), "unknown hedge method"),
        (dict(method="fixed"), "fixed_beta"),
        (dict(fixed_beta=1.0), "only used with method 'fixed'"),
        (dict(max_hold_bars=0), "max_hold_bars"),
    ],
)
def test_invalid_parameters_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        SignalParams(**kwargs)


def test_bad_prices_are_rejected() -> None:
    eng = SignalEngine(SignalParams())
    with pytest.raises(InvalidInput, match="positive and finite"):
        eng.update(float("nan"), 1.0)


def test_kalman_signal_is_the_filters_standardised_prediction_error(planted_bars: PairBars) -> None:
    # Chan's signal: e_t / sqrt(Q_t) from shared.analytics.kalman.KalmanHedge, warm-up = window.
    window, delta = 50, 1e-8
    kf = KalmanHedge(delta=delta, warmup=window)
    eng = SignalEngine(SignalParams(window=window, method="kalman", kalman_delta=delta))
    y, x = planted_bars.y.close[:300], planted_bars.x.close[:300]
    for t, (a, b) in enumerate(zip(y, x, strict=True)):
        step = kf.update(float(b), float(a))
        sig = eng.update(float(a), float(b))
        if kf.warm and math.isfinite(step.beta):
            assert sig.z == pytest.approx(step.spread / math.sqrt(step.spread_var), rel=1e-12)
            assert sig.beta == step.beta and sig.spread == pytest.approx(a - step.beta * b, rel=1e-15)
        else:
            assert math.isnan(sig.z), t


@pytest.mark.parametrize("method", ["ols", "kalman"])
def test_backtest_signal_equals_the_live_stream(planted_bars: PairBars, method: str) -> None:
    live = PairSignalStream(80, method)
    eng = SignalEngine(SignalParams(window=80, method=method))  # type: ignore[arg-type]
    for a, b in zip(planted_bars.y.close[:400], planted_bars.x.close[:400], strict=True):
        s, sig = live.update(float(a), float(b)), eng.update(float(a), float(b))
        assert (sig.z if math.isfinite(sig.z) else None) == s.zscore
