"""A simulated feed from the seeded cointegrated generator, labelled ``source="simulated"`` everywhere.

The generator produces ``spec.duration_s`` of ticks per loop. Loop ``k`` uses seed ``seed + k``,
starts where the previous loop ended (event time and the x leg's last price), and continues each
instrument's trade ids, so consumers see one unbroken, gap-free feed. Event times start at the
wall clock of the start (or ``start_us``); ``speed`` 1 paces them in real time, ``None`` publishes as
fast as Redis takes them. ``duration_s`` bounds the simulated event time; None loops until stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec

from shared.messages import Tick
from shared.testing.generator import CointegratedSpec, generate_ticks
from shared.timeutil import now_us

from .publisher import TickPublisher
from .replay import Pacer, speed_label

log = logging.getLogger(__name__)

FEED = "simulated"
_YIELD_EVERY = 512


@dataclass
class SimulationSummary:
    speed: str
    loops: int = 0
    published_by_instrument: dict[str, int] = field(default_factory=dict)
    first_event_us: int | None = None
    last_event_us: int | None = None
    last_trade_ids: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    interrupted: bool = False


def loop_spec(base: CointegratedSpec, loop: int, start_us: int, x0: float) -> CointegratedSpec:
    """The generator spec of loop ``loop``: next seed, contiguous start time, continuing x price."""
    return dataclasses.replace(
        base, seed=base.seed + loop, start_us=start_us + int(loop * base.duration_s * 1_000_000), x0=x0
    )


def _last_price(ticks: list[Tick], instrument: str, default: float) -> float:
    return next((t.price for t in reversed(ticks) if t.instrument == instrument), default)


class WallClockPacer:
    """Holds a tick back until the wall clock reaches its event time (past ticks pass at once)."""

    def __init__(self, stop: asyncio.Event | None = None) -> None:
        self._stop = stop

    async def wait_for(self, ts_event_us: int) -> None:
        while (delay := ts_event_us / 1e6 - time.time()) > 0.001:
            if self._stop is not None and self._stop.is_set():
                return
            await asyncio.sleep(min(delay, 0.25))


async def simulate_feed(
    publisher: TickPublisher,
    *,
    spec: CointegratedSpec | None = None,
    speed: float | None = 1.0,
    duration_s: float | None = None,
    start_us: int | None = None,
    history_s: float = 0.0,
    resume: dict[str, Tick] | None = None,
    stop: asyncio.Event | None = None,
    on_status: Callable[[dict], Awaitable[None]] | None = None,
    status_interval_s: float = 1.0,
) -> SimulationSummary:
    base = spec or CointegratedSpec()
    loop_us = int(base.duration_s * 1_000_000)
    summary = SimulationSummary(speed=speed_label(speed))
    # With history, event time is anchored to the wall clock: the past ``history_s`` seconds go out at
    # once (analytics are warm immediately, like live startup seeding), then the feed runs in real time.
    if history_s > 0 and start_us is None:
        start_us = now_us() - int(history_s * 1_000_000)
    pacer: Pacer | WallClockPacer | None
    if history_s > 0 and speed == 1.0:
        pacer = WallClockPacer(stop)
    else:
        pacer = Pacer(speed, stop) if speed is not None else None
    counts: Counter[str] = Counter()
    started = time.monotonic()
    next_status = 0.0

    def generate(loop: int, x0: float) -> asyncio.Task[list[Tick]]:
        # Times relative to 0 (the generator only adds start_us), shifted when published; generated
        # in a thread, one loop ahead, so a loop boundary does not stall a real-time feed.
        return asyncio.ensure_future(asyncio.to_thread(generate_ticks, loop_spec(base, loop, 0, x0)))

    async def report(state: str) -> None:
        if on_status is not None:
            await on_status({
                "mode": FEED, "state": state, "speed": summary.speed, "loops": summary.loops,
                "instruments": [base.y_instrument, base.x_instrument],
                "published_by_instrument": dict(counts), "event_time_us": summary.last_event_us,
            })  # fmt: skip

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    # Resuming (the streams already hold an earlier run): trade ids, event time and the x leg's price
    # continue from the newest tick of each instrument, so consumers see one unbroken feed.
    resume = resume or {}
    x0 = resume[base.x_instrument].price if base.x_instrument in resume else base.x0
    pending = generate(0, x0)
    ticks = await pending
    start = now_us() if start_us is None else start_us  # after the first loop exists: no initial lag
    if resume:
        start = max(start, max(t.ts_event_us for t in resume.values()) + 1)
    end_us = None if duration_s is None else start + int(duration_s * 1_000_000)
    id_offset: dict[str, int] = {inst: t.trade_id for inst, t in resume.items()}
    try:
        while True:
            loop = summary.loops
            summary.loops += 1
            more = end_us is None or start + (loop + 1) * loop_us < end_us
            pending = generate(loop + 1, _last_price(ticks, base.x_instrument, base.x0)) if more else None
            for i, tick in enumerate(ticks):
                ts = tick.ts_event_us + start  # loop_spec(.., 0, ..) times loop k from k * duration
                if end_us is not None and ts >= end_us:
                    break
                if stopping():
                    summary.interrupted = True
                    return summary
                if pacer is not None:
                    await pacer.wait_for(ts)
                out = msgspec.structs.replace(
                    tick, trade_id=tick.trade_id + id_offset.get(tick.instrument, 0), ts_event_us=ts,
                    ts_exchange_us=ts, ts_ingest_us=now_us(),
                )  # fmt: skip
                await publisher.put(out)
                counts[out.instrument] += 1
                summary.last_trade_ids[out.instrument] = out.trade_id
                summary.first_event_us = summary.first_event_us or ts
                summary.last_event_us = ts
                if i % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                    if time.monotonic() >= next_status:
                        next_status = time.monotonic() + status_interval_s
                        await report("running")
            if pending is None:
                return summary
            id_offset = dict(summary.last_trade_ids)
            ticks = await pending
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
        await publisher.flush()
        summary.published_by_instrument = dict(counts)
        summary.elapsed_s = time.monotonic() - started
        await report("stopped" if summary.interrupted else "finished")
        log.info("simulation ended after %d loops: %s", summary.loops, summary.published_by_instrument)
