"""Backtest: z-score strategy parameters, equity curve with drawdown and position, trade list, statistics."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from services.dashboard import ids, runtime
from services.dashboard.components import (
    BAR_TIMEFRAMES,
    card,
    dropdown,
    error_message,
    field,
    fmt,
    message,
    number,
    table,
)
from services.dashboard.figures.research import equity_figure
from services.dashboard.figures.theme import empty_figure
from services.dashboard.gateway import GatewayError
from services.dashboard.timefmt import utc_text

HEADLINE = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "net_pnl", "fees")


def layout(timeframe: str = "1m", **_query: str) -> html.Div:
    timeframe = timeframe if timeframe in BAR_TIMEFRAMES else "1m"  # ?timeframe= preselects
    return html.Div([
        html.Div(className="panel", children=[
            html.Div(className="controls", children=[
                field("Pair", dropdown(ids.BT_PAIR), width="420px"),
                field("Timeframe", dropdown(ids.BT_TIMEFRAME, BAR_TIMEFRAMES, timeframe), width="110px"),
                field("Bars", number(ids.BT_BARS, 5000, min=30, step=1), width="100px"),
                field("Window", number(ids.BT_WINDOW, 120, min=3, step=1), width="90px"),
                field("Entry", number(ids.BT_ENTRY, 2.0, min=0.1), width="80px"),
                field("Exit", number(ids.BT_EXIT, 0.5, min=0), width="80px"),
                field("Stop", number(ids.BT_STOP, 4.0, min=0.1), width="80px"),
                field("Hedge", dropdown(ids.BT_METHOD, ["ols", "kalman"], "ols"), width="100px"),
                field("Fee bps", number(ids.BT_FEE, 4.0, min=0), width="80px"),
                field("Slippage bps", number(ids.BT_SLIPPAGE, 1.0, min=0), width="100px"),
                field("", html.Button("Run backtest", id=ids.BT_RUN, className="btn btn-primary"), width="150px"),
            ]),
        ]),
        html.Div(id=ids.BT_MESSAGE),
        html.Div(id=ids.BT_STATS, className="cards"),
        html.Div(className="panel", children=[dcc.Loading(dcc.Graph(id=ids.BT_GRAPH, figure=empty_figure(
            "choose parameters and run"), config={"displaylogo": False}))]),
        html.Div(className="panel", children=[html.H3("Trades"), html.Div(id=ids.BT_TRADES)]),
    ])


@callback(Output(ids.BT_PAIR, "options"), Output(ids.BT_PAIR, "value"), Input(ids.BT_PAIR, "id"))
def pairs(_id):
    try:
        found = [p["id"] for p in runtime.current().gateway.pairs()]
    except GatewayError:
        return [], None
    return found, found[0] if found else None


def stat_cards(stats: dict) -> list:
    """Headline statistics first (coloured by sign), then the rest as small cards."""
    out = []
    for key in HEADLINE:
        if key in stats:
            value = stats[key]
            colour = "#3fb950" if isinstance(value, int | float) and value > 0 and key in ("total_return", "sharpe") \
                else "#f85149" if isinstance(value, int | float) and value < 0 else "#e6edf3"
            out.append(card(key.replace("_", " "), _show(key, value), colour=colour))
    out += [card(k.replace("_", " "), _show(k, v)) for k, v in stats.items()
            if k not in HEADLINE and isinstance(v, int | float | str)]
    return out


def _show(key: str, value: object) -> str:
    if not isinstance(value, float):
        return str(value)
    if any(word in key for word in ("return", "drawdown", "rate", "pct")):
        return f"{value:.2%}"
    return f"{value:,.4g}"


def trade_row(trade: dict) -> dict:
    """Times as UTC text (the gateway sends µs), numbers rounded for reading."""
    return {k.removesuffix("_us"): utc_text(v)[:19] if k.endswith("_ts_us") and isinstance(v, int) else fmt(v)
            for k, v in trade.items()}


@callback(Output(ids.BT_GRAPH, "figure"), Output(ids.BT_STATS, "children"), Output(ids.BT_TRADES, "children"),
          Output(ids.BT_MESSAGE, "children"), Input(ids.BT_RUN, "n_clicks"), State(ids.BT_PAIR, "value"),
          State(ids.BT_TIMEFRAME, "value"), State(ids.BT_BARS, "value"), State(ids.BT_WINDOW, "value"),
          State(ids.BT_ENTRY, "value"), State(ids.BT_EXIT, "value"), State(ids.BT_STOP, "value"),
          State(ids.BT_METHOD, "value"), State(ids.BT_FEE, "value"), State(ids.BT_SLIPPAGE, "value"),
          State(ids.TZ_OFFSET, "data"), prevent_initial_call=True)
def run(_clicks, pair, timeframe, bars, window, entry, exit_, stop, method, fee, slippage, tz):
    if not pair:
        return no_update, no_update, no_update, message("Choose a pair first.", "info")
    y, x = pair.split("~")
    body = {"source": {"y": y, "x": x, "timeframe": timeframe, "max_bars": bars},
            "signal": {"window": window, "entry": entry, "exit": exit_, "stop": stop, "method": method},
            "costs": {"taker_fee_bps": fee, "slippage_bps": slippage}}
    try:
        result = runtime.current().gateway.backtest(body)
    except GatewayError as exc:
        return empty_figure("no result"), [], [], error_message(exc, "backtest")
    trades = [trade_row(t) for t in result.get("trades", [])]
    trade_view = table("bt-trade-table", trades, page_size=12) if trades else message("No trade in this range.", "info")
    note = message(f"{result['n']:,} aligned bars of {timeframe}; {len(trades)} trades.", "ok")
    return equity_figure(result["curve"], tz), stat_cards(result.get("stats", {})), trade_view, note


# registered last so the page record holds the layout function
dash.register_page(__name__, path="/backtest", name="Backtest", order=4, title="Pairs · backtest", layout=layout)
