"""Benchmark: a storm of logins at once while another client keeps calling a cheap authenticated GET.

    .venv/bin/python bench/login_storm.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                          [--logins 50] [--rounds 3] [--probe-interval-ms 5] [--legacy-hashes]
                                          [--server-src DIR] [--app module:factory]

Creates its own PostgreSQL database, migrates it with Alembic, adds `--logins` accounts (and one for the prober) by
COPY, starts an embedded SeaweedFS and the API (uvicorn, one process, the environment's settings otherwise), then:

- a prober process calls `GET /api/v1/auth/me` with its token in a loop (one request at a time, a pause of
  `--probe-interval-ms` between them) for the whole run, timing each request;
- per round, after a quiet second: `--logins` logins with the right passwords (distinct accounts) sent at once, then
  `--logins` logins with random usernames and a wrong password sent at once (each costs one argon2 verification;
  the throttle's table is emptied before each storm, so none is refused; all come from one address, where an
  attempt still being checked counts toward LOGIN_MAX_FAILURES_PER_ADDRESS, so `--logins` above 50 needs that raised);
- for each storm it prints the prober's latency (max, p99, p50) over the requests that started during the storm,
  and the storm's logins per second (all answered / time from the first sent to the last answered).

`--server-src DIR` serves the app from another source tree (an older commit, exported with `git archive`), and
`--app module:factory` another app factory (for diagnostics), to compare.

Target: the GET's max < 100 ms during a storm. `--legacy-hashes` stores the accounts' hashes with argon2-cffi's
defaults (RFC 9106's second option, t=3, m=64 MiB, p=4), as accounts made before this change have them: the first
round then also measures the rehash each of those accounts gets at its first login.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.auth import hash_password  # noqa: E402
from backend.migrations import upgrade  # noqa: E402
from backend.settings import ARGON2_MEMORY_KIB, ARGON2_PARALLELISM, ARGON2_TIME_COST, cpu_count  # noqa: E402
from backend.storage import EmbeddedSeaweed  # noqa: E402
from bench.harness import api_command, api_environment, free_port  # noqa: E402

PASSWORD = "storm-password-123"
ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"


def probe(base: str, token: str, interval: float, stop: multiprocessing.synchronize.Event, out: Connection) -> None:
    """In its own process: GET /auth/me one request at a time until told to stop; send (start, ms) per request."""
    samples: list[tuple[float, float]] = []
    errors = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        while not stop.is_set():
            start = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process on Linux
            response = client.get(ME)
            samples.append((start, (time.monotonic() - start) * 1000))
            errors += response.status_code != 200
            time.sleep(interval)
    out.send((samples, errors))
    out.close()


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU time (user + system) of a process, or of one of its threads (the event loop's is the main thread's)."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Storm:
    label: str
    start: float
    end: float
    statuses: dict[int, int]
    login_ms: list[float]
    server_cpu: float
    loop_cpu: float


async def storm(base: str, label: str, bodies: list[dict[str, str]], server_pid: int) -> Storm:
    limits = httpx.Limits(max_connections=len(bodies) + 10, max_keepalive_connections=len(bodies) + 10)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        await asyncio.gather(*(client.get("/health") for _ in range(len(bodies))))  # open the connections beforehand

        async def one(body: dict[str, str]) -> tuple[int, float]:
            sent = time.monotonic()
            response = await client.post(LOGIN, json=body)
            return response.status_code, (time.monotonic() - sent) * 1000

        cpu_before, loop_before = cpu_seconds(server_pid), cpu_seconds(server_pid, server_pid)
        start = time.monotonic()
        answers = await asyncio.gather(*(one(body) for body in bodies))
        end = time.monotonic()
        cpu, loop_cpu = cpu_seconds(server_pid) - cpu_before, cpu_seconds(server_pid, server_pid) - loop_before
    statuses: dict[int, int] = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    return Storm(label, start, end, statuses, sorted(ms for _, ms in answers), cpu, loop_cpu)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--logins", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probe-interval-ms", type=float, default=5.0)
    parser.add_argument("--app", default="backend.app:create_app", help="the app factory uvicorn serves")
    parser.add_argument(
        "--server-src", type=Path, default=ROOT, help="serve the app from this source tree (e.g. an older commit, by git archive)"
    )
    parser.add_argument("--legacy-hashes", action="store_true", help="store the accounts' hashes with t=3, m=64 MiB, p=4")
    args = parser.parse_args()

    name = f"safety_bench_{secrets.token_hex(4)}"
    admin_dsn = args.postgres
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="login-storm-"))
    store = EmbeddedSeaweed(tmp / "seaweedfs", "bench-evidence")
    server: subprocess.Popen[bytes] | None = None
    prober: multiprocessing.process.BaseProcess | None = None
    stop = multiprocessing.get_context("spawn").Event()

    async def sql(statement: str, database: str = admin_dsn) -> None:
        conn = await asyncpg.connect(database)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    async def add_accounts(count: int) -> None:
        if args.legacy_hashes:
            from argon2 import PasswordHasher

            password_hash = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)
        else:
            password_hash = hash_password(PASSWORD)
        now = datetime.now(UTC)
        rows = [(uuid.uuid4(), f"storm-{n:03d}", password_hash, "风暴账户", "admin", True, now) for n in range(count)]
        rows.append((uuid.uuid4(), "prober", hash_password(PASSWORD), "探测账户", "admin", True, now))
        conn = await asyncpg.connect(dsn)
        try:
            await conn.copy_records_to_table(
                "app_user", records=rows, columns=["id", "username", "password_hash", "display_name", "role", "is_active", "created_at"]
            )
        finally:
            await conn.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(dsn)
        asyncio.run(add_accounts(args.logins))
        s3 = store.start()
        port = free_port()
        env = api_environment(dsn, s3, tmp / "state", CHECKLISTS_DIR=str(tmp / "no-checklists"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.server_src.resolve()), os.environ.get("PYTHONPATH")]))
        server = subprocess.Popen(api_command([sys.executable, "-m", "uvicorn"], port, args.app), cwd=args.server_src, env=env)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        setting = os.environ.get
        parameters = (
            f"t={setting('PASSWORD_HASH_TIME_COST', ARGON2_TIME_COST)} m={setting('PASSWORD_HASH_MEMORY_KIB', ARGON2_MEMORY_KIB)} KiB "
            f"p={setting('PASSWORD_HASH_PARALLELISM', ARGON2_PARALLELISM)}"
        )
        hashes = "legacy t=3 m=65536 p=4" if args.legacy_hashes else "current parameters"
        print(
            f"server: one uvicorn process from {args.server_src}; argon2id {parameters}, PASSWORD_HASH_CONCURRENCY="
            f"{setting('PASSWORD_HASH_CONCURRENCY', cpu_count())}; accounts' hashes: {hashes}; {args.logins} logins per storm",
            flush=True,
        )
        token = httpx.post(f"{base}{LOGIN}", json={"username": "prober", "password": PASSWORD})
        token.raise_for_status()
        receive, send = multiprocessing.get_context("spawn").Pipe(duplex=False)
        prober = multiprocessing.get_context("spawn").Process(
            target=probe, args=(base, token.json()["access_token"], args.probe_interval_ms / 1000, stop, send), daemon=True
        )
        prober.start()
        time.sleep(2.0)  # the prober's quiet baseline
        quiet_until = time.monotonic()

        storms: list[Storm] = []
        for round_no in range(1, args.rounds + 1):
            for label, bodies in (
                ("right passwords", [{"username": f"storm-{n:03d}", "password": PASSWORD} for n in range(args.logins)]),
                ("random usernames", [{"username": f"nobody-{secrets.token_hex(6)}", "password": "wrong"} for _ in range(args.logins)]),
            ):
                asyncio.run(sql("DELETE FROM login_failure", dsn))
                time.sleep(1.0)
                result = asyncio.run(storm(base, f"round {round_no}, {label}", bodies, server.pid))
                storms.append(result)
                took = result.end - result.start
                print(
                    f"{result.label:<30} answered {dict(sorted(result.statuses.items()))} in {took * 1000:6.0f} ms"
                    f" = {args.logins / took:5.1f} logins/s (login p50 {statistics.median(result.login_ms):5.0f} ms,"
                    f" max {max(result.login_ms):5.0f} ms; server CPU {result.server_cpu * 1000 / args.logins:4.1f} ms/login,"
                    f" of which on the event loop {result.loop_cpu * 1000 / args.logins:4.1f})",
                    flush=True,
                )
        time.sleep(1.0)
        stop.set()
        samples, errors = receive.recv()
        prober.join(timeout=30)

        quiet = [ms for start, ms in samples if start < quiet_until] or [0.0]
        print(
            f"\nGET {ME} alone:  n={len(quiet)}  p50={statistics.median(quiet):6.1f} ms  p99={percentile(quiet, 0.99):6.1f} ms"
            f"  max={max(quiet):6.1f} ms"
        )
        print(f"GET {ME} during each storm (target: max < 100 ms); prober errors: {errors}")
        worst = 0.0
        for result in storms:
            during = [ms for start, ms in samples if result.start <= start <= result.end]
            slowest = max(((ms, start) for start, ms in samples if result.start <= start <= result.end), default=(0.0, result.start))
            if not during:
                print(f"  {result.label:<30} no GET started during the storm")
                continue
            worst = max(worst, *during)
            print(
                f"  {result.label:<30} n={len(during):<4} p50={statistics.median(during):6.1f} ms  p99={percentile(during, 0.99):6.1f} ms"
                f"  max={max(during):6.1f} ms (sent {(slowest[1] - result.start) * 1000:.0f} ms into the storm)"
            )
        load = os.getloadavg()
        print(
            f"\nworst GET during a storm: {worst:.1f} ms ({'OK' if worst < 100 else 'MISS'}, target < 100 ms); "
            f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
    finally:
        stop.set()
        if prober is not None and prober.is_alive():
            prober.terminate()
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        store.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        asyncio.run(sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
