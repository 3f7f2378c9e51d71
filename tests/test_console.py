"""The desk console over HTTP: login and session, CSRF, each user's job, errors shown as pages. The same jobs in a real
browser are in test_console_browser.py."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from backend.accounts.models import User
from tests.console_helpers import API, FUTURE, case_in_legal_review, console_client, csrf_of, form, hazard_to_rectify
from tests.helpers import World, ok
from tests.media import jpeg
from tests.test_scope_routes import plan_and_draw


async def test_login_page_and_wrong_password(world: World) -> None:
    client = await console_client(world, "legal_city")
    await client.aclose()
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="http://testserver.local") as fresh:
        page = await fresh.get("/console/login")
        assert "用户名" in page.text and "密码" in page.text and "登录" in page.text
        assert page.headers["content-type"].startswith("text/html")
        wrong = await fresh.post("/console/login", data={"username": "legal_city", "password": "nope", "_csrf": csrf_of(page.text)})
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
        empty = await fresh.post("/console/login", data={"username": "", "password": "", "_csrf": csrf_of(page.text)})
        assert empty.status_code == 422 and 'aria-invalid="true"' in empty.text and "请填写此项" in empty.text
        no_token = await fresh.post("/console/login", data={"username": "legal_city", "password": "x"})
        assert no_token.status_code == 403 and "安全校验" in no_token.text
        anonymous = await fresh.get("/console/reviews")
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/console/login?next=/console/reviews")


async def test_session_cookie_flags_and_logout(world: World) -> None:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="http://testserver.local") as client:
        page = await client.get("/console/login")
        answer = await client.post(
            "/console/login", data={"username": "leader_city", "password": "user-password-for-tests", "_csrf": csrf_of(page.text)}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/console/dashboard"
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("safety_console="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Path=/console" in cookie
        dashboard = await client.get("/console/dashboard")
        assert dashboard.status_code == 200
        # the API does not take the console's cookie: it keeps its bearer tokens
        assert (await client.get(f"{API}/auth/me")).status_code == 401
        out = await client.post("/console/logout", data={"_csrf": csrf_of(dashboard.text)})
        assert out.status_code == 303
        assert (await client.get("/console/dashboard")).status_code == 303


async def test_deactivated_account_is_out_on_its_next_request(world: World) -> None:
    client = await console_client(world, "enterprise_a")
    assert (await client.get("/console/hazards")).status_code == 200
    async with world.app.state.sessionmaker() as session:
        await session.execute(update(User).where(User.id == world.users["enterprise_a"].id).values(is_active=False))
        await session.commit()
    answer = await client.get("/console/hazards")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")
    await client.aclose()


async def test_reviewer_approves_and_returns(world: World) -> None:
    approve_id = await case_in_legal_review(world)
    return_id = await case_in_legal_review(world, "企业a未按规定开展安全培训案")
    client = await console_client(world, "legal_city")
    queue = await client.get("/console/reviews")
    assert queue.status_code == 200 and approve_id in queue.text and return_id in queue.text
    page = await client.get(f"/console/cases/{approve_id}")
    assert page.status_code == 200
    for text in ("审核意见", "通过", "退回", "裁量幅度", "安全生产法", "第 1 条", "/thumbnail"):
        assert text in page.text, text
    chain = await client.get(f"/console/cases/{approve_id}/chain", headers={"HX-Request": "true"})
    assert "记录链完整" in chain.text and "<html" not in chain.text
    empty = await client.post(f"/console/cases/{approve_id}/review", data=form(page.text, decision="approve", opinion=""))
    assert empty.status_code == 422 and 'aria-invalid="true"' in empty.text
    done = await client.post(
        f"/console/cases/{approve_id}/review", data=form(page.text, decision="approve", opinion="事实清楚，证据确凿，同意")
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/reviews?done=approved"
    case = (await world.get("inspector_a1", f"{API}/cases/{approve_id}")).json()
    assert case["status"] == "approved" and case["reviews"][0]["opinion"] == "事实清楚，证据确凿，同意"
    again = await client.post(f"/console/cases/{approve_id}/review", data=form(page.text, decision="return", opinion="再审"))
    assert again.status_code == 409 and "当前状态下不能进行此操作" in again.text
    page = await client.get(f"/console/cases/{return_id}")
    done = await client.post(f"/console/cases/{return_id}/review", data=form(page.text, decision="return", opinion="裁量理由不充分"))
    assert done.status_code == 303
    assert (await world.get("inspector_a1", f"{API}/cases/{return_id}")).json()["status"] == "decision_draft"
    await client.aclose()


async def test_enterprise_uploads_and_submits_rectification(world: World) -> None:
    hid = await hazard_to_rectify(world)
    client = await console_client(world, "enterprise_a")
    listing = await client.get("/console/hazards")
    assert "我的隐患" in listing.text and hid in listing.text and "整改期限" in listing.text
    page = await client.get(f"/console/hazards/{hid}")
    assert "提交整改" in page.text
    token = csrf_of(page.text)
    no_photo = await client.post(f"/console/hazards/{hid}/rectification", data={"_csrf": token, "description": "已清理"})
    assert no_photo.status_code == 422 and "整改后照片" in no_photo.text
    ids = []
    for color in ((10, 200, 10), (10, 10, 200)):
        sent = await client.post(
            f"/console/hazards/{hid}/photos",
            files={"file": ("after.jpg", jpeg(color=color), "image/jpeg")},
            data={"kind": "photo"},
            headers={"X-CSRF-Token": token, "Accept": "application/json"},
        )
        assert sent.status_code == 201, sent.text
        ids.append(sent.json()["id"])
    unsigned = await client.post(f"/console/hazards/{hid}/photos", files={"file": ("a.jpg", jpeg(), "image/jpeg")})
    assert unsigned.status_code == 403
    text_file = await client.post(
        f"/console/hazards/{hid}/photos", files={"file": ("a.jpg", b"not a photo at all", "image/jpeg")}, headers={"X-CSRF-Token": token}
    )
    assert text_file.status_code == 422 and "error" in text_file.json()
    submitted = await client.post(
        f"/console/hazards/{hid}/rectification", data={"_csrf": token, "description": "已清理消防通道", "evidence_ids": ids}
    )
    assert submitted.status_code == 303, submitted.text
    hazard = (await world.get("inspector_a1", f"{API}/hazards/{hid}")).json()
    assert hazard["status"] == "pending_review"
    await client.aclose()


async def test_presigned_upload_through_the_console(world: World) -> None:
    import hashlib

    import httpx

    hid = await hazard_to_rectify(world)
    client = await console_client(world, "enterprise_a")
    token = csrf_of((await client.get(f"/console/hazards/{hid}")).text)
    photo = jpeg(color=(1, 99, 1))
    started = await client.post(
        f"/console/hazards/{hid}/uploads",
        json={"kind": "photo", "content_type": "image/jpeg", "size": len(photo), "sha256": hashlib.sha256(photo).hexdigest()},
        headers={"X-CSRF-Token": token},
    )
    assert started.status_code == 201, started.text
    body = started.json()
    async with httpx.AsyncClient() as store:
        assert (await store.put(body["upload_url"], content=photo)).status_code == 200
    done = await client.post(f"/console/evidence/{body['evidence_id']}/complete", headers={"X-CSRF-Token": token})
    assert done.status_code == 200 and done.json()["thumbnail_url"], done.text
    bad = await client.post(f"/console/hazards/{hid}/uploads", json={"kind": "photo"}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 422 and "error" in bad.json()
    await client.aclose()


async def test_governance_plan_form(world: World) -> None:
    hid = await hazard_to_rectify(world, level="major", description="瓦斯抽采系统能力不足")
    client = await console_client(world, "enterprise_a")
    page = await client.get(f"/console/hazards/{hid}")
    assert "重大事故隐患治理方案" in page.text
    token = csrf_of(page.text)
    wrong = await client.post(f"/console/hazards/{hid}/plan", data={"_csrf": token, "objective": "消除隐患", "funds": "很多"})
    assert wrong.status_code == 422 and "请填写整数" in wrong.text and "请填写此项" in wrong.text
    plan = {
        "_csrf": token,
        "objective": "消除瓦斯超限隐患",
        "measures": "增设抽采钻孔",
        "funds": "200000",
        "responsible_person": "张矿长",
        "deadline": FUTURE,
        "safeguards": "撤出人员，制定应急预案",
    }
    assert (await client.post(f"/console/hazards/{hid}/plan", data=plan)).status_code == 303
    hazard = (await world.get("inspector_a1", f"{API}/hazards/{hid}")).json()
    assert hazard["timeline"][-1]["action"] == "plan_submitted"
    await client.aclose()


async def test_foreign_ids_are_the_404_page(world: World) -> None:
    hid = await hazard_to_rectify(world)
    cid = await case_in_legal_review(world)
    other = await console_client(world, "enterprise_b")
    for path in (f"/console/hazards/{hid}", f"/console/hazards/{uuid.uuid4()}", f"/console/cases/{cid}", "/console/no-such-page"):
        answer = await other.get(path)
        assert answer.status_code == 404 and "未找到" in answer.text and "application/problem+json" not in answer.headers["content-type"], (
            path
        )
    assert (await other.get("/console/dashboard")).status_code == 404  # not a page for an enterprise
    await other.aclose()
    reviewer = await console_client(world, "legal_other")
    assert (await reviewer.get(f"/console/cases/{cid}")).status_code == 404
    assert cid not in (await reviewer.get("/console/reviews")).text
    await reviewer.aclose()


async def test_dashboard_and_documents(world: World) -> None:
    await hazard_to_rectify(world)
    cid = await case_in_legal_review(world)
    ok(await world.post("legal_city", f"{API}/cases/{cid}/legal-review", {"decision": "approve", "opinion": "同意"}))
    ok(await world.post("inspector_a1", f"{API}/cases/{cid}/notify", {}))
    leader = await console_client(world, "leader_city")
    page = await leader.get("/console/dashboard")
    assert page.status_code == 200
    for text in ('data-chart="by-topic"', 'data-chart="overdue"', "临近的办案期限", "陈述、申辩期限"):
        assert text in page.text, text
    assert 'data-chart="plans"' not in page.text  # no approved plan this year: no plan chart
    await plan_and_draw(world, str(world.agencies["district_a"].id), str(world.enterprises["a"].id), "inspector_a1", "leader_a")
    page = await leader.get("/console/dashboard")
    assert 'data-chart="plans"' in page.text and "年度计划 · 重点" in page.text  # the district's plan, seen from the city
    await leader.aclose()
    enterprise = await console_client(world, "enterprise_a")
    documents = await enterprise.get("/console/documents")
    assert "行政处罚告知书" in documents.text
    pdf = await enterprise.get(f"/console/cases/{cid}/documents/penalty_notice")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    await enterprise.aclose()


async def test_photo_thumbnail_and_original(world: World) -> None:
    cid = await case_in_legal_review(world)
    evidence_id = (await world.get("inspector_a1", f"{API}/cases/{cid}/records")).json()["items"][0]["evidence"][0]["id"]
    client = await console_client(world, "legal_city")
    thumb = await client.get(f"/console/evidence/{evidence_id}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    original = await client.get(f"/console/evidence/{evidence_id}/content")
    assert original.status_code == 200 and original.content.startswith(b"\xff\xd8")
    await client.aclose()


async def test_home_redirects_by_role(world: World) -> None:
    for username, home in (("legal_city", "/console/reviews"), ("enterprise_a", "/console/hazards"), ("leader_city", "/console/dashboard")):
        client = await console_client(world, username)
        answer = await client.get("/console/")
        assert answer.status_code == 303 and answer.headers["location"] == home
        await client.aclose()


async def test_login_next_page_stays_in_the_console(world: World) -> None:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url="http://testserver.local") as client:
        page = await client.get("/console/login?next=//evil.example/x")
        assert 'name="next" value=""' in page.text
        answer = await client.post(
            "/console/login",
            data={
                "username": "enterprise_a",
                "password": "user-password-for-tests",
                "_csrf": csrf_of(page.text),
                "next": "/console/documents",
            },
        )
        assert answer.headers["location"] == "/console/documents"
