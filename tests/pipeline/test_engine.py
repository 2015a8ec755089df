"""PairEngine without Redis or a database: bars vs pandas, metrics vs the batch reference, state round trip."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest

from services.analytics.engine import EngineOutput, PairEngine
from shared.instruments import Pair
from shared.messages import Tick
from shared.testing.generator import CointegratedSpec, generate_ticks
from tests.pipeline.reference import (
    assert_close_or_both_nan,
    reference_bars,
    reference_metrics,
    reference_pair_series,
    ticks_frame,
)

SPEC = CointegratedSpec(duration_s=420, seed=11)
PAIR = Pair.parse(f"{SPEC.y_instrument}~{SPEC.x_instrument}")
WINDOW = 30


def run_engine(ticks: list[Tick], engine: PairEngine | None = None) -> tuple[PairEngine, EngineOutput]:
    engine = engine or PairEngine(PAIR, ["tick", "1s", "1m", "5m"], WINDOW)
    out = EngineOutput()
    for t in ticks:
        engine.process(0 if t.instrument == PAIR.y.id else 1, t, out)
    return engine, out


def bars_frame(out: EngineOutput, instrument: str, tf: str) -> pd.DataFrame:
    rows = [b for b in out.bars if b.instrument == instrument and b.timeframe == tf]
    idx = pd.to_datetime([b.ts_event_us for b in rows], unit="us", utc=True)
    return pd.DataFrame(
        {k: [getattr(b, k) for b in rows] for k in ("open", "high", "low", "close", "volume", "trades")}, index=idx
    )


@pytest.fixture(scope="module")
def ticks() -> list[Tick]:
    return generate_ticks(SPEC)


@pytest.fixture(scope="module")
def engine_run(ticks):
    return run_engine(ticks)


@pytest.mark.parametrize("tf", ["1s", "1m", "5m"])
def test_closed_bars_equal_pandas_resample(ticks, engine_run, tf):
    _, out = engine_run
    frame = ticks_frame(ticks)
    for inst in (PAIR.y.id, PAIR.x.id):
        ours = bars_frame(out, inst, tf)
        ref = reference_bars(frame, inst, tf).loc[: ours.index[-1]]  # the last bucket is still open
        assert list(ours.index) == list(ref.index), f"{inst} {tf}: bucket sets differ"
        for col in ("open", "high", "low", "close", "trades"):
            assert (ours[col].to_numpy() == ref[col].to_numpy()).all(), f"{inst} {tf} {col} not exactly equal"
        # Volume: exactly the decimal sum; pandas' float sum within its own rounding (1e-12 relative).
        assert (ours.volume.to_numpy() == ref.volume.to_numpy()).all()
        np.testing.assert_allclose(ours.volume, ref.volume_pandas, rtol=1e-12)


@pytest.mark.parametrize("tf", ["1s", "1m"])
def test_bar_metrics_equal_batch_reference(ticks, engine_run, tf):
    _, out = engine_run
    frame = ticks_frame(ticks)
    series = reference_pair_series(reference_bars(frame, PAIR.y.id, tf), reference_bars(frame, PAIR.x.id, tf))
    mets = [m for m in out.metrics if m.timeframe == tf]
    series = series.iloc[: len(mets)]
    ref = reference_metrics(series, WINDOW)
    assert [m.ts_event_us for m in mets] == [int(ts.value // 1000) for ts in series.index]
    assert [m.seq for m in mets] == list(range(len(mets)))
    assert np.array_equal([m.y_price for m in mets], series.y) and np.array_equal([m.x_price for m in mets], series.x)
    # Streaming (Welford + periodic exact resync) vs two-pass numpy over each window. beta/z/r2/corr
    # agree to ~1e-11; alpha and spread carry beta's rounding times the price level (x ~ 6e4).
    tolerances = {"beta": 1e-9, "r2": 1e-9, "zscore": 1e-8, "correlation": 1e-9, "alpha": 1e-7, "spread": 1e-7}
    for field, rtol in tolerances.items():
        actual = np.array([np.nan if getattr(m, field) is None else getattr(m, field) for m in mets])
        assert_close_or_both_nan(actual, ref[field].to_numpy(), rtol=rtol, atol=1e-9, what=f"{tf} {field}")
    assert sum(m.warm for m in mets) == max(0, len(mets) - WINDOW + 1)


def test_tick_timeframe_observes_every_merged_tick(ticks, engine_run):
    _, out = engine_run
    mets = [m for m in out.metrics if m.timeframe == "tick"]
    frame = ticks_frame(ticks)
    wide = pd.DataFrame(
        {
            "y": frame.price.where(frame.instrument == PAIR.y.id),
            "x": frame.price.where(frame.instrument == PAIR.x.id),
        }
    ).ffill().dropna()
    assert len(mets) == len(wide)
    assert np.array_equal([m.y_price for m in mets], wide.y) and np.array_equal([m.x_price for m in mets], wide.x)


def test_state_round_trip_continues_bit_for_bit(ticks, engine_run):
    _, uninterrupted = engine_run
    cut = len(ticks) // 3
    first, out1 = run_engine(ticks[:cut])
    state = msgspec.json.decode(msgspec.json.encode(first.get_state()))
    resumed, out2 = run_engine(ticks[cut:], PairEngine.from_state(PAIR, state))

    def strip(ms):
        return [msgspec.structs.replace(m, ts_compute_us=0) for m in ms]

    assert strip(out1.metrics + out2.metrics) == strip(uninterrupted.metrics)
    assert strip(out1.bars + out2.bars) == strip(uninterrupted.bars)


def test_duplicate_deliveries_are_dropped_by_trade_id(ticks, engine_run):
    _, clean = engine_run
    doubled = []
    for i, t in enumerate(ticks):
        doubled.append(t)
        if i % 7 == 0:
            doubled.append(t)  # a resent pipeline can deliver a tick twice
    engine, out = run_engine(doubled)
    assert engine.duplicate_ticks == len(range(0, len(ticks), 7))
    strip = lambda ms: [msgspec.structs.replace(m, ts_compute_us=0) for m in ms]  # noqa: E731
    assert strip(out.bars) == strip(clean.bars) and strip(out.metrics) == strip(clean.metrics)


def test_idle_advance_closes_buckets_and_late_ticks_are_counted(ticks):
    engine, out = run_engine(ticks[:2000])
    last_ts = ticks[1999].ts_event_us
    out = EngineOutput()
    engine.advance(last_ts + 3_600_000_000, out)
    assert {b.timeframe for b in out.bars} == {"1s", "1m", "5m"}
    late = msgspec.structs.replace(ticks[10], trade_id=999_999)
    engine.process(0 if late.instrument == PAIR.y.id else 1, late, EngineOutput())
    assert engine.late_ticks == 1
