"""Price and funding file readers: the formats they accept and the errors they give."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.errors import DecodeError, InvalidInput
from shared.research.prices import align_closes, clip_range, read_funding_file, read_price_file
from shared.timeutil import datetime_to_us
from tests.research.utc import utc

T0_MS = 1_749_285_840_000  # 2025-06-07 08:44:00 UTC


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def test_signalbot_seven_column_klines_gz(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "k.csv.gz",
        "open_time,open,high,low,close,volume,taker_buy_base_asset_volume\n"
        "2025-06-07 08:44:00+00:00,2500.5,2501,2499,2500,10,5\n"
        "2025-06-07 08:45:00+00:00,2500,2503,2500,2502.25,11,6\n",
    )
    df = read_price_file(p)
    assert list(df.index) == [T0_MS * 1000, (T0_MS + 60_000) * 1000]
    assert df.loc[T0_MS * 1000].tolist() == [2500.5, 2501.0, 2499.0, 2500.0]
    assert df["close"].iloc[-1] == 2502.25


@pytest.mark.parametrize("unit", [1, 1000, 1_000_000])
def test_timestamp_close_files_with_s_ms_or_us_epochs(tmp_path: Path, unit: int) -> None:
    t0 = T0_MS // 1000 * unit
    step = 60 * unit
    p = _write(tmp_path / "p.csv", f"timestamp,close\n{t0 + step},11.5\n{t0},10\n")
    df = read_price_file(p)
    assert list(df.index) == [T0_MS * 1000, (T0_MS + 60_000) * 1000]  # sorted
    assert df.loc[T0_MS * 1000].tolist() == [10.0, 10.0, 10.0, 10.0]  # close-only: O = H = L = C


def test_generic_ohlcv_and_headerless_binance_dump(tmp_path: Path) -> None:
    generic = _write(tmp_path / "g.csv", f"timestamp,open,high,low,close,volume\n{T0_MS},1,2,0.5,1.5,100\n{T0_MS + 60000},1.5,1.6,1.4,1.45,50\n")
    dump = _write(
        tmp_path / "d.csv",
        f"{T0_MS * 1000},1,2,0.5,1.5,100,{T0_MS * 1000 + 59_999_999},150,10,50,75,0\n"
        f"{T0_MS * 1000 + 60_000_000},1.5,1.6,1.4,1.45,50,{T0_MS * 1000 + 119_999_999},75,5,20,30,0\n",
    )
    a, b = read_price_file(generic), read_price_file(dump)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    np.testing.assert_array_equal(a.index, b.index)


@pytest.mark.parametrize(
    "text, match",
    [
        ("when,close\n1,2\n3,4\n", "needs a time column"),
        ("timestamp,close\n1749285840000,abc\n1749285900000,2\n", "non-numeric value in data row 1"),
        ("timestamp,close\n1749285840000,1\n1749285840000,2\n", "duplicate timestamp"),
        ("timestamp,close\n1749285840000,-1\n1749285900000,2\n", "positive"),
        ("timestamp,close\n1749285840000,1\n", "at least 2 rows"),
        ("timestamp,close\nyesterday,1\ntoday,2\n", "cannot parse the time column"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        read_price_file(_write(tmp_path / "bad.csv", text))


def test_missing_file() -> None:
    with pytest.raises(InvalidInput, match="not found"):
        read_price_file("/nonexistent/prices.csv")


def test_funding_events_land_on_their_bars(tmp_path: Path) -> None:
    bars = (T0_MS + 60_000 * np.arange(10)) * 1000
    # One event exactly at bar 2's start, one inside bar 5, one before and one after the bars (ignored).
    p = _write(
        tmp_path / "f.csv",
        "fundingTime,fundingRate\n"
        f"{T0_MS - 60_000},0.5\n{T0_MS + 120_000},0.0001\n{T0_MS + 330_000},-0.0002\n{T0_MS + 600_000},0.7\n",
    )
    rates = read_funding_file(p, bars)
    expected = np.zeros(10)
    expected[2], expected[5] = 0.0001, -0.0002
    np.testing.assert_array_equal(rates, expected)


def test_align_and_clip() -> None:
    a = pd.DataFrame({"close": [1.0, 2.0, 3.0]}, index=[1, 2, 3])
    b = pd.DataFrame({"close": [5.0, 6.0, 7.0]}, index=[2, 3, 4])
    closes = align_closes({"A": a, "B": b}, min_bars=2)
    assert list(closes.index) == [2, 3] and closes.loc[3].tolist() == [3.0, 6.0]
    with pytest.raises(InvalidInput, match="share only 2"):
        align_closes({"A": a, "B": b}, min_bars=3)
    t = [datetime_to_us(utc("2025-06-07T00:00")) + 60_000_000 * k for k in range(5)]
    frame = pd.DataFrame({"close": range(1, 6)}, index=t)
    cut = clip_range(frame, utc("2025-06-07T00:01"), utc("2025-06-07T00:03"))
    assert list(cut["close"]) == [2, 3]
