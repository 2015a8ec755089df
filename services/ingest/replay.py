"""Replay files into the tick streams, merged in event-time order, at a chosen speed.

Files are merged with a heap over their readers keyed by (event time, instrument, trade id, file
index, line): deterministic for equal times, and each file's own order is kept. Speed ``max``
publishes as fast as Redis takes it (``TickPublisher.put`` applies backpressure); ``N`` sleeps so
that N seconds of event time take one second of wall time (``1`` = real time). Malformed lines are
counted and the first few kept with file and line number; they never reach a stream.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import msgspec
from tqdm import tqdm

from shared.errors import DecodeError, InvalidInput
from shared.messages import Tick
from shared.timeutil import now_us

from .publisher import TickPublisher
from .sources import ReadItem, TickFile

log = logging.getLogger(__name__)

_YIELD_EVERY = 512  # ticks between event-loop yields, progress and status updates


def parse_speed(text: str | float | None) -> float | None:
    """``"max"`` -> None (no pacing); ``"1"``, ``"10"``, ``"10x"``, ``"0.5"`` -> factor > 0."""
    if text is None:
        return None
    if isinstance(text, int | float):
        value = float(text)
    else:
        cleaned = text.strip().lower()
        if cleaned in ("max", "inf", "fast"):
            return None
        cleaned = cleaned.removesuffix("x")
        try:
            value = float(cleaned)
        except ValueError:
            raise InvalidInput(f"speed {text!r} must be 'max' or a positive factor such as 1 or 10") from None
    if not (value > 0 and value != float("inf")):
        raise InvalidInput(f"speed {text!r} must be 'max' or a positive factor such as 1 or 10")
    return value


def speed_label(speed: float | None) -> str:
    return "max" if speed is None else f"{speed:g}x"


@dataclass(frozen=True, slots=True)
class MalformedLine:
    file: str
    line_no: int
    error: str


@dataclass
class ReplaySummary:
    files: list[str]
    speed: str
    read: int = 0  # ticks read and queued for publishing
    published_by_instrument: dict[str, int] = field(default_factory=dict)
    malformed: int = 0
    malformed_examples: list[MalformedLine] = field(default_factory=list)
    skipped: int = 0  # lines without a trade (headers, bookTicker/depth frames, acks)
    first_event_us: int | None = None
    last_event_us: int | None = None
    elapsed_s: float = 0.0
    interrupted: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class Pacer:
    """Holds ticks back so event time advances ``factor`` times faster than wall time."""

    def __init__(self, factor: float, stop: asyncio.Event | None = None) -> None:
        self._factor = factor
        self._stop = stop
        self._origin: tuple[int, float] | None = None  # (first event time µs, wall monotonic s)

    async def wait_for(self, ts_event_us: int) -> None:
        if self._origin is None:
            self._origin = (ts_event_us, time.monotonic())
            return
        ts0, wall0 = self._origin
        target = wall0 + (ts_event_us - ts0) / 1e6 / self._factor
        while (delay := target - time.monotonic()) > 0.001:
            if self._stop is not None and self._stop.is_set():
                return
            await asyncio.sleep(min(delay, 0.25))  # short naps keep a stop request responsive


class TickMerger:
    """Heap merge of the files' readers into one event-time ordered iterator of ticks.

    Decode errors met on the way are counted in ``summary`` (first ``max_examples`` kept).
    """

    def __init__(self, files: Sequence[TickFile], summary: ReplaySummary, max_examples: int = 20) -> None:
        self._files = files
        self._summary = summary
        self._max_examples = max_examples

    def _malformed(self, index: int, line_no: int, error: str) -> None:
        self._summary.malformed += 1
        if len(self._summary.malformed_examples) < self._max_examples:
            self._summary.malformed_examples.append(MalformedLine(self._files[index].name, line_no, error))

    def _next_entry(self, index: int, items: Iterator[ReadItem]) -> tuple[int, str, int, int, Tick] | None:
        line_no = 0
        try:
            for line_no, item in items:
                if isinstance(item, DecodeError):
                    self._malformed(index, line_no, str(item))
                    continue
                return (item.ts_event_us, item.instrument, item.trade_id, index, item)
        except (OSError, EOFError, zlib.error, UnicodeError) as exc:  # truncated/corrupt archive
            self._malformed(index, line_no + 1, f"file unreadable from here on: {exc}")
        return None

    def __iter__(self) -> Iterator[Tick]:
        readers = [iter(f) for f in self._files]
        heap = [e for i, r in enumerate(readers) if (e := self._next_entry(i, r)) is not None]
        heapq.heapify(heap)
        while heap:
            index, tick = heap[0][3], heap[0][4]
            yield tick
            entry = self._next_entry(index, readers[index])
            if entry is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, entry)


async def replay_files(
    files: Sequence[TickFile],
    publisher: TickPublisher,
    *,
    speed: float | None = None,
    progress: bool = True,
    max_examples: int = 20,
    stop: asyncio.Event | None = None,
    on_status: Callable[[dict], Awaitable[None]] | None = None,
    status_interval_s: float = 1.0,
) -> ReplaySummary:
    """Publish every tick of ``files`` through ``publisher.put`` and wait until they are in Redis."""
    summary = ReplaySummary(files=[f.name for f in files], speed=speed_label(speed))
    merger = TickMerger(files, summary, max_examples)
    pacer = Pacer(speed, stop) if speed is not None else None
    counts: Counter[str] = Counter()
    started = time.monotonic()
    bar = tqdm(
        total=sum(f.lines.bytes_total for f in files), unit="B", unit_scale=True, desc="replay",
        disable=not progress, leave=False,
    )  # fmt: skip

    def status(state: str) -> dict:
        return {
            "mode": "replay", "state": state, "files": summary.files, "speed": summary.speed,
            "read": summary.read, "malformed": summary.malformed, "published_by_instrument": dict(counts),
            "event_time_us": summary.last_event_us,
        }  # fmt: skip

    async def report(state: str) -> None:
        if on_status is not None:
            await on_status(status(state))

    await report("running")
    next_status = time.monotonic() + status_interval_s
    try:
        for tick in merger:
            if stop is not None and stop.is_set():
                summary.interrupted = True
                break
            ts_event = tick.ts_event_us
            if pacer is not None:
                await pacer.wait_for(ts_event)
                tick = msgspec.structs.replace(tick, ts_ingest_us=now_us())  # received "now", not when read ahead
            await publisher.put(tick)
            counts[tick.instrument] += 1
            summary.read += 1
            if summary.first_event_us is None:
                summary.first_event_us = ts_event
            summary.last_event_us = ts_event
            if summary.read % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the writer drain while we read
                bar.update(sum(f.lines.bytes_done for f in files) - bar.n)
                if time.monotonic() >= next_status:
                    next_status = time.monotonic() + status_interval_s
                    await report("running")
        await publisher.flush()
    finally:
        bar.update(sum(f.lines.bytes_done for f in files) - bar.n)
        bar.close()
        summary.skipped = sum(f.skipped for f in files)
        summary.published_by_instrument = dict(counts)
        summary.elapsed_s = time.monotonic() - started
    await report("stopped" if summary.interrupted else "finished")
    log.info(
        "replay %s: %d ticks in %.2fs, %d malformed, %d skipped",
        "stopped" if summary.interrupted else "finished", summary.read, summary.elapsed_s,
        summary.malformed, summary.skipped,
    )  # fmt: skip
    return summary
