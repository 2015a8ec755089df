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


class InstrumentDetail(InstrumentOut):
    created_at: datetime
    bars: list[BarCoverage] = Field(..., description="Stored bars per timeframe: count and time range")
    pairs: list[str] = Field(..., description="Configured pairs with this instrument as a leg")
    last_price: float | None = Field(None, description="Latest trade price on the tick stream, if any")
    last_trade_us: int | None = Field(None, description="Event time of that trade, µs since epoch")


class BarCoverage(BaseModel):
    timeframe: str
    count: int
    first: datetime
    last: datetime


class PairDetail(PairOut):
    created_at: datetime
    updated_at: datetime
    owner: str | None = Field(None, description="Analytics worker instance holding the pair's lease, if any")


class PairChange(BaseModel):
    """The notice published on the pairs-changed channel and returned by write endpoints."""

    action: str = Field(..., description="created, updated or deleted", examples=["updated"])
    pair: str
    config: PairOut | None = Field(None, description="The configuration after the change (None when deleted)")


InstrumentDetail.model_rebuild()


class LatestPrice(BaseModel):
    instrument: str
    price: float
    qty: float
    side: str = Field(..., description="Aggressor side: buy or sell")
    ts_event_us: int = Field(..., description="Trade time, µs since the epoch")
    source: str = Field(..., description="live, backfill, seed, replay, simulated or upload")


class LatestPricesResponse(BaseModel):
    count: int
    data: list[LatestPrice]


class TickOut(BaseModel):
    trade_id: int
    price: float
    qty: float
    side: str
    ts_event_us: int
    ts_ingest_us: int
    source: str


class TicksResponse(BaseModel):
    instrument: str
    count: int
    data: list[TickOut]
