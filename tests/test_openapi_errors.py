"""One error vocabulary: the registry in backend/errors.py, the codes the code base raises, and the OpenAPI document
that tells clients which problem details each operation may answer."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from backend.auth import PUBLIC_PATHS
from backend.errors import (
    _DEFAULT_CODES,
    ERRORS,
    PROBLEM_MEDIA_TYPE,
    AppError,
    Conflict,
    ErrorCode,
    ErrorSpec,
    NotFound,
    ValidationFailed,
    codes_for_status,
    default_code,
    exception_handlers,
)
from tests.helpers import World, assert_problem

BACKEND = Path(__file__).resolve().parent.parent / "backend"
PROBLEM_REF = "#/components/schemas/Problem"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
UPLOAD_ROUTES = {("POST", "/api/v1/evidence"), ("POST", "/api/v1/evidence/uploads")}
LOGIN = ("POST", "/api/v1/auth/login")


# --- the registry ---------------------------------------------------------------------------------------------------


def test_every_code_has_a_spec_and_every_spec_a_code() -> None:
    assert set(ERRORS) == set(ErrorCode)
    assert len(ErrorCode) >= 56
    for code, spec in ERRORS.items():
        assert isinstance(spec, ErrorSpec)
        assert code.name.lower() == code.value, code
        assert all(400 <= s <= 599 for s in spec.statuses), code
        assert spec.title and spec.title[0].isupper(), code
        assert spec.meaning.endswith("."), code
    for code in (*_DEFAULT_CODES.values(), "internal_error", "service_unavailable"):
        assert code in set(ErrorCode)
    assert {status: code for status, code in _DEFAULT_CODES.items() if status not in ERRORS[code].statuses} == {}


def test_http_statuses_without_a_default_still_get_a_registered_code() -> None:
    assert default_code(418) == ErrorCode.BAD_REQUEST
    assert default_code(502) == ErrorCode.INTERNAL_ERROR


def test_an_unregistered_code_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="not_a_real_code"):
        AppError("boom", code="not_a_real_code")
    with pytest.raises(ValueError):
        NotFound("gone", code="Case_Not_Found")
    with pytest.raises(ValueError):
        Conflict("empty", code="")
    with pytest.raises(ValueError):

        class Teapot(AppError):  # defining it is the test
            status = 418
            code = "teapot"  # type: ignore[assignment]


def test_registered_codes_work_as_members_and_as_plain_strings() -> None:
    as_string = ValidationFailed("no such case", code="case_not_found", field="case_id")
    as_member = ValidationFailed("no such case", code=ErrorCode.CASE_NOT_FOUND, field="case_id")
    assert as_string.code == as_member.code == "case_not_found" == ErrorCode.CASE_NOT_FOUND
    assert as_string.code is ErrorCode.CASE_NOT_FOUND
    assert ValidationFailed("x").code == "validation_error"
    assert (as_string.status, as_string.field, as_string.detail) == (422, "case_id", "no such case")


def _app_error_classes() -> dict[str, type[AppError]]:
    import backend.app  # noqa: F401 - imports every module that defines an AppError subclass

    found: dict[str, type[AppError]] = {}
    todo: list[type[AppError]] = [AppError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("backend."):  # not the refused ones the tests define
            found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


_LITERAL_CODE = re.compile(r"""\bcode\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_MEMBER_CODE = re.compile(r"\bcode\s*=\s*ErrorCode\.(\w+)")


def test_source_raises_no_unregistered_code() -> None:
    registered = {c.value for c in ErrorCode}
    unknown: list[str] = []
    seen: set[str] = set()
    for path in sorted(BACKEND.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in _LITERAL_CODE.finditer(text):
            code = match.group(1) if match.group(1) is not None else match.group(2)
            seen.add(code)
            if code not in registered:
                unknown.append(f"{path.relative_to(BACKEND.parent)}: code={code!r}")
        for match in _MEMBER_CODE.finditer(text):
            if match.group(1) not in ErrorCode.__members__:
                unknown.append(f"{path.relative_to(BACKEND.parent)}: ErrorCode.{match.group(1)}")
            else:
                seen.add(ErrorCode[match.group(1)].value)
    assert unknown == []
    assert len(seen) >= 40, "the scan found suspiciously few codes; did the pattern stop matching?"


def _code_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ErrorCode":
        return ErrorCode[node.attr].value
    return None


def test_each_raised_code_is_registered_with_the_status_it_is_raised_with() -> None:
    classes = _app_error_classes()
    wrong: list[str] = []
    for path in sorted(BACKEND.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            cls = classes.get(name or "")
            codes = [_code_of(k.value) for k in node.keywords if k.arg == "code"]
            if cls is None or not codes or codes[0] is None:
                continue
            if cls.status not in ERRORS[ErrorCode(codes[0])].statuses:
                wrong.append(f"{path.name}:{node.lineno} {name}({codes[0]}) answers {cls.status}")
    for cls in classes.values():
        if cls.status not in ERRORS[cls.code].statuses:
            wrong.append(f"class {cls.__name__} answers {cls.status} with {cls.code}")
    assert wrong == []


# --- the OpenAPI document ---------------------------------------------------------------------------------------------


def _operations(app: Litestar) -> list[tuple[str, str, Any, dict[str, Any]]]:
    schema = app.openapi_schema.to_schema()
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if not handler.resolve_include_in_schema():
                continue
            operation = schema["paths"][route.path_format][method.lower()]
            found.append((method, route.path_format, (handler, route), operation))
    return found


def _required_statuses(method: str, path: str, handler: Any, route: HTTPRoute, operation: dict[str, Any]) -> set[int]:
    public = bool(handler.opt.get("exclude_from_auth")) or any(re.search(p, path) for p in PUBLIC_PATHS)
    required = {503}
    if "requestBody" in operation or operation.get("parameters"):
        required.add(400)
    if not public or (method, path) == LOGIN:
        required.add(401)
    if handler.resolve_guards():
        required.add(403)
    if route.path_parameters:
        required.add(404)
    if method in WRITE_METHODS:
        required |= {409, 422}
    if (method, path) in UPLOAD_ROUTES:
        required.add(413)
    if (method, path) == LOGIN:
        required.add(429)
    return required


def test_every_operation_documents_its_problem_responses(app: Litestar) -> None:
    operations = _operations(app)
    assert len(operations) >= 40
    missing: list[str] = []
    for method, path, (handler, route), operation in operations:
        responses = operation["responses"]
        own = {int(s) for s in handler.responses or {}}
        for status in sorted(_required_statuses(method, path, handler, route, operation) - own):
            response = responses.get(str(status))
            if response is None:
                missing.append(f"{method} {path}: no {status}")
                continue
            if response.get("content") != {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}:
                missing.append(f"{method} {path}: {status} is not {PROBLEM_MEDIA_TYPE} of Problem")
            for code in codes_for_status(status):
                if f"`{code}`" not in response["description"] or ERRORS[code].meaning not in response["description"]:
                    missing.append(f"{method} {path}: {status} does not explain {code}")
        for status, response in responses.items():
            if int(status) >= 400 and int(status) not in own and PROBLEM_MEDIA_TYPE not in (response.get("content") or {}):
                missing.append(f"{method} {path}: {status} is documented as {list(response.get('content') or {})}")
    assert missing == []


def test_the_login_and_the_uploads_document_their_special_statuses(app: Litestar) -> None:
    paths = app.openapi_schema.to_schema()["paths"]
    login = paths["/api/v1/auth/login"]["post"]["responses"]
    assert {"401", "429"} <= set(login)
    assert "`login_throttled`" in login["429"]["description"] and "`invalid_credentials`" in login["401"]["description"]
    for path in ("/api/v1/evidence", "/api/v1/evidence/uploads"):
        assert "`file_too_large`" in paths[path]["post"]["responses"]["413"]["description"]
    assert "401" not in paths["/api/v1/public/decisions"]["get"]["responses"]
    assert "403" not in paths["/api/v1/auth/me"]["get"]["responses"]


def test_litestars_own_validation_shape_is_gone(app: Litestar) -> None:
    document = app.openapi_schema.to_schema()
    text = str(document)
    assert "status_code" not in text and "Validation Exception" not in text


def test_the_problem_schema(app: Litestar) -> None:
    problem = app.openapi_schema.to_schema()["components"]["schemas"]["Problem"]
    assert {"type", "status", "title", "detail", "code", "instance", "field", "errors", "request_id"} <= set(problem["properties"])
    assert set(problem["required"]) == {"type", "status", "title", "detail", "code", "instance"}
    assert problem["properties"]["code"]["enum"] == [c.value for c in ErrorCode]
    assert problem["properties"]["errors"]["items"]["properties"].keys() >= {"field", "message", "source"}


def test_the_health_check_documents_its_own_503(app: Litestar) -> None:
    unavailable = app.openapi_schema.to_schema()["paths"]["/health"]["get"]["responses"]["503"]
    assert list(unavailable["content"]) == ["application/json"]


def test_binary_routes_have_their_media_types(app: Litestar) -> None:
    paths = app.openapi_schema.to_schema()["paths"]
    binary = {"type": "string", "format": "binary"}
    document = paths["/api/v1/cases/{case_id}/documents/{doc_type}"]["get"]["responses"]["200"]["content"]
    assert document == {"application/pdf": {"schema": binary}}
    content = paths["/api/v1/evidence/{evidence_id}/content"]["get"]["responses"]["200"]["content"]
    assert content == {m: {"schema": binary} for m in ("image/*", "audio/*", "video/*", "application/pdf", "application/octet-stream")}


async def test_the_served_document_is_the_completed_one(world: World) -> None:
    served = (await world.client.get("/schema/openapi.json")).json()
    assert served == world.app.openapi_schema.to_schema()
    assert "Problem" in served["components"]["schemas"]


# --- problem details at run time --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("level=nope", "level"), ("enterprise_id=zz", "enterprise_id")])
async def test_a_bad_query_value_is_a_400_problem_naming_the_parameter(world: World, query: str, field: str) -> None:
    response = await world.get("inspector_a1", f"/api/v1/hazards?{query}")
    body = assert_problem(response, 400, "validation_error", field=field)
    assert set(body) == {"type", "status", "title", "detail", "code", "instance", "request_id", "field", "errors"}
    assert body["errors"][0]["field"] == field and body["errors"][0]["source"] == "query"
    assert body["instance"] == "/api/v1/hazards" and body["request_id"] == response.headers["x-request-id"]


async def test_a_bad_path_value_is_a_400_problem_naming_the_parameter(world: World) -> None:
    response = await world.get("inspector_a1", "/api/v1/cases/00000000-0000-0000-0000-000000000000/documents/nope")
    body = assert_problem(response, 400, "validation_error", field="doc_type")
    assert body["errors"][0]["source"] == "path"


def test_an_unreachable_dependency_is_a_503_and_a_bug_a_500() -> None:
    @get("/down", sync_to_thread=False)
    def down() -> None:
        raise ConnectionRefusedError("database refused the connection")

    @get("/bug", sync_to_thread=False)
    def bug() -> None:
        raise RuntimeError("a bug")

    app = Litestar([down, bug], exception_handlers=exception_handlers)  # type: ignore[arg-type]
    with TestClient(app) as client:
        unavailable = client.get("/down")
        broken = client.get("/bug")
    assert unavailable.status_code == 503 and unavailable.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert unavailable.json()["code"] == "service_unavailable"
    assert broken.status_code == 500 and broken.json()["code"] == "internal_error"
