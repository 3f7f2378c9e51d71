"""Every table, imported in one place so that migrations and tests see the whole schema."""

from backend.accounts.models import Agency, Enterprise, EnterpriseTopic, LoginFailure, User
from backend.audit import AuditLog
from backend.checklists.models import Checklist, ChecklistItem
from backend.enforcement.models import (
    Case,
    CaseEvent,
    CaseHandler,
    CaseRecord,
    Decision,
    DocumentCounter,
    DocumentDelivery,
    IssuedDocument,
    LegalReview,
)
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard, HazardEvent, HazardTally
from backend.inspections.models import Inspection, InspectionChecklist, InspectionInspector, InspectionResult
from backend.sync.models import ChangeLog

__all__ = [
    "Agency",
    "AuditLog",
    "Case",
    "CaseEvent",
    "CaseHandler",
    "CaseRecord",
    "ChangeLog",
    "Checklist",
    "ChecklistItem",
    "Decision",
    "DocumentCounter",
    "DocumentDelivery",
    "Enterprise",
    "EnterpriseTopic",
    "Evidence",
    "Hazard",
    "HazardEvent",
    "HazardTally",
    "Inspection",
    "InspectionChecklist",
    "InspectionInspector",
    "InspectionResult",
    "IssuedDocument",
    "LegalReview",
    "LoginFailure",
    "User",
]
