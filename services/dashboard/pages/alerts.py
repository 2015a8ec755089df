"""Alerts: create / edit / enable / delete rules (the gateway validates), live firing feed, filtered history."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from services.dashboard import ids, runtime
from services.dashboard.components import (
    METRIC_TIMEFRAMES,
    dropdown,
    error_message,
    field,
    message,
    number,
    table,
)
from services.dashboard.gateway import GatewayError

ALL_PAIRS = "__all__"
RULE_COLUMNS = ["id", "name", "pair", "timeframe", "kind", "expression", "enabled", "cooldown_s"]
EVENT_COLUMNS = ["ts", "rule_id", "rule_name", "pair", "timeframe", "kind", "message", "delivery_status"]
EVENT_KINDS = ["trigger", "clear", "entry_long", "entry_short", "exit", "stop"]


def layout(**_query: str) -> html.Div:
    form = html.Div(className="panel", children=[
        html.H3("Rule", id="alert-form-title"),
        html.Div(className="controls", children=[
            field("Name", dcc.Input(id=ids.ALERT_NAME, type="text", className="input", placeholder="wide spread"),
                  width="220px"),
            field("Pair", dropdown(ids.ALERT_PAIR, value=ALL_PAIRS), width="380px"),
            field("Timeframe", dropdown(ids.ALERT_TIMEFRAME, METRIC_TIMEFRAMES, "1m"), width="110px"),
            field("Kind", dropdown(ids.ALERT_KIND, ["condition", "signal"], "condition"), width="130px"),
        ]),
        html.Div(className="controls", children=[
            field("Condition (e.g. |z| > 2 and corr > 0.7)",
                  dcc.Input(id=ids.ALERT_CONDITION, type="text", className="input", value="|z| > 2"), width="340px"),
            field("Clear (optional, e.g. |z| < 1.5)",
                  dcc.Input(id=ids.ALERT_CLEAR, type="text", className="input"), width="240px"),
            field("Signal entry |z|", number(ids.ALERT_ENTRY, 2.0), width="110px"),
            field("exit", number(ids.ALERT_EXIT, 0.5), width="80px"),
            field("stop", number(ids.ALERT_STOP, 4.0), width="80px"),
            field("Cooldown s", number(ids.ALERT_COOLDOWN, 0, min=0), width="100px"),
            field("", dcc.Checklist(id=ids.ALERT_ENABLED, options=[{"label": " enabled", "value": "on"}],
                                    value=["on"]), width="100px"),
        ]),
        html.Div(className="controls", children=[
            html.Button("Save rule", id=ids.ALERT_SAVE, className="btn btn-primary"),
            html.Button("New rule", id=ids.ALERT_NEW, className="btn"),
        ]),
        html.Div(id=ids.ALERT_FORM_MESSAGE),
        dcc.Store(id=ids.ALERT_RULE_ID),
        dcc.Store(id=ids.ALERT_REFRESH, data=0),
    ])
    rules = html.Div(className="panel", children=[
        html.H3("Rules"),
        table(ids.ALERT_RULES_TABLE, columns=RULE_COLUMNS, row_selectable="single", page_size=10),
        html.Div(className="controls", children=[
            html.Button("Edit selected", id=ids.ALERT_EDIT, className="btn"),
            html.Button("Enable / disable", id=ids.ALERT_TOGGLE, className="btn"),
            html.Button("Delete", id=ids.ALERT_DELETE, className="btn btn-danger"),
        ]),
    ])
    feed = html.Div(className="panel", children=[
        html.H3("Firing now (live feed)"), html.Div(id=ids.ALERT_FEED, className="feed"),
        dcc.Interval(id=ids.ALERT_FEED_TICK, interval=2000),
    ])
    history = html.Div(className="panel", children=[
        html.H3("History"),
        html.Div(className="controls", children=[
            field("Pair", dcc.Dropdown(id=ids.ALERT_HISTORY_PAIR, placeholder="any", className="dropdown"),
                  width="380px"),
            field("Kind", dcc.Dropdown(id=ids.ALERT_HISTORY_KIND, options=EVENT_KINDS, placeholder="any",
                                       className="dropdown"), width="150px"),
            field("Rule id", number(ids.ALERT_HISTORY_RULE, None, min=1, step=1), width="100px"),
        ]),
        table(ids.ALERT_HISTORY_TABLE, columns=EVENT_COLUMNS, page_size=12),
    ])
    return html.Div([form, html.Div(className="grid-2", children=[rules, feed]), history])


@callback(Output(ids.ALERT_PAIR, "options"), Output(ids.ALERT_HISTORY_PAIR, "options"),
          Input(ids.ALERT_REFRESH, "data"))
def pair_options(_refresh: int):
    try:
        pairs = [p["id"] for p in runtime.current().gateway.pairs()]
    except GatewayError:
        pairs = []
    return [{"label": "all pairs", "value": ALL_PAIRS}, *pairs], pairs


def rule_body(name: str | None, pair: str | None, timeframe: str, kind: str, condition: str | None,
              clear: str | None, entry: Any, exit_: Any, stop: Any, cooldown: Any, enabled: list | None) -> dict:
    """The gateway's RuleIn body from the form (the gateway does the validation and names bad fields)."""
    body: dict[str, Any] = {"name": (name or "").strip(), "pair": None if pair in (None, ALL_PAIRS) else pair,
                            "timeframe": timeframe, "kind": kind, "enabled": bool(enabled),
                            "cooldown_s": cooldown if cooldown is not None else 0}
    if kind == "signal":
        body["signal"] = {"entry": entry, "exit": exit_, "stop": stop}
    else:
        body["condition"] = (condition or "").strip()
        if clear and clear.strip():
            body["clear"] = clear.strip()
    return body


@callback(Output(ids.ALERT_FORM_MESSAGE, "children"), Output(ids.ALERT_REFRESH, "data"),
          Output(ids.ALERT_RULE_ID, "data", allow_duplicate=True),
          Input(ids.ALERT_SAVE, "n_clicks"),
          State(ids.ALERT_RULE_ID, "data"), State(ids.ALERT_NAME, "value"), State(ids.ALERT_PAIR, "value"),
          State(ids.ALERT_TIMEFRAME, "value"), State(ids.ALERT_KIND, "value"), State(ids.ALERT_CONDITION, "value"),
          State(ids.ALERT_CLEAR, "value"), State(ids.ALERT_ENTRY, "value"), State(ids.ALERT_EXIT, "value"),
          State(ids.ALERT_STOP, "value"), State(ids.ALERT_COOLDOWN, "value"), State(ids.ALERT_ENABLED, "value"),
          State(ids.ALERT_REFRESH, "data"), prevent_initial_call=True)
def save(_clicks, rule_id, *form_and_refresh):
    *form, refresh = form_and_refresh
    body = rule_body(*form)
    gw = runtime.current().gateway
    try:
        saved = gw.replace_rule(rule_id, body) if rule_id else gw.create_rule(body)
    except GatewayError as exc:
        return error_message(exc, "rule not saved"), no_update, no_update
    verb = "updated" if rule_id else "created"
    return message(f"Rule {saved['id']} {verb}: {saved['expression']}", "ok"), (refresh or 0) + 1, saved["id"]


@callback(Output(ids.ALERT_RULES_TABLE, "data"), Input(ids.ALERT_REFRESH, "data"), Input(ids.ALERT_FEED_TICK, "n_intervals"))
def rules_table(_refresh, n):
    if ctx.triggered_id == ids.ALERT_FEED_TICK and n and n % 5:  # other users' edits show within 10 s
        return no_update
    try:
        rules = runtime.current().gateway.rules()
    except GatewayError:
        return no_update
    return [{c: r.get(c) if c != "pair" else (r.get("pair") or "all pairs") for c in RULE_COLUMNS} for r in rules]


@callback(Output(ids.ALERT_FORM_MESSAGE, "children", allow_duplicate=True),
          Output(ids.ALERT_REFRESH, "data", allow_duplicate=True), Output(ids.ALERT_RULE_ID, "data"),
          Output(ids.ALERT_NAME, "value"), Output(ids.ALERT_PAIR, "value"), Output(ids.ALERT_TIMEFRAME, "value"),
          Output(ids.ALERT_KIND, "value"), Output(ids.ALERT_CONDITION, "value"), Output(ids.ALERT_CLEAR, "value"),
          Output(ids.ALERT_COOLDOWN, "value"), Output("alert-form-title", "children"),
          Input(ids.ALERT_EDIT, "n_clicks"), Input(ids.ALERT_TOGGLE, "n_clicks"), Input(ids.ALERT_DELETE, "n_clicks"),
          Input(ids.ALERT_NEW, "n_clicks"),
          State(ids.ALERT_RULES_TABLE, "data"), State(ids.ALERT_RULES_TABLE, "selected_rows"),
          State(ids.ALERT_REFRESH, "data"), prevent_initial_call=True)
def act_on_selected(_e, _t, _d, _n, data, selected, refresh):
    keep = (no_update,) * 9
    if ctx.triggered_id == ids.ALERT_NEW:
        return None, no_update, None, "", ALL_PAIRS, "1m", "condition", "|z| > 2", "", 0, "New rule"
    if not selected or not data or selected[0] >= len(data):
        return (message("Select a rule in the table first.", "info"), no_update, *keep)
    rule_id = data[selected[0]]["id"]
    gw = runtime.current().gateway
    try:
        if ctx.triggered_id == ids.ALERT_DELETE:
            gw.delete_rule(rule_id)
            return (message(f"Rule {rule_id} deleted.", "ok"), (refresh or 0) + 1, None, *keep[1:])
        if ctx.triggered_id == ids.ALERT_TOGGLE:
            rule = gw.set_rule_enabled(rule_id, not data[selected[0]]["enabled"])
            state = "enabled" if rule["enabled"] else "disabled"
            return (message(f"Rule {rule_id} {state}.", "ok"), (refresh or 0) + 1, *keep)
        rule = gw.get(f"/alerts/rules/{rule_id}")
    except GatewayError as exc:
        return (error_message(exc, f"rule {rule_id}"), no_update, *keep)
    condition = rule["expression"] if rule["kind"] == "condition" else ""
    return (message(f"Editing rule {rule_id}; Save replaces it.", "info"), no_update, rule_id, rule["name"],
            rule["pair"] or ALL_PAIRS, rule["timeframe"], rule["kind"], condition, "", rule["cooldown_s"],
            f"Rule {rule_id} (editing)")


def _event_rows(events: list[dict]) -> list[dict]:
    return [{c: (e.get(c) or "")[:19].replace("T", " ") + " UTC" if c == "ts" else e.get(c) for c in EVENT_COLUMNS}
            for e in events]


@callback(Output(ids.ALERT_FEED, "children"), Input(ids.ALERT_FEED_TICK, "n_intervals"))
def live_feed(_n):
    try:
        events = runtime.current().gateway.events(limit=15)["data"]
    except GatewayError as exc:
        return error_message(exc, "alert events")
    if not events:
        return message("No alert has fired yet.", "info")
    return [html.Div(className=f"feed-item feed-{e['kind']}", children=[
        html.Span(e["ts"][:19].replace("T", " ") + " UTC", className="feed-time", title="event time (UTC)"),
        html.Span(e["kind"].replace("_", " ").upper(), className="feed-kind"),
        html.Span(f"{e['rule_name']} · {e['pair']} {e['timeframe']}", className="feed-rule"),
        html.Div(e["message"], className="feed-message"),
    ]) for e in events]


@callback(Output(ids.ALERT_HISTORY_TABLE, "data"), Input(ids.ALERT_HISTORY_PAIR, "value"),
          Input(ids.ALERT_HISTORY_KIND, "value"), Input(ids.ALERT_HISTORY_RULE, "value"),
          Input(ids.ALERT_REFRESH, "data"), Input(ids.ALERT_FEED_TICK, "n_intervals"))
def history(pair, kind, rule_id, _refresh, n):
    if ctx.triggered_id == ids.ALERT_FEED_TICK and (n or 0) % 3:  # new firings reach the history within 6 s
        return no_update
    try:
        events = runtime.current().gateway.events(pair=pair, kind=kind, rule_id=rule_id, limit=500)["data"]
    except GatewayError:
        return []
    return _event_rows(events)


# registered last so the page record holds the layout function
dash.register_page(__name__, path="/alerts", name="Alerts", order=3, title="Pairs · alerts", layout=layout)
