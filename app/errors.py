"""The JSON error answer every route gives: what went wrong and what to do about it."""

from __future__ import annotations

import orjson
from starlette.responses import Response


def error_response(
    status: int, error: str, hint: str, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps({"error": error, "hint": hint})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def json_response(
    data: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
