"""How the console answers what goes wrong: as pages a person understands, never a stack trace or raw JSON."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, PermissionDeniedException, ValidationException
from litestar.response import Redirect

from backend.console import words
from backend.console.session import PREFIX, SESSION_COOKIE, CsrfRefused, expired
from backend.errors import AppError, handle_unexpected
from backend.faults import DependencyUnavailable


def _page(request: Request[Any, Any, Any], status: int, title: str, message: str) -> Response[Any]:
    from backend.console.controller import render

    return render(request, "error.html", status, title=title, message=message, request_id=request.scope.get("state", {}).get("request_id"))


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return "application/json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", "")


def not_logged_in(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """No session, an expired one, or an account deactivated since: back to the login page, the cookie dropped."""
    secure = request.app.state.settings.console_cookie_secure
    if request.headers.get("Authorization") or _wants_json(request):
        return Response({"error": "登录已失效，请重新登录。"}, status_code=401, cookies=[expired(SESSION_COOKIE, secure)])
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"{PREFIX}/login?next={target}" if request.method == "GET" else f"{PREFIX}/login"
    if request.headers.get("HX-Request") == "true":
        return Response("", status_code=401, headers={"HX-Redirect": login}, cookies=[expired(SESSION_COOKIE, secure)])
    return Redirect(login, status_code=303, cookies=[expired(SESSION_COOKIE, secure)])


def csrf_refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _page(request, 403, "请求未通过安全校验", "这个表单已过期或不是从本系统页面提交的。请返回上一页，刷新后重新提交。")


def not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _page(request, 404, "未找到", "您要找的页面不存在，或不在您的权限范围内。")


def app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    if exc.status == 404:
        return not_found(request, exc)
    if exc.status == 401:
        return not_logged_in(request, exc)
    return _page(request, exc.status, "操作未能完成", words.problem_message(exc))


def bad_request(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _page(request, 400, "请求不正确", "链接或参数不正确，请从页面上的链接进入。")


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == 404:
        return not_found(request, exc)
    if exc.status_code == 413:
        return _page(request, 413, "内容太大", "提交的内容超过了允许的大小。")
    return _page(request, exc.status_code, "请求未能完成", "请返回上一页后重试。")


def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _page(request, 503, "服务暂时不可用", "系统暂时无法访问数据库或存储服务，请稍后重试。")


def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Logged (with the request id) by the API's own handler, which also tells a database outage (503) from a bug."""
    status = handle_unexpected(request, exc).status_code
    if status == 503:
        return unavailable(request, exc)
    return _page(request, 500, "系统出错了", "请稍后重试；如果问题持续，请把下面的请求编号告诉系统管理员。")


exception_handlers: dict[Any, Any] = {
    NotAuthorizedException: not_logged_in,
    CsrfRefused: csrf_refused,
    NotFoundException: not_found,
    PermissionDeniedException: not_found,
    ValidationException: bad_request,
    AppError: app_error,
    DependencyUnavailable: unavailable,
    HTTPException: http_error,
    Exception: unexpected,
}
