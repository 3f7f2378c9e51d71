"""Case file benchmark: `GET /api/v1/cases/{id}/file` for a case with ``--evidence-mb`` of evidence (default 1 GiB),
its speed against the object store's own read speed measured in the same run, and the server's memory meanwhile.

Run from the project root:

    .venv/bin/python bench/case_file.py [--evidence-mb 1024] [--files 4] [--postgres URL | --sqlite] [--timeout 1800] [--json]

It starts what it needs on 127.0.0.1 as bench/evidence_ingest.py does (the same code: an embedded SeaweedFS, a
database migrated with Alembic — by default a fresh one on the PostgreSQL server at 127.0.0.1:5432, dropped at the
end — and the API served as `safety serve` serves it, bench/harness.py), and removes it all at the end.

Then, as clients would: an admin makes an agency, an enterprise and two inspectors; an inspector opens a case and
uploads ``--files`` distinct MP4-looking videos to it through ``POST /api/v1/evidence`` (``--evidence-mb`` MiB in
all, generated on the fly), and the case is decided so that it has its 行政处罚决定书.

Measurements:

1. floor: every original read from the store with ``minio.Minio.get_object`` in 1 MiB chunks, one object after the
   other (as the API reads them), by this process: the store's own read throughput, before and after the API phase
   (after one read that warms the store's caches, unmeasured); the better of the two counts.
2. api: the case file downloaded once through the API (with curl, or ``--client httpx``), chunks discarded, while the server's VmRSS is
   sampled every 50 ms (and its kernel peak, VmHWM, reset just before, read after). The manifest at the end of the
   ZIP is read back and its evidence digests compared with the uploads.

Targets: the API's MB/s at least 50 % of the better floor run; server RSS increase below 64 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
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
    """Download with curl (C: decodes the chunked body without taking the CPU the server needs on a small machine),
    through a pipe this process drains; returns the size and the ZIP's tail."""
    command = ["curl", "-sS", "--fail", "--no-buffer", "-H", f"Authorization: {case.token}", f"{env.base_url}/api/v1/cases/{case.id}/file"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
    assert process.stdout is not None
    fd = process.stdout.fileno()
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, 1031, MIB)  # F_SETPIPE_SZ: fewer, larger reads
    size, tail = 0, bytearray()
    while chunk := os.read(fd, MIB):
        size += len(chunk)
        tail += chunk
        if len(tail) > 2 * TAIL_KEPT:
            del tail[:-TAIL_KEPT]
    if process.wait() != 0:
        raise RuntimeError(f"curl failed with {process.returncode} after {size} bytes")
    return size, bytes(tail)


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
        manifest=manifest_from_tail(tail),
        baseline_kib=baseline,
        peak_kib=max(sampler.samples["server"] or [baseline]),
        hwm_kib=hwm,
        samples=len(sampler.samples["server"]),
    )


def _on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


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
    parser.add_argument("--timeout", type=float, default=1800, help="overall deadline in seconds (default 1800)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    if args.evidence_mb < 1 or args.files < 1:
        parser.error("--evidence-mb and --files must be >= 1")

    signal.signal(signal.SIGTERM, _on_sigterm)
    watchdog = threading.Timer(args.timeout, lambda: os.kill(os.getpid(), signal.SIGINT))
    watchdog.daemon = True
    watchdog.start()
    load_at_start = os.getloadavg()
    env = Env(tmp=Path(tempfile.mkdtemp(prefix="case-file-bench-")))
    try:
        start_environment(env, None if args.sqlite else args.postgres)
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
        log("api: GET /cases/{id}/file, sampling the server's RSS ...")
        cpu = CpuMeter({"client": os.getpid(), "server": env.server.pid, "seaweedfs": env.seaweed.process.pid})
        before = cpu.read()
        result = download(env, case, env.server.pid, args.client)
        used: dict[str, float] = {}
        CpuMeter.add(used, before, cpu.read())
        log(f"api: {result.size / 1e6 / result.seconds:.0f} MB/s")
        log("floor: again ...")
        floors.append(floor_read(env, keys))

        listed = {f["sha256"] for f in result.manifest["files"] if f["path"].startswith("evidence/")}
        if listed != set(case.evidence) or result.manifest["case_id"] != case.id:
            raise RuntimeError(f"the manifest does not list the uploaded evidence: {result.manifest}")
        if result.size < case.size:
            raise RuntimeError(f"the ZIP ({result.size} bytes) is smaller than its evidence ({case.size} bytes)")

        floor_rates = [size / 1e6 / seconds for size, seconds in floors]
        floor = max(floor_rates)
        api = result.size / 1e6 / result.seconds
        ratio = api / floor
        print()
        print(
            f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
            f"(before start: {' '.join(f'{x:.2f}' for x in load_at_start)})"
        )
        print(
            f"case file: {result.size / MIB:.0f} MiB ZIP ({case.size / MIB:.0f} MiB of evidence in {args.files} files) "
            f"in {result.seconds:.1f} s"
        )
        print(
            f"api: {api:.0f} MB/s  floor: {' / '.join(f'{r:.0f}' for r in floor_rates)} MB/s (before / after; the better counts)  "
            f"ratio: {ratio:.2f}  (target >= {RATIO_TARGET:.2f}: {'met' if ratio >= RATIO_TARGET else 'NOT met'})"
        )
        print(
            f"server RSS baseline: {result.baseline_kib / 1024:.1f} MiB  peak: {result.peak_kib / 1024:.1f} MiB  "
            f"increase: {result.increase_mb:.1f} MiB  "
            f"(target < {RSS_TARGET_MB}: {'met' if result.increase_mb < RSS_TARGET_MB else 'NOT met'})"
            f"  [{result.samples} samples]"
        )
        if result.hwm_kib is not None:
            print(
                f"server VmHWM (kernel peak since reset): {result.hwm_kib / 1024:.1f} MiB  "
                f"increase: {(result.hwm_kib - result.baseline_kib) / 1024:.1f} MiB"
            )
        print("cpu during the download: " + "  ".join(f"{name} {seconds:.1f} s" for name, seconds in used.items()))
        if args.json:
            figures = {
                "evidence_mib": args.evidence_mb,
                "files": args.files,
                "zip_bytes": result.size,
                "seconds": round(result.seconds, 2),
                "api_mb_per_s": round(api, 1),
                "floor_mb_per_s": [round(r, 1) for r in floor_rates],
                "ratio": round(ratio, 3),
                "ratio_met": ratio >= RATIO_TARGET,
                "rss_baseline_mib": round(result.baseline_kib / 1024, 1),
                "rss_peak_mib": round(result.peak_kib / 1024, 1),
                "rss_increase_mib": round(result.increase_mb, 1),
                "rss_met": result.increase_mb < RSS_TARGET_MB,
                "hwm_increase_mib": None if result.hwm_kib is None else round((result.hwm_kib - result.baseline_kib) / 1024, 1),
                "cpu_seconds": {k: round(v, 2) for k, v in used.items()},
                "run": uuid.uuid4().hex[:8],
            }
            print(json.dumps(figures))
        return 0
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'SIGINT / deadline'}); cleaning up")
        return 130
    except Exception:
        tail = env.server_log_tail()
        if tail:
            print(f"--- server log (tail) ---\n{tail}\n---", file=sys.stderr)
        raise
    finally:
        watchdog.cancel()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        env.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log("environment stopped and removed")


if __name__ == "__main__":
    sys.exit(main())
