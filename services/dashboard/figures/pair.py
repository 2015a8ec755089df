"""Figures of the live pair view. Trace order is fixed (see the *_TRACES tuples) so live updates can extend by index."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from services.dashboard.figures import theme
from services.dashboard.figures.series import keep_extremes, signal_regions, times
from services.dashboard.timefmt import age_text, utc_text
from shared.timeframes import timeframe_us

PRICE_TRACES = ("y candles", "y volume", "x candles", "x volume")
SPREAD_TRACES = ("spread", "z-score")
HEDGE_TRACES = ("beta", "correlation")
ADF_LEVEL = 0.05  # p-value below which the spread is called stationary


def bar_columns(bars: Sequence[dict[str, Any]], tz_offset_min: int | None) -> dict[str, list]:
    ts = [int(b["ts_us"]) for b in bars]
    axis, local = times(ts, tz_offset_min)
    cols: dict[str, list] = {"x": axis, "local": local, "ts_us": ts}
    for name in ("open", "high", "low", "close", "volume"):
        cols[name] = [b[name] for b in bars]
    cols["colour"] = [theme.GREEN if b["close"] >= b["open"] else theme.RED for b in bars]
    return cols


def price_figure(y_bars: Sequence[dict], x_bars: Sequence[dict], y_name: str, x_name: str,
                 tz_offset_min: int | None = None) -> go.Figure:
    """Candles and volume of both legs on one shared UTC time axis (traces in ``PRICE_TRACES`` order)."""
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.02, row_heights=[0.36, 0.12, 0.36, 0.12])
    for row, bars, name in ((1, y_bars, y_name), (3, x_bars, x_name)):
        c = bar_columns(bars, tz_offset_min)
        fig.add_trace(go.Candlestick(x=c["x"], open=c["open"], high=c["high"], low=c["low"], close=c["close"],
                                     name=name, text=c["local"], increasing_line_color=theme.GREEN,
                                     decreasing_line_color=theme.RED, showlegend=False), row=row, col=1)
        fig.add_trace(go.Bar(x=c["x"], y=c["volume"], name=f"{name} volume", marker_color=c["colour"],
                             customdata=c["local"], showlegend=False,
                             hovertemplate="vol %{y:,.4g}<extra></extra>"), row=row + 1, col=1)
        fig.update_yaxes(title_text=name.split(".")[-1], row=row, col=1)
    fig.update_layout(template=theme.TEMPLATE, uirevision="keep", height=560, bargap=0.1,
                      margin={"l": 64, "r": 16, "t": 16, "b": 28})
    fig.update_xaxes(rangeslider_visible=False)
    fig.update_xaxes(title_text="UTC", row=4, col=1)
    return fig


def metric_columns(rows: Sequence[dict[str, Any]], tz_offset_min: int | None) -> dict[str, list]:
    ts = [int(r["ts_us"]) for r in rows]
    axis, local = times(ts, tz_offset_min)
    cols: dict[str, list] = {"x": axis, "local": local, "ts_us": ts}
    for name in ("spread", "zscore", "beta", "correlation"):
        cols[name] = [r.get(name) for r in rows]
    return cols


def decimate_rows(rows: Sequence[dict[str, Any]], max_points: int) -> list[dict[str, Any]]:
    """At most ``max_points`` metric rows, keeping every z-score extreme."""
    return [rows[i] for i in keep_extremes([r.get("zscore") for r in rows], max_points)]


def region_shape(start_us: int, end_us: int, side: str) -> dict:
    """A shaded band over both panels of the spread figure: green while long the spread, red while short."""
    return {"type": "rect", "xref": "x", "yref": "paper", "y0": 0, "y1": 1, "layer": "below", "line": {"width": 0},
            "x0": utc_text(start_us), "x1": utc_text(end_us),
            "fillcolor": theme.LONG_FILL if side == "long" else theme.SHORT_FILL}


def region_shapes(rows: Sequence[dict[str, Any]], entry: float, exit_: float) -> tuple[list[dict], str, int | None]:
    """Shaded position episodes, the current signal, and the start (µs) of the open episode if any."""
    regions, current = signal_regions([r.get("zscore") for r in rows], entry, exit_)
    shapes = [region_shape(int(rows[r.start]["ts_us"]), int(rows[r.end]["ts_us"]), r.side) for r in regions]
    open_start = int(rows[regions[-1].start]["ts_us"]) if current != "flat" else None
    return shapes, current, open_start


def extend_regions(side: str, open_start_us: int | None, rows: Sequence[dict[str, Any]], entry: float,
                   exit_: float) -> tuple[dict | None, list[dict], str, int | None]:
    """Continue the episodes with new rows: (replacement for the open episode's shape, new shapes, side, start).

    The figure's last shape is the open episode whenever ``side`` is not flat, so a live update
    rewrites that one shape and appends the rest instead of re-sending every shape.
    """
    regions, current = signal_regions([r.get("zscore") for r in rows], entry, exit_, side)
    replace, append = None, []
    start_us = open_start_us
    for r in regions:
        x0 = open_start_us if r.start < 0 and open_start_us is not None else int(rows[max(r.start, 0)]["ts_us"])
        shape = region_shape(x0, int(rows[r.end]["ts_us"]), r.side)
        if r.start < 0:
            replace = shape
        else:
            append.append(shape)
        start_us = x0
    return replace, append, current, start_us if current != "flat" else None


def threshold_shapes(entry: float, exit_: float) -> list[dict]:
    """Entry (solid) and exit (dotted) lines on the z-score panel (y axis 2), plus zero."""
    lines = [(entry, theme.RED, "solid"), (-entry, theme.GREEN, "solid"), (exit_, theme.MUTED, "dot"),
             (-exit_, theme.MUTED, "dot"), (0.0, theme.GRID, "solid")]
    return [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y2", "y0": v, "y1": v,
             "line": {"color": c, "width": 1.2, "dash": d}} for v, c, d in lines]


def spread_figure(rows: Sequence[dict[str, Any]], entry: float, exit_: float,
                  tz_offset_min: int | None = None) -> go.Figure:
    """Spread (top) and z-score (bottom) with threshold lines and shaded long/short episodes."""
    c = metric_columns(rows, tz_offset_min)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.45, 0.55])
    fig.add_trace(go.Scattergl(x=c["x"], y=c["spread"], name="spread", line={"color": theme.BLUE, "width": 1.3},
                               customdata=c["local"], hovertemplate="%{y:.5g}<extra>spread</extra>"), row=1, col=1)
    fig.add_trace(go.Scattergl(x=c["x"], y=c["zscore"], name="z-score", line={"color": theme.AMBER, "width": 1.5},
                               customdata=c["local"],
                               hovertemplate="z %{y:.2f}<br>local %{customdata}<extra></extra>"), row=2, col=1)
    shapes, _, _ = region_shapes(rows, entry, exit_)
    fig.update_layout(template=theme.TEMPLATE, uirevision="keep", height=420, shapes=threshold_shapes(entry, exit_)
                      + shapes, margin={"l": 56, "r": 16, "t": 16, "b": 28})
    fig.update_yaxes(title_text="y − β·x", row=1, col=1)  # the worker's spread (z is the same with α)
    fig.update_yaxes(title_text="z", row=2, col=1)
    fig.update_xaxes(title_text="UTC", row=2, col=1)
    return fig


def hedge_figure(rows: Sequence[dict[str, Any]], method: str, tz_offset_min: int | None = None) -> go.Figure:
    """Rolling hedge ratio (named by method, e.g. the Kalman path) and rolling correlation."""
    c = metric_columns(rows, tz_offset_min)
    label = f"β ({method})"
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06)
    fig.add_trace(go.Scattergl(x=c["x"], y=c["beta"], name=label, line={"color": theme.PURPLE, "width": 1.4},
                               customdata=c["local"], hovertemplate="%{y:.5g}<extra>" + label + "</extra>"),
                  row=1, col=1)
    fig.add_trace(go.Scattergl(x=c["x"], y=c["correlation"], name="correlation", line={"color": theme.CYAN},
                               customdata=c["local"], hovertemplate="%{y:.3f}<extra>corr</extra>"), row=2, col=1)
    fig.update_layout(template=theme.TEMPLATE, uirevision="keep", height=340, margin={"l": 56, "r": 16, "t": 16, "b": 28})
    fig.update_yaxes(title_text=label, row=1, col=1)
    fig.update_yaxes(title_text="ρ", range=[-1.05, 1.05], row=2, col=1)
    return fig


def _number(value: Any, fmt: str) -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, fmt)


def stat_cards(latest: dict[str, Any] | None, signal: str, timeframe: str, now_s: float | None = None,
               stale_after_s: float = 10.0) -> list[dict[str, str]]:
    """The stat cards of the live view: label, value, note and colour (pure, so it is unit-tested)."""
    if latest is None:
        return [{"label": "data", "value": "none yet", "note": "no metrics for this pair", "colour": theme.MUTED}]
    now_s = time.time() if now_s is None else now_s
    p, hl, z = latest.get("adf_p"), latest.get("half_life"), latest.get("zscore")
    if p is None:
        adf = {"label": "ADF p-value", "value": "—", "note": "warming up", "colour": theme.MUTED}
    elif p < ADF_LEVEL:
        adf = {"label": "ADF p-value", "value": _number(p, ".3f"), "note": "stationary", "colour": theme.GREEN}
    else:
        adf = {"label": "ADF p-value", "value": _number(p, ".3f"), "note": "not stationary", "colour": theme.RED}
    finite_hl = hl is not None and math.isfinite(hl) and hl > 0
    half = {"label": "half-life", "value": _number(hl, ".1f") if finite_hl else "∞",
            "note": f"bars of {timeframe}", "colour": theme.TEXT if finite_hl else theme.RED}
    sig_colour = {"long": theme.GREEN, "short": theme.RED}.get(signal, theme.MUTED)
    sig_note = {"long": "long y / short β·x", "short": "short y / long β·x"}.get(signal, "no position")
    age = max(0.0, now_s - int(latest["ts_us"]) / 1e6 - _timeframe_s(timeframe))
    fresh = age <= max(stale_after_s, 2 * _timeframe_s(timeframe))
    return [
        {"label": "z-score", "value": _number(z, "+.2f"), "note": f"β {_number(latest.get('beta'), '.4g')}",
         "colour": theme.AMBER if z is not None and abs(z) >= 2 else theme.TEXT},
        {"label": "signal", "value": signal.upper(), "note": sig_note, "colour": sig_colour},
        adf,
        half,
        {"label": "correlation", "value": _number(latest.get("correlation"), ".3f"), "note": "log returns",
         "colour": theme.TEXT},
        {"label": "last bar", "value": age_text(age), "note": utc_text(int(latest["ts_us"]))[:19] + " UTC",
         "colour": theme.GREEN if fresh else theme.AMBER},
    ]


def _timeframe_s(timeframe: str) -> float:
    return timeframe_us(timeframe) / 1e6
