"""The live feed: plans the sockets, wires sequencers, seeding, health, and shuts down cleanly."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.ingest.live import health
from services.ingest.live.history import TradeHistory
from services.ingest.live.plan import ConnectionPlan, StreamSpec, plan_connections, subscriptions
from services.ingest.live.rest import WeightedRestClient
from services.ingest.live.sequencer import StreamSequencer
from services.ingest.live.settings import STREAM_KINDS, LiveSettings
from services.ingest.live.slot import ConnectionSlot
from services.ingest.normalize import parse_trade_payload
from services.ingest.publisher import TickPublisher
from shared.config import CommonSettings
from shared.errors import ConfigError, PairsError
from shared.messages import GapEvent, Source, Tick, from_fields, to_fields
from shared.streams import GAP_STREAM_MAXLEN
from shared.timeutil import now_us

log = logging.getLogger(__name__)


class LiveIngest:
    """Run with ``await LiveIngest(settings, redis).run(stop_event)``.

    Standalone it builds and flushes its own publisher and writes ``feed:live`` plus the heartbeat
    itself; under ``pairs ingest --live`` the caller's publisher and heartbeat are used instead.
    """

    def __init__(self, settings: LiveSettings, redis_client: aioredis.Redis,
                 publisher: TickPublisher | None = None,
                 on_status: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> None:
        self.settings = settings
        self.redis = redis_client
        self.keys = settings.keys
        self._own_publisher = publisher is None
        self._own_status = on_status is None
        self.on_status = on_status or self._write_status
        self.publisher = publisher or TickPublisher(
            redis_client, self.keys, queue_size=settings.queue_size, batch_size=settings.batch_size)
        self.specs: list[StreamSpec] = subscriptions(settings)
        self.plans: list[ConnectionPlan] = plan_connections(self.specs, settings)
        self.spot_rest = WeightedRestClient(settings.spot_rest_base_url, settings.spot_weight_limit_1m,
                                            settings.weight_safety_fraction, settings.rest_timeout_s,
                                            settings.default_retry_after_s, settings.api_key)
        self.usdm_rest = WeightedRestClient(settings.usdm_rest_base_url, settings.usdm_weight_limit_1m,
                                            settings.weight_safety_fraction, settings.rest_timeout_s,
                                            settings.default_retry_after_s, settings.api_key)
        self.history = TradeHistory(settings, self.spot_rest, self.usdm_rest)
        self.sequencers: dict[str, StreamSequencer] = {
            s.instrument: StreamSequencer(s, self.publisher, self.history, self._to_tick(s.venue), self.publish_gap,
                                          settings)
            for s in self.specs if s.carries_trades
        }
        self.slots = [
            ConnectionSlot(plan, settings, self._on_tick,
                           [self.sequencers[s.instrument] for s in plan.streams if s.carries_trades],
                           name=f"c{i}")
            for i, plan in enumerate(self.plans)
        ]
        self.gap_events_published = 0
        self.started = asyncio.Event()

    @staticmethod
    def _to_tick(venue: str):  # noqa: ANN205 - a closure per venue
        def convert(payload: dict[str, Any], source: Source) -> Tick:
            return parse_trade_payload(payload, venue, now_us(), source)
        return convert

    def _on_tick(self, spec: StreamSpec, tick: Tick) -> None:
        self.sequencers[spec.instrument].on_live(tick)

    async def publish_gap(self, event: GapEvent) -> None:
        await self.redis.xadd(self.keys.gaps, to_fields(event), maxlen=GAP_STREAM_MAXLEN, approximate=True)
        self.gap_events_published += 1

    def status(self) -> dict[str, Any]:
        rest = {"spot": self.spot_rest.stats.as_dict(), "usdm": self.usdm_rest.stats.as_dict()}
        return health.snapshot(self.slots, self.sequencers, self.publisher.stats(), rest, self.settings.instance)

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest until ``stop`` is set; then stop the sockets and flush (a publisher we built)."""
        own_writer = self.publisher.start() if self._own_publisher else None
        resume = await self._recent_last_ids()
        for instrument, seq in self.sequencers.items():
            if instrument in resume:
                seq.resume_after(resume[instrument])
            elif self.settings.seed_lookback_s > 0:
                seq.start_seed()
        tasks = [asyncio.create_task(slot.run(), name=f"slot:{slot.name}") for slot in self.slots]
        status_task = asyncio.create_task(self._status_loop(), name="live-status")
        self.started.set()
        log.info("live ingest: %d streams on %d connections", len(self.specs), len(self.slots))
        try:
            await stop.wait()
        finally:
            for slot in self.slots:
                slot.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            for seq in self.sequencers.values():
                await seq.stop()
            status_task.cancel()
            await asyncio.gather(status_task, return_exceptions=True)
            if own_writer is not None:
                try:
                    await self.publisher.close(timeout=self.settings.shutdown_grace_s)
                except TimeoutError:
                    log.error("live ingest: %d ticks still queued at shutdown", self.publisher.queued)
                await asyncio.gather(own_writer, return_exceptions=True)
            await self.spot_rest.close()
            await self.usdm_rest.close()
            if self._own_status:
                await health.clear_heartbeat(self.redis, self.keys, self.settings.instance)

    async def _recent_last_ids(self) -> dict[str, int]:
        """Last trade id this feed published per instrument, when recent enough to resume without a gap.

        A restart then re-fetches exactly the ids it missed instead of re-seeding (no duplicates);
        ticks written by a replay or the simulator are not ours and are ignored.
        """
        out: dict[str, int] = {}
        max_age_us = int(self.settings.resume_max_age_s * 1e6)
        if max_age_us <= 0:
            return out
        for instrument in self.sequencers:
            try:
                entries = await self.redis.xrevrange(self.keys.ticks(instrument), count=1)
                tick = from_fields(entries[0][1], Tick) if entries else None
            except (RedisError, PairsError) as exc:
                log.warning("%s: cannot read the last published tick (%s); not resuming", instrument, exc)
                continue
            if (isinstance(tick, Tick) and tick.source in ("live", "backfill", "seed")
                    and now_us() - tick.ts_ingest_us <= max_age_us):
                out[instrument] = tick.trade_id
                log.info("%s: resuming after trade id %d", instrument, tick.trade_id)
        return out

    def status_with_verdict(self) -> dict[str, Any]:
        status = self.status()
        status["problems"] = health.problems(status, now_us(), self.settings.check_max_silence_s)
        return status

    async def _status_loop(self) -> None:
        while True:
            try:
                await self.on_status(self.status_with_verdict())
            except Exception:  # Redis down: the heartbeat lapses, which is the signal; keep ingesting
                log.exception("live ingest: could not write the status")
            await asyncio.sleep(self.settings.status_interval_s)

    async def _write_status(self, status: dict[str, Any]) -> None:
        await health.write_status(self.redis, self.keys, status)


# -- `pairs ingest --live` (wired through services/ingest/modes.py: "services.ingest.live.runner:run") --------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("live feed (--live; every INGEST_LIVE_* setting also applies)")
    group.add_argument("--instruments", help="comma-separated venue.SYMBOL list, e.g. binance-usdm.BTCUSDT")
    group.add_argument("--stream-kind", choices=STREAM_KINDS, help="trade or aggTrade for every instrument")
    group.add_argument("--seed-s", type=float, help="seconds of REST history published at start (0: none)")


def live_settings_for(base: CommonSettings, instance: str, args: argparse.Namespace) -> LiveSettings:
    update: dict[str, Any] = {"instance": instance, "key_prefix": base.key_prefix, "redis_url": base.redis_url}
    if getattr(args, "instruments", None):
        update["instruments"] = [s.strip() for s in args.instruments.split(",") if s.strip()]
    if getattr(args, "stream_kind", None):
        update["default_stream_kind"] = args.stream_kind
        update["stream_kinds"] = {}
    if getattr(args, "seed_s", None) is not None:
        if args.seed_s < 0:
            raise ConfigError("--seed-s must be >= 0")
        update["seed_lookback_s"] = args.seed_s
    return LiveSettings().model_copy(update=update)


async def run(ctx: Any, args: argparse.Namespace) -> int:
    """Runner for ``pairs ingest --live``: the caller owns the publisher, heartbeat and stop event."""
    settings = live_settings_for(ctx.settings, ctx.settings.instance, args)

    async def on_status(status: dict[str, Any]) -> None:
        ctx.counters.update(problems=status["problems"], connections=len(status["connections"]),
                            connected=sum(1 for c in status["connections"] if c["connected"]),
                            gap_events=sum(s.get("gap_events", 0) for s in status["streams"]))
        await ctx.feed_status(health.FEED, status)

    live = LiveIngest(settings, ctx.redis, ctx.publisher, on_status=on_status)
    await live.run(ctx.stop)
    ctx.counters["summary"] = {"streams": [{k: s.get(k) for k in ("stream", "instrument", "last_trade_id",
                                                                  "published_live", "published_backfill",
                                                                  "published_seed", "ids_unfilled")}
                                           for s in live.status()["streams"]]}
    return 0
