"""The desk console in a real browser: Debian's Chromium driven by Playwright against the app served on a loopback
port (the tests' PostgreSQL and SeaweedFS behind it). Each page the tests visit is photographed into
tests/output/screenshots/ for a person to look at.

`./run.sh test` installs Chromium when it is missing; Playwright's own browser download is not used.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from litestar import Litestar

from tests.console_helpers import API, FUTURE, case_in_legal_review, hazard_to_rectify
from tests.helpers import USER_PASSWORD, World
from tests.media import jpeg

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "output" / "screenshots"
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="session")
async def live_server(app: Litestar) -> AsyncIterator[str]:
    """The tests' app (its lifespan already run) served by uvicorn on a free loopback port, in the tests' own loop."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", http="h11"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not at {CHROMIUM}: ./run.sh test installs it (apt-get install chromium)")
        pytest.skip(f"Chromium is not at {CHROMIUM}; `./run.sh test` installs it")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def shoot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def logged_in(browser: Any, base: str, username: str, shot: str | None = None, viewport: dict[str, int] = PHONE) -> Any:
    """A fresh browser context (its own cookies) logged in through the login form, found by its labels."""
    context = await browser.new_context(base_url=base, viewport=viewport, locale="zh-CN")
    page = await context.new_page()
    await page.goto("/console/")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(USER_PASSWORD)
    if shot:
        await shoot(page, shot)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_load_state("networkidle")
    assert "/console/login" not in page.url, await page.content()
    return page


async def test_reviewer_approves_one_case_and_returns_another(world: World, live_server: str, browser: Any) -> None:
    first = await case_in_legal_review(world)
    second = await case_in_legal_review(world, "企业a未按规定开展安全生产教育培训案")
    page = await logged_in(browser, live_server, "legal_city", shot="01-login")
    assert page.url.endswith("/console/reviews")
    await shoot(page, "02-reviewer-queue")

    await page.click(f"a[href='/console/cases/{first}']")
    await page.get_by_text("记录链完整").wait_for()  # the chain check, loaded by htmx after the page
    thumbnail = page.locator("img[src$='/thumbnail']").first
    await thumbnail.wait_for()
    assert await thumbnail.evaluate("img => img.complete && img.naturalWidth > 0")
    assert await page.locator("a:has(img[src$='/thumbnail'])").first.get_attribute("href") == (
        (await thumbnail.get_attribute("src") or "").replace("/thumbnail", "/content")
    )
    assert await page.get_by_text("裁量幅度").count() == 1
    await shoot(page, "03-case-for-review")

    await page.get_by_role("button", name="通过").click()  # no opinion: the field in red with its message
    await page.get_by_text("请填写此项").wait_for()
    assert await page.get_by_label("审核意见").get_attribute("aria-invalid") == "true"
    await shoot(page, "04-review-missing-opinion")
    await page.get_by_label("审核意见").fill("事实清楚，证据确凿，裁量适当，同意")
    await page.get_by_role("button", name="通过").click()
    await page.get_by_text("已通过法制审核").wait_for()
    await shoot(page, "05-approved")

    await page.click(f"a[href='/console/cases/{second}']")
    await page.get_by_label("审核意见").fill("罚款数额的裁量理由不充分，请补充后重新报审")
    await page.get_by_role("button", name="退回").click()
    await page.get_by_text("已退回承办人").wait_for()
    assert first not in await page.content() and second not in await page.content()

    statuses = {cid: (await world.get("inspector_a1", f"{API}/cases/{cid}")).json()["status"] for cid in (first, second)}
    assert statuses == {first: "approved", second: "decision_draft"}
    await page.context.close()


async def test_enterprise_uploads_two_photos_and_submits_the_rectification(world: World, live_server: str, browser: Any) -> None:
    hid = await hazard_to_rectify(world)
    page = await logged_in(browser, live_server, "enterprise_a")
    assert page.url.endswith("/console/hazards")
    await page.get_by_role("heading", name="我的隐患").wait_for()
    await shoot(page, "06-my-hazards")
    await page.click(f"a[href='/console/hazards/{hid}']")

    small, large = jpeg(640, 480, color=(20, 160, 20)), jpeg(1600, 1200, color=(20, 20, 160))
    assert len(small) < len(large)
    # the smaller photo goes in one request to the console, the larger through the presigned upload to the store
    await page.evaluate(f"window.consoleDirectLimit = {len(small)}")
    await page.get_by_label("整改后照片（可一次选择多张）").set_input_files(
        [
            {"name": "after-1.jpg", "mimeType": "image/jpeg", "buffer": small},
            {"name": "after-2.jpg", "mimeType": "image/jpeg", "buffer": large},
        ]
    )
    await page.wait_for_function("document.querySelectorAll('#chosen-photos input:checked').length === 2")
    assert await page.locator(".progress-list li.done").count() == 2
    assert await page.locator(".progress-list li.failed").count() == 0
    await shoot(page, "07-hazard-photos-uploaded")

    await page.get_by_label("整改情况说明").fill("已清理消防通道内堆放的杂物，并更换了压力不足的灭火器。")
    await page.get_by_role("button", name="提交整改").click()
    await page.get_by_text("整改已提交").wait_for()
    await shoot(page, "08-rectification-submitted")

    hazard = (await world.get("inspector_a1", f"{API}/hazards/{hid}")).json()
    assert hazard["status"] == "pending_review"
    proof = hazard["timeline"][-1]
    assert proof["action"] == "rectification_submitted" and len(proof["data"]["evidence_ids"]) == 2
    await page.context.close()


async def test_dashboard_draws_its_charts(world: World, live_server: str, browser: Any) -> None:
    await hazard_to_rectify(world)
    await hazard_to_rectify(world, level="major", description="瓦斯抽采能力不足")
    cid = await case_in_legal_review(world)
    await world.post("legal_city", f"{API}/cases/{cid}/legal-review", {"decision": "approve", "opinion": "同意"})
    await world.post("inspector_a1", f"{API}/cases/{cid}/notify", {})
    for viewport, shot in ((PHONE, "09-dashboard-phone"), ({"width": 1280, "height": 900}, "10-dashboard-desktop")):
        page = await logged_in(browser, live_server, "leader_city", viewport=viewport)
        assert page.url.endswith("/console/dashboard")
        by_topic = page.locator("svg[data-chart='by-topic']")
        assert await by_topic.locator("rect").count() >= 2
        assert (await by_topic.bounding_box() or {}).get("width", 0) > 200
        assert await page.locator("svg[data-chart='overdue'] polyline").count() == 1
        assert await page.get_by_text("陈述、申辩期限").count() >= 1
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"the page scrolls sideways at {viewport['width']} px"
        await shoot(page, shot)
        await page.context.close()


async def test_another_enterprise_gets_the_404_page(world: World, live_server: str, browser: Any) -> None:
    hid = await hazard_to_rectify(world)
    page = await logged_in(browser, live_server, "enterprise_b")
    response = await page.goto(f"/console/hazards/{hid}")
    assert response is not None and response.status == 404
    await page.get_by_role("heading", name="未找到").wait_for()
    assert "描述" not in await page.content() and "消防通道" not in await page.content()
    await shoot(page, "11-foreign-hazard-404")
    await page.context.close()


async def test_a_form_posted_without_the_csrf_token_is_refused(world: World, live_server: str, browser: Any) -> None:
    cid = await case_in_legal_review(world)
    page = await logged_in(browser, live_server, "legal_city")
    await page.goto(f"/console/cases/{cid}")
    # a forged post: the browser's session cookie goes along, the page's token does not
    forged = await page.request.post(f"/console/cases/{cid}/review", form={"decision": "approve", "opinion": "同意"})
    assert forged.status == 403 and "安全校验" in await forged.text()
    # the page's own form with its token taken out
    await page.evaluate("document.querySelectorAll('input[name=_csrf]').forEach(e => e.remove())")
    await page.get_by_label("审核意见").fill("同意")
    await page.get_by_role("button", name="通过").click()
    await page.get_by_role("heading", name="请求未通过安全校验").wait_for()
    await shoot(page, "12-csrf-refused")
    assert (await world.get("inspector_a1", f"{API}/cases/{cid}")).json()["status"] == "legal_review"
    await page.context.close()


async def test_governance_plan_and_documents_pages(world: World, live_server: str, browser: Any) -> None:
    hid = await hazard_to_rectify(world, level="major", description="采区瓦斯抽采能力不足")
    page = await logged_in(browser, live_server, "enterprise_a")
    await page.goto(f"/console/hazards/{hid}")
    await page.get_by_role("button", name="提交治理方案").click()
    await page.locator("#plan-objective[aria-invalid='true']").wait_for()
    await page.get_by_label("治理的目标和任务").fill("消除瓦斯超限隐患")
    await page.get_by_label("采取的方法和措施").fill("增设抽采钻孔，提高抽采能力")
    await page.get_by_label("经费（元）").fill("300000")
    await page.get_by_label("负责治理的机构和人员").fill("通风科 张矿长")
    await page.get_by_label("治理的时限").fill(FUTURE)
    await page.get_by_label("安全措施和应急预案").fill("治理期间撤出作业人员，制定专项应急预案")
    await page.get_by_role("button", name="提交治理方案").click()
    await page.get_by_text("治理方案已提交").wait_for()
    await shoot(page, "13-governance-plan")
    await page.goto("/console/documents")
    await page.get_by_role("heading", name="执法文书").wait_for()
    await shoot(page, "14-documents")
    await page.context.close()
