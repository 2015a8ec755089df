"""Small layout pieces shared by the pages: stat cards, messages, dark tables, labelled fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dash_table, dcc, html

from services.dashboard.figures import theme
from services.dashboard.gateway import GatewayDown, GatewayError, NotAvailable, Rejected

BAR_TIMEFRAMES = ["1s", "5s", "1m", "5m", "15m", "1h", "1d"]
METRIC_TIMEFRAMES = ["tick", *BAR_TIMEFRAMES]


def card(label: str, value: str, note: str = "", colour: str = theme.TEXT) -> html.Div:
    return html.Div(className="card", children=[
        html.Div(label, className="card-label"),
        html.Div(value, className="card-value", style={"color": colour}),
        html.Div(note, className="card-note"),
    ])


def message(text: str | Sequence[str], kind: str = "info") -> html.Div:
    """kind: info, ok, warn, error, unavailable."""
    lines = [text] if isinstance(text, str) else list(text)
    return html.Div(className=f"msg msg-{kind}", children=[html.Div(line) for line in lines])


def error_message(exc: GatewayError, what: str) -> html.Div:
    """How a gateway failure reads on a panel (``what`` names the panel's data)."""
    if isinstance(exc, NotAvailable):
        return message([f"{what}: not available from the gateway.", exc.message], "unavailable")
    if isinstance(exc, Rejected):
        return message([f"{what}: the gateway refused the request.", *exc.problems], "error")
    if isinstance(exc, GatewayDown):
        return message([f"{what}: gateway unreachable — retrying.", exc.message], "warn")
    return message(f"{what}: {exc.message}", "error")


def table(table_id: str, rows: list[dict[str, Any]] | None = None, columns: Sequence[str] | None = None,
          page_size: int = 15, **kwargs: Any) -> dash_table.DataTable:
    rows = rows or []
    columns = list(columns or (rows[0].keys() if rows else []))
    return dash_table.DataTable(
        id=table_id, data=rows, columns=[{"name": c, "id": c} for c in columns], page_size=page_size,
        sort_action="native", style_as_list_view=True,
        style_table={"overflowX": "auto"},
        style_header={"backgroundColor": theme.BG, "color": theme.MUTED, "fontWeight": "600",
                      "border": f"1px solid {theme.GRID}"},
        style_cell={"backgroundColor": theme.PANEL, "color": theme.TEXT, "border": f"1px solid {theme.GRID}",
                    "fontFamily": "ui-monospace, SFMono-Regular, Menlo, monospace", "fontSize": "12px",
                    "padding": "4px 8px", "textAlign": "left", "maxWidth": "420px", "overflow": "hidden",
                    "textOverflow": "ellipsis"},
        **kwargs,
    )


def field(label: str, component: Any, width: str = "180px") -> html.Div:
    return html.Div(className="field", style={"width": width}, children=[html.Label(label), component])


def dropdown(component_id: str, options: Sequence[Any] = (), value: Any = None, **kwargs: Any) -> dcc.Dropdown:
    return dcc.Dropdown(id=component_id, options=list(options), value=value, clearable=False,
                        className="dropdown", **kwargs)


def number(component_id: str, value: float | int | None, step: float | str = "any", **kwargs: Any) -> dcc.Input:
    return dcc.Input(id=component_id, type="number", value=value, step=step, debounce=True,
                     className="input", **kwargs)


def pair_label(pair_id: str) -> str:
    y, _, x = pair_id.partition("~")
    return f"{y.split('.')[-1]} / {x.split('.')[-1]}   ({pair_id})"


def fmt(value: Any, digits: int = 4) -> Any:
    """Table-friendly number: rounded floats, everything else unchanged."""
    if isinstance(value, float):
        return round(value, digits)
    return value
