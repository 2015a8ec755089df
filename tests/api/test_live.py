"""Live relay over a real uvicorn server: every metric in order, slow clients dropped alone, SSE, bad requests."""

from __future__ import annotations

import asyncio
import socket

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from services.api.app import create_app
from services.api.routes.live import CLOSE_BAD_REQUEST, CLOSE_TOO_SLOW, CLOSE_TRY_LATER, CLOSE_UNAUTHORIZED
from shared.messages import Tick, to_fields
from shared.testing.generator import generate_ticks
from shared.testing.streams import publish_ticks
from tests.api.conftest import PAIR, SPEC, TIMEFRAMES, TOKEN, api_settings, serve
from tests.pipeline.helpers import analytics_settings, run_worker_until_idle

INSTRUMENT = "sim.XRPUSDT"


def _entries(redis_client, key: str) -> list[tuple[str, dict]]:
    return [(i.decode(), orjson.loads(f[b"data"])) for i, f in redis_client.xrange(key)]


async def _frame(ws, timeout: float = 10.0) -> dict:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _data_frames(ws, n: int, timeout: float = 30.0) -> list[dict]:
    """The next ``n`` data frames (heartbeats skipped)."""
    out: list[dict] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            frame = orjson.loads(await ws.recv())
            if frame["channel"] != "heartbeat":
                out.append(frame)
    return out


def _ticks(start: int, n: int) -> list[Tick]:
    return [Tick(instrument=INSTRUMENT, trade_id=start + i, price=0.5 + (i % 100) * 1e-4, qty=10.0 + i % 7,
                 side="buy" if i % 2 else "sell", ts_event_us=1_700_000_000_000_000 + (start + i) * 1000,
                 ts_exchange_us=1_700_000_000_000_000 + (start + i) * 1000, ts_ingest_us=1_700_000_000_000_000,
                 source="simulated") for i in range(n)]  # fmt: skip


async def test_websocket_delivers_every_metric_in_order(settings, redis_client, db):
    app = create_app(api_settings(settings, live_heartbeat_s=0.2))
    with serve(app) as address:
        url = f"ws://{address}/api/v1/live/ws?pairs={PAIR.id}&since=$"
        async with websockets.connect(url) as ws:
            assert (await _frame(ws))["channel"] == "heartbeat"  # the relay holds its start position now
            publish_ticks(redis_client, settings.keys, generate_ticks(SPEC))
            worker = asyncio.create_task(asyncio.to_thread(
                run_worker_until_idle, analytics_settings(settings, window=30, timeframes=TIMEFRAMES), [PAIR]))
            published_so_far = 0
            received: list[dict] = []
            while not worker.done() or len(received) < published_so_far:
                published_so_far = redis_client.xlen(settings.keys.metrics(PAIR.id))
                try:
                    received.extend(await _data_frames(ws, 1, timeout=1.0))
                except TimeoutError:
                    pass
            await worker
    published = _entries(redis_client, settings.keys.metrics(PAIR.id))
    assert len(published) > 100
    assert [f["id"] for f in received] == [eid for eid, _ in published]
    assert [f["data"] for f in received] == [data for _, data in published]
    assert {(f["channel"], f["key"]) for f in received} == {("metrics", PAIR.id)}
    assert {d["timeframe"] for _, d in published} == set(TIMEFRAMES)


def _tiny_receive_buffer_socket(address: str) -> socket.socket:
    host, port = address.split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: caps the TCP window
    sock.connect((host, int(port)))
    return sock


async def test_slow_client_is_dropped_without_affecting_others(settings, redis_client, db):
    app = create_app(api_settings(settings, live_queue_size=50, live_heartbeat_s=5))
    key = settings.keys.ticks(INSTRUMENT)
    redis_client.xadd(key, to_fields(_ticks(0, 1)[0]))
    with serve(app, send_buffer=16_384) as address:
        url = f"ws://{address}/api/v1/live/ws?instruments={INSTRUMENT}"
        metrics = app.state.metrics
        async with websockets.connect(url, max_queue=1, sock=_tiny_receive_buffer_socket(address)) as slow, \
                websockets.connect(url) as fast:  # fmt: skip
            while metrics.live_clients._value.get() < 2:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # both relays past their start position
            received: list[dict] = []
            sent = 1
            batch = 500
            while metrics.live_dropped._value.get() == 0:
                assert sent < 200_000, "the slow client was never dropped"
                pipe = redis_client.pipeline(transaction=False)
                for tick in _ticks(sent, batch):
                    pipe.xadd(key, to_fields(tick))
                pipe.execute()
                sent += batch
                received.extend(await _data_frames(fast, batch))  # the fast client keeps up
            # the fast client is unaffected: still open, and it gets everything published afterwards too
            pipe = redis_client.pipeline(transaction=False)
            for tick in _ticks(sent, batch):
                pipe.xadd(key, to_fields(tick))
            pipe.execute()
            received.extend(await _data_frames(fast, batch))
            assert metrics.live_dropped._value.get() == 1 and metrics.live_clients._value.get() == 1
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(60):
                    while True:
                        await slow.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_TOO_SLOW
    published = [eid for eid, _ in _entries(redis_client, key)][1:]
    assert [f["id"] for f in received] == published
    assert [f["data"]["trade_id"] for f in received] == list(range(1, sent + batch))


async def test_sse_replays_from_a_position_then_heartbeats(settings, redis_client, db):
    key = settings.keys.ticks(INSTRUMENT)
    for tick in _ticks(0, 20):
        redis_client.xadd(key, to_fields(tick))
    ids = [eid for eid, _ in _entries(redis_client, key)]
    app = create_app(api_settings(settings, live_heartbeat_s=0.2))
    with serve(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
            params = {"instruments": INSTRUMENT, "since": ids[4]}
            async with http.stream("GET", "/api/v1/live/sse", params=params) as resp:
                assert resp.headers["content-type"].startswith("text/event-stream")
                frames = []
                async for line in resp.aiter_lines():
                    if line.startswith("data: "):
                        frames.append(orjson.loads(line[6:]))
                    if frames and frames[-1]["channel"] == "heartbeat":
                        break
            bad = await http.get("/api/v1/live/sse", params={"pairs": "nonsense"})
    assert [f["id"] for f in frames[:-1]] == ids[5:]  # strictly after the given position
    assert [f["data"]["trade_id"] for f in frames[:-1]] == list(range(5, 20))
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "pairs"


@pytest.mark.parametrize(
    ("query", "code", "words"),
    [
        ("pairs=ETHUSDT", CLOSE_BAD_REQUEST, "pairs"),
        ("", CLOSE_BAD_REQUEST, "at least one"),
        (f"instruments={INSTRUMENT}&since=yesterday", CLOSE_BAD_REQUEST, "since"),
        (f"instruments={INSTRUMENT}", CLOSE_UNAUTHORIZED, "token"),
    ],
)
async def test_bad_websocket_requests_get_an_error_frame_and_a_close_code(settings, db, query, code, words):
    app = create_app(api_settings(settings, protect_reads=(code == CLOSE_UNAUTHORIZED)))
    with serve(app) as address:
        async with websockets.connect(f"ws://{address}/api/v1/live/ws?{query}") as ws:
            frame = await _frame(ws)
            assert frame["channel"] == "error" and words in frame["problem"]
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd.code == code
        ok = f"ws://{address}/api/v1/live/ws?instruments={INSTRUMENT}&token={TOKEN}"
        async with websockets.connect(ok) as ws:  # the token as a query parameter (browsers cannot set headers)
            await ws.send("ignored")
            assert ws.state.name == "OPEN"


async def test_clients_beyond_the_limit_are_refused(settings, db):
    app = create_app(api_settings(settings, live_max_clients=1))
    with serve(app) as address:
        url = f"ws://{address}/api/v1/live/ws?instruments={INSTRUMENT}"
        async with websockets.connect(url) as first, websockets.connect(url) as second:
            frame = await _frame(second)
            assert frame["channel"] == "error" and "1 clients" in frame["problem"]
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(second.recv(), 5)
            assert closed.value.rcvd.code == CLOSE_TRY_LATER
            assert first.state.name == "OPEN"
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            while app.state.live_count:  # the first relay ends within one XREAD block
                await asyncio.sleep(0.05)
            async with websockets.connect(url):
                while app.state.live_count == 0:
                    await asyncio.sleep(0.02)
                busy = await http.get("/api/v1/live/sse", params={"instruments": INSTRUMENT})
                assert busy.status_code == 503
