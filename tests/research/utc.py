"""Tiny helper: an aware UTC datetime from ISO text."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
