"""Input coercion and checks shared by every analytics function.

Each check raises :class:`shared.errors.InvalidInput` (a ``ValueError``) with a message that says
which argument is wrong and why, e.g. ``"y and x must have equal lengths, got 10 and 9"`` or
``"x contains NaN at position 3"``. Functions call these first, so no numerical routine ever
sees a ragged, non-finite or non-numeric array.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]


def as_float_array(values: Any, name: str = "values", *, allow_nan: bool = False) -> FloatArray:
    """Coerce a list / tuple / numpy array / pandas Series to a 1-D contiguous float64 array.

    Parameters
    ----------
    values
        Anything ``numpy.asarray`` turns into numbers (pandas objects use their values).
    name
        Argument name used in error messages.
    allow_nan
        When True NaN is accepted (infinities never are).

    Raises
    ------
    InvalidInput
        Not numeric, not one-dimensional, or containing NaN / +-inf (the message gives the
        first offending position).
    """
    if isinstance(values, (str, bytes)):
        raise InvalidInput(f"{name} must be a sequence of numbers, got a {type(values).__name__}")
    to_numpy = getattr(values, "to_numpy", None)
    try:
        if callable(to_numpy):  # pandas: nullable dtypes turn pd.NA into NaN (reported below)
            arr = np.asarray(to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must contain only numbers ({exc})") from None
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        if allow_nan:
            bad = bad[~np.isnan(arr[bad])]
        if bad.size:
            pos = int(bad[0])
            kind = "NaN" if math.isnan(arr[pos]) else "inf" if arr[pos] > 0 else "-inf"
            more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
            raise InvalidInput(f"{name} contains {kind} at position {pos}{more}")
    return np.ascontiguousarray(arr)


def check_min_points(n: int, minimum: int, what: str = "series") -> None:
    """Raise unless ``n >= minimum`` (e.g. a regression with intercept needs 3 points)."""
    if n < minimum:
        raise InvalidInput(f"{what} needs at least {minimum} points, got {n}")


def check_same_length(a: FloatArray, b: FloatArray, names: tuple[str, str] = ("y", "x")) -> None:
    if a.shape[0] != b.shape[0]:
        raise InvalidInput(
            f"{names[0]} and {names[1]} must have equal lengths, got {a.shape[0]} and {b.shape[0]}"
        )


def is_constant(arr: FloatArray) -> bool:
    """True when every element equals the first (an empty or 1-element array counts as constant)."""
    return arr.size < 2 or bool(np.all(arr == arr[0]))


def check_not_constant(arr: FloatArray, name: str = "x") -> None:
    """Raise for a constant series: its variance is zero, so a slope or z-score is undefined."""
    if is_constant(arr):
        value = float(arr[0]) if arr.size else float("nan")
        raise InvalidInput(f"{name} is constant (every value is {value!r}); its variance is zero")


def as_pair(
    y: Any,
    x: Any,
    *,
    min_points: int = 2,
    names: tuple[str, str] = ("y", "x"),
    x_not_constant: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Validate a (y, x) pair for a regression of y on x.

    Checks, in order: numeric 1-D finite arrays, equal lengths (both counts in the message),
    at least ``min_points`` observations, and (by default) a non-constant regressor ``x``.
    A constant ``y`` is allowed: the fit is then exact with slope 0.
    """
    ya = as_float_array(y, names[0])
    xa = as_float_array(x, names[1])
    check_same_length(ya, xa, names)
    check_min_points(ya.shape[0], min_points, f"{names[0]} and {names[1]}")
    if x_not_constant:
        check_not_constant(xa, names[1])
    return ya, xa


def check_window(window: Any, n: int | None = None, *, minimum: int = 2) -> int:
    """A rolling window: an integer >= ``minimum`` and, when ``n`` is given, no longer than the data."""
    if isinstance(window, bool) or not isinstance(window, numbers.Integral):
        raise InvalidInput(f"window must be an integer >= {minimum}, got {window!r}")
    w = int(window)
    if w < minimum:
        raise InvalidInput(f"window must be an integer >= {minimum}, got {w}")
    if n is not None and w > n:
        raise InvalidInput(f"window {w} is longer than the series ({n} points)")
    return w


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    if v < 0.0 or (v == 0.0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInput(f"{name} must be {bound}, got {v!r}")
    return v


def check_choice(value: Any, allowed: Iterable[str], name: str) -> str:
    """One of a fixed set of string options; the message lists the allowed values."""
    options = tuple(allowed)
    if value not in options:
        raise InvalidInput(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, options))}")
    return str(value)
