"""Benchmark: every desk console page with 10,000 hazards and 1,000 cases in the user's scope, in PostgreSQL.

    .venv/bin/python bench/console.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                      [--hazards 20000] [--cases 1000] [--requests 100] [--keep]

Creates its own database, migrates it, loads the hazards with COPY over two enterprises (bench/hazard_queries.py:
the first, whose user the enterprise pages log in as, gets half of them), adds a reviewer, a leader, a second
inspector and the enterprise's user, then opens the cases through the API as the inspectors' app does (each with a
record; 40% with a major draft awaiting the legal review, 30% told of a draft, with their statement periods running,
30% just opened), all for the first enterprise: every console user has at least 10,000 hazards and 1,000 cases in
scope. It then logs in through the console's own login form and times each page from a client on the same machine,
one request at a time (a loopback round trip: the server's time plus well under a millisecond). Target: p99 < 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.auth import hash_password  # noqa: E402
from bench.harness import served_database  # noqa: E402
from bench.hazard_queries import PASSWORD, load  # noqa: E402

CSRF = re.compile(r'name="_csrf" value="([0-9a-f]+)"')
TARGET_MS = 150


async def add_people(dsn: str) -> dict[str, str]:
    """The console's users (a reviewer and a leader of the city, the first enterprise's user) and a second inspector."""
    conn = await asyncpg.connect(dsn)
    try:
        city = await conn.fetchval("SELECT id FROM agency WHERE parent_id IS NULL")
        enterprise, district = await conn.fetchrow("SELECT id, agency_id FROM enterprise WHERE name = '基准企业0'")
        pw = hash_password(PASSWORD)
        now = datetime.now(UTC)
        inspector2 = uuid.uuid4()
        users = [
            (inspector2, "bench-inspector2", pw, "区执法人员二", "inspector", district, None, "BENCH-2", True, now),
            (uuid.uuid4(), "bench-reviewer", pw, "法制审核员", "legal_reviewer", city, None, None, True, now),
            (uuid.uuid4(), "bench-leader", pw, "局长", "leader", city, None, None, True, now),
            (uuid.uuid4(), "bench-enterprise", pw, "企业安全员", "enterprise", None, enterprise, None, True, now),
        ]
        await conn.copy_records_to_table(
            "app_user",
            records=users,
            columns=[
                "id", "username", "password_hash", "display_name", "role", "agency_id", "enterprise_id", "certificate_no",
                "is_active", "created_at",
            ],
        )  # fmt: skip
        return {"enterprise": str(enterprise), "inspector2": str(inspector2)}
    finally:
        await conn.close()


async def open_cases(base: str, token: str, enterprise: str, inspector2: str, cases: int) -> dict[str, str]:
    """The cases, through the API, four at a time; returns one case of each kind for the pages to show."""
    headers = {"Authorization": f"Bearer {token}"}
    kinds = {}
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", headers=headers, timeout=60) as client:

        async def one(n: int) -> None:
            case = await client.post("/cases", json={"enterprise_id": enterprise, "title": f"基准案件{n}", "handler_ids": [inspector2]})
            case.raise_for_status()
            cid = case.json()["id"]
            record = {"kind": "onsite_check", "occurred_at": datetime.now(UTC).isoformat(), "description": f"现场检查记录{n}"}
            (await client.post(f"/cases/{cid}/records", json=record)).raise_for_status()
            kind = "open"
            if n % 10 < 7:
                fine = {"type": "fine", "amount": 20000 + n, "basis_id": "AQSCF-97-5"}
                major = n % 10 < 4
                decision = {"measures": [fine], "facts": "事实", "reasoning": "理由", "major": major}
                (await client.post(f"/cases/{cid}/decision", json=decision)).raise_for_status()
                kind = "legal_review"
                if not major:
                    (await client.post(f"/cases/{cid}/notify", json={})).raise_for_status()
                    kind = "notified"
            kinds.setdefault(kind, cid)

        started = time.perf_counter()
        for start in range(0, cases, 4):
            await asyncio.gather(*(one(n) for n in range(start, min(start + 4, cases))))
            if (start + 4) % 200 == 0:
                print(f"  opened {start + 4:>5} cases ({time.perf_counter() - started:.0f} s)", flush=True)
    return kinds


def console_login(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/console/login")
    token = CSRF.search(page.text)
    assert token, page.text[:300]
    answer = client.post("/console/login", data={"username": username, "password": PASSWORD, "_csrf": token.group(1)})
    assert answer.status_code == 303, answer.text[:300]
    return client


def timed(client: httpx.Client, path: str, requests: int) -> tuple[float, float, int]:
    client.get(path)  # warm-up
    samples = []
    size = 0
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--hazards", type=int, default=20_000, help="over two enterprises: the enterprise user's has half")
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    def prepare(dsn: str) -> None:
        asyncio.run(load(dsn, args.hazards, 2))
        ids.update(asyncio.run(add_people(dsn)))

    ids: dict[str, str] = {}
    with served_database(args.postgres, "console-bench", prepare, keep=args.keep) as (dsn, base):
        token = httpx.post(f"{base}/api/v1/auth/login", json={"username": "bench-inspector", "password": PASSWORD}).json()["access_token"]
        print(f"opening {args.cases:,} cases through the API")
        cases = asyncio.run(open_cases(base, token, ids["enterprise"], ids["inspector2"], args.cases))
        asyncio.run(admin_analyze(dsn))

        enterprise_hazard = asyncio.run(first_hazard(dsn, ids["enterprise"]))
        pages = {
            "bench-reviewer": [
                ("login page", "/console/login"),
                ("待审核 queue", "/console/reviews"),
                ("case page (legal review)", f"/console/cases/{cases['legal_review']}"),
                ("case chain check (htmx)", f"/console/cases/{cases['legal_review']}/chain"),
            ],
            "bench-enterprise": [
                ("我的隐患", "/console/hazards"),
                ("我的隐患 rectifying", "/console/hazards?status=rectifying"),
                ("我的隐患 overdue", "/console/hazards?overdue=true"),
                ("hazard page", f"/console/hazards/{enterprise_hazard}"),
                ("documents", "/console/documents"),
            ],
            "bench-leader": [
                ("dashboard", "/console/dashboard"),
                ("hazards (all in scope)", "/console/hazards"),
                ("case page (notified)", f"/console/cases/{cases['notified']}"),
                ("documents", "/console/documents"),
            ],
        }
        results = []
        for username, visits in pages.items():
            client = console_login(base, username)
            try:
                for label, path in visits:
                    p50, p99, size = timed(client, path, args.requests)
                    results.append((username, label, p50, p99))
                    print(
                        f"{username:<17} {label:<28} n={args.requests:<4} p50={p50:6.1f} ms  p99={p99:6.1f} ms  {size:>7} bytes", flush=True
                    )
            finally:
                client.close()
        print(f"\nsummary (target: p99 < {TARGET_MS} ms)")
        for username, label, _p50, p99 in results:
            print(f"  {'OK ' if p99 < TARGET_MS else 'MISS'} {username:<17} {label:<28} p99={p99:6.1f} ms")


async def admin_analyze(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does after the cases went in
    finally:
        await conn.close()


async def first_hazard(dsn: str, enterprise: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(
            await conn.fetchval("SELECT id FROM hazard WHERE enterprise_id = $1 AND status = 'rectifying' LIMIT 1", uuid.UUID(enterprise))
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
