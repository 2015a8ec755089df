"""ASGI middleware: request body size limit (413) and request latency for ``/metrics``.

Both are plain ASGI (no ``BaseHTTPMiddleware``), so streamed responses (CSV export, SSE) and
WebSockets pass through untouched and bodies are never buffered here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import HTTPException
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH_PREFIX = "/api/v1/upload"


def too_large(limit: int) -> HTTPException:
    return HTTPException(
        status_code=413, detail={"field": "body", "problem": f"request body larger than {limit} bytes"}
    )


class BodySizeLimit:
    """Refuse bodies above a limit: at once from Content-Length, or while streaming (chunked uploads).

    The limit is chosen per path (uploads get their own, larger limit). Raising ``HTTPException``
    from ``receive`` lets FastAPI's exception middleware turn it into the usual JSON error.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_413(send, limit)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _send_413(send: Send, limit: int) -> None:
    body = (
        b'{"detail":{"field":"body","problem":"request body larger than ' + str(limit).encode() + b' bytes"}}'
    )
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class RequestTimer:
    """Observe each HTTP request's duration, labelled by route template (not raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.histogram.labels(method=scope["method"], route=template, status=str(status)).observe(
                time.perf_counter() - start
            )
