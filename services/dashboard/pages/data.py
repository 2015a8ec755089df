"""Data: CSV export of a pair's metrics or either leg's bars, and CSV upload with the gateway's per-line report."""

from __future__ import annotations

import base64
import time

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from services.dashboard import ids, runtime
from services.dashboard.components import BAR_TIMEFRAMES, card, dropdown, error_message, field, message, table
from services.dashboard.gateway import GatewayError

RANGES = {"last hour": 3600, "last 24 hours": 86_400, "last 7 days": 7 * 86_400, "everything": None}
EXPORT_KINDS = {"metrics": "pair metrics", "y": "bars of the y leg", "x": "bars of the x leg"}


def layout(timeframe: str = "1m", **_query: str) -> html.Div:
    timeframe = timeframe if timeframe in BAR_TIMEFRAMES else "1m"  # ?timeframe= preselects
    export = html.Div(className="panel", children=[
        html.H3("Export CSV"),
        html.Div(className="controls", children=[
            field("Pair", dropdown(ids.DATA_PAIR), width="420px"),
            field("Timeframe", dropdown(ids.DATA_TIMEFRAME, BAR_TIMEFRAMES, timeframe), width="110px"),
            field("What", dropdown(ids.DATA_EXPORT_KIND, [{"label": v, "value": k} for k, v in EXPORT_KINDS.items()],
                                   "metrics"), width="180px"),
            field("Range", dropdown("data-range", list(RANGES), "last 24 hours"), width="150px"),
            field("", html.Button("Download CSV", id=ids.DATA_EXPORT, className="btn btn-primary"), width="160px"),
        ]),
        html.Div(id=ids.DATA_EXPORT_MESSAGE),
        dcc.Download(id=ids.DATA_DOWNLOAD),
    ])
    upload = html.Div(className="panel", children=[
        html.H3("Upload CSV (ticks or OHLC bars; stored as instruments upload.SYMBOL)"),
        html.Div(className="controls", children=[
            field("File holds", dropdown(ids.DATA_UPLOAD_KIND, ["ticks", "bars"], "ticks"), width="130px"),
            field("Symbol (if the file has none)", dcc.Input(id=ids.DATA_UPLOAD_SYMBOL, type="text", className="input",
                                                             placeholder="BTCUSDT"), width="220px"),
        ]),
        dcc.Upload(id=ids.DATA_UPLOAD, className="upload", multiple=False,
                   children=html.Div(["Drop a CSV here or ", html.A("choose a file")])),
        html.Div(id=ids.DATA_UPLOAD_REPORT),
    ])
    return html.Div([export, upload])


@callback(Output(ids.DATA_PAIR, "options"), Output(ids.DATA_PAIR, "value"), Input(ids.DATA_PAIR, "id"))
def pairs(_id):
    try:
        found = [p["id"] for p in runtime.current().gateway.pairs()]
    except GatewayError:
        return [], None
    return found, found[0] if found else None


@callback(Output(ids.DATA_DOWNLOAD, "data"), Output(ids.DATA_EXPORT_MESSAGE, "children"),
          Input(ids.DATA_EXPORT, "n_clicks"), State(ids.DATA_PAIR, "value"), State(ids.DATA_TIMEFRAME, "value"),
          State(ids.DATA_EXPORT_KIND, "value"), State("data-range", "value"), prevent_initial_call=True)
def export(_clicks, pair, timeframe, kind, range_name):
    if not pair:
        return no_update, message("Choose a pair first.", "info")
    seconds = RANGES.get(range_name)
    start = None if seconds is None else _iso(time.time() - seconds)
    gw = runtime.current().gateway
    try:
        if kind == "metrics":
            name, content = gw.export_csv("metrics", pair=pair, timeframe=timeframe, **{"from": start})
        else:
            leg = pair.split("~")[0 if kind == "y" else 1]
            name, content = gw.export_csv("bars", instrument=leg, timeframe=timeframe, **{"from": start})
    except GatewayError as exc:
        return no_update, error_message(exc, "export")
    lines = max(0, content.count(b"\n") - 1)
    return dcc.send_bytes(content, name), message(f"{name}: {lines:,} rows.", "ok")


def _iso(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


@callback(Output(ids.DATA_UPLOAD_REPORT, "children"), Input(ids.DATA_UPLOAD, "contents"),
          State(ids.DATA_UPLOAD, "filename"), State(ids.DATA_UPLOAD_KIND, "value"),
          State(ids.DATA_UPLOAD_SYMBOL, "value"), prevent_initial_call=True)
def upload(contents, filename, kind, symbol):
    if not contents:
        return no_update
    try:
        raw = base64.b64decode(contents.split(",", 1)[1])
    except (IndexError, ValueError):
        return message("The browser sent an unreadable file.", "error")
    try:
        report = runtime.current().gateway.upload(kind, filename or "upload.csv", raw, symbol=symbol)
    except GatewayError as exc:
        return error_message(exc, f"upload of {filename}")
    summary = html.Div(className="cards", children=[
        card("lines read", f"{report['lines']:,}"), card("accepted", f"{report['accepted']:,}"),
        card("rejected", f"{report['rejected']:,}", colour="#f85149" if report["rejected"] else "#e6edf3"),
        card("stored", f"{report['stored']:,}", ", ".join(report.get("instruments", []))),
        card("layout", report.get("layout") or "—", ", ".join(f"{k}: {v}" for k, v in
                                                            report.get("bars_written", {}).items())),
    ])
    errors = report.get("errors") or []
    problems = table("data-upload-errors", errors, ["line", "problem"], page_size=10) if errors else \
        message("Every line was valid.", "ok")
    return [summary, problems]


# registered last so the page record holds the layout function
dash.register_page(__name__, path="/data", name="Data", order=5, title="Pairs · data", layout=layout)
