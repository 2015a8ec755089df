"""Benchmark: the statistical tests (ADF, Engle-Granger, Johansen) against statsmodels, and a full
metric update for many pairs, in one run, on one core.

    python -m bench.bench_stats            # full run (about a minute)
    python -m bench.bench_stats --quick    # tiny smoke run

Rows:

- ADF with a fixed lag, n=1000: ``adf(x, maxlag=k, autolag=None)`` vs ``adfuller(x, maxlag=k,
  autolag=None)`` (target >= 15x).
- ADF with the AIC lag search, n=1000 (default maxlag 22): ``adf(x)`` vs ``adfuller(x)``
  (target >= 100x).
- Engle-Granger, n=1000: ``engle_granger`` vs ``statsmodels coint``; Johansen, n=1000, 2 series:
  ``johansen`` vs ``coint_johansen``.
- Full metric update on bar close for many pairs at window 300: OLS, Kalman, Huber and Theil-Sen
  hedges, ADF (AIC) and half-life of the OLS spread, per pair; total wall time on one core.

Each ratio is measured in the same run, ours and the reference alternating, best of the repeats
(the machine is shared; the minimum is the least noisy). "same result" compares the two outputs
of that very run (statistic to 1e-8 relative, lag exactly, p-value to 1e-10). BLAS is limited to
one thread so numpy and statsmodels both run on one core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from statsmodels.tsa.stattools import adfuller, coint
from statsmodels.tsa.vector_ar.vecm import coint_johansen
from threadpoolctl import threadpool_limits

from shared.analytics.adf import adf
from shared.analytics.coint import engle_granger, johansen
from shared.analytics.hedge import huber, ols, theil_sen
from shared.analytics.kalman import kalman_hedge
from shared.analytics.meanrev import half_life


@dataclass(frozen=True)
class Sizes:
    n: int
    repeats: int
    calls: int  # calls of our function per timing repeat (the reference gets calls // 10 + 1)
    pairs: int
    window: int


FULL = Sizes(n=1000, repeats=7, calls=200, pairs=500, window=300)
QUICK = Sizes(n=1000, repeats=1, calls=5, pairs=10, window=300)


@dataclass(frozen=True)
class Row:
    case: str
    ours: str
    ours_s: float
    reference: str
    ref_s: float | None
    min_ratio: float | None
    same: str

    @property
    def ratio(self) -> float | None:
        return None if self.ref_s is None else self.ref_s / self.ours_s

    def cells(self) -> list[str]:
        ratio = self.ratio
        met = "-" if self.min_ratio is None or ratio is None else ("yes" if ratio >= self.min_ratio else "no")
        return [
            self.case,
            self.ours,
            _fmt_time(self.ours_s),
            self.reference,
            "-" if self.ref_s is None else _fmt_time(self.ref_s),
            "-" if ratio is None else f"{ratio:.1f}x",
            "-" if self.min_ratio is None else f">= {self.min_ratio:g}x",
            met,
            self.same,
        ]


def _fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _per_call(fn: Callable[[], object], calls: int) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls


def _side_by_side(ours: Callable[[], object], ref: Callable[[], object], sz: Sizes) -> tuple[float, float]:
    """Best per-call time of each, ours and the reference alternating within every repeat."""
    ours(), ref()  # warm caches and imports
    best_ours = best_ref = float("inf")
    for _ in range(sz.repeats):
        best_ours = min(best_ours, _per_call(ours, sz.calls))
        best_ref = min(best_ref, _per_call(ref, max(1, sz.calls // 10)))
    return best_ours, best_ref


def _random_walk(n: int, seed: int) -> np.ndarray:
    return 60_000.0 + np.cumsum(np.random.default_rng(seed).normal(0.0, 8.0, n))


def _pair(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = 60_000.0 + np.cumsum(rng.normal(0.0, 8.0, n))
    s = np.zeros(n)
    shocks = rng.normal(0.0, 1.0, n)
    for t in range(1, n):
        s[t] = 0.95 * s[t - 1] + shocks[t]
    return 100.0 + 0.05 * x + s, x


def _same_adf(a, b) -> bool:
    return (
        abs(a.stat - b.statistic) <= 1e-8 * abs(b.statistic) + 1e-9
        and a.used_lag == b.lags
        and abs(a.pvalue - b.pvalue) <= 1e-10
    )


def _adf_rows(sz: Sizes) -> list[Row]:
    x = _random_walk(sz.n, seed=1)
    k = 10
    fixed = _side_by_side(
        lambda: adf(x, maxlag=k, autolag=None),
        lambda: adfuller(x, maxlag=k, autolag=None, result_object=True),
        sz,
    )
    same_fixed = _same_adf(adf(x, maxlag=k, autolag=None), adfuller(x, maxlag=k, autolag=None, result_object=True))
    auto = _side_by_side(lambda: adf(x), lambda: adfuller(x, result_object=True), sz)
    ours, ref = adf(x), adfuller(x, result_object=True)
    same_auto = _same_adf(ours, ref) and abs(ours.icbest - ref.icbest) <= 1e-8 * abs(ref.icbest)
    return [
        Row(f"ADF fixed lag {k}, n={sz.n}", "adf(autolag=None)", fixed[0], "adfuller(autolag=None)", fixed[1], 15,
            "yes" if same_fixed else "NO"),
        Row(f"ADF autolag AIC (maxlag {ours.maxlag}), n={sz.n}", "adf()", auto[0], "adfuller()", auto[1], 100,
            "yes" if same_auto else "NO"),
    ]


def _coint_rows(sz: Sizes) -> list[Row]:
    y, x = _pair(sz.n, seed=2)
    eg = _side_by_side(lambda: engle_granger(y, x), lambda: coint(y, x), sz)
    ours, ref = engle_granger(y, x), coint(y, x)
    same_eg = abs(ours.stat - ref[0]) <= 1e-8 * abs(ref[0]) and abs(ours.pvalue - ref[1]) <= 1e-10
    data = np.column_stack([y, x])
    jo = _side_by_side(lambda: johansen(data, 0, 1), lambda: coint_johansen(data, 0, 1), sz)
    jr, jref = johansen(data, 0, 1), coint_johansen(data, 0, 1)
    same_jo = np.allclose(jr.trace_stat, jref.lr1, rtol=1e-8) and np.allclose(jr.max_eig_stat, jref.lr2, rtol=1e-8)
    return [
        Row(f"Engle-Granger (AIC lag), n={sz.n}", "engle_granger", eg[0], "statsmodels coint", eg[1], None,
            "yes" if same_eg else "NO"),
        Row(f"Johansen, 2 series, n={sz.n}", "johansen", jo[0], "coint_johansen", jo[1], None,
            "yes" if same_jo else "NO"),
    ]


def _metric_update(y: np.ndarray, x: np.ndarray) -> float:
    fit = ols(y, x)
    kalman_hedge(y, x)
    huber(y, x)
    theil_sen(y, x)
    s = y - fit.alpha - fit.beta * x
    return adf(s).pvalue + half_life(s).b


def _metric_rows(sz: Sizes) -> list[Row]:
    windows = [_pair(sz.window, seed=100 + i) for i in range(sz.pairs)]
    _metric_update(*windows[0])
    parts = {
        "ols": lambda y, x: ols(y, x),
        "kalman": lambda y, x: kalman_hedge(y, x),
        "huber": lambda y, x: huber(y, x),
        "theil_sen": lambda y, x: theil_sen(y, x),
        "adf+half-life": lambda y, x: (adf(y - 0.05 * x), half_life(y - 0.05 * x)),
    }
    t = time.perf_counter()
    for y, x in windows:
        _metric_update(y, x)
    total = time.perf_counter() - t
    breakdown = []
    for name, fn in parts.items():
        t = time.perf_counter()
        for y, x in windows:
            fn(y, x)
        breakdown.append(f"{name} {(time.perf_counter() - t) / sz.pairs * 1e3:.2f} ms")
    return [
        Row(f"full metric update, {sz.pairs} pairs, W={sz.window}", "4 hedges + ADF + half-life", total,
            "per pair: " + ", ".join(breakdown), None, None, "-"),
    ]


HEADER = ["case", "ours", "ours time", "reference", "reference time", "speed-up", "target", "met", "same result"]


def render(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_stats", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    args = parser.parse_args(argv)
    sz = QUICK if args.quick else FULL
    with threadpool_limits(limits=1):
        rows = _adf_rows(sz) + _coint_rows(sz) + _metric_rows(sz)
    print(f"## Statistical tests vs statsmodels ({'quick' if args.quick else 'full'} run, one core)\n")
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
