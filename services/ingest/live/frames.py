"""What a frame on a live socket is, beyond a trade: which status stream, a shutdown notice, an ack.

Trades go through the shared normaliser (``parse_combined_frame``) on the hot path; only frames
that carry no trade are looked at again here, with a tiny envelope decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

SERVER_SHUTDOWN = "serverShutdown"


class _Event(msgspec.Struct):
    e: str | None = None


class _Data(msgspec.Struct):
    e: str | None = None


class _Envelope(msgspec.Struct):
    stream: str | None = None
    data: _Data | None = None
    e: str | None = None
    event: _Event | None = None  # WebSocket-API style ``{"event": {"e": "serverShutdown", ...}}``
    id: int | str | None = None
    result: object = None


_decoder = msgspec.json.Decoder(_Envelope)


@dataclass(frozen=True, slots=True)
class FrameInfo:
    stream: str | None  # combined-stream name, when the frame has one
    shutdown: bool  # Binance announced it will close this socket
    ack: bool  # reply to a control message


def inspect_frame(raw: str | bytes) -> FrameInfo | None:
    """Classify a non-trade frame; None when it is not even a JSON object of the expected shape."""
    try:
        env = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    events = (env.e, env.event.e if env.event else None, env.data.e if env.data else None)
    return FrameInfo(stream=env.stream, shutdown=SERVER_SHUTDOWN in events, ack=env.id is not None)
