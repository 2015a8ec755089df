"""Which streams go on which connection, and at which URL.

Combined streams (``<base><route>/stream?streams=a/b/c``) carry everything in the URL, so no
SUBSCRIBE control message is ever sent and the per-second control-message limit (5/s spot, 10/s
futures) cannot be hit. At most ``max_streams_per_connection`` (<= 1024) streams share a socket.
USD-M streams are routed by category (``/market`` vs ``/public``) and the two never share a socket:
on the wrong route Binance acks but sends nothing (DOMAIN_NOTES 3.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.live.settings import LiveSettings
from shared.errors import ConfigError, InvalidInput
from shared.instruments import Instrument

SPOT = "binance-spot"
USDM = "binance-usdm"
TRADE_KINDS = frozenset({"trade", "aggTrade"})
# USD-M categories: high-frequency book/trade streams are public, everything else is market.
USDM_PUBLIC_PREFIXES = ("bookTicker", "depth", "trade")


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One subscribed stream of one instrument."""

    instrument: str  # venue.SYMBOL
    venue: str
    symbol: str
    kind: str  # trade | aggTrade | kline_1m | bookTicker

    @property
    def name(self) -> str:
        return f"{self.symbol.lower()}@{self.kind}"

    @property
    def carries_trades(self) -> bool:
        return self.kind in TRADE_KINDS


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    venue: str
    route: str  # "" for spot, usdm_public_route or usdm_market_route
    base_url: str
    combined_path: str
    streams: tuple[StreamSpec, ...]

    @property
    def url(self) -> str:
        names = "/".join(s.name for s in self.streams)
        return f"{self.base_url}{self.route}{self.combined_path}?streams={names}"

    @property
    def label(self) -> str:
        first = self.streams[0].name if self.streams else "-"
        return f"{self.venue}{self.route or ''}[{first}+{len(self.streams) - 1}]"


def usdm_route(kind: str, settings: LiveSettings) -> str:
    if kind.startswith(USDM_PUBLIC_PREFIXES) and not kind.startswith("aggTrade"):
        return settings.usdm_public_route
    return settings.usdm_market_route


def subscriptions(settings: LiveSettings) -> list[StreamSpec]:
    """The stream list: one trade-carrying stream per instrument plus the optional status streams."""
    out: list[StreamSpec] = []
    seen: set[str] = set()
    for text in settings.instruments:
        try:
            inst = Instrument.parse(text)
        except InvalidInput as exc:
            raise ConfigError(str(exc)) from exc
        if inst.venue not in (SPOT, USDM):
            raise ConfigError(f"live ingest supports {SPOT} and {USDM}, not {inst.venue!r} ({text})")
        if inst.id in seen:
            continue
        seen.add(inst.id)
        kinds = [settings.kind_for(inst.id), *settings.status_streams]
        out += [StreamSpec(inst.id, inst.venue, inst.symbol, k) for k in kinds]
    if not out:
        raise ConfigError("no instruments configured for live ingest")
    return out


def plan_connections(streams: list[StreamSpec], settings: LiveSettings) -> list[ConnectionPlan]:
    """Group streams by (venue, route) and cut each group into sockets of <= max streams."""
    groups: dict[tuple[str, str], list[StreamSpec]] = {}
    for spec in streams:
        route = usdm_route(spec.kind, settings) if spec.venue == USDM else ""
        groups.setdefault((spec.venue, route), []).append(spec)
    plans: list[ConnectionPlan] = []
    size = settings.max_streams_per_connection
    for (venue, route), specs in groups.items():
        base = settings.usdm_ws_base_url if venue == USDM else settings.spot_ws_base_url
        for i in range(0, len(specs), size):
            plans.append(ConnectionPlan(venue, route, base.rstrip("/"), settings.combined_path, tuple(specs[i : i + size])))
    return plans
