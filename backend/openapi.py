"""The OpenAPI document, finished: every operation documents the problem details it may answer, binary bodies their
media types.

Litestar generates the document from the route handlers; `document_errors(app)` then walks the app's routes and
rewrites each operation's error responses from facts Litestar already knows (guards, auth exclusion, path
parameters, methods, request body), so a route added later is documented without extra work:

| status | documented for |
| --- | --- |
| 400 | every operation (a query string or header with control characters is refused on any route) |
| 401 | operations not excluded from authentication (`PUBLIC_PATHS`, `exclude_from_auth`) |
| 403 | operations with guards |
| 404 | operations with path parameters |
| 409, 422 | POST, PUT, PATCH and DELETE |
| 413 | operations with a request body (evidence uploads meet it in earnest) |
| 429 | the login |
| 431 | every operation (the request line and headers are bounded) |
| 503 | every operation |

Each response is `application/problem+json` referencing the `Problem` component; its description lists the registry
codes (`backend.errors.ERRORS`) answered with that status and what they mean. A handler adds statuses with
`opt={"problem_statuses": [...]}` or `raises=[...]`; a status the handler documents itself (`responses=`) is kept.

Litestar offers no hook after it has built the document and finds its OpenAPI plugin by exact type, so `create_app`
calls `document_errors` on the finished app: it builds the document once (tens of milliseconds) and completes the
cached copy that `app.openapi_schema`, `/schema/openapi.json` and `safety export-openapi` all serve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.enums import MediaType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)
from litestar.response import File, Response, Stream
from litestar.routes import HTTPRoute

from backend.auth import PUBLIC_PATHS
from backend.errors import ERRORS, PROBLEM_MEDIA_TYPE, ErrorCode, codes_for_status
from backend.wire import TEXT_PATTERN, Input

PROBLEM_SCHEMA = "Problem"
PROBLEM_REF = f"#/components/schemas/{PROBLEM_SCHEMA}"

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUTH_EXCLUDE_OPT = "exclude_from_auth"  # the opt key Litestar's auth middleware skips (its default)
AUTH_EXEMPT_METHODS = frozenset({"OPTIONS", "HEAD"})  # JWTAuth's default exclude_http_methods
PROBLEM_STATUSES_OPT = "problem_statuses"
MEDIA_TYPES_OPT = "media_types"

# Statuses only some routes meet, by path pattern (as in auth.PUBLIC_PATHS): the login checks credentials (401)
# although it is excluded from authentication, and it is the route the login throttle guards (429).
ROUTE_STATUSES: dict[str, frozenset[int]] = {
    r"^/api/v1/auth/login$": frozenset({401, 429}),
}

LEADS: dict[int, str] = {
    400: "The request does not fit the schema: a malformed body, or a body, query or path value of the wrong type or "
    "out of range, or text with a control character (a NUL byte, or a line break in a single-line field), in a body, "
    "a query parameter or a header; `field` names the first offending input and `errors` lists them all.",
    401: "Not authenticated: send a valid bearer token (`Authorization: Bearer <token>` from `POST /api/v1/auth/login`).",
    403: "Authenticated, but the caller may not do this.",
    404: "What the path names does not exist or lies outside the caller's scope (existence does not leak).",
    405: "The path does not take this method.",
    409: "The request conflicts with the current state of the resource; nothing was changed.",
    413: "The body or the file is too large; nothing was stored.",
    415: "The body is not in a media type this operation accepts.",
    422: "The request is well-formed but breaks a rule; `field` names the offending input. Nothing was changed.",
    429: "Too many attempts; wait before trying again.",
    431: "The request line and headers are larger than the server accepts; nothing was read further.",
    500: "An unexpected error; it is logged under `request_id`.",
    503: "A dependency is unavailable: `dependency` names it (`database` or `object_store`); nothing was changed. "
    "Retry after the seconds in `Retry-After`, with backoff.",
}


def problem_schema() -> Schema:
    """RFC 9457 problem details plus this API's members."""
    string = Schema(type=OpenAPIType.STRING)
    optional_string = Schema(type=[OpenAPIType.STRING, OpenAPIType.NULL])
    return Schema(
        type=OpenAPIType.OBJECT,
        title="Problem",
        description="An error, as RFC 9457 problem details (`application/problem+json`). `code` is stable and the "
        "thing to branch on; `title` and `detail` are for people. Further members may appear for some codes (for "
        "example `from_status` and `action` with `invalid_transition`).",
        required=["type", "status", "title", "detail", "code", "instance"],
        properties={
            "type": Schema(
                type=OpenAPIType.STRING,
                format=OpenAPIFormat.URI_REFERENCE,
                description="Always `about:blank`: `code` identifies the problem.",
            ),
            "status": Schema(type=OpenAPIType.INTEGER, description="The HTTP status code, repeated."),
            "title": Schema(type=OpenAPIType.STRING, description="A short summary of the kind of problem."),
            "detail": Schema(type=OpenAPIType.STRING, description="What went wrong in this request, for people."),
            "code": Schema(
                type=OpenAPIType.STRING,
                enum=[code.value for code in ErrorCode],
                description="The stable machine-readable error code; see `backend/errors.py` for the meaning of each.",
            ),
            "instance": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.URI_REFERENCE, description="The request path."),
            "field": Schema(
                type=OpenAPIType.STRING,
                description="The input the problem is about: a body field (dotted, e.g. `measures[0].amount`), a "
                "query or path parameter, or a form field.",
            ),
            "errors": Schema(
                type=OpenAPIType.ARRAY,
                description="Every schema violation, when the request did not fit the schema (400 `validation_error`).",
                items=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["field", "message"],
                    properties={"field": optional_string, "message": string, "source": optional_string},
                ),
            ),
            "request_id": Schema(
                type=OpenAPIType.STRING,
                description="The request's id (the client's `X-Request-ID` when sane), also in the `X-Request-ID` header.",
            ),
            "dependency": Schema(
                type=OpenAPIType.STRING,
                enum=["database", "object_store"],
                description="With 503 `service_unavailable`: the part that is not answering.",
            ),
        },
        additional_properties=True,
    )


@dataclass(frozen=True)
class RouteOperation:
    """One documented operation and the facts about its route that decide its error responses."""

    method: str
    path: str
    handler: HTTPRouteHandler
    operation: Operation
    path_parameters: tuple[str, ...]


def route_operations(app: Litestar, openapi: OpenAPI) -> Iterator[RouteOperation]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = route.path_format or "/"
        path_item = (openapi.paths or {}).get(path)
        if path_item is None:
            continue
        for method, (handler, _) in route.route_handler_map.items():
            operation = getattr(path_item, method.lower(), None)
            if operation is None or not handler.resolve_include_in_schema():
                continue
            yield RouteOperation(method.upper(), path, handler, operation, tuple(route.path_parameters))


def is_public(method: str, path: str, handler: HTTPRouteHandler) -> bool:
    return (
        bool(handler.opt.get(AUTH_EXCLUDE_OPT))
        or method in AUTH_EXEMPT_METHODS
        or any(re.search(pattern, path) for pattern in PUBLIC_PATHS)
    )


def problem_statuses(route: RouteOperation) -> set[int]:
    """The error statuses an operation may answer with problem details."""
    operation, handler = route.operation, route.handler
    has_body = operation.request_body is not None
    statuses = {400, 431, 503}
    if not is_public(route.method, route.path, handler):
        statuses.add(401)
    if handler.resolve_guards():
        statuses.add(403)
    if route.path_parameters:
        statuses.add(404)
    if route.method in WRITE_METHODS:
        statuses |= {409, 422}
    if has_body:
        statuses.add(413)
    for pattern, extra in ROUTE_STATUSES.items():
        if re.search(pattern, route.path):
            statuses |= extra
    statuses.update(int(s) for s in handler.opt.get(PROBLEM_STATUSES_OPT, ()))
    statuses.update(exc.status_code for exc in handler.raises or () if getattr(exc, "status_code", 0) >= 400)
    return statuses


def describe(status: int, codes: Iterable[ErrorCode]) -> str:
    lines = [LEADS.get(status, "An error."), "", "`code` is one of:", ""]
    lines += [f"- `{code}` ({ERRORS[code].title}): {ERRORS[code].meaning}" for code in codes]
    return "\n".join(lines)


def problem_response(status: int) -> OpenAPIResponse:
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if status == 401:
        headers = {"WWW-Authenticate": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description="`Bearer`")}
    if status == 503:
        headers = {"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description="Seconds to wait before retrying.")}
    return OpenAPIResponse(
        description=describe(status, codes_for_status(status)),
        content={PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference(ref=PROBLEM_REF))},
        headers=headers,
    )


def binary_media_type(handler: HTTPRouteHandler) -> str | None:
    """The media type of a handler that answers raw bytes (bytes, Response[bytes], Stream, File), else None.

    The handler's declared `media_type` when it names one, application/octet-stream when it is left at JSON."""
    annotation = handler.parsed_fn_signature.return_type
    binary = annotation.is_subclass_of((bytes, Stream, File)) or (
        annotation.is_subclass_of(Response) and bool(annotation.inner_types) and annotation.inner_types[0].is_subclass_of(bytes)
    )
    if not binary:
        return None
    declared = str(handler.media_type.value if isinstance(handler.media_type, MediaType) else handler.media_type)
    return "application/octet-stream" if declared in ("", MediaType.JSON.value, MediaType.TEXT.value) else declared


def document_binary(route: RouteOperation) -> None:
    """A binary answer's media type; a handler whose answers come in several names them with `opt={"media_types": [...]}`."""
    media_type = binary_media_type(route.handler)
    responses = route.operation.responses or {}
    success = responses.get(str(route.handler.status_code))
    if media_type is None or not isinstance(success, OpenAPIResponse):
        return
    media_types = route.handler.opt.get(MEDIA_TYPES_OPT) or (media_type,)
    success.content = {m: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)) for m in media_types}


def document_problems(route: RouteOperation) -> None:
    """Replace the error responses Litestar generated (its own 400 ValidationException shape as application/json)
    with problem details, keeping any error response the handler documents itself."""
    declared = {int(s) for s in (route.handler.responses or {})}
    responses: dict[str, Any] = route.operation.responses or {}
    for key in [k for k in responses if k.isdigit() and int(k) >= 400 and int(k) not in declared]:
        del responses[key]
    for status in sorted(problem_statuses(route) - declared):
        responses[str(status)] = problem_response(status)
    route.operation.responses = responses


def _input_models() -> list[type[Input]]:
    found, todo = [], [Input]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _string_member(schema: Schema) -> Schema | None:
    """The string schema of a property: itself, or the string member of a `oneOf` with null."""
    if schema.type == OpenAPIType.STRING:
        return schema
    members = [m for m in schema.one_of or () if isinstance(m, Schema) and m.type == OpenAPIType.STRING]
    return members[0] if len(members) == 1 else None


def document_inputs(openapi: OpenAPI) -> None:
    """What Litestar leaves out of the request schemas it generates from the `Input` models: that they take no other
    members (`additionalProperties: false`, as `extra="forbid"` enforces) and the patterns their text fields must
    match. Taken from pydantic's own schema of each model, so the document says what validation does."""
    components = openapi.components.schemas or {}
    by_title = {schema.title: schema for schema in components.values() if isinstance(schema, Schema) and schema.title}
    for model in _input_models():
        component = by_title.get(model.__name__)
        if component is None:
            continue
        component.additional_properties = False
        own = model.model_json_schema(mode="validation").get("properties", {})
        for name, prop in (component.properties or {}).items():
            spec = own.get(name, {})
            strings = [m for m in (spec, *spec.get("anyOf", ())) if m.get("type") == "string"]
            target = _string_member(prop) if isinstance(prop, Schema) else None
            if len(strings) != 1 or target is None or target.format or target.enum:
                continue
            # free text takes no control character but tab and line breaks (`Input`), a `Line` none at all
            target.pattern = strings[0].get("pattern") or TEXT_PATTERN


def document_errors(app: Litestar) -> OpenAPI:
    """Complete the app's OpenAPI document in place (once) and return it."""
    openapi = app.openapi_schema
    if openapi.components.schemas and PROBLEM_SCHEMA in openapi.components.schemas:
        return openapi
    document_inputs(openapi)
    openapi.components.schemas = {**(openapi.components.schemas or {}), PROBLEM_SCHEMA: problem_schema()}
    for route in route_operations(app, openapi):
        document_problems(route)
        document_binary(route)
    return openapi
