"""Helpers shared by ``pairs backtest`` and ``pairs screen``: argument types, data sources, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from shared.config import CommonSettings
from shared.errors import PairsError
from shared.jsonable import jsonable

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def utc_datetime(text: str) -> datetime:
    """argparse type: ISO date/time, UTC unless a zone is given."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r} (e.g. 2025-06-07 or 2025-06-07T08:44)") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def csv_of(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """argparse type: comma-separated values of ``kind``."""

    def parse(text: str) -> list[Any]:
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError("expected at least one value")
        return values

    return parse


def print_json(payload: Any) -> None:
    json.dump(jsonable(payload), sys.stdout, allow_nan=False, indent=2)
    sys.stdout.write("\n")


@contextmanager
def database(url: str | None) -> Iterator[psycopg.Connection]:
    dsn = url or CommonSettings().database_dsn
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="pairs-research") as conn:
        yield conn


def run_command(prog: str, body: Callable[[], int]) -> int:
    """Run a command body mapping our errors to exit codes: bad input 2, an unreachable service 1."""
    try:
        return body()
    except PairsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except psycopg.Error as exc:
        print(f"{prog}: database error: {str(exc).strip()}", file=sys.stderr)
        return EXIT_FAILURE
