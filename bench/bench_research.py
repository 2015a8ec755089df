"""Research tools: universe screening, a long backtest, a small walk-forward grid.

All data is generated (``shared.testing.universe``, seeded), so the numbers are comparable between
runs and machines. Side-by-side ratios in the same run:

* Engle-Granger per pair: the screen's path (``shared.analytics.adf`` on the OLS residual) against
  ``statsmodels.tsa.stattools.coint`` on the same pairs;
* screening with 2 worker processes against 1 (on a subset, so the run stays short);
* backtest: Kalman against OLS hedge on the same 100k bars;
* walk-forward: 2 worker processes against 1.

    python -m bench.bench_research           # 50 instruments x 10 000 bars (target < 60 s), 100k-bar backtest
    python -m bench.bench_research --quick   # tiny smoke run
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

from statsmodels.tsa.stattools import coint
from threadpoolctl import threadpool_limits

from shared.research.backtest import run_backtest
from shared.research.pair_bars import PairBars
from shared.research.screen import _eg, screen
from shared.research.search import Grid, walk_forward
from shared.research.signals import SignalParams
from shared.testing.universe import Universe, UniverseSpec, generate_universe


@dataclass(frozen=True)
class Sizes:
    instruments: int
    bars: int
    eg_pairs: int
    subset: int
    backtest_bars: int
    wf_bars: int
    wf_train: int
    wf_test: int


FULL = Sizes(instruments=50, bars=10_000, eg_pairs=6, subset=12, backtest_bars=100_000,
             wf_bars=20_000, wf_train=6_000, wf_test=3_000)
QUICK = Sizes(instruments=6, bars=600, eg_pairs=2, subset=4, backtest_bars=3_000,
              wf_bars=1_500, wf_train=600, wf_test=300)


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _pair_bars(u: Universe) -> PairBars:
    p = u.planted[0]
    return PairBars.from_frames(u.bars(p.y), u.bars(p.x))


def run(sizes: Sizes, workers: int) -> list[tuple[str, str, float, str]]:
    rows: list[tuple[str, str, float, str]] = []
    u = generate_universe(UniverseSpec(n_instruments=sizes.instruments, n_pairs=max(1, sizes.instruments // 10),
                                       n_bars=sizes.bars, seed=3))
    closes = u.closes()
    n_pairs = sizes.instruments * (sizes.instruments - 1) // 2

    # Engle-Granger per pair, both implementations on the same pairs.
    c = closes.to_numpy()
    pairs = [(i, i + 1) for i in range(sizes.eg_pairs)]
    with threadpool_limits(1):  # both on one BLAS thread, as the screen runs
        t_sm, _ = _timed(lambda: [coint(c[:, i], c[:, j]) for i, j in pairs])
        t_ours, _ = _timed(lambda: [_eg(c[:, i], c[:, j]) for i, j in pairs])
    per_sm, per_ours = t_sm / len(pairs), t_ours / len(pairs)
    rows.append(("Engle-Granger, statsmodels coint", f"{sizes.bars} bars", per_sm * 1e3, "ms per pair"))
    rows.append(("Engle-Granger, screen path", f"{sizes.bars} bars", per_ours * 1e3,
                 f"ms per pair; {per_sm / per_ours:.1f}x faster (both on one BLAS thread)"))

    # Screening: the subset with 1 and with `workers` processes, then the whole universe.
    sub = closes.iloc[:, : sizes.subset]
    t1, _ = _timed(lambda: screen(sub, "1m", workers=1))
    tn, _ = _timed(lambda: screen(sub, "1m", workers=workers))
    k = sizes.subset * (sizes.subset - 1) // 2
    rows.append((f"screen subset, 1 process vs {workers}", f"{k} pairs", t1, f"s; speed-up {t1 / tn:.2f}x with {workers}"))
    cpu0 = _cpu_seconds()
    t_all, result = _timed(lambda: screen(closes, "1m", workers=workers))
    cpu = _cpu_seconds() - cpu0
    found = {frozenset((r["y"], r["x"])) for r in result.ranked.to_dict("records")}  # type: ignore[attr-defined]
    hits = len(found & u.planted_set())
    rows.append((f"screen {sizes.instruments} instruments, {workers} processes",
                 f"{n_pairs} pairs x {sizes.bars} bars", t_all,
                 f"s wall, {cpu:.1f} s CPU (target < 60 s for 50 x 10 000; load average "
                 f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); {hits}/{len(u.planted)} planted pairs "
                 f"found, {len(found) - hits} others pass"))

    # Backtest of one long series: OLS vs Kalman hedge.
    long_u = generate_universe(UniverseSpec(n_instruments=2, n_pairs=1, n_bars=sizes.backtest_bars, seed=4))
    bars = _pair_bars(long_u)
    t_ols, res = _timed(lambda: run_backtest(bars, SignalParams(window=300)))
    t_kf, _ = _timed(lambda: run_backtest(bars, SignalParams(window=300, method="kalman")))
    rows.append(("backtest, OLS hedge", f"{sizes.backtest_bars} bars", t_ols,
                 f"s; {sizes.backtest_bars / t_ols:,.0f} bars/s, {res.stats.trades} trades"))  # type: ignore[attr-defined]
    rows.append(("backtest, Kalman hedge", f"{sizes.backtest_bars} bars", t_kf, f"s; {t_kf / t_ols:.2f}x the OLS time"))

    # Walk-forward over a small grid, 1 process vs `workers`.
    wf_bars = _pair_bars(generate_universe(UniverseSpec(n_instruments=2, n_pairs=1, n_bars=sizes.wf_bars, seed=6)))
    grid = Grid(entry=(1.5, 2.0), exit=(0.0, 0.5), window=(100, 300))
    t_w1, wf = _timed(lambda: walk_forward(wf_bars, grid, sizes.wf_train, sizes.wf_test, workers=1))
    t_wn, _ = _timed(lambda: walk_forward(wf_bars, grid, sizes.wf_train, sizes.wf_test, workers=workers))
    runs = len(wf.table)  # type: ignore[attr-defined]
    rows.append(("walk-forward grid, 1 process", f"{runs} (fold, params) x 2 backtests", t_w1, "s"))
    rows.append((f"walk-forward grid, {workers} processes", f"{runs} (fold, params) x 2 backtests", t_wn,
                 f"s; speed-up {t_w1 / t_wn:.2f}x"))
    return rows


def render(rows: list[tuple[str, str, float, str]]) -> str:
    lines = ["| case | size | value | unit / note |", "| --- | --- | ---: | --- |"]
    lines += [f"| {case} | {size} | {value:.3f} | {note} |" for case, size, value, note in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_research", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    rows = run(QUICK if args.quick else FULL, args.workers)
    print("## research\n")
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
