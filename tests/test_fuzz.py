"""A bounded schemathesis run against the app's own OpenAPI document, in process, as every role.

For each operation and each role, a fixed number of cases is generated from the document (valid ones and ones that
break the schema), with a fixed seed, and sent through the ASGI app. Each answer must be no 5xx, a status the
document lists for the operation, in the content type it documents, with a body that fits the documented schema.
Path ids are the ids of a small world's real inspection, hazard, case and evidence half of the time, so the steps
behind them run too. A request answered with an error must leave the database as it found it (the unit of work rolls
back): the row count of every table is compared around each such request.

Hypothesis runs in a worker thread (it is synchronous); each request is sent on the test's own event loop, where the
app, its engine and its connections live.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from sqlalchemy import text
from sqlmodel import SQLModel

from tests.helpers import World, ok, start_inspection, upload
from tests.media import jpeg
from tests.test_enforcement import open_case
from tests.test_hazards import report

SEED = 20261129
EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 3}  # per operation, role and mode
ROLES = ("admin", "inspector_a1", "enterprise_a", "legal_city")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Operations not fuzzed, and why:
SKIPPED = {
    # The login is fuzzed without a token, once: any case sent as a role is the same request, and each failed attempt
    # costs an argon2 hash; repeated ones are throttled (429, documented).
    ("POST", "/api/v1/auth/login"): "fuzzed once, without a token",
}


async def _world_ids(world: World) -> dict[str, Any]:
    """Real ids for path parameters and for the ids inside bodies, so generated steps reach the services behind them."""
    inspection = await start_inspection(world)
    photo = (await upload(world, "inspector_a1", jpeg(), inspection_id=inspection["id"])).json()
    hazard = await report(world, level="major")
    case = await open_case(world, None)
    ok(await world.post("inspector_a1", f"/api/v1/hazards/{hazard['id']}/order", {"deadline": "2099-01-01", "measures": "停产整顿"}))
    return {
        "inspection_id": inspection["id"],
        "evidence_id": photo["id"],
        "hazard_id": hazard["id"],
        "case_id": case["id"],
        "enterprise_id": str(world.enterprises["a"].id),
        "checklist_id": inspection["checklist_ids"][0],
        "checklist_ids": inspection["checklist_ids"],
        "inspector_ids": [str(world.users["inspector_a1"].id), str(world.users["inspector_a2"].id)],
        "handler_ids": [str(world.users["inspector_a2"].id)],
        "evidence_ids": [photo["id"]],
        "agency_id": str(world.agencies["district_a"].id),
        "parent_id": str(world.agencies["city"].id),
    }


def _with_real_ids(value: Any, ids: dict[str, Any]) -> Any:
    """The generated body with every id field that names a kind of thing the world has set to a real one."""
    if isinstance(value, dict):
        return {k: ids[k] if k in ids and isinstance(v, type(ids[k])) else _with_real_ids(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_real_ids(v, ids) for v in value]
    return value


def _poisoned(value: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of `value` with a NUL byte in its first text value (depth first), or None when it has no text."""
    done = False

    def walk(item: Any) -> Any:
        nonlocal done
        if done:
            return item
        if isinstance(item, str):
            done = True
            return item[: len(item) // 2] + "\x00" + item[len(item) // 2 :]
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    poisoned = walk(value)
    return poisoned if done else None


# Rows an error answer writes on purpose: a failed login is recorded, so the throttle counts it (backend/accounts/login.py).
KEPT_ON_ERROR = {"login_failure"}


async def _row_counts(world: World) -> dict[str, int]:
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    query = " UNION ALL ".join(f"SELECT '{name}', count(*) FROM \"{name}\"" for name in tables)
    async with world.app.state.engine.connect() as conn:
        return {name: count for name, count in (await conn.execute(text(query))).all()}


def _pairs(files: Any) -> list[tuple[str, Any]]:
    return list(files.items()) if isinstance(files, dict) else list(files)


def _as_sendable(part: Any) -> Any:
    if isinstance(part, tuple):
        return (part[0], _as_sendable(part[1]), *part[2:])
    return part if isinstance(part, str | bytes) or hasattr(part, "read") else str(part)


def _httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis serialises a case for `requests`; the same request for httpx."""
    out = {k: v for k, v in kwargs.items() if k in ("method", "url", "headers", "params", "json", "files")}
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        out["content"] = data
    elif data is not None:
        out["data"] = data
    if out.get("files") is not None:  # a negative case may make a file part a number: it goes on the wire as its text
        out["files"] = [(name, _as_sendable(part)) for name, part in _pairs(out["files"])]
    if out.get("files") is not None and "headers" in out:  # httpx picks the multipart boundary itself
        out["headers"] = {k: v for k, v in out["headers"].items() if k.lower() != "content-type"}
    return out


async def test_no_operation_answers_5xx_or_off_its_documented_contract(world: World) -> None:
    loop = asyncio.get_running_loop()
    ids = await _world_ids(world)
    schema = schemathesis.openapi.from_dict(world.app.openapi_schema.to_schema())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    failures: list[str] = []
    dirty: list[str] = []
    sent = 0
    statuses: dict[int, int] = {}

    def run(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=120)

    async def send(kwargs: dict[str, Any]) -> Any:
        before = await _row_counts(world)
        request = world.client.build_request(**_httpx_kwargs(kwargs))
        await request.aread()  # a multipart body is a stream; read, the checks can look at what was sent
        response = await world.client.send(request)
        if response.status_code >= 400:
            after = await _row_counts(world)
            changed = {k: (before[k], after[k]) for k in after if after[k] != before.get(k) and k not in KEPT_ON_ERROR}
            if changed:
                dirty.append(f"{kwargs['method']} {kwargs['url']} answered {response.status_code} but changed {changed}")
        return response

    def check(case: Any, label: str) -> None:
        nonlocal sent
        headers = case_headers[0]
        kwargs = case.as_transport_kwargs(base_url="http://testserver.local", headers=headers)
        response = run(send(kwargs))
        sent += 1
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # check failures: keep going, report all at the end
            failures.append(f"{label}: {exc}"[:3000])

    case_headers: list[dict[str, str]] = [{}]

    def fuzz(operation: Any, username: str | None, mode: GenerationMode, real: bool) -> None:
        headers = world.headers(username) if username else {}
        case_headers[0] = headers
        ids_are = "real" if real else "generated"
        label = f"{operation.method.upper()} {operation.path} as {username or 'anonymous'} ({mode.value}, {ids_are} ids)"
        names = [p.name for p in operation.path_parameters]
        path_parameters = {name: ids[name] for name in names if name in ids} if real else None

        @seed(SEED)
        @hypothesis.settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            phases=[Phase.generate],  # no shrinking: failures are collected, not raised
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        def one(case: Any) -> None:
            if real and mode == GenerationMode.POSITIVE and isinstance(case.body, dict):
                case.body = _with_real_ids(case.body, ids)  # a negative case keeps its breakage
            check(case, label)
            if real and mode == GenerationMode.POSITIVE:
                # the same valid request with a control character in one text value: what the schema cannot forbid
                # in every place (query strings, form fields) and PostgreSQL refuses
                for where in ("body", "query"):
                    value = getattr(case, where)
                    poisoned = _poisoned(value) if isinstance(value, dict) else None
                    if poisoned is not None:
                        setattr(case, where, poisoned)
                        check(case, f"{label} with a control character in the {where}")
                        setattr(case, where, value)

        one()

    def fuzz_all() -> None:
        for operation in operations:
            key = (operation.method.upper(), operation.path)
            if key in SKIPPED:
                fuzz(operation, None, GenerationMode.POSITIVE, False)
                continue
            with_ids = any(p.name in ids for p in operation.path_parameters) or operation.body
            for username in ROLES:
                for mode in EXAMPLES:
                    fuzz(operation, username, mode, False)  # ids as generated: mostly unknown ones
                    if with_ids:
                        fuzz(operation, username, mode, True)

    started = time.monotonic()
    await asyncio.to_thread(fuzz_all)
    elapsed = time.monotonic() - started
    print(f"schemathesis: {sent} requests in {elapsed:.0f} s, statuses {dict(sorted(statuses.items()))}")
    assert sent > 1000
    kinds = sorted({f"{f.split(' as ')[0]}: {next((line for line in f.splitlines() if '- ST' in line), '?').strip()}" for f in failures})
    examples = {f.split(" as ")[0]: f for f in failures}  # one full report per operation
    assert failures == [], f"{len(failures)} failing runs of these kinds:\n" + "\n".join(kinds) + "\n\n" + "\n\n".join(examples.values())
    assert dirty == [], "\n".join(dirty[:20])
