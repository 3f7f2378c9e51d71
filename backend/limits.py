"""What one request may carry, checked before any of it reaches a service or the database.

- Bodies: `request_max_body_size` is set per route (`create_app` sets the default for JSON routes from
  `MAX_JSON_BODY_BYTES`; the login takes `LOGIN_MAX_BODY_BYTES`, a batch of results `RESULTS_MAX_BODY_BYTES`, the
  multipart evidence upload `MAX_UPLOAD_BYTES`). A body over its limit is `413 payload_too_large`, refused on its
  announced length before any of it is read, else as soon as the bytes read pass the limit.
- JSON bodies nest at most `MAX_JSON_DEPTH` levels (`LimitedRequest.json`): deeper is `400 validation_error`, and
  so is a body the decoder gives up on (it raises RecursionError at about a thousand levels).
- The request line and headers together take at most `MAX_HEADER_BYTES` (`431 headers_too_large`); `safety serve`
  runs uvicorn's h11 parser with the same bound, so a larger header block is refused before it is buffered.
- No query parameter and no header value carries a control character (a NUL byte above all, which PostgreSQL
  refuses in text): `400 validation_error` naming the parameter or header. Body fields are checked by
  `backend.wire.Input`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Request
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, Scope, Send

from backend.errors import AppError, ErrorCode, InvalidInput

KIB, MIB = 1024, 1024 * 1024
# A login is a username (150 characters) and a password (200): even every character \u-escaped fits in 4 KiB.
LOGIN_MAX_BODY_BYTES = 4 * KIB
# 1000 results with 200-character notes, three photos each and a hazard on every one is 2.7 MB as ASCII-escaped
# JSON (1.5 MB as UTF-8); a batch of 1000 with every text at its maximum (26 MB) is to be sent in parts.
RESULTS_MAX_BODY_BYTES = 8 * MIB
MAX_JSON_DEPTH = 64  # the deepest body of this API nests 4 levels

# percent-encoded C0 controls and DEL (%00-%1F, %7F), or such a byte sent raw
_ENCODED_CONTROL = re.compile(rb"%(?:[01][0-9A-Fa-f]|7[Ff])|[\x00-\x1f\x7f]")
_HEADER_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # a header value may hold a tab, nothing else below 0x20


class BodyTooLarge(AppError):
    status = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE
    title = "Payload too large"


def _query_problem(query_string: bytes) -> tuple[str, str] | None:
    """(parameter, why) for the first query parameter whose name or value holds a control character."""
    if not _ENCODED_CONTROL.search(query_string):
        return None
    for pair in query_string.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", "replace")
        value = unquote_to_bytes(raw_value.replace(b"+", b" "))
        for part in (name.encode("utf-8"), value):
            found = re.search(rb"[\x00-\x1f\x7f]", part)
            if found:
                char = found.group()
                what = "a NUL byte" if char == b"\x00" else f"the control character U+{char[0]:04X}"
                return name, f"must not contain {what}"
    return None


def request_guard(max_header_bytes: int) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware refusing oversized header blocks (431) and control characters in the query string or a header
    value (400), before authentication, routing to a handler or reading the body."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                check_head(scope, max_header_bytes)
            await app(scope, receive, send)

        return middleware

    return wrap


def check_head(scope: Scope, max_header_bytes: int) -> None:
    headers = scope["headers"]
    size = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])
    size += sum(len(name) + len(value) + 4 for name, value in headers)  # ": " and CRLF
    if size > max_header_bytes:
        raise HTTPException(status_code=431, detail=f"the request line and headers exceed {max_header_bytes} bytes")
    for name, value in headers:
        if _HEADER_CONTROL.search(value):
            header = name.decode("latin-1")
            raise InvalidInput(
                f"header {header}: must not contain control characters",
                field=header,
                errors=[{"field": header, "message": "must not contain control characters", "source": "header"}],
            )
    problem = _query_problem(scope["query_string"])
    if problem:
        parameter, why = problem
        raise InvalidInput(f"{parameter}: {why}", field=parameter, errors=[{"field": parameter, "message": why, "source": "query"}])


def json_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether decoded JSON nests deeper than `limit` arrays and objects (iterative: no recursion of its own)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _too_deep() -> InvalidInput:
    message = f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
    return InvalidInput(message, errors=[{"field": None, "message": message, "source": "body"}])


class LimitedRequest(Request[Any, Any, Any]):
    """The app's request class: a JSON body nested too deeply is a 400, never a RecursionError."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:
            raise _too_deep() from None
        if json_too_deep(value):
            raise _too_deep()
        return value


async def bounded(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The chunks of `stream`, refusing with 413 as soon as they add up to more than `limit` bytes."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(f"the request body exceeds {limit} bytes")
        yield chunk


def refuse_announced(request: Request[Any, Any, Any], limit: int) -> None:
    """413 before reading anything when the body's announced length is over `limit`."""
    if (request.content_length or 0) > limit:
        raise BodyTooLarge(f"the request body exceeds {limit} bytes")
