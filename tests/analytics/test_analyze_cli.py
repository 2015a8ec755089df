"""``pairs analyze`` end to end: real 1-minute klines, generated files in every supported layout, bad files.

Oracles: the recorded data's PROVENANCE.md (overlap 2025-06-07 08:44 -> 2025-06-16 21:40 UTC, 13,737
bars per leg), an independent pandas resample (last price per second, forward-filled) of the
generated ticks, and statsmodels OLS (rtol 1e-9) on those bars.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from services.analytics.analyze import main
from services.analytics.price_files import read_prices
from shared.testing.generator import CointegratedSpec, generate_ticks

KLINES = "binance/klines/usdm_{}_1m_{}.signalbot.csv.gz"
SPANS = {"BTCUSDT": "20250606T2141Z_20250616T2140Z", "ETHUSDT": "20250607T0844Z_20250617T0843Z"}
SPEC = CointegratedSpec(sigma_x=20.0, duration_s=240.0, theta=1.0 / 20.0)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict | None, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


@pytest.fixture(scope="module")
def legs() -> dict[str, pd.DataFrame]:
    """Generated ticks per leg: columns ts_us, price, qty, trade_id."""
    out: dict[str, list[tuple[int, float, float, int]]] = {}
    for t in generate_ticks(SPEC):
        out.setdefault(t.instrument, []).append((t.ts_event_us, t.price, t.qty, t.trade_id))
    cols = ["ts_us", "price", "qty", "trade_id"]
    return {"y": pd.DataFrame(out[SPEC.y_instrument], columns=cols), "x": pd.DataFrame(out[SPEC.x_instrument], columns=cols)}


def expected_bars(legs: dict[str, pd.DataFrame], rule: str = "1s") -> pd.DataFrame:
    series = {
        k: pd.Series(v["price"].to_numpy(), index=pd.to_datetime(v["ts_us"], unit="us", utc=True)).resample(rule).last().ffill()
        for k, v in legs.items()
    }
    both = pd.concat(series, axis=1).ffill()
    start = max(s.index[0] for s in series.values())
    end = min(s.index[-1] for s in series.values())
    return both.loc[start:end].dropna()


def write_layout(leg: pd.DataFrame, layout: str, path: Path) -> Path:
    """One leg in a Binance dump layout (the column sets of DOMAIN_NOTES / binance-public-data)."""
    ms = leg["ts_us"] // 1000
    price = leg["price"].map(lambda p: f"{p:.8f}")
    qty = leg["qty"].map(lambda q: f"{q:.8f}")
    if layout == "spot_trades_us_noheader":  # id,price,qty,quote_qty,time(µs),is_buyer_maker,is_best_match
        frame = pd.DataFrame({"id": leg["trade_id"], "p": price, "q": qty, "qq": "1.0", "t": leg["ts_us"], "m": "True", "b": "True"})
        header = False
    elif layout == "usdm_trades_ms_header":
        frame = pd.DataFrame({"id": leg["trade_id"], "price": price, "qty": qty, "quote_qty": "1.0", "time": ms, "is_buyer_maker": "true"})
        header = True
    elif layout == "spot_aggtrades_ms_noheader":
        frame = pd.DataFrame({"a": leg["trade_id"], "p": price, "q": qty, "f": leg["trade_id"], "l": leg["trade_id"], "T": ms, "m": "False", "M": "True"})
        header = False
    elif layout == "usdm_aggtrades_ms_header":
        frame = pd.DataFrame({"agg_trade_id": leg["trade_id"], "price": price, "quantity": qty, "first_trade_id": leg["trade_id"], "last_trade_id": leg["trade_id"], "transact_time": ms, "is_buyer_maker": "false"})
        header = True
    elif layout == "generic_iso":
        frame = pd.DataFrame({"timestamp": pd.to_datetime(leg["ts_us"], unit="us", utc=True).map(lambda t: t.isoformat()), "price": price})
        header = True
    else:
        raise AssertionError(layout)
    text = frame.to_csv(index=False, header=header)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_klines_1s(leg: pd.DataFrame, path: Path, header: bool) -> Path:
    """Official 12-column kline layout (1-second klines), open_time/close_time in ms."""
    s = pd.Series(leg["price"].to_numpy(), index=pd.to_datetime(leg["ts_us"], unit="us", utc=True))
    ohlc = s.resample("1s").ohlc().dropna()
    open_ms = ohlc.index.as_unit("ms").asi8
    frame = pd.DataFrame({
        "open_time": open_ms, "open": ohlc["open"], "high": ohlc["high"], "low": ohlc["low"], "close": ohlc["close"],
        "volume": 1.0, "close_time": open_ms + 999, "quote_volume": 1.0, "count": 1,
        "taker_buy_volume": 0.5, "taker_buy_quote_volume": 0.5, "ignore": 0,
    })
    path.write_text(frame.to_csv(index=False, header=header))
    return path


LAYOUTS = ["spot_trades_us_noheader", "usdm_trades_ms_header", "spot_aggtrades_ms_noheader", "usdm_aggtrades_ms_header", "generic_iso"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_back_the_ticks(legs, layout: str, tmp_path: Path) -> None:
    path = write_layout(legs["x"], layout, tmp_path / f"x_{layout}.csv.gz")
    got = read_prices(path)
    np.testing.assert_array_equal(got.to_numpy(), legs["x"]["price"].to_numpy())
    # ms layouts keep ms precision; µs and ISO keep µs.
    unit = 1 if layout in ("spot_trades_us_noheader", "generic_iso") else 1000
    expected_us = (legs["x"]["ts_us"] // unit * unit).to_numpy()
    np.testing.assert_array_equal(got.index.as_unit("us").asi8, expected_us)


@pytest.mark.parametrize(("y_layout", "x_layout"), [("usdm_aggtrades_ms_header", "spot_trades_us_noheader"), ("generic_iso", "spot_aggtrades_ms_noheader")])
def test_cli_on_generated_trade_files(legs, y_layout: str, x_layout: str, tmp_path: Path, capsys) -> None:
    y_path = write_layout(legs["y"], y_layout, tmp_path / "y.csv")
    x_path = write_layout(legs["x"], x_layout, tmp_path / "x.csv.gz")
    code, report, err = run([str(y_path), str(x_path), "--timeframe", "1s", "--window", "60"], capsys)
    assert code == 0, err
    bars = expected_bars({k: v.assign(ts_us=v["ts_us"] // 1000 * 1000) for k, v in legs.items()})
    assert report["nobs"] == len(bars)
    fit = sm.OLS(bars["y"].to_numpy(), sm.add_constant(bars["x"].to_numpy())).fit()
    np.testing.assert_allclose([report["hedge"]["ols"]["alpha"], report["hedge"]["ols"]["beta"]], fit.params, rtol=1e-9)
    assert set(report["hedge"]) == {"ols", "kalman", "huber", "theil_sen"}


@pytest.mark.parametrize("header", [True, False])
def test_cli_on_generated_klines(legs, header: bool, tmp_path: Path, capsys) -> None:
    y_path = write_klines_1s(legs["y"], tmp_path / "y_klines.csv", header)
    x_path = write_klines_1s(legs["x"], tmp_path / "x_klines.csv", header)
    code, report, err = run([str(y_path), str(x_path), "--timeframe", "1s", "--window", "30", "--method", "ols"], capsys)
    assert code == 0, err
    bars = expected_bars(legs)  # kline close = last trade of its second
    assert report["nobs"] == len(bars)
    assert list(report["hedge"]) == ["ols"]
    fit = sm.OLS(bars["y"].to_numpy(), sm.add_constant(bars["x"].to_numpy())).fit()
    np.testing.assert_allclose(report["hedge"]["ols"]["beta"], fit.params[1], rtol=1e-9)


@pytest.mark.real_data
def test_cli_on_real_klines(data_dir: Path, capsys) -> None:
    eth = data_dir / KLINES.format("ETHUSDT", SPANS["ETHUSDT"])
    btc = data_dir / KLINES.format("BTCUSDT", SPANS["BTCUSDT"])
    code, report, err = run([str(eth), str(btc), "--timeframe", "1m", "--window", "300", "--method", "ols", "--method", "huber"], capsys)
    assert code == 0, err
    # PROVENANCE.md: overlap 2025-06-07 08:44 -> 2025-06-16 21:40 UTC, 13,737 bars in each file.
    assert report["nobs"] == 13_737
    assert report["start"] == "2025-06-07T08:44:00+00:00" and report["end"] == "2025-06-16T21:40:00+00:00"
    closes = pd.concat(
        {k: pd.read_csv(p, index_col="open_time")["close"] for k, p in (("y", eth), ("x", btc))}, axis=1, join="inner"
    )
    fit = sm.OLS(closes["y"].to_numpy(), sm.add_constant(closes["x"].to_numpy())).fit()
    np.testing.assert_allclose(report["hedge"]["ols"]["beta"], fit.params[1], rtol=1e-9)
    assert report["describe"]["y"]["last"] == closes["y"].iloc[-1]


@pytest.mark.real_data
@pytest.mark.slow
def test_pairs_console_script_on_real_klines_5m(data_dir: Path) -> None:
    eth = data_dir / KLINES.format("ETHUSDT", SPANS["ETHUSDT"])
    btc = data_dir / KLINES.format("BTCUSDT", SPANS["BTCUSDT"])
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "analyze", str(eth), str(btc), "--timeframe", "5m", "--window", "100", "--indent", "0"],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # Buckets from the one holding 08:44 (08:40) to 21:40 on the 16th, every 5 minutes.
    expected = (pd.Timestamp("2025-06-16 21:40") - pd.Timestamp("2025-06-07 08:40")) // pd.Timedelta("5min") + 1
    assert report["timeframe"] == "5m" and report["nobs"] == expected


def bad_files(tmp_path: Path, legs) -> dict[str, tuple[list[str], str]]:
    good = write_layout(legs["x"], "usdm_trades_ms_header", tmp_path / "good.csv")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "garbage.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    (tmp_path / "header.csv").write_text("foo,bar\n1,2\n")
    (tmp_path / "negative.csv").write_text("timestamp,price\n1723161600000,-5\n")
    (tmp_path / "text_price.csv").write_text("timestamp,price\n1723161600000,abc\n")
    (tmp_path / "cols5.csv").write_text("1,2,3,4,5\n")
    (tmp_path / "old.csv").write_text("timestamp,price\n2001-01-01T00:00:00Z,5\n2001-01-01T00:01:00Z,6\n")
    return {
        "missing": ([str(tmp_path / "nope.csv"), str(good)], "no such file"),
        "empty": ([str(tmp_path / "empty.csv"), str(good)], "empty"),
        "garbage": ([str(tmp_path / "garbage.csv.gz"), str(good)], "not a readable CSV"),
        "header": ([str(tmp_path / "header.csv"), str(good)], "unrecognised header"),
        "negative": ([str(tmp_path / "negative.csv"), str(good)], "invalid price '-5' in data row 1"),
        "text_price": ([str(tmp_path / "text_price.csv"), str(good)], "invalid price 'abc'"),
        "columns": ([str(tmp_path / "cols5.csv"), str(good)], "5 columns"),
        "no_overlap": ([str(tmp_path / "old.csv"), str(good)], "do not overlap"),
        "too_few": ([str(good), str(good), "--timeframe", "1m", "--window", "3"], "at least 60"),
        "window": ([str(good), str(good), "--timeframe", "1s", "--window", "100000"], "longer than the series"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "header", "negative", "text_price", "columns", "no_overlap", "too_few", "window"])
def test_bad_input_exits_2_with_message(legs, case: str, tmp_path: Path, capsys) -> None:
    argv, match = bad_files(tmp_path, legs)[case]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert match in err and "Traceback" not in err


def test_bad_arguments_exit_2(capsys) -> None:
    assert main(["only_one_file"]) == 2
    assert main(["a", "b", "--timeframe", "tick"]) == 2
    assert main(["a", "b", "--method", "lasso"]) == 2
    assert main(["--help"]) == 0
    assert "usage: pairs analyze" in capsys.readouterr().out
