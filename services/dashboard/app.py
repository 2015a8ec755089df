"""The Dash application: pages, navigation, app-wide stores and the gateway status banner."""

from __future__ import annotations

import importlib

import dash
from dash import Dash, Input, Output, clientside_callback, dcc, html
from flask import jsonify

from services.dashboard import ids, runtime
from services.dashboard.gateway import GatewayError, feed_mode
from services.dashboard.settings import DashboardSettings

PAGES = ("live", "methods", "universe", "alerts", "backtest", "data", "system")


_simulated: list[str] = []  # feeds reporting simulated data, re-read every few banner refreshes


def simulated_feeds(feeds: dict) -> list[str]:
    return sorted(name for name, status in feeds.items() if feed_mode(name, status) == "simulated")


def _banner(tick: int | None) -> tuple[str, str]:
    rt = runtime.current()
    try:
        rt.gateway.health()
        if not (tick or 0) % 5:
            _simulated[:] = simulated_feeds(rt.gateway.system().get("feeds", {}))
    except GatewayError as exc:
        return f"Gateway unreachable ({rt.gateway.base_url}): {exc.message} — retrying", "banner banner-down"
    if _simulated:  # a trader must never mistake generated prices for a market
        return f"⚠ SIMULATED FEED ({', '.join(_simulated)}) — prices are generated, not a market", "banner banner-sim"
    feed = rt.feed
    if feed is not None and not feed.connected:
        return "Gateway up; live relay reconnecting (charts poll over HTTP meanwhile)", "banner banner-warn"
    return f"Gateway {rt.gateway.base_url} · live", "banner banner-ok"


def _layout() -> html.Div:
    links = [dcc.Link(page["name"], href=page["relative_path"], className="nav-link")
             for page in sorted(dash.page_registry.values(), key=lambda p: p.get("order", 0))]
    return html.Div(className="shell", children=[
        dcc.Store(id=ids.TZ_OFFSET, data=0),
        dcc.Interval(id=ids.STATUS_TICK, interval=2000),
        html.Header(className="topbar", children=[
            html.Div("PAIRS", className="brand"),
            html.Nav(id=ids.NAV, className="nav", children=links),
            html.Div(id=ids.GATEWAY_STATUS, className="banner", children="connecting to the gateway…"),
        ]),
        html.Main(className="content", children=[dash.page_container]),
    ])


def create_app(settings: DashboardSettings) -> Dash:
    """Build the app (one per process: Dash pages and global callbacks are process-wide)."""
    runtime.configure(settings)
    app = Dash(__name__, use_pages=True, pages_folder="", title="Pairs · desk", update_title=None,
               suppress_callback_exceptions=True)
    for name in PAGES:
        importlib.import_module(f"services.dashboard.pages.{name}")
    app.layout = _layout

    @app.server.get("/health")
    def health():  # the dashboard's own liveness (used by `pairs dashboard --check`)
        rt = runtime.current()
        try:
            gateway = "ok" if rt.gateway.health() else "error"
        except GatewayError as exc:
            gateway = exc.message
        return jsonify(status="ok", gateway=gateway, live_relay=bool(rt.feed and rt.feed.connected))

    return app


dash.callback(Output(ids.GATEWAY_STATUS, "children"), Output(ids.GATEWAY_STATUS, "className"),
              Input(ids.STATUS_TICK, "n_intervals"))(_banner)

# minutes east of UTC, from the browser (for local time on hover)
clientside_callback("function(_) { return -new Date().getTimezoneOffset(); }",
                    Output(ids.TZ_OFFSET, "data"), Input(ids.STATUS_TICK, "disabled"))  # fires once, on load
