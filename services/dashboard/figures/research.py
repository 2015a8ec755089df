"""Figures of the universe, method comparison and backtest pages (pure functions of gateway JSON)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from services.dashboard.figures import theme
from services.dashboard.figures.series import times

METHOD_COLOURS = {"ols": theme.BLUE, "kalman": theme.PURPLE, "huber": theme.AMBER, "theil_sen": theme.CYAN}


def short_name(instrument: str) -> str:
    venue, _, symbol = instrument.partition(".")
    return f"{symbol} ({venue.replace('binance-', '')})" if symbol else instrument


def heatmap(matrix: Sequence[Sequence[float | None]], instruments: Sequence[str], kind: str) -> go.Figure:
    """Correlation (diverging, -1..1) or cointegration p-value (green = low p = cointegrated)."""
    names = [short_name(i) for i in instruments]
    z = [[None if v is None or not math.isfinite(v) else v for v in row] for row in matrix]
    text = [["" if v is None else f"{v:.2f}" if kind == "correlation" else f"{v:.3f}" for v in row] for row in z]
    if kind == "correlation":
        scale, zmin, zmax, title = "RdBu", -1.0, 1.0, "Correlation of log returns"
    else:
        scale = [[0.0, theme.GREEN], [0.05, "#2d6a3a"], [0.2, "#3b3f46"], [1.0, theme.PANEL]]
        zmin, zmax, title = 0.0, 1.0, "Engle-Granger p-value (row on column)"
    fig = theme.base_figure(title, height=420)
    fig.add_trace(go.Heatmap(z=z, x=names, y=names, text=text, texttemplate="%{text}", colorscale=scale,
                             zmin=zmin, zmax=zmax, hovertemplate="%{y} vs %{x}: %{z:.4f}<extra></extra>"))
    fig.update_layout(yaxis={"autorange": "reversed", "automargin": True}, hovermode="closest")
    return fig


STATIC_SPREAD = "y - alpha - beta * x"


def method_betas(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{method: {"beta", "alpha", "static"}} from an analysis report's ``hedge`` section.

    ``static`` is false when the method's spread is not y - α - β·x with one β (the Kalman filter's
    β moves every bar; the report gives its final state), so no fixed-β spread is drawn for it.
    """
    section = report.get("hedge") or {}
    out: dict[str, dict[str, Any]] = {}
    if isinstance(section, dict):
        for method, value in section.items():
            if isinstance(value, dict) and isinstance(value.get("beta"), int | float):
                out[method] = {"beta": float(value["beta"]), "alpha": float(value.get("alpha") or 0.0),
                               "static": value.get("spread", STATIC_SPREAD) == STATIC_SPREAD}
    return out


def method_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One comparison row per hedge method: β, α and its spread's ADF p-value, half-life, latest z."""
    rows = []
    for method, value in (report.get("hedge") or {}).items():
        if isinstance(value, dict):
            rows.append({"method": method, **{k: _round(value.get(k)) for k in (
                "beta", "alpha", "adf_pvalue", "half_life", "zscore")}, "spread": value.get("spread", "")})
    return rows


def _round(value: Any) -> Any:
    return float(f"{value:.6g}") if isinstance(value, float) and math.isfinite(value) else value


def method_figure(betas: dict[str, dict[str, float]], ts_us: Sequence[int], y: Sequence[float],
                  x: Sequence[float], tz_offset_min: int | None = None) -> go.Figure:
    """Hedge ratio per method (left) and the spread y - α - β·x each one gives on the same bars (right)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.28, 0.72], subplot_titles=("β by method", "spread by method"))
    methods = list(betas)
    fig.add_trace(go.Bar(x=methods, y=[betas[m]["beta"] for m in methods], showlegend=False,
                         marker_color=[METHOD_COLOURS.get(m, theme.MUTED) for m in methods],
                         text=[f"{betas[m]['beta']:.5g}" for m in methods], textposition="outside",
                         hovertemplate="%{x}: β %{y:.6g}<extra></extra>"), row=1, col=1)
    axis, local = times(ts_us, tz_offset_min)
    moving = [m for m in methods if not betas[m].get("static", True)]
    for m in methods:
        if m in moving:
            continue
        b, a = betas[m]["beta"], betas[m]["alpha"]
        fig.add_trace(go.Scattergl(x=axis, y=[yy - a - b * xx for yy, xx in zip(y, x, strict=True)], name=m,
                                   customdata=local, line={"color": METHOD_COLOURS.get(m, theme.MUTED), "width": 1.2},
                                   hovertemplate="%{y:.5g}<extra>" + m + "</extra>"), row=1, col=2)
    fig.update_layout(template=theme.TEMPLATE, height=420, uirevision="keep", legend={"x": 0.3, "y": 1.08})
    if moving:
        fig.add_annotation(xref="paper", yref="paper", x=0, y=-0.2, xanchor="left", showarrow=False,
                           font={"color": theme.MUTED, "size": 11},
                           text=f"{', '.join(moving)}: β moves every bar (its final β is shown); its spread is the "
                                "filter's prediction error, so no fixed-β spread is drawn")
        fig.update_layout(margin={"b": 80})
    return fig


def lead_lag(report: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    """(lags, correlations) from a report's ``lead_lag`` section, if it has one."""
    section = report.get("lead_lag")
    if not isinstance(section, dict):
        return None
    lags, corr = section.get("lags"), section.get("correlations") or section.get("corr")
    if not isinstance(lags, list) or not isinstance(corr, list) or len(lags) != len(corr) or not lags:
        return None
    return [float(v) for v in lags], [float("nan") if c is None else float(c) for c in corr]


def lead_lag_figure(lags: Sequence[float], corr: Sequence[float], title: str) -> go.Figure:
    """Cross-correlation of log returns by lag; the tallest bar is marked (positive lag: y leads x)."""
    best = max(range(len(corr)), key=lambda i: abs(corr[i]) if math.isfinite(corr[i]) else -1.0)
    colours = [theme.AMBER if i == best else theme.BLUE for i in range(len(corr))]
    fig = theme.base_figure(title, height=320, hovermode="closest")
    fig.add_trace(go.Bar(x=list(lags), y=list(corr), marker_color=colours,
                         hovertemplate="lag %{x}: ρ %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="lag (bars); positive: y leads x")
    fig.update_yaxes(title_text="ρ")
    return fig


def equity_figure(curve: dict[str, list], tz_offset_min: int | None = None) -> go.Figure:
    """Equity (top), drawdown (middle, red fill) and position (bottom) of a backtest."""
    axis, local = times([int(t) for t in curve.get("ts_us", [])], tz_offset_min)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.55, 0.25, 0.2])
    fig.add_trace(go.Scattergl(x=axis, y=curve.get("equity", []), name="equity", customdata=local,
                               line={"color": theme.GREEN, "width": 1.5},
                               hovertemplate="%{y:,.2f}<br>local %{customdata}<extra>equity</extra>"), row=1, col=1)
    dd = [None if v is None else -abs(v) for v in curve.get("drawdown", [])]
    fig.add_trace(go.Scattergl(x=axis, y=dd, name="drawdown", fill="tozeroy", line={"color": theme.RED, "width": 1},
                               hovertemplate="%{y:.2%}<extra>drawdown</extra>"), row=2, col=1)
    fig.add_trace(go.Scattergl(x=axis, y=curve.get("position", []), name="position", line={"color": theme.AMBER,
                               "shape": "hv", "width": 1}, hovertemplate="%{y}<extra>position</extra>"), row=3, col=1)
    fig.update_layout(template=theme.TEMPLATE, height=520, uirevision="keep")
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".2%", row=2, col=1)
    fig.update_yaxes(title_text="pos", row=3, col=1)
    fig.update_xaxes(title_text="UTC", row=3, col=1)
    return fig


def lag_figure(lag: Sequence[dict[str, Any]]) -> go.Figure:
    """Consumer-group lag and pending entries per (stream, group), horizontal bars."""
    labels = [f"{row['group']} ← {stream_label(row['stream'])}" for row in lag]
    fig = theme.base_figure("Stream lag per consumer group", height=max(200, 40 + 28 * len(labels)),
                            hovermode="closest", barmode="group")
    fig.add_trace(go.Bar(y=labels, x=[row["lag"] for row in lag], orientation="h", name="lag (undelivered)",
                         marker_color=[theme.RED if row["lag"] > 1000 else theme.BLUE for row in lag]))
    fig.add_trace(go.Bar(y=labels, x=[row["pending"] for row in lag], orientation="h", name="pending (unacked)",
                         marker_color=theme.AMBER))
    fig.update_yaxes(automargin=True)
    return fig


def stream_label(stream: str) -> str:
    """``<prefix>ticks:binance-spot.BTCUSDT`` -> ``ticks:binance-spot.BTCUSDT`` (the namespace is noise here)."""
    for kind in ("ticks:", "metrics:"):
        at = stream.rfind(kind)
        if at >= 0:
            return stream[at:]
    return stream
