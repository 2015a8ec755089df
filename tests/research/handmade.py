"""A hand-built six-bar pair whose trades are worked out by hand in ``test_backtest_hand.py``."""

from __future__ import annotations

import numpy as np

from shared.research.pair_bars import LegBars, PairBars

MINUTE_US = 60_000_000
T0_US = 1_749_254_400_000_000  # 2025-06-07 00:00 UTC


def hand_pair(high_low_pad: float = 0.0) -> PairBars:
    """Six bars built so the fixed-beta strategy's trades can be worked out by hand.

    x closes 100, 102, 98, 100, 104, 106 and the spread s = y - 0.5 x is 0, 0, -3, -3, 0, 1, so
    y closes 50, 51, 46, 47, 52, 54. Opens differ from closes so next-open fills are visible.
    High/low = max/min(open, close) -/+ ``high_low_pad``.
    """
    x_close = np.array([100.0, 102.0, 98.0, 100.0, 104.0, 106.0])
    x_open = np.array([100.0, 101.0, 99.0, 99.0, 103.0, 105.0])
    y_close = np.array([0.0, 0.0, -3.0, -3.0, 0.0, 1.0]) + 0.5 * x_close
    y_open = np.array([50.0, 50.5, 46.5, 46.0, 51.0, 53.0])

    def leg(o: np.ndarray, c: np.ndarray) -> LegBars:
        return LegBars(o, np.maximum(o, c) + high_low_pad, np.minimum(o, c) - high_low_pad, c)

    ts = T0_US + MINUTE_US * np.arange(6, dtype=np.int64)
    return PairBars(ts, leg(y_open, y_close), leg(x_open, x_close))
