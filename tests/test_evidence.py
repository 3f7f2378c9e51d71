"""Evidence: real bytes into the real store, checked, content-addressed, idempotent; bad files leave nothing behind."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
import urllib3
from PIL import Image
from sqlalchemy import func, select

from backend.app import store_config
from backend.evidence.models import Evidence
from backend.storage import EmbeddedSeaweed, ObjectStore
from tests.helpers import World, assert_problem, start_inspection, upload
from tests.media import jpeg, mp4_header, png_bomb, truncated_jpeg


async def evidence_count(world: World) -> int:
    async with world.app.state.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(Evidence))).scalar_one()


async def test_photo_is_stored_unchanged_with_exif_facts_and_an_oriented_thumbnail(world: World, bucket) -> None:
    inspection = await start_inspection(world)
    photo = jpeg(800, 600, taken=datetime(2026, 5, 12, 9, 30, 0), gps=(39.3315, 112.4321), orientation=6)
    response = await upload(world, "inspector_a1", photo, inspection_id=inspection["id"])
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["sha256"] == hashlib.sha256(photo).hexdigest() and record["size"] == len(photo)
    assert record["content_type"] == "image/jpeg"
    assert (record["width"], record["height"]) == (600, 800)  # EXIF orientation 6: shown rotated
    # EXIF time has no zone: it is the phone's clock in Asia/Shanghai.
    assert datetime.fromisoformat(record["captured_at"]) == datetime(2026, 5, 12, 1, 30, tzinfo=UTC)
    assert record["lat"] == pytest.approx(39.3315, abs=1e-4) and record["lng"] == pytest.approx(112.4321, abs=1e-4)

    sha = record["sha256"]
    assert bucket.read(f"originals/{sha[:2]}/{sha}") == photo
    thumb = Image.open(__import__("io").BytesIO(bucket.read(f"thumbnails/{sha[:2]}/{sha}.jpg")))
    assert thumb.width < thumb.height and max(thumb.size) <= 320

    # Without S3_PUBLIC_ENDPOINT the links go through the API itself (the store may sit on a loopback port).
    detail = (await world.get("inspector_a1", f"/api/v1/evidence/{record['id']}")).json()
    assert detail["download_url"] == f"/api/v1/evidence/{record['id']}/content"
    assert detail["thumbnail_url"] == f"/api/v1/evidence/{record['id']}/thumbnail"
    content = await world.get("inspector_a1", detail["download_url"])
    assert content.content == photo and content.headers["content-type"].startswith("image/jpeg")
    thumbnail = await world.get("inspector_a1", detail["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert thumbnail.content == bucket.read(f"thumbnails/{sha[:2]}/{sha}.jpg")
    assert_problem(await world.get("inspector_b", detail["thumbnail_url"]), 404)
    assert (await world.client.get(detail["thumbnail_url"])).status_code == 401


async def test_links_are_signed_for_the_public_endpoint_without_asking_the_store(
    world: World, object_store: EmbeddedSeaweed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With S3_PUBLIC_ENDPOINT set, download and upload links are presigned for that host (here `localhost`, a name
    the internal endpoint `127.0.0.1` never uses), so the signature matches what a phone sends; signing opens no
    connection to the store."""
    inspection = await start_inspection(world)
    photo = jpeg(color=(40, 50, 60))
    record = (await upload(world, "inspector_a1", photo, inspection_id=inspection["id"])).json()
    app = world.app
    public = f"http://localhost:{object_store.s3_port}"
    monkeypatch.setattr(app.state, "settings", replace(app.state.settings, s3_public_endpoint=public))
    monkeypatch.setattr(app.state, "store", ObjectStore(store_config(app.state.settings)))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("presigning must not call the store")

    monkeypatch.setattr(urllib3.PoolManager, "urlopen", no_network)
    detail = (await world.get("inspector_a1", f"/api/v1/evidence/{record['id']}")).json()
    video = mp4_header() * 3
    start = await world.post(
        "inspector_a1",
        "/api/v1/evidence/uploads",
        {
            "kind": "video",
            "content_type": "video/mp4",
            "size": len(video),
            "sha256": hashlib.sha256(video).hexdigest(),
            "owner": {"inspection_id": inspection["id"]},
        },
    )
    monkeypatch.undo()
    assert start.status_code == 201, start.text
    assert detail["download_url"].startswith(f"{public}/") and detail["thumbnail_url"].startswith(f"{public}/")
    assert start.json()["upload_url"].startswith(f"{public}/")
    async with httpx.AsyncClient() as phone:
        assert (await phone.get(detail["download_url"])).content == photo
        assert (await phone.get(detail["thumbnail_url"])).headers["content-type"] == "image/jpeg"
        assert (await phone.put(start.json()["upload_url"], content=video)).status_code == 200
    done = await world.post("inspector_a1", f"/api/v1/evidence/{start.json()['evidence_id']}/complete")
    assert done.status_code == 200 and done.json()["status"] == "stored", done.text


async def test_fields_sent_by_the_phone_win_over_exif(world: World) -> None:
    inspection = await start_inspection(world)
    photo = jpeg(taken=datetime(2020, 1, 1, 8, 0, 0), gps=(10.0, 20.0))
    response = await upload(
        world, "inspector_a1", photo, inspection_id=inspection["id"], captured_at="2026-06-01T10:00:00+08:00", lat=39.5, lng=112.5
    )
    record = response.json()
    assert datetime.fromisoformat(record["captured_at"]) == datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    assert (record["lat"], record["lng"]) == (39.5, 112.5)


async def test_same_id_same_bytes_is_200_other_bytes_409_and_bytes_are_stored_once(world: World, bucket) -> None:
    inspection = await start_inspection(world)
    photo = jpeg(color=(1, 2, 3))
    evidence_id = str(uuid.uuid4())
    first = await upload(world, "inspector_a1", photo, id=evidence_id, inspection_id=inspection["id"])
    again = await upload(world, "inspector_a1", photo, id=evidence_id, inspection_id=inspection["id"])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = await upload(world, "inspector_a1", jpeg(color=(9, 9, 9)), id=evidence_id, inspection_id=inspection["id"])
    assert_problem(other, 409, "duplicate_conflict")

    second_record = await upload(world, "inspector_a1", photo, inspection_id=inspection["id"])
    assert second_record.status_code == 201 and second_record.json()["id"] != evidence_id
    sha = first.json()["sha256"]
    assert bucket.keys(f"originals/{sha[:2]}/") >= {f"originals/{sha[:2]}/{sha}"}
    assert len([k for k in bucket.keys("originals/") if k.endswith(sha)]) == 1
    assert await evidence_count(world) == 2


async def test_concurrent_uploads_with_one_id_make_one_record(world: World) -> None:
    inspection = await start_inspection(world)
    photo = jpeg(color=(5, 6, 7))
    evidence_id = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(upload(world, "inspector_a1", photo, id=evidence_id, inspection_id=inspection["id"]) for _ in range(2))
    )
    assert sorted(r.status_code for r in responses) == [200, 201]
    assert await evidence_count(world) == 1


@pytest.mark.parametrize(
    ("content", "kind", "status", "code"),
    [
        (b"just some text, not a photo\n" * 10, "photo", 422, "content_mismatch"),
        ("truncated", "photo", 422, "corrupt_file"),
        ("bomb", "photo", 422, "image_too_large"),
        (b"", "photo", 422, "empty_file"),
        ("photo", "video", 422, "content_mismatch"),
        ("video", "photo", 422, "content_mismatch"),
    ],
)
async def test_bad_files_are_refused_and_leave_nothing_behind(
    world: World, bucket, content: bytes | str, kind: str, status: int, code: str
) -> None:
    inspection = await start_inspection(world)
    payload = (
        {"truncated": truncated_jpeg, "bomb": png_bomb, "photo": jpeg, "video": mp4_header}[content]()
        if isinstance(content, str)
        else content
    )
    before = bucket.keys()
    response = await upload(world, "inspector_a1", payload, kind=kind, inspection_id=inspection["id"])
    assert_problem(response, status, code)
    assert bucket.keys() == before
    assert await evidence_count(world) == 0


async def test_files_over_the_configured_size_are_413(world: World, bucket) -> None:
    inspection = await start_inspection(world)
    settings = world.app.state.settings
    world.app.state.settings = replace(settings, max_photo_bytes=10_000)
    try:
        before = bucket.keys()
        response = await upload(world, "inspector_a1", jpeg(1600, 1200, quality=95), inspection_id=inspection["id"])
        assert_problem(response, 413, "file_too_large")
        assert bucket.keys() == before and await evidence_count(world) == 0
    finally:
        world.app.state.settings = settings


async def test_form_errors_name_the_field(world: World) -> None:
    inspection = await start_inspection(world)
    no_owner = await upload(world, "inspector_a1", jpeg())
    assert_problem(no_owner, 400, "validation_error")
    bad_kind = await upload(world, "inspector_a1", jpeg(), kind="hologram", inspection_id=inspection["id"])
    assert_problem(bad_kind, 400, "validation_error", field="kind")
    naive_time = await upload(world, "inspector_a1", jpeg(), inspection_id=inspection["id"], captured_at="2026-01-01T10:00:00")
    assert_problem(naive_time, 400, field="captured_at")
    not_multipart = await world.post("inspector_a1", "/api/v1/evidence", {"kind": "photo"})
    assert_problem(not_multipart, 422, "unsupported_media_type")


async def test_evidence_scope(world: World) -> None:
    inspection = await start_inspection(world)
    assert_problem(await upload(world, "enterprise_a", jpeg(), inspection_id=inspection["id"]), 403)
    assert_problem(await upload(world, "legal_city", jpeg(), inspection_id=inspection["id"]), 403)
    assert_problem(await upload(world, "inspector_b", jpeg(), inspection_id=inspection["id"]), 422, "inspection_not_found")
    record = (await upload(world, "inspector_a1", jpeg(), inspection_id=inspection["id"])).json()
    assert (await world.get("enterprise_a", f"/api/v1/evidence/{record['id']}")).status_code == 200
    assert_problem(await world.get("enterprise_b", f"/api/v1/evidence/{record['id']}"), 404)
    assert_problem(await world.get("inspector_b", f"/api/v1/evidence/{record['id']}/content"), 404)


async def test_presigned_upload_is_checked_before_it_counts(world: World, bucket) -> None:
    inspection = await start_inspection(world)
    video = mp4_header() * 50
    sha = hashlib.sha256(video).hexdigest()
    start = await world.post(
        "inspector_a1",
        "/api/v1/evidence/uploads",
        {"kind": "video", "content_type": "video/mp4", "size": len(video), "sha256": sha, "owner": {"inspection_id": inspection["id"]}},
    )
    assert start.status_code == 201, start.text
    evidence_id, url = start.json()["evidence_id"], start.json()["upload_url"]
    early = await world.post("inspector_a1", f"/api/v1/evidence/{evidence_id}/complete")
    assert_problem(early, 422, "upload_missing")
    async with httpx.AsyncClient() as plain:
        assert (await plain.put(url, content=video)).status_code == 200
    done = await world.post("inspector_a1", f"/api/v1/evidence/{evidence_id}/complete")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "stored" and done.json()["sha256"] == sha
    assert bucket.read(f"originals/{sha[:2]}/{sha}") == video
    assert not bucket.keys("uploads/")
    assert (await world.post("inspector_a1", f"/api/v1/evidence/{evidence_id}/complete")).status_code == 200


async def test_presigned_upload_with_other_bytes_is_refused(world: World, bucket) -> None:
    inspection = await start_inspection(world)
    declared = mp4_header()
    start = await world.post(
        "inspector_a1",
        "/api/v1/evidence/uploads",
        {
            "kind": "video",
            "content_type": "video/mp4",
            "size": len(declared),
            "sha256": hashlib.sha256(declared).hexdigest(),
            "owner": {"inspection_id": inspection["id"]},
        },
    )
    evidence_id, url = start.json()["evidence_id"], start.json()["upload_url"]
    before = bucket.keys()
    async with httpx.AsyncClient() as plain:
        await plain.put(url, content=declared[:-1] + b"\x01")
    refused = await world.post("inspector_a1", f"/api/v1/evidence/{evidence_id}/complete")
    assert_problem(refused, 422, "upload_mismatch")
    assert bucket.keys() == before
    detail = (await world.get("inspector_a1", f"/api/v1/evidence/{evidence_id}")).json()
    assert detail["status"] == "pending" and detail["download_url"] is None
