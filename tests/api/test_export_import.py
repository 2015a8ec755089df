"""CSV export (streamed from the stored rows) and upload (validated, stored, resampled), round trips included."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from tests.api.conftest import AUTH, PAIR, api_settings
from tests.pipeline.helpers import stored_metrics

BAR_KEYS = ["open", "high", "low", "close", "volume", "buy_volume", "trades"]


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _bars(db, instrument: str, tf: str) -> list[tuple]:
    return db.execute(
        "SELECT ts, open, high, low, close, volume, buy_volume, trades FROM bars "
        "WHERE instrument = %s AND timeframe = %s ORDER BY ts", (instrument, tf)).fetchall()  # fmt: skip


def _upload(client, kind: str, content: bytes, name: str = "data.csv", **params) -> dict:
    r = client.post(f"/api/v1/upload/{kind}", params=params, files={"file": (name, content, "text/csv")}, headers=AUTH)
    return {"status": r.status_code, **r.json()}


def test_bar_export_reproduces_stored_rows_exactly(client, pipeline, db):
    resp = client.get("/api/v1/export/bars.csv", params={"instrument": PAIR.x.id, "timeframe": "1s"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = _csv_rows(resp.text)
    stored = _bars(db, PAIR.x.id, "1s")
    assert len(rows) == len(stored) > 100
    for row, ref in zip(rows, stored, strict=True):
        assert int(row["ts_us"]) == int(ref[0].timestamp() * 1_000_000)
        assert row["timestamp"] == ref[0].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert [float(row[k]) for k in BAR_KEYS[:-1]] == list(ref[1:-1])  # shortest exact floats: equal, not close
        assert int(row["trades"]) == ref[-1]


def test_metric_export_matches_stored_metrics(client, pipeline, db):
    text = client.get("/api/v1/export/metrics.csv", params={"pair": PAIR.id, "timeframe": "1s"}).text
    rows = _csv_rows(text)
    stored = stored_metrics(db, PAIR.id, "1s")
    assert len(rows) == len(stored) > 0
    got = [float(r["zscore"]) if r["zscore"] else None for r in rows]
    assert got == [None if v != v else v for v in stored.zscore.tolist()]
    assert [int(r["seq"]) for r in rows] == stored.seq.tolist()


def test_bar_export_then_upload_reproduces_the_same_bars(client, pipeline, db):
    exported = client.get("/api/v1/export/bars.csv", params={"instrument": PAIR.x.id, "timeframe": "1s"}).content
    report = _upload(client, "bars", exported, timeframe="1s")
    assert report["status"] == 200, report
    uploaded_id = f"upload.{PAIR.x.symbol}"
    assert report["instruments"] == [uploaded_id] and report["rejected"] == 0
    assert _bars(db, uploaded_id, "1s") == _bars(db, PAIR.x.id, "1s")


def test_tick_export_then_upload_resamples_to_the_workers_bars(client, pipeline, db):
    exported = client.get("/api/v1/export/ticks.csv", params={"instrument": PAIR.y.id}).content
    n_ticks = db.execute("SELECT count(*) FROM ticks WHERE instrument = %s", (PAIR.y.id,)).fetchone()[0]
    report = _upload(client, "ticks", exported, timeframes="1s,1m")
    assert report["status"] == 200, report
    assert (report["accepted"], report["stored"], report["rejected"]) == (n_ticks, n_ticks, 0)
    uploaded_id = f"upload.{PAIR.y.symbol}"
    for tf in ("1s", "1m"):
        worker = _bars(db, PAIR.y.id, tf)
        uploaded = _bars(db, uploaded_id, tf)
        # the worker leaves the last, still-open bucket unwritten; every bar it closed is reproduced exactly
        assert uploaded[: len(worker)] == worker, tf
        assert len(uploaded) - len(worker) <= 1
    again = _upload(client, "ticks", exported, timeframes="1s")
    assert (again["accepted"], again["stored"]) == (n_ticks, 0)  # the same trades are not stored twice


def test_binance_aggtrades_dump_is_resampled_like_pandas(client, db):
    rng = np.random.default_rng(3)
    n = 2000
    t_ms = 1_700_000_000_000 + np.cumsum(rng.integers(0, 400, n))
    price = np.round(30_000 + np.cumsum(rng.normal(0, 2, n)), 2)
    qty = np.round(rng.uniform(0.0001, 0.5, n), 5)
    maker = rng.random(n) < 0.5
    lines = [f"{1000 + i},{price[i]:.2f},{qty[i]:.5f},{5000 + i},{5000 + i},{t_ms[i]},{str(maker[i])},True"
             for i in range(n)]  # fmt: skip
    report = _upload(client, "ticks", ("\n".join(lines) + "\n").encode(), symbol="BTCUSDT", timeframes="1m")
    assert report["status"] == 200, report
    assert report["layout"] == "binance-aggTrades" and report["accepted"] == n
    # oracle: pandas resample of the same trades (first/max/min/last, summed quantity, trade count)
    frame = pd.DataFrame({"price": price, "qty": qty, "buy": np.where(maker, 0.0, qty)},
                         index=pd.to_datetime(t_ms, unit="ms", utc=True))  # fmt: skip
    ref = frame.resample("1min").agg({"price": ["first", "max", "min", "last", "count"], "qty": "sum", "buy": "sum"})
    ref = ref[ref[("price", "count")] > 0]
    got = _bars(db, "upload.BTCUSDT", "1m")
    assert len(got) == len(ref)
    for row, (ts, r) in zip(got, ref.iterrows(), strict=True):
        assert row[0] == ts.to_pydatetime()
        assert row[1:5] == (r[("price", "first")], r[("price", "max")], r[("price", "min")], r[("price", "last")])
        assert row[7] == r[("price", "count")]
        # volume is the exact decimal sum (1e-8 units); pandas' float sum may differ in the last bits
        assert row[5] == pytest.approx(r[("qty", "sum")], rel=1e-12)
        assert row[6] == pytest.approx(r[("buy", "sum")], rel=1e-12, abs=1e-12)


def test_klines_and_generic_layouts_with_aliases_gzip_and_zip(client, db):
    klines = ("1700000040000,10,12,9,11,5.5,1700000099999,60,7,2.5,27,0\n"
              "1700000100000,11,11.5,10.5,11.2,3,1700000159999,33,4,1,11,0\n")  # fmt: skip
    report = _upload(client, "bars", gzip.compress(klines.encode()), name="k.csv.gz", symbol="ETHUSDT", timeframe="1m")
    assert (report["status"], report["layout"], report["accepted"]) == (200, "binance-klines", 2), report
    rows = _bars(db, "upload.ETHUSDT", "1m")
    assert [r[1:] for r in rows] == [(10.0, 12.0, 9.0, 11.0, 5.5, 2.5, 7), (11.0, 11.5, 10.5, 11.2, 3.0, 1.0, 4)]

    generic = "Time,Ticker,PX,Size\n2024-01-01T00:00:00.5Z,SOLUSDT,100.5,2\n2024-01-01 00:00:01.25,SOLUSDT,101,1\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("trades.csv", generic)
    report = _upload(client, "ticks", buf.getvalue(), name="t.zip", timeframes="1s")
    assert (report["status"], report["accepted"], report["instruments"]) == (200, 2, ["upload.SOLUSDT"]), report
    ticks = db.execute("SELECT price, qty, side FROM ticks WHERE instrument = 'upload.SOLUSDT' ORDER BY ts").fetchall()
    assert ticks == [(100.5, 2.0, 1), (101.0, 1.0, 1)]  # no side column: tick rule (first and up-tick = buy)
    assert [r[4] for r in _bars(db, "upload.SOLUSDT", "1s")] == [100.5, 101.0]


def test_bad_lines_are_reported_with_line_numbers(client, db):
    text = ("timestamp,symbol,price,qty\n"      # line 1: header
            "1700000000000,BTCUSDT,100,1\n"     # 2 ok
            "1700000001000,BTCUSDT,-5,1\n"      # 3 negative price
            "\n"                                # 4 blank: skipped
            "yesterday,BTCUSDT,100,1\n"         # 5 bad time
            "1700000002000,BTCUSDT,101,abc\n"   # 6 bad qty
            "1700000003000,BTCUSDT,nan,1\n"     # 7 not finite
            "1700000004000,BTC USDT,100,1\n"    # 8 bad symbol
            "1700000005000,BTCUSDT,102\n"       # 9 missing column
            "1700000006000,BTCUSDT,103,2\n")    # 10 ok  # fmt: skip
    report = _upload(client, "ticks", text.encode(), timeframes="1m")
    assert report["status"] == 200
    assert (report["lines"], report["accepted"], report["rejected"]) == (10, 2, 6)
    lines = {e["line"]: e["problem"] for e in report["errors"]}
    assert sorted(lines) == [3, 5, 6, 7, 8, 9]
    assert "price" in lines[3] and "timestamp" in lines[5] and "qty" in lines[6] and "symbol" in lines[8]
    assert db.execute("SELECT count(*) FROM ticks WHERE instrument = 'upload.BTCUSDT'").fetchone()[0] == 2


@pytest.mark.parametrize(
    ("kind", "content", "params", "field", "words"),
    [
        ("ticks", b"1700000000000,2\n", {}, "file", "unrecognised"),
        ("ticks", b"a,b\n1,2\n", {}, "file", "header lacks timestamp, price, qty"),
        ("ticks", b"when,price,qty\n1,2,3\n", {"symbol": "X1"}, "file", "lacks timestamp"),
        ("ticks", b"1700000000000,100,1\n", {}, "file", "no valid"),  # no symbol anywhere
        ("bars", b"1700000000000,1,2,3,4,5\n", {"symbol": "AB"}, "file", "no valid"),  # high < low
        ("bars", b"x", {"timeframe": "2m"}, "timeframe", "unknown timeframe"),
        ("ticks", b"x", {"symbol": "bad symbol"}, "symbol", "symbol"),
        ("ticks", b"\xff\xfe\x00garbage", {"symbol": "AB"}, "file", "UTF-8"),
    ],
)
def test_unusable_uploads_answer_422_naming_the_problem(client, db, kind, content, params, field, words):
    report = _upload(client, kind, content, **params)
    assert report["status"] == 422, report
    assert report["detail"]["field"] == field and words in report["detail"]["problem"], report


def test_upload_size_limit_answers_413(settings, db):
    with TestClient(create_app(api_settings(settings, max_upload_bytes=2000))) as small:
        big = b"timestamp,symbol,price,qty\n" + b"1700000000000,BTCUSDT,100,1\n" * 200
        r = small.post("/api/v1/upload/ticks", files={"file": ("big.csv", big)}, headers=AUTH)
        assert r.status_code == 413 and r.json()["detail"]["field"] == "body"
        assert db.execute("SELECT count(*) FROM ticks").fetchone()[0] == 0
        r = small.post("/api/v1/pairs", content=b"{" + b" " * 2_000_000 + b"}", headers={**AUTH,
                       "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 413
