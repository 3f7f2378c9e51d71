"""`GET /health`: really asks the database and the object store (both at once, each with its own time limit), and
names the part that fails: a stalled store is reported as the store, never as the database."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec
from sqlalchemy import text

from backend.faults import DATABASE, OBJECT_STORE

PROBE_TIMEOUT_SECONDS = 5


async def _probe_database(request: Request[Any, Any, Any]) -> None:
    try:
        async with request.app.state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # counted in the outage (logged once when it starts); the store's probe counts its own
        outages = getattr(request.app.state, "outages", {})
        if DATABASE in outages:
            outages[DATABASE].failed(exc)
        raise


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

    async def check(part: str, probe: Any) -> None:
        try:
            with anyio.fail_after(PROBE_TIMEOUT_SECONDS):
                await probe(request)
            body[part] = "ok"
        except Exception as exc:  # any failure of the dependency is what this endpoint reports
            body[part] = "unavailable"
            body[f"{part}_error"] = f"{type(exc).__name__}: {exc}"[:300]

    async with anyio.create_task_group() as group:
        for part, probe in ((DATABASE, _probe_database), (OBJECT_STORE, _probe_object_store)):
            group.start_soon(check, part, probe)
    failing = [p for p in (DATABASE, OBJECT_STORE) if body[p] != "ok"]
    body = {"status": "unavailable" if failing else "ok", **dict(sorted(body.items()))}
    if failing:
        body["failing"] = ",".join(failing)
    return Response(content=body, status_code=503 if failing else 200)
