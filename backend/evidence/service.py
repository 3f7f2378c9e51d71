"""Evidence: checking what a file really is, storing it unchanged under a content-addressed key, and recording it.

Every check runs before anything is written, so a rejected file leaves nothing in the bucket or the database.
The same bytes are stored once, however many records and retries point at them.

No store call runs inside a database transaction: an upload reads and checks what it needs, ends that transaction
(`end_reads`), stores the bytes, and then records them in a fresh transaction that the unit of work commits. A
stalled store makes the upload fail (503) without holding a connection or a lock; a retry with the same client id
finds the bytes stored (content-addressed) or stores them again, and records them once.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import audit, scope
from backend.accidents.models import Accident
from backend.audit import Actor
from backend.clock import now
from backend.enforcement.models import Case
from backend.errors import Conflict, ErrorCode, Forbidden, NotFound, ValidationFailed
from backend.evidence.media import PhotoFacts, inspect_photo_bounded, read_head, sniff
from backend.evidence.models import Evidence
from backend.evidence.schemas import EvidenceDetail, EvidenceFields, EvidenceOut, Owner, UploadIn
from backend.evidence.upload import PayloadTooLarge, ReceivedFile, hash_file
from backend.hazards.models import Hazard
from backend.http import API_PREFIX
from backend.idempotency import find_retry, fingerprint
from backend.inspections.models import Inspection
from backend.settings import Settings
from backend.storage import ObjectStore
from backend.unit_of_work import concurrent_change, end_reads, insert_once, track
from backend.vocabulary import EvidenceStatus, InspectionStatus, Role
from backend.workflow import Move, Workflow

EVERYONE = frozenset(Role)
EVIDENCE_WORKFLOW = Workflow(
    "evidence", None, "evidence_id", {EvidenceStatus.pending: {"upload_verified": Move(EvidenceStatus.stored, EVERYONE)}}
)
track(Evidence, "evidence", feed=None)
UPLOAD_LINK_TTL = timedelta(minutes=30)
OWNER_FIELDS = ("inspection_id", "hazard_id", "case_id", "accident_id")
DOWNLOAD_LINK_TTL = timedelta(minutes=10)


def original_key(sha256: str) -> str:
    return f"originals/{sha256[:2]}/{sha256}"


def thumbnail_key(sha256: str) -> str:
    return f"thumbnails/{sha256[:2]}/{sha256}.jpg"


def evidence_out(evidence: Evidence) -> EvidenceOut:
    return EvidenceOut.model_validate(evidence, from_attributes=True)


def size_limit(settings: Settings, kind: str | None) -> int:
    per_kind = {"photo": settings.max_photo_bytes, "document": settings.max_document_bytes}
    return min(per_kind.get(kind or "", settings.max_upload_bytes), settings.max_upload_bytes)


class EvidenceService:
    def __init__(self, session: AsyncSession, actor: Actor, store: ObjectStore, settings: Settings) -> None:
        self.session = session
        self.actor = actor
        self.store = store
        self.settings = settings

    # --- owners and scope -------------------------------------------------------------------------------------

    async def _owner_enterprise(self, owner: Owner) -> uuid.UUID:
        """The enterprise whose evidence this is, after checking the caller may add evidence to that owner."""
        if owner.inspection_id is not None:
            if self.actor.role not in (Role.inspector, Role.admin):
                raise Forbidden("only inspectors add evidence to an inspection", code=ErrorCode.ROLE_FORBIDDEN)
            inspection = await scope.one(self.session, self.actor, Inspection, owner.inspection_id, field="inspection_id")
            if inspection.status != InspectionStatus.in_progress:
                raise Conflict("the inspection is submitted and takes no new evidence", code=ErrorCode.INSPECTION_SUBMITTED)
            return inspection.enterprise_id
        if owner.hazard_id is not None:
            if self.actor.role not in (Role.inspector, Role.enterprise, Role.admin):
                raise Forbidden("only inspectors and the enterprise add evidence to a hazard", code=ErrorCode.ROLE_FORBIDDEN)
            return (await scope.one(self.session, self.actor, Hazard, owner.hazard_id, field="hazard_id")).enterprise_id
        if owner.accident_id is not None:  # the enterprise's own user too, for its progress on the measures
            if self.actor.role not in (Role.inspector, Role.enterprise, Role.admin):
                raise Forbidden("only inspectors and the enterprise add evidence to an accident", code=ErrorCode.ROLE_FORBIDDEN)
            return (await scope.one(self.session, self.actor, Accident, owner.accident_id, field="accident_id")).enterprise_id
        if self.actor.role not in (Role.inspector, Role.admin):
            raise Forbidden("only the case's handlers add evidence to a case", code=ErrorCode.ROLE_FORBIDDEN)
        assert owner.case_id is not None
        return (await scope.one(self.session, self.actor, Case, owner.case_id, field="case_id")).enterprise_id

    async def get(self, evidence_id: uuid.UUID) -> Evidence:
        return await scope.one(self.session, self.actor, Evidence, evidence_id)

    async def _existing(self, evidence_id: uuid.UUID, digest: str) -> Evidence | None:
        return await find_retry(self.session, scope.readable(self.actor, Evidence), Evidence, evidence_id, digest, self._fingerprint)

    @staticmethod
    def _fingerprint(evidence: Evidence | dict[str, Any]) -> str:
        get = evidence.get if isinstance(evidence, dict) else lambda k: getattr(evidence, k)
        sha = get("sha256") or get("declared_sha256")
        return fingerprint({"sha256": sha, "kind": get("kind"), **{k: get(k) for k in OWNER_FIELDS}})

    # --- checking the bytes -----------------------------------------------------------------------------------

    async def _check_content(self, kind: str, received: ReceivedFile) -> tuple[str, PhotoFacts | None]:
        if received.size == 0:
            raise ValidationFailed("the file is empty", code=ErrorCode.EMPTY_FILE, field="file")
        limit = size_limit(self.settings, kind)
        if received.size > limit:
            raise PayloadTooLarge(f"a {kind} may be at most {limit} bytes", field="file")
        sniffed = sniff(read_head(received.rewound()))
        if sniffed is None or sniffed[0] != kind:
            found = f"looks like {sniffed[1]}" if sniffed else "is of no accepted type"
            raise ValidationFailed(f"the file was sent as {kind} but {found}", code=ErrorCode.CONTENT_MISMATCH, field="kind")
        content_type = sniffed[1]
        if kind != "photo" or content_type == "image/heic":
            return content_type, None
        facts = await inspect_photo_bounded(received.rewound())
        return facts.content_type, facts

    async def _stored_already(self, sha256: str) -> bool:
        """Whether these bytes were stored before (asked of the database: cheaper than asking the store)."""
        query = select(col(Evidence.id)).where(col(Evidence.sha256) == sha256, col(Evidence.status) == EvidenceStatus.stored).limit(1)
        return (await self.session.execute(query)).first() is not None

    async def _store(self, received: ReceivedFile, content_type: str, facts: PhotoFacts | None) -> None:
        """Put the original, then the thumbnail, under server-chosen keys; bytes stored before are not sent again (keys
        are content-addressed and written once). One after the other: a failed original leaves no orphan thumbnail,
        and while the store is down a request needs only the one call that tests whether it is back."""
        await self.store.put(original_key(received.sha256), received.rewound(), received.size, content_type, received.sha256)
        if facts is not None:
            await self.store.put_bytes(thumbnail_key(received.sha256), facts.thumbnail, "image/jpeg")

    # --- multipart upload -------------------------------------------------------------------------------------

    async def ingest(self, fields: EvidenceFields, received: ReceivedFile) -> tuple[Evidence, bool]:
        evidence_id = fields.id or uuid.uuid4()
        owner = {k: getattr(fields, k) for k in OWNER_FIELDS}
        digest = self._fingerprint({"sha256": received.sha256, "kind": fields.kind, **owner})
        # 1. Read and check, then end the transaction: nothing below holds a connection while the store works.
        if fields.id is not None:  # only a client id can be a retry
            existing = await self._existing(evidence_id, digest)
            if existing is not None:
                return existing, False
        await self._owner_enterprise(fields)  # the caller may add evidence there: checked before any byte is stored
        stored_before = await self._stored_already(received.sha256)
        await end_reads(self.session)
        # 2. Check the bytes and store them, with no transaction open.
        content_type, facts = await self._check_content(fields.kind, received)
        if not stored_before:
            await self._store(received, content_type, facts)
        # 3. Record them in a fresh transaction (the unit of work commits it); the owner is read again, as it is now.
        enterprise_id = await self._owner_enterprise(fields)
        values = {
            "id": evidence_id,
            "kind": fields.kind,
            "status": EvidenceStatus.stored,
            "sha256": received.sha256,
            "size": received.size,
            "content_type": content_type,
            "width": facts.width if facts else None,
            "height": facts.height if facts else None,
            # EXIF fills in only what the phone did not send.
            "captured_at": fields.captured_at or (facts.captured_at if facts else None) or now(),
            "lat": fields.lat if fields.lat is not None else (facts.lat if facts else None),
            "lng": fields.lng if fields.lng is not None else (facts.lng if facts else None),
            **owner,
            "enterprise_id": enterprise_id,
            "object_key": original_key(received.sha256),
            "thumbnail_key": thumbnail_key(received.sha256) if facts else None,
            "uploaded_by": self.actor.user_id,
            "created_at": now(),
        }
        return await self._insert(values, digest)

    async def _insert(self, values: dict[str, Any], digest: str) -> tuple[Evidence, bool]:
        evidence = Evidence(**values)
        recorded = audit.entry(self.actor, "evidence.create", "evidence", values["id"], {k: v for k, v in values.items() if k != "id"})
        if not await insert_once(self.session, evidence, recorded):
            existing = await self._existing(values["id"], digest)
            if existing is None:
                raise concurrent_change()
            return existing, False
        return evidence, True

    # --- presigned upload -------------------------------------------------------------------------------------

    async def start_upload(self, data: UploadIn) -> tuple[Evidence, str, bool]:
        evidence_id = data.id or uuid.uuid4()
        owner = data.owner.model_dump()
        digest = self._fingerprint({"sha256": data.sha256, "kind": data.kind, **owner})
        existing = await self._existing(evidence_id, digest)
        if existing is None:
            enterprise_id = await self._owner_enterprise(data.owner)
            limit = size_limit(self.settings, data.kind)
            if data.size > limit:
                raise PayloadTooLarge(f"a {data.kind} may be at most {limit} bytes", field="size")
            values = {
                "id": evidence_id,
                "kind": data.kind,
                "status": EvidenceStatus.pending,
                "declared_sha256": data.sha256,
                "size": data.size,
                "content_type": data.content_type,
                "captured_at": data.captured_at,
                "lat": data.lat,
                "lng": data.lng,
                **owner,
                "enterprise_id": enterprise_id,
                "object_key": f"uploads/{evidence_id}",
                "uploaded_by": self.actor.user_id,
                "created_at": now(),
            }
            existing, created = await self._insert(values, digest)
        else:
            created = False
        url = self.store.presigned_put(existing.object_key, UPLOAD_LINK_TTL) if existing.status == "pending" else ""
        return existing, url, created

    async def complete_upload(self, evidence_id: uuid.UUID) -> Evidence:
        # 1. Read, then end the transaction: the download, the checks and the store calls hold no connection.
        evidence = await self.get(evidence_id)
        if evidence.status == EvidenceStatus.stored:
            return evidence
        assert evidence.declared_sha256 is not None  # a pending upload always declares its sha256
        stored_before = await self._stored_already(evidence.declared_sha256)
        await end_reads(self.session)
        # 2. Fetch what landed, check it, and store it under its content address.
        upload_key = evidence.object_key
        if await self.store.stat(upload_key) is None:
            raise ValidationFailed("nothing has been uploaded to the upload link yet", code=ErrorCode.UPLOAD_MISSING, field="id")
        received = await self._download(upload_key)
        try:
            if received.size != evidence.size or received.sha256 != evidence.declared_sha256:
                await self.store.delete(upload_key)
                raise ValidationFailed(
                    f"uploaded {received.size} bytes with sha256 {received.sha256}, "
                    f"declared {evidence.size} bytes with sha256 {evidence.declared_sha256}",
                    code=ErrorCode.UPLOAD_MISMATCH,
                    field="sha256",
                )
            try:
                content_type, facts = await self._check_content(evidence.kind, received)
            except ValidationFailed:
                await self.store.delete(upload_key)
                raise
            if not stored_before:
                await self._store(received, content_type, facts)
        finally:
            received.discard()
        await self.store.delete(upload_key)
        # 3. Record it in a fresh transaction (the unit of work commits it), on the row as it is now.
        current = await self.session.get(Evidence, evidence_id, with_for_update=True)
        assert current is not None  # evidence rows are never deleted
        evidence = current
        if evidence.status == EvidenceStatus.stored:  # a concurrent complete finished first
            return evidence
        EVIDENCE_WORKFLOW.transition(
            self.session, evidence, "upload_verified", self.actor, note="upload verified", data={"sha256": received.sha256}
        )
        evidence.sha256 = received.sha256
        evidence.content_type = content_type
        evidence.object_key = original_key(received.sha256)
        if facts is not None:
            evidence.width, evidence.height = facts.width, facts.height
            evidence.thumbnail_key = thumbnail_key(received.sha256)
            evidence.captured_at = evidence.captured_at or facts.captured_at
            if evidence.lat is None and facts.lat is not None:
                evidence.lat, evidence.lng = facts.lat, facts.lng
        evidence.captured_at = evidence.captured_at or now()
        return evidence

    async def _download(self, key: str) -> ReceivedFile:
        fh = tempfile.TemporaryFile(prefix="evidence-")  # noqa: SIM115 - closed by ReceivedFile.discard
        try:
            async for chunk in await self.store.open(key):
                fh.write(chunk)
            sha, size = await anyio.to_thread.run_sync(hash_file, fh)
        except BaseException:
            fh.close()
            raise
        return ReceivedFile(fh, size, sha, None)

    # --- reading ----------------------------------------------------------------------------------------------

    def _links(self, evidence: Evidence) -> tuple[str | None, str | None]:
        """Where a phone fetches the original and the thumbnail: links presigned for `S3_PUBLIC_ENDPOINT` when it is
        set (signed locally, no call to the store), else this API's own content and thumbnail routes."""
        if evidence.status != EvidenceStatus.stored:
            return None, None
        if self.store.config.public_endpoint:
            thumbnail = self.store.presigned_get(evidence.thumbnail_key, DOWNLOAD_LINK_TTL) if evidence.thumbnail_key else None
            return self.store.presigned_get(evidence.object_key, DOWNLOAD_LINK_TTL), thumbnail
        base = f"{API_PREFIX}/evidence/{evidence.id}"
        return f"{base}/content", f"{base}/thumbnail" if evidence.thumbnail_key else None

    async def detail(self, evidence_id: uuid.UUID) -> EvidenceDetail:
        evidence = await self.get(evidence_id)
        download_url, thumbnail_url = self._links(evidence)
        return EvidenceDetail(**evidence_out(evidence).model_dump(), download_url=download_url, thumbnail_url=thumbnail_url)

    async def _stored(self, evidence_id: uuid.UUID) -> Evidence:
        evidence = await self.get(evidence_id)
        if evidence.status != EvidenceStatus.stored:
            raise NotFound("the upload of this evidence has not been completed", code=ErrorCode.EVIDENCE_PENDING)
        return evidence

    async def content(self, evidence_id: uuid.UUID) -> tuple[Evidence, AsyncIterator[bytes]]:
        """The record and its bytes; the store has answered before the response starts (so a store that is down is
        a 503, not a broken 200), and no transaction is open while the bytes flow."""
        evidence = await self._stored(evidence_id)
        await end_reads(self.session)
        return evidence, await self.store.open(evidence.object_key)

    async def thumbnail(self, evidence_id: uuid.UUID) -> tuple[Evidence, bytes]:
        evidence = await self._stored(evidence_id)
        if evidence.thumbnail_key is None:
            raise NotFound("this evidence has no thumbnail (only photos have one)")
        await end_reads(self.session)
        return evidence, await self.store.get_bytes(evidence.thumbnail_key)
