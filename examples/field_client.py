"""An inspector's phone, in one file: how a mobile app talks to the Mobile API v1 when the network is unreliable.

    .venv/bin/python examples/field_client.py --username inspector1 [--password PW] [--partner inspector2]

What it does, in the order a phone app would:

1. Online, at the office: log in, fetch "who am I", pick an enterprise and download its checklists once (ETag;
   a second download answers 304).
2. Offline, on site: plan the whole inspection. Every id (inspection, photo) is generated on the phone, up front,
   and every request is written to an outbox before anything is sent.
3. Back in coverage: sync the outbox. The network is simulated as failing halfway (a response lost after the
   server processed the request, then no signal at all), so the app replays its whole outbox with backoff. The
   server answers a repeated create with 200 and the resource it already has, so nothing is created twice.
4. Show the hazards the submit created and what the sync cost.

Rules a phone app follows (see mobile_api_spec/README.md):
- generate a client id once, when the user creates the thing, and send the same id and the same content on
  every retry;
- retry network errors and 5xx with backoff; never retry a 4xx unchanged (a 409 on a replay means the app
  changed the content under an existing id: a bug in the app, not in the network).

Without --password the password comes from the demo credentials `./run.sh serve` writes
(`.state/demo_credentials.json`, or --credentials PATH).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import sys
import time
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

try:
    from PIL import Image
except ImportError:  # the app still works without Pillow, with a tiny built-in JPEG and no EXIF
    Image = None

PROJECT = Path(__file__).resolve().parent.parent
API = "/api/v1"
LOCAL_TIME = timezone(timedelta(hours=8), "CST")  # the phone's wall clock, as in the agencies' zone (Asia/Shanghai)
PREFERRED_TOPICS = ("hazardous_chemicals", "mining")


# --- 1. The phone's network ------------------------------------------------------------------------------------


class UnreliableNetwork(httpx.BaseTransport):
    """Mobile data on a road through the mountains: passes requests to the real transport, but `trip` says what the
    network does to each request, one word per request: "ok", "lost_response" (the server receives and processes
    the request, the answer never arrives) or "no_signal" (the request never leaves the phone).
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.trip: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fate = self.trip.pop(0) if self.trip else "ok"
        if fate == "no_signal":
            raise httpx.ConnectError("no signal (simulated)", request=request)
        response = self.inner.handle_request(request)
        if fate == "lost_response":
            response.read()
            response.close()
            raise httpx.ReadError("connection dropped before the answer arrived (simulated)", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


# --- 2. Talking to the server ----------------------------------------------------------------------------------


class Api:
    """A thin httpx client: base path, bearer token, a fresh X-Request-ID per attempt, logging in again on 401."""

    def __init__(self, base_url: str, username: str, password: str, network: UnreliableNetwork) -> None:
        self.username, self.password = username, password
        self.token: str | None = None
        self.requests_sent = 0
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + API,
            transport=network,
            timeout=httpx.Timeout(30.0, connect=5.0),
            event_hooks={"request": [self._count]},
        )

    def _count(self, request: httpx.Request) -> None:
        self.requests_sent += 1

    def login(self) -> dict[str, Any]:
        response = self.client.post("/auth/login", json={"username": self.username, "password": self.password})
        expect(response, 200)
        self.token = response.json()["access_token"]
        return response.json()

    def send(
        self,
        method: str,
        path: str,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        # The server echoes X-Request-ID and writes it to its audit log: quote it when reporting a problem.
        headers = {**(headers or {}), "X-Request-ID": request_id or uuid.uuid4().hex}
        response = self._authorised(method, path, headers, kwargs)
        if response.status_code == 401:  # the token expired (12 h by default): log in again, once
            self.login()
            response = self._authorised(method, path, headers, kwargs)
        return response

    def _authorised(self, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]) -> httpx.Response:
        return self.client.request(method, path, headers={**headers, "Authorization": f"Bearer {self.token}"}, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.send("GET", path, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.get(path, **kwargs)
        expect(response, 200)
        return response.json()

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Follow `next_cursor` to the end of a list; cursors are opaque and passed back unchanged."""
        items, cursor = [], None
        while True:
            page = self.get_json(path, params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})})
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return items


def problem_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # e.g. a proxy's HTML error page
        return {"detail": response.text[:200]}
    return body if isinstance(body, dict) else {"detail": str(body)[:200]}


def problem(response: httpx.Response) -> str:
    """One line from an RFC 9457 problem: switch on `code`, show `detail`, highlight `field`."""
    body = problem_body(response)
    field_part = f" field={body['field']}" if body.get("field") else ""
    request_id = f" (request_id {body['request_id']})" if body.get("request_id") else ""
    return f"{response.status_code} {body.get('code')}{field_part}: {body.get('detail')}{request_id}"


def expect(response: httpx.Response, *statuses: int) -> None:
    """Setup calls happen online, before the trip: anything unexpected there is fatal."""
    if response.status_code not in statuses:
        sys.exit(f"{response.request.method} {response.request.url.path} failed: {problem(response)}")


# --- 3. Online preparation -------------------------------------------------------------------------------------


def find_partner(api: Api, me: dict[str, Any], username: str | None) -> dict[str, Any]:
    """The second certified inspector an enforcement inspection needs (行政处罚法 第四十二条)."""
    inspectors = [u for u in api.get_json("/users", params={"role": "inspector"})["items"] if u["id"] != me["id"]]
    if username:
        chosen = [u for u in inspectors if u["username"] == username]
    else:  # by default a certified colleague of the same agency
        chosen = sorted((u for u in inspectors if u.get("certificate_no")), key=lambda u: u["agency_id"] != me["agency_id"])
    if not chosen:
        sys.exit(f"no partner inspector {username or ''} among {[u['username'] for u in inspectors]}")
    return chosen[0]


def pick_enterprise(api: Api) -> tuple[dict[str, Any], str]:
    enterprises = api.all_pages("/enterprises")
    if not enterprises:
        sys.exit("no enterprise in this inspector's scope")
    for topic in PREFERRED_TOPICS:
        for enterprise in enterprises:
            if topic in enterprise["topics"]:
                return enterprise, topic
    return enterprises[0], enterprises[0]["topics"][0]


@dataclass
class ChecklistStore:
    """What the phone keeps on disk: each checklist version once, with the ETag it came with."""

    etags: dict[str, str] = field(default_factory=dict)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)

    def download(self, api: Api, checklist_id: str) -> dict[str, Any]:
        headers = {"If-None-Match": self.etags[checklist_id]} if checklist_id in self.etags else {}
        response = api.get(f"/checklists/{checklist_id}", headers=headers)
        expect(response, 200, 304)
        if response.status_code == 304:
            print(f"    304 Not Modified: the copy on the phone is current ({len(response.content)} bytes sent)")
            return self.bodies[checklist_id]
        self.etags[checklist_id] = response.headers["ETag"]
        self.bodies[checklist_id] = response.json()
        print(f'    200 OK: {len(response.content)} bytes, ETag {response.headers["ETag"][:20]}…"')
        return self.bodies[checklist_id]


def pick_checklists(api: Api, topic: str) -> list[dict[str, Any]]:
    """The major-hazard standard (重大事故隐患判定标准) and a routine list of the topic, current versions first.
    A real app lets the inspector choose: a coal mine and a metal mine are both `mining`, with different standards."""
    summaries = api.get_json("/checklists", params={"topic": topic})["items"]
    chosen = []
    for kind in ("major", "routine"):
        of_kind = [c for c in summaries if c.get("kind") == kind]
        of_kind.sort(key=lambda c: c["superseded"])  # a superseded version only when nothing else exists
        chosen.extend(of_kind[:1])
    if not chosen:
        sys.exit(f"no published checklist for topic {topic}")
    return chosen


def show_version_status(checklist: dict[str, Any]) -> None:
    """The server tells the inspector when a version is superseded or unverified: the app must show it."""
    if checklist.get("superseded"):
        successor = checklist.get("superseded_by") or {}
        print(
            f"    ! superseded by 《{successor.get('title')}》({successor.get('document_number')})"
            f" in force from {successor.get('effective_from')}"
        )
    if checklist.get("warning"):
        print(f"    ! warning: {checklist['warning']}")


# --- 4. Planning offline ---------------------------------------------------------------------------------------

# What an inspector types next to a finding.
FINDING_NOTES = [
    "罐区巡查时发现，已拍照取证，企业安全管理人员在场确认",
    "现场抽查时企业未能提供相关记录，已拍照取证",
    "中控室检查时发现，已当场向企业主要负责人指出",
]

# An 8x8 grey JPEG, used only when Pillow is missing.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1x"
    "eXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAAR"
    "CAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEG"
    "E1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWG"
    "h4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEB"
    "AQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYk"
    "NOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0"
    "tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwCOiiigD//Z"
)


def take_photo(label: str, taken: datetime, location: dict[str, float] | None, rng: random.Random) -> bytes:
    """A small real JPEG with EXIF DateTimeOriginal (and GPS), as a phone camera writes it."""
    if Image is None:
        # A JPEG comment segment right after the start marker makes each photo's bytes unique.
        comment = label.encode()
        return TINY_JPEG[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + TINY_JPEG[2:]
    image = Image.new("RGB", (640, 480), tuple(rng.randrange(40, 220) for _ in range(3)))
    for x in range(0, 640, 20):  # some structure, so each photo's bytes differ
        image.paste(tuple(rng.randrange(256) for _ in range(3)), (x, rng.randrange(240), x + 10, 480))
    exif = Image.Exif()
    exif[0x0110] = "Field inspection phone"  # Model
    # EXIF time has no zone: it is the wall clock, and the server reads it in the agencies' zone.
    exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    if location:
        gps = exif.get_ifd(0x8825)
        gps.update({1: "N", 2: _dms(location["lat"]), 3: "E", 4: _dms(location["lng"])})
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80, exif=exif)
    return buffer.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round(((value - degrees) * 60 - minutes) * 60, 2)


@dataclass
class Entry:
    """One request in the outbox, written once while offline and sent unchanged as often as needed."""

    label: str
    method: str
    path: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None  # multipart fields, sent before the file part
    photo: bytes | None = None
    state: str = "pending"  # pending → done, or rejected (a 4xx: reported, never resent unchanged)
    answers: list[str] = field(default_factory=list)  # what each attempt got, for the summary
    body: Any = None  # the last successful answer

    @property
    def is_create(self) -> bool:
        return self.method == "POST" and self.path in ("/inspections", "/evidence")


@dataclass
class Plan:
    inspection_id: str
    findings: dict[str, list[str]]  # item code → photo ids
    outbox: list[Entry]


Finding = tuple[dict[str, Any], dict[str, Any]]  # (checklist, item)


def choose_findings(checklists: list[dict[str, Any]], rng: random.Random) -> list[Finding]:
    """2-3 items found not compliant, spread over the checklists."""
    wanted = rng.randint(2, 3)
    findings: list[Finding] = []
    while len(findings) < wanted:
        checklist = checklists[len(findings) % len(checklists)]
        item = rng.choice(checklist["items"])
        if all(item is not chosen for _, chosen in findings):
            findings.append((checklist, item))
    return findings


def plan_inspection(
    me: dict[str, Any],
    partner: dict[str, Any],
    enterprise: dict[str, Any],
    checklists: list[dict[str, Any]],
    rng: random.Random,
    batch_size: int,
) -> Plan:
    """Everything the inspector does on site, recorded on the phone without a single request."""
    inspection_id = str(uuid.uuid4())
    # On site, out of coverage: the phone syncs when the inspectors are back on the road, about 90 minutes later.
    started = datetime.now(LOCAL_TIME).replace(microsecond=0) - timedelta(minutes=90)
    outbox = [
        Entry(
            "create inspection",
            "POST",
            "/inspections",
            json={
                "id": inspection_id,
                "enterprise_id": enterprise["id"],
                "checklist_ids": [c["id"] for c in checklists],
                "inspector_ids": [me["id"], partner["id"]],
                "kind": "enforcement",
            },
        ),
        # The time the notice was given is recorded when it happens, so a replay sends the same instant.
        Entry(
            "notice 执法告知",
            "POST",
            f"/inspections/{inspection_id}/notice",
            json={
                "given_at": started.isoformat(),
                "note": "两名执法人员出示执法证件，告知检查事项、依据及企业的权利义务",
            },
        ),
    ]

    findings: dict[str, list[str]] = {}
    hazard_results: dict[tuple[str, str], dict[str, Any]] = {}
    photo_entries: list[Entry] = []
    for n, (checklist, item) in enumerate(choose_findings(checklists, rng)):
        photo_ids = [str(uuid.uuid4()) for _ in range(max(1, item["min_photos"]))]
        findings[item["code"]] = photo_ids
        for k, photo_id in enumerate(photo_ids):
            taken = started + timedelta(minutes=10 + 7 * n + k)
            photo_entries.append(
                Entry(
                    f"photo {item['code']} #{k + 1}",
                    "POST",
                    "/evidence",
                    form={"id": photo_id, "kind": "photo", "inspection_id": inspection_id},
                    photo=take_photo(photo_id, taken, enterprise.get("location"), rng),
                )
            )
        note = FINDING_NOTES[n % len(FINDING_NOTES)]
        hazard_results[(checklist["id"], item["code"])] = {
            "checklist_id": checklist["id"],
            "item_code": item["code"],
            "outcome": "hazard",
            "note": note,
            "evidence_ids": photo_ids,
            "hazard": {
                "level": "major" if item["major_hazard"] else "general",
                "description": f"{item['text']}（{note}）",
            },
        }
    outbox.extend(photo_entries)

    results = [
        hazard_results.get((c["id"], item["code"])) or {"checklist_id": c["id"], "item_code": item["code"], "outcome": "compliant"}
        for c in checklists
        for item in c["items"]
    ]
    for start in range(0, len(results), batch_size):
        batch = results[start : start + batch_size]
        outbox.append(
            Entry(
                f"results {start + 1}-{start + len(batch)}/{len(results)}",
                "PUT",
                f"/inspections/{inspection_id}/results",
                json={"results": batch},
            )
        )

    outbox.append(
        Entry(
            "submit",
            "POST",
            f"/inspections/{inspection_id}/submit",
            json={
                "attendees": [
                    {"role": "principal", "name": enterprise.get("principal") or "王建国"},
                    {"role": "safety_manager", "name": enterprise.get("safety_manager") or "李安全"},
                    {"role": "operator", "name": "赵师傅"},
                ],
                "feedback": f"已当场向企业反馈检查发现的{len(findings)}项隐患及整改要求，企业主要负责人表示按期整改并报告。",
            },
        )
    )
    return Plan(inspection_id, findings, outbox)


# --- 5. Sync: replay the outbox until everything is done -----------------------------------------------------


def send(api: Api, entry: Entry, attempt_id: str) -> httpx.Response:
    if entry.photo is not None:
        # httpx writes `data` fields before `files`, so the server knows kind and owner before the bytes arrive.
        return api.send(entry.method, entry.path, attempt_id, data=entry.form, files={"file": ("photo.jpg", entry.photo, "image/jpeg")})
    return api.send(entry.method, entry.path, attempt_id, json=entry.json)


def describe(entry: Entry, body: dict[str, Any]) -> str:
    if entry.path == "/evidence":
        return f"photo {body['id'][:8]} sha256 {body['sha256'][:10]}… captured_at {body['captured_at']}"
    if entry.path == "/inspections":
        return f"inspection {body['id'][:8]} status {body['status']}"
    if entry.path.endswith("/notice"):
        return f"notice given at {body['notice_given_at']}"
    if entry.path.endswith("/submit"):
        return f"status {body['status']}, hazards {[h[:8] for h in body['hazard_ids']]}"
    return f"{len(body['results'])} results on the server"


def repeat_note(entry: Entry, status: int) -> str:
    """What a 2xx on a resend means: the server already had it, so nothing was created or changed twice."""
    if not entry.answers:
        return ""
    if any(a.isdigit() for a in entry.answers):
        return "[replay: same resource] " if entry.is_create else "[replay: nothing changed] "
    if entry.is_create and status == 200:
        return "[its answer was lost, but the server had stored it] "
    return "[resent after a network error] "


def padded(text: str, width: int) -> str:
    """Pad for a terminal, where a Chinese character takes two columns."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - columns)


def run_pass(api: Api, outbox: list[Entry], number: int) -> bool:
    """Send every entry that is not rejected, in order, including those already done. False when interrupted."""
    for index, entry in enumerate(outbox):
        if entry.state == "rejected":
            continue
        attempt_id = f"fc-{index}-{len(entry.answers) + 1}-{uuid.uuid4().hex[:8]}"
        tag = f"  [pass {number}] {padded(entry.label, 20)}"
        try:
            response = send(api, entry, attempt_id)
        except httpx.TransportError as exc:
            entry.answers.append(type(exc).__name__)
            print(f"{tag} ✗ {type(exc).__name__}: {exc}")
            return False
        if response.status_code >= 500:
            entry.answers.append(str(response.status_code))
            print(f"{tag} ✗ {problem(response)}")
            return False
        if response.status_code >= 400:
            entry.answers.append(str(response.status_code))
            entry.state = "rejected"
            conflict = problem_body(response).get("code") == "duplicate_conflict"
            why = "same id, other content: a bug in the app" if conflict else "reported, not resent unchanged"
            print(f"{tag} ✗ {problem(response)}  [{why}]")
            continue
        note = repeat_note(entry, response.status_code)
        entry.answers.append(str(response.status_code))
        entry.state, entry.body = "done", response.json()
        print(f"{tag} {response.status_code} {note}{describe(entry, entry.body)}")
    return True


def sync(api: Api, outbox: list[Entry], backoff: float, max_passes: int, rng: random.Random) -> bool:
    """Replay the whole outbox until one pass gets through. Replaying entries that already succeeded is harmless
    (creates answer 200, updates change nothing), and it is what an app must do for a response it never got."""
    for number in range(1, max_passes + 1):
        if run_pass(api, outbox, number):
            return True
        # Exponential backoff with jitter, so a thousand phones leaving one tunnel do not all retry together.
        delay = min(60.0, backoff * 2 ** (number - 1)) * rng.uniform(0.5, 1.0)
        print(f"  … connection lost; retrying the whole outbox in {delay:.1f} s")
        time.sleep(delay)
    return False


def trip_through_the_mountains(outbox_size: int) -> list[str]:
    """The simulated network, request by request (see UnreliableNetwork)."""
    halfway = outbox_size // 2
    return (
        ["ok"] * (halfway - 1)
        + ["lost_response"]  # the server stores this one; the phone never hears back
        + ["no_signal"] * 2  # two more attempts before coverage returns
        + ["ok"] * (outbox_size - 1)  # the next pass reaches the submit ...
        + ["lost_response"]  # ... whose answer is lost too, so everything is replayed once more
    )


# --- 6. What came out of it ------------------------------------------------------------------------------------


def show_hazards(api: Api, hazard_ids: list[str]) -> None:
    print(f"\nHazards created by the submit ({len(hazard_ids)}):")
    for hazard_id in hazard_ids:
        hazard = api.get_json(f"/hazards/{hazard_id}")
        local_deadline = datetime.fromisoformat(hazard["deadline"]).astimezone(LOCAL_TIME)
        print(
            f"  {hazard_id}  {hazard['status']}  {hazard['level']:<7}  item {hazard['item_code']:<8}"
            f"  deadline {hazard['deadline']} ({local_deadline:%Y-%m-%d %H:%M} +08:00)"
        )
        print(f"      {hazard['description']}")


def check_no_duplicates(api: Api, plan: Plan, enterprise_id: str) -> None:
    """Ask the server what it holds: one inspection, every result, and one hazard per finding."""
    inspection = api.get_json(f"/inspections/{plan.inspection_id}")
    hazards = api.all_pages("/hazards", enterprise_id=enterprise_id)
    ours = [h for h in hazards if h["inspection_id"] == plan.inspection_id]
    photos = [api.get(f"/evidence/{p}").status_code for ids in plan.findings.values() for p in ids]
    print(
        f"\nOn the server: inspection {inspection['status']}, {len(inspection['results'])} results, "
        f"{photos.count(200)}/{len(photos)} photos, {len(ours)} hazards for {len(plan.findings)} findings"
    )


def summarise(api: Api, plan: Plan, requests_before: int, requests_sync: int) -> None:
    outbox = plan.outbox
    attempts = sum(len(e.answers) for e in outbox)
    lost = sum(not a.isdigit() for e in outbox for a in e.answers)
    creates = sum(a == "200" for e in outbox if e.is_create for a in e.answers)  # 200, not 201: it existed
    submits = sum(a == "200" for a in outbox[-1].answers[1:])
    updates = sum(a == "200" for e in outbox[:-1] if not e.is_create for a in e.answers[1:])
    statuses = Counter(a for e in outbox for a in e.answers)
    print("\nSummary")
    print(
        f"  HTTP requests sent:  {api.requests_sent} ({requests_before} before the sync, {requests_sync} syncing,"
        f" {api.requests_sent - requests_before - requests_sync} checking)"
    )
    print(
        f"  outbox:              {len(outbox)} entries sent {attempts} times ({attempts - len(outbox)} retries, {lost} lost to the network)"
    )
    print(f"  answers:             {dict(sorted(statuses.items()))}")
    print(
        f"  duplicates avoided:  {creates + submits} ({creates} creates answered 200 with the existing resource,"
        f" {submits} submit replay(s) answered with the same hazards)"
    )
    print(f"  harmless repeats:    {updates} notice/results replays changed nothing")
    rejected = [e for e in outbox if e.state == "rejected"]
    pending = [e for e in outbox if e.state == "pending"]
    if rejected:
        print(f"  rejected:            {[e.label for e in rejected]} (fix, then resend)")
    if pending:
        print(f"  still in the outbox: {[e.label for e in pending]} (the next sync sends them)")


# --- Putting it together ---------------------------------------------------------------------------------------


def read_password(credentials: Path, username: str) -> str:
    try:
        accounts = json.loads(credentials.read_text(encoding="utf-8"))
    except FileNotFoundError:
        sys.exit(f"{credentials} not found: pass --password or --credentials, or start the server with ./run.sh serve")
    for account in accounts:
        if account["username"] == username:
            return account["password"]
    sys.exit(f"{username} is not in {credentials}")


def parse_args() -> argparse.Namespace:
    default_credentials = Path(os.environ.get("STATE_DIR", PROJECT / ".state")) / "demo_credentials.json"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="inspector1")
    parser.add_argument("--password", help="default: from --credentials")
    parser.add_argument("--partner", help="the second inspector's username (default: a certified colleague)")
    parser.add_argument("--credentials", type=Path, default=default_credentials, help=f"default: {default_credentials}")
    parser.add_argument("--batch-size", type=int, default=15, help="results per PUT")
    parser.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds")
    parser.add_argument("--max-passes", type=int, default=8)
    parser.add_argument("--reliable-network", action="store_true", help="do not simulate the lost connection")
    parser.add_argument("--seed", type=int, help="repeatable choice of findings and photos")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    password = args.password or read_password(args.credentials, args.username)
    network = UnreliableNetwork(httpx.HTTPTransport(retries=0))
    api = Api(args.base_url, args.username, password, network)

    print(f"1. Log in to {args.base_url} as {args.username}")
    try:
        api.login()
    except httpx.TransportError as exc:
        sys.exit(f"server unreachable: {exc}")
    me = api.get_json("/auth/me")
    print(f"   I am {me['display_name']} ({me['role']}, 执法证号 {me.get('certificate_no')}), agency {me['agency_id']}")
    partner = find_partner(api, me, args.partner)
    print(f"   partner: {partner['display_name']} ({partner['username']}, 执法证号 {partner.get('certificate_no')})")

    enterprise, topic = pick_enterprise(api)
    print(f"\n2. Enterprise {enterprise['name']} ({enterprise['credit_code']}), topic {topic}")
    store = ChecklistStore()
    checklists = []
    for summary in pick_checklists(api, topic):
        print(f"   checklist {summary['code']}@{summary['version']} ({summary['kind']}, {summary['item_count']} items) {summary['title']}")
        show_version_status(summary)
        checklists.append(store.download(api, summary["id"]))
        store.download(api, summary["id"])  # the next sync of the app: nothing to download

    plan = plan_inspection(me, partner, enterprise, checklists, rng, args.batch_size)
    items = sum(len(c["items"]) for c in checklists)
    photos = sum(len(p) for p in plan.findings.values())
    camera = "640x480 JPEG with EXIF DateTimeOriginal and GPS" if Image else "tiny JPEG without EXIF (no Pillow)"
    print(
        f"\n3. Offline on site: inspection {plan.inspection_id}, {items} items, findings {list(plan.findings)}"
        f" with {photos} photos ({camera}); {len(plan.outbox)} requests in the outbox"
    )

    requests_before = api.requests_sent
    if not args.reliable_network:
        network.trip = trip_through_the_mountains(len(plan.outbox))
    trouble = "" if args.reliable_network else " (the connection will drop halfway)"
    print(f"\n4. Back in coverage: sync the outbox{trouble}")
    finished = sync(api, plan.outbox, args.backoff, args.max_passes, rng)
    network.trip = []
    requests_sync = api.requests_sent - requests_before

    submit = plan.outbox[-1]
    if submit.state == "done":
        show_hazards(api, submit.body["hazard_ids"])
        check_no_duplicates(api, plan, enterprise["id"])
    summarise(api, plan, requests_before, requests_sync)
    api.client.close()
    return 0 if finished and all(e.state == "done" for e in plan.outbox) else 1


if __name__ == "__main__":
    sys.exit(main())
