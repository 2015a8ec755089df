"""Live pair view: candles of both legs, spread and z-score with signal shading, hedge ratio, stat cards.

The first draw (or a change of pair / timeframe / thresholds) fetches history over HTTP; every
refresh after that only sends what is new as a ``Patch`` (rows from the live relay, or from HTTP when
the relay cannot vouch for continuity), and rebuilds once a trace grows past 1.5 × the point cap.
"""

from __future__ import annotations

import time
from typing import Any

import dash
from dash import Input, Output, Patch, State, callback, ctx, dcc, html, no_update

from services.dashboard import ids, runtime
from services.dashboard.components import (
    card,
    dropdown,
    error_message,
    field,
    message,
    number,
    pair_label,
    table,
)
from services.dashboard.figures import pair as pf
from services.dashboard.figures.theme import empty_figure
from services.dashboard.gateway import Gateway, GatewayError
from services.dashboard.timefmt import age_text, to_us

GRAPH_CONFIG = {"displaylogo": False, "scrollZoom": True}
SNAPSHOT_COLUMNS = ["pair", "timeframe", "z", "zone", "beta", "corr", "adf_p", "half_life", "last bar"]
THRESHOLD_SHAPES = 5  # pf.threshold_shapes draws five lines before the region bands


def layout(pair: str | None = None, timeframe: str | None = None, **_query: str) -> html.Div:
    """``?pair=Y~X&timeframe=1s`` preselects (links from alerts or other tools land on the right view)."""
    rt = runtime.current()
    return html.Div([
        html.Div(className="controls", children=[
            field("Pair", dropdown(ids.LIVE_PAIR, placeholder="loading pairs…"), width="420px"),
            field("Timeframe", dropdown(ids.LIVE_TIMEFRAME), width="110px"),
            field("Entry |z|", number(ids.LIVE_ENTRY, 2.0, min=0.1), width="90px"),
            field("Exit |z|", number(ids.LIVE_EXIT, 0.5, min=0), width="90px"),
        ]),
        html.Div(id=ids.LIVE_MESSAGE),
        html.Div(id=ids.LIVE_CARDS, className="cards"),
        html.Div(className="grid-2", children=[
            html.Div(className="panel", children=[html.H3("Spread and z-score"),
                                                  dcc.Graph(id=ids.LIVE_SPREAD_GRAPH, config=GRAPH_CONFIG)]),
            html.Div(className="panel", children=[html.H3("Hedge ratio and correlation"),
                                                  dcc.Graph(id=ids.LIVE_HEDGE_GRAPH, config=GRAPH_CONFIG)]),
        ]),
        html.Div(className="panel", children=[html.H3("Legs: candles and volume"),
                                              dcc.Graph(id=ids.LIVE_PRICE_GRAPH, config=GRAPH_CONFIG)]),
        html.Div(className="panel", children=[html.H3("All pairs (latest metric; click a row to open it)"),
                                              table(ids.LIVE_SNAPSHOT, columns=SNAPSHOT_COLUMNS, page_size=20)]),
        dcc.Interval(id=ids.LIVE_TICK, interval=rt.settings.refresh_ms),
        dcc.Store(id=ids.LIVE_STATE),
        dcc.Store(id=ids.LIVE_WANTED, data={"pair": pair, "timeframe": timeframe}),
    ])


@callback(Output(ids.LIVE_PAIR, "options"), Output(ids.LIVE_PAIR, "value"),
          Input(ids.LIVE_TICK, "n_intervals"), State(ids.LIVE_PAIR, "options"), State(ids.LIVE_PAIR, "value"),
          State(ids.LIVE_WANTED, "data"))
def pair_options(n: int | None, options: list | None, value: str | None, wanted: dict | None):
    if options and (n or 0) % 15:  # re-read the pair list every 15 refreshes, not every second
        return no_update, no_update
    try:
        pairs = [p for p in runtime.current().gateway.pairs() if p["enabled"]]
    except GatewayError:
        return no_update, no_update
    opts = [{"label": pair_label(p["id"]), "value": p["id"]} for p in pairs]
    known = [o["value"] for o in opts]
    if value not in known:
        value = (wanted or {}).get("pair")
    return opts, value if value in known else (known[0] if known else None)


@callback(Output(ids.LIVE_TIMEFRAME, "options"), Output(ids.LIVE_TIMEFRAME, "value"),
          Input(ids.LIVE_PAIR, "value"), State(ids.LIVE_TIMEFRAME, "value"), State(ids.LIVE_WANTED, "data"))
def timeframe_options(pair: str | None, current: str | None, wanted: dict | None):
    if not pair:
        return [], None
    try:
        config = next((p for p in runtime.current().gateway.pairs() if p["id"] == pair), None)
    except GatewayError:
        return no_update, no_update
    tfs = list(config["timeframes"]) if config else ["1m"]
    preferred = current or (wanted or {}).get("timeframe")
    choice = preferred if preferred in tfs else ("1m" if "1m" in tfs else tfs[0])
    return tfs, choice


def _thresholds(entry: Any, exit_: Any) -> tuple[float, float] | str:
    try:
        entry_f, exit_f = float(entry), float(exit_)
    except (TypeError, ValueError):
        return "entry and exit must be numbers"
    if not 0 <= exit_f < entry_f:
        return "thresholds must satisfy 0 ≤ exit < entry"
    return entry_f, exit_f


def _bar_timeframe(timeframe: str) -> str:
    return "1s" if timeframe == "tick" else timeframe


def _full(gw: Gateway, pair: str, timeframe: str, entry: float, exit_: float, tz: int | None, cap: int):
    y, x = pair.split("~")
    fetched_at = time.time()
    rows = gw.metrics(pair, timeframe, limit=5 * cap)
    bars_tf = _bar_timeframe(timeframe)
    y_bars = gw.bars(y, bars_tf, max_points=cap)
    x_bars = gw.bars(x, bars_tf, max_points=cap)
    shown = pf.decimate_rows(rows, cap)
    shapes, side, open_start = pf.region_shapes(rows, entry, exit_)
    method = rows[-1]["method"] if rows else "ols"
    spread = pf.spread_figure(shown, entry, exit_, tz)
    spread.update_layout(shapes=pf.threshold_shapes(entry, exit_) + shapes)  # episodes from every row, not the shown
    state = {"pair": pair, "timeframe": timeframe, "entry": entry, "exit": exit_, "tz": tz, "fetched_at": fetched_at,
             "seq": rows[-1]["seq"] if rows else -1, "last_ts": rows[-1]["ts_us"] if rows else None,
             "y_bar": y_bars[-1]["ts_us"] if y_bars else None, "x_bar": x_bars[-1]["ts_us"] if x_bars else None,
             "points": len(shown), "side": side, "open_start": open_start,
             "shapes": THRESHOLD_SHAPES + len(shapes), "latest": rows[-1] if rows else None}
    price = pf.price_figure(y_bars, x_bars, y, x, tz) if (y_bars or x_bars) else empty_figure("no bars yet")
    return spread, pf.hedge_figure(shown, method, tz), price, state


def _new_rows(gw: Gateway, state: dict) -> list[dict]:
    feed = runtime.current().feed
    rows = None
    if feed is not None:
        rows = feed.since(state["pair"], state["timeframe"], state["seq"], state["fetched_at"])
    if rows is None:  # no relay, or it cannot vouch for continuity: ask the database
        state["fetched_at"] = time.time()
        rows = [r for r in gw.metrics(state["pair"], state["timeframe"], start_us=state["last_ts"], limit=5000)
                if r["seq"] > state["seq"]]
    return rows


def _patch(gw: Gateway, state: dict, rows: list[dict]):
    spread, hedge, price = Patch(), Patch(), Patch()
    cols = pf.metric_columns(rows, state["tz"])
    for fig, traces in ((spread, (("spread", 0), ("zscore", 1))), (hedge, (("beta", 0), ("correlation", 1)))):
        for name, index in traces:
            fig["data"][index]["x"].extend(cols["x"])
            fig["data"][index]["y"].extend(cols[name])
            fig["data"][index]["customdata"].extend(cols["local"])
    replace, append, state["side"], state["open_start"] = pf.extend_regions(
        state["side"], state["open_start"], rows, state["entry"], state["exit"])
    if replace is not None:
        spread["layout"]["shapes"][state["shapes"] - 1] = replace
    for shape in append:
        spread["layout"]["shapes"].append(shape)
    state["shapes"] += len(append)
    state["points"] += len(rows)
    state["seq"], state["last_ts"], state["latest"] = rows[-1]["seq"], rows[-1]["ts_us"], rows[-1]
    y, x = state["pair"].split("~")
    for leg, key, first in ((y, "y_bar", 0), (x, "x_bar", 2)):
        bars = [b for b in gw.bars(leg, _bar_timeframe(state["timeframe"]), start_us=state[key], max_points=100_000)
                if state[key] is None or b["ts_us"] > state[key]]
        if bars:
            c = pf.bar_columns(bars, state["tz"])
            for name in ("x", "open", "high", "low", "close"):
                price["data"][first][name].extend(c[name])
            price["data"][first]["text"].extend(c["local"])
            price["data"][first + 1]["x"].extend(c["x"])
            price["data"][first + 1]["y"].extend(c["volume"])
            price["data"][first + 1]["customdata"].extend(c["local"])
            price["data"][first + 1]["marker"]["color"].extend(c["colour"])
            state[key] = bars[-1]["ts_us"]
    return spread, hedge, price


def _cards(state: dict) -> list:
    return [card(**c) for c in pf.stat_cards(state.get("latest"), state.get("side", "flat"), state["timeframe"])]


@callback(Output(ids.LIVE_SPREAD_GRAPH, "figure"), Output(ids.LIVE_HEDGE_GRAPH, "figure"),
          Output(ids.LIVE_PRICE_GRAPH, "figure"), Output(ids.LIVE_CARDS, "children"),
          Output(ids.LIVE_MESSAGE, "children"), Output(ids.LIVE_STATE, "data"),
          Input(ids.LIVE_TICK, "n_intervals"), Input(ids.LIVE_PAIR, "value"), Input(ids.LIVE_TIMEFRAME, "value"),
          Input(ids.LIVE_ENTRY, "value"), Input(ids.LIVE_EXIT, "value"), Input(ids.TZ_OFFSET, "data"),
          State(ids.LIVE_STATE, "data"))
def refresh(_n, pair, timeframe, entry, exit_, tz, state):
    if not pair or not timeframe:
        empty = empty_figure("choose a pair (none configured yet?)")
        return empty, empty, empty, [], message("No pair selected.", "info"), None
    limits = _thresholds(entry, exit_)
    if isinstance(limits, str):
        return no_update, no_update, no_update, no_update, message(limits, "error"), no_update
    rt = runtime.current()
    cap = rt.settings.max_points
    same = (state and state["pair"] == pair and state["timeframe"] == timeframe and state["entry"] == limits[0]
            and state["exit"] == limits[1] and state["tz"] == tz and ctx.triggered_id == ids.LIVE_TICK
            and state["y_bar"] is not None and state["x_bar"] is not None)  # no candles drawn yet: redraw
    try:
        if not same:
            spread, hedge, price, state = _full(rt.gateway, pair, timeframe, *limits, tz, cap)
            return spread, hedge, price, _cards(state), _freshness(state), state
        rows = _new_rows(rt.gateway, state)
        if not rows:
            return no_update, no_update, no_update, _cards(state), _freshness(state), state
        if state["points"] + len(rows) > 1.5 * cap:  # keep every trace under the cap: redraw downsampled
            spread, hedge, price, state = _full(rt.gateway, pair, timeframe, *limits, tz, cap)
            return spread, hedge, price, _cards(state), _freshness(state), state
        spread, hedge, price = _patch(rt.gateway, state, rows)
        return spread, hedge, price, _cards(state), _freshness(state), state
    except GatewayError as exc:  # keep what is drawn, say why it is not moving; the next tick retries
        return no_update, no_update, no_update, no_update, error_message(exc, "live data"), no_update


def _freshness(state: dict) -> html.Div | None:
    latest = state.get("latest")
    if latest is None:
        return message("No metrics for this pair and timeframe yet (is the analytics worker running?).", "info")
    return None


@callback(Output(ids.LIVE_PAIR, "value", allow_duplicate=True), Output(ids.LIVE_TIMEFRAME, "value", allow_duplicate=True),
          Input(ids.LIVE_SNAPSHOT, "active_cell"), State(ids.LIVE_SNAPSHOT, "derived_viewport_data"),
          prevent_initial_call=True)
def open_from_overview(cell: dict | None, rows: list[dict] | None):
    """Clicking a row of the overview shows that pair and timeframe."""
    if not cell or not rows or cell.get("row", -1) >= len(rows):
        return no_update, no_update
    row = rows[cell["row"]]
    return row["pair"], row["timeframe"]


@callback(Output(ids.LIVE_SNAPSHOT, "data"), Input(ids.LIVE_TICK, "n_intervals"), State(ids.LIVE_ENTRY, "value"))
def snapshot(n: int | None, entry: Any):
    if n and n % 2:  # every other refresh is plenty for the overview
        return no_update
    try:
        rows = runtime.current().gateway.snapshot()
    except GatewayError:
        return no_update
    try:
        level = float(entry)
    except (TypeError, ValueError):
        level = 2.0
    now = time.time()
    out = []
    for r in rows:
        z = r.get("zscore")
        zone = "—" if z is None else "SHORT zone" if z > level else "LONG zone" if z < -level else "inside"
        out.append({"pair": r["pair"], "timeframe": r["timeframe"], "z": _round(z, 2), "zone": zone,
                    "beta": _round(r.get("beta"), 5), "corr": _round(r.get("correlation"), 3),
                    "adf_p": _round(r.get("adf_p"), 3), "half_life": _round(r.get("half_life"), 1),
                    "last bar": age_text(now - _ts_s(r["ts"]))})
    return out


def _round(value: Any, digits: int) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def _ts_s(value: str) -> float:
    return to_us(value) / 1e6


# registered last so the page record holds the layout function
dash.register_page(__name__, path="/", name="Live", order=0, title="Pairs · live", layout=layout)
