"""A Binance REST client that keeps inside the IP weight budget and never ignores Retry-After.

Binance reports the weight used in the current minute in ``X-MBX-USED-WEIGHT-1M``. Over the limit it
answers 429 with ``Retry-After``; ignoring that escalates to 418 bans of 2 min to 3 days
(DOMAIN_NOTES 3.4, 4.3). So: requests go out one at a time, none before a Retry-After has expired,
and a request that would cross ``limit * safety`` waits for the next minute window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.errors import PairsError, TransientError

log = logging.getLogger(__name__)

WEIGHT_HEADER = "x-mbx-used-weight-1m"
THROTTLE_STATUSES = (429, 418)
_RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class RestRejected(PairsError):
    """Binance refused the request itself (4xx other than 429/418): retrying will not help."""


@dataclass
class RestStats:
    requests: int = 0
    throttled_429: int = 0
    banned_418: int = 0
    server_errors: int = 0
    used_weight_1m: int = 0
    waits_for_weight: int = 0
    blocked_until_wall: float = 0.0  # epoch seconds; 0 when not blocked
    last_status: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "errors"}
        out["last_errors"] = self.errors[-5:]
        return out


class WeightedRestClient:
    def __init__(
        self,
        base_url: str,
        weight_limit_1m: int,
        safety_fraction: float,
        timeout_s: float,
        default_retry_after_s: float,
        api_key: str = "",
    ) -> None:
        headers = {"X-MBX-APIKEY": api_key} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers)
        self._budget = int(weight_limit_1m * safety_fraction)
        self._default_retry_after_s = default_retry_after_s
        self._lock = asyncio.Lock()
        self._blocked_until = 0.0  # monotonic
        self._weight_minute = -1  # wall-clock minute the header value belongs to
        self.stats = RestStats()

    async def close(self) -> None:
        await self._http.aclose()

    @property
    def blocked_for_s(self) -> float:
        return max(0.0, self._blocked_until - time.monotonic())

    async def get_json(self, path: str, params: dict[str, Any], weight: int, deadline: float) -> Any:
        """GET ``path``; retries throttling and transient failures until ``deadline`` (monotonic).

        Raises ``TransientError`` when the deadline passes and ``RestRejected`` on a 4xx answer.
        """
        attempt = 0
        async with self._lock:
            while True:
                await self._wait_until(self._blocked_until, deadline, "Retry-After")
                await self._wait_for_weight(weight, deadline)
                try:
                    resp = await self._http.get(path, params=params)
                except httpx.HTTPError as exc:
                    self.stats.errors.append(f"{path}: {exc!r}")
                    attempt = await self._retry_pause(attempt, deadline, f"{path}: {exc!r}")
                    continue
                self.stats.requests += 1
                self.stats.last_status = resp.status_code
                self._note_weight(resp)
                if resp.status_code in THROTTLE_STATUSES:
                    self._throttled(resp)
                    continue
                if resp.status_code >= 500:
                    self.stats.server_errors += 1
                    attempt = await self._retry_pause(attempt, deadline, f"{path}: HTTP {resp.status_code}")
                    continue
                if resp.status_code >= 400:
                    raise RestRejected(f"GET {path} {params} -> {resp.status_code}: {resp.text[:200]}")
                try:
                    return resp.json()
                except ValueError as exc:
                    attempt = await self._retry_pause(attempt, deadline, f"{path}: bad JSON {exc}")

    def _throttled(self, resp: httpx.Response) -> None:
        if resp.status_code == 418:
            self.stats.banned_418 += 1
        else:
            self.stats.throttled_429 += 1
        retry_after = _retry_after_s(resp.headers.get("retry-after"), self._default_retry_after_s)
        self._blocked_until = max(self._blocked_until, time.monotonic() + retry_after)
        self.stats.blocked_until_wall = time.time() + retry_after
        log.warning("binance REST %s: backing off %.1f s (Retry-After)", resp.status_code, retry_after)

    def _note_weight(self, resp: httpx.Response) -> None:
        raw = resp.headers.get(WEIGHT_HEADER)
        if raw is None:
            return
        try:
            self.stats.used_weight_1m = int(raw)
        except ValueError:
            return
        self._weight_minute = int(time.time() // 60)

    async def _wait_for_weight(self, weight: int, deadline: float) -> None:
        minute = int(time.time() // 60)
        if minute != self._weight_minute or self.stats.used_weight_1m + weight <= self._budget:
            return
        self.stats.waits_for_weight += 1
        wait_s = (minute + 1) * 60 - time.time() + 0.05
        log.info("binance REST weight %d/%d used: waiting %.1f s for the next minute", self.stats.used_weight_1m,
                 self._budget, wait_s)
        await self._wait_until(time.monotonic() + wait_s, deadline, "weight budget")
        self.stats.used_weight_1m = 0

    async def _wait_until(self, until: float, deadline: float, why: str) -> None:
        now = time.monotonic()
        if until <= now:
            return
        if until > deadline:
            raise TransientError(f"binance REST blocked by {why} for {until - now:.1f} s, past the deadline")
        await asyncio.sleep(until - now)

    async def _retry_pause(self, attempt: int, deadline: float, what: str) -> int:
        delay = _RETRY_DELAYS_S[min(attempt, len(_RETRY_DELAYS_S) - 1)]
        if time.monotonic() + delay > deadline:
            raise TransientError(f"binance REST failing past the deadline: {what}")
        log.warning("binance REST transient failure (%s); retry in %.1f s", what, delay)
        await asyncio.sleep(delay)
        return attempt + 1


def _retry_after_s(header: str | None, default_s: float) -> float:
    if not header:
        return default_s
    try:
        return max(0.0, float(header))
    except ValueError:
        return default_s
