"""Colours and the dark plotly template shared by every figure (one place to change the look)."""

from __future__ import annotations

import plotly.graph_objects as go

BG = "#0d1117"
PANEL = "#161b22"
GRID = "#2a313c"
TEXT = "#e6edf3"
MUTED = "#8b949e"
GREEN = "#3fb950"  # long / stationary / healthy
RED = "#f85149"  # short / not stationary / down
AMBER = "#d29922"  # warning, simulated feed
BLUE = "#58a6ff"
PURPLE = "#bc8cff"
CYAN = "#39c5cf"
SERIES = (BLUE, AMBER, PURPLE, CYAN, GREEN, RED)
LONG_FILL = "rgba(63,185,80,0.13)"
SHORT_FILL = "rgba(248,81,73,0.13)"

TEMPLATE = go.layout.Template(layout=go.Layout(
    paper_bgcolor=PANEL, plot_bgcolor=PANEL, font={"color": TEXT, "size": 12},
    colorway=list(SERIES), margin={"l": 56, "r": 16, "t": 36, "b": 32},
    xaxis={"gridcolor": GRID, "zerolinecolor": GRID, "linecolor": GRID},
    yaxis={"gridcolor": GRID, "zerolinecolor": GRID, "linecolor": GRID},
    legend={"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom", "bgcolor": "rgba(0,0,0,0)"},
    hoverlabel={"bgcolor": BG, "font": {"color": TEXT}}, hovermode="x unified",
))


def base_figure(title: str | None = None, **layout: object) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, title={"text": title, "x": 0.01, "font": {"size": 14}} if title else None,
                      uirevision="keep", **layout)  # uirevision: live updates keep the user's zoom
    return fig


def empty_figure(message: str) -> go.Figure:
    """A figure that says why it is empty, instead of blank axes."""
    fig = base_figure()
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, annotations=[{
        "text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
        "font": {"color": MUTED, "size": 14}}])
    return fig
