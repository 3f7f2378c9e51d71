"""RFC 9457 problem details with a stable machine-readable `code` for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

logger = logging.getLogger("backend")

PROBLEM_MEDIA_TYPE = "application/problem+json"

_DEFAULT_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


class AppError(Exception):
    """A domain error the client can act on. Services raise these; the handler turns them into problem details."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.field = field
        self.extra = extra


class InvalidInput(AppError):
    """Input that does not fit the schema: the same 400 a malformed JSON body gets."""

    status = 400
    code = "validation_error"
    title = "Invalid request"


class ValidationFailed(AppError):
    status = 422
    code = "validation_error"
    title = "Validation failed"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unauthorized(AppError):
    status = 401
    code = "not_authenticated"
    title = "Not authenticated"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"


def problem(status: int, code: str, title: str, detail: str, request: Request, **extra: Any) -> Response[dict]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "status": status,
        "title": title,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    headers: dict[str, str] = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
        headers["X-Request-ID"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_name(error: dict[str, Any]) -> str | None:
    key = error.get("key")
    if key:
        return str(key)
    return None


def handle_app_error(request: Request, exc: AppError) -> Response[dict]:
    return problem(exc.status, exc.code, exc.title, exc.detail, request, field=exc.field, **exc.extra)


def handle_validation_exception(request: Request, exc: ValidationException) -> Response[dict]:
    errors = [e for e in (exc.extra or []) if isinstance(e, dict)]
    fields = [
        {"field": _field_name(e), "message": str(e.get("message", "")).removeprefix("Value error, "), "source": e.get("source")}
        for e in errors
    ]
    first = next((f["field"] for f in fields if f["field"]), None)
    detail = "; ".join(f"{f['field'] or 'body'}: {f['message']}" for f in fields) or str(exc.detail)
    return problem(400, "validation_error", "Invalid request", detail, request, field=first, errors=fields or None)


def handle_http_exception(request: Request, exc: HTTPException) -> Response[dict]:
    status = exc.status_code
    code = _DEFAULT_CODES.get(status, "error")
    title = code.replace("_", " ").capitalize()
    if status >= 500:
        logger.error("HTTP %s on %s: %s", status, request.url.path, exc.detail)
    return problem(status, code, title, str(exc.detail), request)


def handle_unexpected(request: Request, exc: Exception) -> Response[dict]:
    logger.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal_error",
        "Internal server error",
        "An unexpected error occurred; it has been logged.",
        request,
    )


exception_handlers = {
    AppError: handle_app_error,
    ValidationException: handle_validation_exception,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
