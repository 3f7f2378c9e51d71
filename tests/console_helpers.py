"""What the console tests share: the scenes a desk user finds (a case awaiting legal review, a hazard awaiting the
enterprise's rectification), made through the API as the inspectors' phones make them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.helpers import USER_PASSWORD, World, ok, upload
from tests.media import jpeg

API = "/api/v1"
FUTURE = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
CSRF = re.compile(r'name="_csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


async def console_client(world: World, username: str, password: str = USER_PASSWORD) -> httpx.AsyncClient:
    """A browser of its own (cookie jar) logged in to the console as `username`."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="http://testserver.local")
    page = await client.get("/console/login")
    assert page.status_code == 200, page.text
    answer = await client.post("/console/login", data={"username": username, "password": password, "_csrf": csrf_of(page.text)})
    assert answer.status_code == 303, answer.text
    return client


async def case_in_legal_review(world: World, title: str = "企业a未按规定对重大危险源进行监控案") -> str:
    """A case of enterprise `a` (handlers inspector_a1 and inspector_a2) with a photo in its record and a major draft
    decision waiting for the legal review."""
    case = ok(
        await world.post(
            "inspector_a1",
            f"{API}/cases",
            {
                "enterprise_id": str(world.enterprises["a"].id),
                "title": title,
                "handler_ids": [str(world.users["inspector_a1"].id), str(world.users["inspector_a2"].id)],
            },
        )
    ).json()
    cid = case["id"]
    photo = ok(await upload(world, "inspector_a1", jpeg(color=(200, 40, 40)), case_id=cid)).json()
    ok(
        await world.post(
            "inspector_a1",
            f"{API}/cases/{cid}/records",
            {
                "kind": "onsite_check",
                "occurred_at": datetime.now(UTC).isoformat(),
                "description": "现场检查：重大危险源监控系统未投入使用",
                "evidence_ids": [photo["id"]],
            },
        )
    )
    decision = {
        "measures": [{"type": "fine", "amount": 20000, "basis_id": "AQSCF-97-5"}],
        "facts": "经查，该企业重大危险源监控系统未投入使用。",
        "reasoning": "违反安全生产法第四十条，依据第九十七条第五项处罚。",
        "major": True,
        "major_grounds": ["complex_case"],
    }
    drafted = ok(await world.post("inspector_a1", f"{API}/cases/{cid}/decision", decision)).json()
    assert drafted["status"] == "legal_review", drafted
    return cid


async def hazard_to_rectify(world: World, level: str = "general", description: str = "消防通道堆放杂物") -> str:
    """A hazard of enterprise `a` with one finding photo, ordered to be rectified."""
    hazard = ok(
        await world.post(
            "inspector_a1", f"{API}/hazards", {"enterprise_id": str(world.enterprises["a"].id), "level": level, "description": description}
        )
    ).json()
    hid = hazard["id"]
    ok(await world.post("inspector_a1", f"{API}/hazards/{hid}/order", {"deadline": FUTURE, "measures": "立即清理"}))
    return hid


def form(html: str, **fields: Any) -> dict[str, Any]:
    return {"_csrf": csrf_of(html), **fields}
