"""Delivery off the evaluation path: a bounded queue drained by a few tasks.

Webhooks get a JSON POST signed with HMAC-SHA256 (``payloads.SIGNATURE_HEADER``), retried with
exponential backoff on timeouts, connection errors, 408, 429 and 5xx; other 4xx are permanent. A
delivery that fails every attempt becomes a row in ``alert_delivery_deadletters``. The outcome is
recorded on the event row (``delivery_status``), so events still ``pending`` after a crash are queued
again at the next start (at-least-once; receivers dedupe on ``payloads.EVENT_ID_HEADER``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

import httpx
import psycopg
from psycopg.rows import dict_row

from services.alerts import store
from services.alerts.metrics import WEBHOOKS
from services.alerts.payloads import EVENT_ID_HEADER, SIGNATURE_HEADER, render, signature
from services.alerts.settings import AlertsSettings
from shared.alerts.spec import Channel
from shared.messages import AlertEvent

log = logging.getLogger(__name__)
_RETRYABLE_STATUS = {408, 425, 429}


@dataclass(frozen=True, slots=True)
class Job:
    event: AlertEvent
    channels: tuple[Channel, ...]


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    attempts: int
    error: str | None = None


class Deliverer:
    def __init__(self, settings: AlertsSettings, conn: psycopg.AsyncConnection) -> None:
        self.settings = settings
        self.conn = conn
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=settings.delivery_queue_size)
        self.http = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
        self._tasks: list[asyncio.Task[None]] = []
        self.inflight: set[str] = set()  # dedupe keys queued or being delivered (outbox skips them)
        self.finished: set[str] = set()  # done since the outbox scan last cleared it (its rows may be stale)
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        for i in range(self.settings.delivery_concurrency):
            self._tasks.append(asyncio.create_task(self._drain(), name=f"alerts-delivery-{i}"))

    def try_submit(self, job: Job) -> bool:
        """Queue a delivery without ever blocking evaluation; False when the queue is full.

        A refused event stays 'pending' in the database and the worker's periodic outbox scan queues it
        once there is room.
        """
        if job.event.dedupe_key in self.inflight:
            return True
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            return False
        self.inflight.add(job.event.dedupe_key)
        return True

    async def close(self, grace_s: float) -> None:
        """Finish queued deliveries within ``grace_s``; anything left stays 'pending' for the next start."""
        try:
            await asyncio.wait_for(self.queue.join(), timeout=grace_s)
        except TimeoutError:
            log.warning("delivery: %d events left pending at shutdown", self.queue.qsize())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.aclose()

    async def _drain(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self.deliver(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad event must not kill the delivery task
                log.exception("delivery of %s failed unexpectedly (stays 'pending' for the next start)",
                              job.event.dedupe_key)
                await self._reconnect_if_closed()
            finally:
                self.inflight.discard(job.event.dedupe_key)
                self.finished.add(job.event.dedupe_key)
                self.queue.task_done()

    async def deliver(self, job: Job) -> None:
        errors: list[str] = []
        attempts = 0
        for channel in job.channels:
            if channel.format == "log":
                log.warning("ALERT %s %s", job.event.kind, job.event.message, extra={"dedupe_key": job.event.dedupe_key})
                attempts += 1
                continue
            body = render(job.event, channel)
            result = await self._post(job.event, channel, body)
            attempts += result.attempts
            if not result.ok:
                errors.append(f"{channel.url}: {result.error}")
                await store.insert_dead_delivery(self.conn, job.event, channel, result.attempts, result.error or "", body)
        status = "failed" if errors else "delivered"
        await store.set_delivery(self.conn, job.event, status, attempts, "; ".join(errors) or None)
        if errors:
            self.failed += 1
        else:
            self.delivered += 1

    async def _reconnect_if_closed(self) -> None:
        if not self.conn.closed:
            return
        try:
            self.conn = await psycopg.AsyncConnection.connect(
                self.settings.database_dsn, autocommit=True, row_factory=dict_row,
                connect_timeout=int(self.settings.db_connect_timeout_s),
            )
        except psycopg.Error as exc:
            log.error("delivery: database reconnect failed: %s", exc)

    def _secret(self, channel: Channel) -> str | None:
        if channel.secret_ref:
            value = os.environ.get(channel.secret_ref)
            if value:
                return value
            log.warning("secret_ref %s is not set; using the global webhook secret", channel.secret_ref)
        return self.settings.webhook_secret.get_secret_value() if self.settings.webhook_secret else None

    async def _post(self, event: AlertEvent, channel: Channel, body: bytes) -> Attempt:
        headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event.dedupe_key}
        secret = self._secret(channel)
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
        delay = self.settings.webhook_backoff_s
        error = "not attempted"
        for attempt in range(1, self.settings.webhook_max_attempts + 1):
            try:
                response = await self.http.post(channel.url or "", content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                retryable = True
            else:
                if response.is_success:
                    WEBHOOKS.labels("delivered").inc()
                    return Attempt(True, attempt)
                error = f"HTTP {response.status_code}"
                retryable = response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS
            if not retryable:
                WEBHOOKS.labels("rejected").inc()
                return Attempt(False, attempt, error)
            WEBHOOKS.labels("retried" if attempt < self.settings.webhook_max_attempts else "failed").inc()
            if attempt < self.settings.webhook_max_attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.webhook_backoff_max_s)
        log.error("webhook %s failed %d times for %s: %s", channel.url, self.settings.webhook_max_attempts,
                  event.dedupe_key, error)
        return Attempt(False, self.settings.webhook_max_attempts, error)
