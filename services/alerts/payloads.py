"""Webhook bodies per channel format, and the HMAC-SHA256 signature over the exact body bytes."""

from __future__ import annotations

import hashlib
import hmac

import msgspec
import orjson

from shared.alerts.spec import Channel
from shared.messages import AlertEvent

SIGNATURE_HEADER = "X-Pairs-Signature"  # "sha256=<hex of HMAC-SHA256(secret, body)>"
EVENT_ID_HEADER = "X-Pairs-Alert-Id"  # the dedupe key: receivers drop repeats after a retry


def render(event: AlertEvent, channel: Channel) -> bytes:
    """The body posted for one event on one channel."""
    title = f"[{event.kind}] {event.message}"
    if channel.format == "slack":
        return orjson.dumps({"text": title})
    if channel.format == "telegram":
        return orjson.dumps({"chat_id": channel.chat_id, "text": title, "disable_web_page_preview": True})
    return msgspec.json.encode(event)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
