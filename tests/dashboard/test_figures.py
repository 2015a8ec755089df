"""Figure builders and pure helpers, without a browser: traces, points, threshold lines, colours, caps."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from services.dashboard.figures import pair as pf
from services.dashboard.figures import research as rf
from services.dashboard.figures import theme
from services.dashboard.figures.series import keep_extremes, signal_regions
from services.dashboard.timefmt import local_text, to_us, utc_text

T0 = 1_723_161_600_000_000  # 2024-08-09 00:00:00 UTC


def metric_rows(z: list[float | None], step_us: int = 1_000_000) -> list[dict]:
    return [{"ts_us": T0 + i * step_us, "seq": i, "zscore": v, "spread": None if v is None else v * 3.0,
             "beta": 0.05 + i * 1e-4, "correlation": 0.8, "method": "ols"} for i, v in enumerate(z)]  # fmt: skip


def bars(n: int, start: float = 100.0) -> list[dict]:
    rng = np.random.default_rng(3)
    out, price = [], start
    for i in range(n):
        o = price
        price = max(1.0, price + float(rng.normal(0, 1)))
        out.append({"ts_us": T0 + i * 60_000_000, "open": o, "high": max(o, price) + 0.5, "low": min(o, price) - 0.5,
                    "close": price, "volume": float(i % 7 + 1)})  # fmt: skip
    return out


# --- time --------------------------------------------------------------------------------
def test_times_round_trip_and_read_every_gateway_form():
    assert to_us("2024-08-09T00:00:00Z") == T0
    assert to_us("2024-08-09T02:00:00+02:00") == T0  # same instant, other offset
    assert to_us("2024-08-09T00:00:00.000250") == T0 + 250  # no offset: UTC
    assert utc_text(T0 + 1_500_000) == "2024-08-09 00:00:01.500"
    assert local_text(T0, 120) == "2024-08-09 02:00:00 (UTC+02:00)"
    assert local_text(T0, -330) == "2024-08-08 18:30:00 (UTC-05:30)"
    with pytest.raises(TypeError):
        to_us(True)


# --- decimation ---------------------------------------------------------------------------
def test_keep_extremes_caps_points_and_keeps_every_spike():
    rng = random.Random(5)
    values = [rng.gauss(0, 1) for _ in range(50_000)]
    values[12_345], values[40_000] = 25.0, -30.0  # spikes a plain stride would likely drop
    kept = keep_extremes(values, 1000)
    assert len(kept) <= 1000
    assert kept == sorted(set(kept))  # time order, no duplicates
    assert 12_345 in kept and 40_000 in kept and 0 in kept and 49_999 in kept
    # per bucket the kept max equals the bucket's true max (brute force over the same bucket edges)
    assert max(values[i] for i in kept) == max(values) and min(values[i] for i in kept) == min(values)


def test_keep_extremes_leaves_short_series_alone_and_handles_gaps():
    assert keep_extremes([1.0, None, 3.0], 10) == [0, 1, 2]
    kept = keep_extremes([None] * 100 + [float("nan")] * 100 + [1.0, 2.0] * 50, 20)
    assert len(kept) <= 20 and kept[0] == 0 and kept[-1] == 299
    with pytest.raises(ValueError, match="at least 4"):
        keep_extremes([1.0] * 10, 3)


def test_decimate_rows_caps_each_trace():
    rows = metric_rows([math.sin(i / 50) for i in range(20_000)])
    shown = pf.decimate_rows(rows, 2000)
    fig = pf.spread_figure(shown, 2.0, 0.5)
    assert all(len(trace.x) <= 2000 for trace in fig.data)


# --- signal state machine -----------------------------------------------------------------
def test_signal_regions_follow_the_entry_exit_rule():
    # hand-worked: short at 2.5 (i=1), exit at 0.2 (i=3); long at -2.2 (i=5), flips short at 2.1 (i=7), still open
    z = [0.0, 2.5, 1.0, 0.2, None, -2.2, -1.0, 2.1, 1.5]
    regions, side = signal_regions(z, 2.0, 0.5)
    assert [(r.start, r.end, r.side) for r in regions] == [(1, 3, "short"), (5, 7, "long"), (7, 8, "short")]
    assert side == "short"
    assert signal_regions([None, float("nan")], 2.0, 0.5) == ([], "flat")
    with pytest.raises(ValueError, match="exit < entry"):
        signal_regions(z, 1.0, 1.0)


def test_extend_regions_equals_recomputing_from_scratch():
    """Live updates (extend at any split) give the same shaded bands as a full redraw."""
    rng = np.random.default_rng(9)
    z = list(np.cumsum(rng.normal(0, 0.6, 400)) % 6 - 3)  # wanders across both entries many times
    rows = metric_rows(z)
    full, side_full, _ = pf.region_shapes(rows, 2.0, 0.5)
    for split in (1, 57, 200, 399):
        shapes, side, start = pf.region_shapes(rows[:split], 2.0, 0.5)
        replace, append, side, start = pf.extend_regions(side, start, rows[split:], 2.0, 0.5)
        if replace is not None:
            shapes[-1] = replace
        shapes += append
        assert shapes == full, f"split at {split}"
        assert side == side_full


# --- live view figures ----------------------------------------------------------------------
def test_price_figure_has_candles_and_volume_for_both_legs():
    y, x = bars(300, 100.0), bars(200, 50.0)
    fig = pf.price_figure(y, x, "binance-spot.ETHUSDT", "binance-spot.BTCUSDT", tz_offset_min=60)
    kinds = [t.type for t in fig.data]
    assert kinds == ["candlestick", "bar", "candlestick", "bar"]  # the order live patches rely on
    assert len(fig.data[0].x) == 300 and len(fig.data[2].x) == 200
    assert list(fig.data[1].y) == [b["volume"] for b in y]
    up = [b["close"] >= b["open"] for b in y]
    assert [c == theme.GREEN for c in fig.data[1].marker.color] == up  # volume coloured by candle direction
    assert fig.data[0].x[0] == "2024-08-09 00:00:00.000" and fig.data[0].text[0].endswith("(UTC+01:00)")


def test_spread_figure_draws_thresholds_and_shaded_signals():
    rows = metric_rows([0.0, 2.5, 1.0, 0.2, -2.2, -0.3])
    fig = pf.spread_figure(rows, 2.0, 0.5)
    assert [t.name for t in fig.data] == list(pf.SPREAD_TRACES)
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert sorted(s.y0 for s in lines) == [-2.0, -0.5, 0.0, 0.5, 2.0]
    assert all(s.yref == "y2" for s in lines)  # on the z-score panel
    entry = {s.y0: s.line.color for s in lines}
    assert entry[2.0] == theme.RED and entry[-2.0] == theme.GREEN
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(b.x0, b.fillcolor) for b in bands] == [(utc_text(T0 + 1_000_000), theme.SHORT_FILL),
                                                     (utc_text(T0 + 4_000_000), theme.LONG_FILL)]
    assert list(fig.data[1].y) == [r["zscore"] for r in rows]


def test_hedge_figure_names_the_method():
    fig = pf.hedge_figure(metric_rows([0.1, 0.2]), "kalman")
    assert fig.data[0].name == "β (kalman)" and [t.name for t in fig.data][1] == "correlation"
    assert tuple(fig.layout.yaxis2.range) == (-1.05, 1.05)


@pytest.mark.parametrize(("p", "note", "colour"), [(0.01, "stationary", theme.GREEN),
                                                    (0.30, "not stationary", theme.RED),
                                                    (None, "warming up", theme.MUTED)])
def test_adf_card_colours_by_the_five_percent_level(p, note, colour):
    latest = {"ts_us": T0, "adf_p": p, "half_life": 12.5, "zscore": -2.4, "beta": 0.05, "correlation": 0.9}
    cards = {c["label"]: c for c in pf.stat_cards(latest, "long", "1m", now_s=T0 / 1e6 + 61)}
    assert cards["ADF p-value"]["note"] == note and cards["ADF p-value"]["colour"] == colour
    assert cards["signal"]["value"] == "LONG" and cards["signal"]["colour"] == theme.GREEN
    assert cards["half-life"]["value"] == "12.5"
    assert cards["last bar"]["colour"] == theme.GREEN  # bar closed 1 s ago


def test_stale_data_and_infinite_half_life_are_flagged():
    latest = {"ts_us": T0, "adf_p": 0.5, "half_life": float("inf"), "zscore": None}
    cards = {c["label"]: c for c in pf.stat_cards(latest, "flat", "1s", now_s=T0 / 1e6 + 600)}
    assert cards["last bar"]["colour"] == theme.AMBER and "min ago" in cards["last bar"]["value"]
    assert cards["half-life"]["value"] == "∞" and cards["half-life"]["colour"] == theme.RED
    assert pf.stat_cards(None, "flat", "1m")[0]["value"] == "none yet"


# --- research figures -------------------------------------------------------------------------
def test_heatmaps_scale_and_orientation():
    names = ["binance-spot.BTCUSDT", "binance-spot.ETHUSDT"]
    corr = rf.heatmap([[1.0, 0.8], [0.8, 1.0]], names, "correlation")
    assert (corr.data[0].zmin, corr.data[0].zmax) == (-1.0, 1.0) and corr.data[0].x[0] == "BTCUSDT (spot)"
    coint = rf.heatmap([[None, 0.01], [float("nan"), None]], names, "cointegration")
    assert coint.data[0].z[0][1] == 0.01 and coint.data[0].z[1][0] is None  # NaN shown as a gap, not a colour
    assert coint.data[0].colorscale[0][1] == theme.GREEN  # low p-value = cointegrated = green


def test_method_figure_spreads_are_y_minus_alpha_minus_beta_x():
    betas = {"ols": {"beta": 0.05, "alpha": 100.0}, "theil_sen": {"beta": 0.049, "alpha": 101.0},
             "kalman": {"beta": 0.04, "alpha": 0.0, "static": False}}
    y, x = [3100.0, 3101.0, 3099.5], [60_000.0, 60_020.0, 59_990.0]
    fig = rf.method_figure(betas, [T0, T0 + 60_000_000, T0 + 120_000_000], y, x)
    assert list(fig.data[0].x) == ["ols", "theil_sen", "kalman"] and list(fig.data[0].y) == [0.05, 0.049, 0.04]
    assert len(fig.data) == 3  # no fixed-β spread for the Kalman filter's moving β; a note says why
    assert "kalman" in fig.layout.annotations[-1].text
    for trace, (b, a) in zip(fig.data[1:], [(0.05, 100.0), (0.049, 101.0)], strict=True):
        np.testing.assert_allclose(trace.y, np.array(y) - a - b * np.array(x), rtol=0, atol=1e-9)  # textbook spread


def test_report_sections_are_read_defensively():
    assert rf.method_betas({"hedge": {"ols": {"beta": 1.5, "alpha": None}, "huber": {"error": "x"}}}) == \
        {"ols": {"beta": 1.5, "alpha": 0.0, "static": True}}
    kalman = {"beta": 0.1, "alpha": 2.0, "spread": "one-step-ahead prediction error", "adf_pvalue": 0.01234567}
    assert rf.method_betas({"hedge": {"kalman": kalman}})["kalman"]["static"] is False
    assert rf.method_rows({"hedge": {"kalman": kalman}})[0]["adf_pvalue"] == 0.0123457
    assert rf.lead_lag({"lead_lag": {"lags": [-1, 0, 1], "correlations": [0.1, None, 0.3]}})[1][2] == 0.3
    assert rf.lead_lag({"lead_lag": {"lags": [1], "correlations": []}}) is None
    fig = rf.lead_lag_figure([-1, 0, 1], [0.1, -0.6, 0.3], "t")
    assert list(fig.data[0].marker.color) == [theme.BLUE, theme.AMBER, theme.BLUE]  # strongest |ρ| marked


def test_equity_figure_plots_drawdown_below_zero():
    curve = {"ts_us": [T0, T0 + 60_000_000], "equity": [10_000.0, 9_500.0], "drawdown": [0.0, 0.05],
             "position": [0, 1]}
    fig = rf.equity_figure(curve)
    assert [t.name for t in fig.data] == ["equity", "drawdown", "position"]
    assert list(fig.data[1].y) == [0.0, -0.05]


def test_lag_labels_drop_the_namespace():
    fig = rf.lag_figure([{"stream": "test:x:ticks:sim.BTCUSDT", "group": "analytics:p", "lag": 2000, "pending": 1}])
    assert fig.data[0].y[0] == "analytics:p ← ticks:sim.BTCUSDT"
    assert fig.data[0].marker.color[0] == theme.RED  # a lag above 1000 entries is red
