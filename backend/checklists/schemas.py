"""The checklist file format (what `checklists/*.yaml` must hold) and what crosses the wire."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationInfo, model_validator

from backend.vocabulary import Topic


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LegalBasis(_Strict):
    document: StrictStr = Field(min_length=1)
    article: StrictStr | None = Field(
        min_length=1, description="null only when the duty article is not in the verified facts; `note` then says so"
    )
    item: StrictStr | None = None
    citation_inferred: StrictBool = Field(
        default=False, description="the article/item number was inferred, not seen in the source: not a verified citation"
    )
    penalty: StrictStr | None = Field(default=None, min_length=1, description="the penalty article for breaking the duty, when known")
    note: StrictStr | None = Field(default=None, min_length=1, description="why the citation is incomplete or how it applies")

    @model_validator(mode="after")
    def _article_or_note(self) -> LegalBasis:
        if self.article is None and not self.note:
            raise ValueError("a basis without an article needs a `note` saying why the article is not given")
        return self


class DocumentRef(_Strict):
    title: StrictStr = Field(min_length=1)
    document_number: StrictStr = Field(min_length=1)
    effective_from: date | None = None


class CombinationRule(_Strict):
    """A comprehensive judgement (综合判定): `threshold` or more of `elements` found at a site of `site_type` make the
    findings one major hazard. Only an `enabled` rule is applied; an unverified rule stays off until an agency loads
    a version with it switched on."""

    site_type: StrictStr = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="what an inspection names in `site_types`")
    applies_to: StrictStr = Field(min_length=1, description="the site type as the standard names it")
    rule: StrictStr = Field(min_length=1)
    elements: list[StrictStr] = Field(min_length=1)
    threshold: StrictInt = Field(ge=1)
    verified: StrictBool
    enabled: StrictBool


class StandardItemRef(_Strict):
    """Where the facts a routine item checks are a major hazard: a standard (by code) and its item or provision."""

    checklist: StrictStr = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,79}$")
    item: StrictStr | None = Field(default=None, pattern=r"^[A-Z0-9][A-Z0-9-]{0,39}$")
    provision: StrictStr | None = Field(default=None, min_length=1, description="a general provision that is no item of its own")

    @model_validator(mode="after")
    def _item_or_provision(self) -> StandardItemRef:
        if self.item is None and self.provision is None:
            raise ValueError("name the standard's `item` or its `provision`")
        return self


class ItemSpec(_Strict):
    code: StrictStr = Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,39}$")
    text: StrictStr = Field(min_length=2)
    legal_basis: LegalBasis
    major_hazard: StrictBool
    rectify_days: StrictInt = Field(ge=0, le=365, description="0 means 立即 (to be removed immediately)")
    min_photos: StrictInt = Field(ge=0, le=20)
    verified: StrictBool
    major_standard_items: list[StandardItemRef] = Field(
        default_factory=list, description="the standard items under which these facts are a major hazard"
    )


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
    def _consistent(self, info: ValidationInfo) -> ChecklistFile:
        # The loader defers these checks to report each with the line it concerns (`consistency_problems`).
        if not (info.context or {}).get("defer_consistency"):
            problems = self.consistency_problems()
            if problems:
                raise ValueError(problems[0][1])
        return self

    def consistency_problems(self) -> list[tuple[tuple[int | str, ...], str]]:
        """What no single field shows: duplicates, rules naming unknown items, dates and counts that disagree."""
        problems: list[tuple[tuple[int | str, ...], str]] = []
        seen: set[str] = set()
        for index, item in enumerate(self.items):
            if item.code in seen:
                problems.append((("items", index, "code"), f"item code {item.code} appears twice"))
            seen.add(item.code)
        for index, rule in enumerate(self.combination_rules):
            elements = set(rule.elements)
            if len(elements) != len(rule.elements):
                twice: tuple[int | str, ...] = ("combination_rules", index, "elements")
                problems.append((twice, f"combination rule for {rule.applies_to} names an element twice"))
            unknown = [e for e in rule.elements if e not in seen]
            if unknown:
                first: tuple[int | str, ...] = ("combination_rules", index, "elements", rule.elements.index(unknown[0]))
                problems.append((first, f"combination rule for {rule.applies_to} names unknown items {unknown}"))
            if rule.enabled and rule.threshold > len(elements):
                problems.append(
                    (("combination_rules", index, "threshold"), f"threshold {rule.threshold} exceeds the rule's {len(elements)} elements")
                )
        if self.effective_from and self.effective_to and self.effective_to <= self.effective_from:
            problems.append((("effective_to",), "effective_to must be after effective_from"))
        if self.official_item_count is not None and len(self.items) > self.official_item_count:
            problems.append((("official_item_count",), f"{len(self.items)} items but the official count is {self.official_item_count}"))
        return problems


class ChecklistSummary(BaseModel):
    id: uuid.UUID
    code: str
    topic: str
    kind: str
    version: str
    title: str
    document_number: str
    effective_from: date | None = Field(description="first day in force; null when not verified (then in force until `effective_to`)")
    effective_to: date | None = Field(description="EXCLUSIVE: the day the successor takes effect; null when open-ended")
    last_day_in_force: date | None = Field(description="the last day in force (the day before `effective_to`), for display")
    item_count: int
    major_item_count: int
    official_item_count: int | None
    in_force: bool = Field(description="in force on the date asked about (only such versions are listed unless all_versions)")
    superseded: bool = Field(description="the date asked about is on or after `effective_to`, or a loaded successor is in force")
    withdrawn: bool = Field(description="withdrawn from use (a renamed or corrected version); kept for the inspections that used it")
    superseded_by: DocumentRef | None
    warning: str | None = Field(description="what the inspector should know before relying on this version")


class ChecklistItemOut(BaseModel):
    code: str
    text: str
    legal_basis: LegalBasis
    major_hazard: bool
    rectify_days: int = Field(description="default days to rectify; 0 means 立即 (to be removed immediately)")
    min_photos: int
    verified: bool
    major_standard_items: list[StandardItemRef]


class ChecklistNotice(BaseModel):
    """Something the inspector must know about a topic on the date asked about, beyond the versions listed."""

    code: Literal["standard_unavailable"] = Field(
        description="standard_unavailable: a standard in force on the date is not loaded; its predecessor is not offered"
    )
    checklist_code: str
    title: str
    document_number: str
    effective_from: date | None
    message: str = Field(description="in Chinese, for the inspector: what is missing and how the agency loads it")
    how_to_load: str = Field(description="how an administrator loads the standard (POST /checklists or safety import-checklist)")


class ChecklistPage(BaseModel):
    items: list[ChecklistSummary]
    next_cursor: str | None = Field(description="always null: the selection comes in one page")
    notices: list[ChecklistNotice] = Field(description="e.g. `standard_unavailable` when a standard in force is not loaded")


class ChecklistPublished(BaseModel):
    id: uuid.UUID
    code: str
    version: str
    content_sha256: str
    created: bool = Field(description="false when the same content was already published (an idempotent repeat)")


class ChecklistOut(ChecklistSummary):
    issuing_body: str | None
    replaces: DocumentRef | None
    sources: list[str]
    notes: str | None
    combination_rules: list[CombinationRule]
    content_sha256: str
    published_at: datetime
    items: list[ChecklistItemOut]
