"""Per-pair processing: merged ticks in, closed bars and pair metrics out.

Ticks come in merged event-time order (see merge.py). For every bar timeframe the pair has one
open UTC bucket; the first tick at or past its end closes it for both legs at once (all earlier
ticks of both legs have been seen by then). Closing emits each leg's bar (legs that traded) and
one pair observation: the legs' last prices at the bucket end (forward-filled), fed to the
pair's ``PairSignalStream``. Timeframe ``tick`` emits an observation per merged tick.

Everything here is a function of the tick sequence, and the whole state round-trips through
``get_state``/``from_state`` exactly, which is what makes restarts reproduce the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.analytics.bars import BarAccumulator, qty_units
from shared.analytics.pair_stream import PairSignalStream
from shared.instruments import Pair
from shared.messages import Bar, Metric, Tick
from shared.timeframes import timeframe_us, validate_timeframes
from shared.timeutil import now_us

# Version of the checkpoint layout below. Bump it whenever get_state changes shape or meaning:
# a worker then discards older checkpoints (see runner.py) instead of misreading them.
STATE_FORMAT = 2


@dataclass
class EngineOutput:
    bars: list[Bar] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    metric_ids: list[str] = field(default_factory=list)  # stream entry id of each metric
    ticks: list[Tick] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.bars or self.metrics or self.ticks)


class PairEngine:
    def __init__(self, pair: Pair, timeframes: tuple[str, ...] | list[str], window: int, method: str = "ols") -> None:
        self.pair = pair
        self.pair_id = pair.id
        self.instruments = (pair.y.id, pair.x.id)
        self.timeframes = validate_timeframes(timeframes)
        self.window = window
        self.method = method
        self.bar_tfs = [(tf, timeframe_us(tf)) for tf in self.timeframes if tf != "tick"]
        self.tick_tf = "tick" in self.timeframes
        self.bucket: dict[str, int | None] = {tf: None for tf, _ in self.bar_tfs}
        self.floor: dict[str, int] = {tf: -(2**62) for tf, _ in self.bar_tfs}  # earliest bucket still open
        self.acc: dict[str, list[BarAccumulator | None]] = {tf: [None, None] for tf, _ in self.bar_tfs}
        self.signals = {tf: PairSignalStream(window, method) for tf in self.timeframes}
        self.seq = {tf: 0 for tf in self.timeframes}
        self.last_price: list[float | None] = [None, None]
        self.late_ticks = 0
        # Trade ids only grow per instrument; delivery is at-least-once, so a repeat is dropped here.
        self.last_trade_id: list[int | None] = [None, None]
        self.duplicate_ticks = 0
        # Metric stream ids are derived here, not by Redis: ms = the observation's close time (never
        # decreasing), seq counts within that ms. Re-publishing after a crash then reuses the same ids,
        # and Redis refuses the duplicates.
        self.stream_ms = 0
        self.stream_seq = -1

    # --- processing -----------------------------------------------------------------------
    def process(self, leg: int, tick: Tick, out: EngineOutput) -> None:
        last_id = self.last_trade_id[leg]
        if last_id is not None and tick.trade_id <= last_id:
            self.duplicate_ticks += 1
            return
        self.last_trade_id[leg] = tick.trade_id
        ts = tick.ts_event_us
        units = qty_units(tick.qty)
        buy = tick.side == "buy"
        late = False
        for tf, tf_us in self.bar_tfs:
            b = ts - ts % tf_us
            cur = self.bucket[tf]
            if cur is None or b > cur:
                if b < self.floor[tf]:
                    late = True
                    continue
                if cur is not None:
                    self._close(tf, cur, out)
                self.bucket[tf] = b
            elif b < cur:
                late = True
                continue
            acc = self.acc[tf][leg]
            if acc is None:
                self.acc[tf][leg] = BarAccumulator(tick.price, units, buy)
            else:
                acc.add(tick.price, units, buy)
        if late:
            self.late_ticks += 1
        self.last_price[leg] = tick.price
        if self.tick_tf:
            self._observe("tick", ts, out)
        out.ticks.append(tick)

    def advance(self, clock_us: int, out: EngineOutput) -> None:
        """Close every open bucket that ended at or before ``clock_us`` (idle legs, quiet markets)."""
        for tf, tf_us in self.bar_tfs:
            cur = self.bucket[tf]
            if cur is not None and cur + tf_us <= clock_us:
                self._close(tf, cur, out)
                self.bucket[tf] = None

    def next_close_us(self) -> int | None:
        """End of the earliest open bucket (when ``advance`` would next close a bar)."""
        ends = [cur + tf_us for tf, tf_us in self.bar_tfs if (cur := self.bucket[tf]) is not None]
        return min(ends, default=None)

    def _close(self, tf: str, bucket_us: int, out: EngineOutput) -> None:
        tf_us = timeframe_us(tf)
        compute_us = now_us()
        accs = self.acc[tf]
        for leg in (0, 1):
            acc = accs[leg]
            if acc is not None:
                out.bars.append(acc.to_bar(self.instruments[leg], tf, bucket_us, compute_us))
                accs[leg] = None
        self.floor[tf] = bucket_us + tf_us
        self._observe(tf, bucket_us, out)

    def _observe(self, tf: str, ts_us: int, out: EngineOutput) -> None:
        y, x = self.last_price
        if y is None or x is None:
            return
        close_ms = (ts_us + (timeframe_us(tf) or 1000)) // 1000
        if close_ms > self.stream_ms:
            self.stream_ms, self.stream_seq = close_ms, 0
        else:
            self.stream_seq += 1
        out.metric_ids.append(f"{self.stream_ms}-{self.stream_seq}")
        sig = self.signals[tf].update(y, x, tests=tf != "tick")
        out.metrics.append(
            Metric(
                pair=self.pair_id,
                timeframe=tf,
                ts_event_us=ts_us,
                seq=self.seq[tf],
                method=self.method,
                window=self.window,
                y_price=y,
                x_price=x,
                warm=sig.warm,
                beta=sig.beta,
                alpha=sig.alpha,
                r2=sig.r2,
                spread=sig.spread,
                zscore=sig.zscore,
                correlation=sig.correlation,
                adf_stat=sig.adf_stat,
                adf_p=sig.adf_p,
                half_life=sig.half_life,
                ts_compute_us=now_us(),
            )
        )
        self.seq[tf] += 1

    def reconfigure(self, timeframes: list[str] | tuple[str, ...], window: int, method: str) -> bool:
        """Apply an edited pair configuration; returns True if anything changed.

        A new window or method restarts every timeframe's signal (warm-up again); added timeframes
        start with their next bucket; removed ones are dropped. Bars already built are unaffected.
        """
        timeframes = validate_timeframes(timeframes)
        if (timeframes, window, method) == (self.timeframes, self.window, self.method):
            return False
        fresh = PairEngine(self.pair, timeframes, window, method)
        for tf, _ in fresh.bar_tfs:
            if tf in self.bucket:
                fresh.bucket[tf], fresh.floor[tf], fresh.acc[tf] = self.bucket[tf], self.floor[tf], self.acc[tf]
        for tf in timeframes:
            if tf in self.seq:
                fresh.seq[tf] = self.seq[tf]
                if (window, method) == (self.window, self.method):
                    fresh.signals[tf] = self.signals[tf]
        fresh.last_price = self.last_price
        fresh.last_trade_id = self.last_trade_id
        fresh.duplicate_ticks = self.duplicate_ticks
        fresh.late_ticks = self.late_ticks
        fresh.stream_ms, fresh.stream_seq = self.stream_ms, self.stream_seq
        self.__dict__.update(fresh.__dict__)
        return True

    # --- checkpointing --------------------------------------------------------------------
    def get_state(self) -> dict:
        return {
            "format": STATE_FORMAT,
            "pair": self.pair_id,
            "timeframes": list(self.timeframes),
            "window": self.window,
            "method": self.method,
            "bucket": self.bucket,
            "floor": self.floor,
            "acc": {tf: [a.get_state() if a else None for a in accs] for tf, accs in self.acc.items()},
            "signals": {tf: s.get_state() for tf, s in self.signals.items()},
            "seq": self.seq,
            "last_price": self.last_price,
            "late_ticks": self.late_ticks,
            "stream_id": [self.stream_ms, self.stream_seq],
            "last_trade_id": self.last_trade_id,
            "duplicate_ticks": self.duplicate_ticks,
        }

    @classmethod
    def from_state(cls, pair: Pair, state: dict) -> PairEngine:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r}, this build reads {STATE_FORMAT}")
        eng = cls(pair, state["timeframes"], state["window"], state["method"])
        eng.bucket = dict(state["bucket"])
        eng.floor = dict(state["floor"])
        eng.acc = {tf: [BarAccumulator.from_state(a) if a else None for a in accs] for tf, accs in state["acc"].items()}
        eng.signals = {tf: PairSignalStream.from_state(s) for tf, s in state["signals"].items()}
        eng.seq = dict(state["seq"])
        eng.last_price = list(state["last_price"])
        eng.late_ticks = state["late_ticks"]
        eng.stream_ms, eng.stream_seq = state["stream_id"]
        eng.last_trade_id = list(state["last_trade_id"])
        eng.duplicate_ticks = state["duplicate_ticks"]
        return eng
