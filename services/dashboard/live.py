"""Follows the gateway's live WebSocket relay in a background thread and keeps recent metrics per pair.

The Dash server holds one relay connection for every enabled pair, so a browser refresh every second
costs a dictionary lookup, not a database query. Continuity is explicit: a caller passes the time it
last fetched history over HTTP; if the relay (re)connected after that, entries may have been missed
and ``since`` answers ``None`` so the caller refetches over HTTP instead of drawing a silent gap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

log = logging.getLogger(__name__)
MAX_PAIRS = 50  # the relay's subscription limit per client


def metric_row(record: dict[str, Any]) -> dict[str, Any]:
    """A metric record from the stream, shaped like an HTTP /metrics row keyed by ``ts_us``."""
    row = {k: v for k, v in record.items() if k not in ("type", "v", "ts_event_us", "ts_compute_us")}
    row["ts_us"] = int(record["ts_event_us"])
    return row


class LiveFeed:
    """Background relay client; ``since`` is safe to call from any callback thread."""

    def __init__(self, base_url: str, pairs: Callable[[], list[str]], token: str | None = None,
                 buffer: int = 3000, pairs_refresh_s: float = 15.0, open_timeout_s: float = 3.0) -> None:
        self.ws_base = base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/api/v1/live/ws"
        self._pairs = pairs
        self._headers = {"X-API-Token": token} if token else {}
        self._buffer = buffer
        self._pairs_refresh_s = pairs_refresh_s
        self._open_timeout_s = open_timeout_s
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected_at: float | None = None  # wall time of the current connection, None when down
        self.last_frame_at: float | None = None
        self.problem: str | None = None

    @property
    def connected(self) -> bool:
        return self.connected_at is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dashboard-live", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def since(self, pair: str, timeframe: str, seq: int, fetched_at: float) -> list[dict[str, Any]] | None:
        """Rows with ``seq`` above the caller's, or None when the relay cannot vouch for no gap."""
        with self._lock:
            if self.connected_at is None or self.connected_at > fetched_at:
                return None
            rows = self._rows.get((pair, timeframe))
            if not rows:
                return []
            if rows[0]["seq"] > seq + 1 and rows[0]["seq"] > 0:
                return None  # the buffer starts after the caller's last row: something fell out
            return [r for r in rows if r["seq"] > seq]

    # --- background thread ------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                pairs = sorted(self._pairs())[:MAX_PAIRS]
            except Exception as exc:  # the gateway may be down: say so and retry
                self.problem = f"pair list unavailable: {exc}"
                pairs = []
            if pairs:
                try:
                    self._follow(pairs)
                    backoff = 0.5
                except (OSError, WebSocketException, TimeoutError) as exc:
                    self.problem = f"live relay: {type(exc).__name__}: {exc}"
                    log.info("live relay disconnected: %s", exc)
                finally:
                    with self._lock:
                        self.connected_at = None
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _follow(self, pairs: list[str]) -> None:
        url = f"{self.ws_base}?since=%24&pairs=" + quote(",".join(pairs), safe=",~.")
        with connect(url, additional_headers=self._headers, open_timeout=self._open_timeout_s,
                     close_timeout=1) as ws:
            with self._lock:
                self._rows.clear()  # anything older may have a gap before this connection
                self.connected_at = time.time()
                self.problem = None
            refresh_at = time.monotonic() + self._pairs_refresh_s
            while not self._stop.is_set():
                try:
                    text = ws.recv(timeout=1.0)
                except TimeoutError:
                    text = None
                if text is not None:
                    self._on_frame(text)
                if time.monotonic() >= refresh_at:
                    refresh_at = time.monotonic() + self._pairs_refresh_s
                    try:
                        if sorted(self._pairs())[:MAX_PAIRS] != pairs:
                            return  # reconnect with the new subscription
                    except Exception:  # keep following; the next refresh retries the list
                        pass

    def _on_frame(self, text: str | bytes) -> None:
        frame = orjson.loads(text)
        self.last_frame_at = time.time()
        channel = frame.get("channel")
        if channel == "error":
            raise WebSocketException(frame.get("problem", "relay error"))
        if channel != "metrics":
            return
        record = frame.get("data") or {}
        try:
            row = metric_row(record)
            key = (frame["key"], record["timeframe"])
        except (KeyError, TypeError, ValueError):
            log.warning("unreadable metric frame skipped")
            return
        with self._lock:
            rows = self._rows.setdefault(key, deque(maxlen=self._buffer))
            if rows and row["seq"] <= rows[-1]["seq"]:
                return  # a replayed entry
            rows.append(row)
