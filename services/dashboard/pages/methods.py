"""Method comparison: OLS vs Kalman vs Huber vs Theil-Sen hedge ratios and the spreads they give (gateway /analysis)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from services.dashboard import ids, runtime
from services.dashboard.components import (
    BAR_TIMEFRAMES,
    dropdown,
    error_message,
    field,
    message,
    number,
    table,
)
from services.dashboard.figures.research import method_betas, method_figure, method_rows
from services.dashboard.figures.theme import empty_figure
from services.dashboard.gateway import GatewayError

METHODS = ["ols", "kalman", "huber", "theil_sen"]
METHOD_COLUMNS = ["method", "beta", "alpha", "adf_pvalue", "half_life", "zscore", "spread"]


def layout(timeframe: str = "1m", **_query: str) -> html.Div:
    timeframe = timeframe if timeframe in BAR_TIMEFRAMES else "1m"  # ?timeframe= preselects
    return html.Div([
        html.Div(className="panel", children=[html.Div(className="controls", children=[
            field("Pair", dropdown(ids.METHODS_PAIR), width="420px"),
            field("Timeframe", dropdown(ids.METHODS_TIMEFRAME, BAR_TIMEFRAMES, timeframe), width="110px"),
            field("Bars", number(ids.METHODS_BARS, 2000, min=30, step=1), width="100px"),
            field("Window", number(ids.METHODS_WINDOW, 100, min=3, step=1), width="90px"),
            field("", html.Button("Compare methods", id=ids.METHODS_RUN, className="btn btn-primary"), width="170px"),
        ])]),
        html.Div(id=ids.METHODS_MESSAGE),
        html.Div(className="panel", children=[dcc.Loading(dcc.Graph(id=ids.METHODS_GRAPH, figure=empty_figure(
            "choose a pair and compare"), config={"displaylogo": False}))]),
        html.Div(className="panel", children=[html.H3("Methods side by side (spread ADF p-value, half-life in bars)"),
                                              table(ids.METHODS_TABLE, columns=METHOD_COLUMNS, page_size=4)]),
        html.Div(className="panel", children=[html.H3("Full report (ADF, Engle-Granger, Johansen, Hurst, lead-lag, ...)"),
                                              table(ids.METHODS_REPORT, columns=["statistic", "value"], page_size=25)]),
    ])


@callback(Output(ids.METHODS_PAIR, "options"), Output(ids.METHODS_PAIR, "value"), Input(ids.METHODS_PAIR, "id"))
def pairs(_id):
    try:
        found = [p["id"] for p in runtime.current().gateway.pairs()]
    except GatewayError:
        return [], None
    return found, found[0] if found else None


def flatten(report: Any, prefix: str = "", limit: int = 200) -> list[dict[str, Any]]:
    """Scalar leaves of a nested report as (statistic, value) rows; long arrays are left out."""
    rows: list[dict[str, Any]] = []
    if isinstance(report, dict):
        for key, value in report.items():
            rows += flatten(value, f"{prefix}{key}." if isinstance(value, dict | list) else f"{prefix}{key}", limit)
    elif isinstance(report, list):
        if len(report) <= 8 and all(not isinstance(v, dict | list) for v in report):
            rows.append({"statistic": prefix.rstrip("."), "value": ", ".join(_show(v) for v in report)})
    else:
        rows.append({"statistic": prefix, "value": _show(report)})
    return rows[:limit]


def _show(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


@callback(Output(ids.METHODS_GRAPH, "figure"), Output(ids.METHODS_TABLE, "data"), Output(ids.METHODS_REPORT, "data"),
          Output(ids.METHODS_MESSAGE, "children"),
          Input(ids.METHODS_RUN, "n_clicks"), State(ids.METHODS_PAIR, "value"), State(ids.METHODS_TIMEFRAME, "value"),
          State(ids.METHODS_BARS, "value"), State(ids.METHODS_WINDOW, "value"), State(ids.TZ_OFFSET, "data"),
          prevent_initial_call=True)
def compare(_clicks, pair, timeframe, bars, window, tz):
    if not pair:
        return no_update, no_update, no_update, message("Choose a pair first.", "info")
    y, x = pair.split("~")
    gw = runtime.current().gateway
    body = {"source": {"y": y, "x": x, "timeframe": timeframe, "max_bars": bars}, "window": window, "methods": METHODS}
    try:
        result = gw.analysis(body)
        cap = runtime.current().settings.max_points
        y_bars = {b["ts_us"]: b["close"] for b in gw.bars(y, timeframe, limit=bars, max_points=cap)}
        x_bars = {b["ts_us"]: b["close"] for b in gw.bars(x, timeframe, limit=bars, max_points=cap)}
    except GatewayError as exc:
        return empty_figure("hedge method comparison unavailable"), [], [], error_message(exc, "method comparison")
    report = result.get("report", {})
    betas = method_betas(report)
    common = sorted(set(y_bars) & set(x_bars))
    if not betas:
        note = message("The gateway's report has no per-method beta (expected report.hedge.<method>.beta).", "warn")
        return empty_figure("no per-method hedge ratios in the report"), [], flatten(report), note
    fig = method_figure(betas, common, [y_bars[t] for t in common], [x_bars[t] for t in common], tz)
    return fig, method_rows(report), flatten(report), message(f"{result.get('n', 0):,} aligned bars analysed.", "ok")


# registered last so the page record holds the layout function
dash.register_page(__name__, path="/methods", name="Methods", order=1, title="Pairs · hedge methods", layout=layout)
