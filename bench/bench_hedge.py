"""Benchmark: streaming hedge / z-score / correlation and the robust hedge fits, side by side with
the straightforward approach, in one run.

    python -m bench.bench_hedge            # full run (a minute or two)
    python -m bench.bench_hedge --quick    # tiny smoke run

Rows (per-update cost for the streaming ones, per-fit cost for the others):

- rolling OLS hedge: ``RollingOLS.update`` vs statsmodels ``OLS`` refitted on the last W points
  at every update (the window kept as a numpy array, as a naive worker would).
- rolling z-score: ``RollingZScore.update`` vs pandas ``Series(window)`` mean/std at every update.
- rolling correlation: ``RollingCorrelation.update`` vs pandas ``Series.corr`` on the window.
- Kalman: ``KalmanHedge.update`` vs the same step written with numpy 2x2 matrices.
- Theil-Sen: ``theil_sen`` vs scikit-learn ``TheilSenRegressor`` and ``scipy.stats.theilslopes``.
- Huber: ``huber`` vs scikit-learn ``HuberRegressor(alpha=0)``.

Timings are the best of a few repeats (the machine is shared; the minimum is the least noisy).
Data: a seeded BTC-scale random walk (x ~ 1e5) and a cointegrated y.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from sklearn.linear_model import HuberRegressor, TheilSenRegressor

from shared.analytics.hedge import huber, theil_sen
from shared.analytics.kalman import KalmanHedge
from shared.analytics.rolling import RollingCorrelation, RollingOLS, RollingZScore


@dataclass(frozen=True)
class Sizes:
    stream_updates: int  # timed updates of a streaming class
    naive_updates: int  # timed updates of the recompute-the-window baseline
    repeats: int
    windows: tuple[int, ...]
    fit_n: tuple[int, ...]  # series lengths for the robust fits


FULL = Sizes(stream_updates=50_000, naive_updates=300, repeats=3, windows=(300, 3000), fit_n=(1000,))
QUICK = Sizes(stream_updates=2_000, naive_updates=20, repeats=1, windows=(300,), fit_n=(200,))


@dataclass(frozen=True)
class Row:
    case: str
    ours: str
    ours_s: float
    reference: str
    ref_s: float
    min_ratio: float | None = None  # target speed-up over the reference
    max_us: float | None = None  # target absolute cost in microseconds
    unit: str = "per update"

    @property
    def ratio(self) -> float:
        return self.ref_s / self.ours_s

    def target(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f">= {self.min_ratio:g}x")
        if self.max_us is not None:
            parts.append(f"< {self.max_us:g} us")
        return ", ".join(parts) or "-"

    def met(self) -> str:
        checks = []
        if self.min_ratio is not None:
            checks.append(self.ratio >= self.min_ratio)
        if self.max_us is not None:
            checks.append(self.ours_s * 1e6 < self.max_us)
        if not checks:
            return "-"
        return "yes" if all(checks) else "no (" + ", ".join("ok" if c else "missed" for c in checks) + ")"


def _data(n: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(1e5 + np.cumsum(rng.normal(0.0, 8.0, n)), 1)
    y = np.round(-3000.0 + 0.055 * x + np.cumsum(rng.normal(0.0, 0.05, n)) * 0.1 + rng.normal(0.0, 1.0, n), 2)
    return y, x


def _best(fn: Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def _stream_cost(make, xs: list[float], ys: list[float] | None, warm: int, repeats: int) -> float:
    def run() -> float:
        obj = make()
        upd = obj.update
        if ys is None:
            for v in xs[:warm]:
                upd(v)
            t = time.perf_counter()
            for v in xs[warm:]:
                upd(v)
        else:
            for a, b in zip(xs[:warm], ys[:warm], strict=True):
                upd(a, b)
            t = time.perf_counter()
            for a, b in zip(xs[warm:], ys[warm:], strict=True):
                upd(a, b)
        return (time.perf_counter() - t) / (len(xs) - warm)

    return _best(run, repeats)


def _naive_cost(step: Callable[[int], object], start: int, count: int, repeats: int) -> float:
    def run() -> float:
        t = time.perf_counter()
        for i in range(start, start + count):
            step(i)
        return (time.perf_counter() - t) / count

    return _best(run, repeats)


def _streaming_rows(sz: Sizes) -> list[Row]:
    rows: list[Row] = []
    for w in sz.windows:
        y, x = _data(w + sz.stream_updates)
        xs, ys = x.tolist(), y.tolist()
        s = (y - 0.055 * x).tolist()

        def ols_step(i: int, w: int = w, x: np.ndarray = x, y: np.ndarray = y) -> object:
            return sm.OLS(y[i - w + 1 : i + 1], sm.add_constant(x[i - w + 1 : i + 1])).fit().params

        def z_step(i: int, w: int = w, s: list[float] = s) -> float:
            win = pd.Series(s[i - w + 1 : i + 1])
            return (win.iloc[-1] - win.mean()) / win.std()

        def corr_step(i: int, w: int = w, x: np.ndarray = x, y: np.ndarray = y) -> float:
            return pd.Series(x[i - w + 1 : i + 1]).corr(pd.Series(y[i - w + 1 : i + 1]))

        n_naive, start = sz.naive_updates, w
        rows += [
            Row(f"rolling OLS hedge, W={w}", "RollingOLS.update", _stream_cost(lambda w=w: RollingOLS(w), xs, ys, w, sz.repeats),
                "statsmodels OLS on window", _naive_cost(ols_step, start, n_naive, sz.repeats), 300, 5),
            Row(f"rolling z-score, W={w}", "RollingZScore.update", _stream_cost(lambda w=w: RollingZScore(w), s, None, w, sz.repeats),
                "pandas mean/std on window", _naive_cost(z_step, start, n_naive, sz.repeats), 300, 5),
            Row(f"rolling correlation, W={w}", "RollingCorrelation.update",
                _stream_cost(lambda w=w: RollingCorrelation(w), xs, ys, w, sz.repeats),
                "pandas Series.corr on window", _naive_cost(corr_step, start, n_naive, sz.repeats), 300, 5),
        ]
    y, x = _data(100 + sz.stream_updates)
    rows.append(
        Row("Kalman hedge", "KalmanHedge.update",
            _stream_cost(lambda: KalmanHedge(delta=1e-9, warmup=100), x.tolist(), y.tolist(), 100, sz.repeats),
            "numpy 2x2 matrix step", _naive_cost(_numpy_kalman_stepper(x, y), 100, min(5_000, sz.stream_updates), sz.repeats),
            None, 5)
    )
    return rows


def _numpy_kalman_stepper(x: np.ndarray, y: np.ndarray) -> Callable[[int], object]:
    state = {"theta": np.array([0.055, -3000.0]), "P": np.eye(2) * 1e-6}
    vw, ve = 1e-9 * np.eye(2), 1.0

    def step(i: int) -> object:
        H = np.array([[x[i], 1.0]])
        R = state["P"] + vw
        e = y[i] - (H @ state["theta"])[0]
        Q = (H @ R @ H.T)[0, 0] + ve
        K = R @ H.T / Q
        state["theta"] = state["theta"] + K[:, 0] * e
        state["P"] = R - K @ H @ R
        return e

    return step


def _fit_cost(fn: Callable[[], object], repeats: int) -> float:
    def run() -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    return _best(run, repeats)


def _fit_rows(sz: Sizes) -> list[Row]:
    rows: list[Row] = []
    for n in sz.fit_n:
        y, x = _data(n, seed=7)
        ours_ts = _fit_cost(lambda y=y, x=x: theil_sen(y, x), sz.repeats)
        sk_ts = _fit_cost(lambda y=y, x=x: TheilSenRegressor(random_state=0).fit(x[:, None], y), sz.repeats)
        sp_ts = _fit_cost(lambda y=y, x=x: stats.theilslopes(y, x, method="joint"), sz.repeats)
        # HuberRegressor gets a centered x (it cannot converge on raw 1e5-scale prices otherwise).
        xc = (x - x.mean())[:, None]
        ours_h = _fit_cost(lambda y=y, x=x: huber(y, x), sz.repeats)
        sk_h = _fit_cost(lambda y=y, xc=xc: HuberRegressor(alpha=0.0, epsilon=1.35, max_iter=1000).fit(xc, y), sz.repeats)
        rows += [
            Row(f"Theil-Sen, n={n}", "theil_sen (all pairs)", ours_ts, "sklearn TheilSenRegressor", sk_ts, 20, unit="per fit"),
            Row(f"Theil-Sen, n={n}", "theil_sen (all pairs)", ours_ts, "scipy theilslopes", sp_ts, unit="per fit"),
            Row(f"Huber, n={n}", "huber", ours_h, "sklearn HuberRegressor", sk_h, 1, unit="per fit"),
        ]
    return rows


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def render(rows: list[Row]) -> str:
    lines = [
        "| case | ours | ours time | reference | reference time | speed-up | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.ours} | {_fmt_time(r.ours_s)} {r.unit} | {r.reference} | {_fmt_time(r.ref_s)} | "
            f"{r.ratio:,.1f}x | {r.target()} | {r.met()} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_hedge", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in a few seconds")
    args = parser.parse_args(argv)
    sz = QUICK if args.quick else FULL
    rows = _streaming_rows(sz) + _fit_rows(sz)
    print(f"## bench_hedge ({'quick' if args.quick else 'full'}: {sz.stream_updates} streaming updates, "
          f"{sz.naive_updates} baseline updates, best of {sz.repeats})\n")
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
