"""Validation of common query parameters, answering 422 with the field and the problem."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException

from shared.errors import InvalidInput
from shared.instruments import Instrument, Pair
from shared.timeframes import TIMEFRAME_US


def bad(field: str, problem: str) -> HTTPException:
    return HTTPException(status_code=422, detail={"field": field, "problem": problem})


def instrument_param(value: str, field: str = "instrument") -> str:
    try:
        return Instrument.parse(value).id
    except InvalidInput as exc:
        raise bad(field, str(exc)) from None


def pair_param(value: str, field: str = "pair") -> str:
    try:
        return Pair.parse(value).id
    except InvalidInput as exc:
        raise bad(field, str(exc)) from None


def timeframe_param(value: str, *, bars_only: bool, field: str = "timeframe") -> str:
    allowed = [tf for tf, us in TIMEFRAME_US.items() if us > 0 or not bars_only]
    if value not in allowed:
        raise bad(field, f"unknown timeframe {value!r}; choose one of {', '.join(allowed)}")
    return value


def time_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    start = _utc(start) if start else datetime(1970, 1, 1, tzinfo=UTC)
    end = _utc(end) if end else datetime(9999, 12, 31, tzinfo=UTC)
    if end < start:
        raise bad("to", "must not be earlier than 'from'")
    return start, end


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
