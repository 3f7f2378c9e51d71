"""执法全过程记录: the case's records as a hash chain, appended one at a time, and verified against the store."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from minio.error import S3Error
from sqlalchemy import select
from sqlmodel import col

from backend import audit, scope
from backend.clock import now
from backend.enforcement.models import GENESIS_HASH, Case, CaseRecord
from backend.enforcement.schemas import RecordIn, RecordOut, VerifyOut
from backend.enforcement.service import CaseAccess
from backend.evidence.models import Evidence
from backend.evidence.service import original_key
from backend.idempotency import fingerprint
from backend.pagination import Page, check_limit, decode_seq, encode_seq
from backend.storage import MISSING
from backend.unit_of_work import end_reads, flush
from backend.vocabulary import EvidenceStatus


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_content(record: CaseRecord) -> dict[str, Any]:
    """The fields a record's hash covers, in a fixed form that survives upgrades of Python, the ORM or the driver."""
    return {
        "case_id": str(record.case_id),
        "seq": record.seq,
        "kind": record.kind,
        "occurred_at": _instant(record.occurred_at),
        "description": record.description,
        "location": {k: repr(float(v)) for k, v in sorted(record.location.items())} if record.location else None,
        "evidence": [{"id": str(e["id"]), "sha256": e["sha256"]} for e in record.evidence],
        "recorded_by": str(record.recorded_by),
        "recorded_at": _instant(record.recorded_at),
    }


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def record_out(record: CaseRecord) -> RecordOut:
    return RecordOut.model_validate(record, from_attributes=True)


class RecordService(CaseAccess):
    async def add(self, case_id: uuid.UUID, data: RecordIn) -> tuple[CaseRecord, bool]:
        record_id = data.id or uuid.uuid4()
        digest = fingerprint(
            {
                "kind": data.kind,
                "occurred_at": data.occurred_at.astimezone(UTC),
                "description": data.description,
                "evidence_ids": sorted(str(e) for e in data.evidence_ids),
                "location": data.location,
            }
        )
        case = await self._as_handler(case_id)
        existing = await self._earlier(CaseRecord, record_id, case_id, digest)
        if existing is not None:
            return existing, False
        evidence = await scope.many(
            self.session,
            self.actor,
            Evidence,
            data.evidence_ids,
            field="evidence_ids",
            where=[Evidence.case_id == case_id, Evidence.status == EvidenceStatus.stored],
        )
        record = self.append(
            case,
            kind=data.kind,
            occurred_at=data.occurred_at,
            description=data.description,
            location=data.location.model_dump() if data.location else None,
            evidence=[{"id": str(e.id), "sha256": e.sha256} for e in evidence],
            record_id=record_id,
            client_fingerprint=digest,
        )
        await flush(self.session)
        return record, True

    def append(
        self,
        case: Case,
        *,
        kind: str,
        occurred_at: datetime,
        description: str,
        evidence: list[dict[str, Any]],
        client_fingerprint: str,
        location: dict[str, Any] | None = None,
        record_id: uuid.UUID | None = None,
    ) -> CaseRecord:
        """Chain a record onto the case (locked by the caller); the case row's version and the unique (case_id, seq)
        stop a fork even if two appends raced past the lock."""
        assert self.actor.user_id is not None  # records are kept by a case's handlers, never by a system actor
        record = CaseRecord(
            id=record_id or uuid.uuid4(),
            case_id=case.id,
            seq=case.record_count + 1,
            kind=kind,
            occurred_at=occurred_at,
            description=description,
            location=location,
            evidence=evidence,
            recorded_by=self.actor.user_id,
            recorded_at=now(),
            prev_hash=case.head_hash,
            hash="",
            client_fingerprint=client_fingerprint,
        )
        record.hash = chain_hash(record.prev_hash, record_content(record))
        self.session.add(record)
        case.record_count, case.head_hash = record.seq, record.hash
        audit.record(
            self.session, self.actor, "case.record", "case", case.id, {"seq": record.seq, "kind": record.kind, "hash": record.hash}
        )
        return record

    async def page(self, case_id: uuid.UUID, cursor: str | None, limit: int) -> Page[RecordOut]:
        """The records in chain order, `limit` at a time."""
        await self._case(case_id)
        query = select(CaseRecord).where(col(CaseRecord.case_id) == case_id)
        if cursor:
            query = query.where(col(CaseRecord.seq) > decode_seq(cursor))
        rows = list((await self.session.execute(query.order_by(col(CaseRecord.seq)).limit(check_limit(limit) + 1))).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page[RecordOut](items=[record_out(r) for r in rows], next_cursor=encode_seq(rows[-1].seq) if more else None)

    async def verify(self, case_id: uuid.UUID) -> VerifyOut:
        """Recompute the chain from the stored rows and re-hash every evidence object in the store. The rows are
        read first and that transaction ended, so re-hashing (slow, and at the store's pace) holds no connection."""
        case = await self._case(case_id)
        records = list(
            (
                await self.session.execute(select(CaseRecord).where(col(CaseRecord.case_id) == case_id).order_by(col(CaseRecord.seq)))
            ).scalars()
        )
        await end_reads(self.session)
        prev = GENESIS_HASH
        for position, record in enumerate(records, start=1):
            problem = None
            if record.seq != position or record.prev_hash != prev:
                problem = "the record is out of its place in the chain"
            elif chain_hash(prev, record_content(record)) != record.hash:
                problem = "the record's content does not match its hash"
            else:
                problem = await self._evidence_problem(record)
            if problem:
                return VerifyOut(valid=False, length=len(records), head=case.head_hash, first_invalid_seq=record.seq, problem=problem)
            prev = record.hash
        if case.head_hash != prev or case.record_count != len(records):
            return VerifyOut(
                valid=False,
                length=len(records),
                head=case.head_hash,
                first_invalid_seq=len(records) + 1,
                problem="the case's head does not match its last record",
            )
        return VerifyOut(valid=True, length=len(records), head=prev)

    async def _evidence_problem(self, record: CaseRecord) -> str | None:
        """What is wrong with the record's evidence in the store, if anything. A store that does not answer is no
        finding about the evidence: it raises DependencyUnavailable (503), and the chain can be verified later."""
        for item in record.evidence:
            digest = hashlib.sha256()
            try:
                async for chunk in await self.store.open(original_key(item["sha256"])):
                    digest.update(chunk)
            except S3Error as exc:
                if exc.code in MISSING:
                    return f"evidence {item['id']} is missing from the store"
                raise
            if digest.hexdigest() != item["sha256"]:
                return f"evidence {item['id']} was altered in the store"
        return None
