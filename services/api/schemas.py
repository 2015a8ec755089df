"""Response models shared by the core routes (explicit, so /docs documents every field)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    field: str | None = Field(None, description="The parameter or body field at fault.")
    problem: str = Field(..., description="What is wrong with it.")


class ErrorResponse(BaseModel):
    detail: ErrorDetail | list[dict] | str


class BarOut(BaseModel):
    ts: datetime = Field(..., description="UTC bucket start")
    open: float
    high: float
    low: float
    close: float
    volume: float
    buy_volume: float
    trades: int


class BarsResponse(BaseModel):
    instrument: str
    timeframe: str
    downsampled: bool = Field(..., description="True when buckets were merged to respect max_points.")
    count: int
    data: list[BarOut]


class MetricOut(BaseModel):
    ts: datetime = Field(..., description="UTC bucket start (trade time for timeframe 'tick')")
    seq: int
    method: str
    window: int
    y_price: float
    x_price: float
    warm: bool
    beta: float | None
    alpha: float | None
    r2: float | None
    spread: float | None
    zscore: float | None
    correlation: float | None
    adf_stat: float | None
    adf_p: float | None
    half_life: float | None
    computed_at: datetime


class MetricsResponse(BaseModel):
    pair: str
    timeframe: str
    count: int
    data: list[MetricOut]


class SnapshotRow(MetricOut):
    pair: str
    timeframe: str


class SnapshotResponse(BaseModel):
    count: int
    data: list[SnapshotRow]


class PairOut(BaseModel):
    id: str
    y: str
    x: str
    window: int
    timeframes: list[str]
    hedge_method: str
    enabled: bool


class InstrumentOut(BaseModel):
    id: str
    venue: str
    symbol: str


class ListResponse(BaseModel):
    count: int
    data: list


class PairsResponse(ListResponse):
    data: list[PairOut]


class InstrumentsResponse(ListResponse):
    data: list[InstrumentOut]
