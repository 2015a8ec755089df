"""`pairs download` fetches dump zips, verifies the published sha256, skips verified files, rejects corrupt ones."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import orjson

from services.ingest.download import main
from tests.fakebinance import SPOT, USDM, Tape, generated_tapes

DAY = "2024-08-09"  # recorded samples and generated tapes both trade on this UTC day


def _tapes(tapes: list[Tape]) -> list[Tape]:
    spot = [t for t in tapes if t.venue == SPOT and t.kind == "trade"]
    um_agg = [t for t in generated_tapes(duration_s=10.0, kinds=("aggTrade",), venues=(USDM,))]
    return spot + um_agg


def _rows(zip_path: Path) -> list[list[str]]:
    with zipfile.ZipFile(zip_path) as zf:
        (name,) = zf.namelist()
        return list(csv.reader(io.StringIO(zf.read(name).decode())))


def _run(argv: list[str], capsys) -> tuple[int, dict]:
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()[-1]
    return code, orjson.loads(out)


def test_download_verifies_and_skips_present_files(tapes, fake_factory, tmp_path: Path, capsys) -> None:
    all_tapes = _tapes(tapes)
    spot = next(t for t in all_tapes if t.venue == SPOT)
    fb = fake_factory(all_tapes)
    base = ["--base-url", fb.rest_url, "--dest", str(tmp_path), "--start", DAY]
    code, out = _run(["--market", "spot", "--data", "trades", "--symbols", spot.symbol, *base], capsys)
    assert code == 0 and len(out["downloaded"]) == 1
    path = tmp_path / out["downloaded"][0]
    assert out["downloaded"][0] == f"data/spot/daily/trades/{spot.symbol}/{spot.symbol}-trades-{DAY}.zip"
    published = (path.parent / (path.name + ".CHECKSUM")).read_text().split()[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == published
    rows = _rows(path)  # spot: no header; id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch
    day_payloads = [p for p in spot.payloads if p["T"] >= 1723161600000]
    assert [(int(r[0]), r[1], r[2], int(r[4])) for r in rows] == [(p["t"], p["p"], p["q"], p["T"]) for p in day_payloads]

    zips_before = [c for c in fb.rest_calls() if c.path.endswith(".zip")]
    code, out = _run(["--market", "spot", "--data", "trades", "--symbols", spot.symbol, *base], capsys)
    assert code == 0 and out["skipped"] == [f"data/spot/daily/trades/{spot.symbol}/{spot.symbol}-trades-{DAY}.zip"]
    assert [c for c in fb.rest_calls() if c.path.endswith(".zip")] == zips_before

    code, out = _run(["--market", "um", "--data", "aggTrades", "--symbols", "BTCUSDT", *base], capsys)
    assert code == 0
    rows = _rows(tmp_path / out["downloaded"][0])
    assert rows[0][0] == "agg_trade_id"  # USD-M dumps carry a header row


def test_download_rejects_a_corrupted_file(tapes, fake_factory, tmp_path: Path, capsys) -> None:
    all_tapes = _tapes(tapes)
    spot = next(t for t in all_tapes if t.venue == SPOT)
    fb = fake_factory(all_tapes)
    name = f"{spot.symbol}-trades-{DAY}.zip"
    fb.break_dump(name)
    code, out = _run(["--market", "spot", "--data", "trades", "--symbols", spot.symbol, "--start", DAY,
                      "--base-url", fb.rest_url, "--dest", str(tmp_path)], capsys)
    assert code == 1 and len(out["failed"]) == 1 and "sha256" in out["failed"][0]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "nothing may be kept from a corrupt download"


def test_unpublished_files_are_reported_missing(tapes, fake_factory, tmp_path: Path, capsys) -> None:
    fb = fake_factory(_tapes(tapes))
    argv = ["--market", "spot", "--data", "trades", "--symbols", "BTCUSDT", "--start", "2030-01-01",
            "--base-url", fb.rest_url, "--dest", str(tmp_path)]
    code, out = _run(argv, capsys)
    assert code == 1 and len(out["missing"]) == 1
    code, out = _run([*argv, "--skip-missing"], capsys)
    assert code == 0
