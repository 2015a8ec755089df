"""The dashboard process's connections (gateway client, live relay), set once by ``create_app``.

Dash callbacks are module-level functions, so they reach the gateway through here rather than
through arguments; tests configure it with their own gateway URL.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.dashboard.gateway import Gateway
from services.dashboard.live import LiveFeed
from services.dashboard.settings import DashboardSettings


@dataclass
class Runtime:
    settings: DashboardSettings
    gateway: Gateway
    feed: LiveFeed | None


_current: Runtime | None = None


def configure(settings: DashboardSettings) -> Runtime:
    global _current
    if _current is not None:
        close()
    token = settings.token.get_secret_value() if settings.token else None
    gw = Gateway(settings.gateway_url, token=token, timeout_s=settings.request_timeout_s,
                 compute_timeout_s=settings.compute_timeout_s)
    feed = None
    if settings.live_relay:
        feed = LiveFeed(settings.gateway_url, pairs=lambda: [p["id"] for p in gw.pairs() if p["enabled"]], token=token)
        feed.start()
    _current = Runtime(settings, gw, feed)
    return _current


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the dashboard runtime is not configured (call create_app first)")
    return _current


def close() -> None:
    global _current
    if _current is not None:
        if _current.feed is not None:
            _current.feed.stop()
        _current.gateway.close()
        _current = None
