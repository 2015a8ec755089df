"""Pure helpers on series: decimation that keeps extremes, hover times, and the z-score signal machine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.dashboard.timefmt import local_text, utc_text


def keep_extremes(values: Sequence[float | None], max_points: int) -> list[int]:
    """Indices of at most ``max_points`` points: per bucket the min and the max, plus first and last.

    Plain striding hides spikes, and a z-score spike is exactly what a trader must see, so each
    bucket keeps its extremes (in time order).
    """
    n = len(values)
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    if n <= max_points:
        return list(range(n))
    buckets = (max_points - 2) // 2
    keep = {0, n - 1}
    edges = [1 + (n - 2) * b // buckets for b in range(buckets + 1)]
    for lo, hi in zip(edges, edges[1:], strict=False):
        finite = [i for i in range(lo, hi) if _finite(values[i])]
        if finite:
            keep.add(min(finite, key=lambda i: values[i]))  # type: ignore[arg-type,return-value]
            keep.add(max(finite, key=lambda i: values[i]))  # type: ignore[arg-type,return-value]
        elif hi > lo:
            keep.add(lo)
    return sorted(keep)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def times(ts_us: Sequence[int], tz_offset_min: int | None) -> tuple[list[str], list[str]]:
    """(UTC axis values, local hover texts)."""
    axis = [utc_text(t) for t in ts_us]
    local = [local_text(t, tz_offset_min or 0) for t in ts_us]
    return axis, local


@dataclass(frozen=True)
class Region:
    start: int  # index of the first bar in the position (-1: it began before the given values)
    end: int  # index of the last bar (the exit bar, or the last bar if still open)
    side: str  # "long" (z below -entry: buy the spread) or "short"


def signal_regions(z: Sequence[float | None], entry: float, exit_: float,
                   side: str = "flat") -> tuple[list[Region], str]:
    """Position episodes of the usual z-score rule and the signal after the last value (long / short / flat).

    Enter short when z > entry, long when z < -entry; leave when |z| < exit. A z that jumps straight
    across to the opposite entry flips the position. Missing z (warm-up) never opens a position.
    ``side`` continues a position held before ``z[0]``; its episode is reported with ``start == -1``.
    """
    if entry <= 0 or exit_ < 0 or exit_ >= entry:
        raise ValueError("thresholds must satisfy 0 <= exit < entry")
    if side not in ("flat", "long", "short"):
        raise ValueError(f"unknown side {side!r}")
    regions: list[Region] = []
    if len(z) == 0:
        return regions, side
    start = -1
    for i, v in enumerate(z):
        if not _finite(v):
            continue
        want = side
        if side == "flat":
            want = "short" if v > entry else "long" if v < -entry else "flat"  # type: ignore[operator]
        elif side == "short":
            want = "long" if v < -entry else "flat" if v < exit_ else "short"  # type: ignore[operator]
        elif side == "long":
            want = "short" if v > entry else "flat" if v > -exit_ else "long"  # type: ignore[operator]
        if want != side:
            if side != "flat":
                regions.append(Region(start, i, side))
            side, start = want, i
    if side != "flat":
        regions.append(Region(start, len(z) - 1, side))
    return regions, side
