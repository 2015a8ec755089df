"""One error shape for every 4xx: ``{"detail": {"field": ..., "problem": ...}}``.

Handlers installed by the app factory:

* ``RequestValidationError`` (FastAPI's parameter/body validation) -> 422 naming the field path
  (``limit``, ``body.window``, ``body.series.0``). Routes under ``LIST_SHAPE_PREFIXES`` keep FastAPI's
  list shape (the alerts API documents ``loc``/``msg``/``ctx.position``), each item gaining
  ``field`` and ``problem`` too.
* ``InvalidInput`` raised by shared code on bad arguments -> 422 with the message as the problem.
* ``psycopg.DataError`` (SQLSTATE class 22: a value out of range for its column) -> 422.
* anything else -> logged with its traceback, 500 ``{"detail": {"field": null, "problem": "internal error"}}``.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.errors import InvalidInput

log = logging.getLogger(__name__)

LIST_SHAPE_PREFIXES = ("/api/v1/alerts",)
_LOCATIONS = {"query", "path", "header", "cookie"}


def field_path(loc: tuple | list) -> str:
    """``("query", "limit")`` -> ``limit``; ``("body", "series", 0)`` -> ``body.series.0``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _problem(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid value"))
    if error.get("type") == "missing":
        return "is required"
    return msg


def error_body(field: str | None, problem: str) -> dict[str, Any]:
    return {"detail": {"field": field, "problem": problem}}


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if request.url.path.startswith(LIST_SHAPE_PREFIXES):
        items = []
        for e in errors:
            item = {k: v for k, v in e.items() if k in ("type", "loc", "msg", "ctx", "input")}
            if "ctx" in item:
                item["ctx"] = {k: v if isinstance(v, str | int | float | bool | None) else str(v)
                               for k, v in item["ctx"].items()}
            item.pop("input", None)
            item["field"] = field_path(e.get("loc", ()))
            item["problem"] = _problem(e)
            items.append(item)
        return JSONResponse(status_code=422, content={"detail": items})
    if not errors:
        return JSONResponse(status_code=422, content=error_body(None, "invalid request"))
    first = errors[0]
    return JSONResponse(status_code=422, content=error_body(field_path(first.get("loc", ())), _problem(first)))


async def _invalid_input_handler(request: Request, exc: InvalidInput) -> JSONResponse:
    return JSONResponse(status_code=422, content=error_body(getattr(exc, "field", None), str(exc)))


async def _data_error_handler(request: Request, exc: psycopg.DataError) -> JSONResponse:
    # SQLSTATE class 22 (value out of range, bad datetime, ...) comes from a request value the route
    # passed through unchecked: a client error, named as precisely as PostgreSQL allows.
    log.warning("database rejected a value on %s %s: %s", request.method, request.url.path, exc)
    problem = (exc.diag.message_primary or "value rejected by the database").strip()
    return JSONResponse(status_code=422, content=error_body(None, f"invalid value: {problem}"))


async def _last_resort_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(status_code=500, content=error_body(None, "internal error"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(InvalidInput, _invalid_input_handler)
    app.add_exception_handler(psycopg.DataError, _data_error_handler)
    app.add_exception_handler(Exception, _last_resort_handler)
