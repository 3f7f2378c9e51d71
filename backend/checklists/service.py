"""Publishing checklist versions (immutable once published) and choosing the version in force on a date."""

from __future__ import annotations

import builtins
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload
from sqlmodel import col

from backend import audit
from backend.audit import Actor
from backend.checklists.loader import (
    ChecklistFileInvalid,
    FileError,
    checklist_files,
    content_hash,
    parse_checklist_bytes,
    parse_checklist_file,
)
from backend.checklists.models import Checklist, ChecklistItem, ChecklistWithdrawal
from backend.checklists.schemas import (
    ChecklistFile,
    ChecklistItemOut,
    ChecklistNotice,
    ChecklistOut,
    ChecklistPage,
    ChecklistPublished,
    ChecklistSummary,
    CombinationRule,
    DocumentRef,
)
from backend.clock import local_today
from backend.db import rel
from backend.errors import Conflict, ErrorCode, NotFound, ValidationFailed
from backend.sync.service import record_change, register_serializer

logger = logging.getLogger("backend.checklists")

# Ids derive from code@version, so every deployment (and every phone's cache) knows a version by the same id.
CHECKLIST_NAMESPACE = uuid.UUID("6f1c1d2e-8b4e-4a63-9d7e-2f1a0c5b7e10")
LOADER = Actor.system("checklist-loader")


def checklist_id(code: str, version: str) -> uuid.UUID:
    return uuid.uuid5(CHECKLIST_NAMESPACE, f"{code}@{version}")


class PublishedVersionChanged(ChecklistFileInvalid):
    """A file whose version is already published now has other content: a new version is needed, not an edit."""


@dataclass
class LoadReport:
    published: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)


STANDARD_UNAVAILABLE: Literal["standard_unavailable"] = "standard_unavailable"  # a notice, not an error code
HOW_TO_LOAD = (
    "An administrator loads the official text as a checklist YAML file (format: checklists/README.md): "
    "`POST /api/v1/checklists` (multipart, the file in `file`) or `safety import-checklist FILE.yaml`. "
    "It is validated, published as a new immutable version and offered from its effective date."
)


def covers(checklist: Checklist, on: date) -> bool:
    """In force on `on`: from `effective_from` (unknown = in force since before any date asked about) up to, but not
    including, `effective_to` (the day the successor takes effect)."""
    started = checklist.effective_from is None or checklist.effective_from <= on
    return started and (checklist.effective_to is None or on < checklist.effective_to)


def in_force(versions: list[Checklist], on: date, withdrawn: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset()) -> Checklist | None:
    """The version of one standard that applies on a date: of those covering it (and not withdrawn), the one that
    took effect last; a version whose start is unknown yields to any dated one covering the same day."""
    covering = [v for v in versions if v.id not in withdrawn and covers(v, on)]
    return max(covering, key=lambda v: (v.effective_from or date.min, v.published_at)) if covering else None


def status_on(
    checklist: Checklist, versions: list[Checklist], on: date, withdrawn: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset()
) -> tuple[bool, bool, str | None]:
    """(in force, superseded) on `on`, and what the inspector should be told before relying on this version."""
    warnings: list[str] = []
    successor = DocumentRef.model_validate(checklist.superseded_by) if checklist.superseded_by else None
    current = in_force(versions, on, withdrawn)
    is_current = current is not None and current.id == checklist.id
    ended = checklist.effective_to is not None and on >= checklist.effective_to
    replaced_here = current is not None and not is_current and (current.effective_from or date.min) > (checklist.effective_from or date.min)
    if checklist.id in withdrawn:
        warnings.append("本版本已撤回，不再用于新的检查；使用它的检查记录保持不变")
    if replaced_here:
        warnings.append(f"本版本已被版本 {current.version} 代替，请使用新版本")  # type: ignore[union-attr]
    elif ended:
        last_day = checklist.effective_to - timedelta(days=1)  # type: ignore[operator]
        name = f"《{successor.title}》（{successor.document_number}）" if successor else "新版本"
        warnings.append(f"本版本施行至 {last_day}，此后适用{name}，该标准尚未载入本系统")
    elif checklist.effective_from is not None and on < checklist.effective_from:
        warnings.append(f"本版本自 {checklist.effective_from} 起施行，所查日期尚未施行")
    if checklist.effective_from is None:
        warnings.append("本版本施行日期未核实")
    if checklist.issuing_body is None:
        warnings.append("发布机关未核实")
    if checklist.official_item_count and checklist.item_count < checklist.official_item_count:
        warnings.append(f"本检查表收录 {checklist.item_count}/{checklist.official_item_count} 项，缺失条目见 checklists/README.md")
    return is_current, ended or replaced_here, "；".join(warnings) or None


def summary_of(
    checklist: Checklist, versions: list[Checklist], on: date, withdrawn: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset()
) -> ChecklistSummary:
    is_current, superseded, warning = status_on(checklist, versions, on, withdrawn)
    return ChecklistSummary(
        id=checklist.id,
        code=checklist.code,
        topic=checklist.topic,
        kind=checklist.kind,
        version=checklist.version,
        title=checklist.title,
        document_number=checklist.document_number,
        effective_from=checklist.effective_from,
        effective_to=checklist.effective_to,
        last_day_in_force=checklist.effective_to - timedelta(days=1) if checklist.effective_to else None,
        item_count=checklist.item_count,
        major_item_count=checklist.major_item_count,
        official_item_count=checklist.official_item_count,
        in_force=is_current,
        superseded=superseded,
        withdrawn=checklist.id in withdrawn,
        superseded_by=DocumentRef.model_validate(checklist.superseded_by) if checklist.superseded_by else None,
        warning=warning,
    )


def unavailable_notice(versions: list[Checklist], on: date) -> ChecklistNotice | None:
    """`standard_unavailable` when no version of a standard is in force on `on` because its successor, in force by
    then, is not loaded: the predecessor is not offered as the standard, and the inspector is told what is missing."""
    if in_force(versions, on) is not None:
        return None
    for checklist in sorted(versions, key=lambda v: v.effective_to or date.max, reverse=True):
        successor = DocumentRef.model_validate(checklist.superseded_by) if checklist.superseded_by else None
        if checklist.effective_to is None or on < checklist.effective_to or successor is None:
            continue
        return ChecklistNotice(
            code=STANDARD_UNAVAILABLE,
            checklist_code=checklist.code,
            title=successor.title,
            document_number=successor.document_number,
            effective_from=successor.effective_from or checklist.effective_to,
            message=(
                f"《{successor.title}》（{successor.document_number}）自 {successor.effective_from or checklist.effective_to} 起施行，"
                f"本系统尚未载入其条文；原《{checklist.title}》（{checklist.document_number}）已于 "
                f"{checklist.effective_to - timedelta(days=1)} 失效，不再作为判定标准提供。请按现行标准原文判定，"
                "并请管理员导入该标准。"
            ),
            how_to_load=HOW_TO_LOAD,
        )
    return None


class ChecklistService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- publishing -----------------------------------------------------------------------------------------

    async def publish(self, parsed: ChecklistFile, source_file: str, actor: Actor = LOADER) -> tuple[Checklist, bool]:
        """Add one version to the unit of work (the caller commits): (row, True) when new, (existing row, False) when
        the same content was already published; other content under a published code@version is refused."""
        digest = content_hash(parsed)
        existing = await self._by_code_version(parsed.code, parsed.version)
        if existing is not None:
            self._same_or_refuse(existing, digest, source_file)
            return existing, False
        checklist = Checklist(
            id=checklist_id(parsed.code, parsed.version),
            **parsed.model_dump(
                mode="json",
                include={
                    "code",
                    "version",
                    "topic",
                    "kind",
                    "title",
                    "document_number",
                    "issuing_body",
                    "replaces",
                    "superseded_by",
                    "official_item_count",
                    "sources",
                    "notes",
                    "combination_rules",
                },
            ),
            effective_from=parsed.effective_from,
            effective_to=parsed.effective_to,
            item_count=len(parsed.items),
            major_item_count=sum(1 for i in parsed.items if i.major_hazard),
            content_sha256=digest,
            source_file=source_file[-200:],
        )
        self.session.add(checklist)
        for position, item in enumerate(parsed.items):
            self.session.add(ChecklistItem(checklist_id=checklist.id, position=position, **item.model_dump(mode="json")))
        record_change(self.session, "checklist", checklist.id, "create")
        audit.record(
            self.session,
            actor,
            "checklist.publish",
            "checklist",
            checklist.id,
            {"code": parsed.code, "version": parsed.version, "sha256": digest, "file": source_file},
        )
        return checklist, True

    @staticmethod
    def _same_or_refuse(existing: Checklist, digest: str, source_file: str) -> None:
        if existing.content_sha256 == digest:
            return
        raise PublishedVersionChanged(
            [
                FileError(
                    source_file,
                    None,
                    "version",
                    f"version {existing.version} of {existing.code} is published (sha256 {existing.content_sha256[:12]}…) "
                    "and cannot change; give the new content a new version",
                )
            ]
        )

    async def _by_code_version(self, code: str, version: str) -> Checklist | None:
        query = select(Checklist).where(col(Checklist.code) == code, col(Checklist.version) == version)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def publish_once(self, parsed: ChecklistFile, source_file: str) -> bool:
        """Publish in a transaction of its own (start-up and the CLI); a racing process publishing the same
        content at the same moment is answered as already published."""
        try:
            _, new = await self.publish(parsed, source_file)
            await self.session.commit()
        except IntegrityError:
            await self.session.rollback()
            existing = await self._by_code_version(parsed.code, parsed.version)
            if existing is None:
                raise
            self._same_or_refuse(existing, content_hash(parsed), source_file)
            return False
        return new

    async def import_upload(self, raw: bytes, filename: str, actor: Actor) -> ChecklistPublished:
        """POST /checklists: the same validation as the files, a 422 naming the field and line, 409 for other
        content under a published version, and the same content again answered as already published."""
        try:
            parsed = parse_checklist_bytes(raw, filename)
        except ChecklistFileInvalid as exc:
            first = exc.errors[0]
            raise ValidationFailed(
                "; ".join(str(e) for e in exc.errors[:20]),
                code=ErrorCode.CHECKLIST_INVALID,
                field=f"file.{first.field}" if first.field else "file",
                line=first.line,
                errors=[{"field": e.field, "line": e.line, "message": e.message} for e in exc.errors[:50]],
            ) from exc
        try:
            checklist, created = await self.publish(parsed, filename, actor)
        except PublishedVersionChanged as exc:
            raise Conflict(str(exc.errors[0]), code=ErrorCode.CHECKLIST_VERSION_PUBLISHED, field="version") from exc
        return ChecklistPublished(
            id=checklist.id, code=checklist.code, version=checklist.version, content_sha256=checklist.content_sha256, created=created
        )

    @classmethod
    async def load_directory(cls, sessionmaker: async_sessionmaker[AsyncSession], directory: Path) -> LoadReport:
        """Validate and publish every file; each file is its own transaction, so one bad file blocks no other."""
        report = LoadReport()
        for path in checklist_files(directory):
            try:
                report_file = await cls.load_file(sessionmaker, path, name_must_match=True)
                (report.published if report_file else report.unchanged).append(path.name)
            except ChecklistFileInvalid as exc:
                report.errors.extend(exc.errors)
        for error in report.errors:
            logger.error("checklist not loaded: %s", error)
        return report

    @classmethod
    async def load_file(cls, sessionmaker: async_sessionmaker[AsyncSession], path: Path, *, name_must_match: bool = False) -> bool:
        """Validate and publish one file (`safety import-checklist`); True when it was new."""
        parsed = parse_checklist_file(path, name_must_match=name_must_match)
        async with sessionmaker() as session:
            return await cls(session).publish_once(parsed, path.name)

    # --- reading ----------------------------------------------------------------------------------------------

    async def versions(self, topic: str | None = None, kind: str | None = None) -> dict[str, list[Checklist]]:
        query = select(Checklist)
        if topic:
            query = query.where(col(Checklist.topic) == topic)
        if kind:
            query = query.where(col(Checklist.kind) == kind)
        by_code: dict[str, list[Checklist]] = {}
        for checklist in (await self.session.execute(query.order_by(Checklist.code))).scalars():
            by_code.setdefault(checklist.code, []).append(checklist)
        return by_code

    async def withdrawn(self) -> set[uuid.UUID]:
        return set((await self.session.execute(select(col(ChecklistWithdrawal.checklist_id)))).scalars())

    async def list(self, topic: str | None, kind: str | None, on: date, all_versions: bool) -> ChecklistPage:
        out: list[ChecklistSummary] = []
        notices: list[ChecklistNotice] = []
        withdrawn = await self.withdrawn()
        for versions in (await self.versions(topic, kind)).values():
            chosen = sorted(versions, key=lambda v: v.published_at) if all_versions else [in_force(versions, on, withdrawn)]
            out += [summary_of(c, versions, on, withdrawn) for c in chosen if c is not None]
            notice = unavailable_notice([v for v in versions if v.id not in withdrawn], on)
            if notice is not None:
                notices.append(notice)
        items = sorted(out, key=lambda s: (s.topic, s.kind, s.code, s.version))
        return ChecklistPage(items=items, next_cursor=None, notices=notices)

    async def not_in_force(self, ids: builtins.list[uuid.UUID], on: date) -> builtins.list[Checklist]:
        """Of these published versions, those that are not the version of their standard in force on `on`."""
        rows = list((await self.session.execute(select(Checklist).where(col(Checklist.id).in_(ids)))).scalars())
        codes = {c.code for c in rows}
        query = select(Checklist).where(col(Checklist.code).in_(codes))
        by_code: dict[str, list[Checklist]] = {}
        for checklist in (await self.session.execute(query)).scalars():
            by_code.setdefault(checklist.code, []).append(checklist)
        withdrawn = await self.withdrawn()
        out = []
        for checklist in rows:
            current = in_force(by_code[checklist.code], on, withdrawn)
            if current is None or current.id != checklist.id:
                out.append(checklist)
        return out

    async def get(self, checklist_id_: uuid.UUID, on: date) -> ChecklistOut:
        query = select(Checklist).options(selectinload(rel(Checklist.items))).where(col(Checklist.id) == checklist_id_)
        checklist = (await self.session.execute(query)).scalar_one_or_none()
        if checklist is None:
            raise NotFound(f"checklist {checklist_id_} not found", code=ErrorCode.CHECKLIST_NOT_FOUND)
        versions = (await self.versions())[checklist.code]
        summary = summary_of(checklist, versions, on, await self.withdrawn())
        return ChecklistOut(
            **summary.model_dump(),
            issuing_body=checklist.issuing_body,
            replaces=DocumentRef.model_validate(checklist.replaces) if checklist.replaces else None,
            sources=checklist.sources,
            notes=checklist.notes,
            combination_rules=[CombinationRule.model_validate(rule) for rule in checklist.combination_rules],
            content_sha256=checklist.content_sha256,
            published_at=checklist.published_at,
            items=[ChecklistItemOut.model_validate(item, from_attributes=True) for item in checklist.items],
        )


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Checklists in the feed: their summary as of today; the phone fetches the items once per id (ETag)."""
    service = ChecklistService(session)
    wanted = {uuid.UUID(i) for i in ids}
    out: dict[str, dict[str, Any]] = {}
    withdrawn = await service.withdrawn()
    for versions in (await service.versions()).values():
        for checklist in versions:
            if checklist.id in wanted:
                out[str(checklist.id)] = summary_of(checklist, versions, local_today(), withdrawn).model_dump(mode="json")
    return out


register_serializer("checklist", _serialize)
