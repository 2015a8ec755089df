"""JSON responses for large row sets, encoded straight from database rows with orjson.

The hot read endpoints (bars, metric history, snapshot) return thousands of rows; building a
pydantic model per row costs several times the query. Their ``response_model`` still documents the
shape in OpenAPI, and the rows are selected with exactly those fields (the schemathesis run checks
every response against the schema). Times are ISO-8601 UTC with ``Z``; NaN and infinities become null.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def rows_response(payload: dict[str, Any]) -> Response:
    return Response(content=orjson.dumps(payload, option=_OPTIONS), media_type="application/json")
