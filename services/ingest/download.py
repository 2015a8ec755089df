"""``pairs download``: official Binance dump zips (data.binance.vision layout), sha256-verified.

    pairs download --market spot|um --data trades|aggTrades|klines [--interval 1m] [--period daily|monthly]
                   --symbols BTCUSDT,ETHUSDT --start 2024-08-08 [--end 2024-08-09] [--dest DIR] [--base-url URL]

Each zip is fetched with its ``.CHECKSUM`` (``<sha256>  <file name>``), hashed while streaming to a
temporary file, and only renamed into place when the hash matches; a mismatch is an error and
nothing is kept. A file already present whose hash matches its stored ``.CHECKSUM`` is skipped, so
re-running is incremental. Exit code 0 only when every requested file is present and verified
(``--skip-missing`` tolerates files Binance has not published, e.g. today's).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared import logs
from shared.config import CommonSettings
from shared.errors import InvalidInput

log = logging.getLogger(__name__)

MARKETS = {"spot": "spot", "um": "futures/um", "cm": "futures/cm"}
DATA_KINDS = ("trades", "aggTrades", "klines")
_CHUNK = 1 << 16


class DownloadSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="DOWNLOAD_", env_file=".env", env_ignore_empty=True, extra="ignore")

    base_url: str = Field("https://data.binance.vision", description="dump server root")
    dest_dir: Path = Field(Path("binance-dumps"), description="local mirror of the dump tree")
    timeout_s: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0, description="extra attempts after a network error or 5xx")


@dataclass(frozen=True)
class DumpFile:
    market: str  # spot | um | cm
    period: str  # daily | monthly
    data: str  # trades | aggTrades | klines
    symbol: str
    when: str  # YYYY-MM-DD or YYYY-MM
    interval: str = "1m"

    @property
    def path(self) -> str:
        label = self.interval if self.data == "klines" else self.data
        folder = f"data/{MARKETS[self.market]}/{self.period}/{self.data}/{self.symbol}"
        if self.data == "klines":
            folder += f"/{self.interval}"
        return f"{folder}/{self.symbol}-{label}-{self.when}.zip"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


@dataclass
class Outcome:
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"downloaded": self.downloaded, "skipped": self.skipped, "missing": self.missing, "failed": self.failed}


class ChecksumMismatch(InvalidInput):
    """The bytes served do not hash to the published checksum."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_checksum(text: str, name: str) -> str:
    """The sha256 of ``name`` from a ``.CHECKSUM`` body (``<hex>  <name>``)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 1 and len(parts[0]) == 64 and (len(parts) == 1 or parts[-1].lstrip("*") == name):
            try:
                int(parts[0], 16)
            except ValueError:
                continue
            return parts[0].lower()
    raise InvalidInput(f"no sha256 for {name} in checksum file: {text[:120]!r}")


def periods(period: str, start: date, end: date) -> list[str]:
    if end < start:
        raise InvalidInput(f"--end {end} is before --start {start}")
    if period == "daily":
        return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    months, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


class Downloader:
    def __init__(self, settings: DownloadSettings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.Client(base_url=settings.base_url.rstrip("/"), timeout=settings.timeout_s,
                                             follow_redirects=True)

    def close(self) -> None:
        self.client.close()

    def fetch(self, dump: DumpFile, dest: Path, outcome: Outcome) -> None:
        target = dest / dump.path
        stored = target.with_name(target.name + ".CHECKSUM")
        if target.exists() and stored.exists():
            try:
                if sha256_of(target) == parse_checksum(stored.read_text(), dump.name):
                    outcome.skipped.append(dump.path)
                    return
            except InvalidInput:
                pass  # unreadable stored checksum: fetch again
        resp = self._get(dump.path + ".CHECKSUM")
        if resp.status_code == 404:
            outcome.missing.append(dump.path)
            return
        resp.raise_for_status()
        checksum_text = resp.text
        expected = parse_checksum(checksum_text, dump.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        try:
            actual = self._stream_to(dump.path, tmp)
            if actual is None:
                outcome.missing.append(dump.path)
                return
            if actual != expected:
                raise ChecksumMismatch(f"{dump.path}: sha256 {actual} != published {expected}")
            tmp.replace(target)
            stored.write_text(checksum_text)
        finally:
            tmp.unlink(missing_ok=True)
        outcome.downloaded.append(dump.path)

    def _stream_to(self, path: str, tmp: Path) -> str | None:
        digest = hashlib.sha256()
        for attempt in range(self.settings.retries + 1):
            try:
                with self.client.stream("GET", "/" + path) as resp:
                    if resp.status_code == 404:
                        return None
                    resp.raise_for_status()
                    digest = hashlib.sha256()
                    with tmp.open("wb") as fh:
                        for chunk in resp.iter_bytes(_CHUNK):
                            digest.update(chunk)
                            fh.write(chunk)
                return digest.hexdigest()
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if attempt >= self.settings.retries or _is_client_error(exc):
                    raise
                log.warning("download %s failed (%s); retrying", path, exc)
                time.sleep(min(5.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def _get(self, path: str) -> httpx.Response:
        for attempt in range(self.settings.retries + 1):
            try:
                resp = self.client.get("/" + path)
                if resp.status_code < 500 or attempt >= self.settings.retries:
                    return resp
            except httpx.TransportError:
                if attempt >= self.settings.retries:
                    raise
            time.sleep(min(5.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")


def _is_client_error(exc: Exception) -> bool:
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500


def download(settings: DownloadSettings, files: list[DumpFile], dest: Path) -> Outcome:
    outcome = Outcome()
    downloader = Downloader(settings)
    try:
        for dump in files:
            try:
                downloader.fetch(dump, dest, outcome)
            except (InvalidInput, httpx.HTTPError, OSError) as exc:
                log.error("%s", exc)
                outcome.failed.append(f"{dump.path}: {exc}")
    finally:
        downloader.close()
    return outcome


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pairs download", description=__doc__.split("\n\n")[0])
    p.add_argument("--market", choices=tuple(MARKETS), default="spot")
    p.add_argument("--data", choices=DATA_KINDS, default="aggTrades")
    p.add_argument("--interval", default="1m", help="kline interval (klines only)")
    p.add_argument("--period", choices=("daily", "monthly"), default="daily")
    p.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--start", required=True, type=date.fromisoformat, help="first date, YYYY-MM-DD")
    p.add_argument("--end", type=date.fromisoformat, help="last date (default: --start)")
    p.add_argument("--dest", type=Path, help="local folder (default DOWNLOAD_DEST_DIR)")
    p.add_argument("--base-url", help="dump server (default DOWNLOAD_BASE_URL)")
    p.add_argument("--skip-missing", action="store_true", help="files not published are not an error")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    settings = DownloadSettings()
    if args.base_url:
        settings = settings.model_copy(update={"base_url": args.base_url})
    logs.setup("download", settings.log_level, settings.log_json)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    try:
        whens = periods(args.period, args.start, args.end or args.start)
        files = [DumpFile(args.market, args.period, args.data, sym, w, args.interval) for sym in symbols for w in whens]
    except InvalidInput as exc:
        print(f"pairs download: {exc}", file=sys.stderr)
        return 2
    outcome = download(settings, files, args.dest or settings.dest_dir)
    print(orjson.dumps(outcome.as_dict()).decode())
    if outcome.failed or (outcome.missing and not args.skip_missing):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
