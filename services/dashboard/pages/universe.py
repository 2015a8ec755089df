"""Universe: correlation and cointegration heatmaps, ranked candidate pairs, lead-lag of the best candidate."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from services.dashboard import ids, runtime
from services.dashboard.components import (
    BAR_TIMEFRAMES,
    dropdown,
    error_message,
    field,
    fmt,
    message,
    number,
    table,
)
from services.dashboard.figures.research import heatmap, lead_lag, lead_lag_figure, short_name
from services.dashboard.figures.theme import empty_figure
from services.dashboard.gateway import GatewayError

TABLE_COLUMNS = ["rank", "a", "b", "eg_pvalue", "half_life_bars", "hurst", "corr", "passed"]
GRAPH_CONFIG = {"displaylogo": False}


def layout(timeframe: str = "1m", **_query: str) -> html.Div:
    timeframe = timeframe if timeframe in BAR_TIMEFRAMES else "1m"  # ?timeframe= preselects
    return html.Div([
        html.Div(className="panel", children=[html.Div(className="controls", children=[
            field("Instruments", dcc.Dropdown(id=ids.UNIVERSE_INSTRUMENTS, multi=True, className="dropdown"),
                  width="640px"),
            field("Timeframe", dropdown(ids.UNIVERSE_TIMEFRAME, BAR_TIMEFRAMES, timeframe), width="110px"),
            field("Bars", number(ids.UNIVERSE_BARS, 2000, min=30, step=1), width="100px"),
            field("", html.Button("Screen", id=ids.UNIVERSE_RUN, className="btn btn-primary"), width="120px"),
        ])]),
        html.Div(id=ids.UNIVERSE_MESSAGE),
        html.Div(className="grid-2", children=[
            html.Div(className="panel", children=[dcc.Loading(dcc.Graph(id=ids.UNIVERSE_CORR_GRAPH, config=GRAPH_CONFIG,
                                                                        figure=empty_figure("run a screen")))]),
            html.Div(className="panel", children=[dcc.Loading(dcc.Graph(id=ids.UNIVERSE_COINT_GRAPH,
                                                                        config=GRAPH_CONFIG,
                                                                        figure=empty_figure("run a screen")))]),
        ]),
        html.Div(className="grid-2", children=[
            html.Div(className="panel", children=[html.H3("Candidate pairs (best first; rank 0 = fails a criterion)"),
                                                  table(ids.UNIVERSE_TABLE, columns=TABLE_COLUMNS, page_size=12)]),
            html.Div(className="panel", children=[dcc.Loading(dcc.Graph(id=ids.UNIVERSE_LEADLAG_GRAPH,
                                                                        config=GRAPH_CONFIG,
                                                                        figure=empty_figure("lead-lag of the top pair")))]),
        ]),
    ])


@callback(Output(ids.UNIVERSE_INSTRUMENTS, "options"), Output(ids.UNIVERSE_INSTRUMENTS, "value"),
          Input(ids.UNIVERSE_INSTRUMENTS, "id"))
def instruments(_id):
    gw = runtime.current().gateway
    try:
        found = [i["id"] for i in gw.instruments()]
        legs = sorted({leg for p in gw.pairs() if p["enabled"] for leg in (p["y"], p["x"])})
    except GatewayError:
        return [], []
    chosen = legs if len(legs) >= 2 else found  # start from the traded universe, not every upload
    return [{"label": short_name(i), "value": i} for i in found], chosen[:12]


@callback(Output(ids.UNIVERSE_CORR_GRAPH, "figure"), Output(ids.UNIVERSE_COINT_GRAPH, "figure"),
          Output(ids.UNIVERSE_TABLE, "data"), Output(ids.UNIVERSE_LEADLAG_GRAPH, "figure"),
          Output(ids.UNIVERSE_MESSAGE, "children"), Input(ids.UNIVERSE_RUN, "n_clicks"),
          State(ids.UNIVERSE_INSTRUMENTS, "value"), State(ids.UNIVERSE_TIMEFRAME, "value"),
          State(ids.UNIVERSE_BARS, "value"), prevent_initial_call=True)
def screen(_clicks, chosen, timeframe, bars):
    if not chosen or len(chosen) < 2:
        return no_update, no_update, no_update, no_update, message("Choose at least two instruments.", "info")
    gw = runtime.current().gateway
    notes = []
    try:
        corr = gw.matrix("correlation", chosen, timeframe, bars)
        corr_fig = heatmap(corr["matrix"], corr["instruments"], "correlation")
    except GatewayError as exc:
        corr_fig = empty_figure("correlation unavailable")
        notes.append(error_message(exc, "correlation matrix"))
    try:
        coint = gw.matrix("cointegration", chosen, timeframe, bars)
        coint_fig = heatmap(coint["matrix"], coint["instruments"], "cointegration")
    except GatewayError as exc:
        coint_fig = empty_figure("cointegration unavailable")
        notes.append(error_message(exc, "cointegration matrix"))
    rows: list[dict] = []
    try:
        result = gw.screen({"instruments": chosen, "timeframe": timeframe, "max_bars": bars})
        rows = [{c: fmt(r.get(c)) for c in TABLE_COLUMNS} for r in result.get("table", [])]
    except GatewayError as exc:
        notes.append(error_message(exc, "pair screen"))
    lead_fig = empty_figure("lead-lag needs a screened pair")
    if rows:
        top = rows[0]
        try:
            report = gw.analysis({"source": {"y": top["a"], "x": top["b"], "timeframe": timeframe, "max_bars": bars},
                                  "methods": ["ols"]}).get("report", {})
            found = lead_lag(report)
            lead_fig = lead_lag_figure(*found, f"Lead-lag {short_name(top['a'])} vs {short_name(top['b'])}") \
                if found else empty_figure("the gateway's report has no lead_lag section")
        except GatewayError as exc:
            notes.append(error_message(exc, "lead-lag"))
    return corr_fig, coint_fig, rows, lead_fig, notes


# registered last so the page record holds the layout function
dash.register_page(__name__, path="/universe", name="Universe", order=2, title="Pairs · universe", layout=layout)
