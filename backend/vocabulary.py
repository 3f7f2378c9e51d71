"""The words the API speaks: roles, statuses, levels and kinds, one enum each.

They are `StrEnum`s, so they compare equal to the strings stored in the database, and a query filter typed with one
refuses an unknown value with `400` naming the parameter instead of silently matching nothing."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    inspector = "inspector"
    enterprise = "enterprise"
    legal_reviewer = "legal_reviewer"


AGENCY_STAFF = frozenset({Role.inspector, Role.legal_reviewer})


class Topic(StrEnum):
    mining = "mining"
    hazardous_chemicals = "hazardous_chemicals"
    construction = "construction"
    fire_safety = "fire_safety"
    industry_trade = "industry_trade"
    road_transport = "road_transport"


class HazardStatus(StrEnum):
    reported = "reported"
    rectifying = "rectifying"
    pending_review = "pending_review"
    closed = "closed"
    verified = "verified"


class HazardLevel(StrEnum):
    general = "general"
    major = "major"


class HazardSource(StrEnum):
    inspection = "inspection"
    inspector = "inspector"
    self_inspection = "self_inspection"


class InspectionStatus(StrEnum):
    in_progress = "in_progress"
    submitted = "submitted"


class InspectionKind(StrEnum):
    enforcement = "enforcement"
    routine = "routine"


class CaseStatus(StrEnum):
    open = "open"
    decision_draft = "decision_draft"
    legal_review = "legal_review"
    approved = "approved"
    decided = "decided"


class EvidenceKind(StrEnum):
    photo = "photo"
    audio = "audio"
    video = "video"
    document = "document"


class EvidenceStatus(StrEnum):
    pending = "pending"
    stored = "stored"


class MeasureType(StrEnum):
    warning = "warning"
    fine = "fine"
    confiscate = "confiscate"
    order_rectification = "order_rectification"
    suspend_production = "suspend_production"
    suspend_license = "suspend_license"
    revoke_license = "revoke_license"
    close = "close"
