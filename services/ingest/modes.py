"""Feed modes of ``pairs ingest``: each is an async runner over a shared context.

A runner gets the settings, one Redis client, the running ``TickPublisher`` and a stop event that
SIGINT/SIGTERM set; it returns an exit code and must return soon after ``stop`` is set (the caller
then flushes the publisher). ``MODES`` maps the CLI flag to a runner, or to an import path
``"module:function"`` resolved on use, which is how the live source plugs in without this package
importing it. A mode module may also define ``add_arguments(parser)`` for its own options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from shared.errors import ConfigError, DecodeError
from shared.messages import Tick, from_fields
from shared.testing.generator import CointegratedSpec

from .heartbeat import publish_feed_status
from .publisher import TickPublisher
from .replay import parse_speed, replay_files
from .settings import IngestSettings
from .simulate import FEED as SIMULATED_FEED
from .simulate import simulate_feed
from .sources import open_tick_file


@dataclass
class IngestContext:
    settings: IngestSettings
    redis: aioredis.Redis
    publisher: TickPublisher
    stop: asyncio.Event
    counters: dict[str, Any] = field(default_factory=dict)  # mode-specific, shown in the heartbeat

    async def feed_status(self, feed: str, status: dict) -> None:
        await publish_feed_status(self.redis, self.settings.keys, feed, status, self.settings.feed_status_ttl_s)


Runner = Callable[[IngestContext, argparse.Namespace], Awaitable[int]]


async def run_replay(ctx: IngestContext, args: argparse.Namespace) -> int:
    files = [
        open_tick_file(Path(p), venue=args.venue, symbol=args.symbol, file_format=args.format) for p in args.replay
    ]

    async def status(s: dict) -> None:
        ctx.counters.update(read=s["read"], malformed=s["malformed"], event_time_us=s["event_time_us"])
        await ctx.feed_status("replay", s)

    summary = await replay_files(
        files, ctx.publisher, speed=parse_speed(args.speed), progress=not args.no_progress,
        max_examples=ctx.settings.max_malformed_examples, stop=ctx.stop, on_status=status,
        status_interval_s=ctx.settings.status_interval_s,
    )  # fmt: skip
    ctx.counters["summary"] = summary.to_dict()
    return 0


async def newest_ticks(ctx: IngestContext, instruments: list[str]) -> dict[str, Tick]:
    """The newest tick already on each instrument's stream (a restarted simulation continues after it)."""
    out: dict[str, Tick] = {}
    for inst in instruments:
        entries = await ctx.redis.xrevrange(ctx.settings.keys.ticks(inst), count=1)
        if entries:
            with contextlib.suppress(DecodeError):
                out[inst] = from_fields(entries[0][1], Tick)
    return out


async def run_simulate(ctx: IngestContext, args: argparse.Namespace) -> int:
    async def status(s: dict) -> None:
        ctx.counters.update(loops=s["loops"], event_time_us=s["event_time_us"])
        await ctx.feed_status(SIMULATED_FEED, s)

    summary = await simulate_feed(
        ctx.publisher, speed=parse_speed(args.speed or "1"), duration_s=args.duration, stop=ctx.stop,
        history_s=args.history or 0.0,
        resume=await newest_ticks(ctx, [CointegratedSpec().y_instrument, CointegratedSpec().x_instrument]),
        on_status=status, status_interval_s=ctx.settings.status_interval_s,
    )  # fmt: skip
    ctx.counters["summary"] = {"loops": summary.loops, "published_by_instrument": summary.published_by_instrument}
    return 0


MODES: dict[str, Runner | str] = {
    "replay": run_replay,
    "simulate": run_simulate,
    # Implemented in services/ingest/live/ (module "runner" with ``run`` and ``add_arguments``).
    "live": "services.ingest.live.runner:run",
}


def resolve(mode: str) -> Runner:
    target = MODES[mode]
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"ingest mode {mode!r} is not available ({target}: {exc})") from exc


def add_mode_arguments(parser: argparse.ArgumentParser) -> None:
    """Let lazily loaded modes add their own options (skipped when their module is absent)."""
    for target in MODES.values():
        if isinstance(target, str):
            try:
                module = importlib.import_module(target.partition(":")[0])
            except ImportError:
                continue
            hook = getattr(module, "add_arguments", None)
            if hook is not None:
                hook(parser)
