"""A reusable runner for long-lived workers: signals, a grace period, a heartbeat and ``--check``.

Usage in a service's ``__main__``::

    runner = ServiceRunner("analytics", settings, stats=worker.counters)
    return runner.run_sync(worker.run)          # worker.run(stop: asyncio.Event) -> None

    # healthcheck (compose ``pairs analytics --check``):
    return check_heartbeat(settings, "analytics")

Shutdown has two phases (as in arq): the first SIGINT/SIGTERM sets the stop event, and the work
coroutine is expected to finish its in-flight batch and return; if it has not returned after
``settings.shutdown_grace_s`` it is cancelled. A second signal cancels at once.

The heartbeat is a key (``Keys.heartbeat(service, instance)``) holding a JSON object with the
service's counters, rewritten every ``heartbeat_interval_s`` with a TTL of
``HEARTBEAT_TTL_SECONDS``, and deleted on a clean stop: a worker that dies or hangs simply stops
being listed. ``healthy: false`` in the counters marks an instance as alive but unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import redis
import redis.asyncio as aioredis

from shared.config import CommonSettings
from shared.errors import ConfigError
from shared.streams import HEARTBEAT_TTL_SECONDS
from shared.timeutil import now_us

log = logging.getLogger(__name__)

INSTANCE_ENV = "PAIRS_INSTANCE"

# Exit codes of check_heartbeat (a compose healthcheck only cares about zero / non-zero).
CHECK_OK = 0
CHECK_UNHEALTHY = 1
CHECK_UNREACHABLE = 2

# How long a cancelled work task may take to unwind before the runner gives up on it.
CANCEL_WAIT_S = 5.0

WorkFn = Callable[[asyncio.Event], Awaitable[None]]
StatsFn = Callable[[], Mapping[str, Any]]


def default_instance() -> str:
    """``$PAIRS_INSTANCE`` or ``<hostname>-<pid>``: unique per container replica and per local process."""
    return os.environ.get(INSTANCE_ENV) or f"{socket.gethostname()}-{os.getpid()}"


def heartbeat_payload(service: str, instance: str, started_us: int, state: str, stats: Mapping[str, Any]) -> dict:
    return {
        "service": service,
        "instance": instance,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "state": state,
        "started_us": started_us,
        "ts_us": now_us(),
        **dict(stats),
    }


class ServiceRunner:
    """Runs one work coroutine with signal handling, a heartbeat and a bounded graceful stop."""

    def __init__(
        self,
        service: str,
        settings: CommonSettings,
        *,
        instance: str | None = None,
        stats: StatsFn | None = None,
        client: aioredis.Redis | None = None,
    ) -> None:
        if settings.heartbeat_interval_s >= HEARTBEAT_TTL_SECONDS:
            raise ConfigError(
                f"HEARTBEAT_INTERVAL_S={settings.heartbeat_interval_s} must be below the heartbeat TTL "
                f"({HEARTBEAT_TTL_SECONDS} s), or a healthy worker would look dead between beats"
            )
        self.service = service
        self.settings = settings
        self.instance = instance or default_instance()
        self.stats = stats or (lambda: {})
        self.stop_event = asyncio.Event()
        self._client = client
        self._state = "starting"
        self._started_us = now_us()
        self._work_task: asyncio.Task[None] | None = None
        self.key = settings.keys.heartbeat(service, self.instance)

    def request_stop(self, reason: str = "requested") -> None:
        """First call: graceful stop. A second call while stopping cancels the work at once."""
        if self.stop_event.is_set():
            if self._work_task is not None and not self._work_task.done():
                log.warning("second stop request (%s): cancelling now", reason)
                self._work_task.cancel()
            return
        log.info("stop requested (%s); grace period %.1f s", reason, self.settings.shutdown_grace_s)
        self._state = "stopping"
        self.stop_event.set()

    async def beat(self, client: aioredis.Redis) -> None:
        payload = heartbeat_payload(self.service, self.instance, self._started_us, self._state, self.stats())
        await client.set(self.key, json.dumps(payload, default=str), ex=HEARTBEAT_TTL_SECONDS)

    async def _heartbeat_loop(self, client: aioredis.Redis, done: asyncio.Event) -> None:
        # Ends through ``done`` rather than cancellation: cancelling a redis.asyncio command midway
        # can leave its connection waiting forever.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.settings.heartbeat_interval_s)
            if done.is_set():
                return
            try:
                await self.beat(client)
            except (redis.RedisError, OSError) as exc:
                # Missing a beat is what makes the healthcheck fail; the worker itself keeps going.
                log.warning("heartbeat write failed: %s", exc)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_stop, sig.name)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread (tests) or a platform without loop signal support
            installed.append(sig)
        return installed

    async def run(self, work: WorkFn) -> int:
        """Run ``work(stop_event)`` until it returns or a stop is requested. Returns a process exit code."""
        loop = asyncio.get_running_loop()
        client = self._client or aioredis.Redis.from_url(
            self.settings.redis_dsn,
            socket_timeout=self.settings.redis_timeout_s,
            socket_connect_timeout=self.settings.redis_timeout_s,
        )
        installed = self._install_signals(loop)
        heartbeat_task: asyncio.Task[None] | None = None
        heartbeat_done = asyncio.Event()
        try:
            try:
                await self.beat(client)
            except (redis.RedisError, OSError) as exc:
                log.error("cannot reach Redis to register %s/%s: %s", self.service, self.instance, exc)
                return 1
            self._state = "running"
            heartbeat_task = asyncio.create_task(self._heartbeat_loop(client, heartbeat_done), name=f"{self.service}-heartbeat")
            self._work_task = asyncio.create_task(work(self.stop_event), name=f"{self.service}-work")
            log.info("%s started as %s", self.service, self.instance)
            return await self._wait(self._work_task)
        finally:
            if heartbeat_task is not None:
                heartbeat_done.set()
                await heartbeat_task
            for sig in installed:
                loop.remove_signal_handler(sig)
            with contextlib.suppress(redis.RedisError, OSError):
                await client.delete(self.key)
            if self._client is None:
                await client.aclose()

    async def _wait(self, work_task: asyncio.Task[None]) -> int:
        stop_wait = asyncio.create_task(self.stop_event.wait())
        try:
            await asyncio.wait({work_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        if not work_task.done():
            try:
                await asyncio.wait_for(asyncio.shield(work_task), self.settings.shutdown_grace_s)
            except TimeoutError:
                log.warning("%s did not stop within %.1f s; cancelling", self.service, self.settings.shutdown_grace_s)
                work_task.cancel()
            except asyncio.CancelledError:
                pass  # cancelled by a second signal
            # A cancelled task normally ends at once; bound the wait anyway so a stuck library call
            # cannot keep the process alive past its orchestrator's kill timeout.
            await asyncio.wait({work_task}, timeout=CANCEL_WAIT_S)
            if not work_task.done():
                log.error("%s still running %.0f s after cancellation; exiting anyway", self.service, CANCEL_WAIT_S)
                return 1
        if work_task.cancelled():
            return 0 if self.stop_event.is_set() else 1
        exc = work_task.exception()
        if exc is not None:
            log.error("%s failed: %r", self.service, exc, exc_info=exc)
            return 1
        log.info("%s stopped cleanly; %s", self.service, dict(self.stats()))
        return 0

    def run_sync(self, work: WorkFn) -> int:
        """``asyncio.run`` wrapper for ``main(argv)`` functions."""
        return asyncio.run(self.run(work))


def _instance_keys(client: redis.Redis, settings: CommonSettings, service: str, instance: str | None) -> list[str]:
    if instance is None:
        instance = os.environ.get(INSTANCE_ENV)
    if instance is not None:
        return [settings.keys.heartbeat(service, instance)]
    # Default instances are "<hostname>-<pid>"; the healthcheck runs in the same container (same hostname).
    pattern = settings.keys.heartbeat(service, re.sub(r"([*?\[\]\\])", r"\\\1", socket.gethostname()) + "-*")
    return [k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=pattern, count=500)]


def check_heartbeat(settings: CommonSettings, service: str, instance: str | None = None) -> int:
    """Exit code for ``pairs <service> --check``: 0 when a fresh, healthy heartbeat of this host's
    instance (or of ``instance`` / ``$PAIRS_INSTANCE``) exists, 1 when not, 2 when Redis is unreachable."""
    client = redis.Redis.from_url(
        settings.redis_dsn, socket_timeout=settings.redis_timeout_s, socket_connect_timeout=settings.redis_timeout_s
    )
    try:
        keys = _instance_keys(client, settings, service, instance)
        values = client.mget(keys) if keys else []
    except (redis.RedisError, OSError) as exc:
        print(f"{service}: redis unreachable: {exc}")
        return CHECK_UNREACHABLE
    finally:
        client.close()
    oldest_fresh_us = now_us() - HEARTBEAT_TTL_SECONDS * 1_000_000
    for key, raw in zip(keys, values, strict=True):
        if raw is None:
            continue
        try:
            beat = json.loads(raw)
        except ValueError:
            print(f"{service}: unreadable heartbeat at {key}")
            continue
        if not isinstance(beat, dict) or int(beat.get("ts_us", 0)) < oldest_fresh_us:
            continue
        if beat.get("healthy", True) is False:
            print(f"{service}: {beat.get('instance')} reports unhealthy: {beat.get('reason', 'no reason given')}")
            continue
        print(f"{service}: {beat.get('instance')} {beat.get('state', 'running')}")
        return CHECK_OK
    print(f"{service}: no fresh heartbeat (stopped, hung, or not started yet)")
    return CHECK_UNHEALTHY
