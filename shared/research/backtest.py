"""Two-leg pair backtest driven bar by bar by the live signal code (``SignalEngine``).

Timeline of bar t (no look-ahead):

1. funding at bar t's timestamp is charged on the position held into bar t (see ``execution``);
2. with ``fill="next_open"``, an order decided on bar t-1's close is filled at bar t's open
   (range slippage uses bar t-1's high-low, the last range known when the order is sent);
3. the engine sees bar t's closes and decides (entries only on bars ``start`` .. n-2);
4. with ``fill="close"`` the order is filled at once at bar t's close;
5. equity is marked at bar t's close: cash + q_y * close_y + q_x * close_x.

Nothing at bar t reads a price of bar t+1 or later, so perturbing later bars cannot change any
decision, fill or equity value up to t (``tests/research/test_no_lookahead.py`` checks this). A
position still open after the last bar is closed at the last close (exit reason ``"end"``); an
order decided on the last bar with ``next_open`` fills is dropped (there is no next open).
PnL is in quote currency. Statistics: see ``shared.research.stats``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from shared.errors import InvalidInput
from shared.research.execution import CostModel, ExecutionParams, leg_quantities
from shared.research.pair_bars import PairBars
from shared.research.signals import SignalEngine, SignalParams
from shared.research.stats import Stats, bars_per_year, compute_stats, drawdown_curve

REASON_END = "end"


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip. Prices are fill prices (slippage included); PnL = gross - slippage - fees + funding.

    ``gross_pnl`` is measured at the reference prices (open or close before slippage), so
    ``slippage`` is what the adverse fills cost on top.
    """

    side: int
    entry_bar: int
    exit_bar: int
    entry_ts_us: int
    exit_ts_us: int
    qty_y: float
    qty_x: float
    beta: float
    entry_price_y: float
    entry_price_x: float
    exit_price_y: float
    exit_price_x: float
    entry_z: float
    exit_z: float
    gross_pnl: float
    slippage: float
    fees: float
    funding: float
    pnl: float
    holding_bars: int
    exit_reason: str

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Curves cover bars ``start .. n-1`` of the input (read-only arrays, one value per bar close)."""

    signal: SignalParams
    execution: ExecutionParams
    costs: CostModel
    timeframe: str
    ts_us: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    position: np.ndarray
    zscore: np.ndarray
    beta: np.ndarray
    trades: tuple[Trade, ...]
    stats: Stats


@dataclass(slots=True)
class _Fill:
    ref_y: float
    ref_x: float
    px_y: float
    px_x: float
    fees: float
    slippage: float
    notional: float


@dataclass(slots=True)
class _Open:
    side: int
    bar: int
    qty_y: float
    qty_x: float
    beta: float
    z: float
    entry: _Fill
    funding: float = 0.0


class _Simulator:
    def __init__(self, bars: PairBars, execution: ExecutionParams, costs: CostModel) -> None:
        self.bars = bars
        self.ex = execution
        self.costs = costs
        self.cash = execution.capital
        self.open: _Open | None = None
        self.trades: list[Trade] = []
        self.traded_notional = 0.0
        self.totals = [0.0, 0.0, 0.0]  # fees, slippage, funding

    def _fill(self, t: int, qty_y: float, qty_x: float, at_close: bool) -> _Fill:
        y, x = self.bars.y, self.bars.x
        ref_y = float(y.close[t] if at_close else y.open[t])
        ref_x = float(x.close[t] if at_close else x.open[t])
        # Range slippage uses the last bar completed when the order is sent: the decision bar
        # (t itself for close fills, t-1 for next-open fills), never the bar being filled into.
        r = t if at_close else t - 1
        px_y = self.costs.fill_price(qty_y, ref_y, float(y.high[r]), float(y.low[r]))
        px_x = self.costs.fill_price(qty_x, ref_x, float(x.high[r]), float(x.low[r]))
        notional = abs(qty_y) * px_y + abs(qty_x) * px_x
        fees = self.costs.fee_rate * notional
        slippage = abs(qty_y) * abs(px_y - ref_y) + abs(qty_x) * abs(px_x - ref_x)
        self.cash -= qty_y * px_y + qty_x * px_x + fees
        self.traded_notional += notional
        self.totals[0] += fees
        self.totals[1] += slippage
        return _Fill(ref_y, ref_x, px_y, px_x, fees, slippage, notional)

    def enter(self, t: int, side: int, beta: float, z: float, at_close: bool) -> None:
        ref_y = float(self.bars.y.close[t] if at_close else self.bars.y.open[t])
        ref_x = float(self.bars.x.close[t] if at_close else self.bars.x.open[t])
        q_y, q_x = leg_quantities(side, beta, ref_y, ref_x, self.ex.notional, self.ex.sizing)
        fill = self._fill(t, q_y, q_x, at_close)
        self.open = _Open(side, t, q_y, q_x, beta, z, fill)

    def exit(self, t: int, z: float, reason: str, at_close: bool) -> None:
        pos = self.open
        assert pos is not None
        out = self._fill(t, -pos.qty_y, -pos.qty_x, at_close)
        gross = pos.qty_y * (out.ref_y - pos.entry.ref_y) + pos.qty_x * (out.ref_x - pos.entry.ref_x)
        fees = pos.entry.fees + out.fees
        slippage = pos.entry.slippage + out.slippage
        ts = self.bars.ts_us
        self.trades.append(
            Trade(
                side=pos.side,
                entry_bar=pos.bar,
                exit_bar=t,
                entry_ts_us=int(ts[pos.bar]),
                exit_ts_us=int(ts[t]),
                qty_y=pos.qty_y,
                qty_x=pos.qty_x,
                beta=pos.beta,
                entry_price_y=pos.entry.px_y,
                entry_price_x=pos.entry.px_x,
                exit_price_y=out.px_y,
                exit_price_x=out.px_x,
                entry_z=pos.z,
                exit_z=z,
                gross_pnl=gross,
                slippage=slippage,
                fees=fees,
                funding=pos.funding,
                pnl=gross - slippage - fees + pos.funding,
                holding_bars=t - pos.bar,
                exit_reason=reason,
            )
        )
        self.open = None

    def charge_funding(self, t: int) -> None:
        pos = self.open
        if pos is None:
            return
        flow = 0.0
        for qty, rates, leg in ((pos.qty_y, self.bars.funding_y, self.bars.y), (pos.qty_x, self.bars.funding_x, self.bars.x)):
            if rates is not None and rates[t] != 0.0:
                flow -= qty * float(leg.open[t]) * float(rates[t])
        self.cash += flow
        pos.funding += flow
        self.totals[2] += flow

    def mark(self, t: int) -> float:
        pos = self.open
        if pos is None:
            return self.cash
        return self.cash + pos.qty_y * float(self.bars.y.close[t]) + pos.qty_x * float(self.bars.x.close[t])


def run_backtest(
    bars: PairBars,
    signal: SignalParams,
    execution: ExecutionParams | None = None,
    costs: CostModel | None = None,
    *,
    timeframe: str = "1m",
    start: int = 0,
) -> BacktestResult:
    """Simulate the strategy on ``bars``; bars before ``start`` only warm up the signal engine.

    Defaults: ``ExecutionParams()`` and ``CostModel()`` (4 bps taker fee per leg, no slippage).
    """
    execution = execution if execution is not None else ExecutionParams()
    costs = costs if costs is not None else CostModel()
    n = len(bars)
    if not (0 <= start < n):
        raise InvalidInput(f"start must be in [0, {n}), got {start}")
    bpy = bars_per_year(timeframe)
    engine = SignalEngine(signal)
    sim = _Simulator(bars, execution, costs)
    at_close = execution.fill == "close"
    equity = np.empty(n)
    position = np.zeros(n, dtype=np.int8)
    zs = np.empty(n)
    betas = np.empty(n)
    pending: tuple[str, int, float, float] | None = None  # (reason, side, beta, z) decided on the previous bar
    y_close, x_close = bars.y.close, bars.x.close
    for t in range(n):
        sim.charge_funding(t)
        if pending is not None:
            _execute(sim, t, pending, at_close=False)
            pending = None
        sig = engine.update(float(y_close[t]), float(x_close[t]))
        zs[t], betas[t] = sig.z, sig.beta
        order = _order_for(sim, sig.reason, sig.target, sig.beta, sig.z, allowed=start <= t < n - 1)
        if order is not None:
            if at_close:
                _execute(sim, t, order, at_close=True)
            else:
                pending = order
        if t == n - 1 and sim.open is not None:
            sim.exit(t, sig.z, REASON_END, at_close=True)
        equity[t] = sim.mark(t)
        position[t] = sim.open.side if sim.open is not None else 0
    eq = equity[start:]
    trades = tuple(sim.trades)
    stats = compute_stats(
        eq,
        execution.capital,
        bpy,
        [tr.pnl for tr in trades],
        [tr.holding_bars for tr in trades],
        sim.traded_notional,
        position[start:] != 0,
        (sim.totals[0], sim.totals[1], sim.totals[2]),
    )
    return BacktestResult(
        signal=signal,
        execution=execution,
        costs=costs,
        timeframe=timeframe,
        ts_us=_ro(bars.ts_us[start:]),
        equity=_ro(eq),
        drawdown=_ro(drawdown_curve(eq, execution.capital)),
        position=_ro(position[start:]),
        zscore=_ro(zs[start:]),
        beta=_ro(betas[start:]),
        trades=trades,
        stats=stats,
    )


def _order_for(
    sim: _Simulator, reason: str, target: int, beta: float, z: float, *, allowed: bool
) -> tuple[str, int, float, float] | None:
    """Translate an engine transition into an order for the simulator (or None)."""
    if not reason:
        return None
    if sim.open is None and target != 0 and allowed and math.isfinite(beta):
        return (reason, target, beta, z)
    if sim.open is not None and target == 0:
        return (reason, 0, beta, z)
    return None


def _execute(sim: _Simulator, t: int, order: tuple[str, int, float, float], *, at_close: bool) -> None:
    reason, side, beta, z = order
    if side == 0:
        sim.exit(t, z, reason, at_close)
    else:
        sim.enter(t, side, beta, z, at_close)


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a
