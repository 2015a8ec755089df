"""Request and response bodies of the analysis, matrix, backtest and screen endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.api.pair_config import HedgeMethodName
from shared.errors import InvalidInput
from shared.instruments import Instrument
from shared.timeframes import BAR_TIMEFRAMES

Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
MAX_POINTS = 200_000
ALL_METHODS: list[HedgeMethodName] = ["ols", "kalman", "huber", "theil_sen"]


def instrument_id(value: str) -> str:
    try:
        return Instrument.parse(value).id
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def bar_timeframe(value: str) -> str:
    if value not in BAR_TIMEFRAMES:
        raise ValueError(f"unknown bar timeframe {value!r}; choose one of {', '.join(BAR_TIMEFRAMES)}")
    return value


class BarRange(BaseModel):
    """Bars read from the database: timeframe and UTC range (both bounds inclusive and optional)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    timeframe: str = Field("1m", description="Bar timeframe: 1s, 5s, 1m, 5m, 15m, 1h, 1d")
    start: datetime | None = Field(None, alias="from", description="UTC start (inclusive)")
    end: datetime | None = Field(None, alias="to", description="UTC end (inclusive)")
    max_bars: int = Field(5000, ge=30, le=MAX_POINTS, description="Newest bars used per instrument")

    _tf = field_validator("timeframe")(lambda cls, v: bar_timeframe(v))

    @model_validator(mode="after")
    def _ordered(self) -> BarRange:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("'to' must not be earlier than 'from'")
        return self


class PairSource(BarRange):
    y: str = Field(..., max_length=70, description="venue.SYMBOL of the dependent leg")
    x: str = Field(..., max_length=70, description="venue.SYMBOL of the hedge leg")

    _ids = field_validator("y", "x")(lambda cls, v: instrument_id(v))


class AnalysisRequest(BaseModel):
    """Either two inline price series (``y``, ``x``) or a database ``source``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"source": {"y": "binance-spot.ETHUSDT", "x": "binance-spot.BTCUSDT", "timeframe": "1m", "max_bars": 2000},
         "window": 100},
        {"y": [101.0, 101.5, 100.8, 102.1] * 10, "x": [50.2, 50.4, 50.1, 50.9] * 10, "timeframe": "1m", "window": 10},
    ]})  # fmt: skip
    y: list[Price] | None = Field(None, min_length=30, max_length=MAX_POINTS, description="Prices of the y leg")
    x: list[Price] | None = Field(None, min_length=30, max_length=MAX_POINTS, description="Prices of the x leg")
    source: PairSource | None = None
    timeframe: str = Field("1m", description="Bar interval of inline series (annualisation, half-life units)")
    window: int = Field(100, ge=3, le=100_000, description="Rolling window (z-score) in bars")
    methods: list[HedgeMethodName] = Field(default_factory=lambda: list(ALL_METHODS), min_length=1, max_length=4)

    _tf = field_validator("timeframe")(lambda cls, v: bar_timeframe(v))

    @model_validator(mode="after")
    def _one_source(self) -> AnalysisRequest:
        inline = self.y is not None or self.x is not None
        if inline and self.source is not None:
            raise ValueError("give either inline series (y, x) or a database source, not both")
        if not inline and self.source is None:
            raise ValueError("give inline series (y and x) or a database source")
        if inline and (self.y is None or self.x is None or len(self.y) != len(self.x)):
            raise ValueError("y and x must both be given, with the same number of prices")
        return self


class AnalysisResponse(BaseModel):
    source: dict[str, Any] = Field(..., description="Where the series came from (inline, or instruments and range)")
    n: int = Field(..., description="Aligned observations analysed")
    report: dict[str, Any] = Field(..., description="shared.analytics.report.analyze_pair output (JSON-safe)")


class MatrixResponse(BaseModel):
    instruments: list[str]
    timeframe: str
    n: int = Field(..., description="Aligned bars used")
    orientation: str = Field(..., description="How to read matrix[i][j]")
    matrix: list[list[float | None]] = Field(..., description="Row i, column j; null where undefined")


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: int = Field(300, ge=3, le=100_000)
    entry: float = Field(2.0, gt=0, allow_inf_nan=False)
    exit: float = Field(0.5, ge=0, allow_inf_nan=False)
    stop: float | None = Field(4.0, gt=0, allow_inf_nan=False, description="null disables the stop")
    max_hold_bars: int | None = Field(None, ge=1)
    method: Literal["ols", "kalman", "fixed"] = "ols"
    fixed_beta: float | None = Field(None, allow_inf_nan=False)
    kalman_delta: float = Field(1e-7, gt=0, lt=1)


class ExecutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capital: float = Field(10_000.0, gt=0, le=1e15, allow_inf_nan=False)
    notional: float = Field(5_000.0, gt=0, le=1e15, allow_inf_nan=False)
    sizing: Literal["beta", "dollar"] = "beta"
    fill: Literal["next_open", "close"] = "next_open"


class CostsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    taker_fee_bps: float = Field(4.0, ge=0, le=10_000, allow_inf_nan=False)
    maker_fee_bps: float = Field(2.0, ge=0, le=10_000, allow_inf_nan=False)
    liquidity: Literal["taker", "maker"] = "taker"
    slippage_bps: float = Field(0.0, ge=0, le=10_000, allow_inf_nan=False)
    slippage_range_frac: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"source": {"y": "binance-spot.ETHUSDT", "x": "binance-spot.BTCUSDT", "timeframe": "1m"},
         "signal": {"window": 120, "entry": 2.0, "exit": 0.5, "stop": 4.0}}]})  # fmt: skip
    source: PairSource
    signal: SignalIn = Field(default_factory=SignalIn)
    execution: ExecutionIn = Field(default_factory=ExecutionIn)
    costs: CostsIn = Field(default_factory=CostsIn)
    warmup_bars: int = Field(0, ge=0, description="Bars that only warm the signal up (no trading)")
    max_points: int = Field(2000, ge=10, le=100_000, description="Equity curve points returned (downsampled)")


class BacktestResponse(BaseModel):
    source: dict[str, Any]
    n: int
    stats: dict[str, Any] = Field(..., description="Return, Sharpe, drawdown, trades, costs (see shared.research.stats)")
    trades: list[dict[str, Any]]
    curve: dict[str, list[Any]] = Field(..., description="ts_us, equity, drawdown, position, zscore (downsampled)")


class ScreenRequest(BarRange):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={"examples": [
        {"instruments": ["binance-spot.ETHUSDT", "binance-spot.BTCUSDT", "binance-spot.SOLUSDT"], "timeframe": "1m"}]})
    instruments: list[str] = Field(..., min_length=2, max_length=40)
    max_pvalue: float = Field(0.05, gt=0, le=1)
    max_hurst: float = Field(0.5, gt=0, le=1)
    min_half_life_bars: float = Field(1.0, ge=0, allow_inf_nan=False)
    max_half_life_frac: float = Field(0.05, gt=0, le=1)
    min_crossings_per_year: float = Field(12.0, ge=0, allow_inf_nan=False)

    @field_validator("instruments")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        ids = [instrument_id(v) for v in values]
        if len(set(ids)) != len(ids):
            raise ValueError("instruments must be distinct")
        return ids


class ScreenResponse(BaseModel):
    instruments: list[str]
    timeframe: str
    n_bars: int
    criteria: dict[str, float]
    table: list[dict[str, Any]] = Field(..., description="Every pair, best first (rank 0 = did not pass)")
    correlation: list[list[float | None]]
    cointegration: list[list[float | None]] = Field(..., description="[i][j]: EG p-value of i regressed on j")
