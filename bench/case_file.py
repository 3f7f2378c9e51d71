"""Case file benchmark: `GET /api/v1/cases/{id}/file` for a case with ``--evidence-mb`` of evidence (default 1 GiB),
its speed against the object store's own read speed measured in the same run, and the server's memory meanwhile.

Run from the project root:

    .venv/bin/python bench/case_file.py [--evidence-mb 1024] [--files 4] [--rounds 3] [--client curl|httpx]
                                        [--postgres URL | --sqlite] [--profile] [--timeout 1800] [--json]

It starts what it needs on 127.0.0.1 as bench/evidence_ingest.py does (the same code: an embedded SeaweedFS, a
database migrated with Alembic — by default a fresh one on the PostgreSQL server at 127.0.0.1:5432, dropped at the
end — and the API served as `safety serve` serves it, bench/harness.py), and removes it all at the end.

Then, as clients would: an admin makes an agency, an enterprise and two inspectors; an inspector opens a case and
uploads ``--files`` distinct MP4-looking videos to it through ``POST /api/v1/evidence`` (``--evidence-mb`` MiB in
all, generated on the fly), and the case is decided so that it has its 行政处罚决定书.

Measurements:

1. A verification download (httpx, not timed): the manifest at the end of the ZIP must list the uploads' digests.
2. floor: every original read from the store with ``minio.Minio.get_object`` in 1 MiB chunks, one object after the
   other (as the API reads them), by this process: the store's own read throughput. One unmeasured read warms the
   store's caches first; then a floor run before each timed download and one after the last.
3. api: the case file downloaded ``--rounds`` times through the API, by curl into /dev/null by default (C, so the
   client takes little of the CPU the server and the store need on a small machine; ``--client httpx`` reads it in
   this process instead), while the server's VmRSS is sampled every 50 ms.

Targets: the median over the downloads of (API MB/s / the better of the two floor runs beside it) at least 0.5;
the server's RSS, from before its first case file to its peak over all downloads, grows less than 64 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from minio import Minio  # noqa: E402

from bench.evidence_ingest import (  # noqa: E402
    MIB,
    CpuMeter,
    Env,
    RssSampler,
    VideoBody,
    expect,
    log,
    proc_status,
    reset_peak_rss,
    run_in_environment,
    seed,
    start_environment,
)

RATIO_TARGET = 0.5
RSS_TARGET_MB = 64
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TAIL_KEPT = 4 * MIB  # the end of the ZIP kept to read the manifest back


@dataclass
class Case:
    id: str
    token: str
    evidence: dict[str, str]  # sha256 -> object key
    size: int


def make_case(env: Env, token: str, inspection_id: str, total: int, files: int) -> Case:
    """A decided case with `files` distinct videos of `total` bytes in all, uploaded through the API."""
    headers = {"Authorization": token}
    with httpx.Client(base_url=f"{env.base_url}/api/v1", trust_env=False, timeout=httpx.Timeout(600, connect=10)) as client:
        inspection = expect(client.get(f"/inspections/{inspection_id}", headers=headers), 200)
        case = expect(
            client.post(
                "/cases",
                json={"enterprise_id": inspection["enterprise_id"], "title": "基准测试案件", "handler_ids": inspection["inspector_ids"]},
                headers=headers,
            ),
            201,
        )
    evidence: dict[str, str] = {}
    sizes = [total // files + (1 if n < total % files else 0) for n in range(files)]

    async def upload_all() -> None:
        async with httpx.AsyncClient(base_url=env.base_url, trust_env=False, timeout=httpx.Timeout(600, connect=10)) as client:
            for n, size in enumerate(sizes):
                body = VideoBody(case["id"], size, owner="case_id", seed=1000 + n)
                started = time.perf_counter()
                response = await client.post(
                    "/api/v1/evidence",
                    content=body,
                    headers={
                        **headers,
                        "Content-Type": f"multipart/form-data; boundary={body.boundary}",
                        "Content-Length": str(body.content_length),
                    },
                )
                record = expect(response, 201)
                if record["sha256"] != body.sha256.hexdigest() or record["size"] != size:
                    raise RuntimeError(f"the server recorded another video: {record}")
                evidence[record["sha256"]] = f"originals/{record['sha256'][:2]}/{record['sha256']}"
                log(f"uploaded video {n + 1}/{files}: {size / MIB:.0f} MiB in {time.perf_counter() - started:.1f} s")

    asyncio.run(upload_all())
    with httpx.Client(base_url=f"{env.base_url}/api/v1", trust_env=False, timeout=60) as client:
        decision = {
            "measures": [{"type": "fine", "amount": 20000, "basis_id": "AQSCF-97-5"}],
            "facts": "基准测试事实",
            "reasoning": "基准测试理由",
        }
        expect(client.post(f"/cases/{case['id']}/decision", json=decision, headers=headers), 200)
        # 告知 and the party's written waiver come before a decision (行政处罚法 第四十四、四十五条)
        expect(client.post(f"/cases/{case['id']}/notify", json={}, headers=headers), 200)
        waiver = {"content": "当事人书面放弃陈述、申辩和听证权利", "waived": True}
        expect(client.post(f"/cases/{case['id']}/statements", json=waiver, headers=headers), 201)
        expect(client.post(f"/cases/{case['id']}/decide", headers=headers), 200)
    return Case(id=case["id"], token=token, evidence=evidence, size=sum(sizes))


def floor_read(env: Env, keys: list[str]) -> tuple[int, float]:
    """Bytes read and seconds taken reading every key from the store in 1 MiB chunks, one after the other."""
    assert env.s3 is not None
    s3 = env.s3
    client = Minio(endpoint=s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=s3.secure)
    total = 0
    started = time.perf_counter()
    for key in keys:
        response = client.get_object(bucket_name=s3.bucket, object_name=key)
        try:
            while chunk := response.read(MIB):
                total += len(chunk)
        finally:
            response.close()
            response.release_conn()
    return total, time.perf_counter() - started


@dataclass
class Download:
    size: int
    seconds: float
    manifest: dict
    baseline_kib: int
    peak_kib: int
    hwm_kib: int | None
    samples: int

    @property
    def increase_mb(self) -> float:
        return (self.peak_kib - self.baseline_kib) / 1024


def manifest_from_tail(tail: bytes) -> dict:
    """The manifest.json at the end of the ZIP (stored, not compressed): the JSON before the central directory."""
    start = tail.rfind(b'{\n  "case_id"')
    end = tail.find(b"PK\x01\x02", start)
    if start < 0 or end < 0:
        raise RuntimeError("no manifest.json at the end of the ZIP")
    return json.loads(tail[start:end].rsplit(b"}", 1)[0] + b"}")


def fetch_with_curl(env: Env, case: Case) -> tuple[int, bytes]:
    """Download with curl into /dev/null (C: decodes the chunked body without taking the CPU the server needs on a
    small machine); returns the size (no tail: the manifest is checked on the verification download)."""
    command = [
        "curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download}",
        "-H", f"Authorization: {case.token}", f"{env.base_url}/api/v1/cases/{case.id}/file",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, check=False, env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
    if done.returncode != 0:
        raise RuntimeError(f"curl failed with {done.returncode}: {done.stderr.decode(errors='replace')}")
    return int(done.stdout), b""


async def fetch_with_httpx(env: Env, case: Case) -> tuple[int, bytes]:
    size, tail = 0, bytearray()
    async with (
        httpx.AsyncClient(base_url=env.base_url, trust_env=False, timeout=httpx.Timeout(600, connect=10)) as client,
        client.stream("GET", f"/api/v1/cases/{case.id}/file", headers={"Authorization": case.token}) as response,
    ):
        if response.status_code != 200:
            raise RuntimeError(f"GET /cases/{case.id}/file answered {response.status_code}: {(await response.aread())[:500]!r}")
        async for chunk in response.aiter_raw():
            size += len(chunk)
            tail += chunk
            if len(tail) > 2 * TAIL_KEPT:
                del tail[:-TAIL_KEPT]
    return size, bytes(tail)


def download(env: Env, case: Case, server_pid: int, client: str) -> Download:
    idle = RssSampler({"server": server_pid})
    idle.start()
    time.sleep(1.0)
    idle.stop()
    baseline = int(statistics.median(idle.samples["server"]))
    hwm_reset = reset_peak_rss(server_pid)
    sampler = RssSampler({"server": server_pid})
    sampler.start()
    started = time.perf_counter()
    try:
        size, tail = fetch_with_curl(env, case) if client == "curl" else asyncio.run(fetch_with_httpx(env, case))
        seconds = time.perf_counter() - started
    finally:
        sampler.stop()
    hwm = proc_status(server_pid).get("VmHWM") if hwm_reset else None
    return Download(
        size=size,
        seconds=seconds,
        manifest=manifest_from_tail(tail) if tail else {},
        baseline_kib=baseline,
        peak_kib=max(sampler.samples["server"] or [baseline]),
        hwm_kib=hwm,
        samples=len(sampler.samples["server"]),
    )


def check_manifest(result: Download, case: Case) -> None:
    listed = {f["sha256"] for f in result.manifest["files"] if f["path"].startswith("evidence/")}
    if listed != set(case.evidence) or result.manifest["case_id"] != case.id:
        raise RuntimeError(f"the manifest does not list the uploaded evidence: {result.manifest}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evidence-mb", type=int, default=1024, help="MiB of evidence in the case (default 1024)")
    parser.add_argument("--files", type=int, default=4, help="videos the evidence is split into (default 4)")
    database = parser.add_mutually_exclusive_group()
    database.add_argument("--postgres", metavar="URL", default=DEFAULT_POSTGRES, help=f"PostgreSQL server URL (default {DEFAULT_POSTGRES})")
    database.add_argument("--sqlite", action="store_true", help="a SQLite database instead")
    parser.add_argument(
        "--client",
        choices=("curl", "httpx"),
        default="curl" if shutil.which("curl") else "httpx",
        help="what downloads the case file (default curl when installed: it leaves the CPU to the server)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="downloads, each between two floor runs (default 3); the median counts")
    parser.add_argument("--profile", action="store_true", help="run the API under bench/profiled_server.py: where its CPU goes")
    parser.add_argument("--timeout", type=float, default=1800, help="overall deadline in seconds (default 1800)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    if args.evidence_mb < 1 or args.files < 1 or args.rounds < 1:
        parser.error("--evidence-mb, --files and --rounds must be >= 1")

    load_at_start = os.getloadavg()

    def run(env: Env) -> int:
        start_environment(env, None if args.sqlite else args.postgres, profile=args.profile)
        world = seed(env)
        assert env.server is not None and env.seaweed is not None and env.seaweed.process is not None
        log(f"uploading {args.evidence_mb} MiB of evidence in {args.files} videos to a new case ...")
        case = make_case(env, world.token, world.inspection_id, args.evidence_mb * MIB, args.files)
        keys = sorted(case.evidence.values())

        log("warm-up: reading the originals straight from the store once, not measured ...")
        floor_read(env, keys)  # the store's caches as warm for the first floor run as for the API and the second
        log("floor: reading the originals straight from the store ...")
        floors = [floor_read(env, keys)]
        log(f"floor: {floors[-1][0] / 1e6 / floors[-1][1]:.0f} MB/s")
        log("verification download (httpx, not measured): the manifest at the end of the ZIP lists the uploads ...")
        verification = download(env, case, env.server.pid, "httpx")
        check_manifest(verification, case)
        cpu = CpuMeter({"client": os.getpid(), "server": env.server.pid, "seaweedfs": env.seaweed.process.pid})
        results: list[Download] = []
        used: dict[str, float] = {}
        for r in range(args.rounds):
            log(f"api (round {r + 1}/{args.rounds}): GET /cases/{{id}}/file, sampling the server's RSS ...")
            env.profile("reset")
            time.sleep(0.2 if args.profile else 0)  # the sampler reads its control file every 0.1 s
            before = cpu.read()
            result = download(env, case, env.server.pid, args.client)
            CpuMeter.add(used, before, cpu.read())
            results.append(result)
            log(f"api: {result.size / 1e6 / result.seconds:.0f} MB/s")
            if result.manifest:
                check_manifest(result, case)
            if result.size < case.size:
                raise RuntimeError(f"the ZIP ({result.size} bytes) is smaller than its evidence ({case.size} bytes)")
            floors.append(floor_read(env, keys))
            log(f"floor: {floors[-1][0] / 1e6 / floors[-1][1]:.0f} MB/s")
        profile = env.profile_dump()

        floor_rates = [size / 1e6 / seconds for size, seconds in floors]
        api_rates = [x.size / 1e6 / x.seconds for x in results]
        # each API run against the better of the floor runs just before and just after it
        ratios = [api / max(floor_rates[r], floor_rates[r + 1]) for r, api in enumerate(api_rates)]
        ratio = statistics.median(ratios)
        # against the server's RSS before its first case file (the verification download), so memory that the first
        # download grew and kept counts too
        baseline = verification.baseline_kib
        peak = max(x.peak_kib for x in [verification, *results])
        increase = (peak - baseline) / 1024
        print()
        print(
            f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
            f"(before start: {' '.join(f'{x:.2f}' for x in load_at_start)})"
        )
        print(f"client: {args.client}")
        print(
            f"case file: {results[0].size / MIB:.0f} MiB ZIP ({case.size / MIB:.0f} MiB of evidence in {args.files} files), "
            f"{args.rounds} downloads in {' '.join(f'{x.seconds:.2f}' for x in results)} s"
        )
        print(f"floor (store alone): {' '.join(f'{x:.0f}' for x in floor_rates)} MB/s (one run before each download, one after)")
        print(f"api (GET /cases/{{id}}/file): {' '.join(f'{x:.0f}' for x in api_rates)} MB/s")
        print(
            f"ratio per download (against the better floor beside it): {' '.join(f'{x:.2f}' for x in ratios)}; median {ratio:.2f}  "
            f"(target >= {RATIO_TARGET:.2f}: {'met' if ratio >= RATIO_TARGET else 'NOT met'})"
        )
        print(
            f"server RSS: {baseline / 1024:.1f} MiB before the first case file, peak {peak / 1024:.1f} MiB over "
            f"{1 + args.rounds} downloads, increase {increase:.1f} MiB  "
            f"(target < {RSS_TARGET_MB}: {'met' if increase < RSS_TARGET_MB else 'NOT met'})"
        )
        if verification.hwm_kib is not None:
            print(f"server VmHWM (kernel peak) during the first download: +{(verification.hwm_kib - baseline) / 1024:.1f} MiB")
        for name, seconds in sorted(profile.items(), key=lambda kv: -kv[1]):
            print(f"  server CPU, {name:<48} {seconds:6.2f} s")
        for name, (user, system) in env.thread_cpu.items():
            print(f"  server {name}: user {user:.2f} s + system {system:.2f} s")
        per_gib = case.size * args.rounds / (1 << 30)
        print("cpu per GiB sent: " + "  ".join(f"{name} {seconds / per_gib:.2f} s" for name, seconds in used.items()))
        if args.json:
            figures = {
                "evidence_mib": args.evidence_mb,
                "files": args.files,
                "zip_bytes": results[0].size,
                "seconds": [round(x.seconds, 2) for x in results],
                "api_mb_per_s": [round(x, 1) for x in api_rates],
                "floor_mb_per_s": [round(x, 1) for x in floor_rates],
                "ratios": [round(x, 3) for x in ratios],
                "ratio": round(ratio, 3),
                "ratio_met": ratio >= RATIO_TARGET,
                "rss_increase_mib": round(increase, 1),
                "rss_met": increase < RSS_TARGET_MB,
                "cpu_seconds_per_gib": {k: round(v / per_gib, 2) for k, v in used.items()},
            }
            print(json.dumps(figures))
        return 0

    return run_in_environment("case-file-bench-", args.timeout, run)


if __name__ == "__main__":
    sys.exit(main())
