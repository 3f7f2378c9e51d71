"""The checklist file format (what `checklists/*.yaml` must hold) and what crosses the wire."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from backend.vocabulary import Topic


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LegalBasis(_Strict):
    document: StrictStr = Field(min_length=1)
    article: StrictStr = Field(min_length=1)
    item: StrictStr | None = None
    citation_inferred: StrictBool = Field(
        default=False, description="the article/item number was inferred, not seen in the source: not a verified citation"
    )


class DocumentRef(_Strict):
    title: StrictStr = Field(min_length=1)
    document_number: StrictStr = Field(min_length=1)
    effective_from: date | None = None


class CombinationRule(_Strict):
    applies_to: StrictStr
    rule: StrictStr
    elements: list[StrictStr] = Field(min_length=1)
    threshold: StrictInt = Field(ge=1)
    verified: StrictBool


class ItemSpec(_Strict):
    code: StrictStr = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,39}$")
    text: StrictStr = Field(min_length=2)
    legal_basis: LegalBasis
    major_hazard: StrictBool
    rectify_days: StrictInt = Field(ge=0, le=365, description="0 means 立即 (to be removed immediately)")
    min_photos: StrictInt = Field(ge=0, le=20)
    verified: StrictBool


class ChecklistFile(_Strict):
    """One version of one standard, as written in `checklists/<code>@<version>.yaml`."""

    code: StrictStr = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,79}$")
    version: StrictStr = Field(min_length=1, max_length=40)
    topic: Topic
    kind: Literal["major", "routine"]
    title: StrictStr = Field(min_length=1)
    document_number: StrictStr = Field(min_length=1)
    issuing_body: StrictStr | None
    effective_from: date | None
    effective_to: date | None
    replaces: DocumentRef | None = None
    superseded_by: DocumentRef | None = None
    official_item_count: StrictInt | None = Field(default=None, ge=1)
    sources: list[StrictStr] = Field(default_factory=list)
    notes: StrictStr | None = None
    combination_rules: list[CombinationRule] = Field(default_factory=list)
    items: list[ItemSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ChecklistFile:
        seen: set[str] = set()
        for item in self.items:
            if item.code in seen:
                raise ValueError(f"item code {item.code} appears twice")
            seen.add(item.code)
        for rule in self.combination_rules:
            unknown = [e for e in rule.elements if e not in seen]
            if unknown:
                raise ValueError(f"combination rule for {rule.applies_to} names unknown items {unknown}")
        if self.effective_from and self.effective_to and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        if self.official_item_count is not None and len(self.items) > self.official_item_count:
            raise ValueError(f"{len(self.items)} items but the official count is {self.official_item_count}")
        return self


class ChecklistSummary(BaseModel):
    id: uuid.UUID
    code: str
    topic: str
    kind: str
    version: str
    title: str
    document_number: str
    effective_from: date | None
    effective_to: date | None
    item_count: int
    major_item_count: int
    official_item_count: int | None
    superseded: bool = Field(description="a successor is in force on the date asked about but is not loaded here")
    superseded_by: DocumentRef | None
    warning: str | None = Field(description="what the inspector should know before relying on this version")


class ChecklistItemOut(BaseModel):
    code: str
    text: str
    legal_basis: LegalBasis
    major_hazard: bool
    rectify_days: int
    min_photos: int
    verified: bool


class ChecklistOut(ChecklistSummary):
    issuing_body: str | None
    replaces: DocumentRef | None
    sources: list[str]
    notes: str | None
    combination_rules: list[CombinationRule]
    content_sha256: str
    published_at: datetime
    items: list[ChecklistItemOut]
