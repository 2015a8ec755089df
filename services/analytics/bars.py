"""Incremental OHLCV accumulation for one instrument and one timeframe.

Volume is summed exactly: quantities are held as integers of 1e-8 (Binance's finest quantity
step), so a bar's volume is the correctly rounded decimal sum of its trades, whatever their
number or order. (A float running sum, and pandas' own resample sum, drift in the last bits.)
"""

from __future__ import annotations

from shared.messages import Bar

QTY_SCALE = 100_000_000  # 1e-8 units


def qty_units(qty: float) -> int:
    return round(qty * QTY_SCALE)


class BarAccumulator:
    __slots__ = ("open", "high", "low", "close", "vol_units", "buy_units", "trades")

    def __init__(self, price: float, units: int, buy: bool) -> None:
        self.open = self.high = self.low = self.close = price
        self.vol_units = units
        self.buy_units = units if buy else 0
        self.trades = 1

    def add(self, price: float, units: int, buy: bool) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.vol_units += units
        if buy:
            self.buy_units += units
        self.trades += 1

    def to_bar(self, instrument: str, timeframe: str, bucket_us: int, compute_us: int) -> Bar:
        return Bar(
            instrument=instrument,
            timeframe=timeframe,
            ts_event_us=bucket_us,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.vol_units / QTY_SCALE,
            buy_volume=self.buy_units / QTY_SCALE,
            trades=self.trades,
            ts_compute_us=compute_us,
        )

    def get_state(self) -> list:
        return [self.open, self.high, self.low, self.close, self.vol_units, self.buy_units, self.trades]

    @classmethod
    def from_state(cls, state: list) -> BarAccumulator:
        acc = cls.__new__(cls)
        acc.open, acc.high, acc.low, acc.close, acc.vol_units, acc.buy_units, acc.trades = state
        return acc
