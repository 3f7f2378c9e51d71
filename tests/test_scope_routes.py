"""Scope, for every route: an id outside the caller's scope answers exactly as an id that does not exist.

A path id outside scope is `404` (a role guard that refuses whatever the id is, `403 role_forbidden`, is fine too);
an id inside a body is `422` with the same `code` (`<thing>_not_found`) and a `field` naming it. Anything else that
differs between "exists, but not yours" and "never existed" tells a caller what lies beyond their scope.

The first test does not list the routes it checks: it reads them from the app. A route added later with a path
parameter fails here until the tables below say how to fill it:

- `PATH_VALUES`: every path parameter name -> the value that names the owner's resource (a factory below makes one
  of each kind, through the API, for enterprise `a` / district_a);
- `BODIES`: every (method, path template) that is not a GET -> a body the owner could send (`NO_BODY` when the
  route takes none), so that the scope check is reached instead of a `400` schema error;
- `UNSCOPED`: parameters naming deliberately global resources, with the reason;
- `NOT_DATA_ROUTES`: path templates that serve no data at all (the OpenAPI UI's static files), with the reason.

The second test is a list (`cases` in it, one `BodyIdCase` per id-bearing body field): a new body field that names
an id gets an entry there by hand, with a resource of another city for the "foreign" value.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar.routes import HTTPRoute
from sqlalchemy import update

from backend.hazards.models import Hazard
from backend.integration.delivery import Dispatcher
from backend.integration.outbox import emit
from tests.helpers import USER_PASSWORD, World, credit_code, routine_checklist, start_inspection, upload
from tests.media import jpeg
from tests.test_documents import submitted_routine_inspection
from tests.test_inspections import ATTENDEES, all_compliant, items_of

API = "/api/v1"
FUTURE = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
LATER = (datetime.now(UTC) + timedelta(days=120)).date().isoformat()

# Who tries the owner's ids: an inspector of another city, a legal reviewer of another city, another enterprise.
FOREIGN_CALLERS = ("inspector_other", "legal_other", "leader_other", "enterprise_b")
# Who plays the owner for the sanity calls: the first of these that the route's role guard lets in (the admin, who
# sees everything, stands in for routes no one else may call).
OWNERS = ("inspector_a1", "enterprise_a", "legal_city", "leader_city", "leader_a", "admin")


# --- the owner's resources ------------------------------------------------------------------------------------


@dataclass
class Owned:
    """One resource of every kind, owned by enterprise `a` / district_a, made through the API."""

    enterprise_id: str
    checklist_id: str
    item_code: str
    inspection_id: str
    evidence_id: str
    hazard_id: str
    case_id: str
    statement_id: str
    host_id: str
    accident_id: str
    measure_id: str
    user_id: str
    plan_id: str
    draw_id: str
    webhook_id: str
    delivery_id: str


YEAR = datetime.now(UTC).year
WHOLE_YEAR = {"period_start": f"{YEAR}-01-01", "period_end": f"{YEAR}-12-31"}
CLASSIFICATION = {"category": "key", "risk_level": "major", "basis": "重大危险源", "valid_from": f"{YEAR}-01-01"}
KEY_RULES = [{"category": "key", "visits_per_year": 1}]


async def plan_and_draw(world: World, agency: str, enterprise: str, inspector: str, leader: str) -> tuple[str, str, str]:
    """An approved plan of `agency` with one key rule, `enterprise` classified key, and a draw: (plan, draw, task)."""
    classified = await world.put(inspector, f"{API}/enterprises/{enterprise}/classification", CLASSIFICATION)
    assert classified.status_code == 200, classified.text
    plan = await world.post(inspector, f"{API}/plans", {"agency_id": agency, "year": YEAR, "title": "年度计划", "rules": KEY_RULES})
    assert plan.status_code == 201, plan.text
    approved = await world.post(leader, f"{API}/plans/{plan.json()['id']}/approve")
    assert approved.status_code == 200, approved.text
    draw = await world.post(inspector, f"{API}/plans/{plan.json()['id']}/draws", {"rule_index": 0, **WHOLE_YEAR})
    assert draw.status_code == 201, draw.text
    return plan.json()["id"], draw.json()["id"], draw.json()["tasks"][0]["id"]


async def build_owned(world: World) -> Owned:
    checklist = await routine_checklist(world)
    items = await items_of(world, checklist["id"])
    inspection = await start_inspection(world, kind="enforcement")  # team inspector_a1, inspector_a2
    iid = inspection["id"]
    photo = await upload(world, "inspector_a1", jpeg(color=(12, 34, 56)), inspection_id=iid)
    assert photo.status_code == 201, photo.text
    notice = await world.post("inspector_a1", f"{API}/inspections/{iid}/notice", {"note": "出示执法证件，告知检查事项"})
    assert notice.status_code == 200, notice.text
    result = {"checklist_id": checklist["id"], "item_code": items[0]["code"], "outcome": "hazard", "evidence_ids": [photo.json()["id"]]}
    results = await world.put("inspector_a1", f"{API}/inspections/{iid}/results", {"results": [result]})
    assert results.status_code == 200, results.text

    hazard = await world.post(
        "inspector_a1",
        f"{API}/hazards",
        {"enterprise_id": str(world.enterprises["a"].id), "level": "general", "description": "安全出口被堵塞"},
    )
    assert hazard.status_code == 201, hazard.text

    case = await world.post(
        "inspector_a1",
        f"{API}/cases",
        {
            "enterprise_id": str(world.enterprises["a"].id),
            "inspection_id": iid,
            "title": "企业a未如实记录事故隐患排查治理情况案",
            "handler_ids": [str(world.users["inspector_a1"].id), str(world.users["inspector_a2"].id)],
        },
    )
    assert case.status_code == 201, case.text
    record = await world.post(
        "inspector_a1",
        f"{API}/cases/{case.json()['id']}/records",
        {
            "kind": "notice",
            "occurred_at": datetime.now(UTC).isoformat(),
            "description": "出示执法证件，告知当事人权利义务",
        },
    )
    assert record.status_code == 201, record.text
    cid = case.json()["id"]
    decision = {"measures": [{"type": "fine", "amount": 20000, "basis_id": "AQSCF-97-5"}], "facts": "事实", "reasoning": "理由"}
    for step, body in (("decision", decision), ("notify", {})):
        done = await world.post("inspector_a1", f"{API}/cases/{cid}/{step}", body)
        assert done.status_code == 200, done.text
    statement = await world.post("enterprise_a", f"{API}/cases/{cid}/statements", {"content": "陈述、申辩"})
    assert statement.status_code == 201, statement.text
    plan_id, draw_id, _ = await plan_and_draw(
        world, str(world.agencies["district_a"].id), str(world.enterprises["a"].id), "inspector_a1", "leader_a"
    )

    accident = await approved_accident(world, "inspector_a1", "a")

    webhook = await world.post(
        "admin", f"{API}/webhooks", {"url": "http://127.0.0.1:9/hooks", "secret": "a-secret-of-sixteen", "events": ["task.assigned"]}
    )
    assert webhook.status_code == 201, webhook.text
    async with world.app.state.sessionmaker() as session:
        emit(session, "task.assigned", {"task": {"id": str(uuid.uuid4())}})
        await session.commit()
    await Dispatcher(world.app.state.sessionmaker, world.app.state.settings).fan_out()
    delivery = (await world.get("admin", f"{API}/webhooks/{webhook.json()['id']}/deliveries")).json()["items"][0]

    return Owned(
        enterprise_id=str(world.enterprises["a"].id),
        checklist_id=checklist["id"],
        item_code=items[0]["code"],
        inspection_id=iid,
        evidence_id=photo.json()["id"],
        hazard_id=hazard.json()["id"],
        case_id=cid,
        statement_id=statement.json()["id"],
        host_id=str(world.users["legal_city"].id),
        user_id=str(world.users["inspector_a1"].id),
        plan_id=plan_id,
        draw_id=draw_id,
        accident_id=accident["id"],
        measure_id=accident["measures"][0]["id"],
        webhook_id=webhook.json()["id"],
        delivery_id=delivery["id"],
    )


async def approved_accident(world: World, inspector: str, enterprise: str) -> dict[str, Any]:
    """An accident of the enterprise whose investigation report (one measure) is approved."""
    recorded = await world.post(
        inspector,
        f"{API}/accidents",
        {
            "enterprise_id": str(world.enterprises[enterprise].id),
            "occurred_at": (datetime.now(UTC) - timedelta(days=400)).isoformat(),
            "level": "general",
            "deaths": 0,
            "injuries": 1,
            "direct_loss": 10000,
            "summary": "机械伤害事故",
        },
    )
    assert recorded.status_code == 201, recorded.text
    report = await world.post(
        inspector,
        f"{API}/accidents/{recorded.json()['id']}/report",
        {
            "approved_at": (datetime.now(UTC) - timedelta(days=330)).date().isoformat(),
            "approved_by": "某市人民政府",
            "document_no": "某政函〔2025〕1号",
            "measures": [{"text": "加装防护装置", "responsible": "设备部"}],
        },
    )
    assert report.status_code == 201, report.text
    return report.json()


# --- the tables a new route must be entered in ----------------------------------------------------------------

# Every path parameter name of every route -> its value for the owner's resources.
PATH_VALUES: dict[str, Callable[[Owned], str]] = {
    "enterprise_id": lambda o: o.enterprise_id,
    "checklist_id": lambda o: o.checklist_id,
    "inspection_id": lambda o: o.inspection_id,
    "evidence_id": lambda o: o.evidence_id,
    "hazard_id": lambda o: o.hazard_id,
    "case_id": lambda o: o.case_id,
    "statement_id": lambda o: o.statement_id,
    "user_id": lambda o: o.user_id,
    "plan_id": lambda o: o.plan_id,
    "draw_id": lambda o: o.draw_id,
    "accident_id": lambda o: o.accident_id,
    "measure_id": lambda o: o.measure_id,
    "webhook_id": lambda o: o.webhook_id,
    "delivery_id": lambda o: o.delivery_id,
    "doc_type": lambda o: "inspection_record",  # not an id: kept as it is when the case id is replaced
}

# Parameters that name resources every caller may see, on purpose.
UNSCOPED: dict[str, str] = {
    "checklist_id": "published checklists are national/routine standards shared by every agency and enterprise",
}

# Path templates that serve no data (their parameters name no resource).
NOT_DATA_ROUTES: dict[str, str] = {
    "/schema/{path:str}": "Litestar's OpenAPI plugin: static files of the schema UIs",
    "/schema/assets/swagger-ui/{file_path:path}": "Swagger UI's files, served by the app (backend.app.docs_config)",
    "/schema/assets/redoc/{file_path:path}": "ReDoc's files, served by the app (backend.app.docs_config)",
    "/console/static/{file_path:path}": "the desk console's stylesheet and scripts",
    "/console/{rest:path}": "the desk console's 404 page for any other path",
}

NO_BODY = object()  # the route takes no body


class Form(dict[str, Any]):
    """A desk console form: sent url-encoded, as a browser sends it."""


class Photo:
    """A photo sent to a desk console route as multipart, as its upload script sends it."""


# Every (method, path template) that is not a GET -> a body its owner could send.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/inspections/{inspection_id:uuid}/notice"): lambda o: {"note": "出示执法证件，告知检查事项"},
    ("PUT", "/api/v1/inspections/{inspection_id:uuid}/results"): lambda o: {
        "results": [{"checklist_id": o.checklist_id, "item_code": o.item_code, "outcome": "compliant"}]
    },
    ("POST", "/api/v1/inspections/{inspection_id:uuid}/submit"): lambda o: {"attendees": ATTENDEES, "feedback": "当场反馈"},
    ("POST", "/api/v1/inspections/{inspection_id:uuid}/deliveries"): lambda o: {
        "document": "inspection_record",
        "method": "direct",
        "delivered_at": datetime.now(UTC).isoformat(),
        "recipient": "负责人a",
    },
    ("POST", "/api/v1/evidence/{evidence_id:uuid}/complete"): NO_BODY,
    ("POST", "/api/v1/hazards/{hazard_id:uuid}/order"): lambda o: {"deadline": FUTURE, "measures": "立即清理安全出口"},
    ("POST", "/api/v1/hazards/{hazard_id:uuid}/governance-plan"): lambda o: {
        "objective": "消除隐患",
        "measures": "增设抽采钻孔",
        "funds": 1000,
        "responsible_person": "张矿长",
        "deadline": LATER,
        "safeguards": "撤出人员，制定应急预案",
    },
    ("POST", "/api/v1/hazards/{hazard_id:uuid}/rectifications"): lambda o: {
        "description": "已清理安全出口",
        "evidence_ids": [o.evidence_id],
    },
    ("POST", "/api/v1/hazards/{hazard_id:uuid}/review"): lambda o: {"decision": "accept", "opinion": "整改到位"},
    ("POST", "/api/v1/hazards/{hazard_id:uuid}/lookback"): lambda o: {"outcome": "held", "note": "回头看：整改效果保持"},
    ("POST", "/api/v1/cases/{case_id:uuid}/records"): lambda o: {
        "kind": "note",
        "occurred_at": datetime.now(UTC).isoformat(),
        "description": "询问安全管理人员",
    },
    ("POST", "/api/v1/cases/{case_id:uuid}/decision"): lambda o: {
        "measures": [{"type": "fine", "amount": 20000, "basis_id": "AQSCF-97-5"}],
        "facts": "事实",
        "reasoning": "理由",
    },
    ("POST", "/api/v1/cases/{case_id:uuid}/legal-review"): lambda o: {"decision": "approve", "opinion": "同意"},
    ("POST", "/api/v1/cases/{case_id:uuid}/decide"): NO_BODY,
    ("PUT", "/api/v1/enterprises/{enterprise_id:uuid}/classification"): lambda o: CLASSIFICATION,
    ("POST", "/api/v1/users/{user_id:uuid}/conflicts"): lambda o: {"enterprise_id": o.enterprise_id, "reason": "亲属在该企业任职"},
    ("PUT", "/api/v1/plans/{plan_id:uuid}"): lambda o: {"title": "年度计划（修订）", "rules": KEY_RULES},
    ("POST", "/api/v1/plans/{plan_id:uuid}/approve"): NO_BODY,
    ("POST", "/api/v1/plans/{plan_id:uuid}/draws"): lambda o: {"rule_index": 0, **WHOLE_YEAR},
    ("POST", "/api/v1/cases/{case_id:uuid}/extension"): lambda o: {
        "until": LATER,
        "reason": "案情复杂",
        "approved_by": "局长张某",
    },
    ("POST", "/api/v1/cases/{case_id:uuid}/notify"): lambda o: {},
    ("POST", "/api/v1/cases/{case_id:uuid}/statements"): lambda o: {"content": "陈述、申辩"},
    ("POST", "/api/v1/cases/{case_id:uuid}/statements/{statement_id:uuid}/reply"): lambda o: {"adopted": True, "reasoning": "采纳"},
    ("POST", "/api/v1/cases/{case_id:uuid}/hearing-request"): lambda o: {},
    ("POST", "/api/v1/cases/{case_id:uuid}/hearing"): lambda o: {
        "scheduled_at": f"{LATER}T09:00:00+08:00",
        "place": "听证室",
        "host_id": o.host_id,
    },
    ("POST", "/api/v1/cases/{case_id:uuid}/hearing/record"): lambda o: {
        "held_at": datetime.now(UTC).isoformat(),
        "attendees": [{"role": "当事人", "name": "负责人a"}],
        "summary": "听证情况",
    },
    ("POST", "/api/v1/cases/{case_id:uuid}/collective-discussion"): lambda o: {
        "held_at": datetime.now(UTC).isoformat(),
        "participants": ["局长", "副局长"],
        "conclusion": "同意",
    },
    ("POST", "/api/v1/cases/{case_id:uuid}/approve"): lambda o: {},
    ("POST", "/api/v1/cases/{case_id:uuid}/deliveries"): lambda o: {
        "document": "penalty_notice",
        "method": "direct",
        "delivered_at": datetime.now(UTC).isoformat(),
        "recipient": "负责人a",
    },
    ("POST", "/api/v1/cases/{case_id:uuid}/payments"): lambda o: {
        "amount": 1,
        "paid_at": datetime.now(UTC).isoformat(),
        "receipt_no": "R1",
    },
    ("POST", "/api/v1/cases/{case_id:uuid}/close"): lambda o: {"summary": "结案"},
    ("POST", "/api/v1/accidents/{accident_id:uuid}/report"): lambda o: {
        "approved_at": (datetime.now(UTC) - timedelta(days=30)).date().isoformat(),
        "approved_by": "某市人民政府",
        "document_no": "某政函〔2025〕2号",
        "measures": [{"text": "完善安全操作规程", "responsible": "安全部"}],
    },
    ("POST", "/api/v1/accidents/{accident_id:uuid}/measures/{measure_id:uuid}/progress"): lambda o: {
        "description": "已加装防护装置",
        "evidence_ids": [o.evidence_id],
    },
    ("POST", "/api/v1/accidents/{accident_id:uuid}/evaluation"): lambda o: {"started_at": datetime.now(UTC).isoformat()},
    ("POST", "/api/v1/accidents/{accident_id:uuid}/evaluation/findings"): lambda o: {
        "measure_id": o.measure_id,
        "outcome": "done",
        "note": "已落实",
    },
    ("POST", "/api/v1/accidents/{accident_id:uuid}/evaluation/complete"): lambda o: {"conclusion": "措施已落实"},
    ("POST", "/console/cases/{case_id:uuid}/review"): lambda o: Form(decision="approve", opinion="同意"),
    ("POST", "/console/hazards/{hazard_id:uuid}/rectification"): lambda o: Form(description="已清理", evidence_ids=[o.evidence_id]),
    ("POST", "/console/hazards/{hazard_id:uuid}/plan"): lambda o: Form(
        objective="消除隐患", measures="增设抽采钻孔", funds="1000", responsible_person="张矿长", deadline=LATER, safeguards="应急预案"
    ),
    ("POST", "/console/hazards/{hazard_id:uuid}/photos"): lambda o: Photo(),
    ("POST", "/console/hazards/{hazard_id:uuid}/uploads"): lambda o: {
        "kind": "photo",
        "content_type": "image/jpeg",
        "size": 1000,
        "sha256": "0" * 64,
    },
    ("POST", "/console/evidence/{evidence_id:uuid}/complete"): NO_BODY,
    ("DELETE", "/api/v1/webhooks/{webhook_id:uuid}"): NO_BODY,
    ("POST", "/api/v1/webhooks/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/redeliver"): NO_BODY,
}

# The desk console answers a page meant for another role with its 404 page, as it answers a foreign id (a page a role
# has no use for is as absent to it as another enterprise's hazard): the owner of those routes is named here.
CONSOLE_OWNERS: dict[str, str] = {
    "/console/cases/{case_id:uuid}/review": "legal_city",
    "/console/hazards/{hazard_id:uuid}/rectification": "enterprise_a",
    "/console/hazards/{hazard_id:uuid}/plan": "enterprise_a",
    "/console/hazards/{hazard_id:uuid}/photos": "enterprise_a",
    "/console/hazards/{hazard_id:uuid}/uploads": "enterprise_a",
    "/console/evidence/{evidence_id:uuid}/complete": "inspector_a1",
}


# --- calling a route ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    template: str  # as the app spells it: /api/v1/hazards/{hazard_id:uuid}
    params: dict[str, Any]  # litestar's PathParameterDefinition per name

    def path(self, values: dict[str, str]) -> str:
        path = self.template
        for name, definition in self.params.items():
            path = path.replace("{" + definition.full + "}", values[name])
        return path

    @property
    def id_params(self) -> list[str]:
        """The parameters that name a scoped resource: uuids not allowlisted as global."""
        return [n for n, d in self.params.items() if d.type is uuid.UUID and n not in UNSCOPED]

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def routes_with_path_parameters(world: World) -> tuple[list[Call], list[str]]:
    """Every (method, route) of the app with a path parameter, and what the tables lack to call it."""
    calls: list[Call] = []
    missing: list[str] = []
    for route in world.app.routes:
        params = dict(getattr(route, "path_parameters", None) or {})
        if not params or route.path in NOT_DATA_ROUTES:
            continue
        if not isinstance(route, HTTPRoute):
            missing.append(f"{route.path}: a {type(route).__name__} with path parameters; teach this test how to call it")
            continue
        for name in params:
            if name not in PATH_VALUES:
                missing.append(
                    f"{route.path}: path parameter '{name}' is not in PATH_VALUES; add a factory for the resource it "
                    f"names (or, for a deliberately global resource, list it in UNSCOPED with the reason)"
                )
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                call = Call(method, route.path, params)
                if method != "GET" and (method, route.path) not in BODIES:
                    missing.append(
                        f"{call}: not in BODIES; add a body its owner could send (NO_BODY when it takes none), so the "
                        f"scope check is reached instead of a 400"
                    )
                calls.append(call)
    return calls, missing


async def send(world: World, username: str, method: str, path: str, body: Any) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": world.headers(username)}
    if isinstance(body, Form):
        kwargs["data"] = dict(body)
    elif isinstance(body, Photo):
        kwargs["files"] = {"file": ("after.jpg", jpeg(color=(40, 80, 120)), "image/jpeg")}
    elif body is not NO_BODY and body is not None:
        kwargs["json"] = body
    return await world.client.request(method, path, **kwargs)


def code_of(response: httpx.Response) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    return response.json().get("code")


def field_of(response: httpx.Response) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    return response.json().get("field")


def answer(response: httpx.Response) -> str:
    code = code_of(response)
    return f"{response.status_code} {code}" if code else str(response.status_code)


def body_for(call: Call, owned: Owned) -> Any:
    if call.method == "GET":
        return NO_BODY
    body = BODIES[(call.method, call.template)]
    return body if body is NO_BODY else body(owned)


def hides_like_nothing(response: httpx.Response) -> bool:
    """What a path id outside scope may answer: 404, or a role guard's 403 that does not look at the id at all."""
    return response.status_code == 404 or (response.status_code == 403 and code_of(response) == "role_forbidden")


# --- 1. path ids ----------------------------------------------------------------------------------------------


async def test_every_route_with_path_ids_hides_foreign_resources(world: World) -> None:
    calls, missing = routes_with_path_parameters(world)
    assert not missing, "routes this test cannot call yet:\n" + "\n".join(missing)
    scoped = [c for c in calls if c.id_params]
    assert len(scoped) >= 20, [str(c) for c in calls]  # the enumeration found the routes at all

    owned = await build_owned(world)
    real = {name: factory(owned) for name, factory in PATH_VALUES.items()}
    failures: list[str] = []

    # Foreign callers first, while every resource is in the state the factory left it in.
    for call in scoped:
        for caller in FOREIGN_CALLERS:
            for param in call.id_params:
                body = body_for(call, owned)
                with_real = await send(world, caller, call.method, call.path(real), body)
                with_random = await send(world, caller, call.method, call.path({**real, param: str(uuid.uuid4())}), body)
                seen = f"real {param} -> {answer(with_real)}, random {param} -> {answer(with_random)}"
                problems = []
                if (with_real.status_code, code_of(with_real)) != (with_random.status_code, code_of(with_random)):
                    problems.append("the answers differ")
                for which, response in (("real", with_real), ("random", with_random)):
                    if response.status_code < 400:
                        problems.append(f"the {which} id succeeded")
                    elif response.status_code == 403 and code_of(response) != "role_forbidden":
                        problems.append(f"403 {code_of(response)} for the {which} id (only role_forbidden may be 403)")
                    elif not hides_like_nothing(response):
                        problems.append(f"the {which} id is neither 404 nor 403 role_forbidden")
                if problems:
                    failures.append(f"{call} as {caller}: {'; '.join(problems)} ({seen})")

    # Then the owner, to show the ids are real and the bodies valid: never 404 (the id exists and is theirs) and
    # never 400 (the body passes the schema, so the foreign calls above reached the scope check).
    for call in calls:
        body = body_for(call, owned)
        for owner in [CONSOLE_OWNERS[call.template]] if call.template in CONSOLE_OWNERS else OWNERS:
            response = await send(world, owner, call.method, call.path(real), body)
            if not (response.status_code == 403 and code_of(response) == "role_forbidden"):
                break
        else:
            failures.append(f"SET-UP: {call}: no one in OWNERS passes its role guard; add the role that may call it")
            continue
        if response.status_code in (400, 404) or response.status_code >= 500:
            failures.append(f"SET-UP: {call} as the owner {owner}: {answer(response)} {response.text[:300]}")

    assert not failures, f"{len(failures)} scope differences:\n" + "\n".join(failures)


# --- 2. ids inside bodies -------------------------------------------------------------------------------------


@dataclass
class Foreign:
    """Resources of enterprise `other` / other_city, made by inspector_other."""

    enterprise_id: str
    agency_id: str
    inspection_id: str
    evidence_id: str
    hazard_id: str
    case_id: str
    inspector_id: str
    plan_id: str
    task_id: str
    accident_id: str
    measure_id: str


async def build_foreign(world: World) -> Foreign:
    other = str(world.enterprises["other"].id)
    # other_city has one officer; a case needs two certified handlers, so the admin adds a second.
    second = await world.post(
        "admin",
        f"{API}/users",
        {
            "username": "inspector_other2",
            "password": USER_PASSWORD,
            "display_name": "inspector_other2",
            "role": "inspector",
            "agency_id": str(world.agencies["other_city"].id),
            "certificate_no": "O-0002",
        },
    )
    assert second.status_code == 201, second.text
    checklist = await routine_checklist(world)
    inspection = await world.post(
        "inspector_other",
        f"{API}/inspections",
        {
            "enterprise_id": other,
            "checklist_ids": [checklist["id"]],
            "inspector_ids": [str(world.users["inspector_other"].id)],
            "kind": "routine",
        },
    )
    assert inspection.status_code == 201, inspection.text
    photo = await upload(world, "inspector_other", jpeg(color=(99, 1, 200)), inspection_id=inspection.json()["id"])
    assert photo.status_code == 201, photo.text
    hazard = await world.post("inspector_other", f"{API}/hazards", {"enterprise_id": other, "level": "general", "description": "外市隐患"})
    assert hazard.status_code == 201, hazard.text
    case = await world.post(
        "inspector_other",
        f"{API}/cases",
        {
            "enterprise_id": other,
            "title": "外市案件",
            "handler_ids": [str(world.users["inspector_other"].id), second.json()["id"]],
        },
    )
    assert case.status_code == 201, case.text
    plan_id, _, task_id = await plan_and_draw(world, str(world.agencies["other_city"].id), other, "inspector_other", "leader_other")
    accident = await approved_accident(world, "inspector_other", "other")
    return Foreign(
        plan_id=plan_id,
        task_id=task_id,
        enterprise_id=other,
        agency_id=str(world.agencies["other_city"].id),
        inspection_id=inspection.json()["id"],
        evidence_id=photo.json()["id"],
        hazard_id=hazard.json()["id"],
        case_id=case.json()["id"],
        inspector_id=str(world.users["inspector_other"].id),
        accident_id=accident["id"],
        measure_id=accident["measures"][0]["id"],
    )


async def rectifying_hazard(world: World) -> str:
    """A hazard of enterprise `a` waiting for the enterprise's proof."""
    hazard = await world.post(
        "inspector_a1",
        f"{API}/hazards",
        {"enterprise_id": str(world.enterprises["a"].id), "level": "general", "description": "消防通道堆物"},
    )
    assert hazard.status_code == 201, hazard.text
    ordered = await world.post("inspector_a1", f"{API}/hazards/{hazard.json()['id']}/order", {"deadline": FUTURE, "measures": "清理"})
    assert ordered.status_code == 200 and ordered.json()["status"] == "rectifying", ordered.text
    return hazard.json()["id"]


async def lookback_due_hazard(world: World) -> str:
    """A closed hazard of enterprise `a` whose look-back is due (LOOKBACK_DELAY_DAYS is 30: the due date is moved
    into the past in the database, as nothing in the API can do it)."""
    hazard = await world.post(
        "enterprise_a",
        f"{API}/hazards",
        {
            "enterprise_id": str(world.enterprises["a"].id),
            "level": "general",
            "description": "灭火器过期",
            "deadline": FUTURE,
        },
    )
    assert hazard.status_code == 201, hazard.text
    hid = hazard.json()["id"]
    photo = await upload(world, "enterprise_a", jpeg(color=(5, 150, 5)), hazard_id=hid)
    assert photo.status_code == 201, photo.text
    proof = await world.post(
        "enterprise_a", f"{API}/hazards/{hid}/rectifications", {"description": "已更换", "evidence_ids": [photo.json()["id"]]}
    )
    assert proof.status_code == 200, proof.text
    closed = await world.post("enterprise_a", f"{API}/hazards/{hid}/review", {"decision": "accept", "opinion": "自行验收"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    async with world.app.state.sessionmaker() as session:
        await session.execute(
            update(Hazard).where(Hazard.id == uuid.UUID(hid)).values(lookback_due_at=datetime.now(UTC) - timedelta(days=1))
        )
        await session.commit()
    return hid


async def inspection_with_record(world: World) -> str:
    """A submitted inspection of enterprise `a` whose 现场检查记录 is issued, waiting for its delivery."""
    inspection, _ = await submitted_routine_inspection(world, findings=0)
    record = await world.get("inspector_a1", f"{API}/inspections/{inspection['id']}/documents/inspection_record")
    assert record.status_code == 200, record.text
    return str(inspection["id"])


async def open_case_a(world: World) -> str:
    case = await world.post(
        "inspector_a1",
        f"{API}/cases",
        {
            "enterprise_id": str(world.enterprises["a"].id),
            "title": "企业a案件",
            "handler_ids": [str(world.users["inspector_a1"].id), str(world.users["inspector_a2"].id)],
        },
    )
    assert case.status_code == 201, case.text
    return case.json()["id"]


async def notified_case_a(world: World, measures: list[dict[str, Any]] | None = None) -> str:
    """A case of enterprise `a` told of the decision (告知), waiting for the party."""
    cid = await open_case_a(world)
    fine = measures or [{"type": "fine", "amount": 20000, "basis_id": "AQSCF-97-5"}]
    for step, body in (("decision", {"measures": fine, "facts": "事实", "reasoning": "理由"}), ("notify", {})):
        done = await world.post("inspector_a1", f"{API}/cases/{cid}/{step}", body)
        assert done.status_code == 200, done.text
    return cid


async def hearing_requested_case_a(world: World) -> str:
    """A case of enterprise `a` whose party asked for a hearing."""
    cid = await notified_case_a(world, [{"type": "fine", "amount": 50000, "basis_id": "AQSCF-97-5"}])
    requested = await world.post("enterprise_a", f"{API}/cases/{cid}/hearing-request", {})
    assert requested.status_code == 200 and requested.json()["status"] == "hearing_requested", requested.text
    return cid


@dataclass
class BodyIdCase:
    """One id-bearing body field: `request(id)` sends the request (on a fresh target) with that id in the field."""

    name: str
    caller: str
    field: tuple[str, ...]  # the names the problem's `field` may carry
    request: Callable[[str], Awaitable[httpx.Response]]
    foreign: str | None  # None: the resource is global, only an unknown id is tried


async def test_ids_inside_bodies_foreign_and_unknown_answer_alike(world: World) -> None:
    foreign = await build_foreign(world)
    checklist = await routine_checklist(world)
    a = str(world.enterprises["a"].id)
    a1, a2 = str(world.users["inspector_a1"].id), str(world.users["inspector_a2"].id)

    def post(caller: str, path: str, body: Callable[[str], dict[str, Any]]) -> Callable[[str], Awaitable[httpx.Response]]:
        return lambda value: world.post(caller, path, body(value))

    def post_to(
        caller: str, target: Callable[[], Awaitable[str]], suffix: str, body: Callable[[str], dict[str, Any]]
    ) -> Callable[[str], Awaitable[httpx.Response]]:
        async def request(value: str) -> httpx.Response:  # a fresh target per request: a first success cannot skew the second
            return await world.post(caller, suffix.format(await target()), body(value))

        return request

    def upload_for(caller: str, owner_field: str) -> Callable[[str], Awaitable[httpx.Response]]:
        return lambda value: upload(world, caller, jpeg(color=(1, 2, 3)), **{owner_field: value})

    hazard = {"enterprise_id": a, "level": "general", "description": "配电箱未接地"}
    inspection = {"enterprise_id": a, "checklist_ids": [checklist["id"]], "inspector_ids": [a1, a2], "kind": "routine"}
    case = {"enterprise_id": a, "title": "企业a案件", "handler_ids": [a1, a2]}
    large_upload = {"kind": "video", "content_type": "video/mp4", "size": 1000, "sha256": "0" * 64}
    plan = {"agency_id": str(world.agencies["district_a"].id), "year": YEAR, "title": "年度计划", "rules": KEY_RULES}
    enterprise = {"name": "新企业", "credit_code": credit_code(77), "topics": ["mining"], "address": "测试地址"}

    accident = {
        "enterprise_id": a,
        "occurred_at": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
        "level": "general",
        "deaths": 0,
        "injuries": 0,
    }
    accident |= {"direct_loss": 0, "summary": "事故"}
    report = {"approved_at": datetime.now(UTC).date().isoformat(), "approved_by": "某市人民政府", "document_no": "某政函〔2025〕3号"}
    report |= {"measures": [{"text": "完善规程", "responsible": "安全部"}]}

    async def recorded_accident() -> str:
        return (await world.post("inspector_a1", f"{API}/accidents", accident)).json()["id"]

    async def measure_of_a() -> str:
        approved = await approved_accident(world, "inspector_a1", "a")
        return f"{approved['id']}/measures/{approved['measures'][0]['id']}"

    async def evaluating_accident() -> str:
        approved = await approved_accident(world, "inspector_a1", "a")
        started = await world.post(
            "inspector_a1", f"{API}/accidents/{approved['id']}/evaluation", {"started_at": datetime.now(UTC).isoformat()}
        )
        assert started.status_code == 200, started.text
        return str(approved["id"])

    cases = [
        BodyIdCase(
            "POST /hazards enterprise_id",
            "inspector_a1",
            ("enterprise_id",),
            post("inspector_a1", f"{API}/hazards", lambda v: {**hazard, "enterprise_id": v}),
            foreign.enterprise_id,
        ),
        BodyIdCase(
            "POST /hazards checklist_id",
            "inspector_a1",
            ("checklist_id",),
            post("inspector_a1", f"{API}/hazards", lambda v: {**hazard, "checklist_id": v}),
            None,
        ),
        BodyIdCase(
            "POST /hazards evidence_ids",
            "inspector_a1",
            ("evidence_ids",),
            post("inspector_a1", f"{API}/hazards", lambda v: {**hazard, "evidence_ids": [v]}),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /hazards evidence_ids (self-report)",
            "enterprise_a",
            ("evidence_ids",),
            post("enterprise_a", f"{API}/hazards", lambda v: {**hazard, "deadline": FUTURE, "evidence_ids": [v]}),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /hazards/{id}/rectifications evidence_ids",
            "enterprise_a",
            ("evidence_ids",),
            post_to(
                "enterprise_a",
                lambda: rectifying_hazard(world),
                API + "/hazards/{}/rectifications",
                lambda v: {"description": "已整改", "evidence_ids": [v]},
            ),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /hazards/{id}/lookback evidence_ids",
            "inspector_a1",
            ("evidence_ids",),
            post_to(
                "inspector_a1",
                lambda: lookback_due_hazard(world),
                API + "/hazards/{}/lookback",
                lambda v: {"outcome": "held", "note": "回头看", "evidence_ids": [v]},
            ),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /cases enterprise_id",
            "inspector_a1",
            ("enterprise_id",),
            post("inspector_a1", f"{API}/cases", lambda v: {**case, "enterprise_id": v}),
            foreign.enterprise_id,
        ),
        BodyIdCase(
            "POST /cases inspection_id",
            "inspector_a1",
            ("inspection_id",),
            post("inspector_a1", f"{API}/cases", lambda v: {**case, "inspection_id": v}),
            foreign.inspection_id,
        ),
        BodyIdCase(
            "POST /cases handler_ids",
            "inspector_a1",
            ("handler_ids",),
            post("inspector_a1", f"{API}/cases", lambda v: {**case, "handler_ids": [a1, v]}),
            foreign.inspector_id,
        ),
        BodyIdCase(
            "POST /cases/{id}/records evidence_ids",
            "inspector_a1",
            ("evidence_ids",),
            post_to(
                "inspector_a1",
                lambda: open_case_a(world),
                API + "/cases/{}/records",
                lambda v: {"kind": "note", "occurred_at": datetime.now(UTC).isoformat(), "description": "记录", "evidence_ids": [v]},
            ),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /inspections/{id}/deliveries evidence_ids",
            "inspector_a1",
            ("evidence_ids",),
            post_to(
                "inspector_a1",
                lambda: inspection_with_record(world),
                API + "/inspections/{}/deliveries",
                lambda v: {
                    "document": "inspection_record",
                    "method": "direct",
                    "delivered_at": datetime.now(UTC).isoformat(),
                    "recipient": "负责人a",
                    "evidence_ids": [v],
                },
            ),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /inspections enterprise_id",
            "inspector_a1",
            ("enterprise_id",),
            post("inspector_a1", f"{API}/inspections", lambda v: {**inspection, "enterprise_id": v}),
            foreign.enterprise_id,
        ),
        BodyIdCase(
            "POST /inspections inspector_ids",
            "inspector_a1",
            ("inspector_ids",),
            post("inspector_a1", f"{API}/inspections", lambda v: {**inspection, "inspector_ids": [a1, v]}),
            foreign.inspector_id,
        ),
        BodyIdCase(
            "POST /inspections checklist_ids",
            "inspector_a1",
            ("checklist_ids",),
            post("inspector_a1", f"{API}/inspections", lambda v: {**inspection, "checklist_ids": [v]}),
            None,
        ),
        BodyIdCase(
            "POST /evidence inspection_id",
            "inspector_a1",
            ("inspection_id",),
            upload_for("inspector_a1", "inspection_id"),
            foreign.inspection_id,
        ),
        BodyIdCase("POST /evidence hazard_id", "inspector_a1", ("hazard_id",), upload_for("inspector_a1", "hazard_id"), foreign.hazard_id),
        BodyIdCase(
            "POST /evidence hazard_id (enterprise)",
            "enterprise_a",
            ("hazard_id",),
            upload_for("enterprise_a", "hazard_id"),
            foreign.hazard_id,
        ),
        BodyIdCase("POST /evidence case_id", "inspector_a1", ("case_id",), upload_for("inspector_a1", "case_id"), foreign.case_id),
        BodyIdCase(
            "POST /evidence/uploads owner.inspection_id",
            "inspector_a1",
            ("owner.inspection_id", "inspection_id"),
            post("inspector_a1", f"{API}/evidence/uploads", lambda v: {**large_upload, "owner": {"inspection_id": v}}),
            foreign.inspection_id,
        ),
        BodyIdCase(
            "POST /evidence/uploads owner.hazard_id",
            "inspector_a1",
            ("owner.hazard_id", "hazard_id"),
            post("inspector_a1", f"{API}/evidence/uploads", lambda v: {**large_upload, "owner": {"hazard_id": v}}),
            foreign.hazard_id,
        ),
        BodyIdCase(
            "POST /evidence/uploads owner.case_id",
            "inspector_a1",
            ("owner.case_id", "case_id"),
            post("inspector_a1", f"{API}/evidence/uploads", lambda v: {**large_upload, "owner": {"case_id": v}}),
            foreign.case_id,
        ),
        BodyIdCase(
            "POST /enterprises agency_id",
            "inspector_a1",
            ("agency_id",),
            post("inspector_a1", f"{API}/enterprises", lambda v: {**enterprise, "agency_id": v}),
            foreign.agency_id,
        ),
        BodyIdCase(
            "POST /cases/{id}/statements evidence_ids",
            "enterprise_a",
            ("evidence_ids",),
            post_to(
                "enterprise_a",
                lambda: notified_case_a(world),
                API + "/cases/{}/statements",
                lambda v: {"content": "陈述", "evidence_ids": [v]},
            ),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /cases/{id}/hearing host_id",
            "inspector_a1",
            ("host_id",),
            post_to(
                "inspector_a1",
                lambda: hearing_requested_case_a(world),
                API + "/cases/{}/hearing",
                lambda v: {"scheduled_at": f"{LATER}T09:00:00+08:00", "place": "听证室", "host_id": v},
            ),
            str(world.users["legal_other"].id),
        ),
        BodyIdCase(
            "POST /cases/{id}/deliveries evidence_ids",
            "inspector_a1",
            ("evidence_ids",),
            post_to(
                "inspector_a1",
                lambda: notified_case_a(world),
                API + "/cases/{}/deliveries",
                lambda v: {
                    "document": "penalty_notice",
                    "method": "direct",
                    "delivered_at": datetime.now(UTC).isoformat(),
                    "recipient": "负责人a",
                    "evidence_ids": [v],
                },
            ),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /inspections task_id",
            "inspector_a1",
            ("task_id",),
            post("inspector_a1", f"{API}/inspections", lambda v: {**inspection, "task_id": v}),
            foreign.task_id,
        ),
        BodyIdCase(
            "POST /plans agency_id",
            "inspector_a1",
            ("agency_id",),
            post("inspector_a1", f"{API}/plans", lambda v: {**plan, "agency_id": v}),
            foreign.agency_id,
        ),
        BodyIdCase(
            "POST /plans supersedes",
            "inspector_a1",
            ("supersedes",),
            post("inspector_a1", f"{API}/plans", lambda v: {**plan, "supersedes": v}),
            foreign.plan_id,
        ),
        BodyIdCase(
            "POST /users/{id}/conflicts enterprise_id",
            "inspector_a1",
            ("enterprise_id",),
            post("inspector_a1", f"{API}/users/{a1}/conflicts", lambda v: {"enterprise_id": v, "reason": "亲属任职"}),
            foreign.enterprise_id,
        ),
        BodyIdCase(
            "POST /accidents enterprise_id",
            "inspector_a1",
            ("enterprise_id",),
            post("inspector_a1", f"{API}/accidents", lambda v: {**accident, "enterprise_id": v}),
            foreign.enterprise_id,
        ),
        BodyIdCase(
            "POST /evidence accident_id",
            "inspector_a1",
            ("accident_id",),
            upload_for("inspector_a1", "accident_id"),
            foreign.accident_id,
        ),
        BodyIdCase(
            "POST /evidence accident_id (enterprise)",
            "enterprise_a",
            ("accident_id",),
            upload_for("enterprise_a", "accident_id"),
            foreign.accident_id,
        ),
        BodyIdCase(
            "POST /evidence/uploads owner.accident_id",
            "inspector_a1",
            ("owner.accident_id", "accident_id"),
            post("inspector_a1", f"{API}/evidence/uploads", lambda v: {**large_upload, "owner": {"accident_id": v}}),
            foreign.accident_id,
        ),
        BodyIdCase(
            "POST /accidents/{id}/report evidence_ids",
            "inspector_a1",
            ("evidence_ids",),
            post_to(
                "inspector_a1",
                recorded_accident,
                API + "/accidents/{}/report",
                lambda v: {**report, "evidence_ids": [v]},
            ),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /accidents/{id}/measures/{mid}/progress evidence_ids",
            "enterprise_a",
            ("evidence_ids",),
            post_to(
                "enterprise_a",
                measure_of_a,
                API + "/accidents/{}/progress",
                lambda v: {"description": "进展", "evidence_ids": [v]},
            ),
            foreign.evidence_id,
        ),
        BodyIdCase(
            "POST /accidents/{id}/evaluation/findings measure_id",
            "inspector_a1",
            ("measure_id",),
            post_to(
                "inspector_a1",
                evaluating_accident,
                API + "/accidents/{}/evaluation/findings",
                lambda v: {"measure_id": v, "outcome": "done", "note": "已落实"},
            ),
            foreign.measure_id,
        ),
        # POST /users and POST /agencies are the admin's, who sees every agency and enterprise: nothing is foreign.
    ]

    failures: list[str] = []
    for case_ in cases:
        tried = {"random": await case_.request(str(uuid.uuid4()))}
        if case_.foreign is not None:
            tried["foreign"] = await case_.request(case_.foreign)
        seen = ", ".join(f"{kind} id -> {answer(r)} field={field_of(r)}" for kind, r in tried.items())
        problems = [
            f"the {kind} id is not a 422 naming {case_.field[0]}"
            for kind, response in tried.items()
            if response.status_code != 422 or field_of(response) not in case_.field
        ]
        if len({(r.status_code, code_of(r), field_of(r)) for r in tried.values()}) != 1:
            problems.insert(0, "a foreign id and an unknown one answer differently")
        if problems:
            failures.append(f"{case_.name} as {case_.caller}: {'; '.join(problems)} ({seen})")

    # The exception: results may name photos that are not uploaded yet (the phone is offline and uploads later), so
    # PUT /inspections/{id}/results accepts an evidence id it does not know. A foreign id must then be accepted
    # alike (refusing it alone tells that it exists), and neither may count as a photo of the finding at submit.
    items = await items_of(world, checklist["id"])
    finding = items[0]["code"]
    for kind, evidence_id in (("random", str(uuid.uuid4())), ("foreign", foreign.evidence_id)):
        started = await start_inspection(world)
        iid = started["id"]
        results = await world.put(
            "inspector_a1",
            f"{API}/inspections/{iid}/results",
            {"results": all_compliant(checklist["id"], items, {finding: [evidence_id]})},
        )
        if results.status_code != 200:
            failures.append(
                f"PUT /inspections/{{id}}/results evidence_ids as inspector_a1: the {kind} id should be accepted as a "
                f"photo still to come (200), as an unknown one is: got {answer(results)} field={field_of(results)}"
            )
            continue
        submitted = await world.post("inspector_a1", f"{API}/inspections/{iid}/submit", {"attendees": ATTENDEES})
        if submitted.status_code != 422 or code_of(submitted) != "evidence_required" or finding not in submitted.json().get("detail", ""):
            failures.append(
                f"POST /inspections/{{id}}/submit after results naming a {kind} evidence id: should be 422 "
                f"evidence_required for {finding}, got {answer(submitted)} {submitted.text[:200]}"
            )

    assert not failures, f"{len(failures)} ids inside bodies answer differently:\n" + "\n".join(failures)
