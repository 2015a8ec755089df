"""Pair configuration bodies: validated here so a bad field gets a 422 naming it (``body.window``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.errors import InvalidInput
from shared.instruments import Instrument
from shared.timeframes import validate_timeframes

HedgeMethodName = Literal["ols", "kalman", "huber", "theil_sen"]
MAX_WINDOW = 100_000


def _timeframes(value: list[str]) -> list[str]:
    try:
        return list(validate_timeframes(value))
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


class PairSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window: int = Field(300, ge=3, le=MAX_WINDOW, description="Observations in the rolling window")
    timeframes: list[str] = Field(
        default_factory=lambda: ["1s", "1m", "5m"], min_length=1, max_length=8,
        description="Timeframes analysed: tick, 1s, 5s, 1m, 5m, 15m, 1h, 1d",
    )
    hedge_method: HedgeMethodName = Field("ols", description="Hedge ratio estimator")
    enabled: bool = True

    @field_validator("timeframes")
    @classmethod
    def _check_timeframes(cls, value: list[str]) -> list[str]:
        return _timeframes(value)


class PairIn(PairSettings):
    """A new pair: y regressed on x."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"y": "binance-spot.ETHUSDT", "x": "binance-spot.BTCUSDT", "window": 300,
                                         "timeframes": ["1s", "1m"], "hedge_method": "kalman", "enabled": True}]},
    )
    y: str = Field(..., max_length=70, description="venue.SYMBOL of the dependent leg")
    x: str = Field(..., max_length=70, description="venue.SYMBOL of the hedge leg")

    @field_validator("y", "x")
    @classmethod
    def _instrument(cls, value: str) -> str:
        try:
            return Instrument.parse(value).id
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _distinct_legs(self) -> PairIn:
        if self.y == self.x:
            raise ValueError("y and x must be different instruments")
        return self


class PairPatch(BaseModel):
    """Fields to change; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"window": 600, "enabled": False}]})
    window: int | None = Field(None, ge=3, le=MAX_WINDOW)
    timeframes: list[str] | None = Field(None, min_length=1, max_length=8)
    hedge_method: HedgeMethodName | None = None
    enabled: bool | None = None

    @field_validator("timeframes")
    @classmethod
    def _check_timeframes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _timeframes(value)
