"""`GET /health`: really asks the database and the object store, and names the part that fails."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec
from sqlalchemy import text

PROBE_TIMEOUT_SECONDS = 5


async def _probe_database(request: Request[Any, Any, Any]) -> None:
    async with request.app.state.sessionmaker() as session:
        await session.execute(text("SELECT 1"))


async def _probe_object_store(request: Request[Any, Any, Any]) -> None:
    await request.app.state.store.probe()


UNAVAILABLE = ResponseSpec(
    data_container=dict[str, str],
    generate_examples=False,
    description="A dependency fails: the same report, with `status` `unavailable`, the failing parts in `failing` and "
    "their errors in `<part>_error`.",
)


@get(
    ["/health", "/api/v1/health"],
    exclude_from_auth=True,
    tags=["health"],
    summary="Liveness of the API and its dependencies",
    responses={503: UNAVAILABLE},
)
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    body: dict[str, str] = {}
    for part, probe in (("database", _probe_database), ("object_store", _probe_object_store)):
        try:
            with anyio.fail_after(PROBE_TIMEOUT_SECONDS):
                await probe(request)
            body[part] = "ok"
        except Exception as exc:  # any failure of the dependency is what this endpoint reports
            body[part] = "unavailable"
            body[f"{part}_error"] = f"{type(exc).__name__}: {exc}"[:300]
    healthy = body["database"] == "ok" and body["object_store"] == "ok"
    failing = [p for p in ("database", "object_store") if body[p] != "ok"]
    body = {"status": "ok" if healthy else "unavailable", **body}
    if failing:
        body["failing"] = ",".join(failing)
    return Response(content=body, status_code=200 if healthy else 503)
