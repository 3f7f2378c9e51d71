"""The case file (案卷) ZIP: a verifier checks every file against the manifest, the manifest's chain head against the
case's records, the issued PDFs against the chain's notes and the evidence against the records' digests; a missing
original is a 409 naming it, before any byte of a ZIP."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest
from minio.error import S3Error
from pypdf import PdfReader

from backend.enforcement.case_file import CaseFile, Member, stream_zip
from backend.enforcement.models import GENESIS_HASH, CaseRecord
from backend.enforcement.records import chain_hash, record_content
from tests.helpers import World, assert_problem, ok, upload
from tests.media import jpeg
from tests.test_documents import assert_embeds_its_font
from tests.test_enforcement import hear_and_approve, open_case, pdf_text, record, submitted_inspection

API = "/api/v1"


def verify_case_file(content: bytes, records: list[dict[str, Any]], case_id: str) -> dict[str, Any]:
    """What someone checking a case file does with nothing but the ZIP and GET /cases/{id}/records."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None  # every member's CRC
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["case_id"] == case_id
    names = set(archive.namelist()) - {"manifest.json"}
    assert {f["path"] for f in manifest["files"]} == names
    for listed in manifest["files"]:
        data = archive.read(listed["path"])
        assert hashlib.sha256(data).hexdigest() == listed["sha256"] and len(data) == listed["size"], listed["path"]
    # the chain: recomputed from the records the API gives, ending where the manifest says
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    previous = GENESIS_HASH
    for r in records:
        fields = {**r, "case_id": uuid.UUID(r["case_id"]), "recorded_by": uuid.UUID(r["recorded_by"])}
        fields |= {k: datetime.fromisoformat(r[k]) for k in ("occurred_at", "recorded_at")}
        assert r["prev_hash"] == previous and chain_hash(previous, record_content(CaseRecord(**fields))) == r["hash"], r["seq"]
        previous = r["hash"]
    assert manifest["chain_head"] == records[-1]["hash"] and manifest["chain_length"] == len(records)
    # every issued PDF is the one whose sha256 the chain noted when it was issued; every original is the one recorded
    chained = "\n".join(r["description"] for r in records)
    digests = {f["path"]: f["sha256"] for f in manifest["files"]}
    for path, sha in digests.items():
        if path.startswith("documents/"):
            assert f"sha256 {sha}" in chained, path
    recorded = {e["sha256"] for r in records for e in r["evidence"]}
    assert recorded <= {sha for path, sha in digests.items() if path.startswith("evidence/")}
    return manifest


async def decided_case(world: World) -> tuple[str, list[dict[str, Any]]]:
    """A decided case opened from an inspection, with two photos in its records and its documents issued (告知书,
    决定书, and the inspection's two)."""
    inspection = await submitted_inspection(world)
    cid = (await open_case(world, inspection["id"]))["id"]
    photos = [(await upload(world, "inspector_a1", jpeg(color=(n, 100, 200)), case_id=cid)).json() for n in (1, 2)]
    ok(await record(world, cid, "onsite_check", "现场检查，隐患排查台账缺失", [photos[0]["id"]]))
    ok(await record(world, cid, "interview", "询问安全管理人员", [photos[1]["id"]]))
    decision = {
        "measures": [{"type": "fine", "amount": 20000, "basis_id": "AQSCF-97-5"}],
        "facts": "未如实记录事故隐患排查治理情况",
        "reasoning": "依据安全生产法第九十七条第（五）项",
    }
    ok(await world.post("inspector_a1", f"{API}/cases/{cid}/decision", decision))
    await hear_and_approve(world, cid, major=False)  # 告知 and the party's waiver come before the decision
    ok(await world.post("inspector_a1", f"{API}/cases/{cid}/decide"))
    for doc_type in ("inspection_record", "rectification_order"):
        ok(await world.get("inspector_a1", f"{API}/cases/{cid}/documents/{doc_type}"))
    return cid, photos


async def test_the_case_file_verifies(world: World) -> None:
    cid, photos = await decided_case(world)
    response = await world.get("enterprise_a", f"{API}/cases/{cid}/file")  # the enterprise reads its own case file
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    records = (await world.get("inspector_a1", f"{API}/cases/{cid}/records", params={"limit": 200})).json()["items"]
    manifest = verify_case_file(response.content, records, cid)
    verified = (await world.get("inspector_a1", f"{API}/cases/{cid}/verify")).json()
    assert verified["valid"] and verified["head"] == manifest["chain_head"]

    paths = [f["path"] for f in manifest["files"]]
    assert paths[0] == "案卷.pdf"
    assert sorted(p for p in paths if p.startswith("documents/")) == [
        "documents/01-行政处罚告知书.pdf",
        "documents/02-行政处罚决定书.pdf",
        "documents/03-现场检查记录.pdf",
        "documents/04-责令限期整改指令书.pdf",
    ]
    evidence = {f["sha256"] for f in manifest["files"] if f["path"].startswith("evidence/")}
    assert evidence == {p["sha256"] for p in photos}

    archive = zipfile.ZipFile(io.BytesIO(response.content))
    volume = archive.read("案卷.pdf")
    assert_embeds_its_font(volume)
    text = pdf_text(volume)
    case = (await world.get("inspector_a1", f"{API}/cases/{cid}")).json()
    for phrase in ("行政执法案卷", "卷内目录", "执法全过程记录（哈希链）", "证据清单", "企业a", *(d["number"] for d in case["documents"])):
        assert phrase in text, phrase
    flat = re.sub(r"\s", "", text)
    for r in records:
        assert r["hash"] in flat  # every hash of the chain, in the volume
    # the table of contents points at the pages where each document starts
    pages = PdfReader(io.BytesIO(volume)).pages
    first_document_page = next(i for i, page in enumerate(pages, start=1) if "行政处罚告知书" in page.extract_text() and i > 2)
    assert first_document_page == 3


async def test_the_case_file_is_refused_while_evidence_is_missing(world: World, bucket) -> None:
    cid, photos = await decided_case(world)
    lost = photos[1]
    bucket.client.remove_object(bucket_name=bucket.name, object_name=f"originals/{lost['sha256'][:2]}/{lost['sha256']}")
    body = assert_problem(await world.get("inspector_a1", f"{API}/cases/{cid}/file"), 409, "evidence_missing")
    assert lost["id"] in body["detail"] and body["missing"] == [
        {"evidence_id": lost["id"], "object_key": f"originals/{lost['sha256'][:2]}/{lost['sha256']}"}
    ]


async def test_only_who_may_read_the_case_gets_its_file(world: World) -> None:
    cid = (await open_case(world))["id"]
    for outsider in ("inspector_b", "enterprise_b", "legal_other"):
        assert_problem(await world.get(outsider, f"{API}/cases/{cid}/file"), 404, "case_not_found")
    empty = await world.get("legal_city", f"{API}/cases/{cid}/file")  # a case with nothing yet still makes a file
    assert empty.status_code == 200
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(empty.content)).read("manifest.json"))
    assert [f["path"] for f in manifest["files"]] == ["案卷.pdf"] and manifest["chain_length"] == 0


async def test_a_stream_that_fails_midway_never_ends_as_a_zip(world: World) -> None:
    """The store losing an original after the check: the stream raises (the response ends unfinished), and what was
    sent before is no readable ZIP; a client that goes away stops the reading."""
    store = world.app.state.store
    await store.put_bytes("bench/present", b"x" * (3 << 20), "application/octet-stream")
    at = datetime.now(UTC)
    members = [
        Member("案卷.pdf", at, data=b"%PDF-1.4\n%%EOF\n"),
        Member("evidence/001-present.bin", at, object_key="bench/present", size=3 << 20, sha256="0" * 64),
        Member("evidence/002-gone.bin", at, object_key="bench/gone", size=10, sha256="1" * 64),
    ]
    sent = bytearray()
    with pytest.raises(S3Error):
        async for part in stream_zip(store, CaseFile(uuid.uuid4(), GENESIS_HASH, 0, members)):
            sent += part
    assert len(sent) > 3 << 20
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(bytes(sent)))

    stream = stream_zip(store, CaseFile(uuid.uuid4(), GENESIS_HASH, 0, members[:2]))
    first = await anext(stream)
    assert first.startswith(b"PK")
    await stream.aclose()  # the client went away: the producer and its read-ahead are stopped
