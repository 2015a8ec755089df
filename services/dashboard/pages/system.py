"""System: feed status per connection (simulated made unmistakable), ingest rate, lag, heartbeats, leases, dead letters."""

from __future__ import annotations

import time
from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from services.dashboard import ids, runtime
from services.dashboard.components import card, error_message, message, table
from services.dashboard.figures import theme
from services.dashboard.figures.research import lag_figure
from services.dashboard.figures.theme import empty_figure
from services.dashboard.gateway import GatewayError, feed_mode
from services.dashboard.timefmt import age_text

MODE_COLOURS = {"live": theme.GREEN, "replay": theme.BLUE, "simulated": theme.AMBER}


def layout(**_query: str) -> html.Div:
    return html.Div([
        html.Div(id=ids.SYSTEM_MESSAGE),
        html.Div(className="panel", children=[html.H3("Feeds"), html.Div(id=ids.SYSTEM_FEEDS, className="cards")]),
        html.Div(className="panel", children=[html.H3("Ingest rate (ticks added per second)"),
                                              html.Div(id=ids.SYSTEM_RATES, className="cards")]),
        html.Div(className="grid-2", children=[
            html.Div(className="panel", children=[html.H3("Worker heartbeats"), table(ids.SYSTEM_WORKERS, columns=[
                "service", "instance", "heartbeat age", "expires in s", "status"])]),
            html.Div(className="panel", children=[html.H3("Pair ownership"), table(ids.SYSTEM_LEASES, columns=[
                "pair", "owner"])]),
        ]),
        html.Div(className="grid-2", children=[
            html.Div(className="panel", children=[dcc.Graph(id=ids.SYSTEM_LAG_GRAPH, config={"displaylogo": False})]),
            html.Div(className="panel", children=[html.H3("Dead letters"), table(ids.SYSTEM_DEADLETTERS, columns=[
                "group", "entries"])]),
        ]),
        dcc.Interval(id=ids.SYSTEM_TICK, interval=2000),
    ])


def feed_cards(feeds: dict[str, Any]) -> list:
    if not feeds:
        return [message("No feed has reported a status (is ingest running?).", "warn")]
    out = []
    for name, status in sorted(feeds.items()):
        mode = feed_mode(name, status)
        note = ""
        if isinstance(status, dict):
            age = time.time() - status["updated_us"] / 1e6 if isinstance(status.get("updated_us"), int) else None
            note = f"updated {age_text(age)} · " + ", ".join(
                f"{k}: {v}" for k, v in status.items()
                if k not in ("mode", "feed", "updated_us") and isinstance(v, str | int | float | bool))[:160]
        label = "⚠ simulated data — not a market" if mode == "simulated" else f"feed {name}"
        div = card(label, mode.upper(), note, MODE_COLOURS.get(mode, theme.MUTED))
        if mode == "simulated":
            div.className = "card card-simulated"
        out.append(div)
    return out


def rate_cards(rates: dict[str, float]) -> list:
    if not rates:
        return [message("No tick stream has grown since the previous refresh.", "info")]
    total = sum(rates.values())
    cards = [card("all instruments", f"{total:,.1f}/s", f"{len(rates)} tick streams", theme.GREEN if total else theme.MUTED)]
    return cards + [card(name, f"{rate:,.1f}/s", "ticks added") for name, rate in sorted(rates.items())]


def heartbeat_age(worker: dict[str, Any], now: float) -> float | None:
    """The gateway's age, or one read from the heartbeat body (``updated_us`` or ``ts`` in seconds)."""
    if worker.get("age_s") is not None:
        return worker["age_s"]
    body = worker.get("heartbeat")
    if isinstance(body, dict):
        if isinstance(body.get("updated_us"), int | float):
            return max(0.0, now - body["updated_us"] / 1e6)
        if isinstance(body.get("ts"), int | float):
            return max(0.0, now - float(body["ts"]))
    return None


@callback(Output(ids.SYSTEM_FEEDS, "children"), Output(ids.SYSTEM_WORKERS, "data"), Output(ids.SYSTEM_LEASES, "data"),
          Output(ids.SYSTEM_LAG_GRAPH, "figure"), Output(ids.SYSTEM_DEADLETTERS, "data"),
          Output(ids.SYSTEM_RATES, "children"), Output(ids.SYSTEM_MESSAGE, "children"),
          Input(ids.SYSTEM_TICK, "n_intervals"))
def refresh(_n):
    gw = runtime.current().gateway
    try:
        status = gw.system()
    except GatewayError as exc:
        empty = empty_figure("no data")
        return [], [], [], empty, [], [], error_message(exc, "system status")
    try:
        rates = rate_cards(gw.ingest_rates())
    except GatewayError as exc:
        rates = [error_message(exc, "ingest rate")]
    now = time.time()
    workers = []
    for w in status.get("workers", []):
        age = heartbeat_age(w, now)
        alive = w["expires_in_s"] > 0 and (age is None or age < 30)
        workers.append({"service": w["service"], "instance": w["instance"], "heartbeat age": age_text(age),
                        "expires in s": w["expires_in_s"], "status": "OK" if alive else "STALE"})
    leases = [{"pair": p, "owner": o} for p, o in sorted(status.get("leases", {}).items())]
    leases += [{"pair": p, "owner": "⚠ UNOWNED"} for p in status.get("pairs_unowned", [])]
    lag = status.get("lag", [])
    lag_fig = lag_figure(lag) if lag else empty_figure("no consumer groups yet")
    dead = [{"group": g, "entries": n} for g, n in sorted(status.get("deadletters", {}).items())]
    notes = []
    if status.get("pairs_unowned"):
        notes.append(message(f"{len(status['pairs_unowned'])} enabled pair(s) have no analytics worker.", "warn"))
    if any(n for n in status.get("deadletters", {}).values()):
        notes.append(message("Dead letters present: some entries could not be processed.", "warn"))
    return feed_cards(status.get("feeds", {})), workers, leases, lag_fig, dead, rates, notes


# registered last so the page record holds the layout function
dash.register_page(__name__, path="/system", name="System", order=6, title="Pairs · system", layout=layout)
