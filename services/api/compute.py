"""Heavy analytics off the event loop: a bounded thread pool, a time bound, and JSON-safe results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from fastapi import HTTPException, Request

from shared.jsonable import jsonable

T = TypeVar("T")
BUSY_WAIT_S = 2.0  # how long a request waits for a free compute slot before answering 503


def _error(status: int, problem: str) -> HTTPException:
    return HTTPException(status_code=status, detail={"field": None, "problem": problem})


async def run_bounded(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in the app's compute pool within ``compute_timeout_s`` (503 when saturated, 504 when slow).

    A slot is held until the function really finishes (a thread cannot be killed), so work that
    overran its time bound still counts against the pool and cannot pile up.
    """
    state = request.app.state
    slots: asyncio.Semaphore = state.compute_slots
    try:
        await asyncio.wait_for(slots.acquire(), timeout=BUSY_WAIT_S)
    except TimeoutError:
        raise _error(503, "all compute slots are busy; retry shortly") from None
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(state.compute, fn, *args)
    except BaseException:
        slots.release()
        raise
    future.add_done_callback(lambda _f: slots.release())
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout=state.settings.compute_timeout_s)
    except TimeoutError:
        raise _error(504, f"computation exceeded {state.settings.compute_timeout_s:g} s; narrow the range") from None
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        # the math refused these numbers (too short, constant, singular): a property of the input
        raise HTTPException(status_code=422, detail={
            "field": getattr(exc, "field", None), "problem": f"cannot compute on this input: {exc}"}) from None


def matrix_json(frame: pd.DataFrame) -> list[list[float | None]]:
    return [[jsonable(v) for v in row] for row in frame.to_numpy(dtype=np.float64).tolist()]
