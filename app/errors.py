"""The JSON answers every route gives, errors saying what went wrong and what to do about it.

Two forms of the same bytes: Starlette Responses for ordinary routes, and `JSONAnswer`, two
plain ASGI messages with none of Response's general machinery, for the webhook hot path.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


def error_body(error: str, hint: str) -> bytes:
    return orjson.dumps({"error": error, "hint": hint})


def json_body(data: object) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


def error_response(
    status: int, error: str, hint: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(error, hint), status_code=status, media_type="application/json", headers=headers
    )


def json_response(
    data: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json_body(data), status_code=status, media_type="application/json", headers=headers
    )


class JSONAnswer:
    """A JSON answer as two ASGI messages: the body and headers json_response would send."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None):
        self.body = body
        self.status = status
        self.headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        for name, value in (headers or {}).items():
            self.headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def json_answer(data: object, status: int = 200) -> JSONAnswer:
    return JSONAnswer(json_body(data), status)


def error_answer(
    status: int, error: str, hint: str, headers: dict[str, str] | None = None
) -> JSONAnswer:
    return JSONAnswer(error_body(error, hint), status, headers)
