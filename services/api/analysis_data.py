"""Series for the analysis endpoints: aligned bar closes of several instruments from the ``bars`` table."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import psycopg
from fastapi import HTTPException

from shared.timeutil import datetime_to_us

_CLOSES = """
SELECT instrument, ts, open, high, low, close FROM (
    SELECT instrument, ts, open, high, low, close FROM bars
    WHERE instrument = ANY(%(ids)s) AND timeframe = %(tf)s AND ts >= %(a)s AND ts <= %(b)s
    ORDER BY ts DESC LIMIT %(limit)s
) newest ORDER BY ts
"""


async def load_bars(db: psycopg.AsyncConnection, instruments: list[str], timeframe: str, start: datetime,
                    end: datetime, max_bars: int) -> dict[str, pd.DataFrame]:
    """Each instrument's newest ``max_bars`` bars in the range, indexed by bucket start in µs."""
    limit = max_bars * len(instruments)
    rows = await (await db.execute(_CLOSES, {"ids": instruments, "tf": timeframe, "a": start, "b": end,
                                             "limit": limit})).fetchall()  # fmt: skip
    frames: dict[str, pd.DataFrame] = {}
    if rows:
        all_rows = pd.DataFrame(rows)
        all_rows["ts_us"] = [datetime_to_us(t) for t in all_rows["ts"]]
        for inst, part in all_rows.groupby("instrument", sort=False):
            frames[str(inst)] = part.set_index("ts_us")[["open", "high", "low", "close"]].astype(np.float64)
    missing = [i for i in instruments if i not in frames or len(frames[i]) < 2]
    if missing:
        raise HTTPException(status_code=422, detail={
            "field": "instruments", "problem": f"no {timeframe} bars stored in the range for {', '.join(missing)}"})
    return frames


def aligned_closes(frames: dict[str, pd.DataFrame], order: list[str], min_points: int) -> pd.DataFrame:
    """Closes on the timestamps every instrument has (inner join), columns in ``order``."""
    closes = pd.concat({name: frames[name]["close"] for name in order}, axis=1, join="inner").sort_index()
    if len(closes) < min_points:
        raise HTTPException(status_code=422, detail={
            "field": "instruments",
            "problem": f"the instruments share {len(closes)} bar timestamps in the range; need at least {min_points}"})
    return closes
