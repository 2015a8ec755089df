"""Ingest test helpers: an asyncio Redis client bound to the test's namespace, stream readers,
and writers of small dump files in the official data.binance.vision layouts."""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from shared.config import CommonSettings
from shared.messages import Tick, from_fields
from shared.redis_client import connect_async
from shared.streams import Keys


@pytest.fixture
async def aredis(settings: CommonSettings) -> AsyncIterator[aioredis.Redis]:
    client = connect_async(settings)
    yield client
    await client.aclose()


@pytest.fixture
def keys(settings: CommonSettings) -> Keys:
    return settings.keys


def stream_ticks(client: redis.Redis, keys: Keys, instrument: str) -> list[Tick]:
    """Every tick on an instrument's stream, in stream order."""
    return [from_fields(fields, Tick) for _, fields in client.xrange(keys.ticks(instrument))]


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Write CSV lines plain, gzipped or zipped (one member, named like Binance's) by the suffix."""
    text = "".join(f"{line}\n" for line in lines).encode()
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text))
    elif path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(path.name.removesuffix(".zip"), text)
    else:
        path.write_bytes(text)
    return path
