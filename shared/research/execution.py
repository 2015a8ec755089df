"""How a pair position is sized, filled and charged.

Sizing (``notional`` N in quote currency, hedge ratio beta from the decision bar, reference fill
prices p_y, p_x; ``side`` +1 = long spread, -1 = short spread):

* ``"beta"`` (beta-neutral, the default): q_y = side * N / p_y units of y and
  q_x = -side * beta * N / p_y = -beta * q_y units of x. The position is then exactly
  q_y units of the spread y - beta * x, so its PnL is q_y * (change of the spread). The x leg's
  notional is |beta| * N * p_x / p_y (not N).
* ``"dollar"`` (dollar-neutral): q_y = side * N / p_y and q_x = -side * N / p_x, i.e. N of
  quote currency long one leg and N short the other; beta only drives the signal.

Quantities are fixed for the life of a trade (no re-hedging as beta moves).

Costs, per leg and per fill:

* fee = fee_rate * |q| * fill_price, with fee_rate = ``taker_fee_bps`` or ``maker_fee_bps`` / 10^4
  depending on ``liquidity``;
* slippage moves the fill price against the order: fill = ref + sign(q) * (ref * slippage_bps / 10^4
  + slippage_range_frac * (high - low) of the decision bar, the last one completed when the order
  is sent); both terms may be used together;
* funding (perpetuals, when a funding series is given): at a bar whose funding rate r is not 0,
  the position held into that bar pays q * open * r (longs pay a positive rate, shorts receive it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from shared.errors import InvalidInput

Sizing = Literal["beta", "dollar"]
FillTiming = Literal["next_open", "close"]
Liquidity = Literal["taker", "maker"]


@dataclass(frozen=True, slots=True)
class CostModel:
    taker_fee_bps: float = 4.0
    maker_fee_bps: float = 2.0
    liquidity: Liquidity = "taker"
    slippage_bps: float = 0.0
    slippage_range_frac: float = 0.0

    def __post_init__(self) -> None:
        for name in ("taker_fee_bps", "maker_fee_bps", "slippage_bps", "slippage_range_frac"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0.0:
                raise InvalidInput(f"{name} must be a finite number >= 0, got {v!r}")
        if self.liquidity not in ("taker", "maker"):
            raise InvalidInput(f"liquidity must be 'taker' or 'maker', got {self.liquidity!r}")

    @property
    def fee_rate(self) -> float:
        bps = self.taker_fee_bps if self.liquidity == "taker" else self.maker_fee_bps
        return bps / 10_000.0

    def fill_price(self, qty: float, ref: float, high: float, low: float) -> float:
        """Price paid (qty > 0) or received (qty < 0) for an order at reference price ``ref``."""
        adverse = ref * self.slippage_bps / 10_000.0 + self.slippage_range_frac * (high - low)
        return ref + math.copysign(adverse, qty)


FREE = CostModel(taker_fee_bps=0.0, maker_fee_bps=0.0)


@dataclass(frozen=True, slots=True)
class ExecutionParams:
    """Capital (starting equity, the base of every return), y-leg notional, sizing and fill timing.

    ``fill="next_open"`` (default): a decision taken on bar t's close is filled at bar t+1's open.
    ``fill="close"``: filled at bar t's own close, an optimistic idealisation (no time to react).
    """

    capital: float = 10_000.0
    notional: float = 5_000.0
    sizing: Sizing = "beta"
    fill: FillTiming = "next_open"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.capital) and self.capital > 0.0):
            raise InvalidInput(f"capital must be positive, got {self.capital!r}")
        if not (math.isfinite(self.notional) and self.notional > 0.0):
            raise InvalidInput(f"notional must be positive, got {self.notional!r}")
        if self.sizing not in ("beta", "dollar"):
            raise InvalidInput(f"sizing must be 'beta' or 'dollar', got {self.sizing!r}")
        if self.fill not in ("next_open", "close"):
            raise InvalidInput(f"fill must be 'next_open' or 'close', got {self.fill!r}")


def leg_quantities(side: int, beta: float, price_y: float, price_x: float, notional: float, sizing: Sizing) -> tuple[float, float]:
    """Signed (q_y, q_x) for a new position; see the module docstring for the formulas."""
    q_y = side * notional / price_y
    if sizing == "beta":
        return q_y, -beta * q_y
    return q_y, -side * notional / price_x
