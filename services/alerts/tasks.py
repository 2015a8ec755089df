"""Background tasks of the worker: heartbeat, rule-change notices, and small asyncio helpers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import redis.asyncio as aioredis

log = logging.getLogger(__name__)


# Both loops end when ``stop`` is set rather than relying on cancellation alone: a cancel that lands
# while redis-py's read timeout expires can be swallowed (it returns "no message"), so a loop that
# only waited for CancelledError could spin forever and hang the shutdown.


async def heartbeat(client: aioredis.Redis, key: str, ttl_s: int, interval_s: float,
                    snapshot: Callable[[], dict[str, Any]], stop: asyncio.Event) -> None:
    """Write ``snapshot()`` under ``key`` with a TTL every ``interval_s`` (``pairs alerts --check`` reads it)."""
    while not stop.is_set():
        try:
            await client.set(key, orjson.dumps(snapshot()), ex=ttl_s)
        except aioredis.RedisError as exc:  # the main loop handles the outage; keep beating after it
            log.warning("heartbeat not written: %s", exc)
        await wait_or_stop(stop, interval_s)


async def listen(client: aioredis.Redis, channel: str, on_notice: Callable[[], None], stop: asyncio.Event) -> None:
    """Call ``on_notice`` for every message on ``channel``, resubscribing after a lost connection."""
    while not stop.is_set():
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            while not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None:
                    on_notice()
        except aioredis.RedisError as exc:
            # Notices sent meanwhile are lost: act once resubscribed (the worker also reloads periodically).
            log.warning("subscription to %s lost: %s", channel, exc)
            on_notice()
            await wait_or_stop(stop, 1.0)
        finally:
            await pubsub.aclose()


async def wait_or_stop(event: asyncio.Event, timeout_s: float) -> None:
    """Sleep up to ``timeout_s``, waking early when ``event`` is set (a stop request)."""
    try:
        await asyncio.wait_for(event.wait(), timeout=timeout_s)
    except TimeoutError:
        pass


def supervised(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A task whose unexpected death is logged instead of vanishing silently."""
    task = asyncio.create_task(coro, name=name)

    def done(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("background task %s died: %r", name, t.exception())

    task.add_done_callback(done)
    return task
