"""Live metric and tick relay over WebSocket (``/api/v1/live/ws``) and Server-Sent Events (``/api/v1/live/sse``).

Protocol: see ``services.api.live`` and docs/api.md. Subscriptions are chosen at connect time
with the ``pairs`` and ``instruments`` query parameters (comma separated) and ``since`` (``$`` =
only new entries, ``0`` = everything still in the streams, or a stream id to resume after).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from services.api.deps import ReadAuth, RedisDep, SettingsDep
from services.api.live import ClientTooSlow, Relay, Subscription, error_frame, first_done
from services.api.schemas import ErrorResponse
from services.api.settings import ApiSettings
from shared.errors import InvalidInput

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/live", tags=["live"])

PairsQ = Annotated[str | None, Query(description="Comma-separated pairs (metric streams), Y~X", max_length=4000)]
InstrumentsQ = Annotated[str | None, Query(description="Comma-separated instruments (tick streams)", max_length=4000)]
SinceQ = Annotated[str, Query(description="'$' new entries only, '0' all retained, or a stream id", max_length=41)]
# WebSocket close codes (4000-4999 are application-defined).
CLOSE_TOO_SLOW = 4008
CLOSE_BAD_REQUEST = 4022
CLOSE_UNAUTHORIZED = 4001
CLOSE_UNAVAILABLE = 1011
CLOSE_TRY_LATER = 1013
CLOSE_WAIT_S = 5.0


def _relay(request_or_ws: Request | WebSocket, settings: ApiSettings, sub: Subscription) -> Relay:
    return Relay(request_or_ws.app.state.live_redis, sub, queue_size=settings.live_queue_size,
                 block_ms=settings.live_block_ms, batch=settings.live_batch, slow_grace_s=settings.live_slow_grace_s)  # fmt: skip


def _token_ok(settings: ApiSettings, supplied: str | None) -> bool:
    if not settings.protect_reads or settings.token is None:
        return True
    expected = settings.token.get_secret_value().encode()
    return supplied is not None and hmac.compare_digest(supplied.encode(), expected)


@router.websocket("/ws")
async def live_ws(ws: WebSocket, pairs: PairsQ = None, instruments: InstrumentsQ = None, since: SinceQ = "$") -> None:
    settings: ApiSettings = ws.app.state.settings
    metrics = ws.app.state.metrics
    await ws.accept()
    if not _token_ok(settings, ws.headers.get("x-api-token") or ws.query_params.get("token")):
        await ws.send_text(error_frame("missing or invalid API token"))
        await ws.close(CLOSE_UNAUTHORIZED)
        return
    try:
        sub = Subscription.parse(settings.keys, pairs, instruments, since)
    except InvalidInput as exc:
        await ws.send_text(error_frame(f"{getattr(exc, 'field', 'query')}: {exc}"))
        await ws.close(CLOSE_BAD_REQUEST)
        return
    if ws.app.state.live_count >= settings.live_max_clients:
        await ws.send_text(error_frame(f"the gateway already relays to {settings.live_max_clients} clients"))
        await ws.close(CLOSE_TRY_LATER)
        return
    relay = _relay(ws, settings, sub)
    metrics.live_clients.inc()
    ws.app.state.live_count += 1
    counted = True
    try:
        await relay.start_positions()
        error = await first_done(relay.read_forever(), relay.pump(ws.send_text, settings.live_heartbeat_s),
                                 _until_disconnect(ws))  # fmt: skip
        metrics.live_clients.dec()  # the relay is over, even if the close handshake lingers below
        ws.app.state.live_count -= 1
        counted = False
        if isinstance(error, ClientTooSlow):
            metrics.live_dropped.inc()
            log.info("live client dropped: %s", error)
            await _close(ws, CLOSE_TOO_SLOW, str(error))
        elif isinstance(error, RedisError):
            await _close(ws, CLOSE_UNAVAILABLE, "stream source unavailable")
        elif error is not None and not isinstance(error, WebSocketDisconnect | OSError):
            log.error("live relay failed", exc_info=error)
            await _close(ws, CLOSE_UNAVAILABLE, "internal error")
    except RedisError:
        await _close(ws, CLOSE_UNAVAILABLE, "stream source unavailable")
    finally:
        if counted:
            metrics.live_clients.dec()
            ws.app.state.live_count -= 1


async def _until_disconnect(ws: WebSocket) -> None:
    """Client messages are ignored (subscriptions are fixed at connect); returns when it goes away."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    """Send the close frame; a client that reads nothing cannot answer it, so don't wait long for that."""
    try:
        await asyncio.wait_for(ws.close(code, reason[:120]), timeout=CLOSE_WAIT_S)
    except (RuntimeError, OSError, WebSocketDisconnect, TimeoutError):  # gone, or not reading
        pass


@router.get("/sse", dependencies=[ReadAuth], summary="Live metrics and ticks as Server-Sent Events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "One `data:` line per frame"},
                       422: {"model": ErrorResponse, "description": "A parameter is invalid"},
                       503: {"model": ErrorResponse, "description": "Too many live clients"}})  # fmt: skip
async def live_sse(request: Request, r: RedisDep, settings: SettingsDep, pairs: PairsQ = None,
                   instruments: InstrumentsQ = None, since: SinceQ = "$") -> StreamingResponse:
    sub = Subscription.parse(settings.keys, pairs, instruments, since)
    if request.app.state.live_count >= settings.live_max_clients:
        raise HTTPException(status_code=503, detail={
            "field": None, "problem": f"the gateway already relays to {settings.live_max_clients} clients"})
    relay = _relay(request, settings, sub)
    await relay.start_positions()
    return StreamingResponse(_sse_events(relay, settings, request.app.state), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip


async def _sse_events(relay: Relay, settings: ApiSettings, state) -> AsyncIterator[str]:
    metrics = state.metrics
    out: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)

    async def send(frame: str) -> None:
        await out.put(f"data: {frame}\n\n")

    async def run() -> None:
        error = await first_done(relay.read_forever(), relay.pump(send, settings.live_heartbeat_s))
        if isinstance(error, ClientTooSlow):
            metrics.live_dropped.inc()
            await out.put(f"event: error\ndata: {error_frame(str(error))}\n\n")
        elif error is not None:
            await out.put(f"event: error\ndata: {error_frame('stream source unavailable')}\n\n")
        await out.put(None)

    metrics.live_clients.inc()
    state.live_count += 1
    task = asyncio.create_task(run())
    try:
        while (item := await out.get()) is not None:
            yield item
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        metrics.live_clients.dec()
        state.live_count -= 1
