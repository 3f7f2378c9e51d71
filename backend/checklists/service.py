"""Publishing checklist versions (immutable once published) and choosing the version in force on a date."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload
from sqlmodel import col

from backend import audit
from backend.audit import Actor
from backend.checklists.loader import ChecklistFileInvalid, FileError, checklist_files, content_hash, parse_checklist_file
from backend.checklists.models import Checklist, ChecklistItem
from backend.checklists.schemas import ChecklistFile, ChecklistItemOut, ChecklistOut, ChecklistSummary, CombinationRule, DocumentRef
from backend.clock import local_today
from backend.db import rel
from backend.errors import ErrorCode, NotFound
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


def in_force(versions: list[Checklist], on: date) -> Checklist | None:
    """The version of one standard that applies on a date.

    Versions with a known effective date win; one whose date is unknown is used only when the standard has no dated
    version at all (it is then taken as in force, with a warning), so an undated successor never displaces a dated
    predecessor by accident.
    """
    dated = [v for v in versions if v.effective_from is not None]
    if dated:
        applicable = [v for v in dated if v.effective_from <= on]  # type: ignore[operator]
        return max(applicable, key=lambda v: v.effective_from) if applicable else None  # type: ignore[arg-type,return-value]
    return max(versions, key=lambda v: v.published_at) if versions else None


def status_on(checklist: Checklist, versions: list[Checklist], on: date) -> tuple[bool, str | None]:
    """Whether this version is superseded on `on`, and what the inspector should be told before relying on it."""
    warnings: list[str] = []
    successor = DocumentRef.model_validate(checklist.superseded_by) if checklist.superseded_by else None
    current = in_force(versions, on)
    replaced_here = (
        current is not None
        and current.id != checklist.id
        and (checklist.effective_from is None or (current.effective_from or date.min) > checklist.effective_from)
    )
    ended = checklist.effective_to is not None and on >= checklist.effective_to
    successor_in_force = successor is not None and successor.effective_from is not None and on >= successor.effective_from
    superseded = replaced_here or ended or successor_in_force
    if replaced_here:
        warnings.append(f"本版本已被版本 {current.version} 代替，请使用新版本")  # type: ignore[union-attr]
    elif superseded:
        name = f"《{successor.title}》（{successor.document_number}）" if successor else "新版本"
        since = successor.effective_from if successor and successor.effective_from else checklist.effective_to
        warnings.append(f"本版本已被{name}代替（{since}起施行），新版本尚未载入本系统，请以新版本为准")
    elif successor is not None:
        undated = [v.version for v in versions if v.id != checklist.id and v.effective_from is None]
        loaded = f"（已载入为版本 {undated[0]}）" if undated else ""
        warnings.append(f"已有后续版本《{successor.title}》（{successor.document_number}）{loaded}，其施行日期未核实，请核对适用版本")
    if checklist.effective_from is None:
        warnings.append("本版本施行日期未核实")
    if checklist.official_item_count and checklist.item_count < checklist.official_item_count:
        warnings.append(f"本检查表收录 {checklist.item_count}/{checklist.official_item_count} 项，缺失条目见 checklists/README.md")
    return superseded, "；".join(warnings) or None


def summary_of(checklist: Checklist, versions: list[Checklist], on: date) -> ChecklistSummary:
    superseded, warning = status_on(checklist, versions, on)
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
        item_count=checklist.item_count,
        major_item_count=checklist.major_item_count,
        official_item_count=checklist.official_item_count,
        superseded=superseded,
        superseded_by=DocumentRef.model_validate(checklist.superseded_by) if checklist.superseded_by else None,
        warning=warning,
    )


class ChecklistService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- publishing -----------------------------------------------------------------------------------------

    async def publish(self, parsed: ChecklistFile, source_file: str) -> bool:
        """Publish one version; True when new, False when the same content was already published."""
        digest = content_hash(parsed)
        existing = await self._by_code_version(parsed.code, parsed.version)
        if existing is not None:
            return self._same_or_refuse(existing, digest, source_file)
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
            source_file=source_file,
        )
        self.session.add(checklist)
        for position, item in enumerate(parsed.items):
            self.session.add(ChecklistItem(checklist_id=checklist.id, position=position, **item.model_dump(mode="json")))
        record_change(self.session, "checklist", checklist.id, "create")
        audit.record(
            self.session,
            LOADER,
            "checklist.publish",
            "checklist",
            checklist.id,
            {"code": parsed.code, "version": parsed.version, "sha256": digest, "file": source_file},
        )
        try:
            await self.session.commit()
        except IntegrityError:  # another process published the same version at the same moment
            await self.session.rollback()
            existing = await self._by_code_version(parsed.code, parsed.version)
            if existing is None:
                raise
            return self._same_or_refuse(existing, digest, source_file)
        return True

    @staticmethod
    def _same_or_refuse(existing: Checklist, digest: str, source_file: str) -> bool:
        if existing.content_sha256 == digest:
            return False
        raise PublishedVersionChanged(
            [
                FileError(
                    source_file,
                    None,
                    "version",
                    f"version {existing.version} of {existing.code} is published (sha256 {existing.content_sha256[:12]}…) "
                    "and cannot change; give the new content a new version in a new file",
                )
            ]
        )

    async def _by_code_version(self, code: str, version: str) -> Checklist | None:
        query = select(Checklist).where(col(Checklist.code) == code, col(Checklist.version) == version)
        return (await self.session.execute(query)).scalar_one_or_none()

    @classmethod
    async def load_directory(cls, sessionmaker: async_sessionmaker[AsyncSession], directory: Path) -> LoadReport:
        """Validate and publish every file; each file is its own transaction, so one bad file blocks no other."""
        report = LoadReport()
        for path in checklist_files(directory):
            try:
                parsed = parse_checklist_file(path)
                async with sessionmaker() as session:
                    new = await cls(session).publish(parsed, path.name)
                (report.published if new else report.unchanged).append(path.name)
            except ChecklistFileInvalid as exc:
                report.errors.extend(exc.errors)
        for error in report.errors:
            logger.error("checklist not loaded: %s", error)
        return report

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

    async def list(self, topic: str | None, kind: str | None, on: date, all_versions: bool) -> list[ChecklistSummary]:
        out: list[ChecklistSummary] = []
        for versions in (await self.versions(topic, kind)).values():
            chosen = sorted(versions, key=lambda v: v.published_at) if all_versions else [in_force(versions, on)]
            out += [summary_of(c, versions, on) for c in chosen if c is not None]
        return sorted(out, key=lambda s: (s.topic, s.kind, s.code, s.version))

    async def get(self, checklist_id_: uuid.UUID, on: date) -> ChecklistOut:
        query = select(Checklist).options(selectinload(rel(Checklist.items))).where(col(Checklist.id) == checklist_id_)
        checklist = (await self.session.execute(query)).scalar_one_or_none()
        if checklist is None:
            raise NotFound(f"checklist {checklist_id_} not found", code=ErrorCode.CHECKLIST_NOT_FOUND)
        versions = (await self.versions())[checklist.code]
        summary = summary_of(checklist, versions, on)
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
    for versions in (await service.versions()).values():
        for checklist in versions:
            if checklist.id in wanted:
                out[str(checklist.id)] = summary_of(checklist, versions, local_today()).model_dump(mode="json")
    return out


register_serializer("checklist", _serialize)
